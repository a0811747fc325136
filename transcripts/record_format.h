// Names, limits and byte-string encoding of transcript format version 1,
// shared by the writer and the reader. FORMAT.md is the full specification.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace jead::transcript {

inline constexpr int kFormatVersion = 1;

// Maximum bytes of process output carried by one `output` record. Larger
// chunks are split over several records.
inline constexpr std::size_t kMaxOutputBytesPerRecord = 32 * 1024;

// Maximum length of one record line, without its newline. The writer rejects
// longer records and the reader rejects longer lines. The largest record the
// writer produces in practice is an output record whose 32 KiB of control
// bytes are escaped as \u00XX: about 192 KiB.
inline constexpr std::size_t kMaxLineBytes = 1024 * 1024;

// The `prev` of a header that does not continue an earlier transcript.
inline constexpr std::string_view kZeroHash =
	"0000000000000000000000000000000000000000000000000000000000000000";

// Every reason an `end` record may carry.
inline constexpr std::array<std::string_view, 8> kEndReasons = {
	"client-closed", "exit", "idle-timeout", "expired",
	"revoked", "server-shutdown", "error", "abnormal",
};

bool is_end_reason(std::string_view reason);

// Returns true for 64 lowercase hex digits, the form of `prev`.
bool is_sha256_hex(std::string_view text);

// Encodes untrusted bytes as a JSON value: a string when `bytes` is valid
// UTF-8, otherwise {"b64": "<standard base64 with padding>"}.
nlohmann::ordered_json encode_bytes(std::string_view bytes);

// Decodes a value written by encode_bytes. Rejects any other JSON type, an
// object with keys other than "b64", and invalid base64.
Result<std::string> decode_bytes(const nlohmann::ordered_json& value);

// Returns the lowercase hex SHA-256 of a record line (without its newline).
std::string line_hash(std::string_view line);

}  // namespace jead::transcript
