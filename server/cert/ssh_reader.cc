#include "server/cert/ssh_reader.h"

#include <utility>

namespace jead {

SshReader::SshReader(std::span<const std::uint8_t> data, std::string context, std::size_t base_offset)
	: data_(data), context_(std::move(context)), base_offset_(base_offset)
{
}

tl::unexpected<Error> SshReader::truncated(std::string_view field, std::size_t needed) const
{
	return fail(Errc::invalid, "invalid " + context_ + ": truncated " + std::string(field) + " at offset " +
	                               std::to_string(offset()) + ": needs " + std::to_string(needed) +
	                               " bytes, " + std::to_string(remaining()) + " left");
}

Result<std::uint8_t> SshReader::get_u8(std::string_view field)
{
	if (remaining() < 1)
		return truncated(field, 1);
	return data_[position_++];
}

Result<bool> SshReader::get_bool(std::string_view field)
{
	const std::size_t start = offset();
	auto value = get_u8(field);
	if (!value)
		return tl::unexpected(value.error());
	if (*value > 1) {
		--position_;
		return fail(Errc::invalid, "invalid " + context_ + ": " + std::string(field) + " at offset " +
		                               std::to_string(start) + " is " + std::to_string(*value) +
		                               ", expected a boolean 0 or 1");
	}
	return *value == 1;
}

Result<std::uint32_t> SshReader::get_u32(std::string_view field)
{
	if (remaining() < 4)
		return truncated(field, 4);
	std::uint32_t value = 0;
	for (int i = 0; i < 4; ++i)
		value = (value << 8) | data_[position_ + i];
	position_ += 4;
	return value;
}

Result<std::uint64_t> SshReader::get_u64(std::string_view field)
{
	if (remaining() < 8)
		return truncated(field, 8);
	std::uint64_t value = 0;
	for (int i = 0; i < 8; ++i)
		value = (value << 8) | data_[position_ + i];
	position_ += 8;
	return value;
}

Result<std::span<const std::uint8_t>> SshReader::get_string(std::string_view field, std::size_t cap)
{
	const std::size_t start = position_;
	auto length = get_u32(field);
	if (!length)
		return tl::unexpected(length.error());

	if (*length > cap) {
		position_ = start;
		return fail(Errc::limit, "invalid " + context_ + ": " + std::string(field) + " at offset " +
		                             std::to_string(offset()) + " is " + std::to_string(*length) +
		                             " bytes, over the limit of " + std::to_string(cap));
	}
	if (*length > remaining()) {
		const std::size_t left = remaining();
		position_ = start;
		return fail(Errc::invalid, "invalid " + context_ + ": truncated " + std::string(field) +
		                               " at offset " + std::to_string(offset()) + ": length " +
		                               std::to_string(*length) + " exceeds the " + std::to_string(left) +
		                               " bytes left");
	}

	const auto value = data_.subspan(position_, *length);
	position_ += *length;
	return value;
}

Result<std::string> SshReader::get_text(std::string_view field, std::size_t cap)
{
	auto bytes = get_string(field, cap);
	if (!bytes)
		return tl::unexpected(bytes.error());
	return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

Result<SshReader> SshReader::get_sub_reader(std::string_view field, std::size_t cap, std::string context)
{
	// The nested data starts after the 4-byte length.
	const std::size_t nested_offset = offset() + 4;
	auto bytes = get_string(field, cap);
	if (!bytes)
		return tl::unexpected(bytes.error());
	return SshReader(*bytes, std::move(context), nested_offset);
}

Result<std::span<const std::uint8_t>> SshReader::get_mpint(std::string_view field, std::size_t cap)
{
	const std::size_t start = position_;
	auto bytes = get_string(field, cap);
	if (!bytes)
		return tl::unexpected(bytes.error());

	auto reject = [&](std::string_view why) {
		position_ = start;
		return fail(Errc::invalid, "invalid " + context_ + ": " + std::string(field) + " at offset " +
		                               std::to_string(offset()) + " is " + std::string(why));
	};
	if (bytes->empty())
		return *bytes;
	if ((*bytes)[0] & 0x80)
		return reject("a negative mpint");
	if ((*bytes)[0] == 0) {
		// A leading zero is allowed only to clear the sign bit of the next byte.
		if (bytes->size() == 1 || ((*bytes)[1] & 0x80) == 0)
			return reject("an mpint with an unnecessary leading zero byte");
		return bytes->subspan(1);
	}
	return *bytes;
}

Result<std::span<const std::uint8_t>> SshReader::get_raw(std::string_view field, std::size_t count)
{
	if (remaining() < count)
		return truncated(field, count);
	const auto value = data_.subspan(position_, count);
	position_ += count;
	return value;
}

Result<void> SshReader::expect_end() const
{
	if (!empty())
		return fail(Errc::invalid, "invalid " + context_ + ": unexpected trailing data (" + std::to_string(remaining()) +
		                               " bytes) at offset " + std::to_string(offset()));
	return {};
}

}  // namespace jead
