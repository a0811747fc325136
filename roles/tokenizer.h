// Splits a command line into words with shell-like quoting and no expansion
// of any kind.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace jead {

// Words are separated by spaces and tabs. Single quotes keep everything
// literally, double quotes keep everything but `\"` and `\\`, and a
// backslash outside quotes escapes the next byte. `$`, `~`, globs, braces,
// backticks and operators are ordinary bytes. Control bytes (including
// newline, carriage return, NUL and DEL), a trailing backslash and an
// unclosed quote are errors whose message gives the 1-based column.
Result<std::vector<std::string>> tokenize(std::string_view line);

}  // namespace jead
