#include "common/escape.h"

#include <cstdint>

namespace jead {

namespace {

// Returns the length of the well-formed UTF-8 sequence at s[i], or 0.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i)
{
	const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
	const std::uint8_t b0 = byte(i);
	const std::size_t left = s.size() - i;

	if (b0 < 0x80)
		return 1;
	if (b0 >= 0xC2 && b0 <= 0xDF)
		return (left >= 2 && (byte(i + 1) & 0xC0) == 0x80) ? 2 : 0;
	if (b0 >= 0xE0 && b0 <= 0xEF) {
		if (left < 3)
			return 0;
		const std::uint8_t b1 = byte(i + 1);
		// E0 needs A0..BF (no overlongs); ED needs 80..9F (no surrogates).
		const std::uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80;
		const std::uint8_t hi = b0 == 0xED ? 0x9F : 0xBF;
		if (b1 < lo || b1 > hi || (byte(i + 2) & 0xC0) != 0x80)
			return 0;
		return 3;
	}
	if (b0 >= 0xF0 && b0 <= 0xF4) {
		if (left < 4)
			return 0;
		const std::uint8_t b1 = byte(i + 1);
		const std::uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80;
		const std::uint8_t hi = b0 == 0xF4 ? 0x8F : 0xBF;
		if (b1 < lo || b1 > hi || (byte(i + 2) & 0xC0) != 0x80 || (byte(i + 3) & 0xC0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

void append_hex_escape(std::string& out, std::uint8_t b)
{
	static constexpr char digits[] = "0123456789abcdef";
	out += "\\x";
	out += digits[b >> 4];
	out += digits[b & 0xF];
}

}  // namespace

bool is_valid_utf8(std::string_view s)
{
	for (std::size_t i = 0; i < s.size();) {
		const std::size_t n = utf8_sequence_length(s, i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

std::string escape_untrusted(std::string_view s, std::size_t max_bytes)
{
	const bool cut = s.size() > max_bytes;
	const std::string_view shown = cut ? s.substr(0, max_bytes) : s;

	std::string out;
	out.reserve(shown.size() + 2);
	out += '"';
	for (std::size_t i = 0; i < shown.size();) {
		const auto b = static_cast<std::uint8_t>(shown[i]);
		const std::size_t n = utf8_sequence_length(shown, i);

		if (n > 1) {
			// C1 controls (U+0080..U+009F) are terminal escapes too.
			const bool c1 = b == 0xC2 && static_cast<std::uint8_t>(shown[i + 1]) < 0xA0;
			if (c1) {
				append_hex_escape(out, b);
				append_hex_escape(out, static_cast<std::uint8_t>(shown[i + 1]));
			} else {
				out.append(shown.substr(i, n));
			}
			i += n;
			continue;
		}

		switch (b) {
		case '\n': out += "\\n"; break;
		case '\r': out += "\\r"; break;
		case '\t': out += "\\t"; break;
		case '\\': out += "\\\\"; break;
		case '"': out += "\\\""; break;
		default:
			if (n == 0 || b < 0x20 || b == 0x7F)
				append_hex_escape(out, b);
			else
				out += static_cast<char>(b);
		}
		++i;
	}
	out += '"';
	if (cut)
		out += "...(" + std::to_string(s.size()) + " bytes)";
	return out;
}

}  // namespace jead
