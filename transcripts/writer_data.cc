// TranscriptWriter's data path: output, stdin and keystrokes records under
// the recording mode of each stream, the tail and digest records that end a
// command's streams, and the switch to digests at the size limit.
#include <algorithm>

#include "common/encoding.h"
#include "transcripts/writer_impl.h"

namespace jead {

namespace {

using json = nlohmann::ordered_json;
using transcript::DataStream;
using transcript::StreamRecorder;

// Returns the length of the longest prefix of `data`, at most `limit` bytes,
// that does not end inside a UTF-8 sequence, so valid UTF-8 output that is
// split over records stays readable text in each record. Falls back to
// `limit` when no boundary is found within three bytes.
std::size_t utf8_aware_cut(std::span<const std::uint8_t> data, std::size_t limit)
{
	if (data.size() <= limit)
		return data.size();
	for (std::size_t back = 0; back < 4; ++back) {
		const std::uint8_t b = data[limit - back];
		if ((b & 0xC0) != 0x80)
			return back == 0 ? limit : limit - back;
	}
	return limit;
}

std::string_view record_type_of(DataStream stream)
{
	switch (stream) {
	case DataStream::stdout_:
	case DataStream::stderr_: return "output";
	case DataStream::stdin_: return "stdin";
	case DataStream::keystrokes: return "keystrokes";
	}
	return "output";
}

// The fields before "data" of a record that carries `stream`'s bytes.
json data_fields(DataStream stream)
{
	if (stream == DataStream::stdout_ || stream == DataStream::stderr_)
		return json{{"stream", transcript::data_stream_name(stream)}};
	return json::object();
}

std::size_t command_index(DataStream stream)
{
	if (stream == DataStream::stdout_)
		return 0;
	if (stream == DataStream::stderr_)
		return 1;
	return 2;
}

}  // namespace

StreamRecorder& TranscriptWriter::Impl::recorder(DataStream stream)
{
	if (command_streams && stream != DataStream::keystrokes)
		return (*command_streams)[command_index(stream)];
	return session_streams[static_cast<std::size_t>(stream)];
}

Result<void> TranscriptWriter::Impl::record_data(DataStream stream, std::span<const std::uint8_t> data)
{
	StreamRecorder& target = recorder(stream);
	const std::size_t head = target.accept(data);
	const std::string_view type = record_type_of(stream);

	// Each pass writes at least one byte or returns, so the loop ends after
	// at most `head` passes.
	std::string data_json;
	std::size_t done = 0;
	while (done < head) {
		const std::size_t n = utf8_aware_cut(data.subspan(done, head - done), transcript::kMaxOutputBytesPerRecord);
		const std::string_view chunk(reinterpret_cast<const char*>(data.data()) + done, n);
		data_json.clear();
		transcript::append_json_bytes(data_json, chunk);
		auto appended = append(type, data_fields(stream), Durability::buffered_by_kernel, &data_json,
		                       SizeLimit::applies);
		if (!appended)
			return tl::unexpected(appended.error());
		if (!*appended)
			return truncate(stream, type, data.subspan(done));
		target.recorded(n);
		done += n;
	}

	target.keep_tail(data.subspan(head));
	return {};
}

Result<void> TranscriptWriter::Impl::truncate(DataStream stream, std::string_view record_type,
                                              std::span<const std::uint8_t> unrecorded)
{
	json fields;
	fields["limit"] = max_bytes;
	fields["size"] = file_bytes;
	fields["record"] = record_type;
	fields["stream"] = transcript::data_stream_name(stream);
	if (auto done = written(append("truncated", std::move(fields), Durability::buffered_by_kernel)); !done)
		return done;
	truncated = true;

	StreamRecorder& current = recorder(stream);
	for (auto& other : session_streams)
		other.drop_to_digest(&other == &current ? unrecorded : std::span<const std::uint8_t>{});
	if (command_streams) {
		for (auto& other : *command_streams)
			other.drop_to_digest(&other == &current ? unrecorded : std::span<const std::uint8_t>{});
	}
	return {};
}

Result<void> TranscriptWriter::Impl::finish_stream(DataStream stream, StreamRecorder& source)
{
	const auto name = transcript::data_stream_name(stream);
	if (source.tail().size() > 0 && !source.digest_only()) {
		const std::string tail = source.tail().contents();
		std::uint64_t skipped = source.skipped();
		const auto bytes = as_bytes(tail);

		// Each pass writes at least one byte or returns.
		std::string data_json;
		std::size_t done = 0;
		while (done < bytes.size()) {
			const std::size_t n = utf8_aware_cut(bytes.subspan(done), transcript::kMaxOutputBytesPerRecord);
			data_json.clear();
			transcript::append_json_bytes(data_json, tail.substr(done, n));
			json fields{{"stream", name}, {"skipped", skipped}};
			auto appended = append("tail", std::move(fields), Durability::buffered_by_kernel, &data_json,
			                       SizeLimit::applies);
			if (!appended)
				return tl::unexpected(appended.error());
			if (!*appended) {
				if (auto cut = truncate(stream, "tail", {}); !cut)
					return cut;
				break;
			}
			skipped = 0;
			done += n;
		}
	}

	if (!source.has_digest())
		return {};
	// A full stream that got no bytes after the size limit needs no digest.
	if (source.recording().mode == StreamRecording::Mode::full && source.total() == source.digest_offset())
		return {};
	json fields;
	fields["stream"] = name;
	fields["offset"] = source.digest_offset();
	fields["bytes"] = source.total() - source.digest_offset();
	fields["sha256"] = source.finish_digest();
	return written(append("digest", std::move(fields), Durability::buffered_by_kernel));
}

Result<void> TranscriptWriter::Impl::finish_command()
{
	if (!command_streams)
		return {};
	for (const DataStream stream : {DataStream::stdout_, DataStream::stderr_, DataStream::stdin_}) {
		if (auto done = finish_stream(stream, (*command_streams)[command_index(stream)]); !done)
			return done;
	}
	command_streams.reset();
	return {};
}

Result<void> TranscriptWriter::Impl::finish_session_streams()
{
	for (const DataStream stream : {DataStream::stdout_, DataStream::stderr_, DataStream::stdin_, DataStream::keystrokes}) {
		if (auto done = finish_stream(stream, session_streams[static_cast<std::size_t>(stream)]); !done)
			return done;
	}
	return {};
}

Result<void> TranscriptWriter::begin_command(const StreamRecording& output, const StreamRecording& input)
{
	for (const StreamRecording* recording : {&output, &input}) {
		if (recording->tail_bytes > StreamRecording::kMaxTailBytes)
			return fail(Errc::invalid, "a tail of " + std::to_string(recording->tail_bytes) +
			                               " bytes exceeds the limit of " +
			                               std::to_string(StreamRecording::kMaxTailBytes) + " bytes");
	}

	std::lock_guard lock(impl_->mutex);
	if (impl_->command_streams)
		return fail(Errc::invalid, "begin_command() called twice without process_exit() in transcript " +
		                               impl_->path.string());

	json fields;
	fields["output"] = transcript::recording_mode_name(output.mode);
	fields["output_head"] = output.head_bytes;
	fields["output_tail"] = output.tail_bytes;
	fields["stdin"] = transcript::recording_mode_name(input.mode);
	fields["stdin_head"] = input.head_bytes;
	fields["stdin_tail"] = input.tail_bytes;
	if (auto done = written(impl_->append("recording", std::move(fields), Durability::buffered_by_kernel)); !done)
		return done;

	impl_->command_streams.emplace(
		std::array<StreamRecorder, 3>{StreamRecorder(output), StreamRecorder(output), StreamRecorder(input)});
	// After the size limit every new stream starts as digest only.
	if (impl_->truncated) {
		for (auto& stream : *impl_->command_streams)
			stream.drop_to_digest({});
	}
	return {};
}

Result<void> TranscriptWriter::output(OutputStream stream, std::span<const std::uint8_t> data)
{
	std::lock_guard lock(impl_->mutex);
	return impl_->record_data(stream == OutputStream::stdout_ ? DataStream::stdout_ : DataStream::stderr_, data);
}

Result<void> TranscriptWriter::stdin_data(std::span<const std::uint8_t> data)
{
	std::lock_guard lock(impl_->mutex);
	return impl_->record_data(DataStream::stdin_, data);
}

Result<void> TranscriptWriter::process_exit(int exit_status, int signal, std::chrono::milliseconds duration,
                                            std::uint64_t bytes_out, std::string_view note)
{
	json fields;
	if (signal == 0)
		fields["status"] = exit_status;
	else
		fields["signal"] = signal;
	fields["duration_ms"] = static_cast<std::int64_t>(duration.count());
	fields["bytes_out"] = bytes_out;
	fields["note"] = transcript::encode_bytes(note);

	std::lock_guard lock(impl_->mutex);
	if (auto done = impl_->finish_command(); !done)
		return done;
	return written(impl_->append("process_exit", std::move(fields), Durability::buffered_by_kernel));
}

}  // namespace jead
