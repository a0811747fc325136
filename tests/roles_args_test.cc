// Typed argument validators: one section per type, each checking the exact
// error message for the inputs that must be rejected.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/escape.h"
#include "roles/arguments.h"

using namespace jead;

namespace {

std::string error_of(const Result<std::string>& result)
{
	REQUIRE_FALSE(result.has_value());
	return result.error().message;
}

std::string value_of(const Result<std::string>& result)
{
	if (!result)
		FAIL("unexpected error: " << result.error().message);
	return *result;
}

ArgSpec int_spec(std::int64_t min, std::int64_t max)
{
	ArgSpec spec;
	spec.name = "seconds";
	spec.type = ArgType::int_;
	spec.min = min;
	spec.max = max;
	return spec;
}

ArgSpec string_spec(const std::string& pattern, bool allow_leading_dash = false)
{
	ArgSpec spec;
	spec.name = "revision";
	spec.type = ArgType::string;
	spec.pattern = pattern;
	auto compiled = compile_pattern(pattern);
	REQUIRE(compiled.has_value());
	spec.compiled_pattern = *compiled;
	spec.allow_leading_dash = allow_leading_dash;
	return spec;
}

ArgSpec hostname_spec()
{
	ArgSpec spec;
	spec.name = "host";
	spec.type = ArgType::hostname;
	return spec;
}

// A temporary directory tree, removed on destruction. `root` is already
// resolved, so expected paths compare equal to realpath() output.
struct TempTree {
	std::filesystem::path root;

	TempTree()
	{
		std::string pattern = (std::filesystem::temp_directory_path() / "jead-args-XXXXXX").string();
		REQUIRE(::mkdtemp(pattern.data()) != nullptr);
		root = std::filesystem::canonical(pattern);
	}
	~TempTree()
	{
		std::error_code ec;
		std::filesystem::remove_all(root, ec);
	}
	TempTree(const TempTree&) = delete;
	TempTree& operator=(const TempTree&) = delete;

	std::string file(const std::string& relative) const
	{
		const auto path = root / relative;
		std::filesystem::create_directories(path.parent_path());
		std::ofstream(path) << "x\n";
		return path.string();
	}
	std::string dir(const std::string& relative) const
	{
		const auto path = root / relative;
		std::filesystem::create_directories(path);
		return path.string();
	}
	std::string path(const std::string& relative) const { return (root / relative).string(); }
};

ArgSpec path_spec(const TempTree& tree)
{
	ArgSpec spec;
	spec.name = "log";
	spec.type = ArgType::path;
	spec.prefixes = {tree.path("app")};
	return spec;
}

}  // namespace

// ---- enum ----

TEST_CASE("enum matches exact bytes", "[roles][args]")
{
	ArgSpec spec;
	spec.name = "unit";
	spec.type = ArgType::enum_;
	spec.values = {"nginx.service", "php-fpm.service"};

	CHECK(value_of(validate_enum(spec, "nginx.service")) == "nginx.service");
	CHECK(error_of(validate_enum(spec, "foo")) ==
	      R"(argument "unit": "foo" is not one of: nginx.service, php-fpm.service)");
	CHECK(error_of(validate_enum(spec, "NGINX.service")) ==
	      R"(argument "unit": "NGINX.service" is not one of: nginx.service, php-fpm.service)");
	CHECK(error_of(validate_enum(spec, "nginx.service ")) ==
	      R"(argument "unit": "nginx.service " is not one of: nginx.service, php-fpm.service)");
	CHECK(error_of(validate_enum(spec, "")) == R"(argument "unit": "" is not one of: nginx.service, php-fpm.service)");
}

// ---- int ----

TEST_CASE("int accepts range edges", "[roles][args]")
{
	const ArgSpec spec = int_spec(1, 600);
	CHECK(value_of(validate_int(spec, "1")) == "1");
	CHECK(value_of(validate_int(spec, "600")) == "600");
	CHECK(value_of(validate_int(spec, "42")) == "42");
	CHECK(error_of(validate_int(spec, "0")) == R"(argument "seconds": "0" is out of range 1..600)");
	CHECK(error_of(validate_int(spec, "601")) == R"(argument "seconds": "601" is out of range 1..600)");
}

TEST_CASE("int rejects non-decimal forms", "[roles][args]")
{
	const ArgSpec spec = int_spec(1, 600);
	const std::string rule = " is not a decimal integer (digits 0-9 only, in range 1..600)";
	CHECK(error_of(validate_int(spec, "0x10")) == R"(argument "seconds": "0x10")" + rule);
	CHECK(error_of(validate_int(spec, "+5")) == R"(argument "seconds": "+5")" + rule);
	CHECK(error_of(validate_int(spec, " 5")) == R"(argument "seconds": " 5")" + rule);
	CHECK(error_of(validate_int(spec, "5 ")) == R"(argument "seconds": "5 ")" + rule);
	CHECK(error_of(validate_int(spec, "5abc")) == R"(argument "seconds": "5abc")" + rule);
	CHECK(error_of(validate_int(spec, "1e3")) == R"(argument "seconds": "1e3")" + rule);
	CHECK(error_of(validate_int(spec, "1.0")) == R"(argument "seconds": "1.0")" + rule);
	CHECK(error_of(validate_int(spec, "\xef\xbc\x95")) == "argument \"seconds\": \"\xef\xbc\x95\"" + rule);
	CHECK(error_of(validate_int(spec, "-")) == R"(argument "seconds": "-")" + rule);
	CHECK(error_of(validate_int(spec, "")) == R"(argument "seconds": "" is empty, expected a decimal integer in range 1..600)");
}

TEST_CASE("int rejects leading zeros", "[roles][args]")
{
	const ArgSpec spec = int_spec(-10, 600);
	CHECK(error_of(validate_int(spec, "010")) == R"(argument "seconds": "010" has a leading zero)");
	CHECK(error_of(validate_int(spec, "00")) == R"(argument "seconds": "00" has a leading zero)");
	CHECK(error_of(validate_int(spec, "-05")) == R"(argument "seconds": "-05" has a leading zero)");
	CHECK(error_of(validate_int(spec, "-0")) == R"(argument "seconds": "-0" is not canonical, write 0)");
	CHECK(value_of(validate_int(spec, "0")) == "0");
}

TEST_CASE("int minus sign only when min is negative", "[roles][args]")
{
	CHECK(error_of(validate_int(int_spec(1, 600), "-1")) == R"(argument "seconds": "-1" is negative, expected range 1..600)");
	CHECK(error_of(validate_int(int_spec(0, 600), "-1")) == R"(argument "seconds": "-1" is negative, expected range 0..600)");

	const ArgSpec negative = int_spec(-10, 10);
	CHECK(value_of(validate_int(negative, "-10")) == "-10");
	CHECK(value_of(validate_int(negative, "10")) == "10");
	CHECK(error_of(validate_int(negative, "-11")) == R"(argument "seconds": "-11" is out of range -10..10)");
	CHECK(error_of(validate_int(negative, "11")) == R"(argument "seconds": "11" is out of range -10..10)");
}

TEST_CASE("int rejects overflow", "[roles][args]")
{
	const ArgSpec full = int_spec(INT64_MIN, INT64_MAX);
	CHECK(value_of(validate_int(full, "9223372036854775807")) == "9223372036854775807");
	CHECK(value_of(validate_int(full, "-9223372036854775808")) == "-9223372036854775808");
	CHECK(error_of(validate_int(full, "9223372036854775808")) ==
	      R"(argument "seconds": "9223372036854775808" is out of range -9223372036854775808..9223372036854775807)");
	CHECK(error_of(validate_int(full, "-9223372036854775809")) ==
	      R"(argument "seconds": "-9223372036854775809" is out of range -9223372036854775808..9223372036854775807)");
	CHECK(error_of(validate_int(int_spec(1, 600), "18446744073709551616")) ==
	      R"(argument "seconds": "18446744073709551616" is out of range 1..600)");
	CHECK(error_of(validate_int(int_spec(1, 600), "99999999999999999999999999")) ==
	      R"(argument "seconds": "99999999999999999999999999" is out of range 1..600)");
}

// ---- string ----

TEST_CASE("string pattern must match whole value", "[roles][args]")
{
	const ArgSpec spec = string_spec("[a-z]+");
	CHECK(value_of(validate_string(spec, "main")) == "main");
	CHECK(error_of(validate_string(spec, "main;id")) == R"(argument "revision": "main;id" does not match the pattern "[a-z]+")");
	CHECK(error_of(validate_string(spec, "x y")) == R"(argument "revision": "x y" does not match the pattern "[a-z]+")");

	// Without implicit anchors, "a|b" would find "a" inside "ab".
	const ArgSpec alternation = string_spec("a|b");
	CHECK(value_of(validate_string(alternation, "b")) == "b");
	CHECK(error_of(validate_string(alternation, "ab")) == R"(argument "revision": "ab" does not match the pattern "a|b")");
}

TEST_CASE("string rejects leading dash by default", "[roles][args]")
{
	const ArgSpec spec = string_spec("[A-Za-z0-9._/-]+");
	CHECK(value_of(validate_string(spec, "feature-x")) == "feature-x");
	CHECK(error_of(validate_string(spec, "--help")) ==
	      R"(argument "revision": "--help" starts with "-" and could be read as an option)");
	CHECK(error_of(validate_string(spec, "-p")) ==
	      R"(argument "revision": "-p" starts with "-" and could be read as an option)");

	const ArgSpec dash_allowed = string_spec("[A-Za-z0-9._/-]+", true);
	CHECK(value_of(validate_string(dash_allowed, "-p")) == "-p");
}

TEST_CASE("string rejects control bytes and bad UTF-8", "[roles][args]")
{
	const ArgSpec spec = string_spec(".*");
	CHECK(error_of(validate_string(spec, "a\nb")) == R"(argument "revision": "a\nb" contains a control character)");
	CHECK(error_of(validate_string(spec, "a\x7f")) == R"(argument "revision": "a\x7f" contains a control character)");
	CHECK(error_of(validate_string(spec, "a\xff")) == R"(argument "revision": "a\xff" is not valid UTF-8)");
}

TEST_CASE("string enforces max_length in bytes", "[roles][args]")
{
	ArgSpec spec = string_spec(".*");
	spec.max_length = 4;
	CHECK(value_of(validate_string(spec, "abcd")) == "abcd");
	CHECK(error_of(validate_string(spec, "abcde")) == R"(argument "revision": "abcde" is 5 bytes, longer than the maximum of 4)");
	CHECK(error_of(validate_string(spec, "\xc3\xa9\xc3\xa9\xc3\xa9")) ==
	      "argument \"revision\": \"\xc3\xa9\xc3\xa9\xc3\xa9\" is 6 bytes, longer than the maximum of 4");
}

TEST_CASE("string pattern survives long values", "[roles][args]")
{
	// A recursive backtracking matcher overflows the stack here.
	ArgSpec spec = string_spec("(a|b)*");
	spec.max_length = 1024;
	CHECK(value_of(validate_string(spec, std::string(1024, 'a'))) == std::string(1024, 'a'));
}

TEST_CASE("string pattern with nested repetition ends", "[roles][args]")
{
	// A backtracking matcher tries all 2^1023 ways to split the 1024 a's
	// into groups before it rejects. RE2 makes one pass.
	ArgSpec spec = string_spec("(a+)+b");
	spec.max_length = 1024;
	const std::string value(1024, 'a');
	CHECK(error_of(validate_string(spec, value)).find("does not match the pattern \"(a+)+b\"") != std::string::npos);
	CHECK(value_of(validate_string(spec, value.substr(1) + "b")) == value.substr(1) + "b");
}

TEST_CASE("string pattern matches UTF-8 characters", "[roles][args]")
{
	CHECK(value_of(validate_string(string_spec("[\xc3\xa9]"), "\xc3\xa9")) == "\xc3\xa9");
	CHECK(value_of(validate_string(string_spec(".{3}"), "\xc3\xa9t\xc3\xa9")) == "\xc3\xa9t\xc3\xa9");
	CHECK(error_of(validate_string(string_spec(".{3}"), "\xc3\xa9t")) ==
	      "argument \"revision\": \"\xc3\xa9t\" does not match the pattern \".{3}\"");
}

TEST_CASE("compile_pattern rejects bad patterns", "[roles][args]")
{
	CHECK_FALSE(compile_pattern("").has_value());
	CHECK_FALSE(compile_pattern("[a-").has_value());
	CHECK_FALSE(compile_pattern("(a)\\1").has_value());
	CHECK_FALSE(compile_pattern(std::string(513, 'a')).has_value());
	CHECK(compile_pattern(std::string(512, 'a')).has_value());
}

std::string pattern_error(const std::string& pattern)
{
	auto compiled = compile_pattern(pattern);
	REQUIRE_FALSE(compiled.has_value());
	return compiled.error().message;
}

TEST_CASE("compile_pattern rejects backtracking constructs", "[roles][args]")
{
	CHECK(pattern_error("(a)\\1") == R"(pattern "(a)\\1" is not a valid regular expression: invalid escape sequence: \1)");
	CHECK(pattern_error("(?=a)a") == R"(pattern "(?=a)a" is not a valid regular expression: invalid perl operator: (?=)");
	CHECK(pattern_error("(?!a)b") == R"(pattern "(?!a)b" is not a valid regular expression: invalid perl operator: (?!)");
	CHECK(pattern_error("(?<!a)b") == R"(pattern "(?<!a)b" is not a valid regular expression: invalid perl operator: (?<)");
}

TEST_CASE("compile_pattern caps repetition and size", "[roles][args]")
{
	CHECK(compile_pattern("a{1000}").has_value());
	CHECK(pattern_error("a{1001}") == R"(pattern "a{1001}" is not a valid regular expression: invalid repetition size: {1001})");
	CHECK(pattern_error("((a{10}){10}){11}") ==
	      R"(pattern "((a{10}){10}){11}" is not a valid regular expression: invalid repetition size: {11})");
	CHECK(pattern_error("\\p{L}{1000}") ==
	      R"(pattern "\\p{L}{1000}" is not a valid regular expression: pattern too large - compile failed)");
}

// ---- path ----

TEST_CASE("path under prefix is allowed", "[roles][args]")
{
	TempTree tree;
	const std::string log = tree.file("app/x.log");
	const ArgSpec spec = path_spec(tree);

	CHECK(value_of(validate_path(spec, log)) == log);
	CHECK(value_of(validate_path(spec, tree.path("app"))) == tree.path("app"));
	CHECK(value_of(validate_path(spec, tree.path("app//x.log"))) == log);
	CHECK(value_of(validate_path(spec, tree.path("app/./x.log"))) == log);
	CHECK(value_of(validate_path(spec, tree.path("app/"))) == tree.path("app"));
}

TEST_CASE("path rejects dot-dot components", "[roles][args]")
{
	TempTree tree;
	tree.file("app/x.log");
	const ArgSpec spec = path_spec(tree);
	const std::string value = tree.path("app/../../../etc/shadow");
	CHECK(error_of(validate_path(spec, value)) == "argument \"log\": \"" + value + "\" contains a \"..\" component");
	CHECK(error_of(validate_path(spec, tree.path("app/.."))) ==
	      "argument \"log\": \"" + tree.path("app/..") + "\" contains a \"..\" component");
}

TEST_CASE("path containment uses whole components", "[roles][args]")
{
	TempTree tree;
	const std::string old_log = tree.file("app-old/x.log");
	const ArgSpec spec = path_spec(tree);
	const auto result = validate_path(spec, old_log);
	CHECK(error_of(result) == "argument \"log\": \"" + old_log + "\" is not under any of: " + tree.path("app"));
	CHECK(result.error().code == Errc::denied);
}

TEST_CASE("path must be absolute", "[roles][args]")
{
	TempTree tree;
	const ArgSpec spec = path_spec(tree);
	CHECK(error_of(validate_path(spec, "var/log/app/x.log")) ==
	      R"(argument "log": "var/log/app/x.log" is not an absolute path (it must start with "/"))");
	CHECK(error_of(validate_path(spec, "")) == R"(argument "log": "" is empty, expected an absolute path)");
	CHECK(error_of(validate_path(spec, "<(id)")) ==
	      R"x(argument "log": "<(id)" is not an absolute path (it must start with "/"))x");
	CHECK(error_of(validate_path(spec, "-rf")) ==
	      R"(argument "log": "-rf" is not an absolute path (it must start with "/"))");
	CHECK(error_of(validate_path(spec, "~/x")) ==
	      R"(argument "log": "~/x" is not an absolute path (it must start with "/"))");
}

TEST_CASE("path glob is a literal byte", "[roles][args]")
{
	TempTree tree;
	tree.file("app/x.log");
	const ArgSpec spec = path_spec(tree);
	const std::string glob = tree.path("app/*");
	CHECK(error_of(validate_path(spec, glob)) == "argument \"log\": \"" + glob + "\" does not exist");

	tree.file("app/*");
	CHECK(value_of(validate_path(spec, glob)) == glob);
}

TEST_CASE("path with space stays one value", "[roles][args]")
{
	TempTree tree;
	tree.file("app/a.log");
	const ArgSpec spec = path_spec(tree);
	const std::string value = tree.path("app/a.log /etc/shadow");
	CHECK(error_of(validate_path(spec, value)) == "argument \"log\": \"" + value + "\" does not exist");

	ArgSpec may_be_missing = spec;
	may_be_missing.must_exist = false;
	CHECK(value_of(validate_path(may_be_missing, value)) == value);
}

TEST_CASE("path symlink escaping prefix is rejected", "[roles][args]")
{
	TempTree tree;
	const std::string secret = tree.file("etc/shadow");
	tree.dir("app");
	std::filesystem::create_symlink(secret, tree.path("app/link"));
	std::filesystem::create_symlink(tree.path("etc"), tree.path("app/etc-dir"));
	const ArgSpec spec = path_spec(tree);

	CHECK(error_of(validate_path(spec, tree.path("app/link"))) ==
	      "argument \"log\": \"" + tree.path("app/link") + "\" resolves to \"" + secret +
	          "\", which is not under any of: " + tree.path("app"));
	CHECK(error_of(validate_path(spec, tree.path("app/etc-dir/shadow"))) ==
	      "argument \"log\": \"" + tree.path("app/etc-dir/shadow") + "\" resolves to \"" + secret +
	          "\", which is not under any of: " + tree.path("app"));

	// A missing file below an escaping directory link is caught as well.
	ArgSpec may_be_missing = spec;
	may_be_missing.must_exist = false;
	CHECK(error_of(validate_path(may_be_missing, tree.path("app/etc-dir/new"))) ==
	      "argument \"log\": \"" + tree.path("app/etc-dir/new") + "\" resolves to \"" + tree.path("etc/new") +
	          "\", which is not under any of: " + tree.path("app"));
}

TEST_CASE("path symlink inside prefix resolves", "[roles][args]")
{
	TempTree tree;
	const std::string log = tree.file("app/x.log");
	std::filesystem::create_symlink(log, tree.path("app/current"));
	const ArgSpec spec = path_spec(tree);
	CHECK(value_of(validate_path(spec, tree.path("app/current"))) == log);
}

TEST_CASE("path dangling symlink is rejected", "[roles][args]")
{
	TempTree tree;
	tree.dir("app");
	std::filesystem::create_symlink(tree.path("etc/new"), tree.path("app/dangling"));
	ArgSpec spec = path_spec(tree);
	spec.must_exist = false;
	CHECK(error_of(validate_path(spec, tree.path("app/dangling"))) ==
	      "argument \"log\": \"" + tree.path("app/dangling") + "\" leads through a dangling symbolic link");
}

TEST_CASE("path kind is checked", "[roles][args]")
{
	TempTree tree;
	const std::string log = tree.file("app/x.log");
	const std::string sub = tree.dir("app/sub");
	ArgSpec spec = path_spec(tree);

	spec.path_kind = PathKind::file;
	CHECK(value_of(validate_path(spec, log)) == log);
	CHECK(error_of(validate_path(spec, sub)) == "argument \"log\": \"" + sub + "\" is not a regular file");

	spec.path_kind = PathKind::dir;
	CHECK(value_of(validate_path(spec, sub)) == sub);
	CHECK(error_of(validate_path(spec, log)) == "argument \"log\": \"" + log + "\" is not a directory");
}

TEST_CASE("path missing file needs must_exist false", "[roles][args]")
{
	TempTree tree;
	tree.dir("app");
	ArgSpec spec = path_spec(tree);
	const std::string missing = tree.path("app/new/file.tar");
	CHECK(error_of(validate_path(spec, missing)) == "argument \"log\": \"" + missing + "\" does not exist");
	spec.must_exist = false;
	CHECK(value_of(validate_path(spec, missing)) == missing);
}

TEST_CASE("normalize and path_within", "[roles][args]")
{
	CHECK(normalize_absolute_path("/a//b/./c/").value() == "/a/b/c");
	CHECK(normalize_absolute_path("/").value() == "/");
	CHECK(normalize_absolute_path("//").value() == "/");
	CHECK_FALSE(normalize_absolute_path("/a/../b").has_value());
	CHECK(path_within("/var/log/app", "/var/log/app"));
	CHECK(path_within("/var/log/app/x", "/var/log/app"));
	CHECK_FALSE(path_within("/var/log/app-old/x", "/var/log/app"));
	CHECK_FALSE(path_within("/var/log", "/var/log/app"));
	CHECK(path_within("/etc", "/"));
}

// ---- hostname ----

TEST_CASE("hostname accepts RFC 1123 names", "[roles][args]")
{
	const ArgSpec spec = hostname_spec();
	CHECK(value_of(validate_hostname(spec, "db1.example.com")) == "db1.example.com");
	CHECK(value_of(validate_hostname(spec, "Web-01.Example.COM")) == "web-01.example.com");
	CHECK(value_of(validate_hostname(spec, "localhost")) == "localhost");
	CHECK(value_of(validate_hostname(spec, "1host.example")) == "1host.example");
	CHECK(value_of(validate_hostname(spec, std::string(63, 'a') + ".com")) == std::string(63, 'a') + ".com");
}

TEST_CASE("hostname rejects leading dash", "[roles][args]")
{
	const ArgSpec spec = hostname_spec();
	CHECK(error_of(validate_hostname(spec, "-oProxyCommand=id")) ==
	      R"(argument "host": "-oProxyCommand=id" starts with "-" and could be read as an option)");
}

TEST_CASE("hostname rejects malformed labels", "[roles][args]")
{
	const ArgSpec spec = hostname_spec();
	CHECK(error_of(validate_hostname(spec, "a..b")) == R"(argument "host": "a..b" has an empty label)");
	CHECK(error_of(validate_hostname(spec, ".a")) == R"(argument "host": ".a" has an empty label)");
	const std::string long_label = std::string(64, 'a') + ".com";
	CHECK(error_of(validate_hostname(spec, long_label)) ==
	      "argument \"host\": \"" + long_label + "\" has a label of 64 characters, longer than the maximum of 63");
	CHECK(error_of(validate_hostname(spec, "a-.com")) == R"(argument "host": "a-.com" has a label that starts or ends with "-")");
	CHECK(error_of(validate_hostname(spec, "a.-b")) == R"(argument "host": "a.-b" has a label that starts or ends with "-")");
	CHECK(error_of(validate_hostname(spec, "a_b.com")) ==
	      R"(argument "host": "a_b.com" contains a character other than letters, digits, "-" and ".")");
	CHECK(error_of(validate_hostname(spec, "a b")) ==
	      R"(argument "host": "a b" contains a character other than letters, digits, "-" and ".")");
	CHECK(error_of(validate_hostname(spec, "caf\xc3\xa9.com")) ==
	      "argument \"host\": \"caf\xc3\xa9.com\" contains a character other than letters, digits, \"-\" and \".\"");
	CHECK(error_of(validate_hostname(spec, "")) == R"(argument "host": "" is empty, expected a host name)");
	CHECK(error_of(validate_hostname(spec, "ab--c.com")) ==
	      R"(argument "host": "ab--c.com" has a label with the reserved "--" in the third and fourth position)");
}

TEST_CASE("hostname total length cap", "[roles][args]")
{
	const ArgSpec spec = hostname_spec();
	std::string name;
	for (int i = 0; i < 25; ++i)
		name += "abcdefghi.";
	name += "abc";
	REQUIRE(name.size() == 253);
	CHECK(value_of(validate_hostname(spec, name)) == name);

	// Values in messages are cut at 128 bytes by escape_untrusted().
	const std::string too_long = name + "x";
	CHECK(error_of(validate_hostname(spec, too_long)) ==
	      "argument \"host\": " + escape_untrusted(too_long, 128) + " is 254 characters, longer than the maximum of 253");
}

TEST_CASE("hostname options", "[roles][args]")
{
	ArgSpec spec = hostname_spec();
	CHECK(error_of(validate_hostname(spec, "example.com.")) == R"(argument "host": "example.com." ends with ".")");
	CHECK(error_of(validate_hostname(spec, "192.0.2.1")) == R"(argument "host": "192.0.2.1" is an IP address, expected a host name)");
	CHECK(error_of(validate_hostname(spec, "127.1")) ==
	      R"(argument "host": "127.1" ends in an all-numeric label and would be read as an IP address)");
	CHECK(error_of(validate_hostname(spec, "xn--caf-dma.com")) ==
	      R"(argument "host": "xn--caf-dma.com" has an internationalized (xn--) label, which this argument does not allow)");

	spec.allow_trailing_dot = true;
	spec.allow_ip = true;
	spec.allow_idn = true;
	CHECK(value_of(validate_hostname(spec, "example.com.")) == "example.com.");
	CHECK(error_of(validate_hostname(spec, "example.com..")) == R"(argument "host": "example.com.." has an empty label)");
	CHECK(value_of(validate_hostname(spec, "192.0.2.1")) == "192.0.2.1");
	CHECK(value_of(validate_hostname(spec, "2001:DB8::1")) == "2001:db8::1");
	CHECK(value_of(validate_hostname(spec, "xn--caf-dma.com")) == "xn--caf-dma.com");
}

// ---- ip and cidr ----

TEST_CASE("ip accepts v4 and v6 canonically", "[roles][args]")
{
	ArgSpec spec;
	spec.name = "address";
	spec.type = ArgType::ip;
	CHECK(value_of(validate_ip(spec, "192.0.2.1")) == "192.0.2.1");
	CHECK(value_of(validate_ip(spec, "2001:DB8:0:0::1")) == "2001:db8::1");
	CHECK(value_of(validate_ip(spec, "::ffff:192.0.2.1")) == "::ffff:192.0.2.1");
	CHECK(error_of(validate_ip(spec, "010.0.0.1")) == R"(argument "address": "010.0.0.1" is not an IPv4 or IPv6 address)");
	CHECK(error_of(validate_ip(spec, "1.2.3")) == R"(argument "address": "1.2.3" is not an IPv4 or IPv6 address)");
	CHECK(error_of(validate_ip(spec, "fe80::1%eth0")) == R"(argument "address": "fe80::1%eth0" is not an IPv4 or IPv6 address)");
	CHECK(error_of(validate_ip(spec, " 1.2.3.4")) == R"(argument "address": " 1.2.3.4" is not an IPv4 or IPv6 address)");
	CHECK(error_of(validate_ip(spec, "-1")) == R"(argument "address": "-1" starts with "-" and could be read as an option)");
}

TEST_CASE("cidr checks prefix and host bits", "[roles][args]")
{
	ArgSpec spec;
	spec.name = "network";
	spec.type = ArgType::cidr;
	CHECK(value_of(validate_cidr(spec, "10.0.0.0/8")) == "10.0.0.0/8");
	CHECK(value_of(validate_cidr(spec, "0.0.0.0/0")) == "0.0.0.0/0");
	CHECK(value_of(validate_cidr(spec, "192.0.2.1/32")) == "192.0.2.1/32");
	CHECK(value_of(validate_cidr(spec, "2001:DB8::/32")) == "2001:db8::/32");
	CHECK(error_of(validate_cidr(spec, "10.0.0.1/8")) == R"(argument "network": "10.0.0.1/8" has bits set after the prefix length)");
	CHECK(error_of(validate_cidr(spec, "10.0.0.0/33")) == R"(argument "network": "10.0.0.0/33" has a prefix length above 32)");
	CHECK(error_of(validate_cidr(spec, "10.0.0.0/08")) ==
	      R"(argument "network": "10.0.0.0/08" has an invalid prefix length (decimal 0..32))");
	CHECK(error_of(validate_cidr(spec, "10.0.0.0/")) ==
	      R"(argument "network": "10.0.0.0/" has an invalid prefix length (decimal 0..32))");
	CHECK(error_of(validate_cidr(spec, "10.0.0.0")) == R"(argument "network": "10.0.0.0" is not in CIDR notation ADDRESS/PREFIX-LENGTH)");
	CHECK(error_of(validate_cidr(spec, "host/8")) == R"(argument "network": "host/8" does not start with an IPv4 or IPv6 address)");
	CHECK(error_of(validate_cidr(spec, "::/129")) == R"(argument "network": "::/129" has a prefix length above 128)");
}

// ---- duration, size, flag ----

TEST_CASE("duration canonical seconds and range", "[roles][args]")
{
	ArgSpec spec;
	spec.name = "since";
	spec.type = ArgType::duration;
	spec.min_duration = std::chrono::seconds(60);
	spec.max_duration = std::chrono::seconds(86400);
	CHECK(value_of(validate_duration(spec, "90s")) == "90s");
	CHECK(value_of(validate_duration(spec, "1h30m")) == "5400s");
	CHECK(value_of(validate_duration(spec, "1d")) == "86400s");
	CHECK(error_of(validate_duration(spec, "59s")) == R"(argument "since": "59s" is shorter than the minimum of 60s)");
	CHECK(error_of(validate_duration(spec, "2d")) == R"(argument "since": "2d" is longer than the maximum of 86400s)");
	CHECK(error_of(validate_duration(spec, "-5m")) == R"(argument "since": "-5m" starts with "-" and could be read as an option)");
	CHECK(error_of(validate_duration(spec, "5x")) ==
	      R"(argument "since": invalid duration "5x": unknown unit 'x' (use s, m, h, d or w))");
}

TEST_CASE("size canonical bytes", "[roles][args]")
{
	ArgSpec spec;
	spec.name = "limit";
	spec.type = ArgType::size;
	CHECK(value_of(validate_size(spec, "512")) == "512");
	CHECK(value_of(validate_size(spec, "10M")) == "10485760");
	CHECK(value_of(validate_size(spec, "1G")) == "1073741824");
	CHECK(value_of(validate_size(spec, "0")) == "0");
	CHECK(error_of(validate_size(spec, "10m")) ==
	      R"(argument "limit": "10m" is not a size such as 512, 64K, 10M or 1G (digits, then K, M, G or T))");
	CHECK(error_of(validate_size(spec, "010K")) == R"(argument "limit": "010K" has a leading zero)");
	CHECK(error_of(validate_size(spec, "16777216T")) == R"(argument "limit": "16777216T" is too large)");
	CHECK(error_of(validate_size(spec, "M")) ==
	      R"(argument "limit": "M" is not a size such as 512, 64K, 10M or 1G (digits, then K, M, G or T))");

	spec.max_size = 1024;
	CHECK(value_of(validate_size(spec, "1K")) == "1024");
	CHECK(error_of(validate_size(spec, "1025")) == R"(argument "limit": "1025" is larger than the maximum of 1024 bytes)");
}

TEST_CASE("flag matches its switch only", "[roles][args]")
{
	ArgSpec spec;
	spec.name = "dry-run";
	spec.type = ArgType::flag;
	spec.flag_text = "--dry-run";
	CHECK(value_of(validate_flag(spec, "--dry-run")) == "--dry-run");
	CHECK(error_of(validate_flag(spec, "--dry-run=no")) == R"(argument "dry-run": "--dry-run=no" is not the switch "--dry-run")");
}
