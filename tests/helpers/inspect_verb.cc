// A verb program for process tests. It prints what the kernel says about
// the process it runs in, one "key: value" line each:
//   uid, gid, groups, nonewprivs   the Uid, Gid, Groups and NoNewPrivs lines of /proc/self/status
//   pid, pgid, sid                 getpid(), getpgrp() and getsid(0)
//   ctty                           "yes" when /dev/tty opens: there is a controlling terminal
//   fds                            the open descriptors listed in /proc/self/fd
//   cwd                            getcwd()
//   limit NAME                     soft and hard value of a /proc/self/limits row
// With --burn-cpu it then spins until a CPU time limit kills it, or exits
// with status 3 after 30 seconds of wall-clock time.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

namespace {

void print_status_lines()
{
	std::ifstream status("/proc/self/status");
	std::string line;
	while (std::getline(status, line)) {
		for (const char* key : {"Uid:", "Gid:", "Groups:", "NoNewPrivs:"}) {
			if (line.rfind(key, 0) != 0)
				continue;
			std::string name(key, std::strlen(key) - 1);
			for (char& c : name)
				c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
			std::istringstream values(line.substr(std::strlen(key)));
			std::string value;
			std::string joined;
			while (values >> value)
				joined += (joined.empty() ? "" : " ") + value;
			std::cout << name << ": " << joined << "\n";
		}
	}
}

void print_descriptors()
{
	DIR* dir = ::opendir("/proc/self/fd");
	if (dir == nullptr) {
		std::cout << "fds: unreadable\n";
		return;
	}
	const int own = ::dirfd(dir);
	std::set<int> fds;
	while (const dirent* entry = ::readdir(dir)) {
		if (entry->d_name[0] == '.')
			continue;
		const int fd = std::atoi(entry->d_name);
		if (fd != own)
			fds.insert(fd);
	}
	::closedir(dir);
	std::cout << "fds:";
	for (const int fd : fds)
		std::cout << " " << fd;
	std::cout << "\n";
}

// Rows of /proc/self/limits are "%-25s %-20s %-20s %-10s": a name padded to
// 25 columns, then the soft limit, the hard limit and the unit.
void print_limits()
{
	std::ifstream limits("/proc/self/limits");
	std::string line;
	std::getline(limits, line);   // the header row
	while (std::getline(limits, line)) {
		if (line.size() < 26)
			continue;
		std::string name = line.substr(0, 25);
		name.erase(name.find_last_not_of(' ') + 1);
		std::istringstream values(line.substr(26));
		std::string soft, hard;
		values >> soft >> hard;
		std::cout << "limit " << name << ": " << soft << " " << hard << "\n";
	}
}

}  // namespace

int main(int argc, char** argv)
{
	print_status_lines();
	std::cout << "pid: " << ::getpid() << "\n";
	std::cout << "pgid: " << ::getpgrp() << "\n";
	std::cout << "sid: " << ::getsid(0) << "\n";
	const int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	std::cout << "ctty: " << (tty >= 0 ? "yes" : "no") << "\n";
	if (tty >= 0)
		::close(tty);
	print_descriptors();
	char cwd[PATH_MAX];
	std::cout << "cwd: " << (::getcwd(cwd, sizeof cwd) ? cwd : "unknown") << "\n";
	print_limits();
	std::cout << std::flush;

	if (argc > 1 && std::string(argv[1]) == "--burn-cpu") {
		const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
		volatile unsigned long counter = 0;
		while (std::chrono::steady_clock::now() < deadline)
			counter = counter + 1;
		return 3;
	}
	return 0;
}
