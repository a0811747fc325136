// spawn_process() run for real: the child's identity, groups, no new
// privileges, process group, descriptors, working directory and resource
// limits, as the inspect_verb helper reads them from /proc. Identity
// checks need root, which CI has; without root they are skipped with a
// warning. Also the [limits] keys of role files.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "server/process.h"
#include "tests/spawn_support.h"
#include "tests/support.h"

using namespace jead;
using namespace jead::test;

namespace {

// Parses "key: value" lines, which end in CR LF on a terminal.
std::map<std::string, std::string> parse_report(const std::string& text)
{
	std::map<std::string, std::string> report;
	std::istringstream lines(text);
	std::string line;
	while (std::getline(lines, line)) {
		if (!line.empty() && line.back() == '\r')
			line.pop_back();
		const auto colon = line.find(": ");
		if (colon != std::string::npos)
			report[line.substr(0, colon)] = line.substr(colon + 2);
	}
	return report;
}

std::string repeat4(const std::string& id)
{
	return id + " " + id + " " + id + " " + id;
}

SpawnRequest inspect_request(const RunAs& run_as)
{
	SpawnRequest request;
	request.argv = {JEAD_INSPECT_VERB_BINARY};
	request.environment = base_environment();
	request.run_as = run_as;
	return request;
}

// A working directory that every user can enter: mkdtemp makes 0700.
std::filesystem::path open_directory(const TempDir& tmp)
{
	std::filesystem::permissions(tmp.path(), std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
	                                             std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
	                                             std::filesystem::perms::others_exec);
	return std::filesystem::canonical(tmp.path());
}

Role load_role_text(const TempDir& tmp, const std::string& text)
{
	const auto file = tmp.path() / "r.toml";
	write_text(file, text);
	auto role = load_role_file(file);
	if (!role)
		FAIL(role.error().message);
	return std::move(*role);
}

std::string role_error(const TempDir& tmp, const std::string& text)
{
	const auto file = tmp.path() / "r.toml";
	write_text(file, text);
	auto role = load_role_file(file);
	REQUIRE_FALSE(role.has_value());
	std::string message = role.error().message;
	const std::string prefix = tmp.path().string() + "/";
	if (message.rfind(prefix, 0) == 0)
		message.erase(0, prefix.size());
	return message;
}

}  // namespace

TEST_CASE("spawn as nobody drops identity and privileges", "[process]")
{
	if (::geteuid() != 0) {
		WARN("not root: the run-as identity cannot be tested");
		return;
	}
	TempDir tmp;
	auto run_as = resolve_run_as(std::string("nobody"), std::nullopt);
	REQUIRE(run_as);
	SpawnRequest request = inspect_request(*run_as);
	request.working_directory = open_directory(tmp);

	auto process = spawn_process(request);
	REQUIRE(process);
	const SpawnOutput finished = collect_output(*process);
	INFO("stdout:\n" << finished.out << "stderr:\n" << finished.err);
	REQUIRE(WIFEXITED(finished.wait_status));
	REQUIRE(WEXITSTATUS(finished.wait_status) == 0);
	auto report = parse_report(finished.out);

	std::string groups;
	for (const gid_t gid : run_as->groups)
		groups += (groups.empty() ? "" : " ") + std::to_string(gid);
	CHECK(report["uid"] == repeat4(std::to_string(run_as->uid)));
	CHECK(report["gid"] == repeat4(std::to_string(run_as->gid)));
	CHECK(report["groups"] == groups);
	CHECK(report["nonewprivs"] == "1");
	CHECK(report["pgid"] == report["pid"]);
	CHECK(report["pid"] == std::to_string(process->pid));
	CHECK(report["fds"] == "0 1 2");
	CHECK(report["cwd"] == request.working_directory->string());
}

TEST_CASE("spawn as own user keeps descriptors closed", "[process]")
{
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	// A descriptor jead holds without O_CLOEXEC must not reach the child.
	const int leaked = ::dup(1);
	REQUIRE(leaked >= 3);
	auto process = spawn_process(inspect_request(*run_as));
	::close(leaked);
	REQUIRE(process);
	const SpawnOutput finished = collect_output(*process);
	auto report = parse_report(finished.out);

	CHECK(report["uid"] == repeat4(std::to_string(::geteuid())));
	CHECK(report["nonewprivs"] == "1");
	CHECK(report["pgid"] == report["pid"]);
	CHECK(report["fds"] == "0 1 2");
}

TEST_CASE("spawn on a terminal leads a new session", "[process]")
{
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	SpawnRequest request = inspect_request(*run_as);
	request.terminal = TerminalSize{132, 43};

	auto process = spawn_process(request);
	REQUIRE(process);
	CHECK(process->stdout_fd);
	CHECK(process->stdin_fd);
	CHECK_FALSE(process->stderr_fd);
	const SpawnOutput finished = collect_output(*process);
	INFO("output:\n" << finished.out);
	auto report = parse_report(finished.out);

	CHECK(report["sid"] == std::to_string(process->pid));
	CHECK(report["pgid"] == report["pid"]);
	CHECK(report["ctty"] == "yes");
	CHECK(report["nonewprivs"] == "1");
	CHECK(report["fds"] == "0 1 2");
	CHECK(finished.out.find("pid: " + std::to_string(process->pid) + "\r\n") != std::string::npos);
}

TEST_CASE("spawn with pipes keeps jead's session", "[process]")
{
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	auto process = spawn_process(inspect_request(*run_as));
	REQUIRE(process);
	const SpawnOutput finished = collect_output(*process);
	auto report = parse_report(finished.out);

	CHECK(report["sid"] == std::to_string(::getsid(0)));
	CHECK(report["pgid"] == report["pid"]);
}

TEST_CASE("spawn on a terminal sets its size", "[process]")
{
	SpawnRequest request;
	request.argv = {"/usr/bin/stty", "size"};
	request.environment = base_environment();
	request.terminal = TerminalSize{132, 43};
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	request.run_as = *run_as;

	auto process = spawn_process(request);
	REQUIRE(process);
	const SpawnOutput finished = collect_output(*process);
	CHECK(finished.out == "43 132\r\n");
}

TEST_CASE("spawn applies the role's resource limits", "[process]")
{
	auto run_as = resolve_run_as(::geteuid() == 0 ? std::optional<std::string>("nobody") : std::nullopt, std::nullopt);
	REQUIRE(run_as);
	SpawnRequest request = inspect_request(*run_as);
	request.limits.cpu_seconds = 7;
	request.limits.open_files = 64;
	request.limits.file_size = 1 << 20;
	request.limits.processes = 50;

	auto process = spawn_process(request);
	REQUIRE(process);
	const SpawnOutput finished = collect_output(*process);
	INFO("stdout:\n" << finished.out << "stderr:\n" << finished.err);
	auto report = parse_report(finished.out);

	CHECK(report["limit Max cpu time"] == "7 7");
	CHECK(report["limit Max open files"] == "64 64");
	CHECK(report["limit Max file size"] == "1048576 1048576");
	CHECK(report["limit Max processes"] == "50 50");
}

TEST_CASE("spawn without limits keeps jead's own", "[process]")
{
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	auto process = spawn_process(inspect_request(*run_as));
	REQUIRE(process);
	auto report = parse_report(collect_output(*process).out);

	rlimit own{};
	REQUIRE(::getrlimit(RLIMIT_NOFILE, &own) == 0);
	CHECK(report["limit Max open files"] == std::to_string(own.rlim_cur) + " " + std::to_string(own.rlim_max));
}

TEST_CASE("spawn cpu limit kills a busy program", "[process]")
{
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	SpawnRequest request = inspect_request(*run_as);
	request.argv.push_back("--burn-cpu");
	request.limits.cpu_seconds = 1;

	auto process = spawn_process(request);
	REQUIRE(process);
	const SpawnOutput finished = collect_output(*process);
	REQUIRE(WIFSIGNALED(finished.wait_status));
	CHECK(WTERMSIG(finished.wait_status) == SIGKILL);
}

TEST_CASE("spawn reports a limit the kernel rejects", "[process]")
{
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	SpawnRequest request = inspect_request(*run_as);
	// Far above fs.nr_open, which bounds RLIMIT_NOFILE even for root.
	request.limits.open_files = std::uint64_t{1} << 40;

	auto process = spawn_process(request);
	REQUIRE_FALSE(process);
	CHECK(process.error().message == std::string("cannot start ") + JEAD_INSPECT_VERB_BINARY +
	                                     ": setrlimit RLIMIT_NOFILE (open_files) failed: Operation not permitted");
}

TEST_CASE("spawn names the setup step that failed", "[process]")
{
	auto run_as = resolve_run_as(std::nullopt, std::nullopt);
	REQUIRE(run_as);
	TempDir tmp;
	SpawnRequest request = inspect_request(*run_as);
	request.working_directory = tmp.path() / "missing";

	auto process = spawn_process(request);
	REQUIRE_FALSE(process);
	CHECK(process.error().message == std::string("cannot start ") + JEAD_INSPECT_VERB_BINARY +
	                                     ": chdir to the working directory failed: No such file or directory");
}

TEST_CASE("limits table loads every key", "[process][roles]")
{
	TempDir tmp;
	const Role role = load_role_text(tmp, "[limits]\ncpu_seconds = 60\nopen_files = 256\nfile_size = \"1G\"\n"
	                                      "processes = 32\n");
	CHECK(role.limits.cpu_seconds == std::optional<std::uint64_t>(60));
	CHECK(role.limits.open_files == std::optional<std::uint64_t>(256));
	CHECK(role.limits.file_size == std::optional<std::uint64_t>(std::uint64_t{1} << 30));
	CHECK(role.limits.processes == std::optional<std::uint64_t>(32));
}

TEST_CASE("limits table defaults to none", "[process][roles]")
{
	TempDir tmp;
	const Role role = load_role_text(tmp, "description = \"x\"\n");
	CHECK_FALSE(role.limits.cpu_seconds);
	CHECK_FALSE(role.limits.open_files);
	CHECK_FALSE(role.limits.file_size);
	CHECK_FALSE(role.limits.processes);
}

TEST_CASE("limits table rejects bad values", "[process][roles]")
{
	TempDir tmp;
	CHECK(role_error(tmp, "[limits]\nmemory = 5\n") == "r.toml:2:1: unknown key \"memory\" in [limits]");
	CHECK(role_error(tmp, "[limits]\ncpu_seconds = 0\n") == "r.toml:2:15: \"cpu_seconds\" must be at least 1");
	CHECK(role_error(tmp, "[limits]\nopen_files = 2\n") == "r.toml:2:14: \"open_files\" must be at least 3");
	CHECK(role_error(tmp, "[limits]\nprocesses = \"4\"\n") == "r.toml:2:13: \"processes\" must be an integer");
	CHECK(role_error(tmp, "[limits]\nfile_size = \"0\"\n") == "r.toml:2:13: \"file_size\" must be above 0");
	CHECK(role_error(tmp, "limits = 5\n") == "r.toml:1:10: \"limits\" must be a table");
}
