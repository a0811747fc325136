// jead: a restricted remote-admin SSH server. This file parses the command
// line and dispatches to serve, dev, check and explain.
#include <arpa/inet.h>
#include <libssh/libssh.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "roles/role.h"
#include "server/check.h"
#include "server/dev.h"
#include "server/explain.h"
#include "server/log.h"
#include "server/policy_state.h"
#include "server/server.h"

namespace {

constexpr const char* kUsage =
	"usage: jead serve --config FILE\n"
	"       jead dev [--dir DIR] [--port PORT]\n"
	"       jead check [--config FILE] [--allow-warnings]\n"
	"       jead explain [--config FILE] --role ROLE [--cert CERT] [--from IP] [--at TIME] -- COMMAND...\n"
	"       jead --version\n"
	"\n"
	"  serve    run the SSH endpoint described by FILE\n"
	"  dev      run a local demo endpoint with a throwaway CA under DIR\n"
	"           (default ./jead-demo) on 127.0.0.1:PORT (default 2222)\n"
	"  check    load the config and every role, run the roles' [[test]] cases\n"
	"           and lint the roles; exit status 0 only without errors and\n"
	"           warnings (--allow-warnings accepts warnings)\n"
	"  explain  show every step of the decision on COMMAND for a login as ROLE\n"
	"           with the certificate file CERT (optional) from address IP\n"
	"           (default 127.0.0.1) at TIME (seconds since the epoch or\n"
	"           YYYY-MM-DDTHH:MM:SSZ; default now), without running anything;\n"
	"           exit status 0 allowed, 77 denied, 1 unreadable input, 2 usage\n"
	"\n"
	"  The default config is /etc/jead/jead.toml.\n";

constexpr const char* kDefaultConfig = "/etc/jead/jead.toml";

struct Options {
	std::string command;
	std::string config = kDefaultConfig;
	std::string dir = "jead-demo";
	std::uint16_t port = 2222;
};

std::optional<Options> parse_options(int argc, char** argv)
{
	if (argc < 2)
		return std::nullopt;
	Options options;
	options.command = argv[1];
	for (int i = 2; i < argc; ++i) {
		const std::string_view arg = argv[i];
		if (i + 1 >= argc) {
			std::cerr << "jead: option " << arg << " needs a value\n";
			return std::nullopt;
		}
		const std::string value = argv[++i];
		if (arg == "--config") {
			options.config = value;
		} else if (arg == "--dir") {
			options.dir = value;
		} else if (arg == "--port") {
			char* end = nullptr;
			const long port = std::strtol(value.c_str(), &end, 10);
			if (value.empty() || *end != '\0' || port < 1 || port > 65535) {
				std::cerr << "jead: invalid --port \"" << value << "\": expected 1 to 65535\n";
				return std::nullopt;
			}
			options.port = static_cast<std::uint16_t>(port);
		} else {
			std::cerr << "jead: unknown option " << arg << "\n";
			return std::nullopt;
		}
	}
	return options;
}

int print_version()
{
	std::cout << "jead " << JEAD_VERSION << " (libssh " << ssh_version(0) << ", " << OpenSSL_version(OPENSSL_VERSION)
	          << ")\n";
	return 0;
}

int serve(const Options& options)
{
	auto policy = jead::load_policy(options.config);
	if (!policy) {
		std::cerr << "jead: " << policy.error().message << "\n";
		return 1;
	}
	jead::setup_logging((*policy)->config.log_level, (*policy)->config.log_format);
	jead::Server server(*policy);
	if (auto r = server.listen(); !r) {
		std::cerr << "jead: " << r.error().message << "\n";
		return 1;
	}
	return server.run();
}

int run_check(int argc, char** argv)
{
	std::string config = kDefaultConfig;
	bool allow_warnings = false;
	for (int i = 2; i < argc; ++i) {
		const std::string_view arg = argv[i];
		if (arg == "--allow-warnings") {
			allow_warnings = true;
		} else if (arg == "--config" && i + 1 < argc) {
			config = argv[++i];
		} else {
			std::cerr << "jead check: " << (arg == "--config" ? "option --config needs a value" : "unknown option " + std::string(arg))
			          << "\n" << kUsage;
			return 2;
		}
	}
	const auto report = jead::check_policy(config);
	return jead::print_check_report(report, config, allow_warnings, std::cout);
}

int explain_usage(const std::string& message)
{
	std::cerr << "jead explain: " << message << "\n" << kUsage;
	return jead::kExplainUsage;
}

int run_explain(int argc, char** argv)
{
	jead::ExplainRequest request;
	request.config_file = kDefaultConfig;
	request.now = static_cast<std::int64_t>(std::time(nullptr));
	int i = 2;
	for (; i < argc; ++i) {
		const std::string_view arg = argv[i];
		if (arg == "--")
			break;
		if (i + 1 >= argc)
			return explain_usage("option " + std::string(arg) + " needs a value");
		const std::string value = argv[++i];
		if (arg == "--config") {
			request.config_file = value;
		} else if (arg == "--role") {
			request.role = value;
		} else if (arg == "--cert") {
			request.certificate_file = value;
		} else if (arg == "--from") {
			unsigned char address[16];
			if (::inet_pton(AF_INET, value.c_str(), address) != 1 && ::inet_pton(AF_INET6, value.c_str(), address) != 1)
				return explain_usage("invalid --from \"" + value + "\": expected an IPv4 or IPv6 address");
			request.client_ip = value;
		} else if (arg == "--at") {
			const auto at = jead::parse_explain_time(value);
			if (!at)
				return explain_usage("invalid --at \"" + value +
				                     "\": expected seconds since the epoch or YYYY-MM-DDTHH:MM:SSZ");
			request.now = *at;
			request.now_from_option = true;
		} else {
			return explain_usage("unknown option " + std::string(arg));
		}
	}
	if (request.role.empty())
		return explain_usage("--role is required");
	if (i >= argc)
		return explain_usage("the command line is missing: put it after \"--\"");

	// The words after "--" are joined with single spaces, as ssh(1) joins
	// its command words into the one string jead receives.
	for (int word = i + 1; word < argc; ++word)
		request.command_line += (word > i + 1 ? " " : "") + std::string(argv[word]);

	// Revocation lists log their loading; keep stdout for the steps.
	jead::setup_logging("warning");
	return jead::explain(request, std::cout);
}

}  // namespace

int main(int argc, char** argv)
{
	// Strict key exchange (the CVE-2023-48795 fix) arrived in libssh 0.10.6.
	if (!ssh_version(SSH_VERSION_INT(0, 10, 6))) {
		std::cerr << "jead: libssh " << ssh_version(0) << " is too old; 0.10.6 or later is required\n";
		return 1;
	}
	if (argc == 2 && (std::string_view(argv[1]) == "--version" || std::string_view(argv[1]) == "version"))
		return print_version();
	if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
		std::cout << kUsage;
		return 0;
	}

	if (argc >= 2 && std::string_view(argv[1]) == "check")
		return run_check(argc, argv);
	if (argc >= 2 && std::string_view(argv[1]) == "explain")
		return run_explain(argc, argv);

	auto options = parse_options(argc, argv);
	if (!options) {
		std::cerr << kUsage;
		return 2;
	}
	ssh_init();
	int status = 2;
	if (options->command == "serve")
		status = serve(*options);
	else if (options->command == "dev")
		status = jead::run_dev(options->dir, options->port);
	else
		std::cerr << "jead: unknown command \"" << options->command << "\"\n" << kUsage;
	ssh_finalize();
	return status;
}
