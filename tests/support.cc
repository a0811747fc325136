#include "tests/support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

extern char** environ;

namespace jead::test {

namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv)
{
	std::vector<char*> out;
	for (const auto& a : argv)
		out.push_back(const_cast<char*>(a.c_str()));
	out.push_back(nullptr);
	return out;
}

std::uint16_t free_loopback_port()
{
	const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in addr{};
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = 0;
	REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
	socklen_t len = sizeof addr;
	REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
	::close(fd);
	return ntohs(addr.sin_port);
}

bool port_accepts(std::uint16_t port)
{
	const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in addr{};
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = htons(port);
	const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
	::close(fd);
	return ok;
}

}  // namespace

TempDir::TempDir()
{
	std::string pattern = (std::filesystem::temp_directory_path() / "jead-test-XXXXXX").string();
	REQUIRE(::mkdtemp(pattern.data()) != nullptr);
	path_ = pattern;
}

TempDir::~TempDir()
{
	std::error_code ec;
	if (!std::getenv("JEAD_KEEP_TEST_DIRS"))
		std::filesystem::remove_all(path_, ec);
}

ProcessResult run_program(const std::vector<std::string>& argv, const std::string& input, std::chrono::seconds timeout)
{
	int in_pipe[2], out_pipe[2], err_pipe[2];
	REQUIRE(::pipe2(in_pipe, O_CLOEXEC) == 0);
	REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
	REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);

	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
	posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
	posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
	auto args = c_argv(argv);
	pid_t pid = -1;
	const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
	posix_spawn_file_actions_destroy(&actions);
	::close(in_pipe[0]);
	::close(out_pipe[1]);
	::close(err_pipe[1]);
	REQUIRE(rc == 0);

	// Feed stdin and read both outputs in one poll loop, bounded by the
	// deadline.
	ProcessResult result;
	std::size_t written = 0;
	int in_fd = in_pipe[1];
	if (input.empty()) {
		::close(in_fd);
		in_fd = -1;
	} else {
		::fcntl(in_fd, F_SETFL, O_NONBLOCK);
	}
	int fds[2] = {out_pipe[0], err_pipe[0]};
	std::string* sinks[2] = {&result.out, &result.err};
	const auto deadline = std::chrono::steady_clock::now() + timeout;
	std::array<char, 65536> buffer{};
	while (fds[0] >= 0 || fds[1] >= 0) {
		const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
		if (left.count() <= 0) {
			result.timed_out = true;
			::kill(pid, SIGKILL);
			break;
		}
		pollfd p[3] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}, {in_fd, POLLOUT, 0}};
		::poll(p, 3, static_cast<int>(std::min<long>(left.count(), 1000)));
		for (int i = 0; i < 2; ++i) {
			if (fds[i] >= 0 && p[i].revents) {
				const ssize_t n = ::read(fds[i], buffer.data(), buffer.size());
				if (n > 0) {
					sinks[i]->append(buffer.data(), static_cast<std::size_t>(n));
				} else if (n == 0 || errno != EINTR) {
					::close(fds[i]);
					fds[i] = -1;
				}
			}
		}
		if (in_fd >= 0 && p[2].revents) {
			const ssize_t n = ::write(in_fd, input.data() + written, input.size() - written);
			if (n > 0)
				written += static_cast<std::size_t>(n);
			if (n < 0 && errno != EAGAIN) 
				written = input.size();
			if (written == input.size()) {
				::close(in_fd);
				in_fd = -1;
			}
		}
	}
	for (int fd : {fds[0], fds[1], in_fd})
		if (fd >= 0)
			::close(fd);

	int status = 0;
	::waitpid(pid, &status, 0);
	result.exit_status = WIFEXITED(status) && !result.timed_out ? WEXITSTATUS(status) : -1;
	return result;
}

void ssh_keygen(const std::vector<std::string>& args)
{
	std::vector<std::string> argv = {"ssh-keygen"};
	argv.insert(argv.end(), args.begin(), args.end());
	const auto result = run_program(argv);
	INFO("ssh-keygen stderr: " << result.err);
	REQUIRE(result.exit_status == 0);
}

void make_key(const std::filesystem::path& file, const std::string& type, int bits)
{
	std::vector<std::string> args = {"-q", "-t", type, "-N", "", "-C", "test", "-f", file.string()};
	if (bits)
		args.insert(args.end(), {"-b", std::to_string(bits)});
	ssh_keygen(args);
}

std::filesystem::path sign_key(const std::filesystem::path& ca, const std::filesystem::path& key, const CertSpec& spec)
{
	std::vector<std::string> args = {"-q", "-s", ca.string(), "-I", spec.identity, "-z", spec.serial};
	if (!spec.principals.empty()) {
		std::string joined;
		for (const auto& p : spec.principals)
			joined += (joined.empty() ? "" : ",") + p;
		args.insert(args.end(), {"-n", joined});
	}
	if (!spec.validity.empty())
		args.insert(args.end(), {"-V", spec.validity});
	for (const auto& option : spec.options)
		args.insert(args.end(), {"-O", option});
	if (spec.host)
		args.push_back("-h");
	if (!spec.ca_signature_type.empty())
		args.insert(args.end(), {"-t", spec.ca_signature_type});
	args.push_back(key.string() + ".pub");
	ssh_keygen(args);
	return key.string() + "-cert.pub";
}

std::string read_text(const std::filesystem::path& file)
{
	std::ifstream in(file, std::ios::binary);
	return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::filesystem::path& file, const std::string& text)
{
	std::ofstream out(file, std::ios::binary | std::ios::trunc);
	out << text;
	REQUIRE(out.good());
}

JeadServer::JeadServer(const std::filesystem::path& dir, const Setup& setup) : dir_(dir), ca_(dir / "ca")
{
	std::filesystem::create_directories(dir_ / "roles");
	std::filesystem::create_directories(dir_ / "transcripts");
	std::filesystem::permissions(dir_ / "transcripts", std::filesystem::perms::owner_all);
	make_key(ca_);
	make_key(dir_ / "host_key");
	for (const auto& [name, text] : setup.roles)
		write_text(dir_ / "roles" / (name + ".toml"), text);

	port_ = free_loopback_port();
	std::ostringstream config;
	config << "listen = \"127.0.0.1:" << port_ << "\"\n"
	       << "host_key = \"host_key\"\n"
	       << "trusted_user_ca_keys = [\"ca.pub\"]\n"
	       << "roles_dir = \"roles\"\n"
	       << "transcript_dir = \"transcripts\"\n"
	       << "max_cert_lifetime = \"1h\"\n"
	       << "login_grace_time = \"10s\"\n"
	       << setup.extra_config << "\n[grants]\n";
	for (const auto& [role, principals] : setup.grants) {
		config << role << " = [";
		for (std::size_t i = 0; i < principals.size(); ++i)
			config << (i ? ", " : "") << '"' << principals[i] << '"';
		config << "]\n";
	}
	write_text(dir_ / "jead.toml", config.str());

	const int log_fd = ::open((dir_ / "jead.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	REQUIRE(log_fd >= 0);
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
	posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
	std::vector<std::string> argv;
	const char* wrapper = std::getenv("JEAD_TEST_WRAPPER");
	std::istringstream wrapper_words(wrapper ? wrapper : "");
	for (std::string word; wrapper_words >> word;)
		argv.push_back(word);
	const int start_attempts = argv.empty() ? 200 : 1200;   // 50 ms each
	argv.insert(argv.end(), {JEAD_BINARY, "serve", "--config", (dir_ / "jead.toml").string()});
	auto args = c_argv(argv);
	const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
	posix_spawn_file_actions_destroy(&actions);
	::close(log_fd);
	REQUIRE(rc == 0);

	// Wait (at most 10 s, or 60 s under a wrapper) until jead accepts
	// connections or exits.
	for (int attempt = 0; attempt < start_attempts; ++attempt) {
		if (port_accepts(port_))
			return;
		int status = 0;
		if (::waitpid(pid_, &status, WNOHANG) == pid_) {
			pid_ = -1;
			FAIL("jead exited at start: " << log());
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
	}
	FAIL("jead did not start listening within " << start_attempts / 20 << " s: " << log());
}

JeadServer::~JeadServer()
{
	if (pid_ <= 0)
		return;
	::kill(pid_, SIGTERM);
	// Bounded: 15 s for a clean shutdown, then SIGKILL.
	for (int attempt = 0; attempt < 150; ++attempt) {
		int status = 0;
		if (::waitpid(pid_, &status, WNOHANG) == pid_)
			return;
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	}
	::kill(pid_, SIGKILL);
	::waitpid(pid_, nullptr, 0);
}

std::string JeadServer::log() const
{
	return read_text(dir_ / "jead.log");
}

std::vector<std::string> ssh_argv(const JeadServer& server, const std::string& role, const std::filesystem::path& key,
                                  const std::filesystem::path& cert, const std::vector<std::string>& options,
                                  const std::vector<std::string>& command)
{
	std::vector<std::string> argv = {"ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
	                                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
	                                 "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
	                                 "-i", key.string(), "-p", std::to_string(server.port())};
	if (!cert.empty())
		argv.insert(argv.end(), {"-o", "CertificateFile=" + cert.string()});
	argv.insert(argv.end(), options.begin(), options.end());
	argv.push_back(role + "@127.0.0.1");
	argv.insert(argv.end(), command.begin(), command.end());
	return argv;
}

ProcessResult JeadServer::ssh(const std::string& role, const std::filesystem::path& key,
                              const std::filesystem::path& cert, const std::vector<std::string>& command,
                              const std::vector<std::string>& extra_options, const std::string& input)
{
	return run_program(ssh_argv(*this, role, key, cert, extra_options, command), input);
}

PtySession::PtySession(const std::vector<std::string>& argv)
{
	winsize size{};
	size.ws_col = 100;
	size.ws_row = 30;
	auto args = c_argv(argv);
	pid_ = ::forkpty(&master_, nullptr, nullptr, &size);
	REQUIRE(pid_ >= 0);
	if (pid_ == 0) {
		::execvp(args[0], args.data());
		::_exit(127);
	}
	::fcntl(master_, F_SETFL, O_NONBLOCK);
}

PtySession::~PtySession()
{
	if (!exited_ && pid_ > 0) {
		::kill(pid_, SIGKILL);
		::waitpid(pid_, nullptr, 0);
	}
	if (master_ >= 0)
		::close(master_);
}

void PtySession::send(std::string_view keys)
{
	std::size_t written = 0;
	for (int attempt = 0; attempt < 1000 && written < keys.size(); ++attempt) {
		const ssize_t n = ::write(master_, keys.data() + written, keys.size() - written);
		if (n > 0)
			written += static_cast<std::size_t>(n);
		else
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	REQUIRE(written == keys.size());
}

void PtySession::resize(int columns, int rows)
{
	winsize size{};
	size.ws_col = static_cast<unsigned short>(columns);
	size.ws_row = static_cast<unsigned short>(rows);
	REQUIRE(::ioctl(master_, TIOCSWINSZ, &size) == 0);
}

bool PtySession::read_some(int timeout_ms)
{
	pollfd p{master_, POLLIN, 0};
	if (::poll(&p, 1, timeout_ms) <= 0)
		return false;
	char buffer[4096];
	const ssize_t n = ::read(master_, buffer, sizeof buffer);
	if (n <= 0)
		return false;
	output_.append(buffer, static_cast<std::size_t>(n));
	return true;
}

bool PtySession::wait_for(std::string_view text, std::chrono::seconds timeout)
{
	const auto deadline = std::chrono::steady_clock::now() + timeout;
	while (output_.find(text, seen_from_) == std::string::npos) {
		if (std::chrono::steady_clock::now() >= deadline)
			return false;
		read_some(100);
	}
	seen_from_ = output_.find(text, seen_from_) + text.size();
	return true;
}

int PtySession::wait_exit(std::chrono::seconds timeout)
{
	const auto deadline = std::chrono::steady_clock::now() + timeout;
	while (!exited_ && std::chrono::steady_clock::now() < deadline) {
		read_some(100);
		int status = 0;
		if (::waitpid(pid_, &status, WNOHANG) == pid_) {
			exited_ = true;
			exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
	}
	while (read_some(0)) {
	}
	return exit_status_;
}

void JeadServer::send_signal(int sig) const
{
	REQUIRE(pid_ > 0);
	REQUIRE(::kill(pid_, sig) == 0);
}

bool JeadServer::wait_for_log(std::string_view text, std::chrono::seconds timeout) const
{
	const auto deadline = std::chrono::steady_clock::now() + timeout;
	while (log().find(text) == std::string::npos) {
		if (std::chrono::steady_clock::now() >= deadline)
			return false;
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
	}
	return true;
}

std::vector<std::filesystem::path> JeadServer::transcripts() const
{
	std::vector<std::filesystem::path> files;
	for (const auto& entry : std::filesystem::directory_iterator(transcript_dir()))
		files.push_back(entry.path());
	std::sort(files.begin(), files.end());
	return files;
}

std::string test_role(const std::filesystem::path& marker)
{
	const std::string verb = JEAD_TEST_VERB_BINARY;
	const std::string m = marker.string();
	std::ostringstream role;
	role << "description = \"Verbs for integration tests\"\n"
	     << "\n[[verb]]\nname = \"status\"\ndescription = \"Show a unit's status\"\n"
	     << "command = [\"" << verb << "\", \"--marker\", \"" << m
	     << "\", \"--exit\", \"3\", \"--stderr\", \"status warning\", \"--\", \"{unit}\"]\n"
	     << "args = [ { name = \"unit\", type = \"enum\", values = [\"nginx.service\", \"php-fpm.service\"] } ]\n"
	     << "\n[[verb]]\nname = \"count\"\ndescription = \"Count to N\"\n"
	     << "command = [\"" << verb << "\", \"--marker\", \"" << m << "\", \"--\", \"{n}\"]\n"
	     << "args = [ { name = \"n\", type = \"int\", min = 1, max = 10 } ]\n"
	     << "\n[[verb]]\nname = \"note\"\ndescription = \"Record a note\"\n"
	     << "command = [\"" << verb << "\", \"--marker\", \"" << m << "\", \"--\", \"{text}\"]\n"
	     << "args = [ { name = \"text\", type = \"string\", pattern = \"[a-zA-Z0-9 ._-]+\", max_length = 64 } ]\n"
	     << "\n[[verb]]\nname = \"env\"\ndescription = \"Print the environment\"\n"
	     << "command = [\"" << verb << "\", \"--marker\", \"" << m << "\", \"--env\"]\n"
	     << "\n[[verb]]\nname = \"nap\"\ndescription = \"Sleep past the verb timeout\"\n"
	     << "command = [\"" << verb << "\", \"--marker\", \"" << m << "\", \"--sleep\", \"30\"]\n"
	     << "timeout = \"2s\"\n"
	     << "\n[[verb]]\nname = \"hold\"\ndescription = \"Sleep for S seconds\"\n"
	     << "command = [\"/usr/bin/sleep\", \"{seconds}\"]\n"
	     << "args = [ { name = \"seconds\", type = \"int\", min = 1, max = 60 } ]\n"
	     << "\n[[verb]]\nname = \"stream\"\ndescription = \"Write N bytes of zeros\"\n"
	     << "command = [\"/usr/bin/head\", \"-c\", \"{bytes}\", \"/dev/zero\"]\n"
	     << "args = [ { name = \"bytes\", type = \"int\", min = 1, max = 4294967296 } ]\n"
	     << "max_output = \"8G\"\n"
	     << "\n[[verb]]\nname = \"sink\"\ndescription = \"Hash standard input\"\n"
	     << "command = [\"/usr/bin/sha256sum\"]\n"
	     << "stdin = true\n";
	return role.str();
}

}  // namespace jead::test
