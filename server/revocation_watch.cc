#include "server/revocation_watch.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace jead {

namespace {

bool same_file_state(const struct stat& a, const struct stat& b)
{
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
	       a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
	       a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

}  // namespace

RevocationWatch::RevocationWatch(std::vector<std::filesystem::path> files)
{
	for (auto& file : files) {
		Entry entry;
		entry.file = std::move(file);
		entries_.push_back(std::move(entry));
	}
}

void RevocationWatch::set_files(const std::vector<std::filesystem::path>& files)
{
	std::vector<Entry> entries;
	for (const auto& file : files) {
		const auto old = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.file == file; });
		if (old != entries_.end()) {
			entries.push_back(std::move(*old));
		} else {
			Entry entry;
			entry.file = file;
			entries.push_back(std::move(entry));
		}
	}
	entries_ = std::move(entries);
}

void RevocationWatch::refresh(Entry& entry)
{
	struct stat now {};
	if (::stat(entry.file.c_str(), &now) != 0) {
		const std::string error = std::string("cannot read it: ") + std::strerror(errno);
		if (entry.error != error)
			spdlog::error("revocation list {}: {}; refusing every login and command until it is fixed",
			              entry.file.string(), error);
		entry.stat_ok = false;
		entry.list.reset();
		entry.error = error;
		return;
	}
	if (entry.stat_ok && same_file_state(entry.last, now))
		return;

	entry.stat_ok = true;
	entry.last = now;
	auto list = load_revocation_list(entry.file.string());
	if (!list) {
		entry.list.reset();
		entry.error = list.error().message;
		spdlog::error("revocation list {}: {}; refusing every login and command until it is fixed",
		              entry.file.string(), entry.error);
		return;
	}
	entry.list = std::move(*list);
	entry.error.clear();
	spdlog::info("revocation list {} loaded", entry.file.string());
}

Result<void> RevocationWatch::check(const Certificate& cert, Freshness freshness)
{
	const auto now = std::chrono::steady_clock::now();
	const bool refresh_files = freshness == Freshness::now || now - refreshed_at_ >= std::chrono::seconds(1);
	if (refresh_files)
		refreshed_at_ = now;
	for (auto& entry : entries_) {
		if (refresh_files)
			refresh(entry);
		if (!entry.list)
			return fail(Errc::denied, "revocation list " + entry.file.string() + " is unusable (" + entry.error +
			                              "), so jead refuses everything until it is fixed");
		if (auto r = entry.list->check(cert); !r)
			return r;
	}
	return {};
}

}  // namespace jead
