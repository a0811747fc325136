// Test fixtures shared by the cert_*_test.cc files: a per-process
// temporary directory, ssh-keygen runs, and an encoder that builds
// certificates ssh-keygen cannot (security keys, NUL bytes, unsorted
// options) signed by an Ed25519 CA made with OpenSSL. The other test files
// declare the functions they use from this file in a jead::cert_testing
// block, because only tests/cert_*_test.cc files belong to this module.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include <catch2/catch.hpp>

#include "server/cert/certificate.h"
#include "server/cert/public_key.h"

namespace jead::cert_testing {

namespace {

constexpr const char* kSshKeygen = "/usr/bin/ssh-keygen";
constexpr std::size_t kMaxToolOutput = 64 * 1024;
constexpr int kToolTimeoutMs = 60 * 1000;

// Removes the per-process directory when the test binary exits.
struct TempRoot {
	std::filesystem::path path;
	TempRoot()
	{
		std::string pattern = (std::filesystem::temp_directory_path() / "jead-cert-test-XXXXXX").string();
		if (mkdtemp(pattern.data()) == nullptr)
			throw std::runtime_error("mkdtemp failed");
		path = pattern;
	}
	~TempRoot()
	{
		std::error_code ignored;
		std::filesystem::remove_all(path, ignored);
	}
};

TempRoot& temp_root()
{
	static TempRoot root;
	return root;
}

void append_u32(Bytes& out, std::uint32_t value)
{
	for (int shift = 24; shift >= 0; shift -= 8)
		out.push_back(static_cast<std::uint8_t>(value >> shift));
}

void append_u64(Bytes& out, std::uint64_t value)
{
	for (int shift = 56; shift >= 0; shift -= 8)
		out.push_back(static_cast<std::uint8_t>(value >> shift));
}

Bytes encode_options(const std::vector<CertOption>& options)
{
	Bytes out;
	for (const CertOption& option : options) {
		append_ssh_string(out, as_bytes(option.name));
		Bytes data;
		if (!option.data.empty())
			append_ssh_string(data, as_bytes(option.data));
		append_ssh_string(out, data);
	}
	return out;
}

struct PkeyDeleter {
	void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

}  // namespace

std::string make_test_dir()
{
	static int counter = 0;
	const auto dir = temp_root().path / ("case" + std::to_string(++counter));
	std::filesystem::create_directory(dir);
	return dir.string();
}

std::string read_file(const std::string& path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

void write_file(const std::string& path, std::string_view content)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

// Runs ssh-keygen with `args` (argv[1..]) through posix_spawn, never a
// shell, with TZ=UTC so dates in -V are UTC. Returns the exit status, or
// -1 when it could not run or was killed after the timeout. Its merged
// stdout and stderr go to `output`.
int run_ssh_keygen(const std::vector<std::string>& args, std::string* output)
{
	std::vector<char*> argv;
	std::string program = kSshKeygen;
	argv.push_back(program.data());
	std::vector<std::string> copies(args);
	for (std::string& arg : copies)
		argv.push_back(arg.data());
	argv.push_back(nullptr);

	std::string home = "HOME=" + temp_root().path.string();
	std::string tz = "TZ=UTC";
	std::string path = "PATH=/usr/bin:/bin";
	char* envp[] = {home.data(), tz.data(), path.data(), nullptr};

	int pipe_fds[2];
	if (pipe2(pipe_fds, O_CLOEXEC) != 0)
		return -1;
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
	posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
	pid_t pid = -1;
	const int spawned = posix_spawn(&pid, kSshKeygen, &actions, nullptr, argv.data(), envp);
	posix_spawn_file_actions_destroy(&actions);
	close(pipe_fds[1]);
	if (spawned != 0) {
		close(pipe_fds[0]);
		return -1;
	}

	std::string collected;
	const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kToolTimeoutMs);
	bool timed_out = false;
	while (collected.size() < kMaxToolOutput) {
		const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
		pollfd fd{pipe_fds[0], POLLIN, 0};
		if (left.count() <= 0 || poll(&fd, 1, static_cast<int>(left.count())) <= 0) {
			timed_out = true;
			break;
		}
		char buffer[4096];
		const ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
		if (n <= 0)
			break;
		collected.append(buffer, static_cast<std::size_t>(n));
	}
	close(pipe_fds[0]);
	if (timed_out)
		kill(pid, SIGKILL);

	int status = 0;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (output != nullptr)
		*output = collected;
	if (timed_out || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

// Generates a key pair once per test run and returns the private key
// path; `spec` is "ed25519", "ecdsa-256", "ecdsa-384", "ecdsa-521",
// "rsa-2048" or "rsa-1024". `name` separates keys of the same type.
std::string shared_key(const std::string& spec, const std::string& name)
{
	static std::map<std::string, std::string> generated;
	const std::string id = name + "-" + spec;
	if (auto found = generated.find(id); found != generated.end())
		return found->second;

	const std::string path = (temp_root().path / ("key-" + id)).string();
	std::vector<std::string> args = {"-q", "-N", "", "-C", id, "-f", path};
	const std::size_t dash = spec.find('-');
	args.push_back("-t");
	args.push_back(spec.substr(0, dash));
	if (dash != std::string::npos) {
		args.push_back("-b");
		args.push_back(spec.substr(dash + 1));
	}
	std::string output;
	const int status = run_ssh_keygen(args, &output);
	INFO("ssh-keygen output: " << output);
	REQUIRE(status == 0);
	generated[id] = path;
	return path;
}

// Signs a copy of `user_key` + ".pub" with the CA private key `ca_key` in
// a new directory and returns the certificate path. `options` are extra
// ssh-keygen arguments (-n, -V, -O, -h, -t ...).
std::string sign_certificate(const std::string& ca_key, const std::string& user_key,
                             const std::vector<std::string>& options)
{
	const std::string dir = make_test_dir();
	const std::string pub = dir + "/user.pub";
	write_file(pub, read_file(user_key + ".pub"));

	std::vector<std::string> args = {"-q", "-s", ca_key};
	if (std::find(options.begin(), options.end(), "-I") == options.end()) {
		args.push_back("-I");
		args.push_back("test-key-id");
	}
	args.insert(args.end(), options.begin(), options.end());
	args.push_back(pub);
	std::string output;
	const int status = run_ssh_keygen(args, &output);
	INFO("ssh-keygen output: " << output);
	REQUIRE(status == 0);
	return dir + "/user-cert.pub";
}

// Returns the decoded blob of the first line of a .pub or -cert.pub file.
Bytes load_key_blob(const std::string& path)
{
	const std::string text = read_file(path);
	auto line = parse_public_key_line(text.substr(0, text.find('\n')));
	INFO(path << ": " << (line ? "" : line.error().message));
	REQUIRE(line);
	return line->blob;
}

// Returns the "SHA256:..." field of `ssh-keygen -lf path`.
std::string keygen_fingerprint(const std::string& path)
{
	std::string output;
	REQUIRE(run_ssh_keygen({"-l", "-f", path}, &output) == 0);
	std::istringstream words(output);
	std::string bits, fingerprint;
	words >> bits >> fingerprint;
	return fingerprint;
}

// The Ed25519 test CA: a fixed 32-byte private seed.
Bytes test_ca_seed()
{
	return Bytes(32, 0x5a);
}

// Returns the SSH public key blob of the Ed25519 key with `seed`.
Bytes ed25519_public_blob(const Bytes& seed)
{
	std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
		EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
	REQUIRE(key);
	Bytes raw(32);
	std::size_t length = raw.size();
	REQUIRE(EVP_PKEY_get_raw_public_key(key.get(), raw.data(), &length) == 1);
	Bytes blob;
	append_ssh_string(blob, as_bytes("ssh-ed25519"));
	append_ssh_string(blob, raw);
	return blob;
}

// Encodes `cert` in the -cert-v01 wire format without sorting or checking
// anything, and signs it with the Ed25519 key `ca_seed`. The key fields
// come from cert.public_key with its type name removed; signature_key,
// signed_data and signature are computed, not read.
Bytes encode_certificate(const Certificate& cert, const Bytes& ca_seed)
{
	Bytes out;
	append_ssh_string(out, as_bytes(cert.cert_key_type));
	append_ssh_string(out, cert.nonce);
	const std::uint32_t type_length = (std::uint32_t(cert.public_key[0]) << 24) | (cert.public_key[1] << 16) |
	                                  (cert.public_key[2] << 8) | cert.public_key[3];
	out.insert(out.end(), cert.public_key.begin() + 4 + type_length, cert.public_key.end());
	append_u64(out, cert.serial);
	append_u32(out, static_cast<std::uint32_t>(cert.type));
	append_ssh_string(out, as_bytes(cert.key_id));
	Bytes principals;
	for (const std::string& principal : cert.principals)
		append_ssh_string(principals, as_bytes(principal));
	append_ssh_string(out, principals);
	append_u64(out, cert.valid_after);
	append_u64(out, cert.valid_before);
	append_ssh_string(out, encode_options(cert.critical_options));
	append_ssh_string(out, encode_options(cert.extensions));
	append_ssh_string(out, {});
	append_ssh_string(out, ed25519_public_blob(ca_seed));

	std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
		EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, ca_seed.data(), ca_seed.size()));
	EVP_MD_CTX* ctx = EVP_MD_CTX_new();
	Bytes signature(64);
	std::size_t signature_length = signature.size();
	const bool signed_ok = EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key.get()) == 1 &&
	                       EVP_DigestSign(ctx, signature.data(), &signature_length, out.data(), out.size()) == 1;
	EVP_MD_CTX_free(ctx);
	REQUIRE(signed_ok);

	Bytes signature_blob;
	append_ssh_string(signature_blob, as_bytes("ssh-ed25519"));
	append_ssh_string(signature_blob, signature);
	append_ssh_string(out, signature_blob);
	return out;
}

// A certificate ready for encode_certificate: an Ed25519 user key, one
// principal, valid for one hour from `valid_after`.
Certificate sample_certificate(std::uint64_t valid_after)
{
	Certificate cert;
	cert.cert_key_type = "ssh-ed25519-cert-v01@openssh.com";
	cert.plain_key_type = "ssh-ed25519";
	cert.nonce = Bytes(32, 0x11);
	append_ssh_string(cert.public_key, as_bytes("ssh-ed25519"));
	append_ssh_string(cert.public_key, Bytes(32, 0x22));
	cert.serial = 7;
	cert.key_id = "sample";
	cert.principals = {"alice"};
	cert.valid_after = valid_after;
	cert.valid_before = valid_after + 3600;
	cert.extensions = {{"permit-pty", ""}};
	return cert;
}

}  // namespace jead::cert_testing

using namespace jead;
using namespace jead::cert_testing;

TEST_CASE("encoded certificate parses back", "[cert]")
{
	Certificate cert = sample_certificate(1700000000);
	cert.critical_options = {{"force-command", "uptime"}, {"verify-required", ""}};
	const Bytes blob = encode_certificate(cert, test_ca_seed());

	auto parsed = parse_certificate(blob);
	INFO((parsed ? "" : parsed.error().message));
	REQUIRE(parsed);
	CHECK(parsed->public_key == cert.public_key);
	CHECK(parsed->principals == cert.principals);
	CHECK(parsed->critical_options.size() == 2);
	CHECK(parsed->signature_key == ed25519_public_blob(test_ca_seed()));
	CHECK(verify_ca_signature(*parsed));
}

TEST_CASE("ssh-keygen runs without a shell", "[cert]")
{
	std::string output;
	CHECK(run_ssh_keygen({"-l", "-f", "/nonexistent/jead-test-key"}, &output) != 0);
	CHECK(output.find("/nonexistent/jead-test-key") != std::string::npos);
}
