// `jead explain`: the printed steps for allowed and denied lines, with and
// without a certificate, compared in full, and the binary's exit statuses.
// Certificates have a fixed validity window in 2030 and the decision time
// is given, so only key fingerprints, the temporary directory and the
// policy version vary; they are replaced before comparing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>

#include "server/explain.h"
#include "tests/support.h"

using namespace jead;
using namespace jead::test;

namespace {

constexpr const char* kRole = R"(description = "Explain tests"
working_directory = "/"

[environment]
LANG = "C.UTF-8"

[limits]
cpu_seconds = 30
open_files = 64

[[verb]]
name = "greet"
command = ["/usr/bin/echo", "{newline}", "--", "{name}", "{times}"]
args = [
  { name = "newline", type = "flag", flag = "-n" },
  { name = "name", type = "string", pattern = "[A-Za-z]+", max_length = 16 },
  { name = "times", type = "int", min = 1, max = 3, default = 1 },
]
timeout = "10s"
max_output = "4K"

[[verb]]
name = "uptime"
command = ["/usr/bin/uptime"]

[[verb]]
name = "load"
command = ["/usr/bin/top"]
interactive = true
)";

// 2030-01-01T00:30:00Z, inside the certificates' validity window.
constexpr std::int64_t kAt = 1893457800;

std::string fingerprint(const std::filesystem::path& public_key)
{
	const auto result = run_program({"ssh-keygen", "-l", "-f", public_key.string()});
	REQUIRE(result.exit_status == 0);
	std::istringstream fields(result.out);
	std::string bits, print;
	fields >> bits >> print;
	return print;
}

void replace_all(std::string& text, const std::string& from, const std::string& to)
{
	for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
		text.replace(at, from.size(), to);
}

struct ExplainFixture {
	TempDir tmp;
	std::filesystem::path dir = std::filesystem::canonical(tmp.path());
	std::filesystem::path config = dir / "jead.toml";
	std::filesystem::path user = dir / "user";

	ExplainFixture()
	{
		std::filesystem::create_directories(dir / "roles");
		std::filesystem::create_directories(dir / "transcripts");
		std::filesystem::permissions(dir / "transcripts", std::filesystem::perms::owner_all);
		make_key(dir / "ca");
		make_key(user);
		write_text(dir / "roles" / "explain.toml", kRole);
		write_text(config, "listen = \"127.0.0.1:2222\"\nhost_key = \"host_key\"\ntrusted_user_ca_keys = [\"ca.pub\"]\n"
		                   "roles_dir = \"roles\"\ntranscript_dir = \"transcripts\"\n\n[grants]\nexplain = [\"alice\"]\n");
	}

	std::filesystem::path certificate(std::vector<std::string> options = {}, const std::string& ca = "ca")
	{
		CertSpec spec;
		spec.identity = "alice@example";
		spec.principals = {"alice", "bob"};
		spec.validity = "20300101000000Z:20300101010000Z";
		spec.serial = "7";
		// "clear" drops ssh-keygen's default permit-* extensions.
		spec.options = {"clear"};
		spec.options.insert(spec.options.end(), options.begin(), options.end());
		return sign_key(dir / ca, user, spec);
	}

	ExplainRequest request(const std::string& line) const
	{
		ExplainRequest request;
		request.config_file = config;
		request.role = "explain";
		request.now = kAt;
		request.now_from_option = true;
		request.command_line = line;
		return request;
	}

	// Runs explain and returns its output with the varying parts replaced
	// and the run-as line, which depends on the user running the tests,
	// checked and removed.
	std::string run(const ExplainRequest& request, int expected_status)
	{
		std::ostringstream out;
		CHECK(explain(request, out) == expected_status);
		std::string text = out.str();

		replace_all(text, dir.string(), "DIR");
		replace_all(text, fingerprint(dir / "ca.pub"), "CA-FINGERPRINT");
		replace_all(text, fingerprint(user.string() + ".pub"), "KEY-FINGERPRINT");
		text = std::regex_replace(text, std::regex("sha256:[0-9a-f]{64}"), "sha256:VERSION");
		text = std::regex_replace(text, std::regex("note    explain runs as uid [0-9]+, [^\n]*\n"), "");
		const std::regex run_as_line("  run as             ok       [a-z_][a-z0-9_-]*: uid [0-9]+, gid [0-9]+[^\n]*\n");
		if (expected_status == kExplainAllowed)
			CHECK(std::regex_search(text, run_as_line));
		return std::regex_replace(text, run_as_line, "  run as             ok       RUN-AS\n");
	}
};

const std::string kAllowedTail = R"(  argv                        "/usr/bin/echo" "-n" "--" "Ada" "2"
  run as             ok       RUN-AS
  working directory           /
  environment                 "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                              "LANG=C.UTF-8"
                              "PAGER=cat"
                              "SYSTEMD_PAGER=cat"
                              "SYSTEMD_COLORS=0"
                              "GIT_PAGER=cat"
                              "LESSSECURE=1"
                              "TERM=dumb"
  limits                      cpu_seconds 30, open_files 64
  timeout                     10s, max_output 4K

result  allowed; nothing was run
)";

}  // namespace

TEST_CASE_METHOD(ExplainFixture, "explain allowed line without certificate", "[explain]")
{
	const std::string text = run(request("greet -n 'Ada' 2"), kExplainAllowed);
	CHECK(text == R"(policy  DIR/jead.toml (sha256:VERSION)
time    2030-01-01T00:30:00Z (--at)
client  127.0.0.1 (--from)

login as "explain"
  role               ok       explain (DIR/roles/explain.toml)
  certificate        skipped  no --cert: certificate, revocation, source address, principal grant, force-command and jead-verbs@jead are not checked

command "greet -n 'Ada' 2"
  length             ok       16 bytes, max_command_length 8192
  revocation         skipped  no --cert
  force-command      skipped  no --cert
  words                       column 1: "greet"
                              column 7: "-n"
                              column 10: "Ada"
                              column 16: "2"
  verb               ok       greet (DIR/roles/explain.toml:11:1), usage: greet [-n] NAME [TIMES]
  argument           ok       newline (flag) = "-n"
  argument           ok       name (string) = "Ada"
  argument           ok       times (int) = "2"
  decide             allowed  every word fits verb "greet"
  jead-verbs@jead    skipped  no --cert
)" + kAllowedTail);
}

TEST_CASE_METHOD(ExplainFixture, "explain interactive verb names terminal", "[explain]")
{
	const std::string text = run(request("load"), kExplainAllowed);
	CHECK(text.find("  terminal                    interactive: with a client pty (ssh -t, or the shell) the program "
	                "gets a pseudo-terminal of its own, and TERM is the client's when it is a plain name; without a "
	                "pty it runs on pipes\n  limits") != std::string::npos);

	const std::string plain = run(request("uptime"), kExplainAllowed);
	CHECK(plain.find("  terminal ") == std::string::npos);
}

TEST_CASE_METHOD(ExplainFixture, "explain denied line without certificate", "[explain]")
{
	const std::string text = run(request("greet Ada 4"), kExplainDenied);
	CHECK(text == R"(policy  DIR/jead.toml (sha256:VERSION)
time    2030-01-01T00:30:00Z (--at)
client  127.0.0.1 (--from)

login as "explain"
  role               ok       explain (DIR/roles/explain.toml)
  certificate        skipped  no --cert: certificate, revocation, source address, principal grant, force-command and jead-verbs@jead are not checked

command "greet Ada 4"
  length             ok       11 bytes, max_command_length 8192
  revocation         skipped  no --cert
  force-command      skipped  no --cert
  words                       column 1: "greet"
                              column 7: "Ada"
                              column 11: "4"
  verb               ok       greet (DIR/roles/explain.toml:11:1), usage: greet [-n] NAME [TIMES]
  decide             denied   argument "times": "4" is out of range 1..3
                              greet Ada 4
                                        ^

result  denied: argument "times": "4" is out of range 1..3
)");
}

TEST_CASE_METHOD(ExplainFixture, "explain allowed line with certificate", "[explain]")
{
	auto req = request("greet -n 'Ada' 2");
	req.certificate_file = certificate({"extension:jead-verbs@jead=greet", "source-address=127.0.0.1,10.0.0.0/8"});
	const std::string text = run(req, kExplainAllowed);
	CHECK(text == R"(policy  DIR/jead.toml (sha256:VERSION)
time    2030-01-01T00:30:00Z (--at)
client  127.0.0.1 (--from)

login as "explain"
  role               ok       explain (DIR/roles/explain.toml)
  certificate                 DIR/user-cert.pub
  parse              ok       ssh-ed25519-cert-v01@openssh.com, key ID "alice@example", serial 7
  key                         ssh-ed25519 KEY-FINGERPRINT
  type                        user certificate
  principals                  "alice", "bob"
  CA                 ok       CA-FINGERPRINT is trusted (DIR/ca.pub)
  signature          ok       ssh-ed25519 signature verifies
  validity                    from 2030-01-01T00:00:00Z to 2030-01-01T01:00:00Z, clock skew 30s
  lifetime                    1h; max_cert_lifetime 8h (config)
  critical options            source-address="127.0.0.1,10.0.0.0/8"
  extensions                  jead-verbs@jead="greet"
  checks             ok       CA, signature, type, validity at 2030-01-01T00:30:00Z, lifetime, principals and critical options
  revocation         ok       no revocation lists configured (revoked_keys)
  source address     ok       127.0.0.1 is in "127.0.0.1,10.0.0.0/8"
  principal grant    ok       role "explain" is granted to "alice"
  login              allowed  authorize_login accepts key ID "alice@example" as role "explain"

command "greet -n 'Ada' 2"
  length             ok       16 bytes, max_command_length 8192
  revocation         ok       checked again before each command, as at login
  force-command      ok       the certificate has no force-command option
  words                       column 1: "greet"
                              column 7: "-n"
                              column 10: "Ada"
                              column 16: "2"
  verb               ok       greet (DIR/roles/explain.toml:11:1), usage: greet [-n] NAME [TIMES]
  argument           ok       newline (flag) = "-n"
  argument           ok       name (string) = "Ada"
  argument           ok       times (int) = "2"
  decide             allowed  every word fits verb "greet"
  jead-verbs@jead    ok       the extension lists "greet"
)" + kAllowedTail);
}

TEST_CASE_METHOD(ExplainFixture, "explain verb outside certificate extension", "[explain]")
{
	auto req = request("uptime");
	req.certificate_file = certificate({"extension:jead-verbs@jead=greet"});
	const std::string text = run(req, kExplainDenied);
	CHECK(text.find("  jead-verbs@jead    denied   this certificate's jead-verbs@jead extension does not list verb "
	                "\"uptime\"\n\nresult  denied: this certificate's jead-verbs@jead extension does not list verb "
	                "\"uptime\"\n") != std::string::npos);
}

TEST_CASE_METHOD(ExplainFixture, "explain login denied by address and CA", "[explain]")
{
	make_key(dir / "other-ca");
	auto req = request("uptime");
	req.certificate_file = certificate({"source-address=10.0.0.0/8"}, "other-ca");
	req.client_ip = "192.0.2.1";
	const std::string text = run(req, kExplainDenied);
	const std::string other_ca = fingerprint(dir / "other-ca.pub");

	CHECK(text.find("  CA                 denied   " + other_ca + " is not among trusted_user_ca_keys\n") !=
	      std::string::npos);
	CHECK(text.find("  signature          ok       ssh-ed25519 signature verifies\n") != std::string::npos);
	CHECK(text.find("  checks             denied   certificate signed by an untrusted CA " + other_ca) !=
	      std::string::npos);
	CHECK(text.find("  source address     denied   192.0.2.1 is not in \"10.0.0.0/8\"\n") != std::string::npos);
	CHECK(text.find("  login              denied   certificate signed by an untrusted CA") != std::string::npos);
	CHECK(text.find("\nresult  denied at login: certificate signed by an untrusted CA " + other_ca) !=
	      std::string::npos);
	// The command is still explained, for information.
	CHECK(text.find("  decide             allowed  every word fits verb \"uptime\"\n") != std::string::npos);
}

TEST_CASE_METHOD(ExplainFixture, "explain expired certificate and force-command", "[explain]")
{
	auto req = request("greet Ada");
	req.certificate_file = certificate({"force-command=uptime"});
	req.now = kAt + 3600;   // 2030-01-01T01:30:00Z, after the window
	const std::string text = run(req, kExplainDenied);
	CHECK(text.find("  checks             denied   certificate has expired: valid from 2030-01-01T00:00:00Z to "
	                "2030-01-01T01:00:00Z, server time 2030-01-01T01:30:00Z\n") != std::string::npos);
	CHECK(text.find("  force-command      denied   this certificate allows only the command \"uptime\" "
	                "(force-command)\n") != std::string::npos);
	CHECK(text.find("\nresult  denied at login: certificate has expired") != std::string::npos);
}

TEST_CASE_METHOD(ExplainFixture, "explain plain key as certificate", "[explain]")
{
	auto req = request("greet Ada 2");
	req.certificate_file = user.string() + ".pub";
	const std::string text = run(req, kExplainDenied);
	INFO(text);
	CHECK(text.find("invalid certificate: invalid certificate") == std::string::npos);
	CHECK_THAT(text, Catch::Contains("unsupported certificate type \"ssh-ed25519\""));
	CHECK_THAT(text, Catch::Contains("-cert.pub"));

	// A file that is no key at all gives one reason, not two.
	req.certificate_file = dir / "roles" / "explain.toml";
	const std::string garbage = run(req, kExplainDenied);
	INFO(garbage);
	CHECK_THAT(garbage, Catch::Contains("skipped  the certificate could not be parsed"));
}

TEST_CASE_METHOD(ExplainFixture, "explain principal not granted", "[explain]")
{
	write_text(config, "listen = \"127.0.0.1:2222\"\nhost_key = \"host_key\"\ntrusted_user_ca_keys = [\"ca.pub\"]\n"
	                   "roles_dir = \"roles\"\ntranscript_dir = \"transcripts\"\n\n[grants]\nexplain = [\"carol\"]\n");
	auto req = request("uptime");
	req.certificate_file = certificate();
	const std::string text = run(req, kExplainDenied);
	CHECK(text.find("  principal grant    denied   no principal of the certificate is granted role \"explain\"; "
	                "[grants] lists \"carol\"\n") != std::string::npos);
	CHECK(text.find("\nresult  denied at login: no principal of this certificate (\"alice\", \"bob\") is granted role "
	                "\"explain\"\n") != std::string::npos);
}

TEST_CASE_METHOD(ExplainFixture, "explain unknown role", "[explain]")
{
	auto req = request("uptime");
	req.role = "nobody-here";
	const std::string text = run(req, kExplainDenied);
	CHECK(text.find("  role               denied   no role named \"nobody-here\"; the login name must be a role, as in "
	                "ssh ROLE@HOST\n") != std::string::npos);
	CHECK(text.ends_with("\nresult  denied at login: no role named \"nobody-here\"\n"));
}

TEST_CASE("explain time option parses both forms", "[explain]")
{
	CHECK(parse_explain_time("1893457800") == std::optional<std::int64_t>(kAt));
	CHECK(parse_explain_time("2030-01-01T00:30:00Z") == std::optional<std::int64_t>(kAt));
	CHECK_FALSE(parse_explain_time("2030-01-01 00:30:00"));
	CHECK_FALSE(parse_explain_time("-5"));
	CHECK_FALSE(parse_explain_time(""));
}

TEST_CASE_METHOD(ExplainFixture, "explain binary exit statuses", "[explain]")
{
	const std::string config_file = config.string();
	auto result = run_program({JEAD_BINARY, "explain", "--config", config_file, "--role", "explain", "--", "greet", "Ada"});
	CHECK(result.exit_status == 0);
	CHECK(result.out.find("\ncommand \"greet Ada\"\n") != std::string::npos);
	CHECK(result.out.ends_with("result  allowed; nothing was run\n"));

	result = run_program({JEAD_BINARY, "explain", "--config", config_file, "--role", "explain", "--", "greet", "4"});
	CHECK(result.exit_status == kExplainDenied);

	result = run_program({JEAD_BINARY, "explain", "--config", config_file, "--", "greet", "Ada"});
	CHECK(result.exit_status == kExplainUsage);
	CHECK(result.err.rfind("jead explain: --role is required\n", 0) == 0);

	result = run_program({JEAD_BINARY, "explain", "--config", config_file, "--role", "explain"});
	CHECK(result.exit_status == kExplainUsage);
	CHECK(result.err.rfind("jead explain: the command line is missing: put it after \"--\"\n", 0) == 0);

	result = run_program({JEAD_BINARY, "explain", "--config", config_file, "--role", "explain", "--from", "host.example",
	                      "--", "uptime"});
	CHECK(result.exit_status == kExplainUsage);

	result = run_program({JEAD_BINARY, "explain", "--config", (dir / "missing.toml").string(), "--role", "explain",
	                      "--", "uptime"});
	CHECK(result.exit_status == kExplainFailed);

	result = run_program({JEAD_BINARY, "explain", "--config", config_file, "--role", "explain", "--cert",
	                      (dir / "missing-cert.pub").string(), "--", "uptime"});
	CHECK(result.exit_status == kExplainFailed);
	CHECK(result.out.find("error: cannot read certificate file " + dir.string() + "/missing-cert.pub\n") !=
	      std::string::npos);
}
