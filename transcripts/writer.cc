#include "transcripts/writer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "transcripts/record_format.h"
#include "transcripts/signing.h"
#include "transcripts/time_format.h"
#include "transcripts/writer_impl.h"

namespace jead {

namespace {

using json = nlohmann::ordered_json;
using transcript::encode_bytes;

constexpr std::size_t kMaxSessionIdBytes = 128;

// A session id becomes a file name, so it must not contain '/' or be "." or "..".
bool is_safe_session_id(std::string_view id)
{
	if (id.empty() || id.size() > kMaxSessionIdBytes || id == "." || id == "..")
		return false;
	for (char c : id) {
		const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		                c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

std::string errno_text(int error)
{
	return std::strerror(error);
}

json encode_list(const std::vector<std::string>& items)
{
	json list = json::array();
	for (const auto& item : items)
		list.push_back(encode_bytes(item));
	return list;
}

json header_fields(const TranscriptHeader& h)
{
	json f;
	f["format"] = transcript::kFormatVersion;
	f["time"] = transcript::utc_now_iso8601();
	f["session_id"] = encode_bytes(h.session_id);
	f["host"] = encode_bytes(h.host);
	f["jead_version"] = encode_bytes(h.jead_version);
	f["start_time"] = h.start_time;
	f["client_address"] = encode_bytes(h.client_address);
	f["client_port"] = h.client_port;
	f["role"] = encode_bytes(h.role);
	f["key_id"] = encode_bytes(h.key_id);
	f["serial"] = h.serial;
	f["principals"] = encode_list(h.principals);
	f["ca_fingerprint"] = encode_bytes(h.ca_fingerprint);
	f["user_fingerprint"] = encode_bytes(h.user_fingerprint);
	f["valid_after"] = h.valid_after;
	f["valid_before"] = h.valid_before;
	f["mode"] = encode_bytes(h.mode);
	f["pty"] = h.pty;
	f["policy_version"] = encode_bytes(h.policy_version);
	f["break_glass"] = h.break_glass;
	f["columns"] = h.columns;
	f["rows"] = h.rows;
	return f;
}

json decision_fields(const DecisionRecord& d)
{
	json arguments = json::array();
	for (const auto& [name, value] : d.arguments)
		arguments.push_back(json{{"name", encode_bytes(name)}, {"value", encode_bytes(value)}});

	json f;
	f["allowed"] = d.allowed;
	f["reason"] = encode_bytes(d.reason);
	f["verb"] = encode_bytes(d.verb);
	f["arguments"] = std::move(arguments);
	f["argv"] = encode_list(d.argv);
	f["run_as"] = encode_bytes(d.run_as);
	f["policy_version"] = encode_bytes(d.policy_version);
	return f;
}

}  // namespace

tl::unexpected<Error> TranscriptWriter::Impl::record_failure(const std::string& operation, int error)
{
	failure = Error{Errc::io, operation + " transcript " + path.string() + " failed: " + errno_text(error)};
	return tl::unexpected(*failure);
}

Result<void> TranscriptWriter::Impl::write_line(const std::string& line, Durability durability)
{
	// One write() normally carries the whole line. A short write (a full disk
	// or a signal) continues where it stopped. Every pass either makes
	// progress or returns, and EINTR retries are capped at 100.
	std::size_t done = 0;
	int interrupts = 0;
	while (done < line.size()) {
		const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
		if (n < 0) {
			if (errno == EINTR && ++interrupts < 100)
				continue;
			return record_failure("write to", errno);
		}
		if (n == 0)
			return record_failure("write to", EIO);
		done += static_cast<std::size_t>(n);
	}

	if (durability == Durability::synced && ::fdatasync(fd) != 0)
		return record_failure("fdatasync of", errno);
	return {};
}

Result<bool> TranscriptWriter::Impl::append(std::string_view type, json fields, Durability durability,
                                            const std::string* data_json, SizeLimit limit)
{
	auto appended = append_record(type, std::move(fields), durability, data_json, limit);
	if (!appended || !*appended)
		return appended;

	++records_since_checkpoint;
	if (!signing_key || checkpoint_interval == 0 || records_since_checkpoint < checkpoint_interval)
		return true;
	if (auto signed_ = append_checkpoint(durability); !signed_)
		return tl::unexpected(signed_.error());
	return true;
}

Result<void> TranscriptWriter::Impl::append_checkpoint(Durability durability)
{
	auto signature = signing_key->sign(checkpoint_message(prev_hash));
	if (!signature) {
		failure = Error{Errc::internal, "signing a checkpoint for transcript " + path.string() +
		                                    " failed: " + signature.error().message};
		return tl::unexpected(*failure);
	}
	json fields{{"key", signing_key->fingerprint()}, {"signature", base64_encode(as_bytes(*signature))}};
	records_since_checkpoint = 0;
	return written(append_record("checkpoint", std::move(fields), durability));
}

Result<bool> TranscriptWriter::Impl::append_record(std::string_view type, json fields, Durability durability,
                                                   const std::string* data_json, SizeLimit limit)
{
	if (failure)
		return fail(Errc::io, "transcript " + path.string() + " rejects records after an earlier error: " +
		                          failure->message);
	if (ended)
		return fail(Errc::internal, "transcript " + path.string() + " already has its end record");

	const auto elapsed = std::chrono::steady_clock::now() - start;
	json record;
	record["seq"] = next_seq;
	record["t"] = t_base_ms + static_cast<std::uint64_t>(
		std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
	record["type"] = type;
	record["prev"] = prev_hash;
	for (auto& [key, value] : fields.items())
		record[key] = std::move(value);

	std::string line;
	try {
		line = record.dump();
	} catch (const nlohmann::json::exception& e) {
		// encode_bytes only produces valid UTF-8, so this is a bug.
		return fail(Errc::internal, "cannot serialize a " + std::string(type) + " record for " +
		                                path.string() + ": " + e.what());
	}
	if (data_json != nullptr) {
		line.pop_back();  // the closing brace of the object
		line += ",\"data\":";
		line += *data_json;
		line += '}';
	}
	if (line.size() > transcript::kMaxLineBytes)
		return fail(Errc::limit, "a " + std::string(type) + " record of " + std::to_string(line.size()) +
		                             " bytes exceeds the transcript line limit of " +
		                             std::to_string(transcript::kMaxLineBytes) + " bytes");

	if (limit == SizeLimit::applies && max_bytes != 0 && file_bytes + line.size() + 1 > max_bytes)
		return false;

	const std::string hash = transcript::line_hash(line);
	line += '\n';
	if (auto done = write_line(line, durability); !done)
		return tl::unexpected(done.error());

	file_bytes += line.size();
	prev_hash = hash;
	if (type == "end")
		end_hash = hash;
	++next_seq;
	return true;
}

Result<void> TranscriptWriter::Impl::append_end(json fields)
{
	if (auto done = written(append_record("end", std::move(fields), Durability::synced)); !done)
		return done;
	Result<void> result;
	if (signing_key)
		result = append_checkpoint(Durability::synced);
	ended = true;
	return result;
}

TranscriptWriter::TranscriptWriter() : impl_(std::make_unique<Impl>()) {}

TranscriptWriter::~TranscriptWriter()
{
	if (!impl_)
		return;
	bool seal = false;
	{
		std::lock_guard lock(impl_->mutex);
		seal = !impl_->ended && !impl_->failure && impl_->fd >= 0;
	}
	if (seal)
		(void)end("abnormal");
}

Result<std::unique_ptr<TranscriptWriter>> TranscriptWriter::create(const std::filesystem::path& dir,
                                                                   const TranscriptHeader& header,
                                                                   const TranscriptOptions& options)
{
	if (!is_safe_session_id(header.session_id))
		return fail(Errc::invalid, "invalid session id for a transcript file name: " + header.session_id +
		                               " (expected 1 to 128 of [A-Za-z0-9._-])");
	std::string previous = options.previous_end_hash.empty() ? std::string(transcript::kZeroHash)
	                                                         : options.previous_end_hash;
	if (!transcript::is_sha256_hex(previous))
		return fail(Errc::invalid, "invalid previous_end_hash: expected 64 lowercase hex digits");

	std::unique_ptr<TranscriptWriter> writer(new TranscriptWriter());
	Impl& impl = *writer->impl_;
	impl.path = dir / (header.session_id + ".jsonl");
	impl.prev_hash = std::move(previous);
	impl.start = std::chrono::steady_clock::now();
	impl.checkpoint_interval = options.checkpoint_interval;
	impl.max_bytes = options.max_bytes;
	if (!options.signing_key.empty()) {
		auto key = TranscriptSigningKey::load(options.signing_key);
		if (!key)
			return tl::unexpected(key.error());
		impl.signing_key = std::move(*key);
	}

	impl.fd = ::open(impl.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (impl.fd < 0)
		return fail(Errc::io, "create transcript " + impl.path.string() + " failed: " + errno_text(errno));
	// The umask can only clear bits of 0600, and the file must stay readable
	// by its owner, so set the mode explicitly.
	if (::fchmod(impl.fd, 0600) != 0)
		return impl.record_failure("chmod of", errno);

	// The lock marks this session as alive for seal_abandoned_transcripts()
	// in any jead process. It is advisory, so a file system without
	// flock() support only loses that protection.
	if (::flock(impl.fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
		return impl.record_failure("lock of", errno);

	if (auto done = written(impl.append("header", header_fields(header), Durability::synced)); !done) {
		// Keeps the destructor from appending an end record to a file
		// without a header.
		impl.failure = done.error();
		return tl::unexpected(done.error());
	}

	// Make the new directory entry durable too, or a crash could lose the
	// whole file although its header was synced.
	const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return impl.record_failure("open of the directory of", errno);
	const int synced = ::fsync(dir_fd);
	const int sync_error = errno;
	::close(dir_fd);
	// Some file systems return EINVAL for fsync on a directory. The entry is
	// then as durable as that file system makes it.
	if (synced != 0 && sync_error != EINVAL)
		return impl.record_failure("fsync of the directory of", sync_error);

	return writer;
}

Result<void> TranscriptWriter::input(std::string_view command_line)
{
	std::lock_guard lock(impl_->mutex);
	return written(impl_->append("input", json{{"line", encode_bytes(command_line)}}, Durability::buffered_by_kernel));
}

Result<void> TranscriptWriter::keystrokes(std::string_view bytes)
{
	std::lock_guard lock(impl_->mutex);
	return impl_->record_data(transcript::DataStream::keystrokes, as_bytes(bytes));
}

Result<void> TranscriptWriter::warning(std::string_view text)
{
	std::lock_guard lock(impl_->mutex);
	return written(impl_->append("warning", json{{"text", encode_bytes(text)}}, Durability::buffered_by_kernel));
}

Result<void> TranscriptWriter::resize(int columns, int rows)
{
	std::lock_guard lock(impl_->mutex);
	return written(
		impl_->append("resize", json{{"columns", columns}, {"rows", rows}}, Durability::buffered_by_kernel));
}

Result<void> TranscriptWriter::decision(const DecisionRecord& record)
{
	std::lock_guard lock(impl_->mutex);
	return written(impl_->append("decision", decision_fields(record), Durability::synced));
}

Result<void> TranscriptWriter::process_start(int pid)
{
	std::lock_guard lock(impl_->mutex);
	return written(impl_->append("process_start", json{{"pid", pid}}, Durability::buffered_by_kernel));
}

Result<void> TranscriptWriter::end(std::string_view reason)
{
	if (!transcript::is_end_reason(reason))
		return fail(Errc::invalid, "invalid transcript end reason \"" + std::string(reason) +
		                               "\" (expected client-closed, exit, idle-timeout, expired, revoked, "
		                               "server-shutdown, error or abnormal)");

	std::lock_guard lock(impl_->mutex);
	if (auto done = impl_->finish_command(); !done)
		return done;
	if (auto done = impl_->finish_session_streams(); !done)
		return done;
	return impl_->append_end(json{{"reason", reason}});
}

Result<void> TranscriptWriter::end_abandoned(const AbandonedSession& session)
{
	json fields;
	fields["reason"] = "abnormal";
	fields["recovered_at"] = session.recovered_at;
	fields["last_seq"] = session.last_seq;
	fields["process_running"] = session.running_pid.has_value();
	if (session.running_pid)
		fields["pid"] = *session.running_pid;
	fields["cut_bytes"] = session.cut_bytes;
	if (session.cut_bytes > 0) {
		fields["cut_sha256"] = session.cut_sha256;
		fields["cut_file"] = encode_bytes(session.cut_file);
	}

	std::lock_guard lock(impl_->mutex);
	return impl_->append_end(std::move(fields));
}

Result<void> TranscriptWriter::sign_end()
{
	std::lock_guard lock(impl_->mutex);
	if (!impl_->signing_key)
		return fail(Errc::invalid, "no signing key for transcript " + impl_->path.string());
	// append_record() rejects records after the end, so sign directly.
	impl_->ended = false;
	auto done = impl_->append_checkpoint(Durability::synced);
	impl_->ended = true;
	return done;
}

const std::filesystem::path& TranscriptWriter::path() const
{
	return impl_->path;
}

std::string TranscriptWriter::last_hash() const
{
	std::lock_guard lock(impl_->mutex);
	return impl_->prev_hash;
}

std::string TranscriptWriter::end_hash() const
{
	std::lock_guard lock(impl_->mutex);
	return impl_->end_hash;
}

Result<std::unique_ptr<TranscriptWriter>> TranscriptWriter::reopen(int fd, const std::filesystem::path& path,
                                                                   const Continuation& continuation,
                                                                   const TranscriptOptions& options)
{
	std::unique_ptr<TranscriptWriter> writer(new TranscriptWriter());
	Impl& impl = *writer->impl_;
	impl.fd = fd;
	impl.path = path;
	impl.next_seq = continuation.next_seq;
	impl.prev_hash = continuation.prev_hash;
	impl.t_base_ms = continuation.last_t_ms;
	impl.start = std::chrono::steady_clock::now();
	impl.ended = continuation.ended;
	impl.checkpoint_interval = 0;
	if (!options.signing_key.empty()) {
		auto key = TranscriptSigningKey::load(options.signing_key);
		if (!key) {
			// Keeps the destructor from appending an end record.
			impl.failure = key.error();
			return tl::unexpected(key.error());
		}
		impl.signing_key = std::move(*key);
	}

	const off_t size = ::lseek(fd, 0, SEEK_END);
	if (size < 0)
		return impl.record_failure("seek in", errno);
	impl.file_bytes = static_cast<std::uint64_t>(size);
	return writer;
}

}  // namespace jead
