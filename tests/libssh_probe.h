// Test clients for the cases the stock ssh client cannot produce. OpenSSH
// 9.2's ssh does not load a certificate whose CA signature fails to verify
// and does not offer host certificates, but the libssh 0.10 client here
// offers any certificate file. The raw-protocol clients read jead's first
// KEXINIT and send messages that no real client sends.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace jead::test {

struct ProbeLogin {
	bool connected = false;       // TCP connection and key exchange succeeded
	bool authenticated = false;   // the server accepted the certificate
	int exit_status = -1;         // the command's exit status, or -1 when none was received
	std::string output;           // the command's standard output
	std::string error;            // libssh's message for the step that failed
};

// Logs in to 127.0.0.1:`port` as `role` with the private key file `key` and
// the OpenSSH certificate file `certificate`, then runs `command` when the
// login is accepted. Connecting, authenticating and running are each
// bounded by 10 s.
ProbeLogin probe_certificate_login(std::uint16_t port, const std::string& role, const std::filesystem::path& key,
                                   const std::filesystem::path& certificate, const std::string& command);

struct ServerKexInit {
	std::string version;                        // the server's version line, without CR LF
	std::vector<std::string> kex_algorithms;    // the first name-list of its first KEXINIT
	std::string error;                          // empty on success
};

// Connects over plain TCP, sends a client version line and reads the
// server's version line and first KEXINIT (RFC 4253, sections 4.2 and 7.1),
// within `timeout`.
ServerKexInit read_server_kexinit(std::uint16_t port, std::chrono::seconds timeout = std::chrono::seconds(10));

struct EarlyMessageResult {
	bool closed = false;                         // the server closed the connection
	std::chrono::milliseconds waited{0};         // from sending the message to the close
	std::string error;                           // a failure of the probe itself
};

// Connects over plain TCP, exchanges version lines, then sends
// SSH_MSG_USERAUTH_SUCCESS (message 52) as an unencrypted packet before any
// KEXINIT, and waits up to `timeout` for the server to close the connection.
EarlyMessageResult send_userauth_success_before_kex(std::uint16_t port,
                                                    std::chrono::seconds timeout = std::chrono::seconds(15));

struct PostKexMessageResult {
	bool key_exchange_done = false;   // NEWKEYS sent and received
	bool service_accepted = false;    // the server accepted "ssh-userauth"
	bool channel_opened = false;      // the server confirmed a session channel: a failure of the server
	bool closed = false;              // the server closed the connection
	std::uint16_t client_port = 0;    // the probe's local TCP port, as jead logs it
	std::vector<int> messages;        // the message numbers received after NEWKEYS
	std::string error;                // a failure of the probe itself
};

// Completes a key exchange as a minimal raw client (curve25519-sha256,
// ssh-ed25519 host key, aes128-ctr, hmac-sha2-256, no strict kex), requests
// the "ssh-userauth" service, then sends SSH_MSG_USERAUTH_SUCCESS (message
// 52) without authenticating and requests a session channel. The
// server's host key signature is not verified, because only the server's
// reaction matters here. Everything is bounded by `timeout`.
PostKexMessageResult send_userauth_success_after_kex(std::uint16_t port,
                                                     std::chrono::seconds timeout = std::chrono::seconds(15));

}  // namespace jead::test
