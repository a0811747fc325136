// Base64, hex and SHA-256 helpers over OpenSSL.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace jead {

using Bytes = std::vector<std::uint8_t>;

// Decodes standard base64 (RFC 4648, padding optional); any other byte,
// including whitespace, is an error.
Result<Bytes> base64_decode(std::string_view text);
std::string base64_encode(std::span<const std::uint8_t> data, bool pad = true);
// Appends the base64 encoding of `data` to `out`, as base64_encode() returns it.
void base64_append(std::string& out, std::span<const std::uint8_t> data, bool pad = true);

std::string hex_encode(std::span<const std::uint8_t> data);

Bytes sha256(std::span<const std::uint8_t> data);

// OpenSSH's key fingerprint form: "SHA256:" + unpadded base64 of the
// SHA-256 of the public key blob.
std::string ssh_fingerprint(std::span<const std::uint8_t> key_blob);

inline std::span<const std::uint8_t> as_bytes(std::string_view s)
{
	return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace jead
