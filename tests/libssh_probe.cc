#include "tests/libssh_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

namespace jead::test {

namespace {

constexpr long kLibsshTimeoutSeconds = 10;
constexpr int kChannelReadTimeoutMs = 10'000;
// RFC 4253 section 6.1: implementations must accept packets of 35000 bytes.
constexpr std::uint32_t kMaxPacketLength = 35'000;
// RFC 4253 section 4.2 lets a server send other lines before its version
// line, and a probe reads at most this many.
constexpr int kMaxPreVersionLines = 16;
constexpr std::size_t kMaxVersionLineLength = 255;
constexpr std::uint8_t kMsgDisconnect = 1;
constexpr std::uint8_t kMsgServiceRequest = 5;
constexpr std::uint8_t kMsgServiceAccept = 6;
constexpr std::uint8_t kMsgKexInit = 20;
constexpr std::uint8_t kMsgNewKeys = 21;
constexpr std::uint8_t kMsgKexEcdhInit = 30;
constexpr std::uint8_t kMsgKexEcdhReply = 31;
constexpr std::uint8_t kMsgUserauthSuccess = 52;
constexpr std::uint8_t kMsgChannelOpen = 90;
constexpr std::uint8_t kMsgChannelOpenConfirmation = 91;
constexpr std::uint8_t kMsgChannelOpenFailure = 92;
// Packets read after NEWKEYS before the probe gives up waiting for a
// decisive reply.
constexpr int kMaxPostKexPackets = 16;
constexpr std::string_view kClientVersion = "SSH-2.0-jead_test_probe\r\n";

struct SessionDeleter {
	void operator()(ssh_session session) const
	{
		ssh_disconnect(session);
		ssh_free(session);
	}
};
struct KeyDeleter {
	void operator()(ssh_key key) const { ssh_key_free(key); }
};
struct ChannelDeleter {
	void operator()(ssh_channel channel) const
	{
		ssh_channel_close(channel);
		ssh_channel_free(channel);
	}
};
using SessionPtr = std::unique_ptr<std::remove_pointer_t<ssh_session>, SessionDeleter>;
using KeyPtr = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyDeleter>;
using ChannelPtr = std::unique_ptr<std::remove_pointer_t<ssh_channel>, ChannelDeleter>;

// Runs `command` on an authenticated session and collects its stdout and
// exit status.
void run_probe_command(ssh_session session, const std::string& command, ProbeLogin& result)
{
	ChannelPtr channel(ssh_channel_new(session));
	if (!channel || ssh_channel_open_session(channel.get()) != SSH_OK) {
		result.error = std::string("channel open failed: ") + ssh_get_error(session);
		return;
	}
	if (ssh_channel_request_exec(channel.get(), command.c_str()) != SSH_OK) {
		result.error = std::string("exec request failed: ") + ssh_get_error(session);
		return;
	}

	const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kChannelReadTimeoutMs);
	std::array<char, 4096> buffer{};
	while (std::chrono::steady_clock::now() < deadline) {
		const int n = ssh_channel_read_timeout(channel.get(), buffer.data(), buffer.size(), 0, 1000);
		if (n > 0) {
			result.output.append(buffer.data(), static_cast<std::size_t>(n));
			continue;
		}
		if (n < 0) {
			result.error = std::string("channel read failed: ") + ssh_get_error(session);
			return;
		}
		if (ssh_channel_is_eof(channel.get()) || ssh_channel_is_closed(channel.get()))
			break;
	}
	// The exit-status request may arrive after EOF, so libssh waits for it
	// here, bounded by the session timeout.
	result.exit_status = ssh_channel_get_exit_status(channel.get());
}

// A TCP connection to 127.0.0.1 whose reads all end at one deadline.
class RawConnection {
public:
	RawConnection(std::uint16_t port, std::chrono::steady_clock::time_point deadline) : deadline_(deadline)
	{
		fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd_ < 0) {
			error_ = std::string("socket: ") + std::strerror(errno);
			return;
		}
		sockaddr_in address{};
		address.sin_family = AF_INET;
		address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		address.sin_port = htons(port);
		if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
			error_ = std::string("connect: ") + std::strerror(errno);
	}
	~RawConnection()
	{
		if (fd_ >= 0)
			::close(fd_);
	}
	RawConnection(const RawConnection&) = delete;
	RawConnection& operator=(const RawConnection&) = delete;

	const std::string& error() const { return error_; }
	bool closed_by_peer() const { return closed_by_peer_; }

	std::uint16_t local_port() const
	{
		sockaddr_in address{};
		socklen_t length = sizeof address;
		if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
			return 0;
		return ntohs(address.sin_port);
	}

	bool send_all(std::string_view data)
	{
		std::size_t sent = 0;
		while (sent < data.size()) {
			const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				error_ = std::string("send: ") + std::strerror(errno);
				return false;
			}
			sent += static_cast<std::size_t>(n);
		}
		return true;
	}

	// Reads exactly `size` bytes into `out`. Returns false on close, error
	// or the deadline.
	bool read_exact(std::size_t size, std::string& out)
	{
		out.clear();
		while (out.size() < size) {
			if (!read_some(size - out.size(), out))
				return false;
		}
		return true;
	}

	// Reads one line ending in LF, without the CR LF.
	bool read_line(std::string& line)
	{
		line.clear();
		std::string byte;
		while (line.size() <= kMaxVersionLineLength) {
			if (!read_exact(1, byte))
				return false;
			if (byte[0] == '\n') {
				if (!line.empty() && line.back() == '\r')
					line.pop_back();
				return true;
			}
			line += byte;
		}
		error_ = "line longer than " + std::to_string(kMaxVersionLineLength) + " bytes";
		return false;
	}

	// Reads and drops bytes until the peer closes or the deadline passes,
	// and returns whether the peer closed.
	bool drain_until_closed()
	{
		std::string ignored;
		while (read_some(4096, ignored))
			ignored.clear();
		return closed_by_peer_;
	}

private:
	bool read_some(std::size_t max, std::string& out)
	{
		const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
		if (left.count() <= 0) {
			error_ = "timed out";
			return false;
		}
		pollfd p{fd_, POLLIN, 0};
		const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
		if (ready < 0 && errno == EINTR)
			return true;
		if (ready <= 0) {
			error_ = "timed out";
			return false;
		}
		std::array<char, 4096> buffer{};
		const ssize_t n = ::recv(fd_, buffer.data(), std::min(max, buffer.size()), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			closed_by_peer_ = true;
			error_ = "connection closed by the server";
			return false;
		}
		if (n < 0) {
			error_ = std::string("recv: ") + std::strerror(errno);
			return false;
		}
		out.append(buffer.data(), static_cast<std::size_t>(n));
		return true;
	}

	int fd_ = -1;
	std::chrono::steady_clock::time_point deadline_;
	std::string error_;
	bool closed_by_peer_ = false;
};

std::uint32_t read_u32(std::string_view bytes, std::size_t offset)
{
	std::uint32_t value = 0;
	for (std::size_t i = 0; i < 4; ++i)
		value = (value << 8) | static_cast<std::uint8_t>(bytes[offset + i]);
	return value;
}

void append_u32(std::string& out, std::uint32_t value)
{
	for (int shift = 24; shift >= 0; shift -= 8)
		out += static_cast<char>((value >> shift) & 0xFF);
}

// Reads the server's version line, skipping the other lines RFC 4253
// section 4.2 allows before it.
bool read_server_version(RawConnection& connection, std::string& version)
{
	for (int line = 0; line < kMaxPreVersionLines; ++line) {
		if (!connection.read_line(version))
			return false;
		if (version.rfind("SSH-", 0) == 0)
			return true;
	}
	return false;
}

// Reads one unencrypted binary packet (RFC 4253 section 6) and returns its
// payload.
bool read_plain_packet(RawConnection& connection, std::string& payload, std::string& error)
{
	std::string header;
	if (!connection.read_exact(5, header)) {
		error = "reading a packet header: " + connection.error();
		return false;
	}
	const std::uint32_t packet_length = read_u32(header, 0);
	const auto padding_length = static_cast<std::uint8_t>(header[4]);
	if (packet_length > kMaxPacketLength || packet_length < 1u + padding_length) {
		error = "invalid packet length " + std::to_string(packet_length) + " with padding " +
		        std::to_string(padding_length);
		return false;
	}
	std::string rest;
	if (!connection.read_exact(packet_length - 1, rest)) {
		error = "reading a packet body: " + connection.error();
		return false;
	}
	payload = rest.substr(0, packet_length - 1 - padding_length);
	return true;
}

std::vector<std::string> split_name_list(std::string_view list)
{
	std::vector<std::string> names;
	while (!list.empty()) {
		const auto comma = list.find(',');
		names.emplace_back(list.substr(0, comma));
		if (comma == std::string_view::npos)
			break;
		list.remove_prefix(comma + 1);
	}
	return names;
}

// Builds a binary packet (RFC 4253 section 6) padded to `block` bytes,
// with zero padding and without a MAC.
std::string padded_packet(std::string_view payload, std::size_t block)
{
	std::size_t padding = block - (5 + payload.size()) % block;
	if (padding < 4)
		padding += block;
	std::string packet;
	append_u32(packet, static_cast<std::uint32_t>(1 + payload.size() + padding));
	packet += static_cast<char>(padding);
	packet += payload;
	packet.append(padding, '\0');
	return packet;
}

// Before NEWKEYS the block size is 8 and there is no MAC.
std::string plain_packet(std::string_view payload)
{
	return padded_packet(payload, 8);
}

void append_string(std::string& out, std::string_view value)
{
	append_u32(out, static_cast<std::uint32_t>(value.size()));
	out += value;
}

// Encodes an unsigned big-endian number as an SSH mpint (RFC 4251 section 5).
std::string mpint_string(std::string_view big_endian)
{
	const auto first = big_endian.find_first_not_of('\0');
	std::string digits = first == std::string_view::npos ? std::string() : std::string(big_endian.substr(first));
	if (!digits.empty() && (static_cast<std::uint8_t>(digits[0]) & 0x80))
		digits.insert(digits.begin(), '\0');
	std::string out;
	append_string(out, digits);
	return out;
}

std::string sha256_digest(std::string_view data)
{
	std::string digest(32, '\0');
	unsigned int length = 0;
	EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(digest.data()), &length, EVP_sha256(), nullptr);
	return digest;
}

// Reads SSH strings from a payload, with every length checked against the
// bytes left.
class PayloadReader {
public:
	explicit PayloadReader(std::string_view data) : data_(data) {}

	bool get_string(std::string& out)
	{
		if (data_.size() < 4)
			return false;
		const std::uint32_t length = read_u32(data_, 0);
		if (length > data_.size() - 4)
			return false;
		out = std::string(data_.substr(4, length));
		data_.remove_prefix(4 + length);
		return true;
	}

	bool skip(std::size_t count)
	{
		if (count > data_.size())
			return false;
		data_.remove_prefix(count);
		return true;
	}

private:
	std::string_view data_;
};

struct CipherContextDeleter {
	void operator()(EVP_CIPHER_CTX* context) const { EVP_CIPHER_CTX_free(context); }
};
struct PkeyDeleter {
	void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct PkeyContextDeleter {
	void operator()(EVP_PKEY_CTX* context) const { EVP_PKEY_CTX_free(context); }
};

// One direction of the transport after NEWKEYS: aes128-ctr (RFC 4344) with
// hmac-sha2-256 (RFC 6668) over the sequence number and the plain packet.
class PacketProtection {
public:
	bool init(const std::string& key, const std::string& iv, const std::string& mac_key, bool encrypt)
	{
		context_.reset(EVP_CIPHER_CTX_new());
		mac_key_ = mac_key;
		return context_ &&
		       EVP_CipherInit_ex(context_.get(), EVP_aes_128_ctr(), nullptr,
		                         reinterpret_cast<const unsigned char*>(key.data()),
		                         reinterpret_cast<const unsigned char*>(iv.data()), encrypt ? 1 : 0) == 1;
	}

	// CTR mode keeps its counter across packets, so calls must follow the
	// byte order of the stream.
	std::string apply(std::string_view data)
	{
		std::string out(data.size(), '\0');
		int length = 0;
		EVP_CipherUpdate(context_.get(), reinterpret_cast<unsigned char*>(out.data()), &length,
		                 reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
		return out;
	}

	std::string mac(std::uint32_t sequence, std::string_view plain_packet) const
	{
		std::string input;
		append_u32(input, sequence);
		input += plain_packet;
		std::string out(32, '\0');
		unsigned int length = 0;
		HMAC(EVP_sha256(), mac_key_.data(), static_cast<int>(mac_key_.size()),
		     reinterpret_cast<const unsigned char*>(input.data()), input.size(),
		     reinterpret_cast<unsigned char*>(out.data()), &length);
		return out;
	}

private:
	std::unique_ptr<EVP_CIPHER_CTX, CipherContextDeleter> context_;
	std::string mac_key_;
};


std::string client_kexinit_payload()
{
	std::string payload(1, static_cast<char>(kMsgKexInit));
	payload.append(16, '\x5a');   // the cookie: any value will do for a probe
	for (std::string_view list : {"curve25519-sha256", "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256",
	                              "hmac-sha2-256", "none", "none", "", ""})
		append_string(payload, list);
	payload += '\0';            // first_kex_packet_follows
	append_u32(payload, 0);     // reserved
	return payload;
}

// The client's half of a curve25519-sha256 exchange (RFC 8731).
struct X25519Exchange {
	std::unique_ptr<EVP_PKEY, PkeyDeleter> key;
	std::string public_key;

	bool generate()
	{
		std::unique_ptr<EVP_PKEY_CTX, PkeyContextDeleter> context(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
		EVP_PKEY* generated = nullptr;
		if (!context || EVP_PKEY_keygen_init(context.get()) != 1 || EVP_PKEY_keygen(context.get(), &generated) != 1)
			return false;
		key.reset(generated);
		public_key.assign(32, '\0');
		std::size_t length = public_key.size();
		return EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(public_key.data()), &length) ==
		           1 &&
		       length == 32;
	}

	bool derive(const std::string& server_public, std::string& shared)
	{
		std::unique_ptr<EVP_PKEY, PkeyDeleter> peer(EVP_PKEY_new_raw_public_key(
			EVP_PKEY_X25519, nullptr, reinterpret_cast<const unsigned char*>(server_public.data()), server_public.size()));
		std::unique_ptr<EVP_PKEY_CTX, PkeyContextDeleter> context(EVP_PKEY_CTX_new(key.get(), nullptr));
		if (!peer || !context || EVP_PKEY_derive_init(context.get()) != 1 ||
		    EVP_PKEY_derive_set_peer(context.get(), peer.get()) != 1)
			return false;
		shared.assign(32, '\0');
		std::size_t length = shared.size();
		return EVP_PKEY_derive(context.get(), reinterpret_cast<unsigned char*>(shared.data()), &length) == 1 &&
		       length == 32;
	}
};

// The encrypted transport of one connection after NEWKEYS.
class ProtectedTransport {
public:
	ProtectedTransport(RawConnection& connection, std::uint32_t send_sequence, std::uint32_t receive_sequence)
		: connection_(connection), send_sequence_(send_sequence), receive_sequence_(receive_sequence)
	{
	}

	// Derives the keys of RFC 4253 section 7.2 from the mpint-encoded
	// shared secret, the exchange hash and the session id.
	bool init(const std::string& shared_mpint, const std::string& exchange_hash)
	{
		const auto derive = [&](char letter) {
			return sha256_digest(shared_mpint + exchange_hash + std::string(1, letter) + exchange_hash);
		};
		return outgoing_.init(derive('C').substr(0, 16), derive('A').substr(0, 16), derive('E'), true) &&
		       incoming_.init(derive('D').substr(0, 16), derive('B').substr(0, 16), derive('F'), false);
	}

	bool send(std::string_view payload)
	{
		const std::string plain = padded_packet(payload, 16);
		const std::string mac = outgoing_.mac(send_sequence_++, plain);
		return connection_.send_all(outgoing_.apply(plain) + mac);
	}

	bool receive(std::string& payload, std::string& error)
	{
		std::string first;
		if (!connection_.read_exact(16, first)) {
			error = "reading an encrypted packet: " + connection_.error();
			return false;
		}
		std::string plain = incoming_.apply(first);
		const std::uint32_t packet_length = read_u32(plain, 0);
		if (packet_length > kMaxPacketLength || packet_length < 12 || (packet_length + 4) % 16 != 0) {
			error = "invalid encrypted packet length " + std::to_string(packet_length);
			return false;
		}
		std::string rest;
		std::string mac;
		if (!connection_.read_exact(packet_length + 4 - 16, rest) || !connection_.read_exact(32, mac)) {
			error = "reading an encrypted packet: " + connection_.error();
			return false;
		}
		plain += incoming_.apply(rest);
		if (incoming_.mac(receive_sequence_++, plain) != mac) {
			error = "MAC of a server packet does not verify";
			return false;
		}
		const auto padding = static_cast<std::uint8_t>(plain[4]);
		if (padding + 1u > packet_length) {
			error = "padding longer than the packet";
			return false;
		}
		payload = plain.substr(5, packet_length - 1 - padding);
		if (payload.empty()) {
			error = "empty packet payload";
			return false;
		}
		return true;
	}

private:
	RawConnection& connection_;
	PacketProtection outgoing_;
	PacketProtection incoming_;
	std::uint32_t send_sequence_;
	std::uint32_t receive_sequence_;
};

// Runs the key exchange up to and including both NEWKEYS messages and
// returns the transport keyed with its result.
std::unique_ptr<ProtectedTransport> exchange_keys(RawConnection& connection, std::string& error)
{
	std::string server_version;
	if (!connection.send_all(kClientVersion) || !read_server_version(connection, server_version)) {
		error = "version exchange failed: " + connection.error();
		return nullptr;
	}
	const std::string client_kexinit = client_kexinit_payload();
	std::string server_kexinit;
	if (!connection.send_all(plain_packet(client_kexinit)) || !read_plain_packet(connection, server_kexinit, error))
		return nullptr;
	if (server_kexinit.empty() || static_cast<std::uint8_t>(server_kexinit[0]) != kMsgKexInit) {
		error = "the server's first packet is not a KEXINIT";
		return nullptr;
	}

	X25519Exchange exchange;
	if (!exchange.generate()) {
		error = "X25519 key generation failed";
		return nullptr;
	}
	std::string ecdh_init(1, static_cast<char>(kMsgKexEcdhInit));
	append_string(ecdh_init, exchange.public_key);
	std::string reply;
	if (!connection.send_all(plain_packet(ecdh_init)) || !read_plain_packet(connection, reply, error))
		return nullptr;
	PayloadReader reader(reply);
	std::string host_key, server_public, signature;
	if (reply.empty() || static_cast<std::uint8_t>(reply[0]) != kMsgKexEcdhReply || !reader.skip(1) ||
	    !reader.get_string(host_key) || !reader.get_string(server_public) || !reader.get_string(signature) ||
	    server_public.size() != 32) {
		error = "invalid KEX_ECDH_REPLY";
		return nullptr;
	}
	std::string shared;
	if (!exchange.derive(server_public, shared)) {
		error = "X25519 key agreement failed";
		return nullptr;
	}

	// RFC 5656 section 4 and RFC 8731: the exchange hash.
	const std::string shared_mpint = mpint_string(shared);
	std::string hashed;
	append_string(hashed, kClientVersion.substr(0, kClientVersion.size() - 2));
	append_string(hashed, server_version);
	append_string(hashed, client_kexinit);
	append_string(hashed, server_kexinit);
	append_string(hashed, host_key);
	append_string(hashed, exchange.public_key);
	append_string(hashed, server_public);
	hashed += shared_mpint;
	const std::string exchange_hash = sha256_digest(hashed);

	std::string newkeys;
	if (!read_plain_packet(connection, newkeys, error))
		return nullptr;
	if (newkeys != std::string(1, static_cast<char>(kMsgNewKeys))) {
		error = "expected NEWKEYS from the server";
		return nullptr;
	}
	if (!connection.send_all(plain_packet(std::string(1, static_cast<char>(kMsgNewKeys))))) {
		error = "sending NEWKEYS failed: " + connection.error();
		return nullptr;
	}

	// Without strict kex, sequence numbers count every packet since the
	// start: KEXINIT, the ECDH message and NEWKEYS in each direction.
	auto transport = std::make_unique<ProtectedTransport>(connection, 3, 3);
	if (!transport->init(shared_mpint, exchange_hash)) {
		error = "cipher setup failed";
		return nullptr;
	}
	return transport;
}

}  // namespace

ProbeLogin probe_certificate_login(std::uint16_t port, const std::string& role, const std::filesystem::path& key,
                                   const std::filesystem::path& certificate, const std::string& command)
{
	ProbeLogin result;
	SessionPtr session(ssh_new());
	if (!session) {
		result.error = "ssh_new failed";
		return result;
	}

	// Nothing from the user's or the system's ssh configuration applies.
	// The host key is not checked because the server is the test's own.
	const unsigned int port_number = port;
	const long timeout = kLibsshTimeoutSeconds;
	const bool process_config = false;
	ssh_options_set(session.get(), SSH_OPTIONS_PROCESS_CONFIG, &process_config);
	ssh_options_set(session.get(), SSH_OPTIONS_HOST, "127.0.0.1");
	ssh_options_set(session.get(), SSH_OPTIONS_PORT, &port_number);
	ssh_options_set(session.get(), SSH_OPTIONS_USER, role.c_str());
	ssh_options_set(session.get(), SSH_OPTIONS_TIMEOUT, &timeout);
	ssh_options_set(session.get(), SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
	ssh_options_set(session.get(), SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
	if (ssh_connect(session.get()) != SSH_OK) {
		result.error = std::string("connect failed: ") + ssh_get_error(session.get());
		return result;
	}
	result.connected = true;

	ssh_key raw_key = nullptr;
	if (ssh_pki_import_privkey_file(key.c_str(), nullptr, nullptr, nullptr, &raw_key) != SSH_OK) {
		result.error = "cannot load private key " + key.string();
		return result;
	}
	KeyPtr private_key(raw_key);
	ssh_key raw_cert = nullptr;
	if (ssh_pki_import_cert_file(certificate.c_str(), &raw_cert) != SSH_OK) {
		result.error = "cannot load certificate " + certificate.string();
		return result;
	}
	KeyPtr cert(raw_cert);
	if (ssh_pki_copy_cert_to_privkey(cert.get(), private_key.get()) != SSH_OK) {
		result.error = "certificate " + certificate.string() + " does not match key " + key.string();
		return result;
	}

	const int auth = ssh_userauth_publickey(session.get(), nullptr, private_key.get());
	if (auth != SSH_AUTH_SUCCESS) {
		result.error = "authentication result " + std::to_string(auth) + ": " + ssh_get_error(session.get());
		return result;
	}
	result.authenticated = true;
	run_probe_command(session.get(), command, result);
	return result;
}

ServerKexInit read_server_kexinit(std::uint16_t port, std::chrono::seconds timeout)
{
	ServerKexInit result;
	RawConnection connection(port, std::chrono::steady_clock::now() + timeout);
	if (!connection.error().empty()) {
		result.error = connection.error();
		return result;
	}
	if (!connection.send_all(kClientVersion) || !read_server_version(connection, result.version)) {
		result.error = "version exchange failed: " + connection.error();
		return result;
	}

	std::string payload;
	if (!read_plain_packet(connection, payload, result.error))
		return result;
	// byte SSH_MSG_KEXINIT, byte[16] cookie, name-list kex_algorithms, ...
	constexpr std::size_t kNameListOffset = 1 + 16;
	if (payload.size() < kNameListOffset + 4 || static_cast<std::uint8_t>(payload[0]) != kMsgKexInit) {
		result.error = "the server's first packet is not a KEXINIT";
		return result;
	}
	const std::uint32_t list_length = read_u32(payload, kNameListOffset);
	if (list_length > payload.size() - kNameListOffset - 4) {
		result.error = "kex_algorithms name-list of " + std::to_string(list_length) + " bytes overruns the packet";
		return result;
	}
	result.kex_algorithms = split_name_list(std::string_view(payload).substr(kNameListOffset + 4, list_length));
	return result;
}

EarlyMessageResult send_userauth_success_before_kex(std::uint16_t port, std::chrono::seconds timeout)
{
	EarlyMessageResult result;
	RawConnection connection(port, std::chrono::steady_clock::now() + timeout);
	if (!connection.error().empty()) {
		result.error = connection.error();
		return result;
	}
	std::string version;
	if (!connection.send_all(kClientVersion) || !read_server_version(connection, version)) {
		result.error = "version exchange failed: " + connection.error();
		return result;
	}

	const std::string payload(1, static_cast<char>(kMsgUserauthSuccess));
	const auto sent_at = std::chrono::steady_clock::now();
	if (!connection.send_all(plain_packet(payload))) {
		// A server that closed already also refused the message.
		result.closed = true;
		return result;
	}
	result.closed = connection.drain_until_closed();
	result.waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent_at);
	return result;
}

PostKexMessageResult send_userauth_success_after_kex(std::uint16_t port, std::chrono::seconds timeout)
{
	PostKexMessageResult result;
	RawConnection connection(port, std::chrono::steady_clock::now() + timeout);
	if (!connection.error().empty()) {
		result.error = connection.error();
		return result;
	}
	result.client_port = connection.local_port();
	auto transport = exchange_keys(connection, result.error);
	if (!transport)
		return result;
	result.key_exchange_done = true;

	std::string service_request(1, static_cast<char>(kMsgServiceRequest));
	append_string(service_request, "ssh-userauth");
	if (!transport->send(service_request)) {
		result.error = "sending SERVICE_REQUEST failed: " + connection.error();
		return result;
	}
	std::string payload;
	std::string receive_error;
	for (int packet = 0; packet < kMaxPostKexPackets && !result.service_accepted; ++packet) {
		if (!transport->receive(payload, receive_error)) {
			result.closed = connection.closed_by_peer();
			result.error = result.closed ? "" : receive_error;
			return result;
		}
		result.messages.push_back(static_cast<std::uint8_t>(payload[0]));
		result.service_accepted = static_cast<std::uint8_t>(payload[0]) == kMsgServiceAccept;
	}
	if (!result.service_accepted) {
		result.error = "no SERVICE_ACCEPT from the server";
		return result;
	}

	// The attack: claim success without authenticating, then ask for a
	// session channel as an authenticated client would.
	std::string channel_open(1, static_cast<char>(kMsgChannelOpen));
	append_string(channel_open, "session");
	append_u32(channel_open, 0);          // sender channel
	append_u32(channel_open, 2u << 20);   // initial window size
	append_u32(channel_open, 32u << 10);  // maximum packet size
	if (!transport->send(std::string(1, static_cast<char>(kMsgUserauthSuccess))) || !transport->send(channel_open)) {
		result.closed = true;   // the server closed before the messages were sent
		return result;
	}
	for (int packet = 0; packet < kMaxPostKexPackets; ++packet) {
		if (!transport->receive(payload, receive_error)) {
			result.closed = connection.closed_by_peer();
			result.error = result.closed ? "" : receive_error;
			return result;
		}
		const auto message = static_cast<std::uint8_t>(payload[0]);
		result.messages.push_back(message);
		if (message == kMsgChannelOpenConfirmation)
			result.channel_opened = true;
		if (message == kMsgChannelOpenConfirmation || message == kMsgChannelOpenFailure || message == kMsgDisconnect)
			break;
	}
	result.closed = connection.drain_until_closed();
	return result;
}

}  // namespace jead::test
