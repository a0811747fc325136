// Writes one session channel's transcript: JSON Lines, a header then events,
// each record chained to the previous one by SHA-256. FORMAT.md specifies the
// file format.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
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
	// Written and fdatasync'ed before returning: the write-ahead record. The
	// server starts the program only after this returns success.
	Result<void> decision(const DecisionRecord& record);
	Result<void> process_start(int pid);
	// Splits `data` into records of at most 32 KiB. Empty data writes nothing.
	Result<void> output(OutputStream stream, std::span<const std::uint8_t> data);
	// `signal` is 0 when the process exited normally with `exit_status`.
	Result<void> process_exit(int exit_status, int signal, std::chrono::milliseconds duration,
	                          std::uint64_t bytes_out, std::string_view note = {});
	// Writes and fdatasyncs the last record. `reason` must be one of
	// client-closed, exit, idle-timeout, expired, revoked, server-shutdown,
	// error, abnormal. Any other reason returns Errc::invalid and writes
	// nothing, so the caller can retry with a valid one.
	Result<void> end(std::string_view reason);

	const std::filesystem::path& path() const;
	// The hex SHA-256 of the last record written: after end(), the value to
	// pass as TranscriptOptions::previous_end_hash to the next session.
	std::string last_hash() const;

private:
	TranscriptWriter();
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

}  // namespace jead
