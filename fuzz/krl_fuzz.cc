// libFuzzer target for the revocation list parsers: parse_krl for inputs
// that start with the KRL magic, parse_revocation_text otherwise, then
// RevocationList::check on a fixed certificate.
//
// Build and run from the repository root (not wired into CMake):
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     fuzz/krl_fuzz.cc server/cert/*.cc common/*.cc -lssl -lcrypto -o /tmp/krl_fuzz
//   /tmp/krl_fuzz -max_total_time=30 /tmp/krl_corpus fuzz/corpus/krl
// The seeds in fuzz/corpus/krl are KRLs written by ssh-keygen 9.2 -k
// (serials, a serial bitmap, key IDs, explicit keys, SHA1 and SHA256
// hashes) and one text list.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "server/cert/revocation.h"

namespace {

const jead::Certificate& sample_certificate()
{
	static const jead::Certificate cert = [] {
		jead::Certificate c;
		c.public_key = {0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2', '5', '5', '1', '9', 0, 0, 0, 32};
		c.public_key.resize(c.public_key.size() + 32, 0x22);
		c.signature_key = c.public_key;
		c.signature_key.back() = 0x33;
		c.serial = 120;
		c.key_id = "laptop-2024";
		return c;
	}();
	return cert;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	static constexpr char kMagic[] = "SSHKRL\n";  // plus its terminating NUL: 8 bytes
	const bool is_krl = size >= sizeof kMagic && std::memcmp(data, kMagic, sizeof kMagic) == 0;

	auto list = is_krl ? jead::parse_krl(std::span(data, size), "fuzz.krl")
	                   : jead::parse_revocation_text(
				     std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.txt");
	if (list)
		(void)list->check(sample_certificate());
	return 0;
}
