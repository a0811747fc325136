#include "common/encoding.h"

#include <array>

#include <openssl/evp.h>

namespace jead {

namespace {

constexpr char kBase64Alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

}  // namespace

// Written by hand because OpenSSL's EVP_DecodeBlock accepts whitespace and
// hides the padding length, and an exact decoder is a few lines.
Result<Bytes> base64_decode(std::string_view text)
{
	std::size_t len = text.size();
	std::size_t padding = 0;
	while (len > 0 && text[len - 1] == '=' && padding < 2) {
		--len;
		++padding;
	}
	if (padding > 0 && text.size() % 4 != 0)
		return fail(Errc::invalid, "invalid base64: bad padding");
	if (len % 4 == 1)
		return fail(Errc::invalid, "invalid base64: truncated input");

	Bytes out;
	out.reserve(len * 3 / 4);
	std::uint32_t acc = 0;
	int bits = 0;
	for (std::size_t i = 0; i < len; ++i) {
		const int v = base64_value(text[i]);
		if (v < 0)
			return fail(Errc::invalid, "invalid base64: unexpected character at offset " + std::to_string(i));
		acc = (acc << 6) | static_cast<std::uint32_t>(v);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xFF));
		}
	}
	return out;
}

void base64_append(std::string& out, std::span<const std::uint8_t> data, bool pad)
{
	// Size the output once and write through a pointer: appending one
	// character at a time made this the largest cost of recording binary
	// output.
	const std::size_t start = out.size();
	out.resize(start + (data.size() + 2) / 3 * 4);
	char* next = out.data() + start;

	std::size_t i = 0;
	for (; i + 3 <= data.size(); i += 3) {
		const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
		*next++ = kBase64Alphabet[(v >> 18) & 63];
		*next++ = kBase64Alphabet[(v >> 12) & 63];
		*next++ = kBase64Alphabet[(v >> 6) & 63];
		*next++ = kBase64Alphabet[v & 63];
	}
	const std::size_t rest = data.size() - i;
	if (rest == 1) {
		const std::uint32_t v = data[i] << 16;
		*next++ = kBase64Alphabet[(v >> 18) & 63];
		*next++ = kBase64Alphabet[(v >> 12) & 63];
		if (pad) {
			*next++ = '=';
			*next++ = '=';
		}
	} else if (rest == 2) {
		const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
		*next++ = kBase64Alphabet[(v >> 18) & 63];
		*next++ = kBase64Alphabet[(v >> 12) & 63];
		*next++ = kBase64Alphabet[(v >> 6) & 63];
		if (pad)
			*next++ = '=';
	}
	out.resize(static_cast<std::size_t>(next - out.data()));
}

std::string base64_encode(std::span<const std::uint8_t> data, bool pad)
{
	std::string out;
	base64_append(out, data, pad);
	return out;
}

std::string hex_encode(std::span<const std::uint8_t> data)
{
	static constexpr char digits[] = "0123456789abcdef";
	std::string out;
	out.reserve(data.size() * 2);
	for (std::uint8_t b : data) {
		out += digits[b >> 4];
		out += digits[b & 0xF];
	}
	return out;
}

Bytes sha256(std::span<const std::uint8_t> data)
{
	Bytes digest(32);
	unsigned int len = 0;
	EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr);
	digest.resize(len);
	return digest;
}

std::string ssh_fingerprint(std::span<const std::uint8_t> key_blob)
{
	return "SHA256:" + base64_encode(sha256(key_blob), false);
}

}  // namespace jead
