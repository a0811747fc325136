// jead: a restricted remote-admin SSH server. This file parses the command
// line and dispatches to serve, dev and check.
#include <libssh/libssh.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "roles/role.h"
#include "server/dev.h"
#include "server/log.h"
#include "server/policy_state.h"
#include "server/server.h"

namespace {

constexpr const char* kUsage =
	"usage: jead serve --config FILE\n"
	"       jead dev [--dir DIR] [--port PORT]\n"
	"       jead check [--config FILE]\n"
	"       jead --version\n"
	"\n"
	"  serve   run the SSH endpoint described by FILE\n"
	"  dev     run a local demo endpoint with a throwaway CA under DIR\n"
	"          (default ./jead-demo) on 127.0.0.1:PORT (default 2222)\n"
	"  check   load the config and every role and report errors\n"
	"          (default config: /etc/jead/jead.toml)\n";

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
	jead::setup_logging((*policy)->config.log_level);
	jead::Server server(*policy);
	if (auto r = server.listen(); !r) {
		std::cerr << "jead: " << r.error().message << "\n";
		return 1;
	}
	return server.run();
}

int check(const Options& options)
{
	auto policy = jead::load_policy(options.config);
	if (!policy) {
		std::cerr << policy.error().message << "\n";
		return 1;
	}
	std::cout << options.config << ": ok, " << (*policy)->roles.size() << " roles, policy " << (*policy)->version
	          << "\n";
	return 0;
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
	else if (options->command == "check")
		status = check(*options);
	else
		std::cerr << "jead: unknown command \"" << options->command << "\"\n" << kUsage;
	ssh_finalize();
	return status;
}
