// End to end: a verb's max_concurrent and max_per_hour limits.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "tests/support.h"

using namespace jead::test;

namespace {

const char* const kLimitedRole = R"(description = "Verbs with limits"

[[verb]]
name = "backup"
description = "Hold the backup slot for S seconds"
command = ["/usr/bin/sleep", "{seconds}"]
args = [ { name = "seconds", type = "int", min = 1, max = 30 } ]
max_concurrent = 1

[[verb]]
name = "rotate"
description = "Rotate keys, at most twice an hour"
command = ["/usr/bin/echo", "rotated"]
max_per_hour = 2

[[verb]]
name = "flood"
description = "Print far more than max_output allows"
command = ["/usr/bin/seq", "1", "1000000"]
max_output = "1K"
)";

}  // namespace

TEST_CASE("verb limits deny with a reason", "[integration]")
{
	TempDir tmp;
	JeadServer server(tmp.path(), {{{"ops", kLimitedRole}}, {{"ops", {"ops"}}}, ""});
	const auto key = tmp.path() / "user";
	make_key(key);
	const auto cert = sign_key(server.ca(), key, {});

	SECTION("max_concurrent")
	{
		PtySession first(ssh_argv(server, "ops", key, cert, {"-tt"}, {"backup", "4"}));
		REQUIRE(server.wait_for_log("allowed \"backup 4\""));

		const auto second = server.ssh("ops", key, cert, {"backup", "1"});
		CHECK(second.exit_status == 77);
		CHECK(second.err.find("is already running 1 time(s) on this host (max_concurrent 1)") != std::string::npos);

		CHECK(first.wait_exit(std::chrono::seconds(15)) == 0);
		const auto third = server.ssh("ops", key, cert, {"backup", "1"});
		CHECK(third.exit_status == 0);
	}

	SECTION("max_output is exact")
	{
		for (int run = 0; run < 3; ++run) {
			const auto result = server.ssh("ops", key, cert, {"flood"});
			CHECK(result.exit_status == 125);
			CHECK(result.out.size() == 1024);
			CHECK(result.err.find("output exceeded the verb's limit of 1024 bytes") != std::string::npos);
		}
	}

	SECTION("max_per_hour")
	{
		CHECK(server.ssh("ops", key, cert, {"rotate"}).out == "rotated\n");
		CHECK(server.ssh("ops", key, cert, {"rotate"}).out == "rotated\n");
		const auto third = server.ssh("ops", key, cert, {"rotate"});
		CHECK(third.exit_status == 77);
		CHECK(third.err.find("was started 2 times by principal \"ops\" in the last hour (max_per_hour 2)") !=
		      std::string::npos);
	}
}
