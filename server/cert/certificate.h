// OpenSSH user certificates (PROTOCOL.certkeys): parsing through a bounded
// reader, CA signature verification with OpenSSL, and the deny-by-default
// check of type, validity window and lifetime.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.h"
#include "common/result.h"

namespace jead {

enum class CertType : std::uint32_t { user = 1, host = 2 };

// One entry of a certificate's critical options or extensions. `data` is the
// option's payload with its inner string wrapper removed (empty for flags).
struct CertOption {
	std::string name;
	std::string data;
};

struct Certificate {
	std::string cert_key_type;    // e.g. "ssh-ed25519-cert-v01@openssh.com"
	std::string plain_key_type;   // e.g. "ssh-ed25519"
	Bytes nonce;
	Bytes public_key;             // plain public key blob (type + key fields)
	bool security_key = false;    // an sk-* (FIDO) key type
	std::string sk_application;   // a security key's application, e.g. "ssh:"
	std::uint64_t serial = 0;
	CertType type = CertType::user;
	std::string key_id;
	std::vector<std::string> principals;
	std::uint64_t valid_after = 0;   // seconds since the epoch
	std::uint64_t valid_before = 0;  // seconds since the epoch; ~0 is "forever"
	std::vector<CertOption> critical_options;
	std::vector<CertOption> extensions;
	Bytes signature_key;          // the CA's public key blob
	std::string signature_algorithm;
	Bytes signature;              // the whole signature blob
	Bytes signed_data;            // every byte before the signature field
};

// Parses a certificate blob (the decoded base64 of an OpenSSH -cert.pub
// line). Every length is checked against a named cap and the bytes left;
// leftover bytes are an error.
Result<Certificate> parse_certificate(std::span<const std::uint8_t> blob);

// Returns the critical option named `name`, or nullptr when absent.
const CertOption* find_critical_option(const Certificate& cert, std::string_view name);

// Parses one OpenSSH public key line ("TYPE BASE64 [COMMENT]") into its
// key type and decoded blob.
struct PublicKeyLine {
	std::string type;
	Bytes blob;
};
Result<PublicKeyLine> parse_public_key_line(std::string_view line);

struct SignaturePolicy {
	bool allow_ssh_rsa_sha1 = false;
};

// Verifies the CA signature over `signed_data` with the key in
// `signature_key`; the algorithm must fit the CA key type.
Result<void> verify_ca_signature(const Certificate& cert, const SignaturePolicy& policy = {});

// Slack on every lifetime cap: `ssh-keygen -V +8h` starts the window at
// the current minute, so its certificates run up to 59 s over 8h.
inline constexpr std::chrono::seconds kLifetimeRoundingAllowance{60};

struct CertPolicy {
	std::vector<Bytes> trusted_ca_keys;          // CA public key blobs
	std::chrono::seconds max_lifetime{8 * 3600};
	std::chrono::seconds clock_skew{30};          // applies to valid_after only
	SignaturePolicy signature;
	bool allow_sk_keys = false;                   // accept sk-* (FIDO) user keys
};

// Decides whether `cert` may authenticate anyone at `now` (seconds since
// the epoch): user type, trusted CA, verified signature, validity window and
// lifetime cap, no unknown critical option. Principals and roles are
// decided by the caller. Returns an error with the reason on refusal.
Result<void> check_certificate(const Certificate& cert, const CertPolicy& policy, std::int64_t now);

}  // namespace jead
