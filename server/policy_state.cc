#include "server/policy_state.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include <openssl/evp.h>

#include "server/process.h"
#include "transcripts/signing.h"

namespace jead {

namespace {

Result<std::string> read_file(const std::filesystem::path& file)
{
	std::ifstream in(file, std::ios::binary);
	if (!in)
		return fail(Errc::io, "cannot read " + file.string());
	return std::string(std::istreambuf_iterator<char>(in), {});
}

// Hashes each file as its name, its length and its bytes, so that moving
// bytes from one file to another changes the version.
Result<std::string> hash_policy_files(const Policy& policy)
{
	std::vector<std::filesystem::path> files = {policy.config.file};
	for (const auto& [name, role] : policy.roles)
		files.push_back(role.file);

	std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
	EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
	for (const auto& file : files) {
		auto content = read_file(file);
		if (!content)
			return tl::unexpected(content.error());
		const std::string head = file.filename().string() + "\n" + std::to_string(content->size()) + "\n";
		EVP_DigestUpdate(ctx.get(), head.data(), head.size());
		EVP_DigestUpdate(ctx.get(), content->data(), content->size());
	}
	Bytes digest(32);
	unsigned int len = 0;
	EVP_DigestFinal_ex(ctx.get(), digest.data(), &len);
	return "sha256:" + hex_encode(digest);
}

}  // namespace

Result<void> check_transcript_setup(const Config& config)
{
	struct stat st {};
	const auto& dir = config.transcript_dir;
	if (::stat(dir.c_str(), &st) != 0)
		return fail(Errc::not_found, "transcript_dir " + dir.string() + ": " + std::strerror(errno) +
		                                 "; create it with mode 0700");
	if (!S_ISDIR(st.st_mode))
		return fail(Errc::invalid, "transcript_dir " + dir.string() + " is not a directory");
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return fail(Errc::denied, "transcript_dir " + dir.string() +
		                              " is writable by group or others, who could remove or replace transcripts; "
		                              "chmod go-w it");
	if (!config.transcript_signing_key.empty()) {
		if (auto key = TranscriptSigningKey::load(config.transcript_signing_key); !key)
			return fail(Errc::invalid, "transcript_signing_key: " + key.error().message);
	}
	return {};
}

const Role* Policy::find_role(std::string_view name) const
{
	const auto it = roles.find(name);
	return it == roles.end() ? nullptr : &it->second;
}

Result<std::shared_ptr<const Policy>> load_policy(const std::filesystem::path& config_file)
{
	auto policy = std::make_shared<Policy>();

	auto config = load_config(config_file);
	if (!config)
		return tl::unexpected(config.error());
	policy->config = std::move(*config);

	auto roles = load_roles_dir(policy->config.roles_dir);
	if (!roles)
		return tl::unexpected(roles.error());
	policy->roles = std::move(*roles);

	for (const auto& [name, role] : policy->roles) {
		if (auto run_as = resolve_run_as(role.run_as_user, role.run_as_group); !run_as)
			return fail(Errc::invalid, role.file.string() + ": " + run_as.error().message);
		for (const auto& verb : role.verbs) {
			if (!verb.run_as_user)
				continue;
			if (auto run_as = resolve_run_as(verb.run_as_user, role.run_as_group); !run_as)
				return fail(Errc::invalid, role.file.string() + ": verb \"" + verb.name + "\": " + run_as.error().message);
		}
	}
	for (const auto& [role, principals] : policy->config.grants) {
		if (!policy->find_role(role))
			return fail(Errc::invalid, policy->config.file.string() + ": [grants] names role \"" + role +
			                               "\", but " + policy->config.roles_dir.string() + " has no " + role + ".toml");
	}

	auto version = hash_policy_files(*policy);
	if (!version)
		return tl::unexpected(version.error());
	policy->version = *version;
	return std::shared_ptr<const Policy>(std::move(policy));
}

}  // namespace jead
