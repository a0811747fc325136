#include "server/dev.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/io.hpp>
#include <boost/process/search_path.hpp>

#include "common/result.h"
#include "server/log.h"
#include "server/policy_state.h"
#include "server/server.h"

namespace jead {

extern const char* const kDemoRoleToml;

namespace {

constexpr const char* kDemoPrincipal = "demo-ops";

Result<void> run_ssh_keygen(const std::vector<std::string>& args)
{
	namespace bp = boost::process;
	const auto program = bp::search_path("ssh-keygen");
	if (program.empty())
		return fail(Errc::not_found, "ssh-keygen not found in PATH; install openssh-client");
	std::error_code ec;
	bp::child child(bp::exe = program, bp::args = args, bp::std_in < bp::null, bp::std_out > bp::null, ec);
	if (ec)
		return fail(Errc::io, "cannot run ssh-keygen: " + ec.message());
	child.wait(ec);
	if (ec || child.exit_code() != 0)
		return fail(Errc::io, "ssh-keygen failed (exit status " + std::to_string(child.exit_code()) + ")");
	return {};
}

Result<void> ensure_key(const std::filesystem::path& file, const std::string& comment)
{
	if (std::filesystem::exists(file))
		return {};
	return run_ssh_keygen({"-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file.string()});
}

Result<void> write_file(const std::filesystem::path& file, const std::string& text, mode_t mode)
{
	std::ofstream out(file, std::ios::trunc);
	out << text;
	out.close();
	if (!out)
		return fail(Errc::io, "cannot write " + file.string());
	::chmod(file.c_str(), mode);
	return {};
}

Result<std::string> read_first_line(const std::filesystem::path& file)
{
	std::ifstream in(file);
	std::string line;
	if (!in || !std::getline(in, line))
		return fail(Errc::io, "cannot read " + file.string());
	return line;
}

std::string demo_config(std::uint16_t port)
{
	std::ostringstream out;
	out << "# Written by `jead dev`; rewritten at every start.\n"
	    << "listen = \"127.0.0.1:" << port << "\"\n"
	    << "host_key = \"ssh_host_ed25519_key\"\n"
	    << "trusted_user_ca_keys = [\"ca.pub\"]\n"
	    << "roles_dir = \"roles\"\n"
	    << "transcript_dir = \"transcripts\"\n"
	    << "transcript_signing_key = \"transcript-signing-key.pem\"\n"
	    << "max_cert_lifetime = \"8h\"\n"
	    << "\n[grants]\n"
	    << "demo = [\"" << kDemoPrincipal << "\"]\n";
	return out.str();
}

// Creates the Ed25519 key pair that signs transcript checkpoints, as PEM
// files that `jea-replay verify --key` and openssl read.
Result<void> ensure_signing_key(const std::filesystem::path& private_file, const std::filesystem::path& public_file)
{
	if (std::filesystem::exists(private_file) && std::filesystem::exists(public_file))
		return {};
	std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"),
	                                                       EVP_PKEY_free);
	if (!key)
		return fail(Errc::internal, "cannot generate an Ed25519 transcript signing key");

	const auto write_pem = [&](const std::filesystem::path& file, mode_t mode, bool is_private) -> Result<void> {
		const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
		if (fd < 0)
			return fail(Errc::io, "cannot write " + file.string() + ": " + std::strerror(errno));
		std::unique_ptr<FILE, decltype(&std::fclose)> out(::fdopen(fd, "w"), std::fclose);
		if (!out) {
			::close(fd);
			return fail(Errc::io, "cannot write " + file.string());
		}
		const int ok = is_private ? PEM_write_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)
		                          : PEM_write_PUBKEY(out.get(), key.get());
		if (ok != 1)
			return fail(Errc::io, "cannot write " + file.string());
		return {};
	};
	if (auto r = write_pem(private_file, 0600, true); !r)
		return r;
	return write_pem(public_file, 0644, false);
}

Result<void> prepare_demo_dir(const std::filesystem::path& dir, std::uint16_t port)
{
	std::error_code ec;
	std::filesystem::create_directories(dir / "roles", ec);
	std::filesystem::create_directories(dir / "transcripts", ec);
	if (ec)
		return fail(Errc::io, "cannot create " + dir.string() + ": " + ec.message());
	::chmod(dir.c_str(), 0700);
	::chmod((dir / "transcripts").c_str(), 0700);

	for (const auto& [file, comment] : {std::pair{"ca", "jead demo CA"},
	                                    std::pair{"ssh_host_ed25519_key", "jead demo host key"},
	                                    std::pair{"user", "jead demo user"}}) {
		if (auto r = ensure_key(dir / file, comment); !r)
			return r;
	}

	if (auto r = ensure_signing_key(dir / "transcript-signing-key.pem", dir / "transcript-signing-key.pub.pem"); !r)
		return r;

	// A fresh certificate at every start, valid for one hour from now.
	const std::string serial = std::to_string(std::time(nullptr));
	if (auto r = run_ssh_keygen({"-q", "-s", (dir / "ca").string(), "-I", "jead-demo-user", "-n", kDemoPrincipal,
	                             "-V", "+1h", "-z", serial, (dir / "user.pub").string()});
	    !r)
		return r;

	const auto role_file = dir / "roles" / "demo.toml";
	if (!std::filesystem::exists(role_file)) {
		std::string role = kDemoRoleToml;
		// As root, verbs run as an unprivileged account, never as root.
		if (::geteuid() == 0)
			role = "run_as_user = \"nobody\"\nrun_as_group = \"nogroup\"\n" + role;
		if (auto r = write_file(role_file, role, 0644); !r)
			return r;
	}
	if (auto r = write_file(dir / "jead.toml", demo_config(port), 0644); !r)
		return r;

	auto host_key = read_first_line(dir / "ssh_host_ed25519_key.pub");
	if (!host_key)
		return tl::unexpected(host_key.error());
	return write_file(dir / "known_hosts", "[127.0.0.1]:" + std::to_string(port) + " " + *host_key + "\n", 0644);
}

// Finds jea-replay beside jead: installed in the same bin directory, or in
// the build tree's transcripts/ directory.
std::string jea_replay_command()
{
	std::error_code ec;
	const auto self_dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
	for (const auto& candidate : {self_dir / "jea-replay", self_dir.parent_path() / "transcripts" / "jea-replay"}) {
		if (!ec && std::filesystem::exists(candidate))
			return candidate.string();
	}
	return "jea-replay";
}

void print_try_lines(const std::filesystem::path& dir, std::uint16_t port)
{
	std::string base = "ssh -F /dev/null -i " + (dir / "user").string() + " -o CertificateFile=" +
	                         (dir / "user-cert.pub").string() + " -o IdentitiesOnly=yes -o UserKnownHostsFile=" +
	                         (dir / "known_hosts").string() + " -p " + std::to_string(port);
	const std::string shell = base + " -t demo@127.0.0.1";
	base += " demo@127.0.0.1";
	std::cout << "jead demo endpoint on 127.0.0.1:" << port << "; its CA, keys, config, roles and transcripts are in "
	          << dir.string() << "\n"
	          << "Try these from another terminal (the certificate is valid for one hour):\n"
	          << base << " help\n"
	          << base << " hello world\n"
	          << base << " date --utc\n"
	          << base << " disk-usage /var/log/dpkg.log\n"
	          << base << " 'hello \"$(id)\"'\n"
	          << "An interactive shell, with line editing and tab completion:\n"
	          << shell << "\n"
	          << "Read what was recorded:\n"
	          << jea_replay_command() << " list " << (dir / "transcripts").string() << "\n"
	          << jea_replay_command() << " verify --key " << (dir / "transcript-signing-key.pub.pem").string() << " "
	          << (dir / "transcripts").string() << "\n"
	          << std::flush;
}

}  // namespace

int run_dev(const std::filesystem::path& dir_arg, std::uint16_t port)
{
	// Without this, "--dir ./jead-demo" run from /root/x prints paths such
	// as /root/x/./jead-demo/user. A trailing slash is dropped as well.
	auto dir = std::filesystem::absolute(dir_arg).lexically_normal();
	if (!dir.has_filename())
		dir = dir.parent_path();
	if (auto r = prepare_demo_dir(dir, port); !r) {
		std::cerr << "jead dev: " << r.error().message << "\n";
		return 1;
	}
	auto policy = load_policy(dir / "jead.toml");
	if (!policy) {
		std::cerr << "jead dev: " << policy.error().message << "\n";
		return 1;
	}
	setup_logging((*policy)->config.log_level, (*policy)->config.log_format);
	Server server(*policy);
	if (auto r = server.listen(); !r) {
		std::cerr << "jead dev: " << r.error().message << "\n";
		return 1;
	}
	print_try_lines(dir, port);
	return server.run();
}

}  // namespace jead
