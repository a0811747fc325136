// The configured revocation lists, reloaded when their files change. A
// list that is missing, unreadable or malformed denies everything (fail
// closed) until it is fixed; it never falls back to an empty list.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "server/cert/revocation.h"

namespace jead {

class RevocationWatch {
public:
	explicit RevocationWatch(std::vector<std::filesystem::path> files);

	// Replaces the list of files (after a reload); files named before keep
	// their loaded state.
	void set_files(const std::vector<std::filesystem::path>& files);

	// Stats every file, reloads those whose inode, size or modification
	// time changed, then checks `cert` against all lists. Returns an error
	// with the reason when the certificate is revoked or a list is unusable.
	// Logins and commands check with `Freshness::now`; the periodic check of
	// live sessions uses `Freshness::recent`, which stats the files at most
	// once per second.
	enum class Freshness { now, recent };
	Result<void> check(const Certificate& cert, Freshness freshness = Freshness::now);

private:
	struct Entry {
		std::filesystem::path file;
		bool stat_ok = false;
		struct stat last {};
		std::optional<RevocationList> list;
		std::string error;
	};

	void refresh(Entry& entry);

	std::vector<Entry> entries_;
	std::chrono::steady_clock::time_point refreshed_at_{};
};

}  // namespace jead
