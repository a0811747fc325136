// Texts of the role shell: banner, prompt, help and tab completion, all
// generated from the role's verbs and argument schemas.
#include <nlohmann/json.hpp>

#include <sstream>

#include "roles/arguments.h"
#include "roles/policy.h"
#include "server/session_internal.h"

namespace jead {

std::string format_time_left(std::int64_t seconds)
{
	if (seconds <= 0)
		return "0s";
	if (seconds < 60)
		return std::to_string(seconds) + "s";
	const std::int64_t minutes = seconds / 60;
	if (minutes < 60)
		return std::to_string(minutes) + "m";
	return std::to_string(minutes / 60) + "h" + std::to_string(minutes % 60) + "m";
}

std::string shell_banner(const Role& role, std::int64_t seconds_left)
{
	std::string text = "jead: role " + role.name;
	if (!role.description.empty())
		text += " (" + role.description + ")";
	text += "; certificate valid for " + format_time_left(seconds_left) +
	        ". Type help for the verbs, exit to leave.\n";
	return text;
}

std::string shell_prompt(const Role& role, std::int64_t seconds_left)
{
	return role.name + " [" + format_time_left(seconds_left) + " left]> ";
}

std::string help_text(const Role& role, bool in_shell, const VerbFilter& shown)
{
	std::size_t width = 4;
	for (const auto& verb : role.verbs)
		if (shown(verb.name))
			width = std::max(width, verb.name.size());

	std::ostringstream out;
	out << "Verbs of role " << role.name << ":\n";
	for (const auto& verb : role.verbs)
		if (shown(verb.name))
			out << "  " << verb.name << std::string(width - verb.name.size() + 2, ' ') << verb.description << "\n";
	out << "  help" << std::string(width - 4 + 2, ' ') << "list the verbs, or show one verb's usage: help VERB\n";
	if (in_shell)
		out << "  exit" << std::string(width - 4 + 2, ' ') << "end the session\n";
	return out.str();
}

namespace {

std::string describe_argument(const ArgSpec& arg)
{
	std::ostringstream out;
	out << arg_type_name(arg.type);
	switch (arg.type) {
	case ArgType::enum_: {
		out << ", one of:";
		for (const auto& value : arg.values)
			out << " " << value;
		break;
	}
	case ArgType::int_:
		out << " from " << arg.min << " to " << arg.max;
		break;
	case ArgType::string:
		out << " matching " << arg.pattern << ", at most " << arg.max_length << " bytes";
		break;
	case ArgType::path: {
		out << " under";
		for (const auto& prefix : arg.prefixes)
			out << " " << prefix;
		break;
	}
	case ArgType::flag:
		out << " " << arg.flag_text;
		break;
	default:
		break;
	}
	if (arg.optional)
		out << "; optional";
	if (arg.default_value)
		out << ", default " << *arg.default_value;
	if (arg.variadic)
		out << "; up to " << arg.max_count << " values";
	return out.str();
}

}  // namespace

std::string verb_help_text(const Verb& verb)
{
	std::ostringstream out;
	out << "usage: " << verb_usage(verb) << "\n";
	if (!verb.description.empty())
		out << "  " << verb.description << "\n";
	for (const auto& arg : verb.args) {
		out << "  " << arg.name << ": " << describe_argument(arg);
		if (!arg.description.empty())
			out << " (" << arg.description << ")";
		out << "\n";
	}
	return out.str();
}

std::vector<std::string> complete_words(const Role& role, std::string_view before, const VerbFilter& shown)
{
	const auto last_space = before.find_last_of(' ');
	const std::string_view typed = last_space == std::string_view::npos ? before : before.substr(last_space + 1);
	std::vector<std::string> candidates;
	const auto add_matching = [&](const std::string& word) {
		if (word.compare(0, typed.size(), typed) == 0)
			candidates.push_back(word);
	};

	if (last_space == std::string_view::npos) {
		for (const auto& verb : role.verbs)
			if (shown(verb.name))
				add_matching(verb.name);
		for (const std::string builtin : {"help", "exit"})
			add_matching(builtin);
		return candidates;
	}

	// Later words: the enum values and flags of the verb named first.
	const std::string_view verb_name = before.substr(0, before.find(' '));
	if (verb_name == "help") {
		for (const auto& verb : role.verbs)
			if (shown(verb.name))
				add_matching(verb.name);
		return candidates;
	}
	const Verb* verb = role.find_verb(verb_name);
	if (!verb)
		return candidates;
	for (const auto& arg : verb->args) {
		if (arg.type == ArgType::enum_) {
			for (const auto& value : arg.values)
				add_matching(value);
		} else if (arg.type == ArgType::flag) {
			add_matching(arg.flag_text);
		}
	}
	return candidates;
}

Result<std::string> json_words_to_line(std::string_view json, std::size_t max_words)
{
	nlohmann::json words;
	const std::string expected = "send a non-empty array of strings, such as [\"status\", \"nginx.service\"]";
	try {
		words = nlohmann::json::parse(json);
	} catch (const nlohmann::json::parse_error& e) {
		// The library's own message quotes the bytes it read last, which
		// may be binary, so only the position is passed on.
		return fail(Errc::invalid,
		            "invalid JSON request: syntax error at byte " + std::to_string(e.byte) + "; " + expected);
	} catch (const nlohmann::json::exception&) {
		return fail(Errc::invalid, "invalid JSON request; " + expected);
	}
	if (!words.is_array() || words.empty())
		return fail(Errc::invalid, "invalid JSON request: not an array, or empty; " + expected);
	if (words.size() > max_words)
		return fail(Errc::limit, "invalid JSON request: more than " + std::to_string(max_words) + " words");

	std::string line;
	for (const auto& word : words) {
		if (!word.is_string())
			return fail(Errc::invalid, "invalid JSON request: every word must be a string");
		if (!line.empty())
			line += ' ';
		line += '\'';
		for (char c : word.get<std::string>()) {
			if (c == '\'')
				line += "'\\''";
			else
				line += c;
		}
		line += '\'';
	}
	return line;
}

}  // namespace jead
