#include "compile.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>

#include "canonical_json.h"
#include "json_reader.h"
#include "json_util.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using Fields = std::initializer_list<std::string_view>;

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

// Whether `value` is the JSON string `word`: what `value == json(word)` says,
// without building a json to compare with (nlohmann's operator== and a
// string value's constructor are code a first compile would otherwise run).
bool is_word(const json& value, std::string_view word) { return value.is_string() && as_string(value) == word; }

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate nearest to `name` (edit distance 1 or 2; the first of equals),
// or "" when none is near enough to suggest.
template <typename Names>
std::string_view closest_name(std::string_view name, const Names& candidates) {
  std::string_view closest;
  std::size_t best = 3;
  for (std::string_view candidate : candidates) {
    std::size_t distance = edit_distance(name, candidate);
    if (distance < best) {
      best = distance;
      closest = candidate;
    }
  }
  return closest;
}

template <typename Names>
std::string quoted_list(const Names& names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += '"';
    out += name;
    out += '"';
  }
  return out;
}

// "minute", "10s", "5m", "2h", "1d", "s", or a JSON number of seconds.
std::optional<std::int64_t> parse_duration_ms(const json& value) {
  if (value.is_number()) {
    double seconds = as_double(value);
    if (!(seconds > 0) || std::floor(seconds) != seconds || seconds > 1e12) return std::nullopt;
    return static_cast<std::int64_t>(seconds) * 1000;
  }
  if (!value.is_string()) return std::nullopt;
  const std::string& text = as_string(value);
  static constexpr std::pair<std::string_view, std::int64_t> kNamed[] = {
      {"second", 1000}, {"minute", 60000}, {"hour", 3600000}, {"day", 86400000},
      {"seconds", 1000}, {"minutes", 60000}, {"hours", 3600000}, {"days", 86400000},
      {"sec", 1000}, {"secs", 1000}, {"min", 60000}, {"mins", 60000}, {"hr", 3600000}, {"hrs", 3600000}};
  for (auto [name, ms] : kNamed) {
    if (text == name) return ms;
  }
  if (text.empty()) return std::nullopt;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1000; break;
    case 'm': unit = 60000; break;
    case 'h': unit = 3600000; break;
    case 'd': unit = 86400000; break;
    default: return std::nullopt;
  }
  std::string_view digits(text.data(), text.size() - 1);
  if (digits.empty()) return unit;
  if (digits.size() > 9 || digits.front() == '0') return std::nullopt;
  std::int64_t count = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (error != std::errc() || end != digits.data() + digits.size() || count <= 0) return std::nullopt;
  return count * unit;
}

std::optional<Op> parse_op(std::string_view name) {
  static constexpr std::pair<std::string_view, Op> kOps[] = {
      {"eq", Op::eq},           {"neq", Op::neq},
      {"lt", Op::lt},           {"lte", Op::lte},
      {"gt", Op::gt},           {"gte", Op::gte},
      {"in", Op::in},           {"not_in", Op::not_in},
      {"exists", Op::exists},   {"regex", Op::regex},
      {"contains", Op::contains}, {"starts_with", Op::starts_with},
      {"ends_with", Op::ends_with}, {"glob", Op::glob}};
  for (auto [text, op] : kOps) {
    if (text == name) return op;
  }
  return std::nullopt;
}

constexpr std::string_view kOperatorNames[] = {"eq", "neq", "lt", "lte", "gt", "gte", "in", "not_in",
                                   "exists", "regex", "contains", "starts_with", "ends_with", "glob"};

// How a generated denial message names a condition ("args.amount gt 500").
std::string describe_condition(const Condition& condition) {
  std::string text = condition.path.text() + " " + std::string(kOperatorNames[static_cast<int>(condition.op)]);
  if (condition.op != Op::exists) text += " " + describe(condition.value, 40);
  return text;
}

std::string window_text(std::int64_t window_ms) {
  static constexpr std::pair<std::int64_t, const char*> kUnits[] = {
      {86400000, "day"}, {3600000, "hour"}, {60000, "minute"}, {1000, "second"}};
  for (auto [unit, name] : kUnits) {
    if (window_ms % unit != 0) continue;
    std::int64_t count = window_ms / unit;
    return count == 1 ? std::string(name) : std::to_string(count) + " " + name + "s";
  }
  return std::to_string(window_ms) + " ms";
}

// describe(number_json(value)): a whole number below 2^53 (any max a policy
// of whole numbers sets) through std::to_string, which writes the digits
// nlohmann's serializer would, without running the serializer's code on a
// cold start; anything else through describe.
std::string number_text(double value) {
  if (value > -9007199254740992.0 && value < 9007199254740992.0 && value == std::trunc(value))
    return std::to_string(static_cast<std::int64_t>(value));
  return describe(number_json(value));
}

std::string generated_limit_message(const Limit& limit) {
  const bool units = limit.cost_from || limit.cost != 1;
  std::string text = "Rate limit exceeded: at most " + number_text(limit.max) +
                     (units ? " units" : limit.max == 1 ? " call" : " calls") + " per " + window_text(limit.window_ms);
  text += limit.scope == Scope::global ? " for everyone" : " for this grant";
  if (limit.key) text += ", per value of " + limit.key->text();
  return text + ".";
}

// What evaluation needs of a limit that does not depend on the call.
void finish_limits(std::vector<Limit>& limits, const std::string& tool_on_deny) {
  for (Limit& limit : limits) {
    limit.message = !limit.on_deny.empty() ? limit.on_deny
                    : !tool_on_deny.empty() ? tool_on_deny
                                            : generated_limit_message(limit);
    // canonical_json([counter, window_ms, algorithm]) without its brackets,
    // written directly (no DOM; the number as ECMAScript writes it, which for
    // an integer below 2^53 is its decimal digits).
    std::string& tail = limit.key_tail;
    tail.clear();
    append_json_string(tail, limit.counter);
    tail += ',';
    tail += limit.window_ms >= 0 && limit.window_ms <= static_cast<std::int64_t>(kMaxSafeInteger)
                ? std::to_string(limit.window_ms)
                : ecmascript_number(static_cast<double>(limit.window_ms));
    tail += limit.algorithm == Algorithm::fixed ? ",\"fixed\"" : ",\"sliding\"";
  }
}

class Compiler {
 public:
  Compiler(const SourceMap& source_map, std::vector<Diagnostic>& diagnostics)
      : source_map_(source_map), diagnostics_(diagnostics) {}

  std::shared_ptr<Plan> compile(const json& document) {
    auto plan = std::make_shared<Plan>();
    if (!expect_type(document, json::value_t::object, "", "the policy must be a JSON object")) return nullptr;
    check_fields(document, "", {"$schema", "version", "default", "description", "mode", "hide", "all_tools", "tools"});
    const auto& object = document.get_ref<const json::object_t&>();

    if (auto it = object.find("version"); it == object.end()) {
      error("missing_field", "", "the policy has no \"version\"; add \"version\": \"1\"");
    } else if (!it->second.is_string() || as_string(it->second) != "1") {
      error("unsupported_version", "/version",
            "\"version\" must be the string \"1\" (got " + describe(it->second) + ")");
    }

    if (auto it = object.find("default"); it == object.end()) {
      warning("missing_default", "",
              "the policy has no \"default\": tools without an entry are denied; add \"default\": \"deny\" "
              "(or \"allow\") to say so");
    } else if (is_word(it->second, "allow")) {
      plan->default_allow = true;
    } else if (!is_word(it->second, "deny")) {
      error("invalid_value", "/default", "\"default\" must be \"allow\" or \"deny\" (got " + describe(it->second) + ")");
    }

    if (auto it = object.find("mode"); it != object.end()) plan->monitor = compile_mode(it->second, "/mode");
    if (auto it = object.find("description"); it != object.end()) {
      if (expect_type(it->second, json::value_t::string, "/description", "\"description\" must be a string"))
        plan->description = as_string(it->second);
    }
    if (auto it = object.find("$schema"); it != object.end()) {
      expect_type(it->second, json::value_t::string, "/$schema", "\"$schema\" must be a string (a URL or path)");
    }
    if (auto it = object.find("hide"); it != object.end()) compile_hide(it->second, *plan);
    if (auto it = object.find("all_tools"); it != object.end()) {
      if (expect_type(it->second, json::value_t::object, "/all_tools", "\"all_tools\" must be an object")) {
        check_fields(it->second, "/all_tools", {"require", "deny_if", "limits", "rate_limit"});
        compile_rules(it->second, "/all_tools", plan->all_tools);
        finish_limits(plan->all_tools.limits, "");
      }
    }
    if (auto it = object.find("tools"); it != object.end()) compile_tools(it->second, *plan);
    record_argument_use(*plan);
    record_names(*plan);
    return plan;
  }

 private:
  // --- which arguments evaluation reads (plan.h, ArgumentUse) ---------------
  static void add_path(const Path& path, ArgumentUse& use) {
    if (path.root() == Path::Root::args) use.keys.push_back(path.first_segment());
  }

  static void add_rules(const RuleSet& rules, ArgumentUse& use) {
    for (const auto* groups : {&rules.require, &rules.deny_if}) {
      for (const ConditionGroup& group : *groups) {
        for (const Condition& condition : group.conditions) add_path(condition.path, use);
      }
    }
    for (const Limit& limit : rules.limits) {
      if (limit.key) add_path(*limit.key, use);
      if (limit.cost_from) add_path(*limit.cost_from, use);
    }
  }

  static void settle(ArgumentUse& use) {
    std::sort(use.keys.begin(), use.keys.end());
    use.keys.erase(std::unique(use.keys.begin(), use.keys.end()), use.keys.end());
    if (use.all) use.keys.clear();
  }

  static void record_argument_use(Plan& plan) {
    if (plan.default_allow) add_rules(plan.all_tools, plan.default_argument_use);
    settle(plan.default_argument_use);
    for (ToolEntry& entry : plan.tools) {
      ArgumentUse& use = entry.argument_use;
      if (entry.action == Action::deny) continue;  // denied before any argument is read
      use.all = entry.args.has_value() || entry.action == Action::require_approval;
      add_rules(entry.rules, use);
      add_rules(plan.all_tools, use);
      settle(use);
    }
  }

  // --- diagnostics ---------------------------------------------------------
  void report(Severity severity, std::string code, const std::string& pointer, std::string message,
              bool at_key = false) {
    Diagnostic diagnostic;
    diagnostic.code = std::move(code);
    diagnostic.severity = severity;
    diagnostic.message = std::move(message);
    diagnostic.pointer = pointer;
    reported_.emplace_back(diagnostics_.size(), at_key);
    diagnostics_.push_back(std::move(diagnostic));
  }

 public:
  // Fills in line:column of the diagnostics reported here from a source map
  // of the whole document (the one compiling used holds only the top levels).
  void locate(const SourceMap& full_map) {
    for (auto [index, at_key] : reported_) {
      auto [line, column] = full_map.locate(diagnostics_[index].pointer, at_key);
      diagnostics_[index].line = line;
      diagnostics_[index].column = column;
    }
  }
  bool reported_anything() const { return !reported_.empty(); }

 private:
  void error(std::string code, const std::string& pointer, std::string message, bool at_key = false) {
    report(Severity::error, std::move(code), pointer, std::move(message), at_key);
  }
  void warning(std::string code, const std::string& pointer, std::string message) {
    report(Severity::warning, std::move(code), pointer, std::move(message));
  }

  bool expect_type(const json& value, json::value_t type, const std::string& pointer, const std::string& message) {
    bool matches = value.type() == type;
    if (!matches) error("wrong_type", pointer, message + " (got " + std::string(type_name(value)) + ")");
    return matches;
  }

  // Unknown fields are errors: a typo such as "deny_iff" must never weaken a policy.
  void check_fields(const json& object, const std::string& pointer, Fields allowed) {
    for (const auto& [name, value] : object.get_ref<const json::object_t&>()) {
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      std::string message = "unknown field \"" + name + "\"";
      std::string_view closest = closest_name(name, allowed);
      if (!closest.empty()) {
        message += "; did you mean \"" + std::string(closest) + "\"?";
      } else {
        message += "; allowed here: " + quoted_list(allowed);
      }
      error("unknown_field", pointer + "/" + escape_pointer_token(name), message, /*at_key=*/true);
    }
  }


  std::optional<std::string> optional_string(const json& object, std::string_view name, const std::string& pointer) {
    const json* value = find_member(object, name);
    if (!value) return std::nullopt;
    std::string at = pointer + "/" + std::string(name);
    if (!expect_type(*value, json::value_t::string, at, "\"" + std::string(name) + "\" must be a string"))
      return std::nullopt;
    return as_string(*value);
  }

  // A positive integer no larger than 2^53 - 1 (JSON numbers like 10.0 count).
  std::optional<double> positive_integer(const json& value, const std::string& pointer, std::string_view what) {
    if (value.is_number()) {
      double number = as_double(value);
      if (number >= 1 && number <= kMaxSafeInteger && std::floor(number) == number) return number;
    }
    error(value.is_number() ? "invalid_value" : "wrong_type", pointer,
          "\"" + std::string(what) + "\" must be a positive whole number (got " + describe(value) + ")");
    return std::nullopt;
  }

  std::optional<Path> path(const json& value, const std::string& pointer) {
    if (!expect_type(value, json::value_t::string, pointer, "a path must be a string such as \"args.amount\""))
      return std::nullopt;
    std::string problem;
    auto parsed = Path::parse(as_string(value), problem);
    if (!parsed) error("invalid_path", pointer, problem);
    return parsed;
  }

  // --- the names a policy mentions (plan.h, PolicyNames) --------------------
  static void record_names(Plan& plan) {
    auto add = [&plan](const std::string& name) {
      (name.find('*') == std::string::npos ? plan.names.exact : plan.names.globs).push_back(name);
    };
    for (const HideEntry& entry : plan.hide) add(entry.glob.pattern());
    for (const ToolEntry& entry : plan.tools) add(entry.key);
    for (auto* list : {&plan.names.exact, &plan.names.globs}) {
      std::sort(list->begin(), list->end());
      list->erase(std::unique(list->begin(), list->end()), list->end());
    }
  }

  // --- hide and tools ------------------------------------------------------
  void compile_hide(const json& hide, Plan& plan) {
    if (!expect_type(hide, json::value_t::array, "/hide", "\"hide\" must be a list of tool names or globs")) return;
    const auto& entries = hide.get_ref<const json::array_t&>();
    for (std::size_t i = 0; i < entries.size(); ++i) {
      std::string pointer = "/hide/" + std::to_string(i);
      if (!expect_type(entries[i], json::value_t::string, pointer, "a \"hide\" entry must be a tool name or glob"))
        continue;
      if (as_string(entries[i]).empty()) {
        error("invalid_value", pointer, "a \"hide\" entry must not be empty");
        continue;
      }
      plan.hide.push_back(HideEntry{Glob(as_string(entries[i])), pointer});
    }
  }

  void compile_tools(const json& tools, Plan& plan) {
    if (!expect_type(tools, json::value_t::object, "/tools", "\"tools\" must be an object from tool name to entry"))
      return;
    struct GlobKey {
      std::size_t literal_length;
      std::size_t offset;
      std::size_t index;
    };
    std::vector<GlobKey> globs;
    // Sized once: growing by doubling would leave up to half the (large)
    // entries' worth of unused capacity in the plan for its whole life.
    plan.tools.reserve(tools.size());
    plan.exact_tools.reserve(tools.size());
    for (const auto& [name, value] : tools.get_ref<const json::object_t&>()) {
      std::string pointer = "/tools/" + escape_pointer_token(name);
      if (name.empty()) {
        error("invalid_value", pointer, "a tool name must not be empty", /*at_key=*/true);
        continue;
      }
      ToolEntry entry;
      entry.key = name;
      entry.pointer = pointer;
      if (!compile_tool(value, entry)) continue;
      for (const HideEntry& hidden : plan.hide) {
        if (hidden.glob.matches(name)) {
          warning("hidden_tool_entry", pointer,
                  "tool \"" + name + "\" is hidden by " + hidden.pointer + ", so this entry never applies");
          break;
        }
      }
      std::size_t index = plan.tools.size();
      if (name.find('*') != std::string::npos) {  // Glob::has_wildcard; the Glob is built below
        const SourceSpan* span = source_map_.find(pointer);
        // Glob::literal_length: the characters that are not `*`.
        const std::size_t literal_length = name.size() - static_cast<std::size_t>(std::count(name.begin(), name.end(), '*'));
        globs.push_back(GlobKey{literal_length, span ? span->key_offset : index, index});
      } else {
        plan.exact_tools.emplace(name, index);
      }
      plan.tools.push_back(std::move(entry));
    }
    // Most literal characters first; ties go to the key written first. (Not
    // called for fewer than two: a policy without glob keys runs no sort code.)
    if (globs.size() > 1) {
      std::stable_sort(globs.begin(), globs.end(), [](const GlobKey& a, const GlobKey& b) {
        return a.literal_length != b.literal_length ? a.literal_length > b.literal_length : a.offset < b.offset;
      });
    }
    for (const GlobKey& key : globs) plan.glob_tools.emplace_back(Glob(plan.tools[key.index].key), key.index);
  }

  bool compile_tool(const json& value, ToolEntry& entry) {
    const std::string& pointer = entry.pointer;
    if (!expect_type(value, json::value_t::object, pointer,
                     "a tool entry must be an object ({} allows the tool with no further checks)"))
      return false;
    check_fields(value, pointer,
                 {"action", "on_deny", "reason", "args", "require", "deny_if", "limits", "rate_limit", "approval", "mode"});
    if (const json* mode = find_member(value, "mode")) entry.monitor = compile_mode(*mode, pointer + "/mode");
    if (const json* action = find_member(value, "action")) {
      if (is_word(*action, "allow")) {
        entry.action = Action::allow;
      } else if (is_word(*action, "deny")) {
        entry.action = Action::deny;
      } else if (is_word(*action, "require_approval")) {
        entry.action = Action::require_approval;
      } else {
        error("invalid_value", pointer + "/action",
              "\"action\" must be \"allow\", \"deny\" or \"require_approval\" (got " + describe(*action) + ")");
      }
    }
    auto on_deny = optional_string(value, "on_deny", pointer);
    auto reason = optional_string(value, "reason", pointer);
    if (on_deny && reason) {
      error("conflicting_fields", pointer + "/reason",
            "\"reason\" is an alias of \"on_deny\"; give only one of them", /*at_key=*/true);
    }
    entry.on_deny = on_deny ? *on_deny : reason ? *reason : "";
    if (const json* args = find_member(value, "args")) {
      Schema schema;
      if (compile_schema(*args, pointer + "/args", schema, 0)) entry.args = std::move(schema);
    }
    if (const json* approval = find_member(value, "approval")) {
      std::string at = pointer + "/approval";
      if (expect_type(*approval, json::value_t::object, at, "\"approval\" must be an object such as {\"timeout\": \"10m\"}")) {
        check_fields(*approval, at, {"timeout"});
        if (const json* timeout = find_member(*approval, "timeout")) {
          if (auto ms = parse_duration_ms(*timeout)) {
            entry.approval_timeout_ms = *ms;
          } else {
            error("invalid_value", at + "/timeout",
                  "\"timeout\" must be a duration such as \"30s\", \"10m\", \"2h\", \"1d\", \"hour\", or a whole number of seconds (got " +
                      describe(*timeout) + ")");
          }
        }
      }
      if (entry.action != Action::require_approval) {
        warning("unused_field", at, "\"approval\" only applies when \"action\" is \"require_approval\"");
      }
    }
    compile_rules(value, pointer, entry.rules);
    finish_limits(entry.rules.limits, entry.on_deny);
    return true;
  }

  // --- rule sets: require, deny_if, limits, rate_limit ---------------------
  void compile_rules(const json& object, const std::string& pointer, RuleSet& rules) {
    if (const json* require = find_member(object, "require")) {
      compile_groups(*require, pointer + "/require", rules.require, /*allow_single_condition=*/true);
    }
    if (const json* deny_if = find_member(object, "deny_if")) {
      compile_groups(*deny_if, pointer + "/deny_if", rules.deny_if, /*allow_single_condition=*/false);
    }
    if (const json* limits = find_member(object, "limits")) {
      std::string at = pointer + "/limits";
      if (expect_type(*limits, json::value_t::array, at, "\"limits\" must be a list of limits")) {
        const auto& entries = limits->get_ref<const json::array_t&>();
        for (std::size_t i = 0; i < entries.size(); ++i) {
          Limit limit;
          if (compile_limit(entries[i], at + "/" + std::to_string(i), limit)) rules.limits.push_back(std::move(limit));
        }
      }
    }
    if (const json* rate_limit = find_member(object, "rate_limit")) {
      Limit limit;
      if (compile_rate_limit(*rate_limit, pointer + "/rate_limit", limit)) rules.limits.push_back(std::move(limit));
    }
  }

  void compile_groups(const json& list, const std::string& pointer, std::vector<ConditionGroup>& groups,
                      bool allow_single_condition) {
    std::string field = allow_single_condition ? "require" : "deny_if";
    if (!expect_type(list, json::value_t::array, pointer, "\"" + field + "\" must be a list")) return;
    const auto& entries = list.get_ref<const json::array_t&>();
    for (std::size_t i = 0; i < entries.size(); ++i) {
      std::string at = pointer + "/" + std::to_string(i);
      const json& entry = entries[i];
      std::string shape = allow_single_condition
                              ? "a condition {\"path\", \"op\", \"value\"} or {\"conditions\": [...], \"on_deny\": \"...\"}"
                              : "{\"conditions\": [...], \"on_deny\": \"...\"}";
      if (!expect_type(entry, json::value_t::object, at, "a \"" + field + "\" entry must be " + shape)) continue;
      ConditionGroup group;
      group.pointer = at;
      bool ok = true;
      if (allow_single_condition && find_member(entry, "conditions") == nullptr) {
        // One condition, optionally with its own message.
        Condition condition;
        ok = compile_condition(entry, at, condition, /*allow_on_deny=*/true);
        group.conditions.push_back(std::move(condition));
        if (auto on_deny = optional_string(entry, "on_deny", at)) group.on_deny = *on_deny;
      } else {
        check_fields(entry, at, {"conditions", "on_deny"});
        const json* conditions = find_member(entry, "conditions");
        if (!conditions) {
          error("missing_field", at, "a \"deny_if\" entry needs \"conditions\": a list of conditions that all must hold");
          continue;
        }
        std::string conditions_at = at + "/conditions";
        if (!expect_type(*conditions, json::value_t::array, conditions_at, "\"conditions\" must be a list")) continue;
        const auto& items = conditions->get_ref<const json::array_t&>();
        if (items.empty()) {
          error("invalid_value", conditions_at,
                "\"conditions\" must not be empty (an empty list would always hold); list at least one condition");
          continue;
        }
        for (std::size_t j = 0; j < items.size(); ++j) {
          Condition condition;
          ok = compile_condition(items[j], conditions_at + "/" + std::to_string(j), condition) && ok;
          group.conditions.push_back(std::move(condition));
        }
        if (auto on_deny = optional_string(entry, "on_deny", at)) group.on_deny = *on_deny;
      }
      if (ok) {
        for (Condition& condition : group.conditions) condition.description = describe_condition(condition);
        groups.push_back(std::move(group));
      }
    }
  }

  bool compile_condition(const json& value, const std::string& pointer, Condition& condition,
                         bool allow_on_deny = false) {
    if (!expect_type(value, json::value_t::object, pointer, "a condition must be an object {\"path\", \"op\", \"value\"}"))
      return false;
    if (allow_on_deny) {
      check_fields(value, pointer, {"path", "op", "value", "on_deny"});
    } else {
      check_fields(value, pointer, {"path", "op", "value"});
    }
    bool ok = true;
    const json* path_value = find_member(value, "path");
    if (!path_value) {
      error("missing_field", pointer, "a condition needs \"path\", such as \"args.amount\" or \"grant.role\"");
      ok = false;
    } else if (auto parsed = path(*path_value, pointer + "/path")) {
      condition.path = std::move(*parsed);
    } else {
      ok = false;
    }
    const json* op_value = find_member(value, "op");
    if (!op_value) {
      error("missing_field", pointer, "a condition needs \"op\", one of " + quoted_list(kOperatorNames));
      return false;
    }
    std::optional<Op> op = op_value->is_string() ? parse_op(as_string(*op_value)) : std::nullopt;
    if (!op) {
      error("invalid_operator", pointer + "/op",
            "unknown operator " + describe(*op_value) + "; use one of " + quoted_list(kOperatorNames));
      return false;
    }
    condition.op = *op;
    const json* operand = find_member(value, "value");
    std::string at = pointer + "/value";
    if (condition.op == Op::exists) {
      if (operand && !expect_type(*operand, json::value_t::boolean, at,
                                  "\"exists\" takes an optional boolean \"value\" (true: present, false: absent)"))
        return false;
      condition.expect_present = operand ? operand->get_ref<const bool&>() : true;
      return ok;
    }
    if (!operand) {
      error("missing_field", pointer, "a condition with op \"" + as_string(*op_value) + "\" needs a \"value\"");
      return false;
    }
    condition.value = *operand;
    switch (condition.op) {
      case Op::lt:
      case Op::lte:
      case Op::gt:
      case Op::gte:
        if (!operand->is_number()) {
          error("wrong_type", at, "\"" + as_string(*op_value) + "\" compares numbers: \"value\" must be a number (got " +
                                      std::string(type_name(*operand)) + ")");
          return false;
        }
        condition.number = as_double(*operand);
        break;
      case Op::in:
      case Op::not_in:
        if (!expect_type(*operand, json::value_t::array, at,
                         "\"" + as_string(*op_value) + "\" needs a list of allowed values as \"value\""))
          return false;
        break;
      case Op::regex: {
        if (!expect_type(*operand, json::value_t::string, at, "\"regex\" needs a pattern string as \"value\""))
          return false;
        auto compiled = compile_regex(as_string(*operand));
        if (!compiled.regex) {
          error("invalid_regex", at,
                "invalid or unsupported regex at offset " + std::to_string(compiled.error->offset) + ": " +
                    compiled.error->message);
          return false;
        }
        condition.regex = std::move(compiled.regex);
        break;
      }
      case Op::starts_with:
      case Op::ends_with:
      case Op::glob:
        if (!expect_type(*operand, json::value_t::string, at,
                         "\"" + as_string(*op_value) + "\" needs a string as \"value\""))
          return false;
        if (condition.op == Op::glob) condition.glob.emplace(as_string(*operand));
        break;
      default:
        break;  // eq, neq, contains take any JSON value
    }
    return ok;
  }

  // "mode": "enforce" (what a policy without it does) or "monitor"; true for monitor.
  bool compile_mode(const json& value, const std::string& pointer) {
    if (is_word(value, "monitor")) return true;
    if (!is_word(value, "enforce")) {
      error("invalid_value", pointer, "\"mode\" must be \"enforce\" or \"monitor\" (got " + describe(value) + ")");
    }
    return false;
  }

  bool compile_limit(const json& value, const std::string& pointer, Limit& limit) {
    if (!expect_type(value, json::value_t::object, pointer,
                     "a limit must be an object such as {\"window\": \"minute\", \"max\": 10}"))
      return false;
    check_fields(value, pointer,
                 {"counter", "window", "max", "scope", "key", "algorithm", "cost", "cost_from", "on_deny"});
    limit.pointer = pointer;
    limit.counter = pointer;
    bool ok = true;
    if (const json* counter = find_member(value, "counter")) {
      if (!counter->is_string() || as_string(*counter).empty()) {
        error("wrong_type", pointer + "/counter", "\"counter\" must be a non-empty string naming a shared count");
        ok = false;
      } else {
        limit.counter = as_string(*counter);
        limit.named = true;
      }
    }
    ok = compile_window_and_max(value, pointer, limit) && ok;
    if (const json* scope = find_member(value, "scope")) {
      if (is_word(*scope, "grant")) {
        limit.scope = Scope::grant;
      } else if (is_word(*scope, "global")) {
        limit.scope = Scope::global;
      } else {
        error("invalid_value", pointer + "/scope", "\"scope\" must be \"grant\" or \"global\" (got " + describe(*scope) + ")");
        ok = false;
      }
    }
    if (const json* key = find_member(value, "key")) {
      limit.key = path(*key, pointer + "/key");
      ok = ok && limit.key.has_value();
    }
    const json* cost = find_member(value, "cost");
    const json* cost_from = find_member(value, "cost_from");
    if (cost && cost_from) {
      error("conflicting_fields", pointer + "/cost_from",
            "give either \"cost\" (a fixed amount) or \"cost_from\" (a path), not both", /*at_key=*/true);
      ok = false;
    } else if (cost) {
      auto amount = positive_integer(*cost, pointer + "/cost", "cost");
      ok = ok && amount.has_value();
      if (amount) limit.cost = *amount;
    } else if (cost_from) {
      limit.cost_from = path(*cost_from, pointer + "/cost_from");
      ok = ok && limit.cost_from.has_value();
    }
    if (auto on_deny = optional_string(value, "on_deny", pointer)) limit.on_deny = *on_deny;
    return ok;
  }

  bool compile_window_and_max(const json& value, const std::string& pointer, Limit& limit) {
    bool ok = true;
    if (const json* window = find_member(value, "window")) {
      if (auto ms = parse_duration_ms(*window)) {
        limit.window_ms = *ms;
      } else {
        error("invalid_window", pointer + "/window",
              "\"window\" must be \"second\", \"minute\", \"hour\", \"day\" (or plurals, sec, min, hr), a duration such as \"10s\", \"5m\", \"2h\", "
              "\"1d\", or a whole number of seconds (got " + describe(*window) + ")");
        ok = false;
      }
    } else {
      error("missing_field", pointer, "a limit needs a \"window\", such as \"minute\"");
      ok = false;
    }
    if (const json* max = find_member(value, "max")) {
      auto parsed = positive_integer(*max, pointer + "/max", "max");
      ok = ok && parsed.has_value();
      if (parsed) limit.max = *parsed;
    } else {
      error("missing_field", pointer, "a limit needs \"max\", the number of calls (or cost) allowed per window");
      ok = false;
    }
    if (const json* algorithm = find_member(value, "algorithm")) {
      if (is_word(*algorithm, "fixed")) {
        limit.algorithm = Algorithm::fixed;
      } else if (is_word(*algorithm, "sliding")) {
        limit.algorithm = Algorithm::sliding;
      } else {
        error("invalid_value", pointer + "/algorithm",
              "\"algorithm\" must be \"fixed\" or \"sliding\" (got " + describe(*algorithm) + ")");
        ok = false;
      }
    }
    return ok;
  }

  // "10/minute", "100/1h", or {"max": 10, "window": 60}: one limit, scope grant.
  bool compile_rate_limit(const json& value, const std::string& pointer, Limit& limit) {
    limit.pointer = pointer;
    limit.counter = pointer;
    limit.scope = Scope::grant;
    if (value.is_object()) {
      check_fields(value, pointer, {"max", "window", "algorithm", "on_deny"});
      bool ok = compile_window_and_max(value, pointer, limit);
      if (auto on_deny = optional_string(value, "on_deny", pointer)) limit.on_deny = *on_deny;
      return ok;
    }
    const std::string usage =
        "\"rate_limit\" must be \"N/window\" such as \"10/minute\" or \"100/1h\", or {\"max\": 10, \"window\": 60}";
    if (!value.is_string()) {
      error("wrong_type", pointer, usage + " (got " + describe(value) + ")");
      return false;
    }
    const std::string& text = as_string(value);
    std::size_t slash = text.find('/');
    std::int64_t max = 0;
    bool ok = slash != std::string::npos && slash > 0 && slash <= 15 && text[0] != '0';
    if (ok) {
      auto [end, problem] = std::from_chars(text.data(), text.data() + slash, max);
      ok = problem == std::errc() && end == text.data() + slash && max > 0;
    }
    auto window = ok ? parse_duration_ms(json(text.substr(slash + 1))) : std::nullopt;
    if (!ok || !window) {
      error("invalid_value", pointer, usage + " (got " + describe(value) + ")");
      return false;
    }
    limit.max = static_cast<double>(max);
    limit.window_ms = *window;
    return true;
  }

  // --- args: the JSON Schema subset ----------------------------------------
  bool compile_schema(const json& value, const std::string& pointer, Schema& schema, std::size_t depth) {
    schema.pointer = pointer;
    if (value.is_boolean()) {
      // `true` accepts anything; `false` accepts nothing (an impossible const).
      if (!value.get_ref<const bool&>()) schema.enumeration.emplace();
      return true;
    }
    if (!expect_type(value, json::value_t::object, pointer, "a schema must be an object (JSON Schema subset)"))
      return false;
    if (depth > 32) {
      error("invalid_value", pointer, "schema nested more than 32 levels deep");
      return false;
    }
    static constexpr std::string_view kKeywords[] = {
        "type", "properties", "required", "additionalProperties", "enum", "const", "pattern", "minLength",
        "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "items", "minItems", "maxItems",
        "title", "description", "default", "examples", "$comment"};
    bool ok = true;
    for (const auto& [name, keyword_value] : value.get_ref<const json::object_t&>()) {
      if (std::find(std::begin(kKeywords), std::end(kKeywords), name) != std::end(kKeywords)) continue;
      std::string message = "unsupported schema keyword \"" + name + "\"";
      // "tipe" suggests "type", not a later keyword as near as "title".
      std::string_view closest = closest_name(name, kKeywords);
      message += closest.empty() ? "; args supports: " + quoted_list(kKeywords)
                                 : "; did you mean \"" + std::string(closest) + "\"?";
      error("unknown_field", pointer + "/" + escape_pointer_token(name), message, /*at_key=*/true);
      ok = false;
    }
    if (const json* type = find_member(value, "type")) ok = compile_schema_type(*type, pointer + "/type", schema) && ok;
    if (const json* properties = find_member(value, "properties")) {
      std::string at = pointer + "/properties";
      if (expect_type(*properties, json::value_t::object, at, "\"properties\" must be an object of schemas")) {
        for (const auto& [name, property] : properties->get_ref<const json::object_t&>()) {
          Schema child;
          ok = compile_schema(property, at + "/" + escape_pointer_token(name), child, depth + 1) && ok;
          schema.properties.emplace(name, std::move(child));
        }
      } else {
        ok = false;
      }
    }
    if (const json* required = find_member(value, "required")) {
      std::string at = pointer + "/required";
      bool strings = required->is_array();
      if (strings) {
        for (const json& name : required->get_ref<const json::array_t&>()) {
          strings = strings && name.is_string();
          if (name.is_string()) schema.required.push_back(as_string(name));
        }
      }
      if (!strings) {
        error("wrong_type", at, "\"required\" must be a list of property names");
        ok = false;
      }
    }
    if (const json* additional = find_member(value, "additionalProperties")) {
      if (additional->is_boolean()) {
        schema.additional_allowed = additional->get_ref<const bool&>();
      } else {
        schema.additional_schema = std::make_unique<Schema>();
        ok = compile_schema(*additional, pointer + "/additionalProperties", *schema.additional_schema, depth + 1) && ok;
      }
    }
    if (const json* enumeration = find_member(value, "enum")) {
      if (expect_type(*enumeration, json::value_t::array, pointer + "/enum", "\"enum\" must be a list of values")) {
        schema.enumeration = enumeration->get_ref<const json::array_t&>();
      } else {
        ok = false;
      }
    }
    if (const json* constant = find_member(value, "const")) schema.constant = *constant;
    if (const json* pattern = find_member(value, "pattern")) {
      std::string at = pointer + "/pattern";
      if (expect_type(*pattern, json::value_t::string, at, "\"pattern\" must be a regex string")) {
        auto compiled = compile_regex(as_string(*pattern));
        if (compiled.regex) {
          schema.pattern = std::move(compiled.regex);
        } else {
          error("invalid_regex", at,
                "invalid or unsupported regex at offset " + std::to_string(compiled.error->offset) + ": " +
                    compiled.error->message);
          ok = false;
        }
      } else {
        ok = false;
      }
    }
    ok = schema_count(value, "minLength", pointer, schema.min_length) && ok;
    ok = schema_count(value, "maxLength", pointer, schema.max_length) && ok;
    ok = schema_count(value, "minItems", pointer, schema.min_items) && ok;
    ok = schema_count(value, "maxItems", pointer, schema.max_items) && ok;
    ok = schema_number(value, "minimum", pointer, schema.minimum) && ok;
    ok = schema_number(value, "maximum", pointer, schema.maximum) && ok;
    ok = schema_number(value, "exclusiveMinimum", pointer, schema.exclusive_minimum) && ok;
    ok = schema_number(value, "exclusiveMaximum", pointer, schema.exclusive_maximum) && ok;
    if (const json* items = find_member(value, "items")) {
      schema.items = std::make_unique<Schema>();
      ok = compile_schema(*items, pointer + "/items", *schema.items, depth + 1) && ok;
    }
    warn_untyped_keywords(value, pointer, schema);
    return ok;
  }

  bool compile_schema_type(const json& type, const std::string& pointer, Schema& schema) {
    static constexpr std::pair<std::string_view, std::uint8_t> kTypes[] = {
        {"null", Schema::kNull},     {"boolean", Schema::kBoolean}, {"object", Schema::kObject},
        {"array", Schema::kArray},   {"number", Schema::kNumber},   {"string", Schema::kString},
        {"integer", Schema::kInteger}};
    auto add = [&](const json& name) {
      for (auto [text, bit] : kTypes) {
        if (name.is_string() && as_string(name) == text) {
          schema.types |= bit;
          return true;
        }
      }
      error("invalid_value", pointer,
            "unknown type " + describe(name) +
                "; use \"null\", \"boolean\", \"object\", \"array\", \"number\", \"integer\" or \"string\"");
      return false;
    };
    if (!type.is_array()) return add(type);
    bool ok = !type.empty();
    // Report it: a schema that fails to compile is dropped, so a silent
    // failure here would leave the tool with no argument checks at all.
    if (!ok) error("invalid_value", pointer, "\"type\" must not be an empty list; name at least one type");
    for (const json& name : type.get_ref<const json::array_t&>()) ok = add(name) && ok;
    return ok;
  }

  bool schema_count(const json& value, std::string_view name, const std::string& pointer,
                    std::optional<std::size_t>& out) {
    const json* keyword = find_member(value, name);
    if (!keyword) return true;
    double number = keyword->is_number() ? as_double(*keyword) : -1;
    if (number < 0 || std::floor(number) != number || number > kMaxSafeInteger) {
      error("invalid_value", pointer + "/" + std::string(name),
            "\"" + std::string(name) + "\" must be a whole number >= 0 (got " + describe(*keyword) + ")");
      return false;
    }
    out = static_cast<std::size_t>(number);
    return true;
  }

  bool schema_number(const json& value, std::string_view name, const std::string& pointer, std::optional<double>& out) {
    const json* keyword = find_member(value, name);
    if (!keyword) return true;
    if (!keyword->is_number()) {
      error("wrong_type", pointer + "/" + std::string(name),
            "\"" + std::string(name) + "\" must be a number (got " + describe(*keyword) + ")");
      return false;
    }
    out = as_double(*keyword);
    return true;
  }

  // A keyword for one type silently accepts every other type (JSON Schema's
  // rule), so {"maximum": 100} lets "1000000" through. Say so.
  void warn_untyped_keywords(const json& value, const std::string& pointer, const Schema& schema) {
    if (schema.types != 0) return;
    for (std::string_view name : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern",
                                  "minLength", "maxLength", "items", "minItems", "maxItems", "properties",
                                  "required", "additionalProperties"}) {
      if (find_member(value, name)) {
        warning("untyped_schema", pointer,
                "\"" + std::string(name) + "\" only constrains values of its own type and lets values of other "
                "types pass; add \"type\" to this schema");
        return;
      }
    }
  }

  const SourceMap& source_map_;
  std::vector<Diagnostic>& diagnostics_;
  std::vector<std::pair<std::size_t, bool>> reported_;  // (index in diagnostics_, at the key?)
};

void sort_by_position(std::vector<Diagnostic>& diagnostics) {
  if (diagnostics.size() < 2) return;  // a clean policy runs no sort code
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
}

}  // namespace

CompileResult compile_policy(std::string_view text, const CompileOptions& options) {
  CompileResult result;
  JsonReadOptions read_options;
  read_options.max_depth = options.max_depth;
  read_options.position_depth = 2;         // enough for the document order of tool keys,
  read_options.position_keys_with = '*';   // of which only glob keys' is used (equal lengths)
  JsonReadResult read = read_json(text, read_options);
  result.diagnostics = std::move(read.errors);
  if (!read.complete) return result;  // syntax or depth error: nothing to compile
  Compiler compiler(read.source_map, result.diagnostics);
  std::shared_ptr<Plan> plan = compiler.compile(read.value);
  if (compiler.reported_anything()) {
    // Only a policy with problems pays for positions of every value.
    read_options.position_depth = SIZE_MAX;
    read_options.position_keys_with = '\0';
    compiler.locate(read_json(text, read_options).source_map);
  }
  sort_by_position(result.diagnostics);
  if (plan && !has_errors(result.diagnostics)) {
    // The hash of the exact bytes: `sha256sum policy.json` finds the file an
    // audit event names, and hashing is linear however large the policy.
    plan->policy_hash = sha256_hex(text);
    result.plan = std::move(plan);
  }
  return result;
}

}  // namespace toolgate
