#include "roles/policy.h"

#include <algorithm>

#include "common/escape.h"
#include "roles/arguments.h"
#include "roles/tokenizer.h"

namespace jead {

namespace {

std::string display_name(const ArgSpec& arg)
{
	std::string out;
	for (const char c : arg.name)
		out += c == '-' ? '_' : static_cast<char>((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
	return out;
}

// A denial while binding words to arguments: the reason without the
// "denied: " prefix and the column it points at.
struct Denial {
	std::string reason;
	std::size_t column = 0;
};

// Items grouped by argument of a verb, in declaration order: argument i
// owns items [ends[i - 1], ends[i]). One flat vector instead of one vector
// per argument keeps the decision to a few allocations.
template <typename T>
struct Grouped {
	std::vector<T> items;
	std::vector<std::size_t> ends;

	std::size_t begin_of(std::size_t arg) const { return arg == 0 ? 0 : ends[arg - 1]; }
	std::size_t end_of(std::size_t arg) const { return ends[arg]; }
	bool empty_at(std::size_t arg) const { return begin_of(arg) == end_of(arg); }
};

tl::unexpected<Denial> deny(std::string reason, std::size_t column = 0)
{
	return tl::unexpected<Denial>(Denial{std::move(reason), column});
}

// Splits the words after the verb into flags and positional words, then
// assigns the positional words to the positional arguments.
tl::expected<Grouped<const Word*>, Denial> assign_words(const Verb& verb, const std::vector<Word>& words)
{
	std::vector<const Word*> flag_word(verb.args.size(), nullptr);
	std::vector<const Word*> positional;
	positional.reserve(words.size());
	// Built only for a denial: allowed lines are the common case.
	const auto usage = [&verb] { return " (usage: " + verb_usage(verb) + ")"; };

	for (std::size_t w = 1; w < words.size(); ++w) {
		const Word& word = words[w];
		bool is_flag = false;
		for (std::size_t i = 0; i < verb.args.size(); ++i) {
			const ArgSpec& arg = verb.args[i];
			if (arg.type != ArgType::flag || arg.flag_text != word.text)
				continue;
			if (flag_word[i] != nullptr)
				return deny("flag " + escape_untrusted(word.text) + " given twice at column " +
				                std::to_string(word.column) + usage(),
				            word.column);
			flag_word[i] = &word;
			is_flag = true;
		}
		if (!is_flag)
			positional.push_back(&word);
	}

	std::size_t required = 0;
	for (const auto& arg : verb.args)
		if (arg.type != ArgType::flag && !arg.optional)
			++required;

	Grouped<const Word*> assigned;
	assigned.items.reserve(words.size());
	assigned.ends.reserve(verb.args.size());

	// The loader guarantees that required arguments precede optional ones
	// and that a variadic argument is last, so a single pass in order
	// binds every word.
	std::size_t extra = positional.size() > required ? positional.size() - required : 0;
	std::size_t next = 0;
	for (std::size_t i = 0; i < verb.args.size(); ++i) {
		const ArgSpec& arg = verb.args[i];
		if (arg.type == ArgType::flag) {
			if (flag_word[i] != nullptr)
				assigned.items.push_back(flag_word[i]);
			assigned.ends.push_back(assigned.items.size());
			continue;
		}

		std::size_t take = 0;
		if (!arg.optional) {
			if (next == positional.size())
				return deny("missing argument \"" + arg.name + "\"" + usage());
			take = 1;
		}
		const std::size_t room = arg.variadic ? arg.max_count - take : (arg.optional ? 1 : 0);
		const std::size_t more = std::min(extra, room);
		take += more;
		extra -= more;

		for (std::size_t k = 0; k < take; ++k)
			assigned.items.push_back(positional[next++]);
		assigned.ends.push_back(assigned.items.size());
	}

	if (next < positional.size()) {
		const Word& word = *positional[next];
		return deny("unexpected extra argument " + escape_untrusted(word.text) + " at column " +
		                std::to_string(word.column) + usage(),
		            word.column);
	}
	return assigned;
}

// Validates every assigned word and fills defaults, returning the canonical
// values grouped by argument. Every argument is checked before anything is
// returned.
tl::expected<Grouped<std::string>, Denial> bind_arguments(const Verb& verb, const std::vector<Word>& words)
{
	auto assigned = assign_words(verb, words);
	if (!assigned)
		return tl::unexpected(assigned.error());

	Grouped<std::string> values;
	values.items.reserve(assigned->items.size() + verb.args.size());
	values.ends.reserve(verb.args.size());
	for (std::size_t i = 0; i < verb.args.size(); ++i) {
		const ArgSpec& arg = verb.args[i];
		for (std::size_t k = assigned->begin_of(i); k < assigned->end_of(i); ++k) {
			const Word& word = *assigned->items[k];
			auto value = validate_argument(arg, word.text);
			if (!value)
				return deny(value.error().message, word.column);
			values.items.push_back(std::move(*value));
		}

		if (assigned->empty_at(i) && arg.default_value) {
			auto value = validate_argument(arg, *arg.default_value);
			if (!value)
				return deny("the default of " + value.error().message);
			values.items.push_back(std::move(*value));
		}
		values.ends.push_back(values.items.size());
	}
	return values;
}

}  // namespace

std::string verb_usage(const Verb& verb)
{
	std::string usage = verb.name;
	for (const auto& arg : verb.args) {
		usage += ' ';
		if (arg.type == ArgType::flag) {
			usage += "[" + arg.flag_text + "]";
			continue;
		}
		std::string placeholder = display_name(arg);
		if (arg.variadic)
			placeholder += "...";
		usage += arg.optional ? "[" + placeholder + "]" : placeholder;
	}
	return usage;
}

Decision decide(const Role& role, std::string_view command_line)
{
	Decision decision;

	auto words = tokenize_words(command_line);
	if (!words) {
		decision.reason = "denied: " + words.error().message;
		decision.column = words.error().column;
		return decision;
	}
	if (words->empty()) {
		decision.reason = "denied: empty command";
		return decision;
	}

	decision.verb = words->front().text;
	const Verb* verb = role.find_verb(decision.verb);
	if (verb == nullptr) {
		decision.reason = "denied: unknown verb " + escape_untrusted(decision.verb) + " in role \"" + role.name + "\"";
		decision.column = 1;
		return decision;
	}
	decision.verb_spec = verb;

	auto values = bind_arguments(*verb, *words);
	if (!values) {
		decision.reason = "denied: " + values.error().reason;
		decision.column = values.error().column;
		return decision;
	}

	// Copy each value into `arguments` before moving it into argv: every
	// argument is used by exactly one placeholder, so each value moves once.
	decision.arguments.reserve(values->items.size());
	for (std::size_t i = 0; i < verb->args.size(); ++i)
		for (std::size_t k = values->begin_of(i); k < values->end_of(i); ++k)
			decision.arguments.emplace_back(verb->args[i].name, values->items[k]);

	std::vector<std::string> argv;
	argv.reserve(1 + verb->argv_template.size() + values->items.size());
	argv.push_back(verb->program);
	for (const auto& element : verb->argv_template) {
		if (!element.arg_index) {
			argv.push_back(element.literal);
			continue;
		}
		const std::size_t arg = *element.arg_index;
		for (std::size_t k = values->begin_of(arg); k < values->end_of(arg); ++k)
			argv.push_back(std::move(values->items[k]));
	}

	decision.argv = std::move(argv);
	decision.allowed = true;
	decision.reason = "allowed";
	return decision;
}

Result<std::vector<PathDescriptor>> path_descriptors(const Decision& decision)
{
	std::vector<PathDescriptor> descriptors;
	const Verb* verb = decision.verb_spec;
	if (!decision.allowed || verb == nullptr)
		return descriptors;

	// decide() fills argv from the template in order and lists the values
	// of each argument in `arguments` in the same order, so walking the
	// template again finds each value's argv index.
	std::size_t argv_index = 1;
	for (const auto& element : verb->argv_template) {
		if (!element.arg_index) {
			++argv_index;
			continue;
		}
		const ArgSpec& spec = verb->args[*element.arg_index];
		for (const auto& [name, value] : decision.arguments) {
			if (name != spec.name)
				continue;
			if (spec.type == ArgType::path && spec.bind_descriptor) {
				auto target = path_descriptor_target(spec, value);
				if (!target)
					return tl::unexpected(target.error());
				descriptors.push_back(PathDescriptor{argv_index, spec.name, value, std::move(target->directory),
				                                     std::move(target->relative), spec.path_kind});
			}
			++argv_index;
		}
	}
	return descriptors;
}

}  // namespace jead
