// The state behind TranscriptWriter, shared by writer.cc (file, chain and
// record layout) and writer_data.cc (data streams, recording modes and the
// size limit). Not for use outside transcripts/.
#pragma once

#include <unistd.h>

#include <array>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "transcripts/record_format.h"
#include "transcripts/signing.h"
#include "transcripts/stream_recorder.h"
#include "transcripts/writer.h"

namespace jead {

enum class Durability { buffered_by_kernel, synced };

// Whether a record counts against TranscriptOptions::max_bytes.
enum class SizeLimit { applies, exempt };

struct TranscriptWriter::Impl {
	using json = nlohmann::ordered_json;

	std::filesystem::path path;
	int fd = -1;
	std::uint64_t next_seq = 0;
	std::string prev_hash;
	std::string end_hash;              // set by the end record
	std::chrono::steady_clock::time_point start;
	std::uint64_t t_base_ms = 0;       // added to t; the last t of a reopened file
	std::optional<Error> failure;  // the first write error, after which every record is rejected
	bool ended = false;
	std::optional<TranscriptSigningKey> signing_key;
	std::uint64_t checkpoint_interval = 0;
	std::uint64_t records_since_checkpoint = 0;
	std::uint64_t file_bytes = 0;      // bytes in the file, newlines included
	std::uint64_t max_bytes = 0;       // TranscriptOptions::max_bytes
	bool truncated = false;            // a truncated record was written

	// Streams outside a command: full until the size limit is reached.
	std::array<transcript::StreamRecorder, 4> session_streams;
	// stdout, stderr and stdin of the command between begin_command() and
	// process_exit().
	std::optional<std::array<transcript::StreamRecorder, 3>> command_streams;
	mutable std::mutex mutex;

	~Impl()
	{
		if (fd >= 0)
			::close(fd);
	}

	// Appends a record, then a checkpoint when one is due. `data_json`, when
	// given, is the serialized value of a last field "data", spliced into
	// the line so that bulk data is not copied into a JSON value first.
	// Returns false, writing nothing, when `limit` applies and the record
	// would end past max_bytes.
	Result<bool> append(std::string_view type, json fields, Durability durability,
	                    const std::string* data_json = nullptr, SizeLimit limit = SizeLimit::exempt);
	Result<void> append_checkpoint(Durability durability);
	Result<bool> append_record(std::string_view type, json fields, Durability durability,
	                           const std::string* data_json = nullptr, SizeLimit limit = SizeLimit::exempt);
	Result<void> write_line(const std::string& line, Durability durability);
	tl::unexpected<Error> record_failure(const std::string& operation, int error);
	// The end record with `fields` (reason and any recovery fields), then
	// the checkpoint that signs it.
	Result<void> append_end(json fields);

	// Data path, in writer_data.cc.
	transcript::StreamRecorder& recorder(transcript::DataStream stream);
	// Records `data` of `stream` under its recorder's mode.
	Result<void> record_data(transcript::DataStream stream, std::span<const std::uint8_t> data);
	// Writes the truncated record and turns every stream into digest only.
	// `unrecorded` is the end of the current data that did not fit.
	Result<void> truncate(transcript::DataStream stream, std::string_view record_type,
	                      std::span<const std::uint8_t> unrecorded);
	// Writes the tail and digest records that end one stream.
	Result<void> finish_stream(transcript::DataStream stream, transcript::StreamRecorder& recorder);
	Result<void> finish_command();
	Result<void> finish_session_streams();
};

// Unwraps a Result<bool> of append() into Result<void>, for records exempt
// from the size limit.
inline Result<void> written(Result<bool> appended)
{
	if (!appended)
		return tl::unexpected(appended.error());
	return {};
}

}  // namespace jead
