// Certificate and key revocation: OpenSSH KRL files as written by
// `ssh-keygen -k` (format in OpenSSH's PROTOCOL.krl), and a plain text list.
// A list that is missing, unreadable or malformed is an error, so callers
// fail closed.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.h"
#include "common/result.h"
#include "server/cert/certificate.h"

namespace jead {

// The revoked keys, certificate serials and key IDs of one list.
// Certificate entries are scoped to a CA key blob. The empty blob means
// "any CA": a KRL certificate section with an empty CA key uses it, and so
// does every serial and key ID of a text list.
class RevocationList {
public:
	// Returns an Errc::denied error with the reason when the certificate's
	// key or its CA key is revoked by blob, SHA-1 or SHA-256 hash. Also
	// denies a certificate whose key ID or non-zero serial is revoked for
	// its CA or for any CA.
	Result<void> check(const Certificate& cert) const;

	void revoke_key(Bytes key_blob);
	void revoke_key_sha1(Bytes hash);
	void revoke_key_sha256(Bytes hash);
	// Revokes serials first..last inclusive; first must be at least 1.
	void revoke_serials(const Bytes& ca_key, std::uint64_t first, std::uint64_t last);
	void revoke_key_id(const Bytes& ca_key, std::string key_id);
	// Records a non-critical KRL extension that was skipped, for logging.
	void note_ignored_extension(std::string name);

	// The file name or other label used in revocation messages.
	const std::string& source() const { return source_; }
	void set_source(std::string source) { source_ = std::move(source); }
	const std::vector<std::string>& ignored_extensions() const { return ignored_extensions_; }

private:
	struct CaScope {
		std::map<std::uint64_t, std::uint64_t> serial_ranges;  // first -> last, disjoint and not adjacent
		std::set<std::string> key_ids;
	};

	Result<void> check_key(const Bytes& key_blob, std::string_view label) const;
	Result<void> check_scope(const Certificate& cert, const Bytes& ca_key) const;

	std::set<Bytes> keys_;
	std::set<Bytes> sha1_hashes_;
	std::set<Bytes> sha256_hashes_;
	std::map<Bytes, CaScope> scopes_;
	std::vector<std::string> ignored_extensions_;
	std::string source_;
};

// Parses a binary KRL. `source` names the file in error messages. Rejects
// unknown sections, critical extensions, non-zero flags, format versions
// other than 1, and leftover bytes in any section. Signature sections are
// skipped, see the NOTE in krl.cc.
Result<RevocationList> parse_krl(std::span<const std::uint8_t> data, std::string source);

// Parses the text form, one entry per line: "serial:N" (N >= 1, any CA),
// "key-id:TEXT" (any CA, blanks around TEXT ignored), or "SHA256:BASE64"
// (the fingerprint of a certificate key or CA key, as ssh-keygen -l prints
// it). Blank lines and lines starting with "#" are skipped, and leading
// and trailing blanks are ignored. Any other line is an error naming
// `source` and the line number.
Result<RevocationList> parse_revocation_text(std::string_view text, std::string source);

// Reads `path` (a regular file of at most kMaxRevocationFileSize bytes)
// and parses it as a KRL when it starts with the KRL magic, else as text.
Result<RevocationList> load_revocation_list(const std::string& path);

}  // namespace jead
