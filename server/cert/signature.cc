// CA signature checks on certificates with OpenSSL 3 EVP. Supported CA
// keys: Ed25519, ECDSA on NIST P-256/384/521, and RSA of at least
// kMinRsaCaKeyBits with rsa-sha2-256, rsa-sha2-512 or (only when the
// policy allows it) SHA-1 "ssh-rsa" signatures, all PKCS#1 v1.5.
#include <openssl/ecdsa.h>
#include <openssl/err.h>

#include "common/escape.h"
#include "server/cert/certificate.h"
#include "server/cert/limits.h"
#include "server/cert/public_key.h"
#include "server/cert/ssh_reader.h"

namespace jead {

namespace {

using namespace cert_limits;

struct MdCtxDeleter {
	void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct EcdsaSigDeleter {
	void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};

// The digest a signature algorithm uses with a CA key, or an error when
// the algorithm does not fit the key. Ed25519 hashes internally, so its
// digest is nullptr.
Result<const EVP_MD*> digest_for(const PublicKeyFields& ca, std::string_view ca_type, std::string_view algorithm,
                                 const SignaturePolicy& policy)
{
	const auto mismatch = [&]() {
		return fail(Errc::denied, "certificate signature algorithm " + escape_untrusted(algorithm) +
		                              " does not fit the CA key type \"" + std::string(ca_type) + "\"");
	};

	switch (ca.algorithm) {
	case KeyAlgorithm::ed25519:
		if (algorithm != "ssh-ed25519")
			return mismatch();
		return nullptr;
	case KeyAlgorithm::ecdsa_p256:
		if (algorithm != ca_type)
			return mismatch();
		return EVP_sha256();
	case KeyAlgorithm::ecdsa_p384:
		if (algorithm != ca_type)
			return mismatch();
		return EVP_sha384();
	case KeyAlgorithm::ecdsa_p521:
		if (algorithm != ca_type)
			return mismatch();
		return EVP_sha512();
	case KeyAlgorithm::rsa:
		if (algorithm == "rsa-sha2-256")
			return EVP_sha256();
		if (algorithm == "rsa-sha2-512")
			return EVP_sha512();
		if (algorithm == "ssh-rsa") {
			if (!policy.allow_ssh_rsa_sha1)
				return fail(Errc::denied, "certificate signature algorithm \"ssh-rsa\" (RSA with SHA-1) is not "
				                          "allowed: re-sign the certificate with ssh-keygen -t rsa-sha2-512");
			return EVP_sha1();
		}
		return mismatch();
	}
	return mismatch();
}

// Converts an SSH ECDSA signature (string of mpint r, mpint s) to the DER
// ECDSA-Sig-Value OpenSSL verifies.
Result<Bytes> ecdsa_signature_to_der(std::span<const std::uint8_t> ssh_signature, KeyAlgorithm algorithm,
                                     std::size_t base_offset)
{
	const std::size_t max_length = ecdsa_coordinate_length(algorithm) + 1;
	SshReader reader(ssh_signature, "ECDSA signature", base_offset);
	auto r = reader.get_mpint("r", max_length);
	if (!r)
		return tl::unexpected(r.error());
	auto s = reader.get_mpint("s", max_length);
	if (!s)
		return tl::unexpected(s.error());
	if (auto end = reader.expect_end(); !end)
		return tl::unexpected(end.error());

	std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(ECDSA_SIG_new());
	BIGNUM* bn_r = BN_bin2bn(r->data(), static_cast<int>(r->size()), nullptr);
	BIGNUM* bn_s = BN_bin2bn(s->data(), static_cast<int>(s->size()), nullptr);
	if (!sig || !bn_r || !bn_s || ECDSA_SIG_set0(sig.get(), bn_r, bn_s) != 1) {
		BN_free(bn_r);
		BN_free(bn_s);
		ERR_clear_error();
		return fail(Errc::internal, "OpenSSL failed to build an ECDSA signature");
	}

	const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
	if (length <= 0) {
		ERR_clear_error();
		return fail(Errc::internal, "OpenSSL failed to encode an ECDSA signature");
	}
	Bytes der(static_cast<std::size_t>(length));
	unsigned char* out = der.data();
	i2d_ECDSA_SIG(sig.get(), &out);
	return der;
}

Result<void> evp_verify(EVP_PKEY* key, const EVP_MD* digest, std::span<const std::uint8_t> signature,
                        std::span<const std::uint8_t> data)
{
	std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
	const bool verified = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, digest, nullptr, key) == 1 &&
	                      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), data.data(), data.size()) == 1;
	ERR_clear_error();
	if (!verified)
		return fail(Errc::denied, "certificate signature is invalid: the certificate was altered or not signed by "
		                          "this CA key");
	return {};
}

// Reads the CA key and checks the RSA size floor.
Result<PublicKeyFields> read_ca_key(const Certificate& cert, std::string& ca_type)
{
	SshReader reader(cert.signature_key, "CA key");
	auto name = reader.get_text("key type", kMaxKeyTypeNameLength);
	if (!name)
		return tl::unexpected(name.error());
	const auto type = find_key_type_by_plain_name(*name);
	if (!type || type->security_key)
		return fail(Errc::denied, "unsupported CA key type " + escape_untrusted(*name) +
		                              ": CA keys must be ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa");
	ca_type = std::string(type->plain_name);

	auto fields = read_public_key_fields(reader, *type);
	if (!fields)
		return fields;
	if (auto end = reader.expect_end(); !end)
		return tl::unexpected(end.error());
	return fields;
}

}  // namespace

Result<void> verify_ca_signature(const Certificate& cert, const SignaturePolicy& policy)
{
	std::string ca_type;
	auto ca = read_ca_key(cert, ca_type);
	if (!ca)
		return tl::unexpected(ca.error());

	auto key = make_evp_public_key(*ca);
	if (!key)
		return tl::unexpected(key.error());
	if (ca->algorithm == KeyAlgorithm::rsa) {
		const int bits = EVP_PKEY_get_bits(key->get());
		if (bits < static_cast<int>(kMinRsaCaKeyBits))
			return fail(Errc::denied, "RSA CA key of " + std::to_string(bits) + " bits is too small, the minimum is " +
			                              std::to_string(kMinRsaCaKeyBits) + " bits: use a larger CA key");
	}

	// The signature field: string algorithm, string signature bytes.
	SshReader reader(cert.signature, "certificate signature");
	auto algorithm = reader.get_text("signature algorithm", kMaxKeyTypeNameLength);
	if (!algorithm)
		return tl::unexpected(algorithm.error());
	const std::size_t bytes_offset = reader.offset() + 4;
	auto bytes = reader.get_string("signature bytes", kMaxSignatureBlobSize);
	if (!bytes)
		return tl::unexpected(bytes.error());
	if (auto end = reader.expect_end(); !end)
		return tl::unexpected(end.error());

	auto digest = digest_for(*ca, ca_type, *algorithm, policy);
	if (!digest)
		return tl::unexpected(digest.error());

	switch (ca->algorithm) {
	case KeyAlgorithm::ed25519:
		if (bytes->size() != 64)
			return fail(Errc::invalid, "invalid certificate signature: Ed25519 signature is " +
			                               std::to_string(bytes->size()) + " bytes, expected 64");
		return evp_verify(key->get(), nullptr, *bytes, cert.signed_data);
	case KeyAlgorithm::rsa: {
		// NOTE: OpenSSH also accepts RSA signatures shorter than the
		// modulus and left-pads them. jead requires the exact length,
		// which is what OpenSSH and OpenSSL signers write.
		const auto modulus_bytes = static_cast<std::size_t>(EVP_PKEY_get_size(key->get()));
		if (bytes->size() != modulus_bytes)
			return fail(Errc::invalid, "invalid certificate signature: RSA signature is " +
			                               std::to_string(bytes->size()) + " bytes, expected " +
			                               std::to_string(modulus_bytes));
		return evp_verify(key->get(), *digest, *bytes, cert.signed_data);
	}
	default: {
		auto der = ecdsa_signature_to_der(*bytes, ca->algorithm, bytes_offset);
		if (!der)
			return tl::unexpected(der.error());
		return evp_verify(key->get(), *digest, *der, cert.signed_data);
	}
	}
}

}  // namespace jead
