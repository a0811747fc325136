// Role file loading: every key, the FILE:LINE:COL error messages, the
// directory loader, and the shipped example roles with their [[test]] cases.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "roles/limits.h"
#include "roles/policy.h"

using namespace jead;

namespace {

// A temporary directory for role files, removed on destruction.
struct RoleDir {
	std::filesystem::path root;

	RoleDir()
	{
		std::string pattern = (std::filesystem::temp_directory_path() / "jead-roles-XXXXXX").string();
		REQUIRE(::mkdtemp(pattern.data()) != nullptr);
		root = std::filesystem::canonical(pattern);
	}
	~RoleDir()
	{
		std::error_code ec;
		std::filesystem::remove_all(root, ec);
	}
	RoleDir(const RoleDir&) = delete;
	RoleDir& operator=(const RoleDir&) = delete;

	std::filesystem::path write(const std::string& name, const std::string& text) const
	{
		const auto path = root / name;
		std::ofstream(path, std::ios::binary) << text;
		return path;
	}
};

// Loads `text` as "<dir>/NAME" and returns the error message with the
// directory prefix removed, so expectations read "name.toml:LINE:COL: ...".
std::string load_error(const std::string& text, const std::string& name = "r.toml")
{
	RoleDir dir;
	const auto path = dir.write(name, text);
	auto role = load_role_file(path);
	REQUIRE_FALSE(role.has_value());
	std::string message = role.error().message;
	const std::string prefix = dir.root.string() + "/";
	if (message.rfind(prefix, 0) == 0)
		message.erase(0, prefix.size());
	return message;
}

Role load_ok(const std::string& text, const std::string& name = "r.toml")
{
	RoleDir dir;
	auto role = load_role_file(dir.write(name, text));
	if (!role)
		FAIL(role.error().message);
	return std::move(*role);
}

const std::string kVerbHead = "[[verb]]\nname = \"a\"\n";

}  // namespace

TEST_CASE("loader reads every role key", "[roles][loader]")
{
	const Role role = load_ok(R"(
description = "Web operators"
run_as_user = "www-data"
run_as_group = "www-data"
max_cert_lifetime = "8h"
working_directory = "/srv/www/"
break_glass = true

[environment]
LANG = "C.UTF-8"
TZ = "UTC"

[[verb]]
name = "restart"
description = "Restart a unit"
command = ["/usr/bin/systemctl", "restart", "{unit}"]
args = [ { name = "unit", type = "enum", values = ["nginx.service"], description = "the unit" } ]
timeout = "30s"
max_output = "1M"
stdin = true
interactive = false
run_as_user = "root"

[[test]]
line = "restart nginx.service"
expect = "allow"
argv = ["/usr/bin/systemctl", "restart", "nginx.service"]
)",
	                          "web-ops.toml");

	CHECK(role.name == "web-ops");
	CHECK(role.description == "Web operators");
	CHECK(role.run_as_user == "www-data");
	CHECK(role.run_as_group == "www-data");
	CHECK(role.max_cert_lifetime == std::chrono::seconds(8 * 3600));
	CHECK(role.working_directory == std::filesystem::path("/srv/www"));
	CHECK(role.break_glass);
	CHECK(role.environment == std::map<std::string, std::string>{{"LANG", "C.UTF-8"}, {"TZ", "UTC"}});
	REQUIRE(role.verbs.size() == 1);

	const Verb& verb = role.verbs[0];
	CHECK(verb.name == "restart");
	CHECK(verb.description == "Restart a unit");
	CHECK(verb.program == "/usr/bin/systemctl");
	CHECK(verb.command == std::vector<std::string>{"/usr/bin/systemctl", "restart", "{unit}"});
	CHECK(verb.timeout == std::chrono::seconds(30));
	CHECK(verb.max_output_bytes == 1024 * 1024);
	CHECK(verb.reads_stdin);
	CHECK_FALSE(verb.interactive);
	CHECK(verb.run_as_user == "root");
	REQUIRE(verb.args.size() == 1);
	CHECK(verb.args[0].type == ArgType::enum_);
	CHECK(verb.args[0].description == "the unit");
	CHECK(role.find_verb("restart") == &verb);
	CHECK(role.find_verb("Restart") == nullptr);

	REQUIRE(role.tests.size() == 1);
	CHECK(run_role_tests(role).empty());
}

TEST_CASE("loader applies verb defaults", "[roles][loader]")
{
	const Role role = load_ok(kVerbHead + "command = [\"/usr/bin/uptime\"]\n");
	const Verb& verb = role.verbs.at(0);
	CHECK(verb.timeout == std::chrono::seconds(300));
	CHECK(verb.max_output_bytes == 64ull << 20);
	CHECK_FALSE(verb.reads_stdin);
	CHECK_FALSE(verb.interactive);
	CHECK_FALSE(verb.run_as_user.has_value());
	CHECK(verb.args.empty());
	CHECK_FALSE(role.break_glass);
}

TEST_CASE("loader reads every argument type", "[roles][loader]")
{
	const Role role = load_ok(kVerbHead + R"(command = ["/bin/echo", "{e}", "{i}", "{s}", "{p}", "{h}", "{ip}", "{c}", "{d}", "{z}", "{f}", "{v}"]
args = [
  { name = "f", type = "flag", flag = "--dry-run" },
  { name = "e", type = "enum", values = ["a", "b"] },
  { name = "i", type = "int", min = -5, max = 5 },
  { name = "s", type = "string", pattern = "[a-z]+", max_length = 12, allow_leading_dash = true },
  { name = "p", type = "path", prefixes = ["/var/log/", "/tmp"], kind = "dir", must_exist = false },
  { name = "h", type = "hostname", allow_ip = true, allow_trailing_dot = true, allow_idn = true },
  { name = "ip", type = "ip" },
  { name = "c", type = "cidr" },
  { name = "d", type = "duration", min = "1m", max = "1d", optional = true, default = "5m" },
  { name = "z", type = "size", max = "1G", optional = true },
  { name = "v", type = "string", pattern = "[0-9]+", variadic = true, optional = true, max_count = 4 },
]
)");
	const auto& args = role.verbs.at(0).args;
	REQUIRE(args.size() == 11);
	CHECK(args[0].flag_text == "--dry-run");
	CHECK(args[0].optional);
	CHECK(args[1].values == std::vector<std::string>{"a", "b"});
	CHECK(args[2].min == -5);
	CHECK(args[2].max == 5);
	CHECK(args[3].pattern == "[a-z]+");
	CHECK(args[3].max_length == 12);
	CHECK(args[3].allow_leading_dash);
	CHECK(args[3].compiled_pattern != nullptr);
	CHECK(args[4].prefixes == std::vector<std::string>{"/var/log", "/tmp"});
	CHECK(args[4].path_kind == PathKind::dir);
	CHECK_FALSE(args[4].must_exist);
	CHECK(args[5].allow_ip);
	CHECK(args[5].allow_trailing_dot);
	CHECK(args[5].allow_idn);
	CHECK(args[8].min_duration == std::chrono::seconds(60));
	CHECK(args[8].max_duration == std::chrono::seconds(86400));
	CHECK(args[8].default_value == "5m");
	CHECK(args[9].max_size == 1ull << 30);
	CHECK(args[10].variadic);
	CHECK(args[10].max_count == 4);
}

TEST_CASE("loader accepts args as array of tables", "[roles][loader]")
{
	const Role role = load_ok(kVerbHead + R"(command = ["/bin/echo", "{unit}"]

[[verb.args]]
name = "unit"
type = "enum"
values = ["nginx.service"]
)");
	REQUIRE(role.verbs.at(0).args.size() == 1);
	CHECK(role.verbs[0].args[0].name == "unit");
}

TEST_CASE("loader literal braces are escaped by doubling", "[roles][loader]")
{
	const Role role = load_ok(kVerbHead + R"(command = ["/usr/bin/docker", "ps", "--format", "{{.Names}}"])" + "\n");
	const Decision d = decide(role, "a");
	REQUIRE(d.allowed);
	CHECK(d.argv == std::vector<std::string>{"/usr/bin/docker", "ps", "--format", "{.Names}"});
}

TEST_CASE("loader error unknown role key", "[roles][loader]")
{
	CHECK(load_error("description = \"x\"\ncolour = \"red\"\n") == R"(r.toml:2:1: unknown key "colour" in role)");
}

TEST_CASE("loader error unknown verb key", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/true\"]\nbogus = 1\n") == R"(r.toml:4:1: unknown key "bogus" in [[verb]])");
}

TEST_CASE("loader error unknown argument key", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"{x}\"]\nargs = [ { name = \"x\", type = \"ip\", pattern = \"a\" } ]\n") ==
	      R"(r.toml:4:37: unknown key "pattern" in argument "x" of type ip)");
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"{x}\"]\nargs = [ { name = \"x\", type = \"flag\", flag = \"-x\", optional = true } ]\n") ==
	      R"(r.toml:4:52: unknown key "optional" in argument "x" of type flag)");
}

TEST_CASE("loader error unknown argument type", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/true\", \"{x}\"]\nargs = [ { name = \"x\", type = \"strng\" } ]\n") ==
	      R"(r.toml:4:31: unknown argument type "strng" (expected enum, int, string, path, hostname, ip, cidr, duration, size or flag))");
}

TEST_CASE("loader error duplicate verb", "[roles][loader]")
{
	RoleDir dir;
	const auto path = dir.write("r.toml", kVerbHead + "command = [\"/bin/true\"]\n\n" + kVerbHead + "command = [\"/bin/false\"]\n");
	auto role = load_role_file(path);
	REQUIRE_FALSE(role.has_value());
	CHECK(role.error().message ==
	      path.string() + R"(:6:8: duplicate verb "a" (first defined at )" + path.string() + ":1:1)");
}

TEST_CASE("loader error duplicate argument", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"{s}\"]\nargs = [ { name = \"s\", type = \"ip\" }, { name = \"s\", type = \"ip\" } ]\n") ==
	      R"(r.toml:4:39: duplicate argument "s" in verb "a")");
}

TEST_CASE("loader error relative program", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"true\"]\n") ==
	      R"(r.toml:3:12: program "true" must be a normalised absolute path such as /usr/bin/systemctl)");
	CHECK(load_error(kVerbHead + "command = [\"/usr/bin/../bin/true\"]\n") ==
	      R"(r.toml:3:12: program "/usr/bin/../bin/true" must be a normalised absolute path such as /usr/bin/systemctl)");
	CHECK(load_error(kVerbHead + "command = []\n") == R"(r.toml:3:11: "command" of verb "a" is empty)");
	CHECK(load_error(kVerbHead) == R"(r.toml:1:1: verb "a" has no "command")");
}

TEST_CASE("loader error placeholder names no argument", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"{y}\"]\n") == R"(r.toml:3:25: placeholder "{y}" names no argument of verb "a")");
}

TEST_CASE("loader error placeholder inside element", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"--x={y}\"]\nargs = [ { name = \"y\", type = \"ip\" } ]\n") ==
	      R"(r.toml:3:25: command element "--x={y}" mixes a placeholder with other text: a placeholder must be the whole element, and a literal brace is written {{ or }})");
}

TEST_CASE("loader error unused argument", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\"]\nargs = [ { name = \"y\", type = \"ip\" } ]\n") ==
	      R"(r.toml:4:10: argument "y" of verb "a" is not used by any placeholder in "command")");
}

TEST_CASE("loader error placeholder used twice", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"{y}\", \"{y}\"]\nargs = [ { name = \"y\", type = \"ip\" } ]\n") ==
	      R"(r.toml:3:32: placeholder "{y}" is used twice)");
}

TEST_CASE("loader error variadic not last", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"{v}\", \"{y}\"]\nargs = [\n  { name = \"v\", type = \"ip\", variadic = true },\n  { name = \"y\", type = \"ip\" },\n]\n") ==
	      R"(r.toml:5:3: variadic argument "v" must be the last argument)");
}

TEST_CASE("loader error required after optional", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"{o}\", \"{r}\"]\nargs = [\n  { name = \"o\", type = \"ip\", optional = true },\n  { name = \"r\", type = \"ip\" },\n]\n") ==
	      R"(r.toml:6:3: required argument "r" follows an optional argument)");
}

TEST_CASE("loader error string without pattern", "[roles][loader]")
{
	CHECK(load_error(kVerbHead + "command = [\"/bin/echo\", \"{s}\"]\nargs = [ { name = \"s\", type = \"string\" } ]\n") ==
	      R"(r.toml:4:10: argument "s" of type string needs a "pattern")");
}

TEST_CASE("loader error invalid pattern", "[roles][loader]")
{
	const std::string message =
	    load_error(kVerbHead + "command = [\"/bin/echo\", \"{s}\"]\nargs = [ { name = \"s\", type = \"string\", pattern = \"[a-\" } ]\n");
	CHECK(message == R"(r.toml:4:51: argument "s": pattern "[a-" is not a valid regular expression: missing ]: [a-)");
}

TEST_CASE("loader error type settings", "[roles][loader]")
{
	const std::string head = kVerbHead + "command = [\"/bin/echo\", \"{x}\"]\n";
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"int\", min = 1 } ]\n") ==
	      R"(r.toml:4:10: argument "x" of type int needs both "min" and "max")");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"int\", min = 5, max = 1 } ]\n") ==
	      R"(r.toml:4:44: argument "x": "min" 5 is greater than "max" 1)");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"enum\", values = [] } ]\n") ==
	      R"(r.toml:4:48: "values" of argument "x" is empty)");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"enum\", values = [\"a\", \"a\"] } ]\n") ==
	      R"(r.toml:4:48: "values" of argument "x" lists "a" twice)");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"path\", prefixes = [\"var/log\"] } ]\n") ==
	      R"(r.toml:4:51: "prefixes": "var/log" is not an absolute path (it must start with "/"))");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"path\", prefixes = [\"/var/log\"], kind = \"socket\" } ]\n") ==
	      R"(r.toml:4:71: argument "x": unknown "kind" "socket" (expected "file", "dir" or "any"))");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"flag\", flag = \"dry-run\" } ]\n") ==
	      R"(r.toml:4:46: argument "x": "flag" "dry-run" must start with "-" and contain no spaces)");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"ip\", max_count = 2 } ]\n") ==
	      R"(r.toml:4:49: "max_count" of argument "x" needs variadic = true)");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"string\", pattern = \".*\", max_length = 5000 } ]\n") ==
	      R"(r.toml:4:70: argument "x": "max_length" must be 1..1024)");
	CHECK(load_error(head + "args = [ { name = \"X\", type = \"ip\" } ]\n") ==
	      R"(r.toml:4:19: invalid argument name "X" (expected [a-z0-9][a-z0-9_-]*, at most 64 bytes))");
	CHECK(load_error(head + "args = [ { name = \"x\" } ]\n") == R"(r.toml:4:10: argument "x" has no "type")");
}

TEST_CASE("loader error invalid default", "[roles][loader]")
{
	const std::string head = kVerbHead + "command = [\"/bin/echo\", \"{x}\"]\n";
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"int\", min = 1, max = 9, default = 10 } ]\n") ==
	      R"(r.toml:4:66: invalid "default": argument "x": "10" is out of range 1..9)");
	CHECK(load_error(head + "args = [ { name = \"x\", type = \"path\", prefixes = [\"/var/log\"], default = \"/etc\" } ]\n") ==
	      R"(r.toml:4:74: invalid "default": argument "x": "/etc" is not under any of the prefixes)");
}

TEST_CASE("loader error value types", "[roles][loader]")
{
	CHECK(load_error("description = 5\n") == R"(r.toml:1:15: "description" must be a string)");
	CHECK(load_error("break_glass = \"yes\"\n") == R"(r.toml:1:15: "break_glass" must be true or false)");
	CHECK(load_error("max_cert_lifetime = \"8x\"\n") ==
	      R"(r.toml:1:21: "max_cert_lifetime": invalid duration "8x": unknown unit 'x' (use s, m, h, d or w))");
	CHECK(load_error("working_directory = \"srv\"\n") ==
	      R"(r.toml:1:21: "working_directory": "srv" is not an absolute path (it must start with "/"))");
	CHECK(load_error("run_as_user = \"-root\"\n") ==
	      R"(r.toml:1:15: "run_as_user": "-root" is not a valid user or group name ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 32 bytes))");
	CHECK(load_error("[environment]\n\"LD PRELOAD\" = \"x\"\n") ==
	      R"(r.toml:2:1: invalid environment variable name "LD PRELOAD" (expected [A-Za-z_][A-Za-z0-9_]*))");
	CHECK(load_error("[environment]\nA = 1\n") == R"(r.toml:2:5: "A" must be a string)");
	CHECK(load_error("verb = 1\n") == R"(r.toml:1:8: "verb" must be an array)");
	CHECK(load_error(kVerbHead + "command = [\"/bin/true\"]\ntimeout = \"0s\"\n") ==
	      R"(r.toml:4:11: "timeout" of verb "a" must be longer than 0s)");
	CHECK(load_error(kVerbHead + "command = [\"/bin/true\"]\nmax_output = \"64 M\"\n") ==
	      R"(r.toml:4:14: "max_output": "64 M" is not a size such as 512, 64K, 10M or 1G (digits, then K, M, G or T))");
	CHECK(load_error("[[verb]]\nname = \"Bad\"\ncommand = [\"/bin/true\"]\n") ==
	      R"(r.toml:2:8: invalid verb name "Bad" (expected [a-z0-9][a-z0-9-]*, at most 64 bytes))");
	CHECK(load_error(kVerbHead + "command = [\"/bin/true\"]\nrecord_keystrokes = false\n") ==
	      R"(r.toml:4:21: "record_keystrokes" of verb "a" needs interactive = true)");
	CHECK(load_error("[[verb]]\nname = \"help\"\ncommand = [\"/bin/true\"]\n") ==
	      R"(r.toml:2:8: verb name "help" is reserved for the built-in command; choose another name)");
	CHECK(load_error("[[verb]]\nname = \"exit\"\ncommand = [\"/bin/true\"]\n") ==
	      R"(r.toml:2:8: verb name "exit" is reserved for the built-in command; choose another name)");
}

TEST_CASE("loader error test cases", "[roles][loader]")
{
	CHECK(load_error("[[test]]\nline = \"x\"\nexpect = \"maybe\"\n") ==
	      R"(r.toml:3:10: "expect" must be "allow" or "deny", not "maybe")");
	CHECK(load_error("[[test]]\nline = \"x\"\nexpect = \"deny\"\nargv = [\"/bin/x\"]\n") ==
	      R"(r.toml:4:8: "argv" needs expect = "allow")");
	CHECK(load_error("[[test]]\nexpect = \"deny\"\n") == R"(r.toml:1:1: [[test]] needs a string "line")");
	CHECK(load_error("[[test]]\nline = \"x\"\nexpect = \"deny\"\nwhy = \"\"\n") == R"(r.toml:4:1: unknown key "why" in [[test]])");
}

TEST_CASE("loader error invalid TOML", "[roles][loader]")
{
	CHECK(load_error("description = \"x\n") ==
	      "r.toml:1:17: invalid TOML: Error while parsing string: unescaped control characters other than TAB (U+0009) are "
	      "explicitly prohibited");
}

TEST_CASE("loader error bad file name", "[roles][loader]")
{
	CHECK(load_error("", "Bad_Name.toml") ==
	      R"(Bad_Name.toml: role name "Bad_Name" (the file name without .toml) must match [a-z0-9][a-z0-9-]*, at most 64 bytes)");
	CHECK(load_error("", "role.txt") == R"(role.txt: a role file name must end in ".toml")");
}

TEST_CASE("loader error file too large", "[roles][loader]")
{
	const std::string text = "description = \"" + std::string(limits::kMaxRoleFileBytes, 'a') + "\"\n";
	CHECK(load_error(text) == "r.toml: role file is " + std::to_string(text.size()) + " bytes, larger than the maximum of 1048576");
}

TEST_CASE("loader error missing file", "[roles][loader]")
{
	auto role = load_role_file("/nonexistent/jead/r.toml");
	REQUIRE_FALSE(role.has_value());
	CHECK(role.error().code == Errc::not_found);
	CHECK(role.error().message == "/nonexistent/jead/r.toml: could not open role file: No such file or directory");
}

TEST_CASE("loader caps verbs per role", "[roles][loader]")
{
	std::string text;
	for (std::size_t i = 0; i <= limits::kMaxVerbsPerRole; ++i)
		text += "[[verb]]\nname = \"v" + std::to_string(i) + "\"\ncommand = [\"/bin/true\"]\n";
	CHECK(load_error(text) == R"(r.toml:1:1: "verb" has 129 items, more than the maximum of 128)");
}

TEST_CASE("run_role_tests reports failures", "[roles][loader]")
{
	const Role role = load_ok(kVerbHead + R"(command = ["/bin/echo", "{u}"]
args = [ { name = "u", type = "enum", values = ["x"] } ]

[[test]]
line = "a y"
expect = "allow"

[[test]]
line = "a x"
expect = "deny"

[[test]]
line = "a x"
expect = "allow"
argv = ["/bin/echo", "z"]

[[test]]
line = "a y"
expect = "deny"
reason = "no such thing"

[[test]]
line = "a x"
expect = "allow"
argv = ["/bin/echo", "x"]
)");
	const auto failures = run_role_tests(role);
	REQUIRE(failures.size() == 4);
	const std::string file = role.file.string();
	CHECK(failures[0] == file + R"(:6:1: test "a y": expected allow, got denied: argument "u": "y" is not one of: x)");
	CHECK(failures[1] == file + R"(:10:1: test "a x": expected deny, got allowed with argv ["/bin/echo", "x"])");
	CHECK(failures[2] == file + R"(:14:1: test "a x": expected argv ["/bin/echo", "z"], got ["/bin/echo", "x"])");
	CHECK(failures[3] == file + R"(:19:1: test "a y": expected a reason containing "no such thing", got "denied: argument \"u\": \"y\" is not one of: x")");
}

TEST_CASE("load_roles_dir loads toml files only", "[roles][loader]")
{
	RoleDir dir;
	dir.write("alpha.toml", kVerbHead + "command = [\"/bin/true\"]\n");
	dir.write("beta.toml", "description = \"empty\"\n");
	dir.write("notes.txt", "not a role");
	dir.write("alpha.toml~", "editor backup");
	std::filesystem::create_directory(dir.root / "sub.toml");

	auto roles = load_roles_dir(dir.root);
	if (!roles)
		FAIL(roles.error().message);
	REQUIRE(roles->size() == 2);
	CHECK(roles->count("alpha") == 1);
	CHECK(roles->count("beta") == 1);
	CHECK(roles->find(std::string_view("alpha"))->second.verbs.size() == 1);
}

TEST_CASE("load_roles_dir fails on any bad file", "[roles][loader]")
{
	RoleDir dir;
	dir.write("alpha.toml", kVerbHead + "command = [\"/bin/true\"]\n");
	dir.write("broken.toml", "colour = 1\n");
	auto roles = load_roles_dir(dir.root);
	REQUIRE_FALSE(roles.has_value());
	CHECK(roles.error().message == (dir.root / "broken.toml").string() + R"(:1:1: unknown key "colour" in role)");
}

TEST_CASE("load_roles_dir missing directory", "[roles][loader]")
{
	auto roles = load_roles_dir("/nonexistent/jead-roles");
	REQUIRE_FALSE(roles.has_value());
	CHECK(roles.error().code == Errc::io);
}

#ifdef JEAD_SOURCE_DIR
#define JEAD_EXAMPLES_DIR JEAD_SOURCE_DIR "/roles/examples"
#else
// Built by hand from the repository root.
#define JEAD_EXAMPLES_DIR "roles/examples"
#endif

TEST_CASE("example roles load and pass their tests", "[roles][loader]")
{
	auto roles = load_roles_dir(JEAD_EXAMPLES_DIR);
	if (!roles)
		FAIL(roles.error().message);
	for (const char* name : {"demo", "web-ops", "backup", "auditor"}) {
		INFO("role " << name);
		const auto it = roles->find(std::string_view(name));
		REQUIRE(it != roles->end());
		CHECK_FALSE(it->second.tests.empty());
		for (const auto& failure : run_role_tests(it->second))
			FAIL_CHECK(failure);
	}
}
