// `jead check`: check_policy() and its printed report on configs and role
// files written to a temporary directory, each lint rule on a role made to
// trigger it, and the jead binary's exit status.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "server/check.h"
#include "tests/support.h"

using namespace jead;
using namespace jead::test;

namespace {

// A config with one trusted CA and a roles directory, in a temporary
// directory. Programs for verbs are copies of /usr/bin/true under bin/.
struct CheckFixture {
	TempDir tmp;
	std::filesystem::path dir = std::filesystem::canonical(tmp.path());
	std::filesystem::path config = dir / "jead.toml";

	CheckFixture()
	{
		std::filesystem::create_directories(dir / "roles");
		std::filesystem::create_directories(dir / "bin");
		std::filesystem::create_directories(dir / "transcripts");
		std::filesystem::permissions(dir / "transcripts", std::filesystem::perms::owner_all);
		make_key(dir / "ca");
		write_config("");
	}

	void write_config(const std::string& grants)
	{
		write_text(config, "listen = \"127.0.0.1:2222\"\nhost_key = \"host_key\"\ntrusted_user_ca_keys = [\"ca.pub\"]\n"
		                   "roles_dir = \"roles\"\ntranscript_dir = \"transcripts\"\n\n[grants]\n" +
		                       grants);
	}

	void role(const std::string& name, const std::string& text) const
	{
		write_text(dir / "roles" / (name + ".toml"), text);
	}

	// Returns the path of a program named `name` that only root can change
	// when the tests run as root.
	std::string program(const std::string& name) const
	{
		const auto path = dir / "bin" / name;
		std::filesystem::copy_file("/usr/bin/true", path, std::filesystem::copy_options::overwrite_existing);
		return path.string();
	}

	// The printed report with the temporary directory shown as "DIR".
	std::string report_text(const CheckReport& report, bool allow_warnings = false) const
	{
		std::ostringstream out;
		print_check_report(report, config, allow_warnings, out);
		std::string text = out.str();
		const std::string root = dir.string();
		for (auto at = text.find(root); at != std::string::npos; at = text.find(root, at))
			text.replace(at, root.size(), "DIR");
		return text;
	}
};

std::vector<LintWarning> warnings_for(const CheckReport& report, const std::string& rule)
{
	std::vector<LintWarning> found;
	for (const auto& warning : report.warnings)
		if (warning.rule == rule)
			found.push_back(warning);
	return found;
}

std::string verb(const std::string& name, const std::string& command, const std::string& args = "")
{
	return "[[verb]]\nname = \"" + name + "\"\ncommand = " + command + "\n" + (args.empty() ? "" : "args = " + args + "\n");
}

// Loads one role whose verb runs `command`, and returns the warnings of `rule`.
std::vector<LintWarning> lint_one(const std::string& rule, const std::string& command, const std::string& args = "",
                                  const std::string& extra = "")
{
	CheckFixture fixture;
	fixture.role("r", extra + verb("v", command, args));
	const CheckReport report = check_policy(fixture.config);
	INFO("errors: " << (report.errors.empty() ? "" : report.errors.front()));
	REQUIRE(report.errors.empty());
	return warnings_for(report, rule);
}

// The "command" array that runs `program` with no arguments.
std::string command_of(const std::string& program)
{
	return "[\"" + program + "\"]";
}

}  // namespace

TEST_CASE_METHOD(CheckFixture, "check accepts a clean role", "[check]")
{
	role("greeter", verb("greet", R"(["/usr/bin/echo", "Hello,", "--", "{name}"])",
	                     R"([ { name = "name", type = "string", pattern = "[A-Za-z]+", max_length = 32 } ])") +
	                    "\n[[test]]\nline = \"greet Ada\"\nexpect = \"allow\"\n"
	                    "argv = [\"/usr/bin/echo\", \"Hello,\", \"--\", \"Ada\"]\n");
	write_config("greeter = [\"ops\"]\n");

	const CheckReport report = check_policy(config);
	CHECK(report.errors.empty());
	CHECK(report.warnings.empty());
	CHECK(report.roles_loaded == 1);
	CHECK(report.tests_run == 1);

	const std::string text = report_text(report);
	CHECK(std::regex_match(text, std::regex("DIR/jead\\.toml: ok, 1 roles, 1 tests passed, policy sha256:[0-9a-f]{64}\n")));
}

TEST_CASE_METHOD(CheckFixture, "check prints every load error", "[check]")
{
	role("alpha", "descripton = \"typo\"\n");
	role("beta", verb("v", R"(["/usr/bin/echo", "{nme}"])", R"([ { name = "name", type = "enum", values = ["a"] } ])"));
	role("gamma", verb("ok", R"(["/usr/bin/uptime"])"));

	const CheckReport report = check_policy(config);
	CHECK(report.roles_loaded == 1);
	CHECK(report_text(report) ==
	      "DIR/roles/alpha.toml:1:1: error: unknown key \"descripton\" in role\n"
	      "DIR/roles/beta.toml:3:29: error: placeholder \"{nme}\" names no argument of verb \"v\"\n"
	      "DIR/jead.toml: failed: 2 errors, 0 warnings (1 roles, 0 tests)\n");
}

TEST_CASE_METHOD(CheckFixture, "check config error has a position", "[check]")
{
	write_text(config, "listen = \"127.0.0.1:2222\"\nlisten_port = 5\n");
	const CheckReport report = check_policy(config);
	CHECK(report_text(report) == "DIR/jead.toml:2:15: error: unknown key \"listen_port\"\n"
	                             "DIR/jead.toml: failed: 1 error, 0 warnings (0 roles, 0 tests)\n");
}

TEST_CASE_METHOD(CheckFixture, "check grant naming a missing role", "[check]")
{
	role("present", verb("ok", R"(["/usr/bin/uptime"])"));
	write_config("present = [\"ops\"]\nabsent = [\"ops\"]\n");
	const CheckReport report = check_policy(config);
	CHECK(report_text(report) == "error: DIR/jead.toml: [grants] names role \"absent\", but DIR/roles has no absent.toml\n"
	                             "DIR/jead.toml: failed: 1 error, 0 warnings (1 roles, 0 tests)\n");
}

TEST_CASE_METHOD(CheckFixture, "check fails on a failing test case", "[check]")
{
	role("r", verb("sleep", R"(["/usr/bin/sleep", "{seconds}"])",
	               R"([ { name = "seconds", type = "int", min = 1, max = 10 } ])") +
	              "\n[[test]]\nline = \"sleep 5\"\nexpect = \"allow\"\n"
	              "\n[[test]]\nline = \"sleep 11\"\nexpect = \"allow\"\n"
	              "\n[[test]]\nline = \"sleep 1\"\nexpect = \"deny\"\n");

	const CheckReport report = check_policy(config);
	CHECK(report.tests_run == 3);
	CHECK(report_text(report) ==
	      "DIR/roles/r.toml:10:1: error: test \"sleep 11\": expected allow, got denied: argument \"seconds\": \"11\" is "
	      "out of range 1..10\n"
	      "DIR/roles/r.toml:14:1: error: test \"sleep 1\": expected deny, got allowed with argv [\"/usr/bin/sleep\", "
	      "\"1\"]\n"
	      "DIR/jead.toml: failed: 2 errors, 0 warnings (1 roles, 3 tests)\n");
}

TEST_CASE_METHOD(CheckFixture, "check run-as user that does not exist", "[check]")
{
	role("r", "run_as_user = \"no-such-user-jead\"\n" + verb("ok", R"(["/usr/bin/uptime"])"));
	const CheckReport report = check_policy(config);
	REQUIRE(report.errors.size() == 1);
	CHECK(report.errors[0] == dir.string() + "/roles/r.toml: run-as user \"no-such-user-jead\" does not exist");
}

TEST_CASE_METHOD(CheckFixture, "check warnings print after errors with rule", "[check]")
{
	role("r", verb("shell", command_of(program("bash"))) + "\n[[test]]\nline = \"nope\"\nexpect = \"allow\"\n");
	const CheckReport report = check_policy(config);
	REQUIRE(report.errors.size() == 1);
	REQUIRE(warnings_for(report, "runs-programs").size() == 1);
	const std::string text = report_text(report);
	const auto error_at = text.find(": error: ");
	const auto warning_at = text.find(": warning: verb \"shell\": DIR/bin/bash is a shell");
	CHECK(error_at != std::string::npos);
	CHECK(warning_at != std::string::npos);
	CHECK(error_at < warning_at);
	CHECK(text.find("[runs-programs]\n") != std::string::npos);
}

TEST_CASE_METHOD(CheckFixture, "check warnings fail unless allowed", "[check]")
{
	role("r", verb("env", command_of(program("env"))));
	const CheckReport report = check_policy(config);
	REQUIRE(report.errors.empty());
	REQUIRE(warnings_for(report, "runs-programs").size() == 1);

	std::ostringstream strict;
	CHECK(print_check_report(report, config, false, strict) == 1);
	CHECK(strict.str().find("fix them, or pass --allow-warnings to accept them") != std::string::npos);
	std::ostringstream relaxed;
	CHECK(print_check_report(report, config, true, relaxed) == 0);
	CHECK(relaxed.str().find(": ok, 1 roles, 0 tests passed, ") != std::string::npos);
}

TEST_CASE("lint runs-programs names each kind", "[check][lint]")
{
	const std::vector<std::pair<std::string, std::string>> cases = {
		{"sh", "is a shell"},
		{"python3.11", "is an interpreter"},
		{"perl", "is an interpreter"},
		{"vim.basic", "is an editor"},
		{"less", "is a pager"},
		{"xargs", "runs the program named in its arguments"},
		{"sudo", "runs the program named in its arguments"},
		{"timeout", "runs the program named in its arguments"},
		{"busybox", "runs the program named in its arguments"},
		{"ssh", "runs commands on other hosts"},
		{"rsync", "starts a remote shell"},
		{"mawk", "runs commands from its script"},
		{"git", "runs hooks, \"!\" aliases"},
		{"sed", "add \"--sandbox\""},
		{"journalctl", "add \"--no-pager\""},
		{"systemctl", "add \"--no-pager\""},
	};
	for (const auto& [name, reason] : cases) {
		INFO("program " << name);
		CheckFixture fixture;
		fixture.role("r", verb("v", command_of(fixture.program(name))));
		const CheckReport report = check_policy(fixture.config);
		const auto found = warnings_for(report, "runs-programs");
		REQUIRE(found.size() == 1);
		CHECK(found[0].message.find(reason) != std::string::npos);
		CHECK(found[0].location == fixture.dir.string() + "/roles/r.toml:1:1");
	}
}

// An interactive verb runs on a terminal, where a pager or an editor takes
// keys. The rule warns about these programs whether or not the verb is
// interactive.
TEST_CASE("lint runs-programs covers interactive verbs", "[check][lint]")
{
	for (const std::string name : {"less", "vim", "bash"}) {
		INFO("program " << name);
		CheckFixture fixture;
		fixture.role("r", verb("v", command_of(fixture.program(name))) + "interactive = true\n");
		const CheckReport report = check_policy(fixture.config);
		REQUIRE(report.errors.empty());
		CHECK(warnings_for(report, "runs-programs").size() == 1);
	}
}

TEST_CASE("lint runs-programs follows a symbolic link", "[check][lint]")
{
	CheckFixture fixture;
	const auto target = fixture.program("dash");
	std::filesystem::create_symlink(target, fixture.dir / "bin" / "tool");
	fixture.role("r", verb("v", command_of((fixture.dir / "bin" / "tool").string())));
	const auto found = warnings_for(check_policy(fixture.config), "runs-programs");
	REQUIRE(found.size() == 1);
	CHECK(found[0].message == "verb \"v\": " + fixture.dir.string() + "/bin/tool (dash) is a shell and runs any command "
	                                                                   "it is given");
}

TEST_CASE("lint runs-programs conditions", "[check][lint]")
{
	CheckFixture fixture;
	const auto quote = [](const std::string& text) { return "\"" + text + "\""; };
	const auto sed = quote(fixture.program("sed"));
	const auto journalctl = quote(fixture.program("journalctl"));
	const auto systemctl = quote(fixture.program("systemctl"));
	const auto find = quote(fixture.program("find"));
	const auto tar = quote(fixture.program("tar"));

	struct Case {
		std::string command;
		std::string args;
		std::size_t warnings;
	};
	const std::vector<Case> cases = {
		{"[" + sed + ", \"--sandbox\", \"s/a/b/\"]", "", 0},
		{"[" + journalctl + ", \"--no-pager\", \"-n\", \"5\"]", "", 0},
		{"[" + systemctl + ", \"--no-pager\", \"status\"]", "", 0},
		{"[" + systemctl + ", \"--no-pager\", \"{action}\"]",
		 R"([ { name = "action", type = "enum", values = ["status", "edit"] } ])", 1},
		{"[" + find + ", \"/var/log\", \"-name\", \"*.log\"]", "", 0},
		{"[" + find + ", \"/var/log\", \"-exec\", \"rm\", \"{{}}\", \";\"]", "", 1},
		{"[" + tar + ", \"--create\", \"--gzip\", \"--file=-\", \"--directory\", \"{dir}\", \".\"]",
		 R"([ { name = "dir", type = "path", prefixes = ["/srv"] } ])", 0},
		{"[" + tar + ", \"--create\", \"--to-command=sh\", \"{dir}\"]",
		 R"([ { name = "dir", type = "path", prefixes = ["/srv"] } ])", 1},
		{"[" + tar + ", \"-xI\", \"unpack\", \"{dir}\"]", R"([ { name = "dir", type = "path", prefixes = ["/srv"] } ])", 1},
		{"[" + tar + ", \"--list\", \"{opt}\"]",
		 R"([ { name = "opt", type = "string", pattern = ".+", max_length = 64, allow_leading_dash = true } ])", 1},
	};
	for (const auto& c : cases) {
		INFO("command " << c.command);
		fixture.role("r", verb("v", c.command, c.args));
		const CheckReport report = check_policy(fixture.config);
		INFO("errors: " << (report.errors.empty() ? "" : report.errors.front()));
		REQUIRE(report.errors.empty());
		CHECK(warnings_for(report, "runs-programs").size() == c.warnings);
	}
}

TEST_CASE("lint program-writable by other users", "[check][lint]")
{
	CheckFixture fixture;
	const auto program = fixture.program("tool");
	std::filesystem::permissions(fixture.dir / "bin", std::filesystem::perms::others_write, std::filesystem::perm_options::add);
	fixture.role("r", verb("v", command_of(program)));
	const auto found = warnings_for(check_policy(fixture.config), "program-writable");
	REQUIRE(found.size() == 1);
	CHECK(found[0].message.find("verb \"v\": program " + program + " can be replaced by a user other than root: ") == 0);
	CHECK(found[0].message.find(fixture.dir.string() + "/bin is writable by every user") != std::string::npos);
}

TEST_CASE("lint program-writable owned by another user", "[check][lint]")
{
	if (::geteuid() != 0) {
		WARN("not root: cannot give a file to another user");
		return;
	}
	CheckFixture fixture;
	const auto program = fixture.program("tool");
	REQUIRE(::chown(program.c_str(), 65534, 65534) == 0);
	fixture.role("r", verb("v", command_of(program)));
	const auto found = warnings_for(check_policy(fixture.config), "program-writable");
	REQUIRE(found.size() == 1);
	CHECK(found[0].message.find(program + " is owned by ") != std::string::npos);
	CHECK(found[0].message.find("(uid 65534)") != std::string::npos);
}

TEST_CASE("lint program-writable accepts a root-only path", "[check][lint]")
{
	CHECK(lint_one("program-writable", R"(["/usr/bin/echo"])").empty());
}

TEST_CASE("lint program-missing", "[check][lint]")
{
	const auto found = lint_one("program-missing", R"(["/usr/bin/jead-no-such-program"])");
	REQUIRE(found.size() == 1);
	CHECK(found[0].message == "verb \"v\": program /usr/bin/jead-no-such-program does not exist");
}

TEST_CASE("lint value-as-option", "[check][lint]")
{
	const std::string dash_string =
	    R"([ { name = "text", type = "string", pattern = ".+", max_length = 8, allow_leading_dash = true } ])";
	const auto found = lint_one("value-as-option", R"(["/usr/bin/echo", "{text}"])", dash_string);
	REQUIRE(found.size() == 1);
	CHECK(found[0].message == "verb \"v\": argument \"text\" may start with \"-\" (allow_leading_dash = true) and no "
	                          "\"--\" comes before it in \"command\", so /usr/bin/echo could read it as an option");
	CHECK(found[0].location.ends_with("/roles/r.toml:4:10"));

	const auto negative = lint_one("value-as-option", R"(["/usr/bin/echo", "{n}"])",
	                               R"([ { name = "n", type = "int", min = -5, max = 5 } ])");
	REQUIRE(negative.size() == 1);
	CHECK(negative[0].message.find("(min is negative)") != std::string::npos);

	CHECK(lint_one("value-as-option", R"(["/usr/bin/echo", "--", "{text}"])", dash_string).empty());
	CHECK(lint_one("value-as-option", R"(["/usr/bin/echo", "{text}"])",
	               R"([ { name = "text", type = "string", pattern = ".+", max_length = 8 } ])")
	          .empty());
	CHECK(lint_one("value-as-option", R"(["/usr/bin/date", "{f}"])",
	               R"([ { name = "f", type = "enum", values = ["--utc"] } ])")
	          .empty());
}

TEST_CASE("lint path-unrestricted", "[check][lint]")
{
	const auto found = lint_one("path-unrestricted", R"(["/usr/bin/du", "--", "{p}"])",
	                            R"([ { name = "p", type = "path", prefixes = ["/var/log", "/"] } ])");
	REQUIRE(found.size() == 1);
	CHECK(found[0].message == "verb \"v\": argument \"p\" has the prefix \"/\", which allows every path; list only the "
	                          "directories the verb needs");
	CHECK(lint_one("path-unrestricted", R"(["/usr/bin/du", "--", "{p}"])",
	               R"([ { name = "p", type = "path", prefixes = ["/var/log"] } ])")
	          .empty());
}

TEST_CASE("lint string-length", "[check][lint]")
{
	const auto found = lint_one("string-length", R"(["/usr/bin/echo", "--", "{s}"])",
	                            R"([ { name = "s", type = "string", pattern = "[a-z]+" } ])");
	REQUIRE(found.size() == 1);
	CHECK(found[0].message == "verb \"v\": argument \"s\" has no max_length, so it accepts up to 256 bytes; set "
	                          "max_length to the longest value the program needs");
	CHECK(lint_one("string-length", R"(["/usr/bin/echo", "--", "{s}"])",
	               R"([ { name = "s", type = "string", pattern = "[a-z]+", max_length = 256 } ])")
	          .empty());
}

TEST_CASE("lint environment", "[check][lint]")
{
	const auto found = lint_one("environment", R"(["/usr/bin/uptime"])", "",
	                            "[environment]\nLD_PRELOAD = \"/tmp/x.so\"\nPAGER = \"less\"\nSYSTEMD_PAGER = \"\"\n"
	                            "LESSSECURE = \"0\"\nLANG = \"C.UTF-8\"\n\n");
	REQUIRE(found.size() == 3);
	CHECK(found[0].message == "environment variable LD_PRELOAD = \"/tmp/x.so\" changes which programs or code every "
	                          "verb of the role runs; remove it");
	CHECK(found[1].message == "environment variable LESSSECURE = \"0\" lets less start a shell or an editor; remove it "
	                          "(jead sets LESSSECURE=1)");
	CHECK(found[2].message == "environment variable PAGER = \"less\" names a program that verbs may start; set it to "
	                          "\"cat\" or remove it");
}

TEST_CASE("check shipped example roles are clean", "[check]")
{
	if (::geteuid() != 0) {
		WARN("not root: the example roles run as other users, which only root can resolve");
		return;
	}
	CheckFixture fixture;
	write_text(fixture.config, "listen = \"127.0.0.1:2222\"\nhost_key = \"host_key\"\n"
	                           "trusted_user_ca_keys = [\"ca.pub\"]\nroles_dir = \"" JEAD_SOURCE_DIR "/roles/examples\"\n"
	                           "transcript_dir = \"transcripts\"\n");
	const CheckReport report = check_policy(fixture.config);
	for (const auto& error : report.errors)
		UNSCOPED_INFO("error: " << error);
	for (const auto& warning : report.warnings)
		UNSCOPED_INFO("warning: " << warning.location << ": " << warning.message);
	CHECK(report.errors.empty());
	CHECK(report.warnings.empty());
	CHECK(report.roles_loaded == 4);
}

TEST_CASE("check binary exit statuses", "[check]")
{
	CheckFixture fixture;
	fixture.role("r", verb("ok", R"(["/usr/bin/uptime"])"));
	auto result = run_program({JEAD_BINARY, "check", "--config", fixture.config.string()});
	INFO("stdout: " << result.out << "stderr: " << result.err);
	CHECK(result.exit_status == 0);
	CHECK(result.out.find(": ok, 1 roles, 0 tests passed, policy sha256:") != std::string::npos);

	fixture.role("r", verb("shell", command_of(fixture.program("sh"))));
	result = run_program({JEAD_BINARY, "check", "--config", fixture.config.string()});
	CHECK(result.exit_status == 1);
	result = run_program({JEAD_BINARY, "check", "--config", fixture.config.string(), "--allow-warnings"});
	CHECK(result.exit_status == 0);

	fixture.role("r", "bad = 1\n");
	result = run_program({JEAD_BINARY, "check", "--config", fixture.config.string(), "--allow-warnings"});
	CHECK(result.exit_status == 1);

	result = run_program({JEAD_BINARY, "check", "--verbose"});
	CHECK(result.exit_status == 2);
	CHECK(result.err.rfind("jead check: unknown option --verbose\n", 0) == 0);
}

TEST_CASE_METHOD(CheckFixture, "check listen_backlog range", "[check]")
{
	const std::string base = "listen = \"127.0.0.1:2222\"\nhost_key = \"host_key\"\ntrusted_user_ca_keys = [\"ca.pub\"]\n"
	                         "roles_dir = \"roles\"\ntranscript_dir = \"transcripts\"\n";
	for (const std::string value : {"0", "65536", "\"512\""}) {
		write_text(config, base + "listen_backlog = " + value + "\n");
		INFO("listen_backlog = " << value);
		CHECK(report_text(check_policy(config)) ==
		      "DIR/jead.toml:6:18: error: \"listen_backlog\" must be an integer from 1 to 65535\n"
		      "DIR/jead.toml: failed: 1 error, 0 warnings (0 roles, 0 tests)\n");
	}

	write_text(config, base + "listen_backlog = 4096\n");
	const CheckReport report = check_policy(config);
	CHECK(report.errors.empty());
}
