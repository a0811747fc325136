// SshReader: the one reader for untrusted SSH wire-format bytes (RFC 4251
// section 5) in certificates, public keys, signatures and KRLs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace jead {

// Reads big-endian integers, length-prefixed strings and mpints from a
// span it does not own. Every getter checks a length first against the cap
// the caller names and then against the bytes left, and returns an error
// instead of reading past the end. A failed getter leaves the position
// unchanged. Errors read "invalid CONTEXT: ... at offset N", where N counts
// from the start of the outermost blob, so sub-readers report positions a
// hex dump of the whole input shows.
class SshReader {
public:
	SshReader(std::span<const std::uint8_t> data, std::string context, std::size_t base_offset = 0);

	Result<std::uint8_t> get_u8(std::string_view field);
	Result<bool> get_bool(std::string_view field);
	Result<std::uint32_t> get_u32(std::string_view field);
	Result<std::uint64_t> get_u64(std::string_view field);

	// A uint32 length and that many bytes. A length over `cap` is an
	// Errc::limit error; a length over the bytes left is Errc::invalid.
	Result<std::span<const std::uint8_t>> get_string(std::string_view field, std::size_t cap);

	// get_string, copied into a std::string. The bytes are not checked:
	// callers that need text without NUL or control bytes check it.
	Result<std::string> get_text(std::string_view field, std::size_t cap);

	// A string read as a nested reader with its own context, for fields
	// that are themselves sequences (principals, options, KRL sections).
	Result<SshReader> get_sub_reader(std::string_view field, std::size_t cap, std::string context);

	// An mpint that must be non-negative and minimally encoded (RFC 4251:
	// no unnecessary leading zero byte). Returns the magnitude without the
	// sign byte; zero is an empty span.
	Result<std::span<const std::uint8_t>> get_mpint(std::string_view field, std::size_t cap);

	// Raw bytes with no length prefix (a file magic).
	Result<std::span<const std::uint8_t>> get_raw(std::string_view field, std::size_t count);

	// Succeeds only when every byte has been read.
	Result<void> expect_end() const;

	bool empty() const { return position_ == data_.size(); }
	std::size_t remaining() const { return data_.size() - position_; }
	// Offset of the next byte from the start of the outermost blob.
	std::size_t offset() const { return base_offset_ + position_; }
	const std::string& context() const { return context_; }

private:
	tl::unexpected<Error> truncated(std::string_view field, std::size_t needed) const;

	std::span<const std::uint8_t> data_;
	std::size_t position_ = 0;
	std::string context_;
	std::size_t base_offset_ = 0;
};

}  // namespace jead
