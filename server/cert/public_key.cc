#include "server/cert/public_key.h"

#include <array>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "common/escape.h"
#include "server/cert/limits.h"

namespace jead {

namespace {

using namespace cert_limits;

constexpr std::array kKeyTypes = {
	KeyType{"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", KeyAlgorithm::ed25519, false},
	KeyType{"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com", KeyAlgorithm::ecdsa_p256, false},
	KeyType{"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384-cert-v01@openssh.com", KeyAlgorithm::ecdsa_p384, false},
	KeyType{"ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521-cert-v01@openssh.com", KeyAlgorithm::ecdsa_p521, false},
	KeyType{"ssh-rsa", "ssh-rsa-cert-v01@openssh.com", KeyAlgorithm::rsa, false},
	KeyType{"sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com", KeyAlgorithm::ed25519, true},
	KeyType{"sk-ecdsa-sha2-nistp256@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
	        KeyAlgorithm::ecdsa_p256, true},
};

constexpr std::size_t kEd25519KeyLength = 32;

// The SSH curve identifier and the OpenSSL group name of an ECDSA algorithm.
struct CurveNames {
	std::string_view ssh;
	const char* openssl;
};

CurveNames curve_names(KeyAlgorithm algorithm)
{
	switch (algorithm) {
	case KeyAlgorithm::ecdsa_p256:
		return {"nistp256", "prime256v1"};
	case KeyAlgorithm::ecdsa_p384:
		return {"nistp384", "secp384r1"};
	case KeyAlgorithm::ecdsa_p521:
		return {"nistp521", "secp521r1"};
	default:
		return {"", ""};
	}
}

unsigned mpint_bits(std::span<const std::uint8_t> magnitude)
{
	if (magnitude.empty())
		return 0;
	unsigned bits = static_cast<unsigned>(magnitude.size() - 1) * 8;
	for (std::uint8_t top = magnitude[0]; top != 0; top >>= 1)
		++bits;
	return bits;
}

// Drops OpenSSL's queued errors so a failed check does not leak them into
// an unrelated later call.
template <class T>
T clear_openssl_errors(T value)
{
	ERR_clear_error();
	return value;
}

struct EvpPkeyCtxDeleter {
	void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
using EvpPkeyCtx = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxDeleter>;

struct ParamBuildDeleter {
	void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamDeleter {
	void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};
struct BignumDeleter {
	void operator()(BIGNUM* bn) const { BN_free(bn); }
};
using Bignum = std::unique_ptr<BIGNUM, BignumDeleter>;

Result<EvpPkey> pkey_from_params(const char* key_type, const OSSL_PARAM* params, std::string_view what)
{
	EvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, key_type, nullptr));
	EVP_PKEY* raw = nullptr;
	if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
	    EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) != 1)
		return clear_openssl_errors(fail(Errc::invalid, "invalid " + std::string(what) + ": OpenSSL rejected the key"));
	EvpPkey key(raw);

	// fromdata decodes the point; the public check also tests that it is
	// on the curve and not the point at infinity.
	EvpPkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
	if (!check || EVP_PKEY_public_check(check.get()) != 1)
		return clear_openssl_errors(
			fail(Errc::invalid, "invalid " + std::string(what) + ": the public key fails OpenSSL's validity check"));
	return key;
}

Result<EvpPkey> make_ec_key(KeyAlgorithm algorithm, std::span<const std::uint8_t> point)
{
	const OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
		                                 const_cast<char*>(curve_names(algorithm).openssl), 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
		                                  const_cast<std::uint8_t*>(point.data()), point.size()),
		OSSL_PARAM_construct_end(),
	};
	return pkey_from_params("EC", params, "ECDSA public key");
}

Result<EvpPkey> make_rsa_key(std::span<const std::uint8_t> e, std::span<const std::uint8_t> n)
{
	Bignum bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
	Bignum bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
	std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter> build(OSSL_PARAM_BLD_new());
	if (!bn_e || !bn_n || !build || OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
	    OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
		return clear_openssl_errors(fail(Errc::internal, "OpenSSL failed to build RSA key parameters"));
	std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(build.get()));
	if (!params)
		return clear_openssl_errors(fail(Errc::internal, "OpenSSL failed to build RSA key parameters"));
	return pkey_from_params("RSA", params.get(), "RSA public key");
}

Result<void> read_ecdsa_fields(SshReader& reader, KeyAlgorithm algorithm, PublicKeyFields& fields)
{
	auto curve = reader.get_text("ECDSA curve name", kMaxKeyTypeNameLength);
	if (!curve)
		return tl::unexpected(curve.error());
	const std::string_view expected = curve_names(algorithm).ssh;
	if (*curve != expected)
		return fail(Errc::invalid, "invalid " + reader.context() + ": ECDSA curve " + escape_untrusted(*curve) +
		                               " does not match the key type, expected \"" + std::string(expected) + "\"");

	const std::size_t point_length = 1 + 2 * ecdsa_coordinate_length(algorithm);
	auto point = reader.get_string("ECDSA public point", point_length);
	if (!point)
		return tl::unexpected(point.error());
	if (point->size() != point_length || (*point)[0] != 0x04)
		return fail(Errc::invalid, "invalid " + reader.context() + ": ECDSA public point is not an uncompressed " +
		                               std::to_string(point_length) + "-byte point");
	auto key = make_ec_key(algorithm, *point);
	if (!key)
		return tl::unexpected(key.error());
	fields.ec_point.assign(point->begin(), point->end());
	return {};
}

Result<void> read_rsa_fields(SshReader& reader, PublicKeyFields& fields)
{
	auto e = reader.get_mpint("RSA exponent", kMaxMpintLength);
	if (!e)
		return tl::unexpected(e.error());
	auto n = reader.get_mpint("RSA modulus", kMaxMpintLength);
	if (!n)
		return tl::unexpected(n.error());

	if (e->empty() || (e->back() & 1) == 0)
		return fail(Errc::invalid, "invalid " + reader.context() + ": RSA exponent must be odd");
	const unsigned bits = mpint_bits(*n);
	if (bits > kMaxRsaKeyBits)
		return fail(Errc::limit, "invalid " + reader.context() + ": RSA modulus of " + std::to_string(bits) +
		                             " bits is over the limit of " + std::to_string(kMaxRsaKeyBits));
	fields.rsa_e.assign(e->begin(), e->end());
	fields.rsa_n.assign(n->begin(), n->end());
	return {};
}

}  // namespace

std::optional<KeyType> find_key_type_by_plain_name(std::string_view name)
{
	for (const KeyType& type : kKeyTypes)
		if (type.plain_name == name)
			return type;
	return std::nullopt;
}

std::optional<KeyType> find_key_type_by_cert_name(std::string_view name)
{
	for (const KeyType& type : kKeyTypes)
		if (type.cert_name == name)
			return type;
	return std::nullopt;
}

std::size_t ecdsa_coordinate_length(KeyAlgorithm algorithm)
{
	switch (algorithm) {
	case KeyAlgorithm::ecdsa_p256:
		return 32;
	case KeyAlgorithm::ecdsa_p384:
		return 48;
	case KeyAlgorithm::ecdsa_p521:
		return 66;
	default:
		return 0;
	}
}

Result<PublicKeyFields> read_public_key_fields(SshReader& reader, const KeyType& type)
{
	PublicKeyFields fields;
	fields.algorithm = type.algorithm;
	fields.security_key = type.security_key;

	Result<void> read;
	if (type.algorithm == KeyAlgorithm::ed25519) {
		auto key = reader.get_string("Ed25519 public key", kEd25519KeyLength);
		if (key && key->size() != kEd25519KeyLength)
			return fail(Errc::invalid, "invalid " + reader.context() + ": Ed25519 public key is " +
			                               std::to_string(key->size()) + " bytes, expected 32");
		if (key)
			fields.ed25519_key.assign(key->begin(), key->end());
		else
			read = tl::unexpected(key.error());
	} else if (type.algorithm == KeyAlgorithm::rsa) {
		read = read_rsa_fields(reader, fields);
	} else {
		read = read_ecdsa_fields(reader, type.algorithm, fields);
	}
	if (!read)
		return tl::unexpected(read.error());

	if (type.security_key) {
		auto application = reader.get_text("security key application", kMaxSkApplicationLength);
		if (!application)
			return tl::unexpected(application.error());
		fields.sk_application = std::move(*application);
	}
	return fields;
}

Result<PublicKeyFields> parse_public_key_blob(std::span<const std::uint8_t> blob, std::string context)
{
	SshReader reader(blob, std::move(context));
	auto name = reader.get_text("key type", kMaxKeyTypeNameLength);
	if (!name)
		return tl::unexpected(name.error());
	const auto type = find_key_type_by_plain_name(*name);
	if (!type)
		return fail(Errc::invalid, "invalid " + reader.context() + ": unsupported key type " + escape_untrusted(*name));

	auto fields = read_public_key_fields(reader, *type);
	if (!fields)
		return fields;
	if (auto end = reader.expect_end(); !end)
		return tl::unexpected(end.error());
	return fields;
}

unsigned rsa_modulus_bits(const PublicKeyFields& fields)
{
	return mpint_bits(fields.rsa_n);
}

void append_ssh_string(Bytes& out, std::span<const std::uint8_t> bytes)
{
	const auto length = static_cast<std::uint32_t>(bytes.size());
	for (int shift = 24; shift >= 0; shift -= 8)
		out.push_back(static_cast<std::uint8_t>(length >> shift));
	out.insert(out.end(), bytes.begin(), bytes.end());
}

Result<EvpPkey> make_evp_public_key(const PublicKeyFields& fields)
{
	if (fields.security_key)
		return fail(Errc::invalid, "security key (sk) keys cannot be used for signature checks");

	switch (fields.algorithm) {
	case KeyAlgorithm::ed25519: {
		EvpPkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, fields.ed25519_key.data(),
		                                        fields.ed25519_key.size()));
		if (!key)
			return clear_openssl_errors(fail(Errc::invalid, "invalid Ed25519 public key: OpenSSL rejected the key"));
		return key;
	}
	case KeyAlgorithm::rsa:
		return make_rsa_key(fields.rsa_e, fields.rsa_n);
	default:
		return make_ec_key(fields.algorithm, fields.ec_point);
	}
}

}  // namespace jead
