// Starting a verb's program: an absolute path and an argv, never a shell,
// with a fixed environment, its own process group, other descriptors
// closed, resource limits, no new privileges and an optional run-as
// account.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "roles/policy.h"
#include "roles/role.h"

namespace jead {

// Owns one file descriptor and closes it on destruction.
class UniqueFd {
public:
	UniqueFd() = default;
	explicit UniqueFd(int fd) : fd_(fd) {}
	UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
	UniqueFd& operator=(UniqueFd&& other) noexcept;
	UniqueFd(const UniqueFd&) = delete;
	UniqueFd& operator=(const UniqueFd&) = delete;
	~UniqueFd() { reset(); }

	int get() const { return fd_; }
	explicit operator bool() const { return fd_ >= 0; }
	int release();
	void reset(int fd = -1);

private:
	int fd_ = -1;
};

struct RunAs {
	uid_t uid = 0;
	gid_t gid = 0;
	std::vector<gid_t> groups;
	std::string user;   // for messages and transcripts
};

// Resolves a user (and optionally a group) to ids and supplementary groups.
// Without root, `user` must be jead's own user.
Result<RunAs> resolve_run_as(const std::optional<std::string>& user, const std::optional<std::string>& group);

// A terminal's size in character cells.
struct TerminalSize {
	int columns = 80;
	int rows = 24;
};

struct SpawnRequest {
	std::vector<std::string> argv;          // argv[0] is the absolute program path
	std::vector<std::string> environment;   // "NAME=value" entries, the whole set
	std::optional<std::filesystem::path> working_directory;
	RunAs run_as;
	ResourceLimits limits;                  // set as soft and hard limits before exec
	bool stdin_pipe = false;                // otherwise stdin is /dev/null
	bool discard_output = false;            // stdout and stderr to /dev/null, no pipes
	// Path arguments opened in the child after the identity change; each
	// replaces argv[argv_index] with /proc/self/fd/N.
	std::vector<PathDescriptor> path_descriptors;
	// When set, the program runs on a new pseudo-terminal of its own, of
	// this size: the terminal is its stdin, stdout, stderr and controlling
	// terminal, and stdin_pipe and discard_output are ignored.
	std::optional<TerminalSize> terminal;
};

// On a terminal, stdout_fd is the pseudo-terminal's master and stdin_fd a
// duplicate of it, so the caller relays the terminal as it relays pipes and
// can close input alone. stderr_fd is then unset.
struct SpawnedProcess {
	pid_t pid = -1;
	// Readable when the process has exited. Empty where pidfd_open(2) does
	// not exist (Linux before 5.3, valgrind 3.19 and older), and then the
	// caller polls waitpid(2).
	UniqueFd pidfd;
	UniqueFd stdin_fd;   // write end, when stdin_pipe was requested
	UniqueFd stdout_fd;  // read end, non-blocking
	UniqueFd stderr_fd;  // read end, non-blocking
};

// Starts the program. In the child, in this order: the standard streams,
// every other descriptor marked close-on-exec, a new process group (on a
// terminal: a new session, with the terminal as its controlling terminal,
// which also leads a new process group), default
// signal handling, the resource limits, the run-as identity (only when jead
// runs as root), PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, the working
// directory and the path descriptors. Setup failures in the child and exec
// failures are reported as errors here, not as an exit status.
Result<SpawnedProcess> spawn_process(const SpawnRequest& request);

// Sets the size of the pseudo-terminal whose master is `master_fd`; the
// kernel then sends SIGWINCH to the terminal's foreground process group.
Result<void> set_terminal_size(int master_fd, const TerminalSize& size);

// The environment every verb gets before the role's fixed additions.
std::vector<std::string> base_environment();

}  // namespace jead
