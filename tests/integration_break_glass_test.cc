// End to end: a break-glass role caps certificate lifetime at 15 minutes,
// logs at warning level and runs its notification program.
#include <catch2/catch.hpp>

#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "tests/support.h"

using namespace jead::test;

namespace {

std::string break_glass_role(const std::filesystem::path& marker, const std::filesystem::path& notified,
                             bool required, const std::string& notify_program)
{
	std::string role = "break_glass = true\n";
	role += "notify = [\"" + notify_program + "\", \"--marker\", \"" + notified.string() +
	        "\", \"--\", \"{event}\", \"{role}\", \"{key_id}\", \"{client}\"]\n";
	role += required ? "notify_required = true\n" : "";
	return role + test_role(marker);
}

}  // namespace

TEST_CASE("break-glass role caps lifetime and notifies", "[integration]")
{
	TempDir tmp;
	const auto marker = tmp.path() / "marker";
	const auto notified = tmp.path() / "notified";
	JeadServer server(tmp.path(), {{{"emergency", break_glass_role(marker, notified, false, JEAD_TEST_VERB_BINARY)}},
	                               {{"emergency", {"ops"}}},
	                               ""});
	const auto key = tmp.path() / "user";
	make_key(key);

	CertSpec long_spec;
	long_spec.identity = "too-long";
	long_spec.validity = "-1m:+30m";
	const auto long_cert = sign_key(server.ca(), key, long_spec);
	const auto refused = server.ssh("emergency", key, long_cert, {"count", "1"});
	CHECK(refused.exit_status == 255);
	CHECK(server.log().find("the limit of break-glass role \"emergency\"") != std::string::npos);

	CertSpec spec;
	spec.identity = "on-call-alice";
	spec.validity = "-1m:+10m";
	const auto cert = sign_key(server.ca(), key, spec);
	const auto result = server.ssh("emergency", key, cert, {"count", "1"});
	CHECK(result.exit_status == 0);
	CHECK(result.out == "args: [1]\n");

	CHECK(server.wait_for_log("break-glass session="));
	CHECK(server.log().find("warning break-glass session=") != std::string::npos);
	// The end notification runs after the session; wait for its marker.
	for (int attempt = 0; attempt < 100 && read_text(notified).find("ran\nran\n") == std::string::npos; ++attempt)
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
	CHECK(read_text(notified) == "ran\nran\n");

	// The transcript marks the session, and jea-replay can list only such
	// sessions.
	const auto files = server.transcripts();
	REQUIRE(!files.empty());
	CHECK_THAT(read_text(files.back()), Catch::Contains("\"break_glass\":true"));
	const auto listed = run_program({JEA_REPLAY_BINARY, "list", "--break-glass", files.back().parent_path().string()});
	CHECK(listed.exit_status == 0);
	CHECK_THAT(listed.out, Catch::Contains("emergency (break-glass)"));
}

TEST_CASE("break-glass required notification failure refuses", "[integration]")
{
	TempDir tmp;
	const auto marker = tmp.path() / "marker";
	const auto notified = tmp.path() / "notified";
	JeadServer server(tmp.path(), {{{"emergency", break_glass_role(marker, notified, true, "/usr/bin/false")}},
	                               {{"emergency", {"ops"}}},
	                               ""});
	const auto key = tmp.path() / "user";
	make_key(key);
	CertSpec spec;
	spec.validity = "-1m:+10m";
	const auto cert = sign_key(server.ca(), key, spec);

	const auto result = server.ssh("emergency", key, cert, {"count", "1"});

	CHECK(result.exit_status == 70);
	CHECK(result.err.find("the break-glass notification failed") != std::string::npos);
	CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("break-glass required notification does not stall others", "[integration]")
{
	TempDir tmp;
	const auto marker = tmp.path() / "marker";
	const auto notified = tmp.path() / "notified";
	const auto gate = tmp.path() / "gate";
	// The notification waits until a verb of another session has run and
	// created `gate`. A server that blocked while the notification ran
	// could not run that verb, and would refuse the break-glass session
	// when the notification timed out.
	std::string emergency = "break_glass = true\nnotify_required = true\n";
	emergency += "notify = [\"" + std::string(JEAD_TEST_VERB_BINARY) + "\", \"--wait-for\", \"" + gate.string() +
	             "\", \"--marker\", \"" + notified.string() + "\", \"--\", \"{event}\"]\n";
	emergency += test_role(marker);
	JeadServer server(tmp.path(), {{{"emergency", emergency}, {"web-ops", test_role(gate)}},
	                               {{"emergency", {"ops"}}, {"web-ops", {"ops"}}},
	                               ""});
	const auto key = tmp.path() / "user";
	make_key(key);
	CertSpec spec;
	spec.validity = "-1m:+10m";
	const auto cert = sign_key(server.ca(), key, spec);

	auto waiting = std::async(std::launch::async,
	                          [&] { return server.ssh("emergency", key, cert, {"count", "2"}); });
	REQUIRE(server.wait_for_log("session started for role emergency"));
	CHECK_FALSE(std::filesystem::exists(marker));

	const auto other = server.ssh("web-ops", key, cert, {"count", "1"});
	CHECK(other.exit_status == 0);
	CHECK(std::filesystem::exists(gate));

	const auto result = waiting.get();
	CHECK(result.exit_status == 0);
	CHECK(result.out == "args: [2]\n");
	CHECK(read_text(notified).rfind("ran\n", 0) == 0);
}
