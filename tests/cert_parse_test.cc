// parse_certificate and parse_public_key_line on certificates minted by
// ssh-keygen and on hand-built malformed blobs.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "server/cert/certificate.h"
#include "server/cert/limits.h"
#include "server/cert/public_key.h"

namespace jead::cert_testing {
// Defined in cert_keygen_test.cc.
std::string make_test_dir();
std::string read_file(const std::string& path);
int run_ssh_keygen(const std::vector<std::string>& args, std::string* output = nullptr);
std::string shared_key(const std::string& spec, const std::string& name);
std::string sign_certificate(const std::string& ca_key, const std::string& user_key,
                             const std::vector<std::string>& options);
Bytes load_key_blob(const std::string& path);
std::string keygen_fingerprint(const std::string& path);
Bytes test_ca_seed();
Bytes encode_certificate(const Certificate& cert, const Bytes& ca_seed);
Certificate sample_certificate(std::uint64_t valid_after);
}  // namespace jead::cert_testing

using namespace jead;
using namespace jead::cert_testing;

namespace {

Certificate parse_ok(const Bytes& blob)
{
	auto cert = parse_certificate(blob);
	INFO((cert ? "" : cert.error().message));
	REQUIRE(cert);
	return *cert;
}

std::string parse_error(const Bytes& blob)
{
	auto cert = parse_certificate(blob);
	REQUIRE_FALSE(cert);
	return cert.error().message;
}

}  // namespace

TEST_CASE("parse certificate for each user key type", "[cert]")
{
	struct Case {
		std::string spec;
		std::string cert_type;
		std::string plain_type;
	};
	const std::vector<Case> cases = {
		{"ed25519", "ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"},
		{"ecdsa-256", "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp256"},
		{"ecdsa-384", "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp384"},
		{"ecdsa-521", "ecdsa-sha2-nistp521-cert-v01@openssh.com", "ecdsa-sha2-nistp521"},
		{"rsa-2048", "ssh-rsa-cert-v01@openssh.com", "ssh-rsa"},
	};
	const std::string ca = shared_key("ed25519", "ca");

	for (const Case& c : cases) {
		SECTION(c.spec)
		{
			const std::string user = shared_key(c.spec, "user");
			const std::string path = sign_certificate(
				ca, user, {"-I", "alice@laptop", "-z", "42", "-n", "alice,deploy", "-V", "20200101:20200102"});
			const Bytes blob = load_key_blob(path);
			const Certificate cert = parse_ok(blob);

			CHECK(cert.cert_key_type == c.cert_type);
			CHECK(cert.plain_key_type == c.plain_type);
			CHECK(cert.public_key == load_key_blob(user + ".pub"));
			CHECK(ssh_fingerprint(cert.public_key) == keygen_fingerprint(user + ".pub"));
			CHECK_FALSE(cert.security_key);
			CHECK(cert.serial == 42);
			CHECK(cert.type == CertType::user);
			CHECK(cert.key_id == "alice@laptop");
			CHECK(cert.principals == std::vector<std::string>{"alice", "deploy"});
			CHECK(cert.valid_after == 1577836800);
			CHECK(cert.valid_before == 1577923200);
			CHECK(cert.critical_options.empty());
			CHECK(cert.signature_key == load_key_blob(ca + ".pub"));
			CHECK(cert.signature_algorithm == "ssh-ed25519");
			CHECK(cert.nonce.size() == 32);
			// signed_data is everything before the signature string.
			CHECK(cert.signed_data.size() + 4 + cert.signature.size() == blob.size());
			CHECK(std::equal(cert.signed_data.begin(), cert.signed_data.end(), blob.begin()));
		}
	}
}

TEST_CASE("parse default extensions in order", "[cert]")
{
	const std::string path = sign_certificate(shared_key("ed25519", "ca"), shared_key("ed25519", "user"), {"-n", "alice"});
	const Certificate cert = parse_ok(load_key_blob(path));

	std::vector<std::string> names;
	for (const CertOption& extension : cert.extensions) {
		names.push_back(extension.name);
		CHECK(extension.data.empty());
	}
	CHECK(names == std::vector<std::string>{"permit-X11-forwarding", "permit-agent-forwarding",
	                                        "permit-port-forwarding", "permit-pty", "permit-user-rc"});
}

TEST_CASE("parse critical options and extension values", "[cert]")
{
	const std::string path = sign_certificate(
		shared_key("ed25519", "ca"), shared_key("ed25519", "user"),
		{"-n", "alice", "-O", "clear", "-O", "force-command=/usr/bin/uptime -p", "-O",
		 "source-address=10.0.0.0/8,::1", "-O", "extension:team@example.com=ops", "-O", "verify-required"});
	const Certificate cert = parse_ok(load_key_blob(path));

	REQUIRE(cert.critical_options.size() == 3);
	CHECK(cert.critical_options[0].name == "force-command");
	CHECK(cert.critical_options[0].data == "/usr/bin/uptime -p");
	CHECK(cert.critical_options[1].name == "source-address");
	CHECK(cert.critical_options[1].data == "10.0.0.0/8,::1");
	CHECK(cert.critical_options[2].name == "verify-required");
	CHECK(cert.critical_options[2].data.empty());
	REQUIRE(find_critical_option(cert, "source-address") != nullptr);
	CHECK(find_critical_option(cert, "source-address")->data == "10.0.0.0/8,::1");
	CHECK(find_critical_option(cert, "no-such-option") == nullptr);

	REQUIRE(cert.extensions.size() == 1);
	CHECK(cert.extensions[0].name == "team@example.com");
	CHECK(cert.extensions[0].data == "ops");
}

TEST_CASE("parse rejects every truncation", "[cert]")
{
	const Bytes blob = load_key_blob(
		sign_certificate(shared_key("ed25519", "ca"), shared_key("ecdsa-256", "user"), {"-n", "alice"}));

	for (std::size_t length = 0; length < blob.size(); ++length) {
		auto cert = parse_certificate(std::span(blob).first(length));
		INFO("length " << length);
		CHECK_FALSE(cert);
	}
}

TEST_CASE("parse truncated signature message", "[cert]")
{
	const Bytes blob = load_key_blob(
		sign_certificate(shared_key("ed25519", "ca"), shared_key("ed25519", "user"), {"-n", "alice"}));
	const Certificate full = parse_ok(blob);
	const Bytes cut(blob.begin(), blob.end() - 1);

	// The signature string starts right after signed_data.
	const std::size_t offset = full.signed_data.size();
	CHECK(parse_error(cut) == "invalid certificate: truncated signature at offset " + std::to_string(offset) +
	                              ": length " + std::to_string(full.signature.size()) + " exceeds the " +
	                              std::to_string(full.signature.size() - 1) + " bytes left");

	const Bytes header_only(blob.begin(), blob.begin() + 2);
	CHECK(parse_error(header_only) == "invalid certificate: truncated key type at offset 0: needs 4 bytes, 2 left");
}

TEST_CASE("parse rejects trailing bytes", "[cert]")
{
	Bytes blob = load_key_blob(
		sign_certificate(shared_key("ed25519", "ca"), shared_key("ed25519", "user"), {"-n", "alice"}));
	const std::size_t end = blob.size();
	blob.push_back(0);
	blob.push_back(0);

	CHECK(parse_error(blob) == "invalid certificate: unexpected trailing data (2 bytes) at offset " +
	                               std::to_string(end));
}

TEST_CASE("parse rejects plain key blob", "[cert]")
{
	const Bytes plain = load_key_blob(shared_key("ed25519", "user") + ".pub");
	CHECK(parse_error(plain) == "invalid certificate: unsupported certificate type \"ssh-ed25519\"");
}

TEST_CASE("parse rejects unsorted critical options", "[cert]")
{
	Certificate cert = sample_certificate(1700000000);
	cert.critical_options = {{"source-address", "10.0.0.1"}, {"force-command", "true"}};

	CHECK(parse_error(encode_certificate(cert, test_ca_seed())) ==
	      "invalid certificate critical options: entries are not sorted, \"force-command\" follows "
	      "\"source-address\"");
}

TEST_CASE("parse rejects duplicate extension", "[cert]")
{
	Certificate cert = sample_certificate(1700000000);
	cert.extensions = {{"permit-pty", ""}, {"permit-pty", ""}};

	CHECK(parse_error(encode_certificate(cert, test_ca_seed())) ==
	      "invalid certificate extensions: duplicate entry \"permit-pty\"");
}

TEST_CASE("parse rejects option data with leftover bytes", "[cert]")
{
	Certificate cert = sample_certificate(1700000000);
	cert.critical_options = {{"force-command", "uptime"}};
	Bytes blob = encode_certificate(cert, test_ca_seed());

	// Corrupt the inner wrapper: the inner string claims 5 bytes of the
	// 6-byte "uptime", leaving one byte inside the outer data string.
	const std::string marker = "force-command";
	auto at = std::search(blob.begin(), blob.end(), marker.begin(), marker.end());
	REQUIRE(at != blob.end());
	const std::size_t inner_length = static_cast<std::size_t>(at - blob.begin()) + marker.size() + 4 + 3;
	REQUIRE(blob[inner_length] == 6);
	blob[inner_length] = 5;

	CHECK(parse_error(blob) == "invalid certificate critical options \"force-command\": unexpected trailing data "
	                           "(1 bytes) at offset " + std::to_string(inner_length + 1 + 5));
}

TEST_CASE("parse rejects too many principals", "[cert]")
{
	Certificate cert = sample_certificate(1700000000);
	cert.principals.assign(cert_limits::kMaxPrincipals + 1, "p");

	auto parsed = parse_certificate(encode_certificate(cert, test_ca_seed()));
	REQUIRE_FALSE(parsed);
	CHECK(parsed.error().code == Errc::limit);
	CHECK(parsed.error().message == "invalid certificate: more than 256 principals");
}

TEST_CASE("parse rejects oversized key ID", "[cert]")
{
	Certificate cert = sample_certificate(1700000000);
	cert.key_id.assign(cert_limits::kMaxKeyIdLength + 1, 'k');

	auto parsed = parse_certificate(encode_certificate(cert, test_ca_seed()));
	REQUIRE_FALSE(parsed);
	CHECK(parsed.error().code == Errc::limit);
	CHECK(parsed.error().message.find("invalid certificate: key ID at offset ") == 0);
	CHECK(parsed.error().message.find(" is 1025 bytes, over the limit of 1024") != std::string::npos);
}

TEST_CASE("parse rejects unknown certificate type value", "[cert]")
{
	Certificate cert = sample_certificate(1700000000);
	cert.type = static_cast<CertType>(3);

	CHECK(parse_error(encode_certificate(cert, test_ca_seed())) ==
	      "invalid certificate: unknown certificate type 3, expected 1 (user) or 2 (host)");
}

TEST_CASE("parse security key certificate", "[cert]")
{
	Certificate cert = sample_certificate(1700000000);
	cert.cert_key_type = "sk-ssh-ed25519-cert-v01@openssh.com";
	cert.public_key.clear();
	append_ssh_string(cert.public_key, as_bytes("sk-ssh-ed25519@openssh.com"));
	append_ssh_string(cert.public_key, Bytes(32, 0x33));
	append_ssh_string(cert.public_key, as_bytes("ssh:"));

	const Certificate parsed = parse_ok(encode_certificate(cert, test_ca_seed()));
	CHECK(parsed.security_key);
	CHECK(parsed.plain_key_type == "sk-ssh-ed25519@openssh.com");
	CHECK(parsed.sk_application == "ssh:");
	CHECK(parsed.public_key == cert.public_key);
}

TEST_CASE("parse rejects EC point off the curve", "[cert]")
{
	Bytes point(65, 0x01);
	point[0] = 0x04;
	Certificate cert = sample_certificate(1700000000);
	cert.cert_key_type = "ecdsa-sha2-nistp256-cert-v01@openssh.com";
	cert.public_key.clear();
	append_ssh_string(cert.public_key, as_bytes("ecdsa-sha2-nistp256"));
	append_ssh_string(cert.public_key, as_bytes("nistp256"));
	append_ssh_string(cert.public_key, point);

	CHECK(parse_error(encode_certificate(cert, test_ca_seed())) == "invalid ECDSA public key: OpenSSL rejected the key");
}

TEST_CASE("parse public key line", "[cert]")
{
	const std::string pub = shared_key("ed25519", "user") + ".pub";
	const std::string text = read_file(pub);

	auto line = parse_public_key_line(text);
	REQUIRE(line);
	CHECK(line->type == "ssh-ed25519");
	CHECK(ssh_fingerprint(line->blob) == keygen_fingerprint(pub));

	const std::string base64 = text.substr(text.find(' ') + 1, text.rfind(' ') - text.find(' ') - 1);
	auto mismatch = parse_public_key_line("ssh-rsa " + base64);
	REQUIRE_FALSE(mismatch);
	CHECK(mismatch.error().message ==
	      "invalid public key line: the line names key type \"ssh-rsa\" but the key data is \"ssh-ed25519\"");

	auto missing = parse_public_key_line("ssh-ed25519   ");
	REQUIRE_FALSE(missing);
	CHECK(missing.error().message == "invalid public key line: missing base64 key data after \"ssh-ed25519\"");
}
