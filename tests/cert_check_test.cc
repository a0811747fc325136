// verify_ca_signature and check_certificate on certificates minted by
// ssh-keygen for every supported CA key type, and on hand-built ones for
// cases ssh-keygen cannot produce.
#include <catch2/catch.hpp>

#include <ctime>
#include <string>
#include <vector>

#include "server/cert/certificate.h"
#include "server/cert/public_key.h"

namespace jead::cert_testing {
// Defined in cert_keygen_test.cc.
std::string shared_key(const std::string& spec, const std::string& name);
std::string sign_certificate(const std::string& ca_key, const std::string& user_key,
                             const std::vector<std::string>& options);
Bytes load_key_blob(const std::string& path);
std::string keygen_fingerprint(const std::string& path);
Bytes test_ca_seed();
Bytes ed25519_public_blob(const Bytes& seed);
Bytes encode_certificate(const Certificate& cert, const Bytes& ca_seed);
Certificate sample_certificate(std::uint64_t valid_after);
}  // namespace jead::cert_testing

using namespace jead;
using namespace jead::cert_testing;

namespace {

// 2020-01-01T00:00:00Z and 2020-01-02T00:00:00Z.
constexpr std::int64_t kJan1 = 1577836800;
constexpr std::int64_t kJan2 = 1577923200;

std::int64_t now()
{
	return static_cast<std::int64_t>(std::time(nullptr));
}

struct Minted {
	Certificate cert;
	CertPolicy policy;
};

// Signs the shared Ed25519 user key with the CA `ca_spec` and returns the
// parsed certificate and a policy that trusts that CA.
Minted mint(const std::string& ca_spec, const std::vector<std::string>& options)
{
	const std::string ca = shared_key(ca_spec, "ca");
	auto cert = parse_certificate(load_key_blob(sign_certificate(ca, shared_key("ed25519", "user"), options)));
	INFO((cert ? "" : cert.error().message));
	REQUIRE(cert);
	Minted minted{*cert, {}};
	minted.policy.trusted_ca_keys.push_back(load_key_blob(ca + ".pub"));
	return minted;
}

CertPolicy policy_trusting(const Bytes& ca_key)
{
	CertPolicy policy;
	policy.trusted_ca_keys.push_back(ca_key);
	return policy;
}

std::string rejection(const Minted& minted, std::int64_t at)
{
	auto result = check_certificate(minted.cert, minted.policy, at);
	REQUIRE_FALSE(result);
	CHECK(result.error().code == Errc::denied);
	return result.error().message;
}

void require_accepted(const Minted& minted, std::int64_t at)
{
	auto result = check_certificate(minted.cert, minted.policy, at);
	INFO((result ? "" : result.error().message));
	REQUIRE(result);
}

const std::vector<std::string> kOneHour = {"-n", "alice", "-V", "-1m:+1h"};

}  // namespace

TEST_CASE("check accepts each CA key type", "[cert]")
{
	struct Case {
		std::string ca_spec;
		std::vector<std::string> signer_args;
		std::string algorithm;
	};
	const std::vector<Case> cases = {
		{"ed25519", {}, "ssh-ed25519"},
		{"ecdsa-256", {}, "ecdsa-sha2-nistp256"},
		{"ecdsa-384", {}, "ecdsa-sha2-nistp384"},
		{"ecdsa-521", {}, "ecdsa-sha2-nistp521"},
		{"rsa-2048", {"-t", "rsa-sha2-256"}, "rsa-sha2-256"},
		{"rsa-2048", {"-t", "rsa-sha2-512"}, "rsa-sha2-512"},
	};
	for (const Case& c : cases) {
		SECTION(c.algorithm)
		{
			std::vector<std::string> args = kOneHour;
			args.insert(args.end(), c.signer_args.begin(), c.signer_args.end());
			const Minted minted = mint(c.ca_spec, args);

			CHECK(minted.cert.signature_algorithm == c.algorithm);
			CHECK(verify_ca_signature(minted.cert));
			require_accepted(minted, now());
		}
	}
}

TEST_CASE("check rejects SHA-1 ssh-rsa signature", "[cert]")
{
	std::vector<std::string> args = kOneHour;
	args.insert(args.end(), {"-t", "ssh-rsa"});
	Minted minted = mint("rsa-2048", args);
	REQUIRE(minted.cert.signature_algorithm == "ssh-rsa");

	CHECK(rejection(minted, now()) == "certificate signature algorithm \"ssh-rsa\" (RSA with SHA-1) is not allowed: "
	                                "re-sign the certificate with ssh-keygen -t rsa-sha2-512");

	minted.policy.signature.allow_ssh_rsa_sha1 = true;
	require_accepted(minted, now());
}

TEST_CASE("check rejects small RSA CA key", "[cert]")
{
	const Minted minted = mint("rsa-1024", kOneHour);

	CHECK(rejection(minted, now()) == "RSA CA key of 1024 bits is too small, the minimum is 2048 bits: use a larger CA key");
}

TEST_CASE("check rejects untrusted CA", "[cert]")
{
	Minted minted = mint("ed25519", kOneHour);
	minted.policy.trusted_ca_keys = {load_key_blob(shared_key("ecdsa-256", "ca") + ".pub")};

	CHECK(rejection(minted, now()) == "certificate signed by an untrusted CA " +
	                                    keygen_fingerprint(shared_key("ed25519", "ca") + ".pub") +
	                                    ": add the CA public key to the trusted CA keys or use a certificate from a "
	                                    "trusted CA");
}

TEST_CASE("check rejects tampered principal", "[cert]")
{
	const std::string ca = shared_key("ed25519", "ca");
	Bytes blob = load_key_blob(sign_certificate(ca, shared_key("ed25519", "user"), {"-n", "alice", "-V", "-1m:+1h"}));
	const std::string principal = "alice";
	auto at = std::search(blob.begin(), blob.end(), principal.begin(), principal.end());
	REQUIRE(at != blob.end());
	at[4] = 'f';

	auto cert = parse_certificate(blob);
	REQUIRE(cert);
	REQUIRE(cert->principals == std::vector<std::string>{"alicf"});
	const Minted minted{*cert, policy_trusting(load_key_blob(ca + ".pub"))};

	CHECK(rejection(minted, now()) ==
	      "certificate signature is invalid: the certificate was altered or not signed by this CA key");
}

TEST_CASE("check rejects signature of another key type", "[cert]")
{
	// An Ed25519 signature presented with an RSA CA key.
	Minted minted = mint("ed25519", kOneHour);
	const Bytes rsa_ca = load_key_blob(shared_key("rsa-2048", "ca") + ".pub");
	minted.cert.signature_key = rsa_ca;
	minted.policy.trusted_ca_keys = {rsa_ca};

	CHECK(rejection(minted, now()) == "certificate signature algorithm \"ssh-ed25519\" does not fit the CA key type "
	                                "\"ssh-rsa\"");
}

TEST_CASE("check rejects host certificate", "[cert]")
{
	std::vector<std::string> args = {"-h", "-I", "web1", "-n", "web1.example.com", "-V", "-1m:+1h"};
	const Minted minted = mint("ed25519", args);

	CHECK(rejection(minted, now()) ==
	      "host certificate refused: \"web1\" is a host certificate, and only user certificates may log in");
}

TEST_CASE("check rejects certificate without principals", "[cert]")
{
	const Minted minted = mint("ed25519", {"-I", "nobody", "-V", "-1m:+1h"});

	CHECK(rejection(minted, now()) ==
	      "certificate \"nobody\" lists no principals: issue it with ssh-keygen -n USER");
}

TEST_CASE("check rejects expired certificate", "[cert]")
{
	const Minted minted = mint("ed25519", {"-n", "alice", "-V", "20200101:20200102"});

	CHECK(rejection(minted, kJan2) == "certificate has expired: valid from 2020-01-01T00:00:00Z to "
	                                "2020-01-02T00:00:00Z, server time 2020-01-02T00:00:00Z");
	CHECK(rejection(minted, now()).find("certificate has expired: ") == 0);
}

TEST_CASE("check rejects not yet valid certificate", "[cert]")
{
	const Minted minted = mint("ed25519", {"-n", "alice", "-V", "+2m:+30m"});

	const std::string message = rejection(minted, now());
	CHECK(message.find("certificate is not yet valid: valid from ") == 0);
	CHECK(message.find(", allowed clock skew 30s") == message.size() - 24);
}

TEST_CASE("check applies clock skew to valid_after", "[cert]")
{
	const Minted minted = mint("ed25519", {"-n", "alice", "-V", "20200101:202001010400"});
	REQUIRE(minted.cert.valid_after == kJan1);

	require_accepted(minted, kJan1 - 30);
	CHECK(rejection(minted, kJan1 - 31) ==
	      "certificate is not yet valid: valid from 2020-01-01T00:00:00Z to 2020-01-01T04:00:00Z, server time "
	      "2019-12-31T23:59:29Z, allowed clock skew 30s");
	// valid_before is exclusive and has no skew.
	CHECK(rejection(minted, kJan1 + 4 * 3600).find("certificate has expired: ") == 0);
}

TEST_CASE("check rejects certificate that never expires", "[cert]")
{
	const Minted minted = mint("ed25519", {"-n", "alice", "-V", "always:forever"});

	CHECK(rejection(minted, now()) == "certificate never expires (valid_before is \"forever\"): issue a certificate "
	                                "with an end time, e.g. ssh-keygen -V +8h");
}

TEST_CASE("check rejects lifetime over the cap", "[cert]")
{
	const Minted minted = mint("ed25519", {"-n", "alice", "-V", "20200101:202001010900"});

	CHECK(rejection(minted, kJan1 + 60) ==
	      "certificate lifetime of 32400s exceeds the maximum of 28800s (valid from 2020-01-01T00:00:00Z to "
	      "2020-01-01T09:00:00Z, server time 2020-01-01T00:01:00Z): issue a shorter-lived certificate");
}

TEST_CASE("check rejects unknown critical option", "[cert]")
{
	std::vector<std::string> args = kOneHour;
	args.insert(args.end(), {"-O", "critical:foo=bar"});
	const Minted minted = mint("ed25519", args);

	CHECK(rejection(minted, now()) == "certificate has unsupported critical option \"foo\": jead supports only "
	                                "force-command, source-address and verify-required");
}

TEST_CASE("check accepts supported critical options", "[cert]")
{
	std::vector<std::string> args = kOneHour;
	args.insert(args.end(), {"-O", "force-command=/usr/bin/uptime", "-O", "source-address=192.0.2.0/24,2001:db8::/32",
	                         "-O", "verify-required", "-O", "extension:team@example.com=ops"});
	const Minted minted = mint("ed25519", args);

	require_accepted(minted, now());
	REQUIRE(find_critical_option(minted.cert, "force-command") != nullptr);
	CHECK(find_critical_option(minted.cert, "force-command")->data == "/usr/bin/uptime");
}

TEST_CASE("check rejects malformed source-address", "[cert]")
{
	Certificate cert = sample_certificate(static_cast<std::uint64_t>(now() - 60));
	cert.critical_options = {{"source-address", "10.0.0.0/8, 192.168.0.0/16"}};
	auto parsed = parse_certificate(encode_certificate(cert, test_ca_seed()));
	REQUIRE(parsed);
	const Minted minted{*parsed, policy_trusting(ed25519_public_blob(test_ca_seed()))};

	CHECK(rejection(minted, now()) == "certificate critical option \"source-address\" is invalid: invalid "
	                                "source-address entry \" 192.168.0.0/16\": not a numeric IPv4 or IPv6 address");
}

TEST_CASE("check rejects control bytes in key ID", "[cert]")
{
	const Minted minted = mint("ed25519", {"-I", "bad\x01id", "-n", "alice", "-V", "-1m:+1h"});

	CHECK(rejection(minted, now()) == "certificate key ID \"bad\\x01id\" contains a NUL or control byte");
}

TEST_CASE("check rejects control bytes in principal", "[cert]")
{
	const Minted tab = mint("ed25519", {"-n", "alice,eve\troot", "-V", "-1m:+1h"});
	CHECK(rejection(tab, now()) == "certificate principal \"eve\\troot\" contains a NUL or control byte");

	Certificate cert = sample_certificate(static_cast<std::uint64_t>(now() - 60));
	cert.principals = {std::string("root\0alice", 10)};
	auto parsed = parse_certificate(encode_certificate(cert, test_ca_seed()));
	REQUIRE(parsed);
	const Minted nul{*parsed, policy_trusting(ed25519_public_blob(test_ca_seed()))};
	CHECK(rejection(nul, now()) == "certificate principal \"root\\x00alice\" contains a NUL or control byte");
}

TEST_CASE("check rejects security keys unless allowed", "[cert]")
{
	Certificate cert = sample_certificate(static_cast<std::uint64_t>(now() - 60));
	cert.cert_key_type = "sk-ssh-ed25519-cert-v01@openssh.com";
	cert.public_key.clear();
	append_ssh_string(cert.public_key, as_bytes("sk-ssh-ed25519@openssh.com"));
	append_ssh_string(cert.public_key, Bytes(32, 0x33));
	append_ssh_string(cert.public_key, as_bytes("ssh:"));
	auto parsed = parse_certificate(encode_certificate(cert, test_ca_seed()));
	REQUIRE(parsed);
	Minted minted{*parsed, policy_trusting(ed25519_public_blob(test_ca_seed()))};

	CHECK(rejection(minted, now()) == "certificate key type \"sk-ssh-ed25519@openssh.com\" is a security key (sk), "
	                                "which this server does not accept");
	minted.policy.allow_sk_keys = true;
	require_accepted(minted, now());
}
