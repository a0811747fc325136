// Tokenizer: quoting, no expansion, control bytes, caps and error columns.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "roles/limits.h"
#include "roles/tokenizer.h"

using jead::tokenize;
using jead::tokenize_words;
using Words = std::vector<std::string>;

namespace {

Words words_of(std::string_view line)
{
	auto result = tokenize(line);
	REQUIRE(result.has_value());
	return *result;
}

std::string error_of(std::string_view line)
{
	auto result = tokenize(line);
	REQUIRE_FALSE(result.has_value());
	return result.error().message;
}

}  // namespace

TEST_CASE("tokenizer splits on spaces and tabs", "[tokenizer]")
{
	CHECK(words_of("status nginx.service") == Words{"status", "nginx.service"});
	CHECK(words_of("  a \t b\t\tc  ") == Words{"a", "b", "c"});
	CHECK(words_of("").empty());
	CHECK(words_of("   \t ").empty());
}

TEST_CASE("tokenizer single quotes keep bytes literally", "[tokenizer]")
{
	CHECK(words_of("note 'a b'") == Words{"note", "a b"});
	CHECK(words_of(R"(note 'a\b')") == Words{"note", R"(a\b)"});
	CHECK(words_of(R"(note '"')") == Words{"note", "\""});
	CHECK(words_of("note '$(id)'") == Words{"note", "$(id)"});
}

TEST_CASE("tokenizer double quotes unescape only quote and backslash", "[tokenizer]")
{
	CHECK(words_of(R"(note "a b")") == Words{"note", "a b"});
	CHECK(words_of(R"(note "a\"b")") == Words{"note", "a\"b"});
	CHECK(words_of(R"(note "a\\b")") == Words{"note", R"(a\b)"});
	CHECK(words_of(R"(note "a\nb")") == Words{"note", R"(a\nb)"});
	CHECK(words_of(R"(note "a\$b")") == Words{"note", R"(a\$b)"});
	CHECK(words_of(R"(note "it's")") == Words{"note", "it's"});
}

TEST_CASE("tokenizer backslash escapes next byte outside quotes", "[tokenizer]")
{
	CHECK(words_of(R"(note a\ b)") == Words{"note", "a b"});
	CHECK(words_of(R"(note \'x)") == Words{"note", "'x"});
	CHECK(words_of(R"(note \\)") == Words{"note", "\\"});
	CHECK(words_of(R"(note \n)") == Words{"note", "n"});
}

TEST_CASE("tokenizer joins adjacent parts and keeps empty words", "[tokenizer]")
{
	CHECK(words_of(R"(a'b'"c"d)") == Words{"abcd"});
	CHECK(words_of("note ''") == Words{"note", ""});
	CHECK(words_of(R"(note "" x)") == Words{"note", "", "x"});
}

TEST_CASE("tokenizer performs no expansion", "[tokenizer]")
{
	CHECK(words_of(R"x(note "$(id)")x") == Words{"note", "$(id)"});
	CHECK(words_of("note ${IFS}id") == Words{"note", "${IFS}id"});
	CHECK(words_of("note ~") == Words{"note", "~"});
	CHECK(words_of("note ~root/*.log") == Words{"note", "~root/*.log"});
	CHECK(words_of("note {a,b}") == Words{"note", "{a,b}"});
	CHECK(words_of("note `id`") == Words{"note", "`id`"});
	CHECK(words_of("note $HOME") == Words{"note", "$HOME"});
}

TEST_CASE("tokenizer keeps operators as literal bytes", "[tokenizer]")
{
	CHECK(words_of("status nginx.service > /tmp/x") == Words{"status", "nginx.service", ">", "/tmp/x"});
	CHECK(words_of("status nginx.service 2>&1") == Words{"status", "nginx.service", "2>&1"});
	CHECK(words_of("status nginx.service &") == Words{"status", "nginx.service", "&"});
	CHECK(words_of("status nginx.service #x") == Words{"status", "nginx.service", "#x"});
	CHECK(words_of("a;b|c") == Words{"a;b|c"});
	CHECK(words_of("du <(id)") == Words{"du", "<(id)"});
}

TEST_CASE("tokenizer records word columns", "[tokenizer]")
{
	auto words = tokenize_words("ab  'c d'\te");
	REQUIRE(words.has_value());
	REQUIRE(words->size() == 3);
	CHECK((*words)[0].column == 1);
	CHECK((*words)[1].column == 5);
	CHECK((*words)[2].column == 11);
}

TEST_CASE("tokenizer rejects control bytes with column", "[tokenizer]")
{
	CHECK(error_of(std::string("note a\nid")) == "invalid control character 0x0a at column 7");
	CHECK(error_of(std::string("note a\rid")) == "invalid control character 0x0d at column 7");
	CHECK(error_of(std::string("note \x1b[2J")) == "invalid control character 0x1b at column 6");
	CHECK(error_of(std::string("note a\x7f")) == "invalid control character 0x7f at column 7");
	CHECK(error_of(std::string("note a\0b", 8)) == "invalid control character 0x00 at column 7");
	CHECK(error_of(std::string("\n")) == "invalid control character 0x0a at column 1");
}

TEST_CASE("tokenizer rejects control bytes inside quotes", "[tokenizer]")
{
	CHECK(error_of(std::string("note 'a\nb'")) == "invalid control character 0x0a at column 8");
	CHECK(error_of(std::string("note \"a\rb\"")) == "invalid control character 0x0d at column 8");
	CHECK(error_of(std::string("note 'a\tb'")) == "invalid control character 0x09 at column 8");
	CHECK(error_of(std::string("note \"\x7f\"")) == "invalid control character 0x7f at column 7");
}

TEST_CASE("tokenizer rejects escaped control bytes", "[tokenizer]")
{
	CHECK(error_of(std::string("note a\\\nb")) == "invalid control character 0x0a at column 8");
	CHECK(error_of(std::string("note a\\\tb")) == "invalid control character 0x09 at column 8");
}

TEST_CASE("tokenizer rejects trailing backslash", "[tokenizer]")
{
	CHECK(error_of("note abc\\") == "trailing backslash at column 9");
	CHECK(error_of("\\") == "trailing backslash at column 1");
}

TEST_CASE("tokenizer rejects unclosed quotes", "[tokenizer]")
{
	CHECK(error_of("note 'abc") == "unclosed single quote starting at column 6");
	CHECK(error_of("note \"abc") == "unclosed double quote starting at column 6");
	CHECK(error_of("note ab'c") == "unclosed single quote starting at column 8");
	CHECK(error_of("note \"a\\\"") == "unclosed double quote starting at column 6");
}

TEST_CASE("tokenizer enforces line length cap", "[tokenizer]")
{
	const std::string at_cap(jead::limits::kMaxCommandLineBytes, 'a');
	CHECK(words_of(at_cap).size() == 1);

	auto over = tokenize(at_cap + "a");
	REQUIRE_FALSE(over.has_value());
	CHECK(over.error().code == jead::Errc::limit);
	CHECK(over.error().message == "command line is 8193 bytes, longer than the maximum of 8192");
}

TEST_CASE("tokenizer enforces word count cap", "[tokenizer]")
{
	std::string line;
	for (std::size_t i = 0; i < jead::limits::kMaxCommandWords; ++i)
		line += "w ";
	CHECK(words_of(line).size() == jead::limits::kMaxCommandWords);

	line += "x";
	auto over = tokenize_words(line);
	REQUIRE_FALSE(over.has_value());
	CHECK(over.error().code == jead::Errc::limit);
	CHECK(over.error().column == 129);
	CHECK(over.error().message == "too many words: word at column 129 is beyond the maximum of 64");
}

TEST_CASE("tokenizer error column is reported", "[tokenizer]")
{
	auto result = tokenize_words("note 'abc");
	REQUIRE_FALSE(result.has_value());
	CHECK(result.error().column == 6);
	CHECK(result.error().code == jead::Errc::invalid);
}

TEST_CASE("caret line marks column", "[tokenizer]")
{
	CHECK(jead::caret_line("note 'abc", 6) == "note 'abc\n     ^");
	CHECK(jead::caret_line(std::string("a\nb"), 2) == "a?b\n ^");
	CHECK(jead::caret_line("ab", 3) == "ab\n  ^");
}

TEST_CASE("tokenizer passes UTF-8 through", "[tokenizer]")
{
	CHECK(words_of("note caf\xc3\xa9") == Words{"note", "caf\xc3\xa9"});
}
