#include "server/auth.h"

#include <algorithm>

#include "common/escape.h"
#include "server/cert/source_address.h"

namespace jead {

namespace {

std::string format_duration(std::chrono::seconds s)
{
	const auto total = s.count();
	if (total % 3600 == 0)
		return std::to_string(total / 3600) + "h";
	if (total % 60 == 0)
		return std::to_string(total / 60) + "m";
	return std::to_string(total) + "s";
}

Result<void> check_source_address(const Certificate& cert, std::string_view client_ip)
{
	for (const auto& option : cert.critical_options) {
		if (option.name != "source-address")
			continue;
		auto allowed = source_address_allows(option.data, client_ip);
		if (!allowed)
			return fail(Errc::invalid, "certificate source-address option is malformed: " + allowed.error().message);
		if (!*allowed)
			return fail(Errc::denied, "client address " + std::string(client_ip) +
			                              " is not in the certificate's source-address list " +
			                              escape_untrusted(option.data));
	}
	return {};
}

}  // namespace

bool allowed_by_certificate_verbs(const Certificate& cert, std::string_view verb)
{
	for (const auto& extension : cert.extensions) {
		if (extension.name != kVerbsExtension)
			continue;
		std::string_view list = extension.data;
		while (true) {
			const auto comma = list.find(',');
			if (list.substr(0, comma) == verb)
				return true;
			if (comma == std::string_view::npos)
				return false;
			list.remove_prefix(comma + 1);
		}
	}
	return true;
}

Result<LoginGrant> authorize_login(const Policy& policy, RevocationWatch& revocation, std::string_view role_name,
                                   std::span<const std::uint8_t> certificate_blob, std::string_view client_ip,
                                   std::int64_t now)
{
	auto cert = parse_certificate(certificate_blob);
	if (!cert) {
		// Most parse errors name the certificate already; the reader's
		// bounds errors ("truncated ...") do not.
		const std::string& message = cert.error().message;
		return fail(Errc::invalid, message.rfind("invalid certificate: ", 0) == 0 ? message
		                                                                           : "invalid certificate: " + message);
	}

	const Role* role = policy.find_role(role_name);
	if (!role)
		return fail(Errc::not_found, "no role named " + escape_untrusted(role_name, 64) +
		                                 "; the login name must be a role, as in ssh ROLE@HOST");

	CertPolicy cert_policy;
	for (const auto& ca : policy.config.trusted_cas)
		cert_policy.trusted_ca_keys.push_back(ca.blob);
	cert_policy.max_lifetime = policy.config.max_cert_lifetime;
	cert_policy.clock_skew = policy.config.clock_skew;
	cert_policy.allow_sk_keys = policy.config.allow_sk_keys;
	if (auto r = check_certificate(*cert, cert_policy, now); !r)
		return tl::unexpected(r.error());

	if (role->max_cert_lifetime) {
		const auto lifetime = cert->valid_before - cert->valid_after;
		if (lifetime > static_cast<std::uint64_t>((*role->max_cert_lifetime + kLifetimeRoundingAllowance).count()))
			return fail(Errc::denied, "certificate lifetime " + format_duration(std::chrono::seconds(lifetime)) +
			                              " exceeds role \"" + role->name + "\"'s max_cert_lifetime of " +
			                              format_duration(*role->max_cert_lifetime) + "; request a shorter certificate");
	}

	// libssh 0.10 verifies a security key's signature but does not expose
	// its user-verification flag, so a certificate that demands user
	// verification cannot be honoured and is refused.
	if (cert->security_key && find_critical_option(*cert, "verify-required"))
		return fail(Errc::denied, "certificate requires user verification (verify-required), which jead cannot "
		                          "check for security keys; issue the certificate without verify-required");

	if (role->break_glass) {
		const auto cap = std::min(kBreakGlassMaxLifetime, role->max_cert_lifetime.value_or(kBreakGlassMaxLifetime));
		const auto lifetime = cert->valid_before - cert->valid_after;
		if (lifetime > static_cast<std::uint64_t>((cap + kLifetimeRoundingAllowance).count()))
			return fail(Errc::denied, "certificate lifetime " + format_duration(std::chrono::seconds(lifetime)) +
			                              " exceeds " + format_duration(cap) + ", the limit of break-glass role \"" +
			                              role->name + "\"; request a shorter certificate");
	}

	if (auto r = revocation.check(*cert); !r)
		return tl::unexpected(r.error());

	if (auto r = check_source_address(*cert, client_ip); !r)
		return tl::unexpected(r.error());

	if (!principals_granted_role(policy.config, role->name, cert->principals)) {
		std::string shown;
		for (const auto& principal : cert->principals)
			shown += (shown.empty() ? "" : ", ") + escape_untrusted(principal, 64);
		return fail(Errc::denied, "no principal of this certificate (" + shown + ") is granted role \"" + role->name + "\"");
	}

	LoginGrant grant;
	grant.role = role;
	grant.ca_fingerprint = ssh_fingerprint(cert->signature_key);
	grant.user_fingerprint = ssh_fingerprint(cert->public_key);
	grant.certificate = std::move(*cert);
	return grant;
}

}  // namespace jead
