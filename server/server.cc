#include "server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <optional>

#include "common/escape.h"
#include "server/listener.h"
#include "server/session.h"
#include "server/session_internal.h"
#include "transcripts/recovery.h"

namespace jead {

namespace {

// libssh compares the plain signature algorithm against this list, so it
// contains the plain names as well as the certificate names; the callback
// accepts certificates only. SHA-1 "ssh-rsa" is left out.
constexpr const char* kAcceptedKeyTypes =
	"ssh-ed25519-cert-v01@openssh.com,"
	"ecdsa-sha2-nistp256-cert-v01@openssh.com,"
	"ecdsa-sha2-nistp384-cert-v01@openssh.com,"
	"ecdsa-sha2-nistp521-cert-v01@openssh.com,"
	"rsa-sha2-512-cert-v01@openssh.com,"
	"rsa-sha2-256-cert-v01@openssh.com,"
	"ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
	"rsa-sha2-512,rsa-sha2-256";

constexpr int kPollIntervalMs = 200;
// Connections accepted per wakeup of the loop, so that a burst empties the
// backlog quickly but cannot starve the sessions already running.
constexpr int kMaxAcceptsPerWakeup = 32;
constexpr int kMaxRefusalLogsPerSecond = 20;
// At shutdown, the time clients get to close their ended channels and
// disconnect before jead disconnects them.
constexpr auto kShutdownCloseWait = std::chrono::seconds(2);

std::atomic<bool> g_stop_requested{false};
std::atomic<bool> g_reload_requested{false};

void on_stop_signal(int)
{
	g_stop_requested = true;
}

void on_reload_signal(int)
{
	g_reload_requested = true;
}

std::string new_connection_id()
{
	std::array<unsigned char, 6> random{};
	RAND_bytes(random.data(), static_cast<int>(random.size()));
	const std::time_t now = std::time(nullptr);
	std::tm tm{};
	gmtime_r(&now, &tm);
	char stamp[32];
	std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	// UTC time first so that transcript names sort by start time.
	return std::string(stamp) + "-" + hex_encode(random);
}

bool is_certificate_key(ssh_key key)
{
	const char* name = ssh_key_type_to_char(ssh_key_type(key));
	const std::string_view type = name ? name : "";
	return type.ends_with("-cert-v01@openssh.com");
}

Result<Bytes> export_key_blob(ssh_key key)
{
	char* base64 = nullptr;
	if (ssh_pki_export_pubkey_base64(key, &base64) != SSH_OK || !base64)
		return fail(Errc::invalid, "cannot export the offered key");
	auto blob = base64_decode(base64);
	ssh_string_free_char(base64);
	return blob;
}

void peer_address(int fd, std::string& ip, int& port)
{
	sockaddr_storage addr{};
	socklen_t len = sizeof addr;
	ip = "unknown";
	port = 0;
	if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
		return;
	char text[INET6_ADDRSTRLEN] = {};
	if (addr.ss_family == AF_INET) {
		const auto* in = reinterpret_cast<sockaddr_in*>(&addr);
		::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
		port = ntohs(in->sin_port);
	} else if (addr.ss_family == AF_INET6) {
		const auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
		::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
		port = ntohs(in6->sin6_port);
	}
	ip = text;
}

// Formats an address and port as ssh and URLs do: "192.0.2.7:22",
// "[2001:db8::1]:22".
std::string format_endpoint(const std::string& ip, int port)
{
	const bool v6 = ip.find(':') != std::string::npos;
	return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

// Returns a hint for a libssh error whose text does not name the cause in
// an operator's terms, or "".
std::string_view drop_hint(std::string_view libssh_error)
{
	// libssh 0.10 rejects a packet longer than MAX_PACKET_LEN (256 KiB, in
	// its priv.h) with this text, and OpenSSH has the same cap. An exec
	// request that long carries a command line that max_command_length
	// would deny anyway.
	if (libssh_error.find("Packet len too high") != std::string_view::npos)
		return "; the client sent an SSH packet longer than the 256 KiB maximum, such as an exec command line "
		       "of more than about 256 KiB";
	return "";
}

// Limits refusal log lines to a fixed rate so that a flood of bad logins
// cannot flood the journal; suppressed lines are counted and reported.
class RefusalLogLimiter {
public:
	bool allow()
	{
		const std::time_t now = std::time(nullptr);
		if (now != second_) {
			if (suppressed_ > 0)
				spdlog::warn("{} login refusals were not logged in the last second (rate limit)", suppressed_);
			second_ = now;
			count_ = 0;
			suppressed_ = 0;
		}
		if (count_ < kMaxRefusalLogsPerSecond) {
			++count_;
			return true;
		}
		++suppressed_;
		return false;
	}

private:
	std::time_t second_ = 0;
	int count_ = 0;
	int suppressed_ = 0;
};

// A connection logs this many refused forwarding requests and channel
// types in detail; later ones are counted once, so a client cannot fill
// the journal with them.
constexpr int kMaxRefusedRequestLogs = 5;

// Describes a request jead refuses: port forwarding (ssh -L, -R, -D),
// agent and X11 forwarding, and channel types other than "session".
// Returns an empty string for the other messages libssh passes here, such
// as authentication methods other than publickey.
std::string refused_request(ssh_message message)
{
	const int type = ssh_message_type(message);
	const int subtype = ssh_message_subtype(message);
	if (type == SSH_REQUEST_GLOBAL) {
		if (subtype == SSH_GLOBAL_REQUEST_TCPIP_FORWARD) {
			const char* address = ssh_message_global_request_address(message);
			return "remote port forwarding (ssh -R) to " + escape_untrusted(address ? address : "", 256) + " port " +
			       std::to_string(ssh_message_global_request_port(message));
		}
		if (subtype == SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD)
			return "";
		return "global request type " + std::to_string(subtype);
	}
	if (type == SSH_REQUEST_CHANNEL && subtype == SSH_CHANNEL_REQUEST_X11)
		return "X11 forwarding";
	if (type != SSH_REQUEST_CHANNEL_OPEN)
		return "";
	switch (subtype) {
	case SSH_CHANNEL_DIRECT_TCPIP: {
		const char* destination = ssh_message_channel_request_open_destination(message);
		return "local port forwarding (ssh -L or -D) to " + escape_untrusted(destination ? destination : "", 256) +
		       " port " + std::to_string(ssh_message_channel_request_open_destination_port(message));
	}
	case SSH_CHANNEL_FORWARDED_TCPIP: return "a forwarded-tcpip channel";
	case SSH_CHANNEL_X11: return "X11 forwarding";
	case SSH_CHANNEL_AUTH_AGENT: return "agent forwarding";
	default: return "a channel of type " + std::to_string(subtype);
	}
}

// Logs what a client asked for beyond jead's command channels. Returning
// 1 makes libssh send its default reply, which refuses the request.
int on_unhandled_message(ssh_session, ssh_message message, void* userdata)
{
	auto& connection = *static_cast<Connection*>(userdata);
	const std::string what = refused_request(message);
	if (what.empty())
		return 1;
	++connection.refused_requests;
	if (connection.refused_requests <= kMaxRefusedRequestLogs)
		spdlog::warn("session={} client={} refused {}", connection.id, connection.client_endpoint, what);
	else if (connection.refused_requests == kMaxRefusedRequestLogs + 1)
		spdlog::warn("session={} client={} further refused requests are not logged", connection.id,
		             connection.client_endpoint);
	return 1;
}

}  // namespace

struct Server::Impl {
	std::shared_ptr<const Policy> policy;
	ssh_bind bind = nullptr;            // owns the listening socket
	int listen_fd = -1;
	bool listen_watched = false;        // listen_fd is in `event`
	ssh_event event = nullptr;
	std::uint16_t bound_port = 0;
	std::list<std::unique_ptr<Connection>> connections;
	RevocationWatch revocation;
	SessionRunner runner;
	RefusalLogLimiter refusal_limiter;
	std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> recent_starts;

	explicit Impl(std::shared_ptr<const Policy> p)
		: policy(std::move(p)), revocation(policy->config.revoked_keys), runner(policy, revocation)
	{
	}

	~Impl()
	{
		for (auto& connection : connections)
			teardown(*connection, "server-shutdown");
		connections.clear();
		// ssh_event_free does not free what ssh_event_add_fd allocated.
		stop_accepting();
		if (event)
			ssh_event_free(event);
		if (bind)
			ssh_bind_free(bind);
	}

	static int on_listen_ready(socket_t, int, void* userdata)
	{
		auto& impl = *static_cast<Impl*>(userdata);
		for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
			const int fd = accept_connection_fd(impl.listen_fd);
			if (fd < 0)
				break;
			impl.accept_connection(fd);
		}
		return 0;
	}

	void stop_accepting()
	{
		if (listen_watched)
			ssh_event_remove_fd(event, listen_fd);
		listen_watched = false;
	}

	// Returns why a new connection from `ip` must be refused, or nothing.
	// Refusing costs only the accept: no key exchange is started.
	std::optional<std::string> admission_refusal(const std::string& ip)
	{
		const auto& config = policy->config;
		int unauthenticated = 0;
		int from_source = 0;
		for (const auto& connection : connections) {
			if (connection->authenticated)
				continue;
			++unauthenticated;
			from_source += connection->client_ip == ip ? 1 : 0;
		}
		if (unauthenticated >= config.max_unauthenticated)
			return std::to_string(unauthenticated) + " connections are waiting to authenticate (max_unauthenticated)";
		if (from_source >= config.max_unauthenticated_per_source)
			return std::to_string(from_source) +
			       " connections from this address are waiting to authenticate (max_unauthenticated_per_source)";

		// Connection starts per source in the last minute, pruned as they
		// age, so the map holds only addresses seen in the last minute.
		const auto now = std::chrono::steady_clock::now();
		for (auto it = recent_starts.begin(); it != recent_starts.end();) {
			auto& starts = it->second;
			while (!starts.empty() && now - starts.front() > std::chrono::minutes(1))
				starts.pop_front();
			it = starts.empty() ? recent_starts.erase(it) : std::next(it);
		}
		auto& starts = recent_starts[ip];
		if (static_cast<int>(starts.size()) >= config.max_connections_per_minute_per_source)
			return std::to_string(starts.size()) +
			       " connections from this address in the last minute (max_connections_per_minute_per_source)";
		starts.push_back(now);
		return std::nullopt;
	}

	// Returns why an authenticated session for `cert` must be refused
	// because of the concurrent-session caps, or nothing.
	std::optional<std::string> session_cap_refusal(const Certificate& cert, const std::string& ca_fingerprint)
	{
		const auto& config = policy->config;
		int same_certificate = 0;
		std::map<std::string_view, int> per_principal;
		for (const auto& connection : connections) {
			if (!connection->authenticated)
				continue;
			const auto& other = connection->grant->certificate;
			if (other.serial == cert.serial && connection->grant->ca_fingerprint == ca_fingerprint)
				++same_certificate;
			for (const auto& principal : other.principals)
				++per_principal[principal];
		}
		if (same_certificate >= config.max_sessions_per_certificate)
			return std::to_string(same_certificate) +
			       " sessions are open with this certificate's serial (max_sessions_per_certificate)";
		for (const auto& principal : cert.principals) {
			const auto it = per_principal.find(principal);
			if (it != per_principal.end() && it->second >= config.max_sessions_per_principal)
				return std::to_string(it->second) + " sessions are open for principal " +
				       escape_untrusted(principal, 64) + " (max_sessions_per_principal)";
		}
		return std::nullopt;
	}

	// Takes over the accepted socket `fd`: refuses it at once when an
	// admission cap is reached, or starts the key exchange.
	void accept_connection(int fd)
	{
		auto connection = std::make_unique<Connection>();
		connection->policy = policy;
		connection->id = new_connection_id();
		connection->accepted_at = std::chrono::steady_clock::now();
		peer_address(fd, connection->client_ip, connection->client_port);
		connection->client_endpoint = format_endpoint(connection->client_ip, connection->client_port);

		if (auto refusal = admission_refusal(connection->client_ip)) {
			if (refusal_limiter.allow())
				spdlog::warn("session={} client={} connection refused: {}", connection->id, connection->client_endpoint, *refusal);
			::close(fd);
			return;
		}

		const int one = 1;
		::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

		ssh_session session = ssh_new();
		if (!session) {
			spdlog::error("session={} client={} connection dropped: out of memory for a new session",
			              connection->id, connection->client_endpoint);
			::close(fd);
			return;
		}
		if (ssh_bind_accept_fd(bind, session, fd) != SSH_OK) {
			spdlog::error("session={} client={} connection dropped: {}", connection->id, connection->client_endpoint,
			              escape_untrusted(ssh_get_error(bind)));
			// Once libssh has taken the socket, ssh_free closes it.
			const bool owned_by_session = ssh_get_fd(session) == fd;
			ssh_free(session);
			if (!owned_by_session)
				::close(fd);
			return;
		}
		connection->session = session;

		ssh_callbacks_init(&connection->callbacks);
		connection->callbacks.userdata = connection.get();
		connection->callbacks.auth_pubkey_function = on_auth_pubkey;
		connection->callbacks.channel_open_request_session_function = on_channel_open;
		connection->server = this;
		ssh_set_server_callbacks(session, &connection->callbacks);
		ssh_set_message_callback(session, on_unhandled_message, connection.get());
		ssh_set_auth_methods(session, SSH_AUTH_METHOD_PUBLICKEY);
		ssh_set_blocking(session, 0);

		// Non-blocking: the key exchange goes on inside the event loop.
		if (ssh_handle_key_exchange(session) == SSH_ERROR) {
			spdlog::info("session={} client={} key exchange failed: {}", connection->id, connection->client_endpoint,
			             escape_untrusted(ssh_get_error(session)));
			ssh_disconnect(session);
			ssh_free(session);
			return;
		}
		ssh_event_add_session(event, session);
		spdlog::debug("session={} client={} connected", connection->id, connection->client_endpoint);
		connections.push_back(std::move(connection));
	}

	void refuse_login(Connection& connection, std::string_view user, const std::string& reason,
	                  const Certificate* cert)
	{
		++connection.auth_failures;
		if (refusal_limiter.allow()) {
			if (cert) {
				spdlog::error("session={} client={} login refused: role={} key_id={} serial={} ca={}: {}",
				              connection.id, connection.client_endpoint, escape_untrusted(user, 64),
				              escape_untrusted(cert->key_id, 128), cert->serial, ssh_fingerprint(cert->signature_key),
				              reason);
			} else {
				spdlog::error("session={} client={} login refused: role={}: {}", connection.id,
				              connection.client_endpoint, escape_untrusted(user, 64), reason);
			}
		}
		if (connection.auth_failures >= policy->config.max_auth_tries) {
			connection.disconnect_reason = "too many authentication failures";
			connection.disconnect_requested = true;
		}
	}

	static int on_auth_pubkey(ssh_session, const char* user, ssh_key key, char signature_state, void* userdata)
	{
		auto& connection = *static_cast<Connection*>(userdata);
		return connection.server->authenticate(connection, user ? user : "", key, signature_state);
	}

	int authenticate(Connection& connection, std::string_view user, ssh_key key, char signature_state)
	{
		if (connection.authenticated || connection.disconnect_requested)
			return SSH_AUTH_DENIED;
		if (signature_state != SSH_PUBLICKEY_STATE_NONE && signature_state != SSH_PUBLICKEY_STATE_VALID) {
			refuse_login(connection, user, "the user signature did not verify", nullptr);
			return SSH_AUTH_DENIED;
		}
		if (!is_certificate_key(key) && connection.auth_failures > 0) {
			// ssh offers the bare key after its certificate was refused; the
			// certificate's refusal is the line that matters.
			++connection.auth_failures;
			spdlog::debug("session={} plain key offered after a refused certificate", connection.id);
			if (connection.auth_failures >= policy->config.max_auth_tries) {
				connection.disconnect_reason = "too many authentication failures";
				connection.disconnect_requested = true;
			}
			return SSH_AUTH_DENIED;
		}
		if (!is_certificate_key(key)) {
			refuse_login(connection, user,
			             "plain public keys are not accepted; offer an OpenSSH user certificate signed by a trusted CA "
			             "(ssh -o CertificateFile=FILE)",
			             nullptr);
			return SSH_AUTH_DENIED;
		}
		auto blob = export_key_blob(key);
		if (!blob) {
			refuse_login(connection, user, blob.error().message, nullptr);
			return SSH_AUTH_DENIED;
		}

		const auto now = std::chrono::duration_cast<std::chrono::seconds>(
			std::chrono::system_clock::now().time_since_epoch()).count();
		auto grant = authorize_login(*connection.policy, revocation, user, *blob, connection.client_ip, now);
		if (!grant) {
			auto cert = parse_certificate(*blob);
			refuse_login(connection, user, grant.error().message, cert ? &*cert : nullptr);
			return SSH_AUTH_DENIED;
		}

		// A query without a signature only learns that the key would be
		// accepted; only a verified signature grants anything.
		if (signature_state == SSH_PUBLICKEY_STATE_NONE)
			return SSH_AUTH_SUCCESS;

		if (auto refusal = session_cap_refusal(grant->certificate, grant->ca_fingerprint)) {
			refuse_login(connection, user, *refusal, &grant->certificate);
			return SSH_AUTH_DENIED;
		}

		const auto& cert = grant->certificate;
		std::string principals;
		for (const auto& principal : cert.principals)
			principals += (principals.empty() ? "" : ",") + escape_untrusted(principal, 64);
		log_session_event(grant->role->break_glass,
		             "session={} client={} login accepted: role={} key_id={} serial={} principals=[{}] ca={} "
		             "valid_before={}",
		             connection.id, connection.client_endpoint, grant->role->name,
		             escape_untrusted(cert.key_id, 128), cert.serial, principals, grant->ca_fingerprint,
		             cert.valid_before);
		connection.grant = std::move(*grant);
		connection.authenticated = true;
		return SSH_AUTH_SUCCESS;
	}

	static ssh_channel on_channel_open(ssh_session session, void* userdata)
	{
		auto& connection = *static_cast<Connection*>(userdata);
		return connection.server->runner.open_channel(connection, session);
	}

	void teardown(Connection& connection, std::string_view reason)
	{
		runner.close_connection(connection, reason);
		ssh_event_remove_session(event, connection.session);
		ssh_disconnect(connection.session);
		ssh_free(connection.session);
		connection.session = nullptr;
	}

	// Returns false when the connection is over and has been torn down.
	bool service(Connection& connection)
	{
		const int status = ssh_get_status(connection.session);
		const std::string_view reason = ssh_get_error(connection.session);
		if ((status & SSH_CLOSED_ERROR) && reason.find("SSH_MSG_DISCONNECT: 11:") != std::string_view::npos) {
			// libssh reports a client's ordinary "disconnected by user" as an
			// error; it is how every session ends.
			spdlog::debug("session={} client disconnected", connection.id);
			teardown(connection, "client-closed");
			return false;
		}
		if (status & SSH_CLOSED_ERROR) {
			// libssh ended the connection: a protocol violation, a failed
			// key exchange or a broken socket.
			spdlog::warn("session={} client={} connection dropped: {}{}", connection.id, connection.client_endpoint,
			             escape_untrusted(reason), drop_hint(reason));
			teardown(connection, "error");
			return false;
		}
		if (status & SSH_CLOSED) {
			spdlog::debug("session={} client closed the connection", connection.id);
			teardown(connection, "client-closed");
			return false;
		}
		if (connection.disconnect_requested) {
			spdlog::warn("session={} client={} disconnected: {}", connection.id, connection.client_endpoint,
			             connection.disconnect_reason);
			teardown(connection, "error");
			return false;
		}
		const auto waited = std::chrono::steady_clock::now() - connection.accepted_at;
		if (!connection.authenticated && waited > policy->config.login_grace_time) {
			spdlog::warn("session={} client={} disconnected: not authenticated within login_grace_time ({} s)",
			             connection.id, connection.client_endpoint,
			             policy->config.login_grace_time.count());
			teardown(connection, "error");
			return false;
		}
		runner.service(connection, event);
		return true;
	}

	// Loads the config and roles again and swaps them in whole, or keeps
	// the old policy when anything in the new one fails to load. The listen
	// address, backlog and host key stay as they were until a restart.
	void reload()
	{
		auto loaded = load_policy(policy->config.file);
		if (!loaded) {
			spdlog::error("reload failed, keeping policy {}: {}", policy->version, loaded.error().message);
			return;
		}
		const auto& next = *loaded;
		if (next->config.listen.host != policy->config.listen.host ||
		    next->config.listen.port != policy->config.listen.port ||
		    next->config.listen_backlog != policy->config.listen_backlog ||
		    next->config.host_key != policy->config.host_key)
			spdlog::warn("reload: listen, listen_backlog and host_key changes take effect only after a restart");
		spdlog::info("reloaded: policy {} replaces {} ({} roles)", next->version, policy->version, next->roles.size());
		policy = next;
		revocation.set_files(policy->config.revoked_keys);
		runner.set_policy(policy);
	}

	// Returns true when the client has closed `connection`, or it never
	// authenticated; either way it is torn down here.
	bool gone_at_shutdown(Connection& connection)
	{
		const bool closed = ssh_get_status(connection.session) & (SSH_CLOSED | SSH_CLOSED_ERROR);
		if (!closed && connection.authenticated)
			return false;
		teardown(connection, "server-shutdown");
		return true;
	}

	// Ends every session with kExitShutdown and a message. The clients then
	// get a bounded time to close their channels and disconnect: a
	// disconnect that reaches ssh before it has processed the exit status
	// and the channel close makes ssh exit 255 instead.
	void shut_down()
	{
		stop_accepting();
		spdlog::info("shutting down: ending {} connections", connections.size());
		const ChannelEnding ending{"server-shutdown", "the server is shutting down; the session is over",
		                           kExitShutdown};
		// Running programs get the kill grace (5 s) and 2 s more to end.
		const auto started = std::chrono::steady_clock::now();
		const auto programs_deadline = started + std::chrono::seconds(7);
		std::optional<std::chrono::steady_clock::time_point> close_deadline;
		while (!connections.empty()) {
			for (auto it = connections.begin(); it != connections.end();) {
				if (gone_at_shutdown(**it)) {
					it = connections.erase(it);
					continue;
				}
				runner.end_connection(**it, ending, event);
				++it;
			}
			const auto now = std::chrono::steady_clock::now();
			const bool all_ended = std::all_of(connections.begin(), connections.end(),
			                                   [](const auto& c) { return SessionRunner::all_finished(*c); });
			if (!close_deadline && (all_ended || now >= programs_deadline))
				close_deadline = now + kShutdownCloseWait;
			if (connections.empty() || (close_deadline && now >= *close_deadline))
				break;
			ssh_event_dopoll(event, 100);
		}
		if (!connections.empty())
			spdlog::info("shutting down: disconnecting {} connections whose clients did not disconnect within {} s",
			             connections.size(), kShutdownCloseWait.count());
		for (auto& connection : connections)
			teardown(*connection, "server-shutdown");
		connections.clear();
	}

	int run()
	{
		struct sigaction action {};
		action.sa_handler = on_stop_signal;
		sigemptyset(&action.sa_mask);
		::sigaction(SIGTERM, &action, nullptr);
		::sigaction(SIGINT, &action, nullptr);
		action.sa_handler = on_reload_signal;
		::sigaction(SIGHUP, &action, nullptr);
		::signal(SIGPIPE, SIG_IGN);

		spdlog::info("listening on {} with policy {} ({} roles)", format_endpoint(policy->config.listen.host, bound_port),
		             policy->version, policy->roles.size());
		while (!g_stop_requested) {
			ssh_event_dopoll(event, kPollIntervalMs);
			if (g_reload_requested.exchange(false))
				reload();
			for (auto it = connections.begin(); it != connections.end();) {
				if (service(**it))
					++it;
				else
					it = connections.erase(it);
			}
			runner.service_draining(event);
		}

		shut_down();
		runner.finish_draining(event);
		return 0;
	}
};

// Seals the transcripts a crash left without an end record, and links the
// next transcript to the newest end record on this host.
Result<void> Server::recover_transcripts()
{
	const auto& config = impl_->policy->config;
	TranscriptOptions options;
	options.signing_key = config.transcript_signing_key;
	options.checkpoint_interval = config.transcript_checkpoint_records;
	auto outcomes = seal_abandoned_transcripts(config.transcript_dir, options);
	if (!outcomes)
		return fail(outcomes.error().code, "cannot check transcripts for abnormal ends: " + outcomes.error().message);
	for (const auto& outcome : *outcomes) {
		if (outcome.sealed)
			spdlog::warn("transcript {} had no end record; sealed as abnormal: {}", outcome.path.string(),
			             outcome.message);
		else
			spdlog::error("transcript {} could not be sealed: {}", outcome.path.string(), outcome.message);
	}
	auto newest = newest_end_hash(config.transcript_dir);
	if (!newest)
		return fail(newest.error().code, "cannot read the newest transcript end: " + newest.error().message);
	impl_->runner.set_last_end_hash(*newest);
	return {};
}

Server::Server(std::shared_ptr<const Policy> policy) : impl_(std::make_unique<Impl>(std::move(policy))) {}

Server::~Server() = default;

Result<void> Server::listen()
{
	const auto& config = impl_->policy->config;
	if (config.listen.port == 0)
		return fail(Errc::invalid, "listen port 0 is not supported; name a port");

	if (auto r = check_transcript_setup(config); !r)
		return r;
	if (auto r = recover_transcripts(); !r)
		return r;

	auto listen_fd = open_listener(config.listen, config.listen_backlog);
	if (!listen_fd)
		return tl::unexpected(listen_fd.error());
	impl_->bind = ssh_bind_new();
	ssh_bind bind = impl_->bind;
	if (!bind) {
		::close(*listen_fd);
		return fail(Errc::internal, "cannot create the libssh listener");
	}
	// From here ssh_bind_free closes the socket. With a socket set,
	// ssh_bind_listen only loads the host key: it creates no socket and
	// does not call listen(2) again.
	ssh_bind_set_fd(bind, *listen_fd);
	impl_->listen_fd = *listen_fd;

	const bool process_config = false;
	const std::string host_key = config.host_key.string();
	// The host's libssh_server_config must never change jead's behaviour.
	if (ssh_bind_options_set(bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &process_config) != SSH_OK ||
	    ssh_bind_options_set(bind, SSH_BIND_OPTIONS_HOSTKEY, host_key.c_str()) != SSH_OK ||
	    ssh_bind_options_set(bind, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, kAcceptedKeyTypes) != SSH_OK)
		return fail(Errc::invalid, std::string("cannot configure the listener: ") + ssh_get_error(bind));
	if (ssh_bind_listen(bind) != SSH_OK)
		return fail(Errc::invalid, "cannot load the host key " + host_key + ": " + ssh_get_error(bind));
	impl_->bound_port = config.listen.port;

	impl_->event = ssh_event_new();
	if (ssh_event_add_fd(impl_->event, impl_->listen_fd, POLLIN, Impl::on_listen_ready, impl_.get()) != SSH_OK)
		return fail(Errc::internal, "cannot watch the listening socket");
	impl_->listen_watched = true;
	return {};
}

std::uint16_t Server::port() const
{
	return impl_->bound_port;
}

int Server::run()
{
	return impl_->run();
}

}  // namespace jead
