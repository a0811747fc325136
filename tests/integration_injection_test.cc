// End to end: command lines that restricted shells have been talked around
// with, sent through the stock ssh client. Each must be denied with nothing
// run (a marker file proves it) and a decision record in the transcript.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"

using namespace jead::test;

namespace {

std::string injection_role(const std::filesystem::path& marker, const std::filesystem::path& logs)
{
	const std::string verb = JEAD_TEST_VERB_BINARY;
	const std::string m = marker.string();
	const auto run = [&](const std::string& placeholder) {
		return "command = [\"" + verb + "\", \"--marker\", \"" + m + "\", \"--\", \"" + placeholder + "\"]\n";
	};
	std::string role = "description = \"Typed verbs for injection tests\"\n";
	role += "\n[[verb]]\nname = \"note\"\n" + run("{text}") +
	        "args = [ { name = \"text\", type = \"string\", pattern = \"[a-zA-Z0-9 ._-]+\", max_length = 64 } ]\n";
	role += "\n[[verb]]\nname = \"status\"\n" + run("{unit}") +
	        "args = [ { name = \"unit\", type = \"enum\", values = [\"nginx.service\"] } ]\n";
	role += "\n[[verb]]\nname = \"git-log\"\n" + run("{rev}") +
	        "args = [ { name = \"rev\", type = \"string\", pattern = \"[a-z0-9]+(-[a-z0-9]+)*\", max_length = 40 } ]\n";
	role += "\n[[verb]]\nname = \"ping\"\n" + run("{host}") +
	        "args = [ { name = \"host\", type = \"hostname\" } ]\n";
	role += "\n[[verb]]\nname = \"tail\"\n" + run("{file}") +
	        "args = [ { name = \"file\", type = \"path\", prefixes = [\"" + logs.string() + "\"], kind = \"file\" } ]\n";
	role += "\n[[verb]]\nname = \"count\"\n" + run("{n}") +
	        "args = [ { name = \"n\", type = \"int\", min = 1, max = 100 } ]\n";
	return role;
}

struct InjectionFixture {
	TempDir tmp;
	std::filesystem::path marker = tmp.path() / "marker";
	std::filesystem::path logs = tmp.path() / "var-log-app";
	JeadServer server;
	std::filesystem::path key = tmp.path() / "user";
	std::filesystem::path cert;

	InjectionFixture()
		: server(tmp.path(), {{{"ops", injection_role(tmp.path() / "marker", tmp.path() / "var-log-app")}},
		                      {{"ops", {"ops"}}},
		                      ""})
	{
		std::filesystem::create_directories(logs);
		std::filesystem::create_directories(tmp.path() / "var-log-app-old");
		write_text(logs / "a.log", "a\n");
		write_text(logs / "x.log", "x\n");
		write_text(tmp.path() / "var-log-app-old" / "x.log", "old\n");
		make_key(key);
		cert = sign_key(server.ca(), key, {});
	}

	int runs() const
	{
		const auto text = read_text(marker);
		return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
	}
};

}  // namespace

TEST_CASE_METHOD(InjectionFixture, "injection lines are denied end to end", "[integration]")
{
	const std::string L = logs.string();
	const std::vector<std::string> lines = {
		"note \"$(id)\"", "note '$(id)'", "note ${IFS}id", "note ~", "status nginx.service > /tmp/x",
		"status nginx.service 2>&1", "status nginx.service &", "status nginx.service #x", "du <(id)",
		"note a\nid", "note a\rid", "note a\x1b[2Jb", "note a\x7f" "b", "note trailing\\", "note 'unclosed",
		"git-log --help", "git-log -p", "ping -oProxyCommand=id", "ping a..b", "ping " + std::string(64, 'a') + ".com",
		"tail " + L + "/../../../etc/shadow", "tail " + L + "-old/x.log", "tail " + L.substr(1) + "/x.log",
		"tail " + L + "/*", "tail '" + L + "/a.log /etc/shadow'", "count -1", "count 18446744073709551616",
		"count 0x10", "count 010", "count +5", "count ' 5'", "count 5abc", "count 1e3", "count \xef\xbc\x95",
		"count ''", "count 0", "count 101",
	};
	for (const auto& line : lines) {
		INFO("line: " << line);
		const auto result = server.ssh("ops", key, cert, {line});
		CHECK(result.exit_status == 77);
		CHECK(result.err.rfind("jead: denied: ", 0) == 0);
		CHECK(result.out.empty());
	}
	CHECK(runs() == 0);

	// Every line left a transcript whose decision denies it.
	const auto files = server.transcripts();
	CHECK(files.size() == lines.size());
	for (const auto& file : files) {
		INFO(file);
		const auto text = read_text(file);
		CHECK(text.find("\"allowed\":false") != std::string::npos);
		CHECK(text.find("\"type\":\"process_start\"") == std::string::npos);
	}

	// The edges that are allowed still run, once each.
	for (const std::string& line : std::vector<std::string>{"count 1", "count 100", "tail " + L + "//x.log", "git-log abc-def"}) {
		INFO("line: " << line);
		CHECK(server.ssh("ops", key, cert, {line}).exit_status == 0);
	}
	CHECK(runs() == 4);
}

TEST_CASE_METHOD(InjectionFixture, "interactive session alternates denied and allowed", "[integration]")
{
	PtySession shell(ssh_argv(server, "ops", key, cert, {"-tt"}, {}));
	REQUIRE(shell.wait_for("ops ["));
	for (int i = 0; i < 50; ++i) {
		INFO("line " << i);
		shell.mark();
		if (i % 2 == 0) {
			shell.send("count " + std::to_string(i + 1) + "\r");
			CHECK(shell.wait_for("args: [" + std::to_string(i + 1) + "]"));
		} else {
			shell.send("note $(touch " + marker.string() + ")\r");
			CHECK(shell.wait_for("jead: denied: "));
		}
		CHECK(runs() == i / 2 + 1);
	}
	shell.send("exit\r");
	CHECK(shell.wait_exit() == 77);   // the last command was denied

	const auto text = read_text(server.transcripts().back());
	std::size_t allowed = 0, denied = 0;
	for (std::size_t at = text.find("\"allowed\":true"); at != std::string::npos; at = text.find("\"allowed\":true", at + 1))
		++allowed;
	for (std::size_t at = text.find("\"allowed\":false"); at != std::string::npos; at = text.find("\"allowed\":false", at + 1))
		++denied;
	CHECK(allowed == 25);
	CHECK(denied == 25);
}
