#include "wire.h"

#include <charconv>
#include <cmath>

#include "canonical_json.h"
#include "json_reader.h"
#include "json_util.h"

namespace toolgate {
namespace {

using json = nlohmann::json;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool read_digits(std::string_view text, std::size_t at, std::size_t count, int& out) {
  if (at + count > text.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

std::optional<std::int64_t> read_rfc3339(std::string_view text) {
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!read_digits(text, 0, 4, year) || text.size() < 10 || text[4] != '-' || !read_digits(text, 5, 2, month) ||
      text[7] != '-' || !read_digits(text, 8, 2, day))
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1) return std::nullopt;
  static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDaysInMonth[month - 1] + (month == 2 && leap ? 1 : 0)) return std::nullopt;  // no 2026-02-31
  std::int64_t ms = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400000;
  if (text.size() == 10) return ms;  // a date alone: midnight UTC
  if ((text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !read_digits(text, 11, 2, hour) ||
      text.size() < 19 || text[13] != ':' || !read_digits(text, 14, 2, minute) || text[16] != ':' ||
      !read_digits(text, 17, 2, second) || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  ms += (hour * 3600 + minute * 60 + std::min(second, 59)) * 1000LL;
  std::size_t at = 19;
  if (at < text.size() && text[at] == '.') {
    ++at;
    std::size_t start = at;
    int scale = 100;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      ms += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == start) return std::nullopt;
  }
  if (at == text.size()) return std::nullopt;  // the offset is required
  if (text[at] == 'Z' || text[at] == 'z') return at + 1 == text.size() ? std::optional(ms) : std::nullopt;
  int offset_hours, offset_minutes;
  if ((text[at] != '+' && text[at] != '-') || text.size() != at + 6 || !read_digits(text, at + 1, 2, offset_hours) ||
      text[at + 3] != ':' || !read_digits(text, at + 4, 2, offset_minutes) || offset_hours > 23 || offset_minutes > 59)
    return std::nullopt;
  std::int64_t offset = (offset_hours * 60 + offset_minutes) * 60000LL;
  return text[at] == '+' ? ms - offset : ms + offset;
}

std::optional<double> number_field(const json& object, const char* name) {
  const json* value = find_member(object, name);
  if (!value || !value->is_number()) return std::nullopt;
  return as_double(*value);
}

// A whole number of milliseconds within [low, high], as evaluate() writes
// them; anything else (1e300, 0.5) is not a value the core produced, and
// converting it to an integer would be undefined behaviour.
std::optional<std::int64_t> ms_field(const json& object, const char* name, double low, double high) {
  auto number = number_field(object, name);
  if (!number || !(*number >= low && *number <= high) || std::floor(*number) != *number) return std::nullopt;
  return static_cast<std::int64_t>(*number);
}

constexpr double kMaxTime = 8.64e15;  // the ECMAScript Date range, as read_timestamp
constexpr double kMaxDuration = 1e17;  // windows and timeouts: "999999999d" is 8.64e16 ms

std::optional<std::string> string_field(const json& object, const char* name) {
  const json* value = find_member(object, name);
  if (!value || !value->is_string()) return std::nullopt;
  return as_string(*value);
}

// read_pending takes back what a host kept of a pending call (the WebAssembly
// finish() reads it from JS), and finish() copies some of it into a decision
// as it stands. So it accepts only text evaluate() can write: a decision
// always tells the agent why (a message, never empty), names the deciding part
// of the policy (a JSON Pointer, "/tools/..."), and carries valid UTF-8 (JSON
// must hold it). An empty approval message once came back as an
// approval_required decision saying nothing (fuzz_wire).

// A message: non-empty, valid UTF-8.
std::optional<std::string> message_field(const json& object, const char* name) {
  auto text = string_field(object, name);
  if (!text || text->empty() || !is_utf8(*text)) return std::nullopt;
  return text;
}

// A rule: a JSON Pointer into the policy below its root, as evaluate() names
// tool entries, limits and actions.
std::optional<std::string> rule_field(const json& object, const char* name) {
  auto text = string_field(object, name);
  if (!text || text->empty() || (*text)[0] != '/' || !is_utf8(*text)) return std::nullopt;
  return text;
}

// A tool name as read_call accepts it: non-empty, no control characters.
bool valid_tool(const std::string& tool) {
  if (tool.empty() || !is_utf8(tool)) return false;
  for (char c : tool) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return false;
  }
  return true;
}

// An approval id: the SHA-256 of the call in lowercase hex (sha256_hex).
bool valid_approval_id(const std::string& id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::optional<std::int64_t> read_timestamp(Value value) {
  if (value.is_number()) {
    double ms = value.number();
    if (!std::isfinite(ms) || std::fabs(ms) > 8.64e15) return std::nullopt;  // the ECMAScript Date range
    return static_cast<std::int64_t>(std::floor(ms));
  }
  if (value.is_string()) return read_rfc3339(value.string());
  return std::nullopt;
}

std::optional<std::int64_t> read_timestamp(const json& value) { return read_timestamp(Value(value)); }

CallRead read_call(std::string_view text, const CallReadOptions& options) {
  JsonReadOptions read_options;
  read_options.max_depth = options.max_depth;
  read_options.record_positions = false;
  read_options.stop_at_duplicate_key = true;
  JsonReadResult read = read_json(text, read_options);
  if (!read.ok()) {
    CallRead result;
    result.error = read.errors.empty() ? "not valid JSON" : read.errors.front().message;
    if (!read.errors.empty() && read.errors.front().code == "json_duplicate_key") {
      result.error = "the call repeats a key (" + read.errors.front().pointer + "); " + read.errors.front().message;
    }
    return result;
  }
  return read_call_value(std::move(read.value), options);
}

bool read_call_view(Value value, const CallReadOptions& options, CallView& call, std::string& error, Value* expect) {
  static const json kNoMembers = json::object();
  if (!value.is_object()) {
    error = "a call must be a JSON object with \"tool\" and \"arguments\".";
    return false;
  }
  call = CallView{};
  call.now_ms = options.default_now_ms;
  call.arguments = Value(kNoMembers);
  call.grant = Value(kNoMembers);
  if (expect) *expect = Value();
  // Members in key order (as a DOM object holds them): the first problem in
  // that order is the one reported, whichever form the call came in.
  // Member names compared inline (compare_bytes): string_view's == calls the
  // .wasm's byte-by-byte memcmp, four times per call.
  auto is = [](std::string_view name, std::string_view known) {
    return name.size() == known.size() && compare_bytes(name, known) == 0;
  };
  const bool whole = value.each_member([&](std::string_view name, Value field) {
    if (is(name, "tool")) {
      if (!field.is_string() || field.string().empty()) {
        error = "\"tool\" must be a non-empty string.";
        return false;
      }
      // No tool is named with control characters; a name carrying them (NUL
      // above all) can read differently to the policy and to the server.
      for (char c : field.string()) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          error = "\"tool\" must not contain control characters.";
          return false;
        }
      }
      call.tool = field.string();
    } else if (is(name, "arguments")) {
      if (!field.is_object()) {
        error = "\"arguments\" must be a JSON object (got " + std::string(type_name(field)) + ").";
        return false;
      }
      call.arguments = field;
    } else if (is(name, "grant")) {
      if (field.is_string() && !field.string().empty()) {
        call.grant_id = field.string();
      } else if (field.is_object()) {
        const Value id = field.member("id");
        if (!id.is_string() || id.string().empty()) {
          error = "a grant object needs \"id\", a non-empty string.";
          return false;
        }
        call.grant_id = id.string();
        call.grant = field;
      } else {
        error = "\"grant\" must be a grant id or an object {\"id\": ..., attributes...}.";
        return false;
      }
    } else if (is(name, "now")) {
      auto now = read_timestamp(field);
      if (!now) {
        error = "\"now\" must be epoch milliseconds or an RFC 3339 time such as \"2026-01-01T00:00:00Z\".";
        return false;
      }
      call.now_ms = *now;
    } else if (is(name, "expect")) {
      if (expect) *expect = field;
    } else {
      error = "unknown field \"" + std::string(name) + "\" (a call has \"tool\", \"arguments\", \"grant\" and \"now\").";
      return false;
    }
    return true;
  });
  if (!whole) return false;
  if (call.tool.empty()) {
    error = "the call has no \"tool\".";
    return false;
  }
  return true;
}

CallRead read_call_value(json&& value, const CallReadOptions& options) {
  CallRead result;
  CallView view;
  Value expect;
  const bool ok = read_call_view(Value(value), options, view, result.error, &expect);
  if (!value.is_object()) return result;
  auto& object = value.get_ref<json::object_t&>();
  // "expect" is kept even when a later field is wrong (it comes first in key order).
  if (expect) result.expect = std::move(object.find("expect")->second);
  if (!ok) return result;
  // The checks passed: take the parts out of the DOM (the views point into it,
  // so copy what they hold before moving anything).
  Call call;
  call.tool = std::string(view.tool);
  call.grant.id = std::string(view.grant_id);
  call.now_ms = view.now_ms;
  if (auto arguments = object.find("arguments"); arguments != object.end()) call.arguments = std::move(arguments->second);
  if (auto grant = object.find("grant"); grant != object.end() && grant->second.is_object()) {
    grant->second.get_ref<json::object_t&>().erase("id");
    call.grant.attributes = std::move(grant->second);
  }
  result.call = std::move(call);
  return result;
}

json to_json(const Decision& decision) {
  json out = json::object();
  out["decision"] = to_string(decision.verdict);
  out["code"] = decision.code;
  out["rule"] = decision.rule;
  out["message"] = decision.message;
  if (decision.retry_after_ms) out["retry_after_ms"] = *decision.retry_after_ms;
  if (decision.approval_id) out["approval_id"] = *decision.approval_id;
  return out;
}

json to_json(const PendingCall& pending) {
  json counters = json::array();
  for (const CounterRequest& request : pending.counters) {
    counters.push_back({{"key", request.key},
                        {"scope", request.scope == Scope::grant ? "grant" : "global"},
                        {"grant", request.grant},
                        {"cost", number_json(request.cost)},
                        {"max", number_json(request.max)},
                        {"window_ms", request.window_ms},
                        {"algorithm", request.algorithm == Algorithm::fixed ? "fixed" : "sliding"},
                        {"bucket_start_ms", request.bucket_start_ms}});
  }
  json limits = json::array();
  for (const LimitCheck& limit : pending.limits) {
    limits.push_back({{"counter", limit.counter}, {"max", number_json(limit.max)}, {"rule", limit.rule}, {"message", limit.message}});
  }
  json out = {{"pending", true},         {"tool", pending.tool},   {"now", pending.now_ms},
              {"allow_rule", pending.allow_rule}, {"counters", std::move(counters)}, {"limits", std::move(limits)}};
  if (pending.approval) {
    out["approval"] = {{"id", pending.approval->id},
                       {"timeout_ms", pending.approval->timeout_ms},
                       {"rule", pending.approval->rule},
                       {"message", pending.approval->message}};
  }
  return out;
}

json to_json(const std::vector<LimitInfo>& limits) {
  json out = json::array();
  for (const LimitInfo& info : limits) {
    const Limit& limit = *info.limit;
    out.push_back({{"rule", limit.pointer},
                   {"tool", info.tool ? json(info.tool->key) : json(nullptr)},
                   {"counter", limit.counter},
                   {"named", limit.named},
                   {"scope", limit.scope == Scope::grant ? "grant" : "global"},
                   {"window_ms", limit.window_ms},
                   {"algorithm", limit.algorithm == Algorithm::fixed ? "fixed" : "sliding"},
                   {"max", number_json(limit.max)},
                   {"cost", limit.cost_from ? json(nullptr) : number_json(limit.cost)},
                   {"cost_from", limit.cost_from ? json(limit.cost_from->text()) : json(nullptr)},
                   {"key", limit.key ? json(limit.key->text()) : json(nullptr)},
                   {"message", limit.message}});
  }
  return out;
}

json to_json(const std::vector<Diagnostic>& diagnostics) {
  json out = json::array();
  for (const Diagnostic& d : diagnostics) {
    out.push_back({{"code", d.code},
                   {"severity", to_string(d.severity)},
                   {"message", d.message},
                   {"pointer", d.pointer},
                   {"line", d.line},
                   {"column", d.column}});
  }
  return out;
}

std::optional<PendingCall> read_pending(const json& value) {
  if (!value.is_object()) return std::nullopt;
  PendingCall pending;
  auto now = ms_field(value, "now", -kMaxTime, kMaxTime);
  auto allow_rule = rule_field(value, "allow_rule");
  auto tool = string_field(value, "tool");
  const json* counters = find_member(value, "counters");
  const json* limits = find_member(value, "limits");
  if (!now || !allow_rule || !tool || !valid_tool(*tool) || !counters || !counters->is_array() || !limits ||
      !limits->is_array())
    return std::nullopt;
  pending.now_ms = *now;
  pending.allow_rule = *allow_rule;
  pending.tool = *tool;
  for (const json& item : counters->get_ref<const json::array_t&>()) {
    if (!item.is_object()) return std::nullopt;
    CounterRequest request;
    auto key = string_field(item, "key");
    auto scope = string_field(item, "scope");
    auto grant = string_field(item, "grant");
    auto cost = number_field(item, "cost");
    auto max = number_field(item, "max");
    auto window = ms_field(item, "window_ms", 1, kMaxDuration);
    auto algorithm = string_field(item, "algorithm");
    auto bucket = ms_field(item, "bucket_start_ms", -kMaxTime - kMaxDuration, kMaxTime);
    if (!key || !scope || !grant || !cost || !max || !window || !algorithm || !bucket) return std::nullopt;
    // The bucket holds `now`, as evaluate() computes it; costs and maxes are
    // finite and not negative.
    if (!(*bucket <= pending.now_ms && pending.now_ms - *bucket < *window)) return std::nullopt;
    if (!(*cost >= 0 && std::isfinite(*cost) && *max >= 0 && std::isfinite(*max))) return std::nullopt;
    // Only the values to_json writes: an unknown scope or algorithm must not
    // quietly become the default one (it would change which count applies).
    if ((*scope != "grant" && *scope != "global") || (*algorithm != "fixed" && *algorithm != "sliding"))
      return std::nullopt;
    // A counter key as counter_key() writes it, and the grant its scope says:
    // a grant counter names its (non-empty) grant, a global one none.
    if (key->rfind("tg1:", 0) != 0 || !is_utf8(*key) || !is_utf8(*grant) ||
        (*scope == "grant") == grant->empty())
      return std::nullopt;
    request.key = *key;
    request.scope = *scope == "global" ? Scope::global : Scope::grant;
    request.grant = *grant;
    request.cost = *cost;
    request.max = *max;
    request.window_ms = *window;
    request.algorithm = *algorithm == "sliding" ? Algorithm::sliding : Algorithm::fixed;
    request.bucket_start_ms = *bucket;
    pending.counters.push_back(std::move(request));
  }
  for (const json& item : limits->get_ref<const json::array_t&>()) {
    if (!item.is_object()) return std::nullopt;
    auto counter = number_field(item, "counter");
    auto max = number_field(item, "max");
    auto rule = rule_field(item, "rule");
    auto message = message_field(item, "message");
    // The index of a counter above; a max as the policy states it (a whole
    // number >= 1; finite, so the comparison in finish() means something).
    if (!counter || !max || !rule || !message || !(*counter >= 0) ||
        *counter >= static_cast<double>(pending.counters.size()) || std::floor(*counter) != *counter ||
        !(*max >= 1) || !std::isfinite(*max))
      return std::nullopt;
    auto owned_rule = std::make_shared<const std::string>(std::move(*rule));
    auto owned_message = std::make_shared<const std::string>(std::move(*message));
    pending.limits.push_back(LimitCheck{static_cast<std::size_t>(*counter), *max, *owned_rule, *owned_message});
    pending.owned_text.push_back(std::move(owned_rule));
    pending.owned_text.push_back(std::move(owned_message));
  }
  if (const json* approval = find_member(value, "approval")) {
    if (!approval->is_object()) return std::nullopt;
    auto id = string_field(*approval, "id");
    auto timeout = ms_field(*approval, "timeout_ms", 0, kMaxDuration);
    auto rule = rule_field(*approval, "rule");
    auto message = message_field(*approval, "message");
    if (!id || !valid_approval_id(*id) || !timeout || !rule || !message) return std::nullopt;
    pending.approval = ApprovalNeed{*id, *timeout, *rule, *message};
  }
  return pending;
}

std::optional<std::vector<CounterState>> read_states(const json& value) {
  if (!value.is_array()) return std::nullopt;
  std::vector<CounterState> states;
  for (const json& item : value.get_ref<const json::array_t&>()) {
    if (!item.is_object()) return std::nullopt;
    auto current = number_field(item, "current");
    auto previous = number_field(item, "previous");
    if (!current || !previous || *current < 0 || *previous < 0) return std::nullopt;
    states.push_back(CounterState{*current, *previous});
  }
  return states;
}

namespace {

void append_number(std::string& out, double value) {
  json number = number_json(value);
  if (number.is_number_integer()) {
    out += std::to_string(number.get_ref<const json::number_integer_t&>());
  } else {
    out += number.dump();
  }
}

}  // namespace

std::string decision_text(const Decision& decision) {
  std::string out;
  out.reserve(96 + decision.message.size() + decision.rule.size());
  out += "{\"decision\":\"";
  out += to_string(decision.verdict);
  out += "\",\"code\":";
  append_json_string(out, decision.code);
  out += ",\"rule\":";
  append_json_string(out, decision.rule);
  out += ",\"message\":";
  append_json_string(out, decision.message);
  if (decision.retry_after_ms) {
    out += ",\"retry_after_ms\":";
    out += std::to_string(*decision.retry_after_ms);
  }
  if (decision.approval_id) {
    out += ",\"approval_id\":";
    append_json_string(out, *decision.approval_id);
  }
  out += '}';
  return out;
}

std::string counters_text(const std::vector<CounterRequest>& counters) {
  std::string out = "[";
  for (const CounterRequest& request : counters) {
    if (out.size() > 1) out += ',';
    out += "{\"key\":";
    append_json_string(out, request.key);
    out += request.scope == Scope::grant ? ",\"scope\":\"grant\",\"grant\":" : ",\"scope\":\"global\",\"grant\":";
    append_json_string(out, request.grant);
    out += ",\"cost\":";
    append_number(out, request.cost);
    out += ",\"max\":";
    append_number(out, request.max);
    out += ",\"window_ms\":";
    out += std::to_string(request.window_ms);
    out += request.algorithm == Algorithm::fixed ? ",\"algorithm\":\"fixed\"" : ",\"algorithm\":\"sliding\"";
    out += ",\"bucket_start_ms\":";
    out += std::to_string(request.bucket_start_ms);
    out += '}';
  }
  out += ']';
  return out;
}

}  // namespace toolgate
