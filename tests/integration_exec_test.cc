// End to end: the stock ssh client with ssh-keygen-minted certificates
// against a real jead on a loopback port, running real programs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support.h"

using namespace jead::test;

namespace {

constexpr int kExitDenied = 77;
constexpr int kExitSshFailed = 255;

struct ExecFixture {
	TempDir tmp;
	std::filesystem::path marker = tmp.path() / "marker";
	JeadServer server{tmp.path(), {{{"web-ops", test_role(tmp.path() / "marker")}}, {{"web-ops", {"ops"}}}, ""}};
	std::filesystem::path key = tmp.path() / "user";
	std::filesystem::path cert;

	ExecFixture()
	{
		make_key(key);
		cert = sign_key(server.ca(), key, {});
	}

	ProcessResult run(const std::vector<std::string>& command) { return server.ssh("web-ops", key, cert, command); }

	bool marker_exists() const { return std::filesystem::exists(marker); }

	std::string last_transcript() const
	{
		const auto files = server.transcripts();
		REQUIRE(!files.empty());
		return read_text(files.back());
	}
};

}  // namespace

TEST_CASE_METHOD(ExecFixture, "exec allowed verb relays output and status", "[integration]")
{
	const auto result = run({"status", "nginx.service"});

	CHECK(result.out == "args: [nginx.service]\n");
	CHECK(result.err == "status warning\n");
	CHECK(result.exit_status == 3);
	CHECK(marker_exists());
}

TEST_CASE_METHOD(ExecFixture, "exec transcript holds header decision output exit", "[integration]")
{
	const auto result = run({"count", "7"});
	REQUIRE(result.exit_status == 0);

	const auto text = last_transcript();
	CHECK(text.find("\"type\":\"header\"") != std::string::npos);
	CHECK(text.find("\"key_id\":\"test-user\"") != std::string::npos);
	CHECK(text.find("\"role\":\"web-ops\"") != std::string::npos);
	CHECK(text.find("\"type\":\"input\"") != std::string::npos);
	CHECK(text.find("\"type\":\"decision\"") != std::string::npos);
	CHECK(text.find("\"allowed\":true") != std::string::npos);
	CHECK(text.find(JEAD_TEST_VERB_BINARY) != std::string::npos);
	CHECK(text.find("args: [7]") != std::string::npos);
	CHECK(text.find("\"type\":\"process_exit\"") != std::string::npos);
	CHECK(text.find("\"type\":\"end\"") != std::string::npos);
	CHECK(text.find("\"reason\":\"exit\"") != std::string::npos);
}

TEST_CASE_METHOD(ExecFixture, "exec denied lines run nothing", "[integration]")
{
	const std::vector<std::vector<std::string>> denied = {
		{"reboot"},                                  // unknown verb
		{"status", "sshd.service"},                  // outside the enum
		{"count", "11"},                             // out of range
		{"count", "0"},
		{"count", "0x5"},
		{"note", "bad/slash"},                       // fails the string pattern
		{"status", "nginx.service", "extra"},        // extra argument
		{"status", "nginx.service;", "id"},
		{"status nginx.service | id"},
		{"note", "\"$(id)\""},
		{"note", "`id`"},
		{"status", "nginx.service", "&&", "id"},
		{"status", "nginx.service", ">", "/tmp/x"},
	};
	for (const auto& command : denied) {
		std::string line;
		for (const auto& word : command)
			line += word + " ";
		INFO("command: " << line);
		const auto result = run(command);
		CHECK(result.exit_status == kExitDenied);
		CHECK(result.out.empty());
		CHECK(result.err.rfind("jead: denied: ", 0) == 0);
		CHECK(result.err.find('\n') == result.err.size() - 1);
		CHECK_FALSE(marker_exists());
	}

	// Each denial left a transcript with the decision and its reason.
	const auto files = server.transcripts();
	CHECK(files.size() == denied.size());
	for (const auto& file : files) {
		const auto text = read_text(file);
		INFO(file);
		CHECK(text.find("\"allowed\":false") != std::string::npos);
		CHECK(text.find("\"type\":\"end\"") != std::string::npos);
		CHECK(text.find("\"type\":\"process_start\"") == std::string::npos);
	}
}

TEST_CASE_METHOD(ExecFixture, "exec environment is jead's fixed set", "[integration]")
{
	const auto result = server.ssh("web-ops", key, cert, {"env"},
	                               {"-o", "SetEnv=LD_PRELOAD=/tmp/x.so PAGER=/bin/sh", "-o", "SendEnv=LANG"});
	REQUIRE(result.exit_status == 0);

	CHECK(result.out.find("env: LD_PRELOAD") == std::string::npos);
	CHECK(result.out.find("env: PAGER=cat\n") != std::string::npos);
	CHECK(result.out.find("env: LANG=C.UTF-8\n") != std::string::npos);
	CHECK(result.out.find("env: SSH_") == std::string::npos);
	CHECK(result.out.find("env: HOME") == std::string::npos);
}

TEST_CASE_METHOD(ExecFixture, "exec verb past its timeout is stopped", "[integration]")
{
	const auto result = run({"nap"});

	CHECK(result.exit_status == 124);
	CHECK(result.err.find("jead: timed out after 2 s") != std::string::npos);
	const auto text = last_transcript();
	CHECK(text.find("timed out after 2 s") != std::string::npos);
}

TEST_CASE("login refusals run nothing", "[integration]")
{
	TempDir tmp;
	const auto marker = tmp.path() / "marker";
	JeadServer server(tmp.path(), {{{"web-ops", test_role(marker)}, {"backup", test_role(marker)}},
	                               {{"web-ops", {"ops"}}, {"backup", {"svc-backup"}}},
	                               ""});
	const auto other_ca = tmp.path() / "other-ca";
	make_key(other_ca);

	struct Case {
		std::string name;
		std::filesystem::path ca;       // empty: no certificate at all
		CertSpec spec;
		std::string role;
		std::string log_reason;
	};
	const auto with = [](std::string identity, std::string validity) {
		CertSpec spec;
		spec.identity = std::move(identity);
		spec.validity = std::move(validity);
		return spec;
	};
	const std::vector<Case> cases = {
		{"certificate from another CA", other_ca, with("other-ca-user", "-1m:+30m"), "web-ops", "untrusted CA"},
		{"expired certificate", server.ca(), with("expired-user", "20200101:20200102"), "web-ops", "expired"},
		{"lifetime over the maximum", server.ca(), with("long-user", "-1m:+2h"), "web-ops", "lifetime"},
		{"principal not granted the role", server.ca(), with("web-user", "-1m:+30m"), "backup",
		 "is granted role \"backup\""},
		{"plain key without certificate", {}, {}, "web-ops", "plain public keys are not accepted"},
	};

	int index = 0;
	for (const auto& c : cases) {
		INFO(c.name);
		const auto key = tmp.path() / ("user" + std::to_string(index++));
		make_key(key);
		const auto cert = c.ca.empty() ? std::filesystem::path() : sign_key(c.ca, key, c.spec);

		const auto result = server.ssh(c.role, key, cert, {"status", "nginx.service"});

		CHECK(result.exit_status == kExitSshFailed);
		CHECK(result.err.find("Permission denied") != std::string::npos);
		CHECK(result.out.empty());
		CHECK_FALSE(std::filesystem::exists(marker));
		CHECK(server.log().find(c.log_reason) != std::string::npos);
	}
	CHECK(server.transcripts().empty());
}

TEST_CASE("exec path bound to descriptor", "[integration][path-descriptor]")
{
	TempDir tmp;
	const auto logs = std::filesystem::canonical(tmp.path()) / "logs";
	std::filesystem::create_directories(logs);
	write_text(logs / "app.log", "app line\n");
	write_text(tmp.path() / "secret", "secret line\n");
	std::filesystem::create_symlink(tmp.path() / "secret", logs / "escape.log");
	const std::string role = "description = \"Read logs\"\n[[verb]]\nname = \"show\"\ndescription = \"Print a log\"\n"
	                         "command = [\"/usr/bin/cat\", \"--\", \"{file}\"]\n"
	                         "args = [ { name = \"file\", type = \"path\", prefixes = [\"" +
	                         logs.string() + "\"], kind = \"file\", bind = \"descriptor\" } ]\n";
	JeadServer server{tmp.path(), {{{"logs", role}}, {{"logs", {"ops"}}}, ""}};
	const auto key = tmp.path() / "user";
	make_key(key);
	const auto cert = sign_key(server.ca(), key, {});

	const auto shown = server.ssh("logs", key, cert, {"show", (logs / "app.log").string()});
	CHECK(shown.out == "app line\n");
	CHECK(shown.exit_status == 0);
	// The transcript's decision keeps the checked path, not the descriptor.
	const auto files = server.transcripts();
	REQUIRE(!files.empty());
	CHECK_THAT(read_text(files.back()), Catch::Contains((logs / "app.log").string()));

	const auto escaped = server.ssh("logs", key, cert, {"show", (logs / "escape.log").string()});
	CHECK(escaped.exit_status == kExitDenied);
	CHECK_THAT(escaped.err, Catch::Contains("which is not under any of"));
	CHECK(escaped.out.empty());
}

TEST_CASE_METHOD(ExecFixture, "exec help lists the verbs", "[integration]")
{
	const auto listed = run({"help"});
	CHECK(listed.exit_status == 0);
	CHECK_THAT(listed.out, Catch::Contains("count"));
	CHECK_THAT(listed.out, Catch::Contains("status"));
	CHECK(listed.out.find("exit") == std::string::npos);

	const auto one = run({"help", "count"});
	CHECK(one.exit_status == 0);
	CHECK_THAT(one.out, Catch::Contains("count N"));

	const auto unknown = run({"help", "reboot"});
	CHECK(unknown.exit_status == 1);
	CHECK_THAT(unknown.out, Catch::Contains("help: no verb named \"reboot\""));

	// exit is a shell built-in only: over exec it is an unknown verb.
	const auto exited = run({"exit"});
	CHECK(exited.exit_status == kExitDenied);
	CHECK_FALSE(marker_exists());
}
