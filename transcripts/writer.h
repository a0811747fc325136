// Writes one session channel's transcript: JSON Lines, a header then events,
// each record chained to the previous one by SHA-256.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace jead {

struct TranscriptHeader {
	std::string session_id;
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
	std::vector<std::pair<std::string, std::string>> arguments;
	std::vector<std::string> argv;
	std::string run_as;
	std::string policy_version;
};

enum class OutputStream { stdout_, stderr_ };

class TranscriptWriter {
public:
	// Creates "<dir>/<session_id>.jsonl" with mode 0600 and writes the
	// header durably. Fails if the file exists or cannot be written.
	static Result<std::unique_ptr<TranscriptWriter>> create(const std::filesystem::path& dir,
	                                                        const TranscriptHeader& header);
	~TranscriptWriter();

	TranscriptWriter(const TranscriptWriter&) = delete;
	TranscriptWriter& operator=(const TranscriptWriter&) = delete;

	Result<void> input(std::string_view command_line);
	// Written and fdatasync'ed before returning: the write-ahead record.
	Result<void> decision(const DecisionRecord& record);
	Result<void> process_start(int pid);
	Result<void> output(OutputStream stream, std::span<const std::uint8_t> data);
	// `signal` is 0 when the process exited normally with `exit_status`.
	Result<void> process_exit(int exit_status, int signal, std::chrono::milliseconds duration,
	                          std::uint64_t bytes_out, std::string_view note = {});
	Result<void> end(std::string_view reason);

	const std::filesystem::path& path() const;

private:
	TranscriptWriter() = default;
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

}  // namespace jead
