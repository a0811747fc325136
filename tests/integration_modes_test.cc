// End to end: the shell with and without a pty, the jea subsystem, stdin
// streaming and the requests jead refuses, through the stock ssh client.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "tests/support.h"

using namespace jead::test;

extern char** environ;

namespace {

struct ModesFixture {
	TempDir tmp;
	std::filesystem::path marker = tmp.path() / "marker";
	JeadServer server{tmp.path(), {{{"web-ops", test_role(tmp.path() / "marker")}}, {{"web-ops", {"ops"}}}, ""}};
	std::filesystem::path key = tmp.path() / "user";
	std::filesystem::path cert;

	ModesFixture()
	{
		make_key(key);
		cert = sign_key(server.ca(), key, {});
	}

	int runs() const
	{
		const auto text = read_text(marker);
		return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
	}
};

std::string hex_sha256(const std::string& data)
{
	return jead::hex_encode(jead::sha256(jead::as_bytes(data)));
}

}  // namespace

TEST_CASE_METHOD(ModesFixture, "shell without pty runs a script", "[integration]")
{
	const std::string script = "count 3\nstatus nginx.service\nreboot\n\nnote 'all done'\n";
	const auto result = server.ssh("web-ops", key, cert, {}, {"-T"}, script);

	CHECK(result.out == "args: [3]\nargs: [nginx.service]\nargs: [all done]\n");
	CHECK(result.err.find("status warning\n") != std::string::npos);
	CHECK(result.err.find("jead: denied: ") != std::string::npos);
	CHECK(result.exit_status == 0);
	CHECK(runs() == 3);
}

TEST_CASE_METHOD(ModesFixture, "shell without pty exit status is the last command's", "[integration]")
{
	const auto result = server.ssh("web-ops", key, cert, {}, {"-T"}, "count 1\nstatus nginx.service\n");
	CHECK(result.exit_status == 3);

	const auto denied = server.ssh("web-ops", key, cert, {}, {"-T"}, "count 1\nreboot now\n");
	CHECK(denied.exit_status == 77);
}

TEST_CASE_METHOD(ModesFixture, "shell over-long line is denied", "[integration]")
{
	const std::string script = "note " + std::string(9000, 'a') + "\ncount 2\n";
	const auto result = server.ssh("web-ops", key, cert, {}, {"-T"}, script);

	CHECK(result.err.find("denied: the command line is longer than 8192 bytes (max_command_length)") != std::string::npos);
	CHECK(result.out == "args: [2]\n");
	CHECK(runs() == 1);
}

TEST_CASE_METHOD(ModesFixture, "subsystem frames output and status", "[integration]")
{
	const std::string requests = "count 2\nreboot\n[\"note\", \"two words\"]\n[\"note\", \"$(id)\"]\n";
	const auto result = server.ssh("web-ops", key, cert, {"jea"}, {"-s"}, requests);

	const std::string expected =
		"jea-stdout 10\nargs: [2]\njea-status exit 0\n"
		"jea-status denied ";
	CHECK(result.out.rfind(expected, 0) == 0);
	CHECK(result.out.find("jea-stdout 18\nargs: [two words]\njea-status exit 0\n") != std::string::npos);
	CHECK(result.out.find("jea-status denied \"argument \\\"text\\\"") != std::string::npos);
	CHECK(runs() == 2);
	CHECK(result.exit_status == 77);
}

TEST_CASE_METHOD(ModesFixture, "subsystem answers every request line", "[integration]")
{
	// A pty the client asks for changes nothing: no banner, no echo.
	const std::string requests = "count 1\n\n   \nexit\ncount 2\n";
	const auto result = server.ssh("web-ops", key, cert, {"jea"}, {"-tt", "-s"}, requests);

	CHECK(result.out.rfind("jea-stdout 10\nargs: [1]\njea-status exit 0\n", 0) == 0);
	CHECK(result.out.find("Type help") == std::string::npos);
	CHECK(result.out.find('\r') == std::string::npos);
	std::size_t empty = 0;
	for (std::size_t at = result.out.find("jea-status denied \"empty command\""); at != std::string::npos;
	     at = result.out.find("jea-status denied \"empty command\"", at + 1))
		++empty;
	CHECK(empty == 2);
	CHECK_THAT(result.out, Catch::Contains("jea-status denied \"unknown verb \\\"exit\\\""));
	CHECK_THAT(result.out, Catch::EndsWith("jea-stdout 10\nargs: [2]\njea-status exit 0\n"));
	CHECK(runs() == 2);
}

TEST_CASE_METHOD(ModesFixture, "subsystem malformed JSON is denied clearly", "[integration]")
{
	const std::string requests = "[\"note\", x]\n{\"verb\": \"count\"}\n[]\n[\"count\", 3]\ncount 1\n";
	const auto result = server.ssh("web-ops", key, cert, {"jea"}, {"-s"}, requests);

	CHECK_THAT(result.out, Catch::Contains("jea-status denied \"invalid JSON request: syntax error at byte "));
	CHECK_THAT(result.out, Catch::Contains("jea-status denied \"invalid JSON request: not an array, or empty; "));
	CHECK_THAT(result.out, Catch::Contains("jea-status denied \"invalid JSON request: every word must be a string"));
	CHECK(result.out.find("json.exception") == std::string::npos);
	// The requests after the bad ones still run.
	CHECK_THAT(result.out, Catch::EndsWith("jea-stdout 10\nargs: [1]\njea-status exit 0\n"));
	CHECK(runs() == 1);
}

TEST_CASE_METHOD(ModesFixture, "other subsystems and forwarding are refused", "[integration]")
{
	const auto sftp = server.ssh("web-ops", key, cert, {"sftp"}, {"-s"});
	CHECK(sftp.exit_status != 0);
	CHECK(sftp.out.empty());

	const auto forward = server.ssh("web-ops", key, cert, {"count", "1"},
	                                {"-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:9"});
	CHECK(forward.exit_status == 255);
	CHECK(forward.err.find("forwarding failed") != std::string::npos);
	CHECK(server.wait_for_log("refused remote port forwarding (ssh -R) to \"127.0.0.1\" port 0"));

	// Agent and X11 forwarding requests are logged too; the command runs.
	// ssh asks for them only with an agent to offer and a DISPLAY.
	const auto agent_socket = tmp.path() / "agent.sock";
	const auto agent_started = run_program({"ssh-agent", "-a", agent_socket.string()});
	REQUIRE(agent_started.exit_status == 0);
	const auto pid_at = agent_started.out.find("SSH_AGENT_PID=");
	REQUIRE(pid_at != std::string::npos);
	const pid_t agent_pid = std::stoi(agent_started.out.substr(pid_at + 14));
	std::vector<std::string> argv = {"env", "SSH_AUTH_SOCK=" + agent_socket.string(), "DISPLAY=:9"};
	const auto ssh = ssh_argv(server, "web-ops", key, cert, {"-A", "-X"}, {"count", "1"});
	argv.insert(argv.end(), ssh.begin(), ssh.end());
	const auto agent = run_program(argv);
	::kill(agent_pid, SIGTERM);
	CHECK(agent.exit_status == 0);
	CHECK(server.wait_for_log("refused agent forwarding"));
	CHECK(server.wait_for_log("refused X11 forwarding"));

	// -W opens a direct-tcpip channel at once, as -L does per connection.
	const auto stdio = server.ssh("web-ops", key, cert, {}, {"-W", "127.0.0.1:9"});
	CHECK(stdio.exit_status == 255);
	CHECK(server.wait_for_log("refused local port forwarding (ssh -L or -D) to \"127.0.0.1\" port 9"));
	CHECK(runs() == 1);
}

TEST_CASE_METHOD(ModesFixture, "exec streams stdin to a verb", "[integration]")
{
	std::string data(256u << 20, '\0');
	for (std::size_t i = 0; i < data.size(); i += 4096)
		data[i] = static_cast<char>(i / 4096);
	const auto result = server.ssh("web-ops", key, cert, {"sink"}, {}, data);

	REQUIRE(result.exit_status == 0);
	CHECK(result.out == hex_sha256(data) + "  -\n");
}

TEST_CASE_METHOD(ModesFixture, "exec streams large stdout", "[integration]")
{
	const std::size_t size = 256u << 20;
	const auto result = server.ssh("web-ops", key, cert, {"stream", std::to_string(size)});

	REQUIRE(result.exit_status == 0);
	CHECK(result.out.size() == size);
	CHECK(hex_sha256(result.out) == hex_sha256(std::string(size, '\0')));
}

TEST_CASE_METHOD(ModesFixture, "interactive shell edits completes and interrupts", "[integration]")
{
	PtySession pty(ssh_argv(server, "web-ops", key, cert, {"-tt"}, {}));

	REQUIRE(pty.wait_for("Type help for the verbs"));
	REQUIRE(pty.wait_for("web-ops ["));

	pty.send("help\r");
	CHECK(pty.wait_for("Verbs of role web-ops"));
	CHECK(pty.wait_for("Count to N"));

	pty.send("help count\r");
	CHECK(pty.wait_for("usage: count N"));
	CHECK(pty.wait_for("int from 1 to 10"));

	pty.send("sta\t");
	CHECK(pty.wait_for("status "));
	pty.send("ngi\t\r");
	CHECK(pty.wait_for("args: [nginx.service]"));

	pty.send("cont 4\x01\x1b[C\x1b[Cu\r");   // fix a typo: cont -> count
	CHECK(pty.wait_for("args: [4]"));

	pty.send("\x1b[A\r");                           // history: count 4 again
	CHECK(pty.wait_for("args: [4]"));

	pty.send("hold 30\r");
	CHECK(pty.wait_for("hold 30"));
	pty.mark();
	std::this_thread::sleep_for(std::chrono::milliseconds(500));
	const auto interrupted_at = std::chrono::steady_clock::now();
	pty.send("\x03");
	CHECK(pty.wait_for("web-ops [", std::chrono::seconds(5)));
	CHECK(std::chrono::steady_clock::now() - interrupted_at < std::chrono::seconds(5));

	pty.send("hold 2\r");
	pty.send("reboot\r");                          // typed ahead while hold runs
	CHECK(pty.wait_for("jead: denied: "));

	pty.send("\x04");
	CHECK(pty.wait_exit() != -1);
	CHECK(runs() == 3);   // the marker verbs: status and count twice

	const auto transcript = read_text(server.transcripts().back());
	CHECK(transcript.find("\"type\":\"keystrokes\"") != std::string::npos);
	CHECK(transcript.find("\"pty\":true") != std::string::npos);
	CHECK(transcript.find("\"signal\":2") != std::string::npos);
}

TEST_CASE_METHOD(ModesFixture, "same lines same result in every mode", "[integration]")
{
	const std::vector<std::pair<std::string, bool>> lines = {
		{"count 5", true}, {"count 11", false}, {"note 'a b'", true}, {"note $(id)", false}, {"status x", false},
	};
	for (const auto& [line, allowed] : lines) {
		INFO(line);
		const auto exec = server.ssh("web-ops", key, cert, {line});
		const auto shell = server.ssh("web-ops", key, cert, {}, {"-T"}, line + "\n");
		const auto subsystem = server.ssh("web-ops", key, cert, {"jea"}, {"-s"}, line + "\n");
		CHECK((exec.exit_status == 0) == allowed);
		CHECK((shell.exit_status == 0) == allowed);
		CHECK((subsystem.out.find("jea-status exit 0") != std::string::npos) == allowed);
		CHECK(exec.out == shell.out);
	}
}

namespace {

long vm_rss_kib(pid_t pid)
{
	const auto status = read_text("/proc/" + std::to_string(pid) + "/status");
	const auto at = status.find("VmRSS:");
	return at == std::string::npos ? -1 : std::stol(status.substr(at + 6));
}

}  // namespace

TEST_CASE_METHOD(ModesFixture, "client that stops reading keeps memory flat", "[integration]")
{
	const std::size_t size = 1ull << 30;
	const auto argv = ssh_argv(server, "web-ops", key, cert, {}, {"stream", std::to_string(size)});

	int out[2];
	REQUIRE(::pipe(out) == 0);
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, out[1], 1);
	posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclose(&actions, out[0]);
	std::vector<char*> args;
	for (const auto& a : argv)
		args.push_back(const_cast<char*>(a.c_str()));
	args.push_back(nullptr);
	pid_t ssh_pid = -1;
	REQUIRE(::posix_spawnp(&ssh_pid, "ssh", &actions, nullptr, args.data(), environ) == 0);
	posix_spawn_file_actions_destroy(&actions);
	::close(out[1]);

	// The client reads nothing for 5 s while the verb tries to write 1 GiB.
	const long rss_at_start = vm_rss_kib(server.pid());
	long rss_max = rss_at_start;
	for (int sample = 0; sample < 20; ++sample) {
		std::this_thread::sleep_for(std::chrono::milliseconds(250));
		rss_max = std::max(rss_max, vm_rss_kib(server.pid()));
	}

	// Then it reads everything, bounded by two minutes.
	std::size_t received = 0;
	std::vector<char> buffer(1 << 20);
	const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
	while (std::chrono::steady_clock::now() < deadline) {
		const ssize_t n = ::read(out[0], buffer.data(), buffer.size());
		if (n <= 0)
			break;
		received += static_cast<std::size_t>(n);
		if (received % (64u << 20) < static_cast<std::size_t>(n))
			rss_max = std::max(rss_max, vm_rss_kib(server.pid()));
	}
	::close(out[0]);
	int status = 0;
	::waitpid(ssh_pid, &status, 0);

	WARN("jead VmRSS: " << rss_at_start << " KiB at start, at most " << rss_max << " KiB while 1 GiB went to a "
	                    << "client that first stopped reading");
	CHECK(received == size);
	CHECK(WIFEXITED(status));
	CHECK(WEXITSTATUS(status) == 0);
	// ASan's shadow memory and quarantine make an instrumented jead far
	// larger, so the sanitizer build gets a wider bound.
#if defined(__SANITIZE_ADDRESS__)
	CHECK(rss_max < 1024 * 1024);
#else
	CHECK(rss_max < 64 * 1024);
#endif
}
