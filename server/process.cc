#include "server/process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>

#include "common/escape.h"

namespace jead {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept
{
	if (this != &other)
		reset(other.release());
	return *this;
}

int UniqueFd::release()
{
	const int fd = fd_;
	fd_ = -1;
	return fd;
}

void UniqueFd::reset(int fd)
{
	if (fd_ >= 0)
		::close(fd_);
	fd_ = fd;
}

namespace {

struct Pipe {
	UniqueFd read_end;
	UniqueFd write_end;
};

constexpr std::size_t kStdoutPipeBytes = 256 * 1024;

Result<Pipe> make_pipe()
{
	int fds[2];
	if (::pipe2(fds, O_CLOEXEC) != 0)
		return fail(Errc::io, std::string("pipe2 failed: ") + std::strerror(errno));
	return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Result<void> set_nonblocking(int fd)
{
	const int flags = ::fcntl(fd, F_GETFL);
	if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
		return fail(Errc::io, std::string("fcntl O_NONBLOCK failed: ") + std::strerror(errno));
	return {};
}

struct Terminal {
	UniqueFd master;
	UniqueFd slave;
};

// Opens a new pseudo-terminal of `size`. The slave is opened through the
// master with TIOCGPTPEER, not by its /dev/pts path, so it is certain to
// be this master's other end.
Result<Terminal> open_terminal(const TerminalSize& size)
{
	Terminal terminal;
	terminal.master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (!terminal.master)
		return fail(Errc::io, std::string("posix_openpt failed: ") + std::strerror(errno));
	if (::unlockpt(terminal.master.get()) != 0)
		return fail(Errc::io, std::string("unlockpt failed: ") + std::strerror(errno));
	terminal.slave.reset(::ioctl(terminal.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (!terminal.slave)
		return fail(Errc::io, std::string("opening the pseudo-terminal's slave failed: ") + std::strerror(errno));
	if (auto r = set_terminal_size(terminal.master.get(), size); !r)
		return tl::unexpected(r.error());
	return terminal;
}

// One resource limit for the child; `name` is used in its error message.
struct ChildLimit {
	int resource = 0;
	rlim_t value = 0;
	const char* name = nullptr;
};

// A path argument the child opens, as plain C data.
struct ChildDescriptor {
	std::size_t argv_index = 0;
	const char* directory = nullptr;
	const char* relative = nullptr;
	PathKind kind = PathKind::any;
	const char* failure = nullptr;   // the setup step's message when opening fails
};

// The argv element a descriptor-bound path starts as; the child writes the
// descriptor's number over the X's and ends the string after it.
constexpr char kProcFdPrefix[] = "/proc/self/fd/";
constexpr char kProcFdPlaceholder[] = "/proc/self/fd/XXXXXXXXXXX";

// Holds the values the child needs after fork as plain C data, so the
// child calls no allocator.
struct ChildSetup {
	int step_fd = -1;      // write end for the name of a failed setup step
	int stdin_fd = -1;
	int stdout_fd = -1;
	int stderr_fd = -1;
	const char* working_directory = nullptr;
	bool new_session = false;   // the standard streams are a terminal to make the controlling one
	bool change_identity = false;
	uid_t uid = 0;
	gid_t gid = 0;
	const std::vector<gid_t>* groups = nullptr;
	std::array<ChildLimit, 4> limits{};
	std::size_t limit_count = 0;
	const ChildDescriptor* descriptors = nullptr;
	std::size_t descriptor_count = 0;
};

// Fills setup.limits from the role's limits. Each is set as both the soft
// and the hard limit, so the program cannot raise it again.
void add_limits(const ResourceLimits& limits, ChildSetup& setup)
{
	const std::pair<const std::optional<std::uint64_t>*, ChildLimit> entries[] = {
		{&limits.cpu_seconds, {RLIMIT_CPU, 0, "setrlimit RLIMIT_CPU (cpu_seconds) failed"}},
		{&limits.open_files, {RLIMIT_NOFILE, 0, "setrlimit RLIMIT_NOFILE (open_files) failed"}},
		{&limits.file_size, {RLIMIT_FSIZE, 0, "setrlimit RLIMIT_FSIZE (file_size) failed"}},
		{&limits.processes, {RLIMIT_NPROC, 0, "setrlimit RLIMIT_NPROC (processes) failed"}},
	};
	for (const auto& [value, limit] : entries) {
		if (!*value)
			continue;
		ChildLimit& slot = setup.limits[setup.limit_count++];
		slot = limit;
		// RLIM_INFINITY would mean "no limit", so a value that large is
		// set just below it.
		slot.value = static_cast<rlim_t>(std::min<std::uint64_t>(**value, RLIM_INFINITY - 1));
	}
}

// Opens `relative` beneath the directory `dir` for the child. openat2 keeps
// the walk inside `dir` and rejects every symbolic link: the checked path
// had its links resolved already, so a link found now was put there after
// the check. Kernels before 5.6 lack openat2; there each component is
// opened with O_NOFOLLOW, which gives the same guarantee for a path
// without ".." (normalisation removed those). Returns -1 with errno set.
int open_beneath(int dir, const char* relative, int flags)
{
	open_how how{};
	how.flags = static_cast<std::uint64_t>(flags);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	const long fd = ::syscall(SYS_openat2, dir, relative, &how, sizeof how);
	if (fd >= 0 || errno != ENOSYS)
		return static_cast<int>(fd);

	char path[PATH_MAX];
	const std::size_t length = std::strlen(relative);
	if (length >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	std::memcpy(path, relative, length + 1);
	int current = dir;
	char* component = path;
	// Each pass consumes one component, so the loop ends within the path.
	for (char* slash = std::strchr(component, '/'); slash != nullptr; slash = std::strchr(component, '/')) {
		*slash = '\0';
		if (std::strcmp(component, "..") == 0) {
			errno = EXDEV;
			return -1;
		}
		const int next = ::openat(current, component, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		const int saved = errno;
		if (current != dir)
			::close(current);
		if (next < 0) {
			errno = saved;
			return -1;
		}
		current = next;
		component = slash + 1;
	}
	if (std::strcmp(component, "..") == 0) {
		errno = EXDEV;
		return -1;
	}
	const int opened = ::openat(current, component, flags | O_NOFOLLOW);
	const int saved = errno;
	if (current != dir)
		::close(current);
	errno = saved;
	return opened;
}

// Opens one descriptor-bound path for the child, checks what it is and
// leaves it open across exec. Returns -1 with errno set on failure.
int open_path_descriptor(const ChildDescriptor& d)
{
	const int dir = ::open(d.directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	// O_NONBLOCK keeps a FIFO from blocking the open, and it is rejected below.
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	if (d.kind == PathKind::dir)
		flags |= O_DIRECTORY;
	const int fd = open_beneath(dir, d.relative, flags);
	const int saved = errno;
	::close(dir);
	if (fd < 0) {
		errno = saved;
		return -1;
	}

	struct stat info {};
	int error = 0;
	if (::fstat(fd, &info) != 0)
		error = errno;
	else if (d.kind == PathKind::file && !S_ISREG(info.st_mode))
		error = S_ISDIR(info.st_mode) ? EISDIR : EINVAL;
	else if (d.kind == PathKind::dir && !S_ISDIR(info.st_mode))
		error = ENOTDIR;
	else if (!S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode))
		error = EINVAL;   // devices, FIFOs and sockets are never handed over
	else if (::fcntl(fd, F_SETFL, O_RDONLY) != 0 || ::fcntl(fd, F_SETFD, 0) != 0)
		error = errno;
	if (error != 0) {
		::close(fd);
		errno = error;
		return -1;
	}
	return fd;
}

// Writes "/proc/self/fd/N" into an argv element that contains
// kProcFdPlaceholder, without allocating.
void write_proc_fd(char* element, int fd)
{
	char digits[16];
	int count = 0;
	unsigned value = static_cast<unsigned>(fd);
	do {
		digits[count++] = static_cast<char>('0' + value % 10);
		value /= 10;
	} while (value != 0);
	char* out = element + sizeof kProcFdPrefix - 1;
	while (count > 0)
		*out++ = digits[--count];
	*out = '\0';
}

// Runs in the child between fork and execve. Every step is checked; a
// failure is reported to the parent through Boost.Process's error pipe.
template <class Executor>
void setup_child(const ChildSetup& setup, Executor& exec)
{
	const auto fail_step = [&](const char* step) {
		const int error = errno;
		// Boost.Process passes only the error code to the parent, so the
		// step's name goes through a pipe of its own. If this write fails,
		// the parent reports the error code alone.
		[[maybe_unused]] const ssize_t written = ::write(setup.step_fd, step, std::strlen(step));
		exec.set_error(std::error_code(error, std::system_category()), step);
		::_exit(127);
	};

	if (::dup2(setup.stdin_fd, 0) < 0 || ::dup2(setup.stdout_fd, 1) < 0 || ::dup2(setup.stderr_fd, 2) < 0)
		fail_step("dup2 of the standard streams failed");
	// Everything above stderr closes at exec, including descriptors that
	// were opened without O_CLOEXEC; the error pipe already has it.
	if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
		fail_step("close_range failed");
	if (setup.new_session) {
		// A session leader also leads its own process group, as setpgid
		// would make it, and only a session leader can take a controlling
		// terminal.
		if (::setsid() < 0)
			fail_step("setsid failed");
		if (::ioctl(0, TIOCSCTTY, 0) != 0)
			fail_step("TIOCSCTTY on the pseudo-terminal failed");
	} else if (::setpgid(0, 0) != 0) {
		fail_step("setpgid failed");
	}

	sigset_t all;
	sigemptyset(&all);
	::sigprocmask(SIG_SETMASK, &all, nullptr);
	for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD})
		::signal(sig, SIG_DFL);

	// Limits are set while still root, so they may exceed jead's own hard
	// limits; RLIMIT_NPROC then counts the processes of the run-as user.
	for (std::size_t i = 0; i < setup.limit_count; ++i) {
		const rlimit value{setup.limits[i].value, setup.limits[i].value};
		if (::setrlimit(setup.limits[i].resource, &value) != 0)
			fail_step(setup.limits[i].name);
	}

	if (setup.change_identity) {
		if (::setgroups(setup.groups->size(), setup.groups->data()) != 0)
			fail_step("setgroups failed");
		if (::setgid(setup.gid) != 0)
			fail_step("setgid failed");
		if (::setuid(setup.uid) != 0)
			fail_step("setuid failed");
		if (::setuid(0) == 0 && setup.uid != 0) {
			errno = EPERM;
			fail_step("dropping root failed: setuid(0) still succeeds");
		}
	}
	if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail_step("PR_SET_NO_NEW_PRIVS failed");
	// A verb never outlives jead: its output could no longer be recorded.
	if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		fail_step("PR_SET_PDEATHSIG failed");
	if (setup.working_directory && ::chdir(setup.working_directory) != 0)
		fail_step("chdir to the working directory failed");

	// Opened as the run-as user, so its permissions apply, not jead's.
	for (std::size_t i = 0; i < setup.descriptor_count; ++i) {
		const ChildDescriptor& d = setup.descriptors[i];
		const int fd = open_path_descriptor(d);
		if (fd < 0)
			fail_step(d.failure);
		write_proc_fd(exec.cmd_line[d.argv_index], fd);
	}
}

}  // namespace

Result<void> set_terminal_size(int master_fd, const TerminalSize& size)
{
	winsize value{};
	value.ws_col = static_cast<unsigned short>(size.columns);
	value.ws_row = static_cast<unsigned short>(size.rows);
	if (::ioctl(master_fd, TIOCSWINSZ, &value) != 0)
		return fail(Errc::io, std::string("TIOCSWINSZ failed: ") + std::strerror(errno));
	return {};
}

std::vector<std::string> base_environment()
{
	return {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"PAGER=cat",
		"SYSTEMD_PAGER=cat",
		"SYSTEMD_COLORS=0",
		"GIT_PAGER=cat",
		"LESSSECURE=1",
		"TERM=dumb",
	};
}

Result<RunAs> resolve_run_as(const std::optional<std::string>& user, const std::optional<std::string>& group)
{
	const uid_t self = ::geteuid();
	const struct passwd* pw = user ? ::getpwnam(user->c_str()) : ::getpwuid(self);
	if (!pw)
		return fail(Errc::not_found, "run-as user \"" + user.value_or(std::to_string(self)) + "\" does not exist");

	RunAs run_as;
	run_as.uid = pw->pw_uid;
	run_as.gid = pw->pw_gid;
	run_as.user = pw->pw_name;
	if (group) {
		const struct group* gr = ::getgrnam(group->c_str());
		if (!gr)
			return fail(Errc::not_found, "run-as group \"" + *group + "\" does not exist");
		run_as.gid = gr->gr_gid;
	}

	if (self != 0) {
		if (run_as.uid != self)
			return fail(Errc::denied, "run-as user \"" + run_as.user +
			                              "\" differs from jead's own user; only root can run verbs as another user");
		return run_as;
	}

	int count = 64;
	std::vector<gid_t> groups(static_cast<std::size_t>(count));
	if (::getgrouplist(pw->pw_name, run_as.gid, groups.data(), &count) < 0) {
		groups.resize(static_cast<std::size_t>(count));
		if (::getgrouplist(pw->pw_name, run_as.gid, groups.data(), &count) < 0)
			return fail(Errc::internal, "cannot list the groups of run-as user \"" + run_as.user + "\"");
	}
	groups.resize(static_cast<std::size_t>(count));
	run_as.groups = std::move(groups);
	return run_as;
}

Result<SpawnedProcess> spawn_process(const SpawnRequest& request)
{
	namespace bp = boost::process;

	if (request.argv.empty() || request.argv[0].empty() || request.argv[0][0] != '/')
		return fail(Errc::invalid, "the program must be an absolute path");

	auto out = make_pipe();
	auto err = make_pipe();
	if (!out || !err)
		return tl::unexpected(!out ? out.error() : err.error());
	// A stdout pipe as large as one read of the session loop lets bulk
	// output arrive in fewer wake-ups. Best effort: the kernel may refuse
	// (pipe-max-size, or the pipe-user-pages limits without CAP_SYS_RESOURCE),
	// and the default 64 KiB pipe still works.
	::fcntl(out->read_end.get(), F_SETPIPE_SZ, static_cast<int>(kStdoutPipeBytes));

	UniqueFd stdin_child;
	UniqueFd stdin_parent;
	if (request.stdin_pipe) {
		auto in = make_pipe();
		if (!in)
			return tl::unexpected(in.error());
		stdin_child = std::move(in->read_end);
		stdin_parent = std::move(in->write_end);
	} else {
		stdin_child.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
		if (!stdin_child)
			return fail(Errc::io, std::string("cannot open /dev/null: ") + std::strerror(errno));
	}

	ChildSetup setup;
	setup.stdin_fd = stdin_child.get();
	setup.stdout_fd = out->write_end.get();
	setup.stderr_fd = err->write_end.get();
	UniqueFd null_output;
	if (request.discard_output) {
		null_output.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
		if (!null_output)
			return fail(Errc::io, std::string("cannot open /dev/null: ") + std::strerror(errno));
		setup.stdout_fd = null_output.get();
		setup.stderr_fd = null_output.get();
	}
	Terminal terminal;
	if (request.terminal) {
		auto opened = open_terminal(*request.terminal);
		if (!opened)
			return tl::unexpected(opened.error());
		terminal = std::move(*opened);
		setup.stdin_fd = terminal.slave.get();
		setup.stdout_fd = terminal.slave.get();
		setup.stderr_fd = terminal.slave.get();
		setup.new_session = true;
	}
	auto step = make_pipe();
	if (!step)
		return tl::unexpected(step.error());
	setup.step_fd = step->write_end.get();
	const std::string working_directory = request.working_directory ? request.working_directory->string() : "";
	setup.working_directory = request.working_directory ? working_directory.c_str() : nullptr;
	setup.change_identity = ::geteuid() == 0;
	setup.uid = request.run_as.uid;
	setup.gid = request.run_as.gid;
	setup.groups = &request.run_as.groups;
	add_limits(request.limits, setup);

	// Boost.Process puts argv[0] and then the arguments in its command
	// line, so an argv index is also an index into exec.cmd_line.
	std::vector<std::string> argv = request.argv;
	std::vector<std::string> failures;
	std::vector<ChildDescriptor> descriptors;
	failures.reserve(request.path_descriptors.size());
	for (const auto& d : request.path_descriptors) {
		if (d.argv_index == 0 || d.argv_index >= argv.size())
			return fail(Errc::internal, "path argument \"" + d.argument + "\" has no argv element");
		argv[d.argv_index] = kProcFdPlaceholder;
		failures.push_back("opening path argument \"" + d.argument + "\" (" + escape_untrusted(d.path) + ") beneath " +
		                   d.directory + " as " + request.run_as.user + " failed");
		descriptors.push_back(ChildDescriptor{d.argv_index, d.directory.c_str(), d.relative.c_str(), d.kind,
		                                      failures.back().c_str()});
	}
	setup.descriptors = descriptors.data();
	setup.descriptor_count = descriptors.size();

	bp::environment environment;
	for (const auto& entry : request.environment) {
		const auto eq = entry.find('=');
		if (eq == std::string::npos || eq == 0)
			return fail(Errc::invalid, "invalid environment entry \"" + entry + "\"");
		environment[entry.substr(0, eq)] = entry.substr(eq + 1);
	}

	std::error_code ec;
	const std::vector<std::string> args(argv.begin() + 1, argv.end());
	bp::child child(bp::exe = request.argv[0], bp::args = args, bp::env = environment,
	                bp::extend::on_exec_setup = [&setup](auto& exec) { setup_child(setup, exec); }, ec);
	if (ec) {
		// The child has exited, or exec closed its copy of the write end,
		// so with ours closed the read ends at once.
		step->write_end.reset();
		char failed_step[1024];
		const ssize_t n = ::read(step->read_end.get(), failed_step, sizeof failed_step);
		const std::string where = n > 0 ? std::string(failed_step, static_cast<std::size_t>(n)) + ": " : "";
		return fail(Errc::io, "cannot start " + request.argv[0] + ": " + where + ec.message());
	}

	SpawnedProcess process;
	process.pid = child.id();
	// jead reaps the process itself through its pidfd; detaching keeps
	// Boost.Process from killing it when `child` goes out of scope.
	child.detach();

	const long pidfd = ::syscall(SYS_pidfd_open, process.pid, 0);
	const int pidfd_error = errno;
	if (pidfd < 0 && pidfd_error != ENOSYS) {
		::kill(-process.pid, SIGKILL);
		return fail(Errc::io, std::string("pidfd_open failed: ") + std::strerror(pidfd_error));
	}
	process.pidfd.reset(static_cast<int>(pidfd));
	if (terminal.master) {
		// The slave closes with `terminal`, so once the program and its
		// children have closed theirs, reading the master fails with EIO.
		process.stdin_fd.reset(::fcntl(terminal.master.get(), F_DUPFD_CLOEXEC, 0));
		if (!process.stdin_fd) {
			::kill(-process.pid, SIGKILL);
			return fail(Errc::io, std::string("dup of the pseudo-terminal failed: ") + std::strerror(errno));
		}
		process.stdout_fd = std::move(terminal.master);
	} else {
		if (!request.discard_output) {
			process.stdout_fd = std::move(out->read_end);
			process.stderr_fd = std::move(err->read_end);
		}
		process.stdin_fd = std::move(stdin_parent);
	}
	for (int fd : {process.stdout_fd.get(), process.stderr_fd.get(), process.stdin_fd.get()}) {
		if (fd >= 0) {
			if (auto r = set_nonblocking(fd); !r)
				return tl::unexpected(r.error());
		}
	}
	return process;
}

}  // namespace jead
