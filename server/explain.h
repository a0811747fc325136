// `jead explain`: walks the whole decision for one login and one command
// line, printing each step and its result, without running anything. The
// verdicts come from the functions the daemon uses: authorize_login() for
// the login, decide() for the line, resolve_run_as() for the account.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

namespace jead {

// Exit statuses of `jead explain`.
inline constexpr int kExplainAllowed = 0;
inline constexpr int kExplainFailed = 1;    // the config or the certificate file could not be read
inline constexpr int kExplainUsage = 2;
inline constexpr int kExplainDenied = 77;   // the status jead gives a denied command

struct ExplainRequest {
	std::filesystem::path config_file;
	std::string role;
	std::optional<std::filesystem::path> certificate_file;   // an OpenSSH "-cert.pub" file
	std::string client_ip = "127.0.0.1";
	std::int64_t now = 0;          // seconds since the epoch
	bool now_from_option = false;  // `now` came from --at
	std::string command_line;
};

// Prints the decision steps for `request` to `out` and returns one of the
// exit statuses above.
int explain(const ExplainRequest& request, std::ostream& out);

// Parses a time for --at: seconds since the epoch, or UTC as
// "YYYY-MM-DDTHH:MM:SSZ".
std::optional<std::int64_t> parse_explain_time(std::string_view text);

}  // namespace jead
