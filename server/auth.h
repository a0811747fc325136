// The login decision: a certificate presented for a login name, deny by
// default. Kept free of libssh so it can be tested as a table.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "common/result.h"
#include "server/cert/certificate.h"
#include "server/policy_state.h"
#include "server/revocation_watch.h"

namespace jead {

struct LoginGrant {
	Certificate certificate;
	const Role* role = nullptr;
	std::string ca_fingerprint;
	std::string user_fingerprint;
};

// Decides whether `certificate_blob`, offered for login name `role_name`
// from `client_ip` at `now`, may log in: the certificate checks, the
// role's own lifetime cap, revocation, the source-address option and the
// principal grant. Returns the reason on refusal.
Result<LoginGrant> authorize_login(const Policy& policy, RevocationWatch& revocation, std::string_view role_name,
                                   std::span<const std::uint8_t> certificate_blob, std::string_view client_ip,
                                   std::int64_t now);

// The longest certificate lifetime a break-glass role accepts; a role's
// own max_cert_lifetime may be tighter.
inline constexpr std::chrono::seconds kBreakGlassMaxLifetime{15 * 60};

// The certificate extension that narrows a session to some of the role's
// verbs: its value is a comma-separated list of verb names.
inline constexpr std::string_view kVerbsExtension = "jead-verbs@jead";

// Returns true when `cert` has no jead-verbs@jead extension, or when the
// extension lists `verb` (exact match of one comma-separated item).
bool allowed_by_certificate_verbs(const Certificate& cert, std::string_view verb);

}  // namespace jead
