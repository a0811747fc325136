#include "server/cert/source_address.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/escape.h"

namespace jead {

namespace {

// An IPv4 or IPv6 network in the family it was written in, except that
// IPv4-mapped IPv6 addresses are stored as IPv4.
struct Network {
	bool ipv6 = false;
	std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4
	unsigned prefix = 0;
};

// Longest valid textual IPv6 address with an embedded IPv4 part, plus "/128".
constexpr std::size_t kMaxEntryLength = 45 + 4;
// Enough entries for any real list; a cap so one option cannot be huge.
constexpr std::size_t kMaxEntries = 256;

constexpr std::array<std::uint8_t, 12> kIpv4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_ipv4_mapped(const std::array<std::uint8_t, 16>& bytes)
{
	for (std::size_t i = 0; i < kIpv4MappedPrefix.size(); ++i)
		if (bytes[i] != kIpv4MappedPrefix[i])
			return false;
	return true;
}

// Parses an address with inet_pton, which accepts only numeric forms.
bool parse_address(const std::string& text, Network& out)
{
	if (inet_pton(AF_INET, text.c_str(), out.bytes.data()) == 1) {
		out.ipv6 = false;
		out.prefix = 32;
		return true;
	}
	if (inet_pton(AF_INET6, text.c_str(), out.bytes.data()) == 1) {
		out.ipv6 = true;
		out.prefix = 128;
		return true;
	}
	return false;
}

// Rewrites ::ffff:a.b.c.d/N (N >= 96) as a.b.c.d/(N - 96).
void unmap_ipv4(Network& network)
{
	if (!network.ipv6 || network.prefix < 96 || !is_ipv4_mapped(network.bytes))
		return;
	std::array<std::uint8_t, 16> ipv4{};
	for (int i = 0; i < 4; ++i)
		ipv4[i] = network.bytes[12 + i];
	network.bytes = ipv4;
	network.ipv6 = false;
	network.prefix -= 96;
}

bool bits_match(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b, unsigned prefix)
{
	const unsigned whole = prefix / 8;
	for (unsigned i = 0; i < whole; ++i)
		if (a[i] != b[i])
			return false;
	const unsigned rest = prefix % 8;
	if (rest == 0)
		return true;
	const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool host_bits_clear(const Network& network)
{
	const unsigned total = network.ipv6 ? 128 : 32;
	for (unsigned bit = network.prefix; bit < total; ++bit)
		if (network.bytes[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

Result<unsigned> parse_prefix(std::string_view digits, unsigned max, std::string_view entry)
{
	const auto bad = [&]() {
		return fail(Errc::invalid, "invalid source-address entry " + escape_untrusted(entry) +
		                               ": prefix length must be a number from 0 to " + std::to_string(max));
	};
	if (digits.empty() || digits.size() > 3)
		return bad();
	unsigned value = 0;
	for (char c : digits) {
		if (c < '0' || c > '9')
			return bad();
		value = value * 10 + static_cast<unsigned>(c - '0');
	}
	if (value > max)
		return bad();
	return value;
}

Result<Network> parse_entry(std::string_view entry)
{
	if (entry.empty())
		return fail(Errc::invalid, "invalid source-address list: empty entry (check for a doubled or trailing comma)");
	if (entry.size() > kMaxEntryLength)
		return fail(Errc::invalid, "invalid source-address entry " + escape_untrusted(entry) + ": too long");

	const std::size_t slash = entry.find('/');
	Network network;
	if (!parse_address(std::string(entry.substr(0, slash)), network))
		return fail(Errc::invalid, "invalid source-address entry " + escape_untrusted(entry) +
		                               ": not a numeric IPv4 or IPv6 address");
	if (slash != std::string_view::npos) {
		auto prefix = parse_prefix(entry.substr(slash + 1), network.prefix, entry);
		if (!prefix)
			return tl::unexpected(prefix.error());
		network.prefix = *prefix;
	}
	if (!host_bits_clear(network))
		return fail(Errc::invalid, "invalid source-address entry " + escape_untrusted(entry) +
		                               ": address has bits set after the prefix length");
	unmap_ipv4(network);
	return network;
}

Result<std::vector<Network>> parse_list(std::string_view list)
{
	std::vector<Network> networks;
	std::size_t start = 0;
	while (true) {
		if (networks.size() == kMaxEntries)
			return fail(Errc::limit, "invalid source-address list: more than " + std::to_string(kMaxEntries) +
			                             " entries");
		const std::size_t comma = list.find(',', start);
		auto network = parse_entry(list.substr(start, comma == std::string_view::npos ? list.npos : comma - start));
		if (!network)
			return tl::unexpected(network.error());
		networks.push_back(*network);
		if (comma == std::string_view::npos)
			break;
		start = comma + 1;
	}
	return networks;
}

}  // namespace

Result<void> validate_source_address_list(std::string_view option_value)
{
	auto networks = parse_list(option_value);
	if (!networks)
		return tl::unexpected(networks.error());
	return {};
}

Result<bool> source_address_allows(std::string_view option_value, std::string_view client_ip)
{
	auto networks = parse_list(option_value);
	if (!networks)
		return tl::unexpected(networks.error());

	const std::string_view without_zone = client_ip.substr(0, client_ip.find('%'));
	Network client;
	if (without_zone.size() > kMaxEntryLength || !parse_address(std::string(without_zone), client))
		return fail(Errc::invalid, "invalid client address " + escape_untrusted(client_ip) +
		                               ": not a numeric IPv4 or IPv6 address");
	unmap_ipv4(client);

	bool allowed = false;
	for (const Network& network : *networks)
		if (network.ipv6 == client.ipv6 && bits_match(network.bytes, client.bytes, network.prefix))
			allowed = true;
	return allowed;
}

}  // namespace jead
