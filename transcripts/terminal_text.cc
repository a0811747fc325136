#include "transcripts/terminal_text.h"

#include <cstdint>
#include <cstdio>

namespace jead {

namespace {

struct DecodedChar {
	std::uint32_t code_point = 0;
	std::size_t length = 0;  // 0 when the bytes at the position are not valid UTF-8
};

// Decodes the UTF-8 character at text[i]. Rejects overlong forms, surrogates
// and code points above U+10FFFF.
DecodedChar decode_utf8(std::string_view text, std::size_t i)
{
	const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
	const std::uint8_t lead = byte(i);
	const std::size_t left = text.size() - i;

	std::size_t length = 0;
	std::uint32_t code_point = 0;
	std::uint32_t min_code_point = 0;
	if (lead < 0x80)
		return {lead, 1};
	if ((lead & 0xE0) == 0xC0) {
		length = 2;
		code_point = lead & 0x1F;
		min_code_point = 0x80;
	} else if ((lead & 0xF0) == 0xE0) {
		length = 3;
		code_point = lead & 0x0F;
		min_code_point = 0x800;
	} else if ((lead & 0xF8) == 0xF0) {
		length = 4;
		code_point = lead & 0x07;
		min_code_point = 0x10000;
	} else {
		return {};
	}
	if (left < length)
		return {};

	for (std::size_t k = 1; k < length; ++k) {
		const std::uint8_t continuation = byte(i + k);
		if ((continuation & 0xC0) != 0x80)
			return {};
		code_point = (code_point << 6) | (continuation & 0x3F);
	}
	const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
	if (code_point < min_code_point || code_point > 0x10FFFF || surrogate)
		return {};
	return {code_point, length};
}

// Returns true for C1 controls and for the invisible Unicode characters that
// can reorder or hide text on screen.
bool is_hidden_code_point(std::uint32_t c)
{
	return (c >= 0x80 && c <= 0x9F) || c == 0x061C || (c >= 0x200B && c <= 0x200F) ||
	       (c >= 0x2028 && c <= 0x202E) || (c >= 0x2060 && c <= 0x2069) || c == 0xFEFF;
}

void append_byte_escape(std::string& out, std::uint8_t b)
{
	char text[8];
	std::snprintf(text, sizeof text, "\\x%02x", b);
	out += text;
}

void append_code_point_escape(std::string& out, std::uint32_t c)
{
	char text[12];
	std::snprintf(text, sizeof text, "\\u%04x", static_cast<unsigned>(c));
	out += text;
}

// Appends the escape for an ASCII byte, or the byte itself when printable.
void append_ascii(std::string& out, std::uint8_t b, bool escape_quote)
{
	switch (b) {
	case '\\': out += "\\\\"; return;
	case '\n': out += "\\n"; return;
	case '\r': out += "\\r"; return;
	case '\t': out += "\\t"; return;
	case '"':
		out += escape_quote ? "\\\"" : "\"";
		return;
	default:
		break;
	}
	if (b < 0x20 || b == 0x7F)
		append_byte_escape(out, b);
	else
		out += static_cast<char>(b);
}

std::string escape(std::string_view bytes, TextLayout layout, bool escape_quote)
{
	std::string out;
	out.reserve(bytes.size());
	const bool multi_line = layout == TextLayout::multi_line;

	// Every pass consumes at least one byte.
	for (std::size_t i = 0; i < bytes.size();) {
		const auto b = static_cast<std::uint8_t>(bytes[i]);

		if (multi_line && (b == '\n' || b == '\t')) {
			out += static_cast<char>(b);
			++i;
			continue;
		}
		if (multi_line && b == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') {
			out += '\n';
			i += 2;
			continue;
		}

		const DecodedChar decoded = decode_utf8(bytes, i);
		if (decoded.length == 0) {
			append_byte_escape(out, b);
			++i;
		} else if (decoded.length == 1) {
			append_ascii(out, b, escape_quote);
			++i;
		} else if (is_hidden_code_point(decoded.code_point)) {
			append_code_point_escape(out, decoded.code_point);
			i += decoded.length;
		} else {
			out.append(bytes.substr(i, decoded.length));
			i += decoded.length;
		}
	}
	return out;
}

}  // namespace

std::string escape_for_terminal(std::string_view bytes, TextLayout layout)
{
	return escape(bytes, layout, false);
}

std::string quote_for_terminal(std::string_view bytes)
{
	return '"' + escape(bytes, TextLayout::single_line, true) + '"';
}

std::string display_token(std::string_view bytes)
{
	if (bytes.empty())
		return "\"\"";
	for (char c : bytes) {
		const auto b = static_cast<std::uint8_t>(c);
		if (b <= 0x20 || b >= 0x7F || c == '"' || c == '\\' || c == '\'')
			return quote_for_terminal(bytes);
	}
	return std::string(bytes);
}

}  // namespace jead
