#include <catch2/catch.hpp>

#include "server/line_editor.h"

using jead::LineEditor;

namespace {

struct Typed {
	std::string screen;
	std::vector<LineEditor::Event> events;
};

Typed type(LineEditor& editor, std::string_view keys)
{
	Typed typed;
	editor.feed(keys, typed.screen, typed.events);
	return typed;
}

std::string submitted(LineEditor& editor, std::string_view keys)
{
	const auto typed = type(editor, keys);
	REQUIRE(typed.events.size() == 1);
	REQUIRE(typed.events[0].kind == LineEditor::Event::Kind::line);
	return typed.events[0].line;
}

}  // namespace

TEST_CASE("line editor plain line", "[line_editor]")
{
	LineEditor editor;
	const auto typed = type(editor, "status nginx\r");
	REQUIRE(typed.events.size() == 1);
	CHECK(typed.events[0].line == "status nginx");
	CHECK(typed.screen == "status nginx\r\n");
}

TEST_CASE("line editor CR LF submits once", "[line_editor]")
{
	LineEditor editor;
	const auto typed = type(editor, "a\r\nb\n");
	REQUIRE(typed.events.size() == 2);
	CHECK(typed.events[0].line == "a");
	CHECK(typed.events[1].line == "b");
}

TEST_CASE("line editor cursor keys and deletion", "[line_editor]")
{
	LineEditor editor;
	CHECK(submitted(editor, "helo\x1b[D" "l\r") == "hello");
	CHECK(submitted(editor, "abc\x01X\r") == "Xabc");                 // Ctrl-A
	CHECK(submitted(editor, "abc\x1b[H\x1b[FY\r") == "abcY");         // Home, End
	CHECK(submitted(editor, "abc\x1b[1~Z\r") == "Zabc");              // Home as 1~
	CHECK(submitted(editor, "abcd\x7f\r") == "abc");                  // backspace
	CHECK(submitted(editor, "abcd\x1b[D\x1b[D\x1b[3~\r") == "abd");   // delete
	CHECK(submitted(editor, "one two\x15three\r") == "three");        // Ctrl-U
	CHECK(submitted(editor, "one two\x17\r") == "one ");              // Ctrl-W
	CHECK(submitted(editor, "one two\x01\x1b[C\x1b[C\x1b[C\x0b\r") == "one");  // Ctrl-K
	CHECK(submitted(editor, "ab\x01\x05" "c\r") == "abc");            // Ctrl-E
}

TEST_CASE("line editor history up and down", "[line_editor]")
{
	LineEditor editor;
	submitted(editor, "first\r");
	submitted(editor, "second\r");
	CHECK(submitted(editor, "\x1b[A\r") == "second");
	CHECK(submitted(editor, "\x1b[A\x1b[A\r") == "first");   // the repeat of "second" is stored once
	CHECK(submitted(editor, "\x1b[A\x1b[A\x1b[A\x1b[B\r") == "second");
	CHECK(submitted(editor, "draft\x1b[A\x1b[B\r") == "draft");
}

TEST_CASE("line editor Ctrl-C clears and Ctrl-D ends", "[line_editor]")
{
	LineEditor editor;
	auto typed = type(editor, "half a line\x03");
	REQUIRE(typed.events.size() == 1);
	CHECK(typed.events[0].kind == LineEditor::Event::Kind::interrupt);
	CHECK(editor.line().empty());

	typed = type(editor, "x\x04");   // not empty: Ctrl-D deletes under the cursor
	CHECK(typed.events.empty());
	typed = type(editor, "\x15\x04");
	REQUIRE(typed.events.size() == 1);
	CHECK(typed.events[0].kind == LineEditor::Event::Kind::end_of_input);
}

TEST_CASE("line editor drops control bytes", "[line_editor]")
{
	LineEditor editor;
	// BEL is dropped; an ESC that starts no CSI or SS3 sequence drops itself
	// and the byte after it.
	CHECK(submitted(editor, "a\x07" "b\x1b]0;title\x07" "c\r") == "ab0;titlec");
}

TEST_CASE("line editor escape sequence split across feeds", "[line_editor]")
{
	LineEditor editor;
	type(editor, "ab\x1b");
	type(editor, "[");
	type(editor, "D");
	CHECK(submitted(editor, "X\r") == "aXb");
}

TEST_CASE("line editor caps the line length", "[line_editor]")
{
	LineEditor editor(8);
	const auto typed = type(editor, "0123456789\r");
	REQUIRE(typed.events.size() == 1);
	CHECK(typed.events[0].line == "01234567");
	CHECK(typed.events[0].overflowed);
	CHECK(typed.screen.find("longer than 8 bytes") != std::string::npos);

	// Deleting after the overflow does not make the cut line acceptable.
	const auto edited = type(editor, "0123456789\x7f\x7f\r");
	REQUIRE(edited.events.size() == 1);
	CHECK(edited.events[0].line == "012345");
	CHECK(edited.events[0].overflowed);

	// A line within the limit is not marked, and neither is one typed
	// after clearing an over-long line with Ctrl-U.
	const auto fits = type(editor, "0123\r");
	REQUIRE(fits.events.size() == 1);
	CHECK_FALSE(fits.events[0].overflowed);
	const auto cleared = type(editor, "0123456789\x15" "abc\r");
	REQUIRE(cleared.events.size() == 1);
	CHECK(cleared.events[0].line == "abc");
	CHECK_FALSE(cleared.events[0].overflowed);
}

TEST_CASE("line editor tab completion", "[line_editor]")
{
	LineEditor editor;
	editor.set_completer([](std::string_view before) -> std::vector<std::string> {
		if (before.find(' ') == std::string_view::npos) {
			std::vector<std::string> out;
			for (std::string verb : {"restart", "status", "stop"})
				if (verb.rfind(before, 0) == 0)
					out.push_back(verb);
			return out;
		}
		return {};
	});
	CHECK(submitted(editor, "re\t\r") == "restart ");
	type(editor, "s\t");
	CHECK(editor.line() == "st");
	const auto typed = type(editor, "\t");
	CHECK(typed.screen.find("status  stop") != std::string::npos);
}
