// libFuzzer target: any bytes as a policy text, through parse and compile,
// then the diagnostics' positions (SourceMap::locate, as the playground and
// `toolgate check` use them) and, for policies that compile, a few calls.
//
// Invariants: never crashes, leaks or hits undefined behaviour; a plan exists
// exactly when no diagnostic is an error; every code is a documented one with
// its documented severity; every diagnostic has a 1-based line and column
// inside the text; the diagnostics' JSON encoding is valid JSON.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "json_reader.h"

namespace {

using namespace toolgate;
using json = nlohmann::json;

const std::map<std::string, Severity, std::less<>>& documented_codes() {
  static const std::map<std::string, Severity, std::less<>> codes = {
      {"json_syntax", Severity::error},         {"json_too_deep", Severity::error},
      {"json_duplicate_key", Severity::error},  {"unknown_field", Severity::error},
      {"missing_field", Severity::error},       {"unsupported_version", Severity::error},
      {"wrong_type", Severity::error},          {"invalid_value", Severity::error},
      {"invalid_window", Severity::error},      {"invalid_path", Severity::error},
      {"invalid_operator", Severity::error},    {"invalid_regex", Severity::error},
      {"conflicting_fields", Severity::error},  {"missing_default", Severity::warning},
      {"hidden_tool_entry", Severity::warning}, {"unused_field", Severity::warning},
      {"untyped_schema", Severity::warning}};
  return codes;
}

// Lines in the text, for checking positions.
std::size_t line_count(std::string_view text) {
  std::size_t lines = 1;
  for (char c : text) lines += c == '\n';
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CompileResult result = compile_policy(text);

  bool errors = false;
  const std::size_t lines = line_count(text);
  for (const Diagnostic& d : result.diagnostics) {
    auto code = documented_codes().find(d.code);
    FUZZ_CHECK(code != documented_codes().end(), "undocumented diagnostic code %s", d.code.c_str());
    FUZZ_CHECK(code->second == d.severity, "code %s with the wrong severity", d.code.c_str());
    FUZZ_CHECK(!d.message.empty(), "empty message for %s", d.code.c_str());
    FUZZ_CHECK(fuzz::is_utf8(d.message) && fuzz::is_utf8(d.pointer), "%s: not valid UTF-8", d.code.c_str());
    FUZZ_CHECK(d.pointer.empty() || d.pointer[0] == '/', "pointer %s", d.pointer.c_str());
    FUZZ_CHECK(d.line >= 1 && d.line <= lines && d.column >= 1, "%s at %zu:%zu (text has %zu lines)",
               d.code.c_str(), d.line, d.column, lines);
    errors = errors || d.severity == Severity::error;
  }
  FUZZ_CHECK(result.ok() == !errors, "plan %s with errors=%d", result.ok() ? "set" : "null", errors);
  std::string dumped = to_json(result.diagnostics).dump(-1, ' ', false, json::error_handler_t::strict);
  FUZZ_CHECK(!json::parse(dumped, nullptr, false).is_discarded(), "diagnostics are not JSON");

  // locate(), as the playground highlights a decision's rule: every
  // diagnostic's pointer, plus pointers under it that do not exist.
  JsonReadResult read = read_json(text);
  if (read.complete) {
    for (const Diagnostic& d : result.diagnostics) {
      for (const std::string& pointer : {d.pointer, d.pointer + "/0", d.pointer + "/x/~1y", std::string("/tools")}) {
        for (bool at_key : {false, true}) {
          auto [line, column] = read.source_map.locate(pointer, at_key);
          FUZZ_CHECK(line >= 1 && line <= lines && column >= 1, "locate(%s) = %zu:%zu", pointer.c_str(), line, column);
        }
      }
    }
  }

  if (result.ok()) {
    const Plan& plan = *result.plan;
    FUZZ_CHECK(plan.policy_hash.size() == 64, "policy hash %s", plan.policy_hash.c_str());
    // Call every tool the policy names (and one it does not) with a few
    // argument shapes; the decisions must be well-formed.
    std::vector<std::string> names = {"unnamed-tool"};
    for (const ToolEntry& entry : plan.tools) names.push_back(entry.key);
    if (names.size() > 16) names.resize(16);
    const json arguments[] = {json::object(), json{{"amount", 5}, {"path", "/tmp/x"}, {"tags", {"a", "b"}}},
                              json{{"amount", "5"}, {"nested", {{"x", nullptr}}}}};
    for (const std::string& name : names) {
      if (name.empty()) continue;
      for (const json& args : arguments) {
        Call call;
        call.tool = name;
        call.arguments = args;
        call.grant.id = "alice";
        call.grant.attributes = json{{"role", "admin"}};
        call.now_ms = 1767225600000;
        Evaluation evaluation = evaluate(plan, call);
        if (evaluation.decision) {
          fuzz::check_decision(*evaluation.decision);
        } else {
          std::vector<CounterState> states(evaluation.pending.counters.size());
          fuzz::check_decision(finish(evaluation.pending, true, states));
          fuzz::check_decision(finish(evaluation.pending, false, states));
        }
      }
    }
  }
  return 0;
}
