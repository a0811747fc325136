// Named caps for everything the roles module reads: command lines typed by
// clients and role files written by administrators. Every loop over such
// input is bounded by one of these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace jead::limits {

// Command lines (untrusted, from the SSH client).
inline constexpr std::size_t kMaxCommandLineBytes = 8 * 1024;
inline constexpr std::size_t kMaxCommandWords = 64;

// Role files (trusted author, but still parsed defensively).
inline constexpr std::size_t kMaxRoleFileBytes = 1024 * 1024;
inline constexpr std::size_t kMaxRoleFilesPerDir = 256;
inline constexpr std::size_t kMaxNameBytes = 64;            // role, verb and argument names
inline constexpr std::size_t kMaxVerbsPerRole = 128;
inline constexpr std::size_t kMaxArgsPerVerb = 16;
inline constexpr std::size_t kMaxCommandElements = 64;      // program plus template elements
inline constexpr std::size_t kMaxTestsPerRole = 512;
inline constexpr std::size_t kMaxEnumValues = 256;
inline constexpr std::size_t kMaxPathPrefixes = 32;
inline constexpr std::size_t kMaxEnvironmentEntries = 64;
inline constexpr std::size_t kMaxTextBytes = 4096;          // descriptions, literals, environment values
inline constexpr std::size_t kDefaultVariadicMaxCount = 16;

// Typed arguments.
inline constexpr std::size_t kMaxPatternBytes = 512;
inline constexpr std::size_t kDefaultStringMaxLength = 256;
// Upper bound for a string argument's max_length, which also bounds the
// length of the values a pattern is matched against.
inline constexpr std::size_t kMaxStringMaxLength = 1024;
// Memory RE2 may use for one compiled pattern and its match cache; this is
// RE2's own default. A pattern that needs more is rejected at load.
inline constexpr std::int64_t kMaxPatternMemoryBytes = 8 << 20;
inline constexpr std::size_t kMaxPathBytes = 4096;           // PATH_MAX on Linux
inline constexpr std::size_t kMaxPathComponents = 256;
inline constexpr std::size_t kMaxHostnameBytes = 253;        // without a trailing dot
inline constexpr std::size_t kMaxHostnameLabelBytes = 63;

}  // namespace jead::limits
