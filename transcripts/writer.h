// Writes one session channel's transcript: JSON Lines, a header then events,
// each record chained to the previous one by SHA-256. FORMAT.md specifies the
// file format.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace jead {

struct TranscriptHeader {
	std::string session_id;            // also the file name: [A-Za-z0-9._-], at most 128 bytes
	std::string host;
	std::string jead_version;
	std::int64_t start_time = 0;       // seconds since the epoch
	std::string client_address;
	int client_port = 0;
	std::string role;
	std::string key_id;
	std::uint64_t serial = 0;
	std::vector<std::string> principals;
	std::string ca_fingerprint;
	std::string user_fingerprint;
	std::uint64_t valid_after = 0;
	std::uint64_t valid_before = 0;
	std::string mode;                  // "exec", "shell", "subsystem"
	bool pty = false;
	std::string policy_version;
	bool break_glass = false;          // the role is a break-glass role (format 3)
	int columns = 0;                   // the pty's size at the start, 0 without one (format 3)
	int rows = 0;
};

struct DecisionRecord {
	bool allowed = false;
	std::string reason;
	std::string verb;
	std::vector<std::pair<std::string, std::string>> arguments;  // name, value
	std::vector<std::string> argv;
	std::string run_as;
	std::string policy_version;
};

enum class OutputStream { stdout_, stderr_ };

// How much of one data stream of a command the transcript keeps. Roles set
// it per verb with record_output, record_stdin, record_head and record_tail.
struct StreamRecording {
	enum class Mode {
		full,       // every byte, in output or stdin records
		head_tail,  // the first head_bytes in records, the last tail_bytes at process exit
		digest,     // only the byte count and SHA-256, at process exit
	};
	Mode mode = Mode::full;
	std::uint64_t head_bytes = 64 * 1024;
	// Kept in memory until the process exits, so at most kMaxTailBytes.
	std::uint64_t tail_bytes = 64 * 1024;

	static constexpr std::uint64_t kMaxTailBytes = 16 * 1024 * 1024;
};

// The facts seal_abandoned_transcripts() recovers about a session that
// ended without an end record, written as extra fields of its `end` record.
struct AbandonedSession {
	std::string recovered_at;          // wall-clock time of the recovery, ISO 8601 UTC
	std::uint64_t last_seq = 0;        // seq of the last complete record
	std::optional<int> running_pid;    // set when a process_start had no process_exit
	std::uint64_t cut_bytes = 0;       // bytes of a last line cut short, moved aside
	std::string cut_sha256;            // hex SHA-256 of those bytes, when cut_bytes > 0
	std::string cut_file;              // file name they were moved to, when cut_bytes > 0
};

struct TranscriptOptions {
	// The `prev` of the header: the hex SHA-256 of the previous session's
	// `end` record line, which links transcripts into one chain. Empty means
	// 64 zeros (no predecessor).
	std::string previous_end_hash;

	// A PEM Ed25519 private key, mode 0600. When set, the writer appends a
	// signed `checkpoint` record after every `checkpoint_interval` records
	// (0: none in between) and after the `end` record.
	std::filesystem::path signing_key;
	std::uint64_t checkpoint_interval = 100;

	// The size in bytes up to which the transcript keeps data (output,
	// stdin, tail and keystrokes records); 0 for no limit. The first data
	// record that would end past it is replaced by one `truncated` record,
	// and from then on every stream keeps only its byte count and SHA-256.
	// Header, input, warning, decision, recording, process_start, digest,
	// process_exit, end and checkpoint records are written past the limit
	// too, so the file can grow beyond it by those records: a few hundred
	// bytes per command plus its input and decision records.
	std::uint64_t max_bytes = 0;
};

// Appends records to a transcript file. Every write error is returned with
// the path and strerror, and after one the writer rejects every further
// record, so the caller must stop the program and end the session. The
// methods may be called from several threads, because an internal mutex
// serializes the records.
class TranscriptWriter {
public:
	// Creates "<dir>/<session_id>.jsonl" with mode 0600 and writes the
	// header durably (write, then fdatasync of the file and fsync of `dir`).
	// Fails if the path exists (a symlink included), if the session id is
	// not a safe file name, if options.signing_key cannot be loaded, or if
	// the file cannot be created or written.
	static Result<std::unique_ptr<TranscriptWriter>> create(const std::filesystem::path& dir,
	                                                        const TranscriptHeader& header,
	                                                        const TranscriptOptions& options = {});
	// Appends an `end` record with reason "abnormal" when end() was never
	// called and no write had failed, so a session torn down early is still
	// sealed.
	~TranscriptWriter();

	TranscriptWriter(const TranscriptWriter&) = delete;
	TranscriptWriter& operator=(const TranscriptWriter&) = delete;

	Result<void> input(std::string_view command_line);
	// Raw keystrokes of an interactive session, as received, editing keys
	// included.
	Result<void> keystrokes(std::string_view bytes);
	// A notice the session's user was given, such as an approaching expiry.
	Result<void> warning(std::string_view text);
	// A new size of the session's pty, so that a replay lays out the
	// output as the user saw it.
	Result<void> resize(int columns, int rows);
	// Written and fdatasync'ed before returning: the write-ahead record. The
	// server starts the program only after this returns success.
	Result<void> decision(const DecisionRecord& record);
	// Starts a command's recording: writes a `recording` record with both
	// modes, which then apply to output() and stdin_data() until
	// process_exit(). Call it after decision() allowed the command and before
	// process_start(). Without it, streams are recorded in full. Rejects a
	// tail_bytes above StreamRecording::kMaxTailBytes and a second call
	// before process_exit() with Errc::invalid, writing nothing.
	Result<void> begin_command(const StreamRecording& output, const StreamRecording& input);
	Result<void> process_start(int pid);
	// Records program output under the command's output mode, in `output`
	// records of at most 32 KiB. Empty data writes nothing.
	Result<void> output(OutputStream stream, std::span<const std::uint8_t> data);
	// Records bytes the program read from the client under the command's
	// input mode, in `stdin` records of at most 32 KiB.
	Result<void> stdin_data(std::span<const std::uint8_t> data);
	// Ends the command: first writes, for each stream, the `tail` records of
	// head-tail mode and the `digest` record of head-tail and digest mode,
	// then the process_exit record. `signal` is 0 when the process exited
	// normally with `exit_status`.
	Result<void> process_exit(int exit_status, int signal, std::chrono::milliseconds duration,
	                          std::uint64_t bytes_out, std::string_view note = {});
	// Writes and fdatasyncs the last record. `reason` must be one of
	// client-closed, exit, idle-timeout, expired, revoked, server-shutdown,
	// error, abnormal. Any other reason returns Errc::invalid and writes
	// nothing, so the caller can retry with a valid one.
	Result<void> end(std::string_view reason);
	// end("abnormal") with the recovery fields of `session`. Used by
	// seal_abandoned_transcripts() on a writer from reopen().
	Result<void> end_abandoned(const AbandonedSession& session);
	// Appends the checkpoint that signs an existing end record, for a
	// transcript whose writer stopped between the two.
	Result<void> sign_end();

	const std::filesystem::path& path() const;
	// The hex SHA-256 of the last record written: after end(), the value to
	// pass as TranscriptOptions::previous_end_hash to the next session.
	std::string last_hash() const;
	// The hex SHA-256 of the end record line, empty before end(). This is
	// what FORMAT.md names as the next session's header prev; with a
	// signing key it differs from last_hash(), the checkpoint's hash.
	std::string end_hash() const;

	// The end state of an existing transcript, for reopen().
	struct Continuation {
		std::uint64_t next_seq = 0;
		std::string prev_hash;      // hash of the last complete line
		std::uint64_t last_t_ms = 0;
		bool ended = false;         // the last record is an end record
	};
	// Takes over `fd` (closed on failure too), an existing transcript opened
	// for appending, whose complete records end as `continuation` describes.
	// New records continue the seq and the chain, with t starting at
	// last_t_ms. For recovery only: the caller must hold the file's lock.
	static Result<std::unique_ptr<TranscriptWriter>> reopen(int fd, const std::filesystem::path& path,
	                                                        const Continuation& continuation,
	                                                        const TranscriptOptions& options);

private:
	TranscriptWriter();
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

}  // namespace jead
