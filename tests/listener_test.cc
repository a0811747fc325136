// open_listener() and accept_connection_fd() on real loopback sockets:
// IPv4 and IPv6, the socket options, the backlog, and accept4's flags.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <string>

#include "server/listener.h"
#include "tests/support.h"

using namespace jead;
using namespace jead::test;

namespace {

// The port the kernel picked for a socket bound to port 0.
std::uint16_t local_port(int fd)
{
	sockaddr_storage address{};
	socklen_t length = sizeof address;
	REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
	if (address.ss_family == AF_INET6)
		return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
	return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

int socket_option(int fd, int level, int name)
{
	int value = -1;
	socklen_t length = sizeof value;
	REQUIRE(::getsockopt(fd, level, name, &value, &length) == 0);
	return value;
}

// Connects to `host`:`port`, blocking, and returns the socket.
int connect_to(const std::string& host, std::uint16_t port)
{
	sockaddr_storage address{};
	socklen_t length = 0;
	auto* in = reinterpret_cast<sockaddr_in*>(&address);
	auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
	if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		length = sizeof *in;
	} else {
		REQUIRE(::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		length = sizeof *in6;
	}
	const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	INFO("connect: " << std::strerror(errno));
	REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0);
	return fd;
}

// The backlog of the listening socket on `port`, from the Send-Q column
// of ss, or -1.
long listen_backlog_of(std::uint16_t port)
{
	const auto listing = run_program({"ss", "-Hltn", "sport = :" + std::to_string(port)});
	std::istringstream fields(listing.out);
	std::string state;
	long queued = -1;
	long backlog = -1;
	fields >> state >> queued >> backlog;
	return state == "LISTEN" ? backlog : -1;
}

bool ipv6_loopback_available()
{
	const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	sockaddr_in6 address{};
	address.sin6_family = AF_INET6;
	address.sin6_addr = in6addr_loopback;
	const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
	::close(fd);
	return ok;
}

// Opens a listener on `host`, checks its options, backlog and one accepted
// connection.
void check_listener(const std::string& host, int family)
{
	auto listener = open_listener({host, 0}, 77);
	INFO("open_listener: " << (listener ? "" : listener.error().message));
	REQUIRE(listener);
	const int fd = *listener;
	const std::uint16_t port = local_port(fd);

	CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
	CHECK(socket_option(fd, SOL_SOCKET, SO_REUSEADDR) == 1);
	CHECK(socket_option(fd, SOL_SOCKET, SO_DOMAIN) == family);
	if (family == AF_INET6)
		CHECK(socket_option(fd, IPPROTO_IPV6, IPV6_V6ONLY) == 1);
	CHECK(listen_backlog_of(port) == 77);

	// Nothing pending: no descriptor and no blocking.
	CHECK(accept_connection_fd(fd) == -1);

	const int client = connect_to(host, port);
	const int accepted = accept_connection_fd(fd);
	CHECK(accepted >= 0);
	if (accepted >= 0) {
		CHECK((::fcntl(accepted, F_GETFD) & FD_CLOEXEC) != 0);
		CHECK((::fcntl(accepted, F_GETFL) & O_NONBLOCK) != 0);
		::close(accepted);
	}
	::close(client);
	::close(fd);
}

}  // namespace

TEST_CASE("listener on IPv4 loopback", "[listener]")
{
	check_listener("127.0.0.1", AF_INET);
}

TEST_CASE("listener on IPv6 loopback", "[listener]")
{
	if (!ipv6_loopback_available()) {
		WARN("skipped: this host cannot bind ::1");
		return;
	}
	check_listener("::1", AF_INET6);
}

TEST_CASE("listener errors name the address", "[listener]")
{
	const auto bad = open_listener({"localhost", 2222}, 10);
	REQUIRE_FALSE(bad);
	CHECK(bad.error().message == "cannot listen on localhost:2222: not a numeric IPv4 or IPv6 address");

	// A second listener on a port in use fails at bind.
	auto first = open_listener({"127.0.0.1", 0}, 10);
	REQUIRE(first);
	const std::uint16_t port = local_port(*first);
	const auto second = open_listener({"127.0.0.1", port}, 10);
	REQUIRE_FALSE(second);
	CHECK(second.error().message == "cannot bind 127.0.0.1:" + std::to_string(port) + ": Address already in use");
	::close(*first);
}
