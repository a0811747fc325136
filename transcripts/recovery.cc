#include "transcripts/recovery.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>
#include <variant>

#include "common/encoding.h"
#include "transcripts/reader.h"
#include "transcripts/terminal_text.h"
#include "transcripts/time_format.h"
#include "transcripts/verify.h"

namespace jead {

namespace {

namespace fs = std::filesystem;

// Maximum directory entries examined, as in jea-replay.
constexpr std::size_t kMaxDirectoryEntries = 1'000'000;

Result<std::vector<fs::path>> transcript_files(const fs::path& dir)
{
	std::error_code error;
	fs::directory_iterator it(dir, error);
	if (error)
		return fail(Errc::io, "open of directory " + display_token(dir.string()) + " failed: " + error.message());

	std::vector<fs::path> files;
	std::size_t seen = 0;
	for (; it != fs::directory_iterator(); it.increment(error)) {
		if (error)
			return fail(Errc::io, "reading directory " + display_token(dir.string()) + " failed: " + error.message());
		if (++seen > kMaxDirectoryEntries)
			return fail(Errc::limit, "directory " + display_token(dir.string()) + " has more than " +
			                             std::to_string(kMaxDirectoryEntries) + " entries");
		if (it->path().extension() == ".jsonl")
			files.push_back(it->path());
	}
	std::sort(files.begin(), files.end());
	return files;
}

// Closes a descriptor unless ownership moved on.
class FileDescriptor {
public:
	explicit FileDescriptor(int fd) : fd_(fd) {}
	~FileDescriptor()
	{
		if (fd_ >= 0)
			::close(fd_);
	}
	FileDescriptor(const FileDescriptor&) = delete;
	FileDescriptor& operator=(const FileDescriptor&) = delete;
	int get() const { return fd_; }
	int release() { return std::exchange(fd_, -1); }

private:
	int fd_;
};

std::string errno_text(int error)
{
	return std::strerror(error);
}

// Writes `bytes` to a new file `path` and makes it durable.
Result<void> write_aside(const fs::path& path, std::string_view bytes)
{
	FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
	if (fd.get() < 0)
		return fail(Errc::io, "create of " + display_token(path.string()) + " failed: " + errno_text(errno));
	// One pass per partial write; a zero or failed write returns.
	std::size_t done = 0;
	while (done < bytes.size()) {
		const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			return fail(Errc::io, "write to " + display_token(path.string()) + " failed: " + errno_text(n < 0 ? errno : EIO));
		if (n > 0)
			done += static_cast<std::size_t>(n);
	}
	if (::fsync(fd.get()) != 0)
		return fail(Errc::io, "fsync of " + display_token(path.string()) + " failed: " + errno_text(errno));

	FileDescriptor dir(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (dir.get() >= 0 && ::fsync(dir.get()) != 0 && errno != EINVAL)
		return fail(Errc::io, "fsync of the directory of " + display_token(path.string()) + " failed: " +
		                          errno_text(errno));
	return {};
}

// The state recorded by the complete records of an unsealed transcript.
struct TranscriptState {
	TranscriptWriter::Continuation continuation;
	std::optional<int> running_pid;
	bool last_is_end = false;
};

TranscriptState read_state(const Transcript& transcript)
{
	TranscriptState state;
	for (const auto& record : transcript.records) {
		if (const auto* start = std::get_if<ProcessStartRecord>(&record.body))
			state.running_pid = start->pid;
		else if (std::holds_alternative<ProcessExitRecord>(record.body))
			state.running_pid.reset();
	}
	const TranscriptRecord& last = transcript.records.back();
	state.continuation.next_seq = last.seq + 1;
	state.continuation.prev_hash = last.hash;
	state.continuation.last_t_ms = last.t_ms;
	state.last_is_end = std::holds_alternative<EndRecord>(last.body);
	state.continuation.ended = state.last_is_end;
	return state;
}

SealOutcome left_as_is(const fs::path& path, std::string why)
{
	return SealOutcome{path, false, display_token(path.string()) + ": left as is: " + why};
}

// Seals one transcript, or returns std::nullopt when it needs nothing.
std::optional<SealOutcome> seal_one(const fs::path& path, const TranscriptOptions& options)
{
	const std::string name = display_token(path.string());
	FileDescriptor fd(::open(path.c_str(), O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC));
	if (fd.get() < 0)
		return left_as_is(path, "open failed: " + errno_text(errno));
	if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
		return std::nullopt;  // a live session's writer holds the lock

	// NOTE: this reads each transcript whole, so a start-up over many large
	// transcripts costs their total size in reads.
	auto content = read_transcript_fd(fd.get(), path.string());
	if (!content)
		return left_as_is(path, escape_for_terminal(content.error().message, TextLayout::single_line));

	const VerifyResult verified = verify_transcript(*content, path.string());
	const bool wants_checkpoint = !options.signing_key.empty();
	if (verified.status == VerifyStatus::tampered || verified.status == VerifyStatus::unreadable)
		return left_as_is(path, describe_verify_result(verified));
	if (verified.records == 0)
		return left_as_is(path, "no complete header record");

	PartialTranscript parsed = parse_transcript_prefix(*content, path.string());
	const TranscriptState state = read_state(parsed.transcript);
	if (verified.status == VerifyStatus::ok && !(wants_checkpoint && state.last_is_end))
		return std::nullopt;

	AbandonedSession session;
	session.recovered_at = transcript::utc_now_iso8601();
	session.last_seq = state.continuation.next_seq - 1;
	session.running_pid = state.running_pid;

	// Move a record cut short aside before cutting it from the transcript,
	// so its bytes survive a crash between the two steps.
	const std::size_t trailing = parsed.transcript.trailing_bytes;
	if (trailing > 0) {
		const std::string_view cut = std::string_view(*content).substr(content->size() - trailing);
		const fs::path aside = path.string() + ".cut";
		if (auto written = write_aside(aside, cut); !written)
			return left_as_is(path, escape_for_terminal(written.error().message, TextLayout::single_line));
		if (::ftruncate(fd.get(), static_cast<off_t>(content->size() - trailing)) != 0)
			return left_as_is(path, "truncate failed: " + errno_text(errno));
		session.cut_bytes = trailing;
		session.cut_sha256 = hex_encode(sha256(as_bytes(cut)));
		session.cut_file = aside.filename().string();
	}

	auto writer = TranscriptWriter::reopen(fd.release(), path, state.continuation, options);
	if (!writer)
		return left_as_is(path, escape_for_terminal(writer.error().message, TextLayout::single_line));
	if (state.last_is_end) {
		if (auto signed_end = (*writer)->sign_end(); !signed_end)
			return left_as_is(path, escape_for_terminal(signed_end.error().message, TextLayout::single_line));
		return SealOutcome{path, true, name + ": signed its end record"};
	}
	if (auto ended = (*writer)->end_abandoned(session); !ended)
		return left_as_is(path, escape_for_terminal(ended.error().message, TextLayout::single_line));

	std::string message = name + ": sealed with an abnormal end after seq " + std::to_string(session.last_seq);
	message += session.running_pid ? "; process " + std::to_string(*session.running_pid) + " was running"
	                               : "; no process was running";
	if (trailing > 0)
		message += "; " + std::to_string(trailing) + " bytes of a record cut short moved to " +
		           display_token(session.cut_file);
	return SealOutcome{path, true, message};
}

}  // namespace

Result<std::vector<SealOutcome>> seal_abandoned_transcripts(const fs::path& dir, const TranscriptOptions& options)
{
	auto files = transcript_files(dir);
	if (!files)
		return tl::unexpected(files.error());

	std::vector<SealOutcome> outcomes;
	for (const auto& file : *files) {
		if (auto outcome = seal_one(file, options))
			outcomes.push_back(std::move(*outcome));
	}
	return outcomes;
}

Result<std::string> newest_end_hash(const fs::path& dir)
{
	auto files = transcript_files(dir);
	if (!files)
		return tl::unexpected(files.error());

	std::string newest_hash;
	std::optional<std::int64_t> newest_ms;
	for (const auto& file : *files) {
		auto content = read_transcript_bytes(file);
		if (!content)
			continue;
		const VerifyResult verified = verify_transcript(*content, file.string());
		if (verified.status != VerifyStatus::ok || verified.end_hash.empty())
			continue;
		const PartialTranscript parsed = parse_transcript_prefix(*content, file.string());
		const auto& records = parsed.transcript.records;
		const auto* header = std::get_if<HeaderRecord>(&records.front().body);
		const auto end = std::find_if(records.rbegin(), records.rend(), [](const TranscriptRecord& r) {
			return std::holds_alternative<EndRecord>(r.body);
		});
		const auto start_ms = header ? transcript::parse_utc_time_ms(header->time) : std::nullopt;
		if (!start_ms || end == records.rend())
			continue;

		// Files are sorted by name, so on a tie the later name wins.
		const std::int64_t end_ms = *start_ms + static_cast<std::int64_t>(end->t_ms);
		if (!newest_ms || end_ms >= *newest_ms) {
			newest_ms = end_ms;
			newest_hash = verified.end_hash;
		}
	}
	return newest_hash;
}

}  // namespace jead
