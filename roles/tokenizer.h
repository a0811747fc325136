// Splits a command line into words with shell-like quoting and no expansion
// of any kind.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "common/result.h"

namespace jead {

// One word of a command line and the 1-based column (byte offset + 1) of
// the byte that starts it, which may be a quote.
struct Word {
	std::string text;
	std::size_t column = 0;
};

// A tokenizer error: the 1-based column of the offending byte and a message
// that already names that column. `code` is Errc::limit for the caps on line
// length and word count, Errc::invalid otherwise.
struct SyntaxError {
	Errc code = Errc::invalid;
	std::size_t column = 0;
	std::string message;
};

// Words are separated by spaces and tabs. Single quotes keep everything
// literally, double quotes keep everything but `\"` and `\\`, and a
// backslash outside quotes escapes the next byte. `$`, `~`, globs, braces,
// backticks and operators are ordinary bytes. Control bytes (including
// newline, carriage return, NUL and DEL), a trailing backslash and an
// unclosed quote are errors whose message gives the 1-based column.
// A tab is a separator only outside quotes and is an error inside quotes or
// after a backslash. Adjacent quoted and unquoted parts join into one word,
// and `''` or `""` alone is an empty word. Lines longer than
// limits::kMaxCommandLineBytes or with more than limits::kMaxCommandWords
// words are errors.
Result<std::vector<std::string>> tokenize(std::string_view line);

// Same rules as tokenize(), keeping the column of each word and of the error.
tl::expected<std::vector<Word>, SyntaxError> tokenize_words(std::string_view line);

// Formats `line` and a caret under `column` as two lines for a terminal.
// Bytes that are not printable ASCII are shown as '?' so the caret stays
// aligned; the result ends without a newline.
std::string caret_line(std::string_view line, std::size_t column);

}  // namespace jead
