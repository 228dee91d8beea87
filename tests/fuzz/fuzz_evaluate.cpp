// libFuzzer target: evaluate() and finish() on a policy and a call.
//
// Input layout (one byte, then lines):
//   '{' policy-line '\n' call-line '\n' store-bytes    a fuzzed policy (one line)
//   <b> call-line '\n' store-bytes                     fixed policy number b % N
// The fixed policies are examples/*.json plus the feature-dense ones below;
// store-bytes give the default time, whether the approval is on file and the
// counts the store holds for each counter (see fuzz::count_from).
//
// Invariants: decisions are well-formed (fuzz::check_decision); a pending
// evaluation names valid counters (positive window, the bucket holding `now`,
// a finite non-negative cost) and survives the wire round trip the
// WebAssembly finish() takes (to_json -> read_pending) unchanged; finish()
// allows exactly when the store's admission rule (toolgate::admits, as every
// counter store applies it) admits every counter, and gives the same decision
// for the round-tripped pending call. And the same call through the view
// path (the JS API's hot path: the binary call form read in place through a
// CallTape, evaluate_into storage kept from input to input, no DOM) is
// refused or decided exactly as through the DOM path.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "call_buffer.h"
#include "fuzz_support.h"
#include "json_reader.h"

namespace {

using namespace toolgate;
using json = nlohmann::json;

const char* const kInlinePolicies[] = {
    // Every operator, grant attributes, all_tools, globs, hide.
    R"({"version":"1","default":"allow","hide":["secret*","*_admin"],
        "all_tools":{"deny_if":[{"conditions":[{"path":"grant.role","op":"eq","value":"banned"}]}],
                     "limits":[{"window":"minute","max":100,"scope":"global"}]},
        "tools":{
          "run":{"require":[{"path":"args.cmd","op":"in","value":["ls","cat","echo"]},
                            {"conditions":[{"path":"args.n","op":"lte","value":10},{"path":"args.n","op":"gte","value":0}],"on_deny":"n out of range"}],
                 "deny_if":[{"conditions":[{"path":"args.path","op":"starts_with","value":"/etc"}]},
                            {"conditions":[{"path":"args.path","op":"ends_with","value":".key"}]},
                            {"conditions":[{"path":"args.path","op":"glob","value":"*/.ssh/*"}]},
                            {"conditions":[{"path":"args.path","op":"regex","value":"^(?:/[a-z]+)+\\.(?:pem|crt)$"}]},
                            {"conditions":[{"path":"args.tags","op":"contains","value":"prod"}]},
                            {"conditions":[{"path":"args.user","op":"not_in","value":["a","b"]},{"path":"args.user","op":"exists"}]},
                            {"conditions":[{"path":"args.force","op":"neq","value":false},{"path":"args.force","op":"exists","value":true}]},
                            {"conditions":[{"path":"args.n","op":"lt","value":-5}]},
                            {"conditions":[{"path":"args.n","op":"gt","value":1e300}]},
                            {"conditions":[{"path":"args.list.0.name","op":"contains","value":"x"}]},
                            {"conditions":[{"path":"grant.tier","op":"gte","value":3}]}]},
          "run*":{"action":"deny","reason":"no"},
          "*_fast":{"rate_limit":"2/second"},
          "*":{"rate_limit":{"max":3,"window":"10s","algorithm":"sliding","on_deny":"slow down"}}}})",
    // Limits of every shape: shared counters, keys, costs, sliding windows, scopes.
    R"({"version":"1","default":"deny",
        "tools":{
          "pay":{"args":{"type":"object","required":["amount","currency"],"additionalProperties":false,
                         "properties":{"amount":{"type":"number","exclusiveMinimum":0,"maximum":1e6},
                                       "currency":{"enum":["EUR","USD"]},
                                       "memo":{"type":"string","maxLength":20,"pattern":"^[\\w ]*$"},
                                       "to":{"type":["string","null"],"minLength":1}}},
                 "limits":[{"counter":"money","window":"day","max":1000,"cost_from":"args.amount","scope":"global"},
                           {"counter":"money","window":"day","max":500,"cost_from":"args.amount"},
                           {"window":"1h","max":5,"key":"args.currency","algorithm":"sliding"},
                           {"window":60,"max":2,"cost":2,"key":"grant.team","on_deny":"team quota"}],
                 "rate_limit":"10/min"},
          "deploy":{"action":"require_approval","approval":{"timeout":"90s"},
                    "args":{"type":"object","properties":{"env":{"const":"prod"},"replicas":{"type":"integer","minimum":1,"maximum":3},
                            "regions":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"string","pattern":"^[a-z]{2}-[a-z]+-\\d$"}}},
                            "additionalProperties":{"type":"boolean"}},
                    "limits":[{"window":"5m","max":2,"algorithm":"sliding","scope":"global"}]},
          "search":{"args":true,"rate_limit":{"max":1,"window":"second"}},
          "nothing":{"args":false}}})",
    // Approvals with limits and without, glob precedence, spend limits with no cap on the amount.
    R"({"version":"1","default":"allow",
        "tools":{"db.*":{"action":"require_approval"},
                 "db.read*":{"limits":[{"window":"sec","max":1,"key":"args.table"}]},
                 "db.read_all":{"action":"deny","on_deny":"too big"},
                 "*.write":{"action":"require_approval","approval":{"timeout":30},"rate_limit":"1/hour"},
                 "spend":{"limits":[{"window":"day","max":100,"cost_from":"args.amount","key":"args.account"},
                                    {"counter":"spend","window":"1h","max":9007199254740991,"cost_from":"grant.budget","scope":"global"}]}}})",
};

struct Fixed {
  std::vector<std::shared_ptr<const Plan>> plans;
};

const Fixed& fixed() {
  static const Fixed fixed = [] {
    Fixed out;
    std::vector<std::string> texts(std::begin(kInlinePolicies), std::end(kInlinePolicies));
    std::vector<std::filesystem::path> files;
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator(TOOLGATE_SOURCE_DIR "/examples", ignored)) {
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::stringstream buffer;
      buffer << in.rdbuf();
      texts.push_back(buffer.str());
    }
    for (const std::string& text : texts) {
      CompileResult compiled = compile_policy(text);
      if (!compiled.ok()) {
        std::fprintf(stderr, "fixed policy does not compile:\n%s\n", text.c_str());
        std::abort();
      }
      out.plans.push_back(compiled.plan);
    }
    return out;
  }();
  return fixed;
}

// The parts of a counter key that come from outside the policy (the grant id,
// the `key` value) are bounded: each is either its canonical JSON of at most
// kMaxKeyPartBytes, or {"sha256": <64 hex>} of that JSON (never a form a
// short value can take: it is longer than the bound).
bool hashed_part(const json& part) {
  if (!part.is_object() || part.size() != 1 || !part.contains("sha256") || !part["sha256"].is_string()) return false;
  const std::string& hex = part["sha256"].get_ref<const std::string&>();
  return hex.size() == 64 && hex.find_first_not_of("0123456789abcdef") == std::string::npos;
}

void check_key_parts(const CounterRequest& request) {
  json parts = json::parse(request.key.substr(4), nullptr, false);
  FUZZ_CHECK(parts.is_array(), "key is not a JSON array: %s", request.key.c_str());
  const bool grant = request.scope == Scope::grant;
  const std::size_t fixed = grant ? 5 : 4;  // scope, grant?, counter, window, algorithm
  FUZZ_CHECK(parts.size() == fixed || parts.size() == fixed + 1, "key parts %s", request.key.c_str());
  auto bounded = [](const json& part) { return hashed_part(part) || canonical_json(part).size() <= kMaxKeyPartBytes; };
  if (grant) {
    std::string quoted;
    append_json_string(quoted, request.grant);
    json expected = json(request.grant);
    if (quoted.size() > kMaxKeyPartBytes) expected = json::object({{"sha256", sha256_hex(quoted)}});
    FUZZ_CHECK(parts[1] == expected, "grant part of %s", request.key.c_str());
  }
  if (parts.size() == fixed + 1) FUZZ_CHECK(bounded(parts.back()), "unbounded key value in %s", request.key.c_str());
}

void check_pending(const PendingCall& pending) {
  FUZZ_CHECK(pending.approval || !pending.counters.empty(), "a pending call with nothing to look up");
  FUZZ_CHECK(pending.limits.size() >= pending.counters.size(), "fewer limits than counters");
  for (const CounterRequest& request : pending.counters) {
    FUZZ_CHECK(request.window_ms > 0, "window %lld", (long long)request.window_ms);
    FUZZ_CHECK(request.bucket_start_ms <= pending.now_ms && pending.now_ms - request.bucket_start_ms < request.window_ms,
               "bucket %lld does not hold now %lld", (long long)request.bucket_start_ms, (long long)pending.now_ms);
    FUZZ_CHECK(request.cost >= 0 && std::isfinite(request.cost), "cost %g", request.cost);
    FUZZ_CHECK(request.max >= 1, "max %g", request.max);
    FUZZ_CHECK(request.key.rfind("tg1:[", 0) == 0, "key %s", request.key.c_str());
    FUZZ_CHECK((request.scope == Scope::global) == request.grant.empty(), "scope/grant");
    check_key_parts(request);
  }
  for (const LimitCheck& limit : pending.limits) {
    FUZZ_CHECK(limit.counter < pending.counters.size(), "limit counter %zu", limit.counter);
    FUZZ_CHECK(pending.counters[limit.counter].max <= limit.max, "counter max above a limit's");
    FUZZ_CHECK(!limit.rule.empty() && !limit.message.empty(), "limit rule/message");
  }
  // The hot-path counters encoding equals the JSON one.
  json encoded = to_json(pending);
  json counters = json::parse(counters_text(pending.counters), nullptr, false);
  FUZZ_CHECK(counters == encoded["counters"], "counters_text differs from to_json");
}

// Decides the call of `call_text` through the view path and checks it
// against the DOM path's answer (`read`, and `dom` when it read). Storage is
// static: kept across inputs as the WebAssembly binding keeps it, so stale
// state from one input would show in the next one's answer.
void check_view_path(const Plan& plan, std::string_view call_text, const CallReadOptions& options, const CallRead& read,
                     const Evaluation* dom) {
  JsonReadOptions read_options;
  read_options.record_positions = false;
  read_options.stop_at_duplicate_key = true;
  read_options.max_depth = options.max_depth;
  JsonReadResult parsed = read_json(call_text, read_options);
  if (!parsed.ok()) return;  // refused before any call form: nothing to encode
  std::optional<std::vector<std::uint8_t>> bytes = encode_call_buffer(parsed.value);
  if (!bytes) return;  // unsafe integers have no binary form (the JS API sends them as text)
  static CallTape tape;
  static Decision decision;
  static PendingCall pending;
  CallView call;
  std::string error;
  const bool read_ok = read_call_view(*bytes, options, plan, tape, call, error);
  FUZZ_CHECK(read_ok == read.call.has_value(), "view path reads=%d, DOM path reads=%d (%s | %s)", read_ok,
             read.call.has_value(), error.c_str(), read.error.c_str());
  if (!read_ok) {
    FUZZ_CHECK(error == read.error, "view path refuses with \"%s\", DOM path with \"%s\"", error.c_str(),
               read.error.c_str());
    return;
  }
  const bool decided = evaluate_into(plan, call, decision, pending);
  FUZZ_CHECK(decided == dom->decision.has_value(), "view path decided=%d, DOM path %d", decided,
             dom->decision.has_value());
  if (decided) {
    FUZZ_CHECK(decision_text(decision) == decision_text(*dom->decision), "view path decides %s, DOM path %s",
               decision_text(decision).c_str(), decision_text(*dom->decision).c_str());
  } else {
    FUZZ_CHECK(to_json(pending) == to_json(dom->pending), "view path pends %s, DOM path %s",
               to_json(pending).dump().c_str(), to_json(dom->pending).dump().c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fixed();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  fuzz::Bytes bytes(data, size);
  std::shared_ptr<const Plan> plan;
  std::uint8_t selector = bytes.byte();
  if (selector == '{') {
    std::string policy = "{" + std::string(bytes.line());
    CompileResult compiled = compile_policy(policy);
    if (!compiled.ok()) return 0;
    plan = compiled.plan;
  } else {
    plan = fixed().plans[selector % fixed().plans.size()];
  }
  std::string_view call_text = bytes.line();

  CallReadOptions options;
  options.default_now_ms = 1767225600000 + static_cast<std::int64_t>(bytes.u64() % (400LL * 86400000)) -
                           200LL * 86400000;
  CallRead read = read_call(call_text, options);
  if (!read.call) {
    FUZZ_CHECK(!read.error.empty(), "a malformed call without a reason");
    fuzz::check_decision(invalid_call(read.error));
    check_view_path(*plan, call_text, options, read, nullptr);
    return 0;
  }
  Evaluation evaluation = evaluate(*plan, *read.call);
  check_view_path(*plan, call_text, options, read, &evaluation);
  if (evaluation.decision) {
    fuzz::check_decision(*evaluation.decision);
    return 0;
  }
  const PendingCall& pending = evaluation.pending;
  check_pending(pending);

  // The wire round trip the WebAssembly finish() takes.
  json encoded = to_json(pending);
  std::optional<PendingCall> back = read_pending(json::parse(encoded.dump(), nullptr, false));
  FUZZ_CHECK(back.has_value(), "read_pending refused to_json's output: %s", encoded.dump().c_str());
  FUZZ_CHECK(to_json(*back) == encoded, "pending round trip changed it: %s", encoded.dump().c_str());

  bool approved = bytes.flag();
  std::vector<CounterState> states;
  for (const CounterRequest& request : pending.counters) {
    CounterState state;
    state.current = fuzz::count_from(bytes, request.max);
    state.previous = fuzz::count_from(bytes, request.max);
    states.push_back(state);
  }
  Decision decision = finish(pending, approved, states);
  fuzz::check_decision(decision);
  FUZZ_CHECK(decision_text(decision) == decision_text(finish(*back, approved, states)),
             "finish differs after the round trip");
  if (pending.approval && !approved) {
    FUZZ_CHECK(decision.code == "approval_required" && decision.approval_id == pending.approval->id,
               "approval not asked: %s", decision.code.c_str());
    return 0;
  }
  // The store admits (and charges) with admits() on each counter's tightest
  // max; the core must allow exactly those calls, or the host sees a store
  // and a policy that disagree.
  bool admitted = true;
  for (std::size_t i = 0; i < pending.counters.size(); ++i) {
    admitted = admitted && admits(pending.counters[i], states[i], pending.now_ms, pending.counters[i].max);
  }
  FUZZ_CHECK(admitted == (decision.verdict == Verdict::allow), "store admitted=%d, core says %s", admitted,
             decision.code.c_str());
  if (!admitted) FUZZ_CHECK(decision.code == "rate_limited", "denied with %s", decision.code.c_str());
  // Fewer states than counters is a store failure, never an allow.
  if (!states.empty()) {
    Decision missing = finish(pending, true, std::span<const CounterState>(states.data(), states.size() - 1));
    FUZZ_CHECK(missing.code == "store_error", "missing states gave %s", missing.code.c_str());
  }
  return 0;
}
