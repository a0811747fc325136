// Ed25519 keys for signing transcript checkpoints, through OpenSSL EVP.
// Keys are PEM files as `openssl genpkey -algorithm ed25519` (private, PKCS#8)
// and `openssl pkey -pubout` (public, SubjectPublicKeyInfo) write them.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace jead {

struct EvpPkeyDeleter {
	void operator()(EVP_PKEY* key) const;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// Returns the text a checkpoint signs: a fixed context string, then the
// checkpoint's `prev`, the hex SHA-256 of the line before it, which
// commits to every earlier line through the chain.
std::string checkpoint_message(std::string_view prev_hash);

class TranscriptSigningKey {
public:
	// Loads an Ed25519 private key. Rejects other key types and a file that
	// group or others may access.
	static Result<TranscriptSigningKey> load(const std::filesystem::path& path);

	// Returns the 64-byte Ed25519 signature of `message`.
	Result<std::string> sign(std::string_view message) const;
	// "SHA256:" and the unpadded base64 SHA-256 of the raw 32-byte public key.
	const std::string& fingerprint() const { return fingerprint_; }

private:
	EvpPkeyPtr key_;
	std::string fingerprint_;
};

class TranscriptVerifyKey {
public:
	// Loads an Ed25519 public key. Rejects other key types.
	static Result<TranscriptVerifyKey> load(const std::filesystem::path& path);

	bool verify(std::string_view message, std::string_view signature) const;
	const std::string& fingerprint() const { return fingerprint_; }

private:
	EvpPkeyPtr key_;
	std::string fingerprint_;
};

}  // namespace jead
