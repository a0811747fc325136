// End to end: log lines stay one per event, and valid JSON in the JSON
// format, whatever a certificate's key ID holds.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>

#include "tests/support.h"

using namespace jead::test;

namespace {

// A key ID that tries to forge a log line and drive a terminal. jead
// refuses certificates with control bytes in the key ID, so it only ever
// reaches the log in a refusal line.
const std::string kHostileKeyId = "evil\n2026-01-01T00:00:00.000 info login accepted\n{\"level\":\"info\"}\x1b]0;t\x07\r";
// Printable but awkward: quotes, braces and U+2028 LINE SEPARATOR. It logs in.
const std::string kAwkwardKeyId = "odd\" level=info {\"message\":\"x\"} \xe2\x80\xa8 end";

}  // namespace

TEST_CASE("json log lines survive hostile key IDs", "[integration]")
{
	TempDir tmp;
	const auto marker = tmp.path() / "marker";
	JeadServer server(tmp.path(), {{{"web-ops", test_role(marker)}}, {{"web-ops", {"ops"}}}, "log_format = \"json\"\n"});
	const auto hostile_key = tmp.path() / "hostile";
	make_key(hostile_key);
	CertSpec hostile;
	hostile.identity = kHostileKeyId;
	const auto hostile_cert = sign_key(server.ca(), hostile_key, hostile);
	const auto awkward_key = tmp.path() / "awkward";
	make_key(awkward_key);
	CertSpec awkward;
	awkward.identity = kAwkwardKeyId;
	const auto awkward_cert = sign_key(server.ca(), awkward_key, awkward);

	REQUIRE(server.ssh("web-ops", hostile_key, hostile_cert, {"count", "2"}).exit_status == 255);
	REQUIRE(server.ssh("web-ops", awkward_key, awkward_cert, {"count", "2"}).exit_status == 0);
	REQUIRE(server.wait_for_log("login refused"));

	std::istringstream lines(server.log());
	std::string line;
	int parsed = 0;
	int hostile_mentions = 0;
	int awkward_accepted = 0;
	while (std::getline(lines, line)) {
		INFO("line: " << line);
		const auto record = nlohmann::json::parse(line);   // throws, and fails the test, if invalid
		REQUIRE(record.is_object());
		CHECK(record.contains("time"));
		CHECK(record.contains("level"));
		REQUIRE(record["message"].is_string());
		const auto message = record["message"].get<std::string>();
		CHECK(message.find('\n') == std::string::npos);
		CHECK(message.find('\x1b') == std::string::npos);
		hostile_mentions += message.find("key_id=\"evil\\n") != std::string::npos ? 1 : 0;
		awkward_accepted += message.find("login accepted") != std::string::npos &&
		                            message.find("key_id=\"odd\\\" level=info") != std::string::npos
		                        ? 1
		                        : 0;
		++parsed;
	}
	CHECK(parsed >= 3);
	CHECK(hostile_mentions >= 1);
	CHECK(awkward_accepted == 1);
}

TEST_CASE("text log keeps a hostile key ID on one line", "[integration]")
{
	TempDir tmp;
	JeadServer server(tmp.path(), {{{"web-ops", test_role(tmp.path() / "marker")}}, {{"web-ops", {"ops"}}}, ""});
	const auto key = tmp.path() / "user";
	make_key(key);
	CertSpec spec;
	spec.identity = kHostileKeyId;
	const auto cert = sign_key(server.ca(), key, spec);

	REQUIRE(server.ssh("web-ops", key, cert, {"count", "2"}).exit_status == 255);
	REQUIRE(server.wait_for_log("login refused"));

	const auto log = server.log();
	CHECK(log.find("key_id=\"evil\\n2026-01-01T00:00:00.000 info login accepted\\n{\\\"level\\\":\\\"info\\\"}\\x1b]0;t\\x07\\r\"") !=
	      std::string::npos);
	CHECK(log.find('\x1b') == std::string::npos);
	CHECK(log.find("\n2026-01-01T00:00:00.000 info login accepted") == std::string::npos);
}
