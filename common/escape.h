// Escaping of untrusted strings (key IDs, principals, command lines, verb
// output) before they reach a log line or a terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace jead {

// Returns `s` in double quotes with every control byte, backslash, quote,
// DEL and byte of invalid UTF-8 written as an escape (\n, \t, \\, \", \xNN),
// so the result is one printable line. Input longer than `max_bytes` is cut
// and marked with "...(N bytes)".
std::string escape_untrusted(std::string_view s, std::size_t max_bytes = 256);

// Returns true when `s` is well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view s);

}  // namespace jead
