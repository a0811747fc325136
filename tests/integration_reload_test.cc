// End to end: SIGHUP reloads the policy for new commands in live sessions,
// and a broken policy is rejected while the old one stays in force.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <string>

#include "tests/support.h"

using namespace jead::test;

namespace {

const char* const kExtraVerb =
	"\n[[verb]]\nname = \"extra\"\ndescription = \"Added by a reload\"\n"
	"command = [\"/usr/bin/echo\", \"extra ran\"]\n";

}  // namespace

TEST_CASE("reload applies to live sessions", "[integration]")
{
	TempDir tmp;
	const auto marker = tmp.path() / "marker";
	JeadServer server(tmp.path(), {{{"web-ops", test_role(marker)}}, {{"web-ops", {"ops"}}}, ""});
	const auto key = tmp.path() / "user";
	make_key(key);
	const auto cert = sign_key(server.ca(), key, {});

	PtySession shell(ssh_argv(server, "web-ops", key, cert, {"-tt"}, {}));
	REQUIRE(shell.wait_for("web-ops ["));
	shell.send("extra\r");
	CHECK(shell.wait_for("jead: denied: "));

	write_text(tmp.path() / "roles" / "web-ops.toml", test_role(marker) + kExtraVerb);
	server.send_signal(SIGHUP);
	REQUIRE(server.wait_for_log("reloaded: policy"));

	shell.mark();
	shell.send("extra\r");
	CHECK(shell.wait_for("extra ran"));
	shell.send("exit\r");
	CHECK(shell.wait_exit() == 0);

	const auto fresh = server.ssh("web-ops", key, cert, {"extra"});
	CHECK(fresh.out == "extra ran\n");
}

TEST_CASE("reload rejects a broken policy", "[integration]")
{
	TempDir tmp;
	const auto marker = tmp.path() / "marker";
	JeadServer server(tmp.path(), {{{"web-ops", test_role(marker)}}, {{"web-ops", {"ops"}}}, ""});
	const auto key = tmp.path() / "user";
	make_key(key);
	const auto cert = sign_key(server.ca(), key, {});

	write_text(tmp.path() / "roles" / "web-ops.toml", "this is [not toml\n");
	server.send_signal(SIGHUP);
	REQUIRE(server.wait_for_log("reload failed, keeping policy"));
	CHECK(server.log().find("web-ops.toml:1:") != std::string::npos);

	const auto result = server.ssh("web-ops", key, cert, {"count", "2"});
	CHECK(result.exit_status == 0);
	CHECK(result.out == "args: [2]\n");
}

TEST_CASE("sigterm ends sessions as server shutdown", "[integration]")
{
	TempDir tmp;
	JeadServer server(tmp.path(), {{{"web-ops", test_role(tmp.path() / "marker")}}, {{"web-ops", {"ops"}}}, ""});
	const auto key = tmp.path() / "user";
	make_key(key);
	const auto cert = sign_key(server.ca(), key, {});

	// One session with a pty and one without.
	PtySession session(ssh_argv(server, "web-ops", key, cert, {"-tt"}, {"hold", "30"}));
	REQUIRE(server.wait_for_log("allowed \"hold 30\""));
	PtySession plain(ssh_argv(server, "web-ops", key, cert, {"-T"}, {"hold", "31"}));
	REQUIRE(server.wait_for_log("allowed \"hold 31\""));
	server.send_signal(SIGTERM);

	CHECK(session.wait_for("jead: the server is shutting down; the session is over", std::chrono::seconds(15)));
	CHECK(plain.wait_for("jead: the server is shutting down; the session is over", std::chrono::seconds(15)));
	// jead waits for the clients to close their channels before it
	// disconnects, so ssh exits with the status jead sent, not 255.
	CHECK(session.wait_exit(std::chrono::seconds(15)) == 81);
	CHECK(plain.wait_exit(std::chrono::seconds(15)) == 81);
	const auto transcripts = server.transcripts();
	CHECK(transcripts.size() == 2);
	for (const auto& transcript : transcripts) {
		const auto text = read_text(transcript);
		INFO("transcript " << transcript.filename().string());
		CHECK(text.find("\"type\":\"process_exit\"") != std::string::npos);
		CHECK(text.find("\"reason\":\"server-shutdown\"") != std::string::npos);
	}
}
