// Test support: temporary directories, running real programs without a
// shell, minting keys and certificates with ssh-keygen, and a real jead
// process on a free loopback port.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace jead::test {

class TempDir {
public:
	TempDir();
	~TempDir();
	TempDir(const TempDir&) = delete;
	TempDir& operator=(const TempDir&) = delete;
	const std::filesystem::path& path() const { return path_; }

private:
	std::filesystem::path path_;
};

struct ProcessResult {
	int exit_status = -1;   // -1 when killed by a signal or timed out
	std::string out;
	std::string err;
	bool timed_out = false;
};

// Runs argv[0] (an absolute path or a name searched in PATH) with stdin
// from `input`, and kills it after `timeout`.
ProcessResult run_program(const std::vector<std::string>& argv, const std::string& input = "",
                          std::chrono::seconds timeout = std::chrono::seconds(60));

// Runs ssh-keygen and fails the test when it fails.
void ssh_keygen(const std::vector<std::string>& args);

// Creates a key pair at `file` and `file`.pub. `type` is an ssh-keygen -t
// value; `bits` is passed with -b when non-zero.
void make_key(const std::filesystem::path& file, const std::string& type = "ed25519", int bits = 0);

struct CertSpec {
	std::string identity = "test-user";
	std::vector<std::string> principals = {"ops"};
	std::string validity = "-1m:+30m";   // an ssh-keygen -V value; empty for none
	std::vector<std::string> options;    // ssh-keygen -O values
	bool host = false;
	std::string ca_signature_type;       // ssh-keygen -t for the CA signature, e.g. rsa-sha2-512
	std::string serial = "1";
};

// Signs `key`.pub with `ca` and returns the certificate's path.
std::filesystem::path sign_key(const std::filesystem::path& ca, const std::filesystem::path& key,
                               const CertSpec& spec);

std::string read_text(const std::filesystem::path& file);
void write_text(const std::filesystem::path& file, const std::string& text);

// A real jead serving one config on a free loopback port. When the
// environment variable JEAD_TEST_WRAPPER is set, its words (split at spaces)
// are put before the jead command line, as in
//   JEAD_TEST_WRAPPER="valgrind --error-exitcode=99 --leak-check=full"
// and jead gets 60 s instead of 10 s to start listening.
class JeadServer {
public:
	struct Setup {
		std::map<std::string, std::string> roles;                  // name -> TOML text
		std::map<std::string, std::vector<std::string>> grants;    // role -> principals
		std::string extra_config;                                  // appended top-level keys
	};

	JeadServer(const std::filesystem::path& dir, const Setup& setup);
	~JeadServer();
	JeadServer(const JeadServer&) = delete;
	JeadServer& operator=(const JeadServer&) = delete;

	std::uint16_t port() const { return port_; }
	// The jead process id (the wrapper's when JEAD_TEST_WRAPPER is set), or
	// -1 once it is gone.
	pid_t pid() const { return pid_; }
	const std::filesystem::path& dir() const { return dir_; }
	const std::filesystem::path& ca() const { return ca_; }
	std::filesystem::path transcript_dir() const { return dir_ / "transcripts"; }
	std::string log() const;

	// Runs the stock ssh client as `role` with `key` and its certificate
	// `cert` (none when empty) and the given remote command words.
	ProcessResult ssh(const std::string& role, const std::filesystem::path& key, const std::filesystem::path& cert,
	                  const std::vector<std::string>& command, const std::vector<std::string>& extra_options = {},
	                  const std::string& input = "");

	// The transcript files, sorted by name (and so by start time).
	std::vector<std::filesystem::path> transcripts() const;

	// Sends `sig` to the jead process.
	void send_signal(int sig) const;
	// Waits (at most `timeout`) until the log contains `text`.
	bool wait_for_log(std::string_view text, std::chrono::seconds timeout = std::chrono::seconds(10)) const;

private:
	std::filesystem::path dir_;
	std::filesystem::path ca_;
	std::uint16_t port_ = 0;
	pid_t pid_ = -1;
};

// Test role text with verbs built on the test verb program; each run
// appends to `marker`.
std::string test_role(const std::filesystem::path& marker);

}  // namespace jead::test

namespace jead::test {

// A program running on a pseudo-terminal, driven like a person at a
// keyboard: send keys, then wait (bounded) for text on the screen.
class PtySession {
public:
	explicit PtySession(const std::vector<std::string>& argv);
	~PtySession();
	PtySession(const PtySession&) = delete;
	PtySession& operator=(const PtySession&) = delete;

	void send(std::string_view keys);
	// Sets the terminal's size, which sends SIGWINCH to the program.
	void resize(int columns, int rows);
	// Reads until `text` appears in the output after the last mark, or the
	// timeout passes; returns whether it appeared.
	bool wait_for(std::string_view text, std::chrono::seconds timeout = std::chrono::seconds(10));
	// Forgets the output so far, so the next wait_for looks only at new output.
	void mark() { seen_from_ = output_.size(); }
	// Waits (bounded) for the program to exit; returns its status or -1.
	int wait_exit(std::chrono::seconds timeout = std::chrono::seconds(10));
	const std::string& output() const { return output_; }

private:
	bool read_some(int timeout_ms);

	int master_ = -1;
	pid_t pid_ = -1;
	std::string output_;
	std::size_t seen_from_ = 0;
	int exit_status_ = -1;
	bool exited_ = false;
};

// The ssh argv that JeadServer::ssh runs, for use with PtySession.
std::vector<std::string> ssh_argv(const JeadServer& server, const std::string& role, const std::filesystem::path& key,
                                  const std::filesystem::path& cert, const std::vector<std::string>& options,
                                  const std::vector<std::string>& command);

}  // namespace jead::test
