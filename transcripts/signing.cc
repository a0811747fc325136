#include "transcripts/signing.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/encoding.h"

namespace jead {

namespace {

constexpr std::string_view kCheckpointContext = "jead transcript checkpoint v1\n";
constexpr std::size_t kEd25519SignatureBytes = 64;

struct BioDeleter {
	void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxDeleter {
	void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

Result<std::string> fingerprint_of(EVP_PKEY* key, const std::filesystem::path& path)
{
	std::size_t length = 0;
	if (EVP_PKEY_get_raw_public_key(key, nullptr, &length) != 1 || length != 32)
		return fail(Errc::invalid, "reading the public key from " + path.string() + " failed");
	std::vector<std::uint8_t> raw(length);
	if (EVP_PKEY_get_raw_public_key(key, raw.data(), &length) != 1)
		return fail(Errc::invalid, "reading the public key from " + path.string() + " failed");
	return "SHA256:" + base64_encode(sha256(raw), false);
}

// Reads a PEM key with `read` (the private or public reader) and checks
// that it is an Ed25519 key.
template <class Reader>
Result<EvpPkeyPtr> load_ed25519(const std::filesystem::path& path, Reader read, std::string_view kind)
{
	errno = 0;
	std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(path.c_str(), "r"));
	if (!bio) {
		const int error = errno;
		return fail(error == ENOENT ? Errc::not_found : Errc::io,
		            "open of " + std::string(kind) + " key " + path.string() + " failed" +
		                (error != 0 ? std::string(": ") + std::strerror(error) : std::string()));
	}
	EvpPkeyPtr key(read(bio.get()));
	if (!key)
		return fail(Errc::invalid, "invalid " + std::string(kind) + " key " + path.string() +
		                               ": expected a PEM Ed25519 key");
	if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
		return fail(Errc::invalid, std::string(kind) + " key " + path.string() + " is not an Ed25519 key");
	return key;
}

}  // namespace

void EvpPkeyDeleter::operator()(EVP_PKEY* key) const
{
	EVP_PKEY_free(key);
}

std::string checkpoint_message(std::string_view prev_hash)
{
	return std::string(kCheckpointContext) + std::string(prev_hash);
}

Result<TranscriptSigningKey> TranscriptSigningKey::load(const std::filesystem::path& path)
{
	// Like OpenSSH with its private keys, reject a key others may read.
	struct stat st {};
	if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
		char mode[8];
		std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
		return fail(Errc::denied, "private key " + path.string() + " is accessible by group or others (mode " +
		                              mode + "); run chmod 600 on it");
	}

	auto key = load_ed25519(
		path, [](BIO* bio) { return PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr); }, "private");
	if (!key)
		return tl::unexpected(key.error());
	auto fingerprint = fingerprint_of(key->get(), path);
	if (!fingerprint)
		return tl::unexpected(fingerprint.error());

	TranscriptSigningKey result;
	result.key_ = std::move(*key);
	result.fingerprint_ = std::move(*fingerprint);
	return result;
}

Result<std::string> TranscriptSigningKey::sign(std::string_view message) const
{
	std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
	std::string signature(kEd25519SignatureBytes, '\0');
	std::size_t length = signature.size();
	// Ed25519 hashes internally, so no digest is given (PureEdDSA, RFC 8032).
	if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
	    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
	                   reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
	    length != kEd25519SignatureBytes)
		return fail(Errc::internal, "Ed25519 signing failed in OpenSSL");
	return signature;
}

Result<TranscriptVerifyKey> TranscriptVerifyKey::load(const std::filesystem::path& path)
{
	auto key = load_ed25519(
		path, [](BIO* bio) { return PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr); }, "public");
	if (!key)
		return tl::unexpected(key.error());
	auto fingerprint = fingerprint_of(key->get(), path);
	if (!fingerprint)
		return tl::unexpected(fingerprint.error());

	TranscriptVerifyKey result;
	result.key_ = std::move(*key);
	result.fingerprint_ = std::move(*fingerprint);
	return result;
}

bool TranscriptVerifyKey::verify(std::string_view message, std::string_view signature) const
{
	if (signature.size() != kEd25519SignatureBytes)
		return false;
	std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
	if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1)
		return false;
	return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
	                        reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

}  // namespace jead
