#include "server/config.h"

#include <arpa/inet.h>

#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "common/duration.h"
#include "common/escape.h"
#include "server/cert/certificate.h"

namespace jead {

namespace {

constexpr std::uintmax_t kMaxConfigBytes = 1 << 20;
constexpr std::size_t kMaxPrincipalBytes = 256;

std::string where(const std::filesystem::path& file, const toml::source_region& region)
{
	return file.string() + ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
}

// Grant entries are matched byte for byte against certificate principals, so
// anything that looks like a list, a pattern or padding is a mistake.
Result<void> check_grant_principal(std::string_view principal)
{
	if (principal.empty())
		return fail(Errc::invalid, "empty principal");
	if (principal.size() > kMaxPrincipalBytes)
		return fail(Errc::invalid, "principal longer than " + std::to_string(kMaxPrincipalBytes) + " bytes");
	for (unsigned char c : principal) {
		if (c < 0x20 || c == 0x7F)
			return fail(Errc::invalid, "principal " + escape_untrusted(principal) + " contains a control character");
		if (c == ',' || c == ' ')
			return fail(Errc::invalid, "principal " + escape_untrusted(principal) +
			                               " contains a comma or space; list each principal as its own string");
		if (c == '*' || c == '?' || c == '[' || c == ']')
			return fail(Errc::invalid, "principal " + escape_untrusted(principal) +
			                               " contains a glob character; principals match exactly, never as patterns");
	}
	return {};
}

Result<TrustedCa> load_trusted_ca(const std::filesystem::path& file)
{
	std::ifstream in(file);
	if (!in)
		return fail(Errc::not_found, "cannot read trusted CA key " + file.string());
	std::string line;
	std::getline(in, line);
	auto key = parse_public_key_line(line);
	if (!key)
		return fail(Errc::invalid, "trusted CA key " + file.string() + ": " + key.error().message);
	return TrustedCa{file, key->type, key->blob, ssh_fingerprint(key->blob)};
}

class ConfigParser {
public:
	explicit ConfigParser(const std::filesystem::path& file) : file_(file), base_(file.parent_path()) {}

	Result<Config> parse(const toml::table& root)
	{
		static const std::set<std::string, std::less<>> known = {
			"listen", "host_key", "trusted_user_ca_keys", "roles_dir", "transcript_dir",
			"max_cert_lifetime", "clock_skew", "login_grace_time", "max_auth_tries",
			"max_unauthenticated", "max_command_length", "log_level", "grants", "idle_timeout",
			"expiry_warning", "stop_on_error", "allow_sk_keys", "revoked_keys",
			"max_unauthenticated_per_source", "max_connections_per_minute_per_source",
			"max_sessions_per_certificate", "max_sessions_per_principal", "max_channels_per_connection",
			"max_commands_per_minute", "log_format", "transcript_signing_key", "transcript_checkpoint_records",
			"transcript_max_bytes", "listen_backlog",
		};
		for (const auto& [key, node] : root) {
			if (!known.contains(key.str()))
				return error(node, "unknown key \"" + std::string(key.str()) + "\"");
		}

		Config config;
		config.file = file_;

		auto listen = required_string(root, "listen");
		if (!listen)
			return tl::unexpected(listen.error());
		auto address = parse_listen_address(*listen);
		if (!address)
			return error(*root.get("listen"), address.error().message);
		config.listen = *address;

		for (auto [key, target] : {std::pair{"host_key", &config.host_key},
		                           std::pair{"roles_dir", &config.roles_dir},
		                           std::pair{"transcript_dir", &config.transcript_dir}}) {
			auto value = required_string(root, key);
			if (!value)
				return tl::unexpected(value.error());
			*target = resolve(*value);
		}

		if (const auto* key = root.get("transcript_signing_key")) {
			const auto* s = key->as_string();
			if (!s || s->get().empty())
				return error(*key, "\"transcript_signing_key\" must be the file name of an Ed25519 PEM private key");
			config.transcript_signing_key = resolve(s->get());
		}
		int checkpoint = static_cast<int>(config.transcript_checkpoint_records);
		if (auto r = optional_int(root, "transcript_checkpoint_records", 0, 1000000, checkpoint); !r)
			return tl::unexpected(r.error());
		config.transcript_checkpoint_records = static_cast<std::uint64_t>(checkpoint);
		if (const auto* node = root.get("transcript_max_bytes")) {
			const auto* i = node->as_integer();
			if (!i || i->get() < 0)
				return error(*node, "\"transcript_max_bytes\" must be a byte count, 0 for no cap");
			config.transcript_max_bytes = static_cast<std::uint64_t>(i->get());
		}

		if (auto r = parse_cas(root, config); !r)
			return tl::unexpected(r.error());
		for (auto [key, target] : {std::pair{"max_cert_lifetime", &config.max_cert_lifetime},
		                           std::pair{"clock_skew", &config.clock_skew},
		                           std::pair{"login_grace_time", &config.login_grace_time},
		                           std::pair{"idle_timeout", &config.idle_timeout},
		                           std::pair{"expiry_warning", &config.expiry_warning}}) {
			if (auto r = optional_duration(root, key, *target); !r)
				return tl::unexpected(r.error());
		}
		if (auto r = optional_int(root, "max_auth_tries", 1, 100, config.max_auth_tries); !r)
			return tl::unexpected(r.error());
		for (auto [key, target] : {std::pair{"max_unauthenticated", &config.max_unauthenticated},
		                           std::pair{"max_unauthenticated_per_source", &config.max_unauthenticated_per_source},
		                           std::pair{"max_connections_per_minute_per_source",
		                                     &config.max_connections_per_minute_per_source},
		                           std::pair{"max_sessions_per_certificate", &config.max_sessions_per_certificate},
		                           std::pair{"max_sessions_per_principal", &config.max_sessions_per_principal},
		                           std::pair{"max_channels_per_connection", &config.max_channels_per_connection},
		                           std::pair{"max_commands_per_minute", &config.max_commands_per_minute}}) {
			if (auto r = optional_int(root, key, 1, 1000000, *target); !r)
				return tl::unexpected(r.error());
		}
		// Linux silently caps the backlog at net.core.somaxconn (4096 by
		// default since Linux 5.4).
		if (auto r = optional_int(root, "listen_backlog", 1, 65535, config.listen_backlog); !r)
			return tl::unexpected(r.error());
		int max_line = static_cast<int>(config.max_command_length);
		if (auto r = optional_int(root, "max_command_length", 64, 1 << 20, max_line); !r)
			return tl::unexpected(r.error());
		config.max_command_length = static_cast<std::size_t>(max_line);
		if (const auto* level = root.get("log_level")) {
			static const std::set<std::string, std::less<>> levels = {"debug", "info", "warning", "error"};
			const auto* s = level->as_string();
			if (!s || !levels.contains(s->get()))
				return error(*level, "log_level must be one of: debug, info, warning, error");
			config.log_level = s->get();
		}
		for (auto [key, target] : {std::pair{"stop_on_error", &config.stop_on_error},
		                           std::pair{"allow_sk_keys", &config.allow_sk_keys}}) {
			if (auto r = optional_bool(root, key, *target); !r)
				return tl::unexpected(r.error());
		}
		if (auto r = parse_revoked_keys(root, config); !r)
			return tl::unexpected(r.error());
		if (const auto* format = root.get("log_format")) {
			const auto* s = format->as_string();
			if (!s || (s->get() != "text" && s->get() != "json"))
				return error(*format, "log_format must be \"text\" or \"json\"");
			config.log_format = s->get();
		}
		if (auto r = parse_grants(root, config); !r)
			return tl::unexpected(r.error());
		return config;
	}

private:
	tl::unexpected<Error> error(const toml::node& node, const std::string& message) const
	{
		return fail(Errc::invalid, where(file_, node.source()) + ": " + message);
	}

	std::filesystem::path resolve(const std::string& value) const
	{
		std::filesystem::path p(value);
		return p.is_absolute() ? p : base_ / p;
	}

	Result<std::string> required_string(const toml::table& root, std::string_view key) const
	{
		const auto* node = root.get(key);
		if (!node)
			return fail(Errc::invalid, file_.string() + ": missing required key \"" + std::string(key) + "\"");
		const auto* s = node->as_string();
		if (!s || s->get().empty())
			return error(*node, "\"" + std::string(key) + "\" must be a non-empty string");
		return s->get();
	}

	Result<void> optional_duration(const toml::table& root, std::string_view key, std::chrono::seconds& out) const
	{
		const auto* node = root.get(key);
		if (!node)
			return {};
		const auto* s = node->as_string();
		if (!s)
			return error(*node, "\"" + std::string(key) + "\" must be a duration string such as \"8h\"");
		auto d = parse_duration(s->get());
		if (!d)
			return error(*node, d.error().message);
		out = *d;
		return {};
	}

	Result<void> optional_int(const toml::table& root, std::string_view key, int min, int max, int& out) const
	{
		const auto* node = root.get(key);
		if (!node)
			return {};
		const auto* i = node->as_integer();
		if (!i || i->get() < min || i->get() > max)
			return error(*node, "\"" + std::string(key) + "\" must be an integer from " + std::to_string(min) +
			                        " to " + std::to_string(max));
		out = static_cast<int>(i->get());
		return {};
	}

	Result<void> optional_bool(const toml::table& root, std::string_view key, bool& out) const
	{
		const auto* node = root.get(key);
		if (!node)
			return {};
		const auto* b = node->as_boolean();
		if (!b)
			return error(*node, "\"" + std::string(key) + "\" must be true or false");
		out = b->get();
		return {};
	}

	// The files are only named here; RevocationWatch loads them, so that a
	// broken list refuses logins instead of stopping the daemon.
	Result<void> parse_revoked_keys(const toml::table& root, Config& config) const
	{
		const auto* node = root.get("revoked_keys");
		if (!node)
			return {};
		const auto* array = node->as_array();
		if (!array)
			return error(*node, "\"revoked_keys\" must be an array of KRL or text revocation list files");
		for (const auto& element : *array) {
			const auto* s = element.as_string();
			if (!s || s->get().empty())
				return error(element, "revocation list entries must be file names");
			config.revoked_keys.push_back(resolve(s->get()));
		}
		return {};
	}

	Result<void> parse_cas(const toml::table& root, Config& config) const
	{
		const auto* node = root.get("trusted_user_ca_keys");
		if (!node)
			return fail(Errc::invalid, file_.string() + ": missing required key \"trusted_user_ca_keys\"");
		const auto* array = node->as_array();
		if (!array || array->empty())
			return error(*node, "\"trusted_user_ca_keys\" must be a non-empty array of public key files");
		for (const auto& element : *array) {
			const auto* s = element.as_string();
			if (!s)
				return error(element, "trusted CA key entries must be file names");
			auto ca = load_trusted_ca(resolve(s->get()));
			if (!ca)
				return error(element, ca.error().message);
			config.trusted_cas.push_back(std::move(*ca));
		}
		return {};
	}

	Result<void> parse_grants(const toml::table& root, Config& config) const
	{
		const auto* node = root.get("grants");
		if (!node)
			return {};
		const auto* table = node->as_table();
		if (!table)
			return error(*node, "\"grants\" must be a table: role = [\"principal\", ...]");
		for (const auto& [role, principals] : *table) {
			const auto* array = principals.as_array();
			if (!array)
				return error(principals, "grant for role \"" + std::string(role.str()) + "\" must be an array of principals");
			auto& granted = config.grants[std::string(role.str())];
			for (const auto& element : *array) {
				const auto* s = element.as_string();
				if (!s)
					return error(element, "principals must be strings");
				if (auto r = check_grant_principal(s->get()); !r)
					return error(element, r.error().message);
				granted.push_back(s->get());
			}
		}
		return {};
	}

	std::filesystem::path file_;
	std::filesystem::path base_;
};

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text)
{
	const std::string shown = escape_untrusted(text, 80);
	std::string host;
	std::string_view port_text;
	if (!text.empty() && text.front() == '[') {
		const auto close = text.find(']');
		if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
			return fail(Errc::invalid, "invalid listen address " + shown + ": expected \"[IPv6]:PORT\"");
		host = std::string(text.substr(1, close - 1));
		port_text = text.substr(close + 2);
	} else {
		const auto colon = text.rfind(':');
		if (colon == std::string_view::npos)
			return fail(Errc::invalid, "invalid listen address " + shown + ": expected \"ADDRESS:PORT\"");
		host = std::string(text.substr(0, colon));
		port_text = text.substr(colon + 1);
	}

	unsigned char buffer[16];
	if (inet_pton(AF_INET, host.c_str(), buffer) != 1 && inet_pton(AF_INET6, host.c_str(), buffer) != 1)
		return fail(Errc::invalid, "invalid listen address " + shown + ": the host must be a numeric IPv4 or IPv6 address");

	unsigned port = 0;
	if (port_text.empty() || port_text.size() > 5)
		return fail(Errc::invalid, "invalid listen address " + shown + ": the port must be 0 to 65535");
	for (char c : port_text) {
		if (c < '0' || c > '9')
			return fail(Errc::invalid, "invalid listen address " + shown + ": the port must be 0 to 65535");
		port = port * 10 + static_cast<unsigned>(c - '0');
	}
	if (port > 65535)
		return fail(Errc::invalid, "invalid listen address " + shown + ": the port must be 0 to 65535");
	return ListenAddress{host, static_cast<std::uint16_t>(port)};
}

Result<Config> load_config(const std::filesystem::path& file)
{
	std::error_code ec;
	const auto size = std::filesystem::file_size(file, ec);
	if (ec)
		return fail(Errc::not_found, "cannot read config " + file.string() + ": " + ec.message());
	if (size > kMaxConfigBytes)
		return fail(Errc::limit, "config " + file.string() + " is larger than 1 MiB");

	toml::table root;
	try {
		root = toml::parse_file(file.string());
	} catch (const toml::parse_error& e) {
		return fail(Errc::invalid, where(file, e.source()) + ": " + std::string(e.description()));
	}
	return ConfigParser(file).parse(root);
}

bool principals_granted_role(const Config& config, std::string_view role, const std::vector<std::string>& principals)
{
	const auto it = config.grants.find(role);
	if (it == config.grants.end())
		return false;
	for (const auto& principal : principals) {
		for (const auto& granted : it->second) {
			if (principal == granted)
				return true;
		}
	}
	return false;
}

}  // namespace jead
