// Escaping of recorded bytes for display on a terminal. Transcripts contain
// bytes chosen by the peer and by the programs it ran, so every string that
// jea-replay prints goes through one of these functions.
#pragma once

#include <string>
#include <string_view>

namespace jead {

enum class TextLayout {
	// Everything on one line: \n, \r and \t are escaped too.
	single_line,
	// Program output: \n and \r\n become line breaks and \t stays a tab.
	// A lone \r is escaped, because it lets later text overwrite a line.
	multi_line,
};

// Returns `bytes` with every byte or character that a terminal could
// interpret written as a visible escape:
// - C0 controls and DEL as \xNN. ESC becomes \x1b, so CSI, OSC and DCS
//   sequences are inert.
// - C1 controls (U+0080 to U+009F) as \u0080 to \u009f.
// - bytes of invalid UTF-8, a lone 0x9b included, as \xNN.
// - Unicode format and bidirectional controls (U+061C, U+200B to U+200F,
//   U+2028 to U+202E, U+2060 to U+2069, U+FEFF) as \uXXXX.
// - the backslash as \\, so a shown escape is never a literal one.
std::string escape_for_terminal(std::string_view bytes, TextLayout layout);

// Returns escape_for_terminal(bytes, single_line) in double quotes, with any
// double quote escaped as \".
std::string quote_for_terminal(std::string_view bytes);

// Returns `bytes` unchanged when they are only printable ASCII without
// spaces, quotes or backslashes (a typical file name, id or fingerprint),
// otherwise quote_for_terminal(bytes). An empty value is shown as "".
std::string display_token(std::string_view bytes);

}  // namespace jead
