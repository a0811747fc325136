// Names, limits and byte-string encoding of transcript format version 1,
// shared by the writer and the reader. FORMAT.md is the full specification.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "transcripts/writer.h"

namespace jead::transcript {

// The version jead writes. Readers accept kOldestFormatVersion too.
inline constexpr int kFormatVersion = 3;
inline constexpr int kOldestFormatVersion = 1;

// Maximum bytes of process output carried by one `output` record. Larger
// chunks are split over several records.
inline constexpr std::size_t kMaxOutputBytesPerRecord = 32 * 1024;

// Maximum length of one record line, without its newline. The writer rejects
// longer records and the reader rejects longer lines. The largest record the
// writer produces in practice is an output record of 32 KiB in base64, or
// of text whose escapes add at most a third: about 44 KiB.
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

// The data streams of a session. Records name them by these strings:
// "stdout", "stderr", "stdin", "keystrokes".
enum class DataStream { stdout_, stderr_, stdin_, keystrokes };

std::string_view data_stream_name(DataStream stream);
// Returns false for a name not in the list above.
bool parse_data_stream(std::string_view name, DataStream& stream);

// Names of the StreamRecording modes in records: "full", "head-tail",
// "digest".
std::string_view recording_mode_name(StreamRecording::Mode mode);
// Returns false for a name not in the list above.
bool parse_recording_mode(std::string_view name, StreamRecording::Mode& mode);

// Returns true for 64 lowercase hex digits, the form of `prev`.
bool is_sha256_hex(std::string_view text);

// Returns true when jead stores `bytes` as a JSON string: they are valid
// UTF-8, contain no C0 control other than tab, LF and CR, and the JSON
// string is no longer than the base64 object would be. Base64 adds a third
// and a 10-byte wrapper, so mostly escaped text goes to base64 too.
bool fits_json_string(std::string_view bytes);

// Encodes untrusted bytes as a JSON value: a string when fits_json_string()
// holds, otherwise {"b64": "<standard base64 with padding>"}. Text stays
// readable in the file, and binary data costs 4/3 of its size instead of
// up to 6 bytes per byte.
nlohmann::ordered_json encode_bytes(std::string_view bytes);

// Appends the JSON text of encode_bytes(bytes) to `out`, byte for byte what
// nlohmann::json::dump() writes for that value, without building a JSON
// value first. The writer uses it for bulk data such as program output.
void append_json_bytes(std::string& out, std::string_view bytes);

// Decodes a value written by encode_bytes. Rejects any other JSON type, an
// object with keys other than "b64", and invalid base64.
Result<std::string> decode_bytes(const nlohmann::ordered_json& value);

// Returns the lowercase hex SHA-256 of a record line (without its newline).
std::string line_hash(std::string_view line);

}  // namespace jead::transcript
