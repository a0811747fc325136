// The "source-address" certificate critical option: a comma-separated
// list of IPv4 and IPv6 addresses or CIDR blocks (PROTOCOL.certkeys).
#pragma once

#include <string_view>

#include "common/result.h"

namespace jead {

// Checks the syntax of a source-address list without a client address.
// Entries are "ADDRESS" (meaning /32 or /128) or "ADDRESS/PREFIX", with no
// spaces. An entry with bits set after its prefix (10.0.0.1/8) is an
// error, as in OpenSSH, because it usually hides a typing mistake.
Result<void> validate_source_address_list(std::string_view option_value);

// Returns whether `client_ip` falls in one of the list's blocks. An IPv6
// client in ::ffff:0:0/96 (an IPv4-mapped address) is compared as IPv4;
// other IPv6 clients match only IPv6 entries. A zone suffix on the client
// ("fe80::1%eth0") is ignored. A malformed list or client address is an
// error, so a caller can fail closed.
Result<bool> source_address_allows(std::string_view option_value, std::string_view client_ip);

}  // namespace jead
