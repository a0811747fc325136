// The daemon's configuration file (TOML): where to listen, which CAs to
// trust, where roles and transcripts live, and which certificate principals
// are granted which role.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/result.h"

namespace jead {

struct ListenAddress {
	std::string host;   // numeric IPv4 or IPv6 address, without brackets
	std::uint16_t port = 0;
};

struct TrustedCa {
	std::filesystem::path file;
	std::string key_type;
	Bytes blob;
	std::string fingerprint;
};

struct Config {
	std::filesystem::path file;
	ListenAddress listen;
	int listen_backlog = 512;   // pending connections the kernel queues for accept(2)
	std::filesystem::path host_key;
	std::vector<TrustedCa> trusted_cas;
	std::filesystem::path roles_dir;
	std::filesystem::path transcript_dir;
	std::filesystem::path transcript_signing_key;       // optional: Ed25519 PEM private key
	std::uint64_t transcript_checkpoint_records = 100;  // records between signed checkpoints
	// Per session channel: past it the transcript keeps only digests of the
	// streams (decisions, exits and the end are always written); 0 = no cap.
	std::uint64_t transcript_max_bytes = 1ull << 30;
	std::chrono::seconds max_cert_lifetime{8 * 3600};
	std::chrono::seconds clock_skew{30};
	std::chrono::seconds login_grace_time{30};
	std::chrono::seconds idle_timeout{15 * 60};
	std::chrono::seconds expiry_warning{5 * 60};   // interactive sessions are warned this long before expiry
	bool stop_on_error = false;                    // a shell without a pty ends at the first failed command
	bool allow_sk_keys = false;                    // accept FIDO (sk-) user keys
	std::vector<std::filesystem::path> revoked_keys;  // KRL or text revocation lists
	int max_auth_tries = 3;
	int max_unauthenticated = 64;
	int max_unauthenticated_per_source = 10;
	int max_connections_per_minute_per_source = 120;
	int max_sessions_per_certificate = 20;     // authenticated connections per CA and serial
	int max_sessions_per_principal = 100;      // authenticated connections per principal
	int max_channels_per_connection = 10;
	int max_commands_per_minute = 600;         // per session channel
	// Bytes in one command line. An exec request is one SSH packet, so
	// there the transport's packet cap (256 KiB) also applies.
	std::size_t max_command_length = 8192;
	std::string log_level = "info";
	std::string log_format = "text";   // "text" or "json"
	// role name -> principals granted it; matched by exact byte equality.
	std::map<std::string, std::vector<std::string>, std::less<>> grants;
};

// Loads and checks a config file. Relative paths in it are taken relative
// to the file's directory. Errors read "FILE:LINE:COL: message".
Result<Config> load_config(const std::filesystem::path& file);

// Parses "127.0.0.1:2222" or "[::1]:2222".
Result<ListenAddress> parse_listen_address(std::string_view text);

// Returns true when one of `principals` is granted `role`.
bool principals_granted_role(const Config& config, std::string_view role,
                             const std::vector<std::string>& principals);

}  // namespace jead
