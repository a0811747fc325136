// Parses transcript files (format versions 1 and 2, see FORMAT.md) into typed
// records. Every input is treated as untrusted: lines and record counts are
// capped, unknown fields and duplicate keys are rejected, and each error
// names the file and the 1-based line number.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "transcripts/record_format.h"
#include "transcripts/writer.h"

namespace jead {

struct HeaderRecord {
	int format = 0;
	std::string time;  // wall-clock creation time, ISO 8601 UTC, as written
	TranscriptHeader header;
};

struct InputRecord {
	std::string line;
};

struct ProcessStartRecord {
	int pid = 0;
};

struct OutputRecord {
	OutputStream stream = OutputStream::stdout_;
	std::string data;  // the exact bytes, not necessarily UTF-8
};

struct ProcessExitRecord {
	std::optional<int> status;  // set when the process exited normally
	std::optional<int> signal;  // set when a signal ended it; never both
	std::int64_t duration_ms = 0;
	std::uint64_t bytes_out = 0;
	std::string note;
};

struct EndRecord {
	std::string reason;
	// Set on the end record that seal_abandoned_transcripts() appended.
	std::optional<AbandonedSession> recovery;
};

struct KeystrokesRecord {
	std::string data;  // the exact bytes received from the client's terminal
};

struct WarningRecord {
	std::string text;
};

struct ResizeRecord {   // format 3
	int columns = 0;
	int rows = 0;
};

// An Ed25519 signature over checkpoint_message(prev), see signing.h.
struct CheckpointRecord {
	std::string key_fingerprint;  // "SHA256:..." of the signing key
	std::string signature;        // 64 raw bytes
};

// The recording modes of a command's streams (format 2).
struct RecordingRecord {
	StreamRecording output;
	StreamRecording input;
};

// Bytes the program read from the client (format 2).
struct StdinRecord {
	std::string data;
};

// The last bytes of a head-tail stream, written at process exit (format 2).
struct TailRecord {
	transcript::DataStream stream = transcript::DataStream::stdout_;
	std::uint64_t skipped = 0;  // bytes left out between the earlier records and `data`
	std::string data;
};

// Byte count and SHA-256 of a stream or of its end (format 2).
struct DigestRecord {
	transcript::DataStream stream = transcript::DataStream::stdout_;
	std::uint64_t offset = 0;  // stream bytes before the first byte covered
	std::uint64_t bytes = 0;   // bytes covered
	std::string sha256;        // lowercase hex
};

// The point where the transcript reached TranscriptOptions::max_bytes (format 2).
struct TruncatedRecord {
	std::uint64_t limit = 0;  // max_bytes
	std::uint64_t size = 0;   // file size before this record
	std::string record;       // type of the record that did not fit
	transcript::DataStream stream = transcript::DataStream::stdout_;
};

// The type-specific part of a record. DecisionRecord is the writer's type.
using RecordBody = std::variant<HeaderRecord, InputRecord, DecisionRecord, ProcessStartRecord,
                                OutputRecord, ProcessExitRecord, EndRecord, KeystrokesRecord, WarningRecord,
                                CheckpointRecord, RecordingRecord, StdinRecord, TailRecord, DigestRecord,
                                TruncatedRecord, ResizeRecord>;

struct TranscriptRecord {
	std::uint64_t seq = 0;
	std::uint64_t t_ms = 0;   // milliseconds since the header, monotonic clock
	std::string prev;         // hex SHA-256 of the previous line, as stored
	std::string hash;         // hex SHA-256 of this record's line, computed
	std::size_t line_number = 0;
	RecordBody body;
};

// Returns the record's `type` name: "header", "input", "decision", ...
std::string_view record_type_name(const RecordBody& body);

struct ReadLimits {
	std::size_t max_line_bytes = transcript::kMaxLineBytes;
	// Even the smallest records (about 100 bytes) would need 1 GB for 10
	// million, so this cap matters only when max_file_bytes is raised.
	std::size_t max_records = 10'000'000;
	// NOTE: read_transcript() keeps the whole file in memory, so this cap
	// also bounds the memory of one read.
	std::uint64_t max_file_bytes = std::uint64_t{1} << 30;
};

// Parses an in-memory transcript one line at a time, so a caller such as the
// verifier can stop at the first bad line and still know where it was.
class TranscriptParser {
public:
	// `name` is used in error messages, normally the file path. `content`
	// must outlive the parser.
	TranscriptParser(std::string_view content, std::string name, ReadLimits limits = {});

	// Returns the next record, std::nullopt after the last complete line, or
	// an error "<name>:<line>: <reason>". A final line without a newline is
	// not parsed: it is a record cut short, see trailing_bytes().
	Result<std::optional<TranscriptRecord>> next();

	// The 1-based number of the line last read by next().
	std::size_t line_number() const { return line_number_; }
	// The bytes after the last newline, once next() has returned std::nullopt.
	std::string_view trailing_bytes() const;

private:
	std::string_view content_;
	std::string name_;
	ReadLimits limits_;
	std::size_t offset_ = 0;
	std::size_t line_number_ = 0;
	int format_ = transcript::kFormatVersion;  // the header's, once read
};

struct Transcript {
	std::string name;
	std::vector<TranscriptRecord> records;  // in file order
	std::size_t trailing_bytes = 0;         // bytes of a last record cut short; 0 if none
};

// Parses every complete line, failing on the first malformed one. Does not
// check seq or the hash chain: that is verify_transcript() in verify.h.
Result<Transcript> parse_transcript(std::string_view content, std::string name, ReadLimits limits = {});

// Parses the records before the first malformed line, for showing a damaged
// transcript. `error` is the parse error that stopped it, if any.
struct PartialTranscript {
	Transcript transcript;
	std::optional<Error> error;
};
PartialTranscript parse_transcript_prefix(std::string_view content, std::string name, ReadLimits limits = {});

// Reads a whole file, at most limits.max_file_bytes, without following a
// symlink in the last path component.
Result<std::string> read_transcript_bytes(const std::filesystem::path& path, const ReadLimits& limits = {});

// Reads all of an open transcript file, whose offset must be 0, at most
// limits.max_file_bytes. `name` is used in error messages.
Result<std::string> read_transcript_fd(int fd, const std::string& name, const ReadLimits& limits = {});

// read_transcript_bytes() then parse_transcript().
Result<Transcript> read_transcript(const std::filesystem::path& path, const ReadLimits& limits = {});

}  // namespace jead
