// source_address_allows and validate_source_address_list.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "server/cert/source_address.h"

using namespace jead;

TEST_CASE("source-address matches table", "[cert]")
{
	struct Case {
		std::string list;
		std::string client;
		bool allowed;
	};
	const std::vector<Case> cases = {
		{"10.0.0.0/8", "10.1.2.3", true},
		{"10.0.0.0/8", "11.0.0.1", false},
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.8", false},
		{"192.0.2.0/25", "192.0.2.127", true},
		{"192.0.2.0/25", "192.0.2.128", false},
		{"0.0.0.0/0", "203.0.113.9", true},
		{"10.0.0.0/8,192.0.2.0/24", "192.0.2.200", true},
		{"2001:db8::/32", "2001:db8:1::5", true},
		{"2001:db8::/32", "2001:db9::5", false},
		{"::1", "::1", true},
		{"::1", "::2", false},
		{"fe80::/10", "fe80::1%eth0", true},
		// IPv4-mapped clients match IPv4 entries, and mapped entries match IPv4 clients.
		{"10.0.0.0/8", "::ffff:10.9.8.7", true},
		{"10.0.0.0/8", "::ffff:11.9.8.7", false},
		{"::ffff:10.0.0.0/104", "10.20.30.40", true},
		// Families do not mix otherwise.
		{"::/0", "192.0.2.1", false},
		{"0.0.0.0/0", "2001:db8::1", false},
	};
	for (const Case& c : cases) {
		INFO(c.list << " / " << c.client);
		auto allowed = source_address_allows(c.list, c.client);
		REQUIRE(allowed);
		CHECK(*allowed == c.allowed);
	}
}

TEST_CASE("source-address rejects malformed lists", "[cert]")
{
	struct Case {
		std::string list;
		std::string message;
	};
	const std::vector<Case> cases = {
		{"", "invalid source-address list: empty entry (check for a doubled or trailing comma)"},
		{"10.0.0.0/8,", "invalid source-address list: empty entry (check for a doubled or trailing comma)"},
		{"10.0.0.0/33", "invalid source-address entry \"10.0.0.0/33\": prefix length must be a number from 0 to 32"},
		{"::/129", "invalid source-address entry \"::/129\": prefix length must be a number from 0 to 128"},
		{"10.0.0.0/", "invalid source-address entry \"10.0.0.0/\": prefix length must be a number from 0 to 32"},
		{"10.0.0.0/+8", "invalid source-address entry \"10.0.0.0/+8\": prefix length must be a number from 0 to 32"},
		{"10.0.0.1/8", "invalid source-address entry \"10.0.0.1/8\": address has bits set after the prefix length"},
		{"example.com", "invalid source-address entry \"example.com\": not a numeric IPv4 or IPv6 address"},
		{"10.0.0.*", "invalid source-address entry \"10.0.0.*\": not a numeric IPv4 or IPv6 address"},
		{" 10.0.0.1", "invalid source-address entry \" 10.0.0.1\": not a numeric IPv4 or IPv6 address"},
	};
	for (const Case& c : cases) {
		INFO(c.list);
		auto valid = validate_source_address_list(c.list);
		REQUIRE_FALSE(valid);
		CHECK(valid.error().message == c.message);
		auto allowed = source_address_allows(c.list, "10.0.0.1");
		REQUIRE_FALSE(allowed);
		CHECK(allowed.error().message == c.message);
	}
}

TEST_CASE("source-address rejects malformed client", "[cert]")
{
	auto allowed = source_address_allows("10.0.0.0/8", "10.0.0");
	REQUIRE_FALSE(allowed);
	CHECK(allowed.error().message == "invalid client address \"10.0.0\": not a numeric IPv4 or IPv6 address");
}
