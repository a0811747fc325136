// End to end: one ssh-keygen-minted certificate per case against a real
// jead on loopback, through the stock ssh client where it can offer the
// certificate and through tests/libssh_probe.h where it cannot. Each
// refusal is checked three ways: the ssh exit status, that no verb ran (the
// test verb's marker file), and the reason in jead's log.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "tests/libssh_probe.h"
#include "tests/support.h"

extern char** environ;

using namespace jead::test;

namespace {

constexpr int kExitDenied = 77;
constexpr int kExitExpired = 78;
constexpr int kExitRevoked = 79;
constexpr int kExitSshFailed = 255;
// The "status" verb of test_role() exits with 3 after it ran.
constexpr int kExitStatusVerb = 3;

const std::vector<std::string> kMarkerCommand = {"status", "nginx.service"};

int marker_runs(const std::filesystem::path& marker)
{
	const auto text = read_text(marker);
	return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// Returns the first log line that contains every one of `needles`, or an
// empty string.
std::string find_log_line(const std::string& log, const std::vector<std::string>& needles)
{
	std::istringstream lines(log);
	std::string line;
	while (std::getline(lines, line)) {
		const bool all = std::all_of(needles.begin(), needles.end(),
		                             [&](const std::string& needle) { return line.find(needle) != std::string::npos; });
		if (all)
			return line;
	}
	return {};
}

// jead logs each refusal of a parsed certificate with its key ID quoted.
std::string refusal_line(const JeadServer& server, const std::string& key_id)
{
	return find_log_line(server.log(), {"login refused", "key_id=\"" + key_id + "\""});
}

std::string acceptance_line(const JeadServer& server, const std::string& key_id)
{
	return find_log_line(server.log(), {"login accepted", "key_id=\"" + key_id + "\""});
}

CertSpec spec_for(std::string identity, std::string validity = "-1m:+30m", std::vector<std::string> options = {})
{
	CertSpec spec;
	spec.identity = std::move(identity);
	spec.validity = std::move(validity);
	spec.options = std::move(options);
	return spec;
}

std::uint16_t pick_loopback_port()
{
	const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	sockaddr_in address{};
	address.sin_family = AF_INET;
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
	socklen_t length = sizeof address;
	REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
	::close(fd);
	return ntohs(address.sin_port);
}

bool loopback_port_accepts(std::uint16_t port)
{
	const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in address{};
	address.sin_family = AF_INET;
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	address.sin_port = htons(port);
	const bool accepted = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
	::close(fd);
	return accepted;
}

// A second jead in a JeadServer's directory, started from a config file
// this test writes, because JeadServer always trusts exactly one Ed25519
// CA key. It shares the roles, host key and transcript directory.
class ConfiguredJead {
public:
	ConfiguredJead(const std::filesystem::path& config, std::uint16_t port) : port_(port), log_file_(config)
	{
		log_file_.replace_extension(".log");
		const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		REQUIRE(log_fd >= 0);
		posix_spawn_file_actions_t actions;
		posix_spawn_file_actions_init(&actions);
		posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
		posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
		std::vector<std::string> argv = {JEAD_BINARY, "serve", "--config", config.string()};
		std::vector<char*> args;
		for (auto& word : argv)
			args.push_back(word.data());
		args.push_back(nullptr);
		const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
		posix_spawn_file_actions_destroy(&actions);
		::close(log_fd);
		REQUIRE(rc == 0);

		// Bounded: 200 tries 50 ms apart.
		for (int attempt = 0; attempt < 200; ++attempt) {
			if (loopback_port_accepts(port_))
				return;
			if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
				pid_ = -1;
				FAIL("jead exited at start: " << log());
			}
			std::this_thread::sleep_for(std::chrono::milliseconds(50));
		}
		FAIL("jead did not start listening within 10 s: " << log());
	}

	~ConfiguredJead()
	{
		if (pid_ <= 0)
			return;
		::kill(pid_, SIGTERM);
		for (int attempt = 0; attempt < 150; ++attempt) {
			if (::waitpid(pid_, nullptr, WNOHANG) == pid_)
				return;
			std::this_thread::sleep_for(std::chrono::milliseconds(100));
		}
		::kill(pid_, SIGKILL);
		::waitpid(pid_, nullptr, 0);
	}

	ConfiguredJead(const ConfiguredJead&) = delete;
	ConfiguredJead& operator=(const ConfiguredJead&) = delete;

	std::uint16_t port() const { return port_; }
	std::string log() const { return read_text(log_file_); }

private:
	std::uint16_t port_;
	std::filesystem::path log_file_;
	pid_t pid_ = -1;
};

// Returns the text of every transcript that contains `needle`.
std::vector<std::string> transcripts_containing(const JeadServer& server, const std::string& needle)
{
	std::vector<std::string> texts;
	for (const auto& file : server.transcripts()) {
		auto text = read_text(file);
		if (text.find(needle) != std::string::npos)
			texts.push_back(std::move(text));
	}
	return texts;
}

// Replaces the "-p PORT" value of an ssh argv.
std::vector<std::string> with_port(std::vector<std::string> argv, std::uint16_t port)
{
	const auto flag = std::find(argv.begin(), argv.end(), "-p");
	REQUIRE(flag != argv.end());
	REQUIRE(flag + 1 != argv.end());
	*(flag + 1) = std::to_string(port);
	return argv;
}

std::string replace_once(std::string text, const std::string& from, const std::string& to)
{
	const auto at = text.find(from);
	REQUIRE(at != std::string::npos);
	return text.replace(at, from.size(), to);
}

// Roles for the certificate cases: web-ops and short-lived (which caps
// certificate lifetime at 10 minutes) are granted principal "ops", backup
// only "svc-backup".
JeadServer::Setup cert_setup(const std::filesystem::path& marker, std::string extra_config = "")
{
	JeadServer::Setup setup;
	setup.roles = {{"web-ops", test_role(marker)},
	               {"short-lived", "max_cert_lifetime = \"10m\"\n" + test_role(marker)},
	               {"backup", test_role(marker)}};
	setup.grants = {{"web-ops", {"ops"}}, {"short-lived", {"ops"}}, {"backup", {"svc-backup"}}};
	setup.extra_config = std::move(extra_config);
	return setup;
}

struct CertFixture {
	TempDir tmp;
	std::filesystem::path marker = tmp.path() / "marker";
	JeadServer server{tmp.path(), cert_setup(tmp.path() / "marker")};
	int next_key = 0;

	// A fresh Ed25519 user key pair for each certificate.
	std::filesystem::path new_key()
	{
		const auto key = tmp.path() / ("user" + std::to_string(next_key++));
		make_key(key);
		return key;
	}

	int runs() const { return marker_runs(marker); }
};

}  // namespace

TEST_CASE_METHOD(CertFixture, "certificate login table", "[integration][cert-integration]")
{
	const auto other_ca = tmp.path() / "other-ca";
	make_key(other_ca);

	struct Case {
		std::string name;
		CertSpec spec;                      // spec.identity is unique per case
		bool allowed;
		std::string log_reason;             // in the refusal line; empty when allowed
		std::string role = "web-ops";
		std::filesystem::path ca = {};      // empty: the server's trusted CA
	};
	auto no_principals = spec_for("no-principals");
	no_principals.principals.clear();
	const std::vector<Case> cases = {
		{"certificate from another CA", spec_for("other-ca"), false, "certificate signed by an untrusted CA", "web-ops",
		 other_ca},
		{"no principals", no_principals, false, "lists no principals: issue it with ssh-keygen -n USER"},
		{"principal not granted the role", spec_for("not-granted"), false,
		 "no principal of this certificate (\"ops\") is granted role \"backup\"", "backup"},
		{"just expired", spec_for("just-expired", "-20m:-1s"), false, "certificate has expired: valid from "},
		{"not yet valid", spec_for("not-yet-valid", "+2m:+30m"), false,
		 "certificate is not yet valid: valid from "},
		{"inside the clock-skew allowance", spec_for("skew-10s", "+10s:+30m"), true, ""},
		{"valid always to forever", spec_for("forever", "always:forever"), false,
		 "certificate never expires (valid_before is \"forever\")"},
		{"lifetime over the server cap", spec_for("over-server-cap", "-1m:+2h"), false,
		 "certificate lifetime of 7260s exceeds the maximum of 3600s"},
		{"lifetime over the role cap", spec_for("over-role-cap", "-1m:+30m"), false,
		 "certificate lifetime 31m exceeds role \"short-lived\"'s max_cert_lifetime of 10m", "short-lived"},
		{"lifetime equal to the role cap", spec_for("at-role-cap", "-1m:+9m"), true, "", "short-lived"},
		{"source-address exact match", spec_for("source-exact", "-1m:+30m", {"source-address=127.0.0.1/32"}), true,
		 ""},
		{"source-address IPv4 list", spec_for("source-list", "-1m:+30m", {"source-address=10.0.0.0/8,127.0.0.0/8"}),
		 true, ""},
		{"source-address list without the client",
		 spec_for("source-other", "-1m:+30m", {"source-address=10.0.0.0/8,192.168.0.0/16"}), false,
		 "client address 127.0.0.1 is not in the certificate's source-address list \"10.0.0.0/8,192.168.0.0/16\""},
		{"source-address ::1/128 only", spec_for("source-v6", "-1m:+30m", {"source-address=::1/128"}), false,
		 "client address 127.0.0.1 is not in the certificate's source-address list \"::1/128\""},
		// ssh-keygen checks the list given with source-address= but not
		// one given as a generic critical option.
		{"malformed source-address", spec_for("source-bad", "-1m:+30m", {"critical:source-address=127.0.0.1/40"}),
		 false, "certificate critical option \"source-address\" is invalid: "},
		{"unknown critical option", spec_for("critical-foo", "-1m:+30m", {"critical:foo=bar"}), false,
		 "certificate has unsupported critical option \"foo\""},
	};

	for (const auto& c : cases) {
		INFO("case: " << c.name);
		const auto key = new_key();
		const auto cert = sign_key(c.ca.empty() ? server.ca() : c.ca, key, c.spec);
		const int runs_before = runs();

		const auto result = server.ssh(c.role, key, cert, kMarkerCommand);

		INFO("ssh stderr: " << result.err);
		if (c.allowed) {
			CHECK(result.exit_status == kExitStatusVerb);
			CHECK(result.out == "args: [nginx.service]\n");
			CHECK(runs() == runs_before + 1);
			CHECK_FALSE(acceptance_line(server, c.spec.identity).empty());
			CHECK(refusal_line(server, c.spec.identity).empty());
			continue;
		}
		CHECK(result.exit_status == kExitSshFailed);
		CHECK(result.err.find("Permission denied (publickey)") != std::string::npos);
		CHECK(result.out.empty());
		CHECK(runs() == runs_before);
		const auto line = refusal_line(server, c.spec.identity);
		INFO("log line: " << line);
		CHECK(line.find(c.log_reason) != std::string::npos);
		CHECK(acceptance_line(server, c.spec.identity).empty());
	}
}

TEST_CASE("certificate CA key types", "[integration][cert-integration]")
{
	TempDir tmp;
	const auto marker = tmp.path() / "marker";
	JeadServer server(tmp.path(), cert_setup(marker));

	struct CaKey {
		std::string file;
		std::string type;
		int bits;
	};
	const std::vector<CaKey> ca_keys = {
		{"ca-ecdsa-256", "ecdsa", 256}, {"ca-ecdsa-384", "ecdsa", 384}, {"ca-ecdsa-521", "ecdsa", 521},
		{"ca-rsa", "rsa", 3072},
	};
	std::string trusted = "trusted_user_ca_keys = [\"ca.pub\"";
	for (const auto& ca : ca_keys) {
		make_key(tmp.path() / ca.file, ca.type, ca.bits);
		trusted += ", \"" + ca.file + ".pub\"";
	}
	trusted += "]";

	// The same config as the JeadServer's, on another port and trusting
	// every CA key above.
	const auto port = pick_loopback_port();
	auto config = read_text(tmp.path() / "jead.toml");
	config = replace_once(config, "listen = \"127.0.0.1:" + std::to_string(server.port()) + "\"",
	                      "listen = \"127.0.0.1:" + std::to_string(port) + "\"");
	config = replace_once(config, "trusted_user_ca_keys = [\"ca.pub\"]", trusted);
	write_text(tmp.path() / "jead-ca-types.toml", config);
	ConfiguredJead jead(tmp.path() / "jead-ca-types.toml", port);

	struct Case {
		std::string ca_file;
		std::string signature_type;   // ssh-keygen -t with -s; empty for the CA's default
		bool allowed;
		std::string log_reason;
	};
	const std::vector<Case> cases = {
		{"ca", "", true, ""},
		{"ca-ecdsa-256", "", true, ""},
		{"ca-ecdsa-384", "", true, ""},
		{"ca-ecdsa-521", "", true, ""},
		{"ca-rsa", "rsa-sha2-256", true, ""},
		{"ca-rsa", "rsa-sha2-512", true, ""},
		{"ca-rsa", "ssh-rsa", false,
		 "certificate signature algorithm \"ssh-rsa\" (RSA with SHA-1) is not allowed: re-sign the certificate "
		 "with ssh-keygen -t rsa-sha2-512"},
	};

	int index = 0;
	for (const auto& c : cases) {
		const std::string identity = "ca-type-" + std::to_string(index);
		INFO("CA " << c.ca_file << " signature " << (c.signature_type.empty() ? "default" : c.signature_type));
		const auto key = tmp.path() / ("user" + std::to_string(index++));
		make_key(key);
		auto spec = spec_for(identity);
		spec.ca_signature_type = c.signature_type;
		const auto cert = sign_key(tmp.path() / c.ca_file, key, spec);
		const int runs_before = marker_runs(marker);

		const auto result = run_program(with_port(ssh_argv(server, "web-ops", key, cert, {}, kMarkerCommand), port));

		INFO("ssh stderr: " << result.err);
		const auto log = jead.log();
		if (c.allowed) {
			CHECK(result.exit_status == kExitStatusVerb);
			CHECK(marker_runs(marker) == runs_before + 1);
			CHECK_FALSE(find_log_line(log, {"login accepted", "key_id=\"" + identity + "\""}).empty());
			continue;
		}
		CHECK(result.exit_status == kExitSshFailed);
		CHECK(marker_runs(marker) == runs_before);
		const auto line = find_log_line(log, {"login refused", "key_id=\"" + identity + "\""});
		INFO("log line: " << line);
		CHECK(line.find(c.log_reason) != std::string::npos);
	}
}

TEST_CASE_METHOD(CertFixture, "certificate force-command allows one line", "[integration][cert-integration]")
{
	const auto key = new_key();
	const auto cert = sign_key(server.ca(), key, spec_for("forced", "-1m:+30m", {"force-command=count 2"}));
	const std::string reason = "jead: denied: this certificate allows only the command \"count 2\" (force-command)\n";

	for (const auto& command : std::vector<std::vector<std::string>>{{"count", "3"}, {"status", "nginx.service"}}) {
		INFO("command: " << command[0]);
		const auto denied = server.ssh("web-ops", key, cert, command);
		CHECK(denied.exit_status == kExitDenied);
		CHECK(denied.err == reason);
		CHECK(denied.out.empty());
	}

	CHECK_FALSE(std::filesystem::exists(marker));

	// As in OpenSSH, a shell request runs the forced command instead; what
	// the client types is not a command.
	const auto shell = server.ssh("web-ops", key, cert, {}, {"-T"}, "status nginx.service\n");
	INFO("shell stderr: " << shell.err);
	CHECK(shell.exit_status == 0);
	CHECK(shell.out == "args: [2]\n");
	CHECK_FALSE(find_log_line(server.log(), {"shell request runs the certificate's force-command"}).empty());
	CHECK(runs() == 1);

	const auto allowed = server.ssh("web-ops", key, cert, {"count", "2"});
	CHECK(allowed.exit_status == 0);
	CHECK(allowed.out == "args: [2]\n");
	CHECK(runs() == 2);
}

TEST_CASE_METHOD(CertFixture, "certificate without permit-pty gets no pty", "[integration][cert-integration]")
{
	const auto key = new_key();
	const auto cert =
		sign_key(server.ca(), key, spec_for("no-pty", "-1m:+30m", {"clear", "permit-agent-forwarding", "permit-user-rc"}));

	// With -tt, OpenSSH 9.2 treats a refused pty as fatal and closes the
	// session itself, so only the refusal is checked here.
	const auto forced = server.ssh("web-ops", key, cert, {"count", "2"}, {"-tt"});
	CHECK(forced.err.find("PTY allocation request failed") != std::string::npos);
	CHECK(forced.exit_status == kExitSshFailed);
	CHECK_FALSE(find_log_line(server.log(), {"pty refused: the certificate has no permit-pty extension"}).empty());

	// Without -t, ssh on a terminal requests a pty for the shell and goes
	// on without one when jead rejects the request, so commands still run.
	PtySession shell(ssh_argv(server, "web-ops", key, cert, {}, {}));
	CHECK(shell.wait_for("PTY allocation request failed"));
	const int runs_before = runs();
	shell.send("count 2\n");
	CHECK(shell.wait_for("args: [2]"));
	shell.send("exit\n");
	CHECK(shell.wait_exit() == 0);
	CHECK(runs() == runs_before + 1);
	const auto shell_transcripts = transcripts_containing(server, "\"mode\":\"shell\"");
	REQUIRE(shell_transcripts.size() == 1);
	CHECK(shell_transcripts[0].find("\"key_id\":\"no-pty\"") != std::string::npos);
	CHECK(shell_transcripts[0].find("\"pty\":false") != std::string::npos);

	// Control: the default extensions include permit-pty, and then the
	// same -tt request gets a pty (which turns LF into CR LF).
	const auto pty_key = new_key();
	const auto pty_cert = sign_key(server.ca(), pty_key, spec_for("with-pty"));
	const auto with_pty = server.ssh("web-ops", pty_key, pty_cert, {"count", "2"}, {"-tt"});
	CHECK(with_pty.err.find("PTY allocation request failed") == std::string::npos);
	CHECK(with_pty.exit_status == 0);
	CHECK(with_pty.out == "args: [2]\r\n");
}

TEST_CASE_METHOD(CertFixture, "certificate jead-verbs extension narrows the role", "[integration][cert-integration]")
{
	const auto key = new_key();
	const auto cert =
		sign_key(server.ca(), key, spec_for("narrowed", "-1m:+30m", {"extension:jead-verbs@jead=status,count"}));

	const auto status = server.ssh("web-ops", key, cert, {"status", "nginx.service"});
	CHECK(status.exit_status == kExitStatusVerb);
	const auto count = server.ssh("web-ops", key, cert, {"count", "2"});
	CHECK(count.exit_status == 0);
	CHECK(runs() == 2);

	const auto note = server.ssh("web-ops", key, cert, {"note", "hello"});
	CHECK(note.exit_status == kExitDenied);
	CHECK(note.err == "jead: denied: this certificate's jead-verbs@jead extension does not list verb \"note\"\n");
	CHECK(runs() == 2);

	// help lists only the verbs this certificate may run.
	const auto help = server.ssh("web-ops", key, cert, {"help"});
	CHECK(help.exit_status == 0);
	CHECK_THAT(help.out, Catch::Contains("  status"));
	CHECK_THAT(help.out, Catch::Contains("  count"));
	CHECK(help.out.find("  note") == std::string::npos);
	CHECK(help.out.find("  hold") == std::string::npos);
}

namespace {

struct RevocationFixture {
	TempDir tmp;
	std::filesystem::path marker = tmp.path() / "marker";
	JeadServer server{tmp.path(), cert_setup(tmp.path() / "marker", "revoked_keys = [\"revoked.krl\"]")};
	std::filesystem::path krl = tmp.path() / "revoked.krl";
	int next_key = 0;

	RevocationFixture() { install_krl({}, {}); }

	std::filesystem::path new_key()
	{
		const auto key = tmp.path() / ("user" + std::to_string(next_key++));
		make_key(key);
		return key;
	}

	// Writes a KRL with ssh-keygen -k from `lines` (a KRL specification,
	// see ssh-keygen(1)) and the public key files `keys`, then renames it
	// over revoked.krl, so jead never reads a half-written file.
	void install_krl(const std::vector<std::string>& lines, const std::vector<std::filesystem::path>& keys)
	{
		const auto next = tmp.path() / "revoked.krl.next";
		std::vector<std::string> args = {"-q", "-k", "-f", next.string()};
		if (!lines.empty()) {
			const auto spec = tmp.path() / "revoked.spec";
			std::string text;
			for (const auto& line : lines)
				text += line + "\n";
			write_text(spec, text);
			args.insert(args.end(), {"-s", server.ca().string() + ".pub", spec.string()});
		}
		for (const auto& key : keys)
			args.push_back(key.string());
		ssh_keygen(args);
		std::filesystem::rename(next, krl);
	}

	int runs() const { return marker_runs(marker); }
};

}  // namespace

TEST_CASE_METHOD(RevocationFixture, "certificate revocation list refuses login", "[integration][cert-integration]")
{
	struct Case {
		std::string name;
		std::vector<std::string> lines;   // KRL specification lines, scoped to the server's CA
		bool revoke_user_key;             // list the user's plain public key
		bool revoke_ca_key;               // list the CA's public key
		std::string log_reason;
	};
	const std::vector<Case> cases = {
		{"by CA key", {}, false, true, ", which revokes every certificate it signed"},
		{"by serial", {"serial: 42"}, false, false, "certificate serial 42 is revoked in " + krl.string()},
		{"by key ID", {"id: revoked-id-2"}, false, false,
		 "certificate key ID \"revoked-id-2\" is revoked in " + krl.string()},
		{"by plain key", {}, true, false, "is revoked in " + krl.string() + " (listed by key)"},
	};

	int index = 0;
	for (const auto& c : cases) {
		INFO("case: revoked " << c.name);
		const std::string identity = "revoked-id-" + std::to_string(index++);
		const auto key = new_key();
		auto spec = spec_for(identity);
		spec.serial = "42";
		const auto cert = sign_key(server.ca(), key, spec);

		// A certificate that the list does not name still logs in, so the
		// refusal below comes from the entry, not from an unusable list.
		const auto control_key = new_key();
		auto control_spec = spec_for("control-" + identity);
		control_spec.serial = "43";
		const auto control_cert = sign_key(server.ca(), control_key, control_spec);

		std::vector<std::filesystem::path> keys;
		if (c.revoke_user_key)
			keys.push_back(key.string() + ".pub");
		if (c.revoke_ca_key)
			keys.push_back(server.ca().string() + ".pub");
		install_krl(c.lines, keys);
		const int runs_before = runs();

		const auto revoked = server.ssh("web-ops", key, cert, kMarkerCommand);
		CHECK(revoked.exit_status == kExitSshFailed);
		CHECK(runs() == runs_before);
		const auto line = refusal_line(server, identity);
		INFO("log line: " << line);
		CHECK(line.find(c.log_reason) != std::string::npos);

		const auto control = server.ssh("web-ops", control_key, control_cert, kMarkerCommand);
		if (c.revoke_ca_key) {
			CHECK(control.exit_status == kExitSshFailed);
		} else {
			CHECK(control.exit_status == kExitStatusVerb);
			CHECK(runs() == runs_before + 1);
		}
	}
}

TEST_CASE_METHOD(RevocationFixture, "certificate corrupt revocation list fails closed",
                 "[integration][cert-integration]")
{
	install_krl({"serial: 1000"}, {});
	auto text = read_text(krl);
	REQUIRE(text.size() > 10);
	text.resize(text.size() - 5);   // the last section now overruns the file
	write_text(tmp.path() / "revoked.krl.next", text);
	std::filesystem::rename(tmp.path() / "revoked.krl.next", krl);

	const auto key = new_key();
	const auto cert = sign_key(server.ca(), key, spec_for("krl-corrupt"));
	const auto result = server.ssh("web-ops", key, cert, kMarkerCommand);

	CHECK(result.exit_status == kExitSshFailed);
	CHECK_FALSE(std::filesystem::exists(marker));
	const auto line = refusal_line(server, "krl-corrupt");
	INFO("log line: " << line);
	CHECK(line.find("revocation list " + krl.string() + " is unusable (") != std::string::npos);
	CHECK(line.find("so jead refuses everything until it is fixed") != std::string::npos);
}

TEST_CASE_METHOD(RevocationFixture, "certificate revoked mid-session ends it", "[integration][cert-integration]")
{
	const auto key = new_key();
	auto spec = spec_for("revoked-live");
	spec.serial = "77";
	const auto cert = sign_key(server.ca(), key, spec);

	struct Case {
		std::string name;
		std::vector<std::string> options;
		std::vector<std::string> command;
		std::string ready_text;   // on the terminal once the session runs
		std::string ready_log;    // or in the log
		std::string revoked_text; // before the reason
	};
	const std::vector<Case> cases = {
		{"pty shell at its prompt", {"-tt"}, {}, "web-ops [", "", "jead: "},
		{"exec running hold 60", {}, {"hold", "60"}, "", "allowed \"hold 60\"", "jead: "},
		// The subsystem's last status line carries the reason.
		{"subsystem between requests", {"-s"}, {"jea"}, "", "subsystem session started", "jea-status error 79 \""},
	};
	for (const auto& c : cases) {
		INFO("case: " << c.name);
		install_krl({}, {});
		const auto transcripts_before = server.transcripts();
		// The log keeps earlier cases' lines, so occurrences are counted.
		const auto count = [&] {
			const std::string log = server.log();
			std::size_t n = 0;
			for (auto at = log.find(c.ready_log); !c.ready_log.empty() && at != std::string::npos;
			     at = log.find(c.ready_log, at + 1))
				++n;
			return n;
		};
		const std::size_t seen = count();
		PtySession session(ssh_argv(server, "web-ops", key, cert, c.options, c.command));
		if (!c.ready_text.empty()) {
			REQUIRE(session.wait_for(c.ready_text));
		} else {
			// Bounded: 100 polls 50 ms apart for the session to start.
			for (int attempt = 0; attempt < 100 && count() == seen; ++attempt)
				std::this_thread::sleep_for(std::chrono::milliseconds(50));
			REQUIRE(count() > seen);
		}

		const auto revoked_at = std::chrono::steady_clock::now();
		install_krl({"serial: 77"}, {});

		CHECK(session.wait_for(c.revoked_text + "certificate serial 77 is revoked in " + krl.string(),
		                       std::chrono::seconds(10)));
		CHECK(session.wait_for("; the session is over"));
		CHECK(session.wait_exit(std::chrono::seconds(10)) == kExitRevoked);
		CHECK(std::chrono::steady_clock::now() - revoked_at < std::chrono::seconds(10));

		// Names sort by start second only, so the new file is found by
		// difference.
		std::vector<std::filesystem::path> added;
		for (const auto& file : server.transcripts())
			if (std::find(transcripts_before.begin(), transcripts_before.end(), file) == transcripts_before.end())
				added.push_back(file);
		REQUIRE(added.size() == 1);
		const auto transcript = read_text(added[0]);
		CHECK(transcript.find("\"type\":\"end\"") != std::string::npos);
		CHECK(transcript.find("\"reason\":\"revoked\"") != std::string::npos);
	}
}

TEST_CASE_METHOD(CertFixture, "certificate expiry stops a running verb", "[integration][cert-integration]")
{
	const auto key = new_key();
	const auto cert = sign_key(server.ca(), key, spec_for("expires-soon", "-1m:+15s"));

	const auto started = std::chrono::steady_clock::now();
	const auto result = server.ssh("web-ops", key, cert, {"hold", "60"});
	const auto took = std::chrono::steady_clock::now() - started;

	CHECK(result.exit_status == kExitExpired);
	CHECK(result.out.empty());
	CHECK(result.err.rfind("jead: the certificate expired at ", 0) == 0);
	CHECK_THAT(result.err, Catch::Matches("jead: the certificate expired at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z; "
	                                      "the session is over\\. Get a new certificate\\.\\s*"));
	CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
	CHECK(took < std::chrono::seconds(30));

	const auto files = server.transcripts();
	REQUIRE(files.size() == 1);
	const auto transcript = read_text(files.back());
	CHECK(transcript.find("\"type\":\"process_exit\"") != std::string::npos);
	CHECK(transcript.find("\"reason\":\"expired\"") != std::string::npos);
}

TEST_CASE_METHOD(CertFixture, "certificate probe offers what ssh will not", "[integration][cert-integration]")
{
	// Control: the probe client logs in and runs a verb with a good
	// certificate, so the refusals below come from jead.
	const auto good_key = new_key();
	const auto good_cert = sign_key(server.ca(), good_key, spec_for("probe-good"));
	const auto good = probe_certificate_login(server.port(), "web-ops", good_key, good_cert, "count 2");
	INFO("probe error: " << good.error);
	CHECK(good.authenticated);
	CHECK(good.exit_status == 0);
	CHECK(good.output == "args: [2]\n");
	REQUIRE(runs() == 1);

	SECTION("tampered principal")
	{
		// Issued for "opx", which no role grants. The attacker changes one
		// byte so that it reads "ops", which web-ops grants.
		const auto key = new_key();
		auto spec = spec_for("probe-tampered");
		spec.principals = {"opx"};
		const auto cert_file = sign_key(server.ca(), key, spec);
		std::istringstream fields(read_text(cert_file));
		std::string type, base64, comment;
		fields >> type >> base64 >> comment;
		auto blob = jead::base64_decode(base64);
		REQUIRE(blob);
		const std::string encoded_principal("\0\0\0\3opx", 7);
		std::string bytes(blob->begin(), blob->end());
		const auto at = bytes.find(encoded_principal);
		REQUIRE(at != std::string::npos);
		REQUIRE(bytes.find(encoded_principal, at + 1) == std::string::npos);
		bytes[at + 6] = 's';
		const auto tampered = tmp.path() / "tampered-cert.pub";
		write_text(tampered, type + " " + jead::base64_encode(jead::as_bytes(bytes)) + " " + comment + "\n");

		const auto result = probe_certificate_login(server.port(), "web-ops", key, tampered, "count 2");
		INFO("probe error: " << result.error);
		CHECK(result.connected);
		CHECK_FALSE(result.authenticated);
		CHECK(runs() == 1);
		const auto line = refusal_line(server, "probe-tampered");
		INFO("log line: " << line);
		CHECK(line.find("certificate signature is invalid") != std::string::npos);
	}

	SECTION("host certificate from the trusted CA")
	{
		const auto key = new_key();
		auto spec = spec_for("probe-host");
		spec.host = true;
		const auto cert = sign_key(server.ca(), key, spec);

		const auto result = probe_certificate_login(server.port(), "web-ops", key, cert, "count 2");
		INFO("probe error: " << result.error);
		CHECK(result.connected);
		CHECK_FALSE(result.authenticated);
		CHECK(runs() == 1);
		const auto line = refusal_line(server, "probe-host");
		INFO("log line: " << line);
		CHECK(line.find("host certificate refused: \"probe-host\" is a host certificate") != std::string::npos);
	}
}

TEST_CASE_METHOD(CertFixture, "certificate server offers strict kex", "[integration][cert-integration]")
{
	// Strict key exchange (OpenSSH PROTOCOL, "kex-strict-*") is the
	// countermeasure to the Terrapin prefix truncation attack, CVE-2023-48795.
	const auto hello = read_server_kexinit(server.port());
	INFO("probe error: " << hello.error);
	REQUIRE(hello.error.empty());
	CHECK(hello.version.rfind("SSH-2.0-", 0) == 0);
	CHECK(std::find(hello.kex_algorithms.begin(), hello.kex_algorithms.end(), "kex-strict-s-v00@openssh.com") !=
	      hello.kex_algorithms.end());
}

TEST_CASE_METHOD(CertFixture, "certificate early userauth success is dropped", "[integration][cert-integration]")
{
	// Only a server may send SSH_MSG_USERAUTH_SUCCESS. A server that accepts
	// one from a client skips authentication, as libssh did in CVE-2018-10933.
	SECTION("before the key exchange")
	{
		const auto result = send_userauth_success_before_kex(server.port());
		INFO("probe error: " << result.error);
		CHECK(result.error.empty());
		CHECK(result.closed);
		CHECK(result.waited < std::chrono::seconds(5));
	}

	SECTION("after the key exchange, followed by a channel open")
	{
		const auto result = send_userauth_success_after_kex(server.port());
		INFO("probe error: " << result.error);
		std::string messages;
		for (int message : result.messages)
			messages += std::to_string(message) + " ";
		INFO("messages after NEWKEYS: " << messages);
		CHECK(result.error.empty());
		// The probe's own transport works: the server accepted its
		// encrypted service request and its MAC verified.
		CHECK(result.key_exchange_done);
		CHECK(result.service_accepted);
		CHECK_FALSE(result.channel_opened);
		CHECK(result.closed);
	}

	CHECK(server.transcripts().empty());
	CHECK(find_log_line(server.log(), {"login accepted"}).empty());

	// jead keeps serving other clients.
	const auto key = new_key();
	const auto cert = sign_key(server.ca(), key, spec_for("after-early-message"));
	const auto after = server.ssh("web-ops", key, cert, kMarkerCommand);
	CHECK(after.exit_status == kExitStatusVerb);
	CHECK(runs() == 1);
}

// A forged USERAUTH_SUCCESS must leave a trace at the default log level.
TEST_CASE_METHOD(CertFixture, "certificate forged userauth success is logged",
                 "[integration][cert-integration]")
{
	const auto result = send_userauth_success_after_kex(server.port());
	INFO("probe error: " << result.error);
	REQUIRE(result.key_exchange_done);
	REQUIRE(result.closed);
	REQUIRE(result.client_port != 0);

	// Bounded: 40 polls 50 ms apart for jead to write the line.
	const std::string client = "client=127.0.0.1:" + std::to_string(result.client_port) + " ";
	std::string line;
	for (int attempt = 0; attempt < 40 && line.empty(); ++attempt) {
		line = find_log_line(server.log(), {client});
		if (line.empty())
			std::this_thread::sleep_for(std::chrono::milliseconds(50));
	}
	INFO("log: " << server.log());
	CHECK_FALSE(line.empty());
	const bool warning_or_error =
		line.find(" warning ") != std::string::npos || line.find(" error ") != std::string::npos;
	CHECK(warning_or_error);
}
