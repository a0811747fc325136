// libFuzzer target for the daemon's config loader: load_config() in
// server/config.cc, which parses TOML with toml++ and checks every key with
// ConfigParser. load_config() reads a file, so each input is written to
// jead.toml in a private directory under /dev/shm (a RAM file system), next
// to a trusted CA key ca.pub that the seeds name. It traps when one of these
// properties breaks:
//   - an error message names the config file;
//   - a loaded config names that file and has at least one trusted CA, a
//     listen host, absolute paths and limits inside their documented ranges;
//   - every granted principal is non-empty and free of control bytes,
//     commas, spaces and glob characters.
//
// Built by fuzz/CMakeLists.txt (cmake -DJEAD_FUZZ=ON with clang); by hand,
// from the repository root:
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 \
//     fuzz/config_fuzz.cc server/config.cc server/cert/*.cc common/*.cc \
//     -ltomlplusplus -lssl -lcrypto -o /tmp/config_fuzz
//   /tmp/config_fuzz -max_total_time=30 -max_len=4096 /tmp/config_corpus fuzz/corpus/config
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "server/config.h"

namespace {

// An Ed25519 public key line; the key is never used to verify anything.
constexpr std::string_view kCaKeyLine =
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF+RVdRbVsTsWqZUmkyGB0xUdV1TZPo97NwQuzmRn5PG fuzz-ca\n";

void require(bool condition)
{
	if (!condition)
		__builtin_trap();
}

// The private directory for this process, removed at exit.
class ScratchDir {
public:
	ScratchDir()
	{
		path_ = std::filesystem::path("/dev/shm") / ("jead-config-fuzz-" + std::to_string(::getpid()));
		std::filesystem::create_directories(path_);
		std::ofstream(path_ / "ca.pub", std::ios::binary | std::ios::trunc) << kCaKeyLine;
		config_ = path_ / "jead.toml";
	}
	~ScratchDir()
	{
		std::error_code ignored;
		std::filesystem::remove_all(path_, ignored);
	}
	ScratchDir(const ScratchDir&) = delete;
	ScratchDir& operator=(const ScratchDir&) = delete;

	const std::filesystem::path& config() const { return config_; }

private:
	std::filesystem::path path_;
	std::filesystem::path config_;
};

bool is_valid_principal(std::string_view principal)
{
	if (principal.empty() || principal.size() > 256)
		return false;
	for (const char c : principal) {
		const auto b = static_cast<unsigned char>(c);
		if (b < 0x20 || b == 0x7F || c == ',' || c == ' ' || c == '*' || c == '?' || c == '[' || c == ']')
			return false;
	}
	return true;
}

void check_config(const jead::Config& config, const std::filesystem::path& file)
{
	require(config.file == file);
	require(!config.trusted_cas.empty());
	for (const auto& ca : config.trusted_cas)
		require(!ca.blob.empty() && !ca.fingerprint.empty());
	require(!config.listen.host.empty());
	require(config.roles_dir.is_absolute());
	require(config.transcript_dir.is_absolute());
	require(config.host_key.is_absolute());
	require(config.max_auth_tries >= 1 && config.max_auth_tries <= 100);
	require(config.max_unauthenticated >= 1 && config.max_unauthenticated <= 1000000);
	require(config.max_channels_per_connection >= 1 && config.max_channels_per_connection <= 1000000);
	require(config.max_command_length >= 64 && config.max_command_length <= (1u << 20));
	require(config.listen_backlog >= 1 && config.listen_backlog <= 65535);
	require(config.login_grace_time.count() >= 0);
	for (const auto& revoked : config.revoked_keys)
		require(revoked.is_absolute());
	for (const auto& [role, principals] : config.grants) {
		for (const auto& principal : principals)
			require(is_valid_principal(principal));
	}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	static const ScratchDir scratch;
	const std::filesystem::path& file = scratch.config();
	{
		std::ofstream out(file, std::ios::binary | std::ios::trunc);
		out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
		require(out.good());
	}

	auto config = jead::load_config(file);
	if (!config) {
		require(config.error().message.find(file.string()) != std::string::npos);
		return 0;
	}
	check_config(*config, file);
	return 0;
}
