// Everything a decision depends on, loaded together: the config, the roles
// and a version string that transcripts record with each decision.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "common/result.h"
#include "roles/role.h"
#include "server/config.h"

namespace jead {

struct Policy {
	Config config;
	std::map<std::string, Role, std::less<>> roles;
	// "sha256:" + hex SHA-256 over the config file and every role file.
	std::string version;

	const Role* find_role(std::string_view name) const;
};

// Loads the config, every role it names a directory for, and computes the
// policy version. Role run-as accounts are checked here, so a role that
// could never run is a load error and not a runtime surprise.
Result<std::shared_ptr<const Policy>> load_policy(const std::filesystem::path& config_file);

// Checks what every session needs before anything is served: a transcript
// directory that only its owner can write, and a usable signing key.
Result<void> check_transcript_setup(const Config& config);

}  // namespace jead
