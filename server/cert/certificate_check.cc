// check_certificate: the deny-by-default decision on a parsed certificate.
#include <ctime>

#include "common/duration.h"
#include "common/escape.h"
#include "server/cert/certificate.h"
#include "server/cert/source_address.h"

namespace jead {

namespace {

constexpr std::uint64_t kForever = UINT64_MAX;

std::string describe_window(const Certificate& cert, std::int64_t now)
{
	return "valid from " + format_utc(cert.valid_after) + " to " + format_utc(cert.valid_before) +
	       ", server time " + (now < 0 ? std::to_string(now) : format_utc(static_cast<std::uint64_t>(now)));
}

bool has_control_byte(std::string_view text)
{
	for (char c : text) {
		const auto byte = static_cast<unsigned char>(c);
		if (byte < 0x20 || byte == 0x7F)
			return true;
	}
	return false;
}

Result<void> check_validity(const Certificate& cert, const CertPolicy& policy, std::int64_t now)
{
	if (cert.valid_before == kForever)
		return fail(Errc::denied, "certificate never expires (valid_before is \"forever\"): issue a certificate "
		                          "with an end time, e.g. ssh-keygen -V +8h");
	if (cert.valid_before <= cert.valid_after)
		return fail(Errc::denied, "certificate validity window is empty: " + describe_window(cert, now));

	const auto skew = static_cast<std::uint64_t>(policy.clock_skew.count() < 0 ? 0 : policy.clock_skew.count());
	const std::uint64_t earliest = cert.valid_after > skew ? cert.valid_after - skew : 0;
	if (now < 0 || static_cast<std::uint64_t>(now) < earliest)
		return fail(Errc::denied, "certificate is not yet valid: " + describe_window(cert, now) +
		                              ", allowed clock skew " + std::to_string(skew) + "s");
	if (static_cast<std::uint64_t>(now) >= cert.valid_before)
		return fail(Errc::denied, "certificate has expired: " + describe_window(cert, now));

	const std::uint64_t lifetime = cert.valid_before - cert.valid_after;
	const auto max_lifetime = static_cast<std::uint64_t>(policy.max_lifetime.count() < 0 ? 0 : policy.max_lifetime.count());
	if (lifetime > max_lifetime + static_cast<std::uint64_t>(kLifetimeRoundingAllowance.count()))
		return fail(Errc::denied, "certificate lifetime of " + std::to_string(lifetime) +
		                              "s exceeds the maximum of " + std::to_string(max_lifetime) + "s (" +
		                              describe_window(cert, now) + "): issue a shorter-lived certificate");
	return {};
}

Result<void> check_names(const Certificate& cert)
{
	if (has_control_byte(cert.key_id))
		return fail(Errc::denied, "certificate key ID " + escape_untrusted(cert.key_id) +
		                              " contains a NUL or control byte");
	if (cert.principals.empty())
		return fail(Errc::denied, "certificate " + escape_untrusted(cert.key_id) +
		                              " lists no principals: issue it with ssh-keygen -n USER");
	for (const std::string& principal : cert.principals) {
		if (principal.empty())
			return fail(Errc::denied, "certificate " + escape_untrusted(cert.key_id) + " has an empty principal");
		if (has_control_byte(principal))
			return fail(Errc::denied, "certificate principal " + escape_untrusted(principal) +
			                              " contains a NUL or control byte");
	}
	return {};
}

// Accepts only the critical options jead's session layer enforces; the
// caller applies their values.
Result<void> check_critical_options(const Certificate& cert)
{
	for (const CertOption& option : cert.critical_options) {
		if (option.name == "force-command") {
			if (option.data.empty())
				return fail(Errc::denied, "certificate critical option \"force-command\" has an empty command");
		} else if (option.name == "source-address") {
			if (auto valid = validate_source_address_list(option.data); !valid)
				return fail(Errc::denied, "certificate critical option \"source-address\" is invalid: " +
				                              valid.error().message);
		} else if (option.name == "verify-required") {
			if (!option.data.empty())
				return fail(Errc::denied, "certificate critical option \"verify-required\" is a flag but has a value");
		} else {
			return fail(Errc::denied, "certificate has unsupported critical option " + escape_untrusted(option.name) +
			                              ": jead supports only force-command, source-address and verify-required");
		}
	}
	return {};
}

bool is_trusted_ca(const Certificate& cert, const CertPolicy& policy)
{
	for (const Bytes& trusted : policy.trusted_ca_keys)
		if (trusted == cert.signature_key)
			return true;
	return false;
}

}  // namespace

Result<void> check_certificate(const Certificate& cert, const CertPolicy& policy, std::int64_t now)
{
	// The signature is checked first, so every later reason describes
	// content the trusted CA really signed.
	if (!is_trusted_ca(cert, policy))
		return fail(Errc::denied, "certificate signed by an untrusted CA " + ssh_fingerprint(cert.signature_key) +
		                              ": add the CA public key to the trusted CA keys or use a certificate from a "
		                              "trusted CA");
	if (auto signature = verify_ca_signature(cert, policy.signature); !signature)
		return signature;

	if (cert.type != CertType::user)
		return fail(Errc::denied, "host certificate refused: " + escape_untrusted(cert.key_id) +
		                              " is a host certificate, and only user certificates may log in");
	if (cert.security_key && !policy.allow_sk_keys)
		return fail(Errc::denied, "certificate key type \"" + cert.plain_key_type +
		                              "\" is a security key (sk), which this server does not accept");

	if (auto validity = check_validity(cert, policy, now); !validity)
		return validity;
	if (auto names = check_names(cert); !names)
		return names;
	if (auto options = check_critical_options(cert); !options)
		return options;
	return {};
}

}  // namespace jead
