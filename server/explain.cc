#include "server/explain.h"

#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <vector>

#include "common/duration.h"
#include "common/escape.h"
#include "roles/arguments.h"
#include "roles/policy.h"
#include "roles/tokenizer.h"
#include "server/auth.h"
#include "server/cert/certificate.h"
#include "server/cert/public_key.h"
#include "server/cert/source_address.h"
#include "server/policy_state.h"
#include "server/process.h"
#include "server/revocation_watch.h"

namespace jead {

namespace {

// An OpenSSH certificate line is a few KiB even with an RSA-8192 CA.
constexpr std::size_t kMaxCertificateFileBytes = 64 * 1024;

// Writes "  NAME  STATUS  DETAIL" lines with aligned columns.
class StepPrinter {
public:
	explicit StepPrinter(std::ostream& out) : out_(out) {}

	void step(std::string_view name, std::string_view status, std::string_view detail)
	{
		out_ << "  " << pad(name, 18) << " " << pad(status, 8) << " " << detail << "\n";
	}
	// Another line of detail under the previous step.
	void more(std::string_view detail) { out_ << std::string(2 + 18 + 1 + 8 + 1, ' ') << detail << "\n"; }
	void line(std::string_view text) { out_ << text << "\n"; }

private:
	static std::string pad(std::string_view text, std::size_t width)
	{
		std::string out(text);
		if (out.size() < width)
			out.append(width - out.size(), ' ');
		return out;
	}

	std::ostream& out_;
};

// Formats a duration in the role-file syntax: "8h", "1h30m", "90s".
std::string format_duration(std::uint64_t seconds)
{
	if (seconds == 0)
		return "0s";
	std::string out;
	for (const auto& [unit, size] : {std::pair{"d", 86400ull}, std::pair{"h", 3600ull}, std::pair{"m", 60ull},
	                                 std::pair{"s", 1ull}}) {
		if (seconds >= size) {
			out += std::to_string(seconds / size) + unit;
			seconds %= size;
		}
	}
	return out;
}

std::string join_quoted(const std::vector<std::string>& items, std::string_view separator = ", ")
{
	std::string out;
	for (const auto& item : items)
		out += (out.empty() ? "" : std::string(separator)) + escape_untrusted(item, 128);
	return out.empty() ? "none" : out;
}

// Returns `name` as it is when it is a plain option or extension name,
// and quoted and escaped otherwise.
std::string shown_name(std::string_view name)
{
	const bool plain = !name.empty() && name.size() <= 64 &&
	                   name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._-") ==
	                       std::string_view::npos;
	return plain ? std::string(name) : escape_untrusted(name, 64);
}

// Returns a denial reason without its leading "denied: ", for a line whose
// status column already shows "denied".
std::string_view reason_text(std::string_view reason)
{
	constexpr std::string_view kPrefix = "denied: ";
	return reason.starts_with(kPrefix) ? reason.substr(kPrefix.size()) : reason;
}

// Formats a byte count in the role-file size syntax when it is a whole
// number of a binary unit, such as "16M".
std::string format_size(std::uint64_t bytes)
{
	for (const auto& [unit, shift] : {std::pair{"T", 40}, std::pair{"G", 30}, std::pair{"M", 20}, std::pair{"K", 10}})
		if (bytes >= (1ull << shift) && bytes % (1ull << shift) == 0)
			return std::to_string(bytes >> shift) + unit;
	return std::to_string(bytes);
}

std::string format_options(const std::vector<CertOption>& options)
{
	std::string out;
	for (const auto& option : options) {
		out += (out.empty() ? "" : ", ") + shown_name(option.name);
		if (!option.data.empty())
			out += "=" + escape_untrusted(option.data, 128);
	}
	return out.empty() ? "none" : out;
}

std::string group_label(gid_t gid)
{
	const struct group* gr = ::getgrgid(gid);
	return std::to_string(gid) + (gr ? " (" + std::string(gr->gr_name) + ")" : "");
}

Result<std::string> read_certificate_file(const std::filesystem::path& file)
{
	std::ifstream in(file, std::ios::binary);
	if (!in)
		return fail(Errc::io, "cannot read certificate file " + file.string());
	std::string text(kMaxCertificateFileBytes + 1, '\0');
	in.read(text.data(), static_cast<std::streamsize>(text.size()));
	text.resize(static_cast<std::size_t>(in.gcount()));
	if (text.size() > kMaxCertificateFileBytes)
		return fail(Errc::limit, "certificate file " + file.string() + " is larger than " +
		                             std::to_string(kMaxCertificateFileBytes) + " bytes");
	return text.substr(0, text.find('\n'));
}

// The outcome of one part of the decision.
struct Verdict {
	bool allowed = false;
	std::string reason;   // why it was denied
};

// Shows the parsed certificate and the result of each check that
// authorize_login() makes, each through the function it uses.
void show_certificate_checks(const Policy& policy, const Role* role, const Certificate& cert, std::int64_t now,
                             StepPrinter& print)
{
	print.step("parse", "ok", cert.cert_key_type + ", key ID " + escape_untrusted(cert.key_id, 128) + ", serial " +
	                              std::to_string(cert.serial));
	print.step("key", "", cert.plain_key_type + " " + ssh_fingerprint(cert.public_key));
	print.step("type", "", cert.type == CertType::user ? "user certificate" : "host certificate");
	print.step("principals", "", join_quoted(cert.principals));

	const TrustedCa* ca = nullptr;
	for (const auto& trusted : policy.config.trusted_cas)
		if (trusted.blob == cert.signature_key)
			ca = &trusted;
	const std::string ca_key = ssh_fingerprint(cert.signature_key);
	if (ca)
		print.step("CA", "ok", ca_key + " is trusted (" + ca->file.string() + ")");
	else
		print.step("CA", "denied", ca_key + " is not among trusted_user_ca_keys");

	if (auto signature = verify_ca_signature(cert); signature)
		print.step("signature", "ok", cert.signature_algorithm + " signature verifies");
	else
		print.step("signature", "denied", signature.error().message);

	print.step("validity", "", "from " + format_utc(cert.valid_after) + " to " + format_utc(cert.valid_before) +
	                               ", clock skew " + format_duration(static_cast<std::uint64_t>(policy.config.clock_skew.count())));
	std::string lifetime = cert.valid_before > cert.valid_after
	                           ? format_duration(cert.valid_before - cert.valid_after)
	                           : std::string("empty");
	lifetime += "; max_cert_lifetime " + format_duration(static_cast<std::uint64_t>(policy.config.max_cert_lifetime.count())) +
	            " (config)";
	if (role && role->max_cert_lifetime)
		lifetime += ", " + format_duration(static_cast<std::uint64_t>(role->max_cert_lifetime->count())) + " (role \"" +
		            role->name + "\")";
	print.step("lifetime", "", lifetime);
	print.step("critical options", "", format_options(cert.critical_options));
	print.step("extensions", "", format_options(cert.extensions));

	CertPolicy cert_policy;
	for (const auto& trusted : policy.config.trusted_cas)
		cert_policy.trusted_ca_keys.push_back(trusted.blob);
	cert_policy.max_lifetime = policy.config.max_cert_lifetime;
	cert_policy.clock_skew = policy.config.clock_skew;
	cert_policy.allow_sk_keys = policy.config.allow_sk_keys;
	if (auto checked = check_certificate(cert, cert_policy, now); checked)
		print.step("checks", "ok", "CA, signature, type, validity at " + format_utc(static_cast<std::uint64_t>(now)) +
		                               ", lifetime, principals and critical options");
	else
		print.step("checks", "denied", checked.error().message);
}

void show_source_address(const Certificate& cert, std::string_view client_ip, StepPrinter& print)
{
	bool any = false;
	for (const auto& option : cert.critical_options) {
		if (option.name != "source-address")
			continue;
		any = true;
		auto allowed = source_address_allows(option.data, client_ip);
		if (!allowed)
			print.step("source address", "denied", "malformed source-address option: " + allowed.error().message);
		else if (*allowed)
			print.step("source address", "ok", std::string(client_ip) + " is in " + escape_untrusted(option.data));
		else
			print.step("source address", "denied", std::string(client_ip) + " is not in " + escape_untrusted(option.data));
	}
	if (!any)
		print.step("source address", "ok", "the certificate has no source-address option");
}

void show_grant(const Config& config, std::string_view role_name, const Certificate& cert, StepPrinter& print)
{
	std::vector<std::string> matched;
	for (const auto& principal : cert.principals)
		if (principals_granted_role(config, role_name, {principal}))
			matched.push_back(principal);
	if (!matched.empty()) {
		print.step("principal grant", "ok", "role \"" + std::string(role_name) + "\" is granted to " + join_quoted(matched));
		return;
	}
	const auto granted = config.grants.find(role_name);
	print.step("principal grant", "denied",
	           "no principal of the certificate is granted role \"" + std::string(role_name) + "\"; [grants] lists " +
	               (granted == config.grants.end() ? std::string("no principals for it") : join_quoted(granted->second)));
}

// The login part: every certificate step, then authorize_login() itself,
// whose result is the verdict. A certificate that does not parse ends the
// part early, and the parse error is the verdict.
Result<Verdict> explain_login(const Policy& policy, const ExplainRequest& request, RevocationWatch& revocation,
                              std::optional<Certificate>& certificate, StepPrinter& print)
{
	auto line = read_certificate_file(*request.certificate_file);
	if (!line)
		return tl::unexpected(line.error());
	const Role* role = policy.find_role(request.role);
	auto key = parse_public_key_line(*line);
	Bytes blob = key ? key->blob : Bytes{};
	auto cert = key ? parse_certificate(blob) : Result<Certificate>(tl::unexpected(key.error()));
	if (!cert) {
		// The parse errors already start with "invalid certificate: " or
		// "invalid public key line: ".
		const std::string reason = cert.error().message;
		print.step("parse", "denied", reason);
		if (key && find_key_type_by_plain_name(key->type))
			print.more("this is a plain " + key->type + " public key; pass its certificate, the -cert.pub file "
			           "that ssh-keygen -s wrote");
		// authorize_login() would parse the same bytes again and word the
		// failure differently, so the parse step's reason stands for it.
		print.step("login", "skipped", "the certificate could not be parsed");
		return Verdict{false, reason};
	}

	show_certificate_checks(policy, role, *cert, request.now, print);
	if (auto revoked = revocation.check(*cert); revoked)
		print.step("revocation", "ok",
		           policy.config.revoked_keys.empty()
		               ? std::string("no revocation lists configured (revoked_keys)")
		               : "not in " + std::to_string(policy.config.revoked_keys.size()) + " revocation list(s)");
	else
		print.step("revocation", "denied", revoked.error().message);
	show_source_address(*cert, request.client_ip, print);
	show_grant(policy.config, request.role, *cert, print);
	certificate = *cert;

	auto grant = authorize_login(policy, revocation, request.role, blob, request.client_ip, request.now);
	if (!grant) {
		print.step("login", "denied", grant.error().message);
		return Verdict{false, grant.error().message};
	}
	print.step("login", "allowed", "authorize_login accepts key ID " + escape_untrusted(grant->certificate.key_id, 128) +
	                                   " as role \"" + grant->role->name + "\"");
	return Verdict{true, ""};
}

void show_words(std::string_view line, StepPrinter& print)
{
	auto words = tokenize_words(line);
	if (!words) {
		print.step("words", "denied", words.error().message);
		return;
	}
	if (words->empty()) {
		print.step("words", "", "none");
		return;
	}
	for (std::size_t i = 0; i < words->size(); ++i)
		print.step(i == 0 ? "words" : "", "",
		           "column " + std::to_string((*words)[i].column) + ": " + escape_untrusted((*words)[i].text, 128));
}

void show_arguments(const Decision& decision, StepPrinter& print)
{
	for (const auto& [name, value] : decision.arguments) {
		std::string type = "?";
		for (const auto& arg : decision.verb_spec->args)
			if (arg.name == name)
				type = std::string(arg_type_name(arg.type));
		print.step("argument", "ok", name + " (" + type + ") = " + escape_untrusted(value, 256));
	}
}

// Shows what would run: argv, account, directory, environment and limits.
void show_execution(const Role& role, const Decision& decision, const RunAs& run_as, StepPrinter& print)
{
	print.step("argv", "", join_quoted(decision.argv, " "));
	if (auto descriptors = path_descriptors(decision); !descriptors) {
		print.step("path descriptor", "denied", descriptors.error().message);
	} else {
		for (const auto& d : *descriptors)
			print.step("path descriptor", "",
			           "argv[" + std::to_string(d.argv_index) + "] becomes /proc/self/fd/N, opened read-only as " +
			               run_as.user + " beneath " + d.directory + " with no symbolic links");
	}

	std::string groups;
	for (const gid_t gid : run_as.groups)
		groups += (groups.empty() ? "" : ", ") + group_label(gid);
	print.step("run as", "ok", run_as.user + ": uid " + std::to_string(run_as.uid) + ", gid " + group_label(run_as.gid) +
	                               ", groups " + (groups.empty() ? std::string("unchanged (jead is not root)") : groups));
	print.step("working directory", "",
	           role.working_directory ? role.working_directory->string() : std::string("jead's own (not set by the role)"));

	// The role's entries are added after the base set, and a later entry
	// with the same name replaces the earlier one, as in spawn_process().
	std::vector<std::string> environment = base_environment();
	for (const auto& [name, value] : role.environment) {
		const std::string entry = name + "=" + value;
		auto same = std::find_if(environment.begin(), environment.end(),
		                         [&](const std::string& e) { return e.compare(0, name.size() + 1, name + "=") == 0; });
		if (same != environment.end())
			*same = entry;
		else
			environment.push_back(entry);
	}
	for (std::size_t i = 0; i < environment.size(); ++i)
		print.step(i == 0 ? "environment" : "", "", escape_untrusted(environment[i], 512));
	if (decision.verb_spec->interactive)
		print.step("terminal", "",
		           "interactive: with a client pty (ssh -t, or the shell) the program gets a pseudo-terminal of its "
		           "own, and TERM is the client's when it is a plain name; without a pty it runs on pipes");

	std::string limits;
	for (const auto& [name, value] : {std::pair{"cpu_seconds", role.limits.cpu_seconds},
	                                  std::pair{"open_files", role.limits.open_files},
	                                  std::pair{"file_size", role.limits.file_size},
	                                  std::pair{"processes", role.limits.processes}})
		if (value)
			limits += (limits.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(*value);
	print.step("limits", "", limits.empty() ? std::string("none set; the verb keeps jead's own") : limits);
	print.step("timeout", "", format_duration(static_cast<std::uint64_t>(decision.verb_spec->timeout.count())) +
	                              ", max_output " + format_size(decision.verb_spec->max_output_bytes));
}

// The command part, in the order SessionRunner::start_verb() checks a
// command: length, revocation, force-command, decide(), standard input,
// the jead-verbs@jead extension and the run-as account.
// NOTE: this order is restated from server/verb_run.cc, which has no
// function of its own for it; keep the two in step.
Verdict explain_command(const Policy& policy, const Role& role, const Certificate* cert, std::string_view no_cert,
                        bool revocation_ok, std::string_view line, StepPrinter& print)
{
	const auto max_length = policy.config.max_command_length;
	if (line.size() > max_length) {
		const std::string reason = "denied: the command line is " + std::to_string(line.size()) +
		                           " bytes; the limit is " + std::to_string(max_length) + " (max_command_length)";
		print.step("length", "denied", reason_text(reason));
		return {false, reason};
	}
	print.step("length", "ok", std::to_string(line.size()) + " bytes, max_command_length " + std::to_string(max_length));

	if (!cert) {
		print.step("revocation", "skipped", no_cert);
		print.step("force-command", "skipped", no_cert);
	} else {
		print.step("revocation", revocation_ok ? "ok" : "denied", "checked again before each command, as at login");
		if (!revocation_ok)
			return {false, "denied: the certificate is revoked or a revocation list is unusable"};
		const CertOption* forced = find_critical_option(*cert, "force-command");
		if (forced && forced->data != line) {
			const std::string reason = "denied: this certificate allows only the command " +
			                           escape_untrusted(forced->data) + " (force-command)";
			print.step("force-command", "denied", reason_text(reason));
			return {false, reason};
		}
		print.step("force-command", "ok", forced ? "the line equals the certificate's force-command"
		                                         : "the certificate has no force-command option");
	}

	show_words(line, print);
	const Decision decision = decide(role, line);
	if (decision.verb_spec)
		print.step("verb", "ok", decision.verb + " (" + decision.verb_spec->location + "), usage: " +
		                             verb_usage(*decision.verb_spec));
	if (!decision.allowed) {
		print.step("decide", "denied", reason_text(decision.reason));
		if (decision.column > 0) {
			const std::string caret = caret_line(line, decision.column);
			const auto newline = caret.find('\n');
			print.more(caret.substr(0, newline));
			print.more(caret.substr(newline + 1));
		}
		return {false, decision.reason};
	}
	show_arguments(decision, print);
	print.step("decide", "allowed", "every word fits verb \"" + decision.verb + "\"");

	if (decision.verb_spec->reads_stdin)
		print.step("stdin", "ok", "the verb reads standard input, so it runs only as its own command: ssh " + role.name +
		                              "@HOST " + decision.verb + " ARGS < FILE (explain assumes that form)");
	if (!cert) {
		print.step("jead-verbs@jead", "skipped", no_cert);
	} else if (!allowed_by_certificate_verbs(*cert, decision.verb)) {
		const std::string reason = "denied: this certificate's jead-verbs@jead extension does not list verb \"" +
		                           decision.verb + "\"";
		print.step("jead-verbs@jead", "denied", reason_text(reason));
		return {false, reason};
	} else {
		const bool listed = std::any_of(cert->extensions.begin(), cert->extensions.end(),
		                                [](const CertOption& e) { return e.name == kVerbsExtension; });
		print.step("jead-verbs@jead", "ok", listed ? "the extension lists \"" + decision.verb + "\""
		                                           : std::string("the certificate has no jead-verbs@jead extension"));
	}

	const auto& user = decision.verb_spec->run_as_user ? decision.verb_spec->run_as_user : role.run_as_user;
	auto run_as = resolve_run_as(user, role.run_as_group);
	if (!run_as) {
		const std::string reason = "denied: " + run_as.error().message;
		print.step("run as", "denied", run_as.error().message);
		return {false, reason};
	}
	show_execution(role, decision, *run_as, print);
	return {true, ""};
}

}  // namespace

std::optional<std::int64_t> parse_explain_time(std::string_view text)
{
	if (!text.empty() && text.size() <= 18 && text.find_first_not_of("0123456789") == std::string_view::npos)
		return std::stoll(std::string(text));
	if (text.size() != 20)
		return std::nullopt;
	std::tm tm{};
	const std::string copy(text);
	const char* end = ::strptime(copy.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == nullptr || *end != '\0')
		return std::nullopt;
	return static_cast<std::int64_t>(::timegm(&tm));
}

int explain(const ExplainRequest& request, std::ostream& out)
{
	StepPrinter print(out);
	auto loaded = load_policy(request.config_file);
	if (!loaded) {
		out << "error: " << loaded.error().message << "\n";
		return kExplainFailed;
	}
	const Policy& policy = **loaded;

	print.line("policy  " + request.config_file.string() + " (" + policy.version + ")");
	print.line("time    " + format_utc(static_cast<std::uint64_t>(request.now)) +
	           (request.now_from_option ? " (--at)" : " (now)"));
	print.line("client  " + request.client_ip + " (--from)");
	if (::geteuid() != 0)
		print.line("note    explain runs as uid " + std::to_string(::geteuid()) +
		           ", so run-as accounts resolve as they would for a jead that is not root");
	print.line("");

	print.line("login as " + escape_untrusted(request.role, 64));
	const Role* role = policy.find_role(request.role);
	if (role)
		print.step("role", "ok", role->name + " (" + role->file.string() + ")");
	else
		print.step("role", "denied", "no role named " + escape_untrusted(request.role, 64) +
		                                 "; the login name must be a role, as in ssh ROLE@HOST");
	Verdict login{true, ""};
	std::optional<Certificate> certificate;
	bool revocation_ok = true;
	RevocationWatch revocation(policy.config.revoked_keys);
	if (request.certificate_file) {
		print.step("certificate", "", request.certificate_file->string());
		auto verdict = explain_login(policy, request, revocation, certificate, print);
		if (!verdict) {
			out << "error: " << verdict.error().message << "\n";
			return kExplainFailed;
		}
		login = *verdict;
		revocation_ok = certificate && revocation.check(*certificate).has_value();
	} else {
		print.step("certificate", "skipped",
		           "no --cert: certificate, revocation, source address, principal grant, force-command and "
		           "jead-verbs@jead are not checked");
	}

	print.line("");
	if (!role) {
		print.line("result  denied at login: " + (login.allowed ? "no role named " + escape_untrusted(request.role, 64)
		                                                         : login.reason));
		return kExplainDenied;
	}

	print.line("command " + escape_untrusted(request.command_line, 512));
	const std::string no_cert = request.certificate_file ? "the certificate did not parse" : "no --cert";
	const Verdict command = explain_command(policy, *role, certificate ? &*certificate : nullptr, no_cert, revocation_ok,
	                                        request.command_line, print);
	print.line("");

	if (!login.allowed) {
		print.line("result  denied at login: " + login.reason);
		return kExplainDenied;
	}
	if (!command.allowed) {
		print.line("result  " + command.reason);
		return kExplainDenied;
	}
	print.line("result  allowed; nothing was run");
	return kExplainAllowed;
}

}  // namespace jead
