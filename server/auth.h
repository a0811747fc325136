// The login decision: a certificate presented for a login name, deny by
// default. Kept free of libssh so it can be tested as a table.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/result.h"
#include "server/cert/certificate.h"
#include "server/policy_state.h"

namespace jead {

struct LoginGrant {
	Certificate certificate;
	const Role* role = nullptr;
	std::string ca_fingerprint;
	std::string user_fingerprint;
};

// Decides whether `certificate_blob`, offered for login name `role_name`
// from `client_ip` at `now`, may log in: the certificate checks, the
// role's own lifetime cap, the source-address option and the principal
// grant. Returns the reason on refusal.
Result<LoginGrant> authorize_login(const Policy& policy, std::string_view role_name,
                                   std::span<const std::uint8_t> certificate_blob, std::string_view client_ip,
                                   std::int64_t now);

}  // namespace jead
