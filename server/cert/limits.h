// Built-in caps on the sizes and counts in certificates, public key lines
// and revocation lists. Every length read from untrusted bytes is checked
// against one of these before it is checked against the bytes left.
#pragma once

#include <cstddef>

namespace jead::cert_limits {

// A whole certificate blob. An RSA-16384 key and CA signature plus the
// principal list at its cap stay well below this.
inline constexpr std::size_t kMaxCertificateBlobSize = 128 * 1024;

// OpenSSH writes a 32-byte nonce.
inline constexpr std::size_t kMaxNonceLength = 256;

inline constexpr std::size_t kMaxPrincipals = 256;
inline constexpr std::size_t kMaxPrincipalLength = 256;
inline constexpr std::size_t kMaxKeyIdLength = 1024;

// Critical options and extensions, counted separately.
inline constexpr std::size_t kMaxOptions = 64;
inline constexpr std::size_t kMaxOptionNameLength = 256;
inline constexpr std::size_t kMaxOptionDataLength = 8 * 1024;

// The reserved field must be empty, but is read with a cap before that
// check so the error names its length.
inline constexpr std::size_t kMaxReservedLength = 1024;

// A plain public key blob, and an mpint: OpenSSH caps bignums at 16384
// bits (2048 bytes) plus one leading zero byte.
inline constexpr std::size_t kMaxPublicKeyBlobSize = 4 * 1024;
inline constexpr std::size_t kMaxMpintLength = 2048 + 1;
inline constexpr std::size_t kMaxKeyTypeNameLength = 64;
inline constexpr std::size_t kMaxSkApplicationLength = 1024;
inline constexpr std::size_t kMaxSignatureBlobSize = 4 * 1024;

// RSA modulus sizes: OpenSSH rejects user keys under 1024 bits, and jead
// rejects CA keys under 2048 bits.
inline constexpr unsigned kMinRsaUserKeyBits = 1024;
inline constexpr unsigned kMinRsaCaKeyBits = 2048;
inline constexpr unsigned kMaxRsaKeyBits = 16384;

// One line of an OpenSSH public key file ("TYPE BASE64 COMMENT").
inline constexpr std::size_t kMaxPublicKeyLineLength = kMaxCertificateBlobSize / 3 * 4 + 4096;

// A revocation list file (KRL or text), and one line of the text form.
inline constexpr std::size_t kMaxRevocationFileSize = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxRevocationLineLength = 4096;
inline constexpr std::size_t kMaxKrlCommentLength = 4096;

}  // namespace jead::cert_limits
