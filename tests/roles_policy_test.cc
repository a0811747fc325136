// decide(): command lines against a role, with the exact denial reasons
// for shell metacharacters, control bytes and bad arguments.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "roles/policy.h"

using namespace jead;
using Argv = std::vector<std::string>;

namespace {

// A role whose path arguments live under a fresh temporary directory,
// removed on destruction.
struct PolicyFixture {
	std::filesystem::path root;
	Role role;

	PolicyFixture()
	{
		std::string pattern = (std::filesystem::temp_directory_path() / "jead-policy-XXXXXX").string();
		REQUIRE(::mkdtemp(pattern.data()) != nullptr);
		root = std::filesystem::canonical(pattern);
		std::filesystem::create_directories(root / "app");
		std::filesystem::create_directories(root / "app-old");
		std::ofstream(root / "app" / "x.log") << "x\n";
		std::ofstream(root / "app-old" / "x.log") << "x\n";

		auto loaded = parse_role(role_text(), "web.toml");
		if (!loaded)
			FAIL(loaded.error().message);
		role = std::move(*loaded);
	}
	~PolicyFixture()
	{
		std::error_code ec;
		std::filesystem::remove_all(root, ec);
	}
	PolicyFixture(const PolicyFixture&) = delete;
	PolicyFixture& operator=(const PolicyFixture&) = delete;

	std::string app(const std::string& relative = "") const
	{
		return relative.empty() ? (root / "app").string() : (root / "app" / relative).string();
	}

	std::string role_text() const
	{
		const std::string prefix = (root / "app").string();
		return R"(
description = "test role"

[[verb]]
name = "note"
command = ["/usr/bin/logger", "--", "{text}"]
args = [ { name = "text", type = "string", pattern = "[A-Za-z0-9 ,.]+" } ]

[[verb]]
name = "status"
command = ["/usr/bin/systemctl", "--no-pager", "status", "{unit}"]
args = [ { name = "unit", type = "enum", values = ["nginx.service", "php-fpm.service"] } ]

[[verb]]
name = "restart"
command = ["/usr/bin/systemctl", "restart", "{unit}"]
args = [ { name = "unit", type = "enum", values = ["nginx.service", "php-fpm.service"] } ]

[[verb]]
name = "du"
command = ["/usr/bin/du", "-sh", "--", "{path}"]
args = [ { name = "path", type = "path", prefixes = [")" + prefix + R"("] } ]

[[verb]]
name = "git-log"
command = ["/usr/bin/git", "log", "--oneline", "{revision}"]
args = [ { name = "revision", type = "string", pattern = "[A-Za-z0-9._/-]+" } ]

[[verb]]
name = "ping"
command = ["/usr/bin/ping", "-c", "1", "--", "{host}"]
args = [ { name = "host", type = "hostname" } ]

[[verb]]
name = "tail"
command = ["/usr/bin/tail", "{follow}", "-n", "{lines}", "--", "{file}"]
args = [
  { name = "follow", type = "flag", flag = "-f" },
  { name = "file", type = "path", prefixes = [")" + prefix + R"("], kind = "file" },
  { name = "lines", type = "int", min = 1, max = 1000, default = 10 },
]

[[verb]]
name = "sleep"
command = ["/usr/bin/sleep", "{seconds}"]
args = [ { name = "seconds", type = "int", min = 1, max = 600 } ]

[[verb]]
name = "show"
command = ["/usr/bin/echo", "{words}"]
args = [ { name = "words", type = "string", pattern = "[a-z]+", variadic = true, max_count = 3 } ]

[[verb]]
name = "uptime"
command = ["/usr/bin/uptime"]
)";
	}
};

Decision allowed(const Role& role, std::string_view line)
{
	Decision decision = decide(role, line);
	INFO("line: " << line << "\nreason: " << decision.reason);
	REQUIRE(decision.allowed);
	CHECK(decision.reason == "allowed");
	return decision;
}

std::string denied(const Role& role, std::string_view line)
{
	const Decision decision = decide(role, line);
	INFO("line: " << line);
	REQUIRE_FALSE(decision.allowed);
	CHECK(decision.argv.empty());
	return decision.reason;
}

}  // namespace

TEST_CASE("decide allows enum verb", "[roles][policy]")
{
	PolicyFixture f;
	const Decision d = allowed(f.role, "status nginx.service");
	CHECK(d.argv == Argv{"/usr/bin/systemctl", "--no-pager", "status", "nginx.service"});
	CHECK(d.verb == "status");
	REQUIRE(d.verb_spec != nullptr);
	CHECK(d.verb_spec->name == "status");
	CHECK(d.arguments == std::vector<std::pair<std::string, std::string>>{{"unit", "nginx.service"}});
}

TEST_CASE("decide denies empty command", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(denied(f.role, "") == "denied: empty command");
	CHECK(denied(f.role, "   \t") == "denied: empty command");
}

TEST_CASE("decide denies unknown verb", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(denied(f.role, "reboot") == R"(denied: unknown verb "reboot" in role "web")");
	CHECK(denied(f.role, "Status nginx.service") == R"(denied: unknown verb "Status" in role "web")");
	CHECK(denied(f.role, "/usr/bin/systemctl status") == R"(denied: unknown verb "/usr/bin/systemctl" in role "web")");
	CHECK(denied(f.role, "''") == R"(denied: unknown verb "" in role "web")");
}

TEST_CASE("decide denies bad enum value", "[roles][policy]")
{
	PolicyFixture f;
	const Decision d = decide(f.role, "restart foo");
	CHECK_FALSE(d.allowed);
	CHECK(d.reason == R"(denied: argument "unit": "foo" is not one of: nginx.service, php-fpm.service)");
	CHECK(d.column == 9);
}

TEST_CASE("decide denies command substitution", "[roles][policy]")
{
	PolicyFixture f;
	const std::string rule = R"( does not match the pattern "[A-Za-z0-9 ,.]+")";
	CHECK(denied(f.role, R"x(note "$(id)")x") == R"x(denied: argument "text": "$(id)")x" + rule);
	CHECK(denied(f.role, "note '$(id)'") == R"x(denied: argument "text": "$(id)")x" + rule);
	CHECK(denied(f.role, "note ${IFS}id") == R"(denied: argument "text": "${IFS}id")" + rule);
	CHECK(denied(f.role, "note ~") == R"(denied: argument "text": "~")" + rule);
	CHECK(denied(f.role, "note `id`") == R"(denied: argument "text": "`id`")" + rule);
	CHECK(denied(f.role, "note a;id") == R"(denied: argument "text": "a;id")" + rule);
	CHECK(allowed(f.role, "note 'hello, world.'").argv == Argv{"/usr/bin/logger", "--", "hello, world."});
}

TEST_CASE("decide denies shell operators", "[roles][policy]")
{
	PolicyFixture f;
	const std::string usage = " (usage: status UNIT)";
	const Decision redirect = decide(f.role, "status nginx.service > /tmp/x");
	CHECK(redirect.reason == R"(denied: unexpected extra argument ">" at column 22)" + usage);
	CHECK(redirect.column == 22);
	CHECK(denied(f.role, "status nginx.service 2>&1") == R"(denied: unexpected extra argument "2>&1" at column 22)" + usage);
	CHECK(denied(f.role, "status nginx.service &") == R"(denied: unexpected extra argument "&" at column 22)" + usage);
	CHECK(denied(f.role, "status nginx.service #x") == R"(denied: unexpected extra argument "#x" at column 22)" + usage);
	CHECK(denied(f.role, "status nginx.service;id") ==
	      R"(denied: argument "unit": "nginx.service;id" is not one of: nginx.service, php-fpm.service)");
	CHECK(denied(f.role, "status nginx.service | sh") == R"(denied: unexpected extra argument "|" at column 22)" + usage);
}

TEST_CASE("decide denies process substitution path", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(denied(f.role, "du <(id)") == R"x(denied: argument "path": "<(id)" is not an absolute path (it must start with "/"))x");
}

TEST_CASE("decide denies control bytes with column", "[roles][policy]")
{
	PolicyFixture f;
	const Decision newline = decide(f.role, "status nginx.service\nid");
	CHECK(newline.reason == "denied: invalid control character 0x0a at column 21");
	CHECK(newline.column == 21);
	CHECK(denied(f.role, "status nginx.service\rid") == "denied: invalid control character 0x0d at column 21");
	CHECK(denied(f.role, "note \x1b[31mred") == "denied: invalid control character 0x1b at column 6");
	CHECK(denied(f.role, "note a\x7f") == "denied: invalid control character 0x7f at column 7");
	CHECK(denied(f.role, "note 'a\nb'") == "denied: invalid control character 0x0a at column 8");
	CHECK(denied(f.role, std::string("note a\0b", 8)) == "denied: invalid control character 0x00 at column 7");
}

TEST_CASE("decide denies trailing backslash and open quote", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(denied(f.role, "note abc\\") == "denied: trailing backslash at column 9");
	const Decision quote = decide(f.role, "note 'abc");
	CHECK(quote.reason == "denied: unclosed single quote starting at column 6");
	CHECK(quote.column == 6);
	CHECK(denied(f.role, "note \"abc") == "denied: unclosed double quote starting at column 6");
}

TEST_CASE("decide denies options in string argument", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(allowed(f.role, "git-log release-1.2").argv == Argv{"/usr/bin/git", "log", "--oneline", "release-1.2"});
	CHECK(denied(f.role, "git-log --help") ==
	      R"(denied: argument "revision": "--help" starts with "-" and could be read as an option)");
	CHECK(denied(f.role, "git-log -p") == R"(denied: argument "revision": "-p" starts with "-" and could be read as an option)");
}

TEST_CASE("decide denies bad hostnames", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(allowed(f.role, "ping db1.example.com").argv == Argv{"/usr/bin/ping", "-c", "1", "--", "db1.example.com"});
	CHECK(denied(f.role, "ping -oProxyCommand=id") ==
	      R"(denied: argument "host": "-oProxyCommand=id" starts with "-" and could be read as an option)");
	CHECK(denied(f.role, "ping a..b") == R"(denied: argument "host": "a..b" has an empty label)");
	const std::string label(64, 'a');
	CHECK(denied(f.role, "ping " + label + ".com") ==
	      "denied: argument \"host\": \"" + label + ".com\" has a label of 64 characters, longer than the maximum of 63");
}

TEST_CASE("decide path arguments", "[roles][policy]")
{
	PolicyFixture f;
	const std::string log = f.app("x.log");
	CHECK(allowed(f.role, "du " + log).argv == Argv{"/usr/bin/du", "-sh", "--", log});
	CHECK(allowed(f.role, "du " + f.app() + "//x.log").argv == Argv{"/usr/bin/du", "-sh", "--", log});

	const std::string escape = f.app("../../../etc/shadow");
	CHECK(denied(f.role, "du " + escape) == "denied: argument \"path\": \"" + escape + "\" contains a \"..\" component");

	const std::string old = (f.root / "app-old" / "x.log").string();
	CHECK(denied(f.role, "du " + old) == "denied: argument \"path\": \"" + old + "\" is not under any of: " + f.app());

	CHECK(denied(f.role, "du var/log/app/x.log") ==
	      R"(denied: argument "path": "var/log/app/x.log" is not an absolute path (it must start with "/"))");

	CHECK(denied(f.role, "du " + f.app("*")) == "denied: argument \"path\": \"" + f.app("*") + "\" does not exist");

	// Quoted, the space stays inside one argument, which names no file.
	const std::string spaced = f.app("a.log /etc/shadow");
	CHECK(denied(f.role, "du '" + spaced + "'") == "denied: argument \"path\": \"" + spaced + "\" does not exist");
	// Unquoted, it is two words and the verb takes one.
	CHECK(denied(f.role, "du " + spaced) == "denied: unexpected extra argument \"/etc/shadow\" at column " +
	                                            std::to_string(std::string("du ").size() + f.app("a.log ").size() + 1) + " (usage: du PATH)");
}

TEST_CASE("decide int arguments", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(allowed(f.role, "sleep 1").argv == Argv{"/usr/bin/sleep", "1"});
	CHECK(allowed(f.role, "sleep 600").argv == Argv{"/usr/bin/sleep", "600"});

	const std::string range = "range 1..600";
	const std::string not_decimal = " is not a decimal integer (digits 0-9 only, in " + range + ")";
	CHECK(denied(f.role, "sleep 0") == R"(denied: argument "seconds": "0" is out of )" + range);
	CHECK(denied(f.role, "sleep 601") == R"(denied: argument "seconds": "601" is out of )" + range);
	CHECK(denied(f.role, "sleep -1") == R"(denied: argument "seconds": "-1" is negative, expected )" + range);
	CHECK(denied(f.role, "sleep 18446744073709551616") ==
	      R"(denied: argument "seconds": "18446744073709551616" is out of )" + range);
	CHECK(denied(f.role, "sleep 0x10") == R"(denied: argument "seconds": "0x10")" + not_decimal);
	CHECK(denied(f.role, "sleep 010") == R"(denied: argument "seconds": "010" has a leading zero)");
	CHECK(denied(f.role, "sleep +5") == R"(denied: argument "seconds": "+5")" + not_decimal);
	CHECK(denied(f.role, "sleep ' 5'") == R"(denied: argument "seconds": " 5")" + not_decimal);
	CHECK(denied(f.role, "sleep 5abc") == R"(denied: argument "seconds": "5abc")" + not_decimal);
	CHECK(denied(f.role, "sleep 1e3") == R"(denied: argument "seconds": "1e3")" + not_decimal);
	CHECK(denied(f.role, "sleep \xef\xbc\x95") == "denied: argument \"seconds\": \"\xef\xbc\x95\"" + not_decimal);
	CHECK(denied(f.role, "sleep ''") == R"(denied: argument "seconds": "" is empty, expected a decimal integer in )" + range);
}

TEST_CASE("decide too few and too many words", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(denied(f.role, "restart") == R"(denied: missing argument "unit" (usage: restart UNIT))");
	CHECK(denied(f.role, "restart nginx.service php-fpm.service") ==
	      R"(denied: unexpected extra argument "php-fpm.service" at column 23 (usage: restart UNIT))");
	CHECK(denied(f.role, "uptime now") == R"(denied: unexpected extra argument "now" at column 8 (usage: uptime))");
}

TEST_CASE("decide flags optional and defaults", "[roles][policy]")
{
	PolicyFixture f;
	const std::string log = f.app("x.log");
	CHECK(allowed(f.role, "tail " + log).argv == Argv{"/usr/bin/tail", "-n", "10", "--", log});
	CHECK(allowed(f.role, "tail " + log + " 50").argv == Argv{"/usr/bin/tail", "-n", "50", "--", log});
	CHECK(allowed(f.role, "tail -f " + log).argv == Argv{"/usr/bin/tail", "-f", "-n", "10", "--", log});
	CHECK(allowed(f.role, "tail " + log + " -f 5").argv == Argv{"/usr/bin/tail", "-f", "-n", "5", "--", log});
	CHECK(denied(f.role, "tail -f -f " + log) == R"(denied: flag "-f" given twice at column 9 (usage: tail [-f] FILE [LINES]))");
	CHECK(denied(f.role, "tail --follow " + log) ==
	      R"x(denied: argument "file": "--follow" is not an absolute path (it must start with "/"))x");
	CHECK(denied(f.role, "tail " + f.app()) == "denied: argument \"file\": \"" + f.app() + "\" is not a regular file");

	const Decision d = allowed(f.role, "tail -f " + log);
	CHECK(d.arguments == std::vector<std::pair<std::string, std::string>>{{"follow", "-f"}, {"file", log}, {"lines", "10"}});
}

TEST_CASE("decide variadic argument", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(allowed(f.role, "show a").argv == Argv{"/usr/bin/echo", "a"});
	CHECK(allowed(f.role, "show a b c").argv == Argv{"/usr/bin/echo", "a", "b", "c"});
	CHECK(denied(f.role, "show") == R"(denied: missing argument "words" (usage: show WORDS...))");
	CHECK(denied(f.role, "show a b c d") == R"(denied: unexpected extra argument "d" at column 12 (usage: show WORDS...))");
	CHECK(denied(f.role, "show a B") == R"(denied: argument "words": "B" does not match the pattern "[a-z]+")");
}

TEST_CASE("decide one value is one argv element", "[roles][policy]")
{
	PolicyFixture f;
	const Decision d = allowed(f.role, "note 'a b  c'");
	CHECK(d.argv == Argv{"/usr/bin/logger", "--", "a b  c"});
}

TEST_CASE("verb_usage formats arguments", "[roles][policy]")
{
	PolicyFixture f;
	CHECK(verb_usage(*f.role.find_verb("tail")) == "tail [-f] FILE [LINES]");
	CHECK(verb_usage(*f.role.find_verb("git-log")) == "git-log REVISION");
	CHECK(verb_usage(*f.role.find_verb("uptime")) == "uptime");
}
