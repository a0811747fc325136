#include "server/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace jead {

namespace {

std::string describe(const ListenAddress& address)
{
	const bool ipv6 = address.host.find(':') != std::string::npos;
	return (ipv6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

}  // namespace

Result<int> open_listener(const ListenAddress& address, int backlog)
{
	sockaddr_storage storage{};
	socklen_t length = 0;
	auto* in = reinterpret_cast<sockaddr_in*>(&storage);
	auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
	if (::inet_pton(AF_INET, address.host.c_str(), &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(address.port);
		length = sizeof *in;
	} else if (::inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(address.port);
		length = sizeof *in6;
	} else {
		return fail(Errc::invalid, "cannot listen on " + describe(address) + ": not a numeric IPv4 or IPv6 address");
	}

	const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(Errc::io, "cannot create a socket for " + describe(address) + ": " + std::strerror(errno));
	const auto failed = [&](const char* step) {
		const std::string message =
			std::string("cannot ") + step + " " + describe(address) + ": " + std::strerror(errno);
		::close(fd);
		return fail(Errc::io, message);
	};

	const int one = 1;
	if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
		return failed("set SO_REUSEADDR on");
	// As sshd does: an IPv6 listener does not also take IPv4 connections,
	// so "[::]:22" means IPv6 only whatever net.ipv6.bindv6only says.
	if (storage.ss_family == AF_INET6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
		return failed("set IPV6_V6ONLY on");
	if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0)
		return failed("bind");
	if (::listen(fd, backlog) != 0)
		return failed("listen on");
	return fd;
}

int accept_connection_fd(int listen_fd)
{
	const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		return fd;
	// The peer may have reset the connection while it waited in the
	// backlog; that, and nothing pending, is no error of jead's.
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
		return -1;

	// A failure such as EMFILE repeats at every wakeup while the
	// connection waits, so it is logged at most once a second.
	static std::time_t last_logged = 0;
	static int repeats = 0;
	const std::time_t now = std::time(nullptr);
	if (now == last_logged) {
		++repeats;
		return -1;
	}
	spdlog::error("accept failed: {}; {} failures since the last logged one were not logged", std::strerror(errno),
	              repeats);
	last_logged = now;
	repeats = 0;
	return -1;
}

}  // namespace jead
