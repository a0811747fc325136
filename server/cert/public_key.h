// The public key types jead accepts in certificates and as CA keys: the
// name table, the reading of their wire fields, and their conversion to
// OpenSSL EVP_PKEY for signature checks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <openssl/evp.h>

#include "common/encoding.h"
#include "common/result.h"
#include "server/cert/ssh_reader.h"

namespace jead {

enum class KeyAlgorithm { ed25519, ecdsa_p256, ecdsa_p384, ecdsa_p521, rsa };

struct KeyType {
	std::string_view plain_name;  // "ssh-ed25519"
	std::string_view cert_name;   // "ssh-ed25519-cert-v01@openssh.com"
	KeyAlgorithm algorithm;
	bool security_key;            // FIDO (sk-*) key: the fields end with an application string
};

// Looks up a key type by its plain or certificate name. Returns nullopt
// when jead does not support the type.
std::optional<KeyType> find_key_type_by_plain_name(std::string_view name);
std::optional<KeyType> find_key_type_by_cert_name(std::string_view name);

// The key material of a plain public key, as read from the wire.
struct PublicKeyFields {
	KeyAlgorithm algorithm = KeyAlgorithm::ed25519;
	Bytes ed25519_key;   // 32 bytes
	Bytes ec_point;      // uncompressed SEC1 point: 0x04 || X || Y
	Bytes rsa_e;         // big-endian magnitude, no sign byte
	Bytes rsa_n;
	bool security_key = false;
	std::string sk_application;  // only for security keys
};

// Reads the fields that follow the key type name in a public key blob of
// `type` (for a certificate: the fields after the nonce). Checks sizes,
// the curve name and that an EC point is on its curve. RSA moduli over
// kMaxRsaKeyBits are rejected here, and callers apply their own minimum.
Result<PublicKeyFields> read_public_key_fields(SshReader& reader, const KeyType& type);

// Parses a whole plain public key blob (type name + fields, nothing left).
Result<PublicKeyFields> parse_public_key_blob(std::span<const std::uint8_t> blob, std::string context);

// Appends an SSH string (uint32 length + bytes) to `out`.
void append_ssh_string(Bytes& out, std::span<const std::uint8_t> bytes);

struct EvpPkeyDeleter {
	void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// Returns the bit length of an RSA key's modulus (0 for other keys).
unsigned rsa_modulus_bits(const PublicKeyFields& fields);

// Builds an OpenSSL public key from parsed fields (sk keys are rejected).
Result<EvpPkey> make_evp_public_key(const PublicKeyFields& fields);

// Size in bytes of one coordinate (and of r and s) for an ECDSA algorithm.
std::size_t ecdsa_coordinate_length(KeyAlgorithm algorithm);

}  // namespace jead
