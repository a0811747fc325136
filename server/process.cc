#include "server/process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>

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

// One resource limit for the child; `name` is used in its error message.
struct ChildLimit {
	int resource = 0;
	rlim_t value = 0;
	const char* name = nullptr;
};

// Holds the values the child needs after fork as plain C data, so the
// child calls no allocator.
struct ChildSetup {
	int step_fd = -1;      // write end for the name of a failed setup step
	int stdin_fd = -1;
	int stdout_fd = -1;
	int stderr_fd = -1;
	const char* working_directory = nullptr;
	bool change_identity = false;
	uid_t uid = 0;
	gid_t gid = 0;
	const std::vector<gid_t>* groups = nullptr;
	std::array<ChildLimit, 4> limits{};
	std::size_t limit_count = 0;
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
	if (::setpgid(0, 0) != 0)
		fail_step("setpgid failed");

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
}

}  // namespace

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

	bp::environment environment;
	for (const auto& entry : request.environment) {
		const auto eq = entry.find('=');
		if (eq == std::string::npos || eq == 0)
			return fail(Errc::invalid, "invalid environment entry \"" + entry + "\"");
		environment[entry.substr(0, eq)] = entry.substr(eq + 1);
	}

	std::error_code ec;
	const std::vector<std::string> args(request.argv.begin() + 1, request.argv.end());
	bp::child child(bp::exe = request.argv[0], bp::args = args, bp::env = environment,
	                bp::extend::on_exec_setup = [&setup](auto& exec) { setup_child(setup, exec); }, ec);
	if (ec) {
		// The child has exited, or exec closed its copy of the write end,
		// so with ours closed the read ends at once.
		step->write_end.reset();
		char failed_step[256];
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
	if (!request.discard_output) {
		process.stdout_fd = std::move(out->read_end);
		process.stderr_fd = std::move(err->read_end);
	}
	process.stdin_fd = std::move(stdin_parent);
	for (int fd : {process.stdout_fd.get(), process.stderr_fd.get(), process.stdin_fd.get()}) {
		if (fd >= 0) {
			if (auto r = set_nonblocking(fd); !r)
				return tl::unexpected(r.error());
		}
	}
	return process;
}

}  // namespace jead
