// Compile-time diagnostics: every problem at once, each with a stable code,
// line:column and JSON Pointer; unknown fields are errors with a "did you
// mean"; a policy with any error is rejected whole.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.h"
#include "toolgate.h"

namespace toolgate {
namespace {

using test::compile_errors;
using test::compile_ok;
using test::find_diagnostic;
using test::format;
using json = nlohmann::json;

// A policy around one tool entry (written as JSON text).
std::string with_tool(const std::string& entry, const std::string& name = "refund") {
  return R"({"version": "1", "default": "deny", "tools": {")" + name + R"(": )" + entry + "}}";
}

std::vector<Diagnostic> errors_only(const std::vector<Diagnostic>& diagnostics) {
  std::vector<Diagnostic> out;
  for (const Diagnostic& d : diagnostics) {
    if (d.severity == Severity::error) out.push_back(d);
  }
  return out;
}

TEST(Diagnostics, EveryErrorReportedAtOnceWithCodeLineColumnAndPointer) {
  const std::string text =
      "{\n"
      "  \"version\": \"1\",\n"
      "  \"default\": \"deny\",\n"
      "  \"tools\": {\n"
      "    \"refund\": {\n"
      "      \"deny_iff\": [],\n"
      "      \"limits\": [{ \"window\": \"fortnight\", \"max\": 0 }],\n"
      "      \"require\": [{ \"path\": \"args.amount\", \"op\": \"greater\", \"value\": 5 }]\n"
      "    },\n"
      "    \"deploy\": { \"action\": \"maybe\" }\n"
      "  }\n"
      "}\n";
  CompileResult result = compile_policy(text);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.plan, nullptr);
  struct Expected {
    const char* code;
    const char* pointer;
    std::size_t line;
    std::size_t column;
  };
  // In document order.
  const Expected expected[] = {
      {"unknown_field", "/tools/refund/deny_iff", 6, 7},
      {"invalid_window", "/tools/refund/limits/0/window", 7, 30},
      {"invalid_value", "/tools/refund/limits/0/max", 7, 50},
      {"invalid_operator", "/tools/refund/require/0/op", 8, 50},
      {"invalid_value", "/tools/deploy/action", 10, 27},
  };
  ASSERT_EQ(result.diagnostics.size(), std::size(expected)) << format(result.diagnostics);
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    const Diagnostic& d = result.diagnostics[i];
    EXPECT_EQ(d.code, expected[i].code) << format(result.diagnostics);
    EXPECT_EQ(d.severity, Severity::error);
    EXPECT_EQ(d.pointer, expected[i].pointer);
    EXPECT_EQ(d.line, expected[i].line) << d.pointer;
    EXPECT_EQ(d.column, expected[i].column) << d.pointer;
    EXPECT_FALSE(d.message.empty());
  }
  EXPECT_NE(result.diagnostics[0].message.find("did you mean \"deny_if\""), std::string::npos)
      << result.diagnostics[0].message;
}

TEST(Diagnostics, SortedByPositionAcrossStages) {
  // Errors found in different compiler passes still come out in text order.
  const std::string text =
      "{\"tools\": {\"a\": {\"action\": 1}},\n"
      " \"default\": \"sometimes\",\n"
      " \"version\": 2}";
  std::vector<Diagnostic> diagnostics = compile_errors(text);
  ASSERT_EQ(diagnostics.size(), 3u) << format(diagnostics);
  EXPECT_EQ(diagnostics[0].pointer, "/tools/a/action");
  EXPECT_EQ(diagnostics[1].pointer, "/default");
  EXPECT_EQ(diagnostics[2].pointer, "/version");
  for (std::size_t i = 1; i < diagnostics.size(); ++i) {
    EXPECT_LT(diagnostics[i - 1].line, diagnostics[i].line);
  }
}

// A typo in a field name must never silently weaken a policy: each is an
// error pointing at the key, with the closest field suggested.
TEST(Diagnostics, UnknownFieldsEverywhereWithSuggestion) {
  struct Case {
    std::string policy;
    std::string pointer;
    std::string suggestion;
  };
  const Case cases[] = {
      {R"({"version": "1", "defualt": "deny"})", "/defualt", "default"},
      {R"({"version": "1", "default": "deny", "tool": {}})", "/tool", "tools"},
      {R"({"version": "1", "default": "deny", "hidden": []})", "/hidden", "hide"},
      {with_tool(R"({"deny_iff": []})"), "/tools/refund/deny_iff", "deny_if"},
      {with_tool(R"({"requires": []})"), "/tools/refund/requires", "require"},
      {with_tool(R"({"ratelimit": "10/minute"})"), "/tools/refund/ratelimit", "rate_limit"},
      {with_tool(R"({"limits": [{"window": "minute", "max": 1, "scpoe": "global"}]})"),
       "/tools/refund/limits/0/scpoe", "scope"},
      {with_tool(R"({"limits": [{"window": "minute", "max": 1, "keys": "args.repo"}]})"),
       "/tools/refund/limits/0/keys", "key"},
      {with_tool(R"({"rate_limit": {"max": 1, "window": 60, "windows": 2}})"), "/tools/refund/rate_limit/windows",
       "window"},
      {with_tool(R"({"require": [{"path": "args.amount", "op": "exists", "valeu": true}]})"),
       "/tools/refund/require/0/valeu", "value"},
      {with_tool(R"({"deny_if": [{"conditions": [{"path": "args.amount", "paht": "x", "op": "exists"}]}]})"),
       "/tools/refund/deny_if/0/conditions/0/paht", "path"},
      {with_tool(R"({"deny_if": [{"conditions": [{"path": "args.a", "op": "exists"}], "on_denny": "no"}]})"),
       "/tools/refund/deny_if/0/on_denny", "on_deny"},
      {with_tool(R"({"require": [{"conditions": [{"path": "args.a", "op": "exists"}], "ondeny": "no"}]})"),
       "/tools/refund/require/0/ondeny", "on_deny"},
      {with_tool(R"({"action": "require_approval", "approval": {"timout": "5m"}})"),
       "/tools/refund/approval/timout", "timeout"},
      {with_tool(R"({"args": {"type": "object", "propertise": {}}})"), "/tools/refund/args/propertise", "properties"},
      {with_tool(R"({"args": {"type": "object", "properties": {"memo": {"type": "string", "maxLenght": 5}}}})"),
       "/tools/refund/args/properties/memo/maxLenght", "maxLength"},
      {with_tool(R"({"args": {"tipe": "object"}})"), "/tools/refund/args/tipe", "type"},
      {R"({"version": "1", "default": "deny", "all_tools": {"deny_iff": []}})", "/all_tools/deny_iff", "deny_if"},
  };
  for (const Case& c : cases) {
    CompileResult result = compile_policy(c.policy);
    EXPECT_FALSE(result.ok()) << c.policy;
    std::vector<Diagnostic> errors = errors_only(result.diagnostics);
    ASSERT_EQ(errors.size(), 1u) << c.policy << "\n" << format(result.diagnostics);
    EXPECT_EQ(errors[0].code, "unknown_field");
    EXPECT_EQ(errors[0].pointer, c.pointer);
    EXPECT_NE(errors[0].message.find("did you mean \"" + c.suggestion + "\"?"), std::string::npos)
        << c.policy << "\n" << errors[0].message;
    // The key itself is located (one line: its column is where the key's quote is).
    const std::string key = c.pointer.substr(c.pointer.rfind('/') + 1);
    EXPECT_EQ(errors[0].line, 1u);
    EXPECT_EQ(errors[0].column, c.policy.find("\"" + key + "\"") + 1) << c.policy;
  }
}

TEST(Diagnostics, UnknownFieldWithoutCloseMatchListsTheAllowedFields) {
  std::vector<Diagnostic> diagnostics = compile_errors(with_tool(R"({"frobnicate": true})"));
  auto d = find_diagnostic(diagnostics, "unknown_field", "/tools/refund/frobnicate");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->message.find("did you mean"), std::string::npos) << d->message;
  for (const char* field : {"\"action\"", "\"deny_if\"", "\"limits\"", "\"rate_limit\"", "\"approval\""}) {
    EXPECT_NE(d->message.find(field), std::string::npos) << d->message;
  }
  diagnostics = compile_errors(with_tool(R"({"args": {"type": "object", "oneOf": []}})"));
  d = find_diagnostic(diagnostics, "unknown_field", "/tools/refund/args/oneOf");
  ASSERT_TRUE(d);
  EXPECT_NE(d->message.find("\"additionalProperties\""), std::string::npos) << d->message;
}

TEST(Diagnostics, UnknownFieldKeysWithSlashAndTildeAreEscaped) {
  std::vector<Diagnostic> diagnostics = compile_errors(with_tool(R"({"a/b~c": 1})"));
  EXPECT_TRUE(find_diagnostic(diagnostics, "unknown_field", "/tools/refund/a~1b~0c"));
  diagnostics = compile_errors(R"({"version": "1", "default": "deny", "tools": {"x/y": {"deny_iff": []}}})");
  EXPECT_TRUE(find_diagnostic(diagnostics, "unknown_field", "/tools/x~1y/deny_iff"));
}

TEST(Diagnostics, MissingDefaultIsAWarningAndDenies) {
  const std::string text = R"({"version": "1", "tools": {"run": {}}})";
  CompileResult result = compile_policy(text);
  ASSERT_TRUE(result.ok()) << format(result.diagnostics);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  const Diagnostic& d = result.diagnostics[0];
  EXPECT_EQ(d.code, "missing_default");
  EXPECT_EQ(d.severity, Severity::warning);
  EXPECT_EQ(d.pointer, "");
  EXPECT_EQ(d.line, 1u);
  EXPECT_EQ(d.column, 1u);
  EXPECT_EQ(test::decide(result.plan, test::make_call("run")).code, "allowed");
  Decision other = test::decide(result.plan, test::make_call("delete_everything"));
  EXPECT_EQ(other.code, "default_deny");
  EXPECT_EQ(other.rule, "/default");
}

TEST(Diagnostics, Version) {
  auto diagnostics = compile_errors(R"({"default": "deny"})");
  auto d = find_diagnostic(diagnostics, "missing_field", "");
  ASSERT_TRUE(d);
  EXPECT_NE(d->message.find("version"), std::string::npos);
  for (const char* version : {R"("2")", "1", R"("1.0")", R"("")", "null", R"(["1"])"}) {
    diagnostics = compile_errors(std::string(R"({"version": )") + version + R"(, "default": "deny"})");
    ASSERT_EQ(diagnostics.size(), 1u) << version << "\n" << format(diagnostics);
    EXPECT_EQ(diagnostics[0].code, "unsupported_version") << version;
    EXPECT_EQ(diagnostics[0].pointer, "/version");
    EXPECT_EQ(diagnostics[0].column, 13u);
  }
}

TEST(Diagnostics, DefaultMustBeAllowOrDeny) {
  for (const char* value : {R"("block")", R"("Allow")", "true", "null", R"("")"}) {
    auto diagnostics = compile_errors(std::string(R"({"version": "1", "default": )") + value + "}");
    ASSERT_EQ(diagnostics.size(), 1u) << value;
    EXPECT_EQ(diagnostics[0].code, "invalid_value");
    EXPECT_EQ(diagnostics[0].pointer, "/default");
    EXPECT_EQ(diagnostics[0].column, 29u);
  }
}

TEST(Diagnostics, ActionMustBeKnown) {
  for (const char* value : {R"("block")", R"("approve")", R"("DENY")", "false", "[]"}) {
    auto diagnostics = compile_errors(with_tool(std::string(R"({"action": )") + value + "}"));
    ASSERT_EQ(diagnostics.size(), 1u) << value;
    EXPECT_EQ(diagnostics[0].code, "invalid_value");
    EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/action");
  }
}

TEST(Diagnostics, OnDenyAndReasonTogetherConflict) {
  auto diagnostics = compile_errors(with_tool(R"({"on_deny": "a", "reason": "b"})"));
  ASSERT_EQ(diagnostics.size(), 1u) << format(diagnostics);
  EXPECT_EQ(diagnostics[0].code, "conflicting_fields");
  EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/reason");
  // Either alone is fine; "reason" is the message as "on_deny" would be.
  auto plan = compile_ok(with_tool(R"({"action": "deny", "reason": "Refunds are disabled."})"), false);
  EXPECT_EQ(test::decide(plan, test::make_call("refund")).message, "Refunds are disabled.");
}

TEST(Diagnostics, CostAndCostFromConflict) {
  auto diagnostics = compile_errors(
      with_tool(R"({"limits": [{"window": "day", "max": 100, "cost": 2, "cost_from": "args.amount"}]})"));
  ASSERT_EQ(diagnostics.size(), 1u) << format(diagnostics);
  EXPECT_EQ(diagnostics[0].code, "conflicting_fields");
  EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/limits/0/cost_from");
}

TEST(Diagnostics, BadLimitFields) {
  struct Case {
    std::string limit;
    std::string code;
    std::string pointer;  // relative to the limit
  };
  const Case cases[] = {
      {R"({"window": "fortnight", "max": 1})", "invalid_window", "/window"},
      {R"({"window": "0s", "max": 1})", "invalid_window", "/window"},
      {R"({"window": "1.5h", "max": 1})", "invalid_window", "/window"},
      {R"({"window": "10x", "max": 1})", "invalid_window", "/window"},
      {R"({"window": "", "max": 1})", "invalid_window", "/window"},
      {R"({"window": " 10s", "max": 1})", "invalid_window", "/window"},
      {R"({"window": "-5s", "max": 1})", "invalid_window", "/window"},
      {R"({"window": 0, "max": 1})", "invalid_window", "/window"},
      {R"({"window": -60, "max": 1})", "invalid_window", "/window"},
      {R"({"window": 2.5, "max": 1})", "invalid_window", "/window"},
      {R"({"window": true, "max": 1})", "invalid_window", "/window"},
      {R"({"max": 1})", "missing_field", ""},
      {R"({"window": "minute"})", "missing_field", ""},
      {R"({"window": "minute", "max": 0})", "invalid_value", "/max"},
      {R"({"window": "minute", "max": -1})", "invalid_value", "/max"},
      {R"({"window": "minute", "max": 1.5})", "invalid_value", "/max"},
      {R"({"window": "minute", "max": 9007199254740992})", "invalid_value", "/max"},
      {R"({"window": "minute", "max": "10"})", "wrong_type", "/max"},
      {R"({"window": "minute", "max": 1, "scope": "user"})", "invalid_value", "/scope"},
      {R"({"window": "minute", "max": 1, "scope": "Global"})", "invalid_value", "/scope"},
      {R"({"window": "minute", "max": 1, "algorithm": "leaky_bucket"})", "invalid_value", "/algorithm"},
      {R"({"window": "minute", "max": 1, "counter": ""})", "wrong_type", "/counter"},
      {R"({"window": "minute", "max": 1, "counter": 7})", "wrong_type", "/counter"},
      {R"({"window": "minute", "max": 1, "cost": 0})", "invalid_value", "/cost"},
      {R"({"window": "minute", "max": 1, "cost": 0.5})", "invalid_value", "/cost"},
      {R"({"window": "minute", "max": 1, "cost_from": "amount"})", "invalid_path", "/cost_from"},
      {R"({"window": "minute", "max": 1, "key": "repo"})", "invalid_path", "/key"},
      {R"({"window": "minute", "max": 1, "key": "args..repo"})", "invalid_path", "/key"},
      {R"({"window": "minute", "max": 1, "key": ["args.repo"]})", "wrong_type", "/key"},
      {R"({"window": "minute", "max": 1, "on_deny": 5})", "wrong_type", "/on_deny"},
      {R"("10/minute")", "wrong_type", ""},
  };
  for (const Case& c : cases) {
    auto diagnostics = compile_errors(with_tool(R"({"limits": [)" + c.limit + "]}"));
    ASSERT_EQ(diagnostics.size(), 1u) << c.limit << "\n" << format(diagnostics);
    EXPECT_EQ(diagnostics[0].code, c.code) << c.limit;
    EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/limits/0" + c.pointer) << c.limit;
  }
}

TEST(Diagnostics, BadRateLimit) {
  struct Case {
    std::string value;
    std::string code;
    std::string pointer;
  };
  const Case cases[] = {
      {R"("10 per minute")", "invalid_value", ""},
      {R"("0/minute")", "invalid_value", ""},
      {R"("010/minute")", "invalid_value", ""},
      {R"("-1/minute")", "invalid_value", ""},
      {R"("10/fortnight")", "invalid_value", ""},
      {R"("10/")", "invalid_value", ""},
      {R"("/minute")", "invalid_value", ""},
      {R"("10")", "invalid_value", ""},
      {"10", "wrong_type", ""},
      {R"({"max": 10})", "missing_field", ""},
      {R"({"max": 0, "window": 60})", "invalid_value", "/max"},
      {R"({"max": 10, "window": "fortnight"})", "invalid_window", "/window"},
      {R"({"max": 10, "window": 60, "scope": "global"})", "unknown_field", "/scope"},
  };
  for (const Case& c : cases) {
    auto diagnostics = compile_errors(with_tool(R"({"rate_limit": )" + c.value + "}"));
    ASSERT_EQ(diagnostics.size(), 1u) << c.value << "\n" << format(diagnostics);
    EXPECT_EQ(diagnostics[0].code, c.code) << c.value;
    EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/rate_limit" + c.pointer) << c.value;
  }
}

// Regexes are checked when the policy loads, never when a call arrives.
TEST(Diagnostics, InvalidRegexAtLoadTime) {
  for (const char* pattern : {R"((a)\\1)", "(?=a)b", "(?!a)b", "(?<=a)b", "(?<name>a)", "(?i)abc", "a(b", "[a-",
                              "*a", R"(\\p{L})", "a{3,1}"}) {
    std::string regex_condition = std::string(R"({"path": "args.name", "op": "regex", "value": ")") + pattern + R"("})";
    auto diagnostics = compile_errors(with_tool(R"({"deny_if": [{"conditions": [)" + regex_condition + "]}]}"));
    ASSERT_EQ(diagnostics.size(), 1u) << pattern << "\n" << format(diagnostics);
    EXPECT_EQ(diagnostics[0].code, "invalid_regex") << pattern;
    EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/deny_if/0/conditions/0/value") << pattern;
    EXPECT_NE(diagnostics[0].message.find("offset"), std::string::npos) << diagnostics[0].message;

    auto schema_diagnostics = compile_errors(with_tool(
        std::string(R"({"args": {"type": "object", "properties": {"name": {"type": "string", "pattern": ")") + pattern +
        R"("}}}})"));
    ASSERT_EQ(schema_diagnostics.size(), 1u) << pattern << "\n" << format(schema_diagnostics);
    EXPECT_EQ(schema_diagnostics[0].code, "invalid_regex");
    EXPECT_EQ(schema_diagnostics[0].pointer, "/tools/refund/args/properties/name/pattern");
  }
}

TEST(Diagnostics, EmptyConditionsAreAnError) {
  auto diagnostics = compile_errors(with_tool(R"({"deny_if": [{"conditions": [], "on_deny": "never"}]})"));
  ASSERT_EQ(diagnostics.size(), 1u) << format(diagnostics);
  EXPECT_EQ(diagnostics[0].code, "invalid_value");
  EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/deny_if/0/conditions");
  diagnostics = compile_errors(with_tool(R"({"require": [{"conditions": []}]})"));
  ASSERT_EQ(diagnostics.size(), 1u) << format(diagnostics);
  EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/require/0/conditions");
}

TEST(Diagnostics, BadConditions) {
  struct Case {
    std::string condition;
    std::string code;
    std::string pointer;  // relative to the condition
  };
  const Case cases[] = {
      {R"({"op": "eq", "value": 1})", "missing_field", ""},
      {R"({"path": "args.a", "value": 1})", "missing_field", ""},
      {R"({"path": "args.a", "op": "eq"})", "missing_field", ""},
      {R"({"path": "args.a", "op": "equals", "value": 1})", "invalid_operator", "/op"},
      {R"({"path": "args.a", "op": 3, "value": 1})", "invalid_operator", "/op"},
      {R"({"path": "amount", "op": "eq", "value": 1})", "invalid_path", "/path"},
      {R"({"path": "args", "op": "eq", "value": 1})", "invalid_path", "/path"},
      {R"({"path": "args.", "op": "eq", "value": 1})", "invalid_path", "/path"},
      {R"({"path": "args.a.", "op": "eq", "value": 1})", "invalid_path", "/path"},
      {R"({"path": "user.id", "op": "eq", "value": 1})", "invalid_path", "/path"},
      {R"({"path": 5, "op": "eq", "value": 1})", "wrong_type", "/path"},
      {R"({"path": "args.a", "op": "gt", "value": "100"})", "wrong_type", "/value"},
      {R"({"path": "args.a", "op": "lte", "value": null})", "wrong_type", "/value"},
      {R"({"path": "args.a", "op": "in", "value": "a"})", "wrong_type", "/value"},
      {R"({"path": "args.a", "op": "not_in", "value": {"a": 1}})", "wrong_type", "/value"},
      {R"({"path": "args.a", "op": "regex", "value": 5})", "wrong_type", "/value"},
      {R"({"path": "args.a", "op": "starts_with", "value": 5})", "wrong_type", "/value"},
      {R"({"path": "args.a", "op": "ends_with", "value": ["a"]})", "wrong_type", "/value"},
      {R"({"path": "args.a", "op": "glob", "value": true})", "wrong_type", "/value"},
      {R"({"path": "args.a", "op": "exists", "value": "yes"})", "wrong_type", "/value"},
      {R"("args.a > 5")", "wrong_type", ""},
  };
  for (const Case& c : cases) {
    auto diagnostics = compile_errors(with_tool(R"({"deny_if": [{"conditions": [)" + c.condition + "]}]}"));
    ASSERT_EQ(diagnostics.size(), 1u) << c.condition << "\n" << format(diagnostics);
    EXPECT_EQ(diagnostics[0].code, c.code) << c.condition;
    EXPECT_EQ(diagnostics[0].pointer, "/tools/refund/deny_if/0/conditions/0" + c.pointer) << c.condition;
  }
}

TEST(Diagnostics, WrongTypes) {
  struct Case {
    std::string policy;
    std::string pointer;
  };
  const std::string head = R"({"version": "1", "default": "deny", )";
  const Case cases[] = {
      {"[]", ""},
      {R"("policy")", ""},
      {head + R"("tools": []})", "/tools"},
      {head + R"("tools": {"run": true}})", "/tools/run"},
      {head + R"("tools": {"run": null}})", "/tools/run"},
      {head + R"("hide": "secret_*"})", "/hide"},
      {head + R"("hide": ["a", 5]})", "/hide/1"},
      {head + R"("description": 5})", "/description"},
      {head + R"("$schema": 5})", "/$schema"},
      {head + R"("all_tools": []})", "/all_tools"},
      {with_tool(R"({"on_deny": 5})"), "/tools/refund/on_deny"},
      {with_tool(R"({"reason": ["no"]})"), "/tools/refund/reason"},
      {with_tool(R"({"limits": {"window": "minute", "max": 1}})"), "/tools/refund/limits"},
      {with_tool(R"({"require": {"path": "args.a", "op": "exists"}})"), "/tools/refund/require"},
      {with_tool(R"({"deny_if": {"conditions": []}})"), "/tools/refund/deny_if"},
      {with_tool(R"({"deny_if": ["args.a"]})"), "/tools/refund/deny_if/0"},
      {with_tool(R"({"deny_if": [{"conditions": {"path": "args.a", "op": "exists"}}]})"),
       "/tools/refund/deny_if/0/conditions"},
      {with_tool(R"({"deny_if": [{"conditions": [{"path": "args.a", "op": "exists"}], "on_deny": 1}]})"),
       "/tools/refund/deny_if/0/on_deny"},
      {with_tool(R"({"action": "require_approval", "approval": "10m"})"), "/tools/refund/approval"},
      {with_tool(R"({"args": "object"})"), "/tools/refund/args"},
      {with_tool(R"({"args": {"type": "object", "properties": []}})"), "/tools/refund/args/properties"},
      {with_tool(R"({"args": {"type": "object", "required": "a"}})"), "/tools/refund/args/required"},
      {with_tool(R"({"args": {"type": "object", "required": [1]}})"), "/tools/refund/args/required"},
      {with_tool(R"({"args": {"type": "number", "minimum": "0"}})"), "/tools/refund/args/minimum"},
      {with_tool(R"({"args": {"type": "array", "enum": 1}})"), "/tools/refund/args/enum"},
  };
  for (const Case& c : cases) {
    auto diagnostics = compile_errors(c.policy);
    auto errors = errors_only(diagnostics);
    ASSERT_EQ(errors.size(), 1u) << c.policy << "\n" << format(diagnostics);
    EXPECT_EQ(errors[0].code, "wrong_type") << c.policy;
    EXPECT_EQ(errors[0].pointer, c.pointer) << c.policy;
  }
}

TEST(Diagnostics, OtherInvalidValues) {
  struct Case {
    std::string policy;
    std::string code;
    std::string pointer;
  };
  const std::string head = R"({"version": "1", "default": "deny", )";
  const Case cases[] = {
      {head + R"("hide": [""]})", "invalid_value", "/hide/0"},
      {head + R"("tools": {"": {}}})", "invalid_value", "/tools/"},
      {with_tool(R"({"action": "require_approval", "approval": {"timeout": "forever"}})"), "invalid_value",
       "/tools/refund/approval/timeout"},
      {with_tool(R"({"action": "require_approval", "approval": {"timeout": 0}})"), "invalid_value",
       "/tools/refund/approval/timeout"},
      {with_tool(R"({"args": {"type": "object", "properties": {"a": {"type": "float"}}}})"), "invalid_value",
       "/tools/refund/args/properties/a/type"},
      {with_tool(R"({"args": {"type": []}})"), "invalid_value", "/tools/refund/args/type"},
      {with_tool(R"({"args": {"type": "string", "minLength": -1}})"), "invalid_value",
       "/tools/refund/args/minLength"},
      {with_tool(R"({"args": {"type": "array", "maxItems": 1.5}})"), "invalid_value", "/tools/refund/args/maxItems"},
      {with_tool(R"({"deny_if": [{"on_deny": "no"}]})"), "missing_field", "/tools/refund/deny_if/0"},
  };
  for (const Case& c : cases) {
    auto diagnostics = compile_errors(c.policy);
    auto errors = errors_only(diagnostics);
    ASSERT_EQ(errors.size(), 1u) << c.policy << "\n" << format(diagnostics);
    EXPECT_EQ(errors[0].code, c.code) << c.policy;
    EXPECT_EQ(errors[0].pointer, c.pointer) << c.policy;
  }
}

TEST(Diagnostics, JsonErrorsComeFromTheReader) {
  CompileResult result = compile_policy("{\"version\": \"1\",\n \"default\": \"deny\",\n}");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].code, "json_syntax");
  EXPECT_EQ(result.diagnostics[0].line, 3u);
  EXPECT_EQ(result.diagnostics[0].column, 1u);

  // Duplicate keys: reported with the other errors, and the policy is rejected.
  result = compile_policy(
      R"({"version": "1", "default": "deny", "tools": {"run": {"action": "deny"}, "run": {}}, "hide": 5})");
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "json_duplicate_key", "/tools/run"));
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "wrong_type", "/hide"));

  // Nesting beyond the policy limit (128).
  std::string deep = R"({"version": "1", "default": "deny", "description": )" + std::string(200, '[') +
                     std::string(200, ']') + "}";
  result = compile_policy(deep);
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].code, "json_too_deep");

  result = compile_policy("");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].code, "json_syntax");
}

TEST(Diagnostics, WarningsDoNotRejectThePolicy) {
  const std::string text = R"({
    "version": "1", "default": "deny",
    "hide": ["admin_*"],
    "tools": {
      "admin_reset": {},
      "deploy": {"approval": {"timeout": "5m"}},
      "refund": {"args": {"properties": {"amount": {"maximum": 100}}}}
    }
  })";
  CompileResult result = compile_policy(text);
  ASSERT_TRUE(result.ok()) << format(result.diagnostics);
  EXPECT_FALSE(has_errors(result.diagnostics));
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "hidden_tool_entry", "/tools/admin_reset"));
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "unused_field", "/tools/deploy/approval"));
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "untyped_schema", "/tools/refund/args"));
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "untyped_schema", "/tools/refund/args/properties/amount"));
  for (const Diagnostic& d : result.diagnostics) EXPECT_EQ(d.severity, Severity::warning) << d.code;
}

TEST(Diagnostics, ErrorsAndWarningsTogetherStillReject) {
  CompileResult result = compile_policy(R"({"version": "1", "tools": {"run": {"action": "nope"}}})");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.plan, nullptr);
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "missing_default", ""));
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "invalid_value", "/tools/run/action"));
}

// The spec's compatibility example compiles, unchanged, with no diagnostics.
TEST(Diagnostics, PolicyLayerExampleCompilesCleanly) {
  const std::string text = R"({ "version": "1", "default": "deny",
  "tools": { "run": { "limits": [ { "counter": "run_rate", "window": "minute", "max": 10, "scope": "grant" } ] } } })";
  CompileResult result = compile_policy(text);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.diagnostics.empty()) << format(result.diagnostics);
  EXPECT_EQ(result.plan->policy_hash, sha256_hex(text));
  ASSERT_EQ(result.plan->tools.size(), 1u);
  const Limit& limit = result.plan->tools[0].rules.limits.at(0);
  EXPECT_EQ(limit.counter, "run_rate");
  EXPECT_EQ(limit.window_ms, 60000);
  EXPECT_EQ(limit.max, 10);
  EXPECT_EQ(limit.scope, Scope::grant);
  EXPECT_EQ(limit.pointer, "/tools/run/limits/0");
}

// Every documented field at once, written correctly: no diagnostics.
TEST(Diagnostics, FullPolicyCompilesCleanly) {
  const std::string text = R"({
    "$schema": "https://toolgate.dev/schema/policy-1.json",
    "version": "1",
    "default": "allow",
    "description": "Payments agent",
    "hide": ["internal_*", "debug"],
    "all_tools": {
      "require": [{"path": "grant.id", "op": "neq", "value": "anonymous"}],
      "deny_if": [{"conditions": [{"path": "grant.suspended", "op": "eq", "value": true}], "on_deny": "Suspended."}],
      "limits": [{"counter": "everything", "window": "hour", "max": 1000, "scope": "global"}],
      "rate_limit": "100/minute"
    },
    "tools": {
      "create_refund": {
        "action": "allow",
        "on_deny": "Refunds need a smaller amount.",
        "args": {
          "type": "object",
          "properties": {
            "amount": {"type": "integer", "minimum": 1, "maximum": 50000, "description": "cents"},
            "currency": {"type": "string", "enum": ["usd", "eur"]},
            "charge": {"type": "string", "pattern": "^ch_[A-Za-z0-9]+$", "minLength": 4, "maxLength": 64},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 0, "maxItems": 5},
            "reason": {"const": "requested_by_customer"},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
          },
          "required": ["amount", "currency", "charge"],
          "additionalProperties": false
        },
        "require": [
          {"path": "grant.role", "op": "in", "value": ["support", "admin"]},
          {"conditions": [{"path": "args.currency", "op": "exists"}], "on_deny": "Say the currency."}
        ],
        "deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 10000},
                                    {"path": "grant.role", "op": "neq", "value": "admin"}],
                     "on_deny": "Refunds over $100 need an admin."}],
        "limits": [
          {"counter": "refund_spend", "window": "day", "max": 100000, "cost_from": "args.amount", "on_deny": "Daily refund budget spent."},
          {"window": "10s", "max": 3, "algorithm": "sliding", "key": "args.charge"}
        ]
      },
      "deploy": {"action": "require_approval", "approval": {"timeout": "30m"}, "rate_limit": {"max": 5, "window": 3600}},
      "db_*": {"action": "deny", "reason": "No direct database access."},
      "search": {}
    }
  })";
  CompileResult result = compile_policy(text);
  ASSERT_TRUE(result.ok()) << format(result.diagnostics);
  EXPECT_TRUE(result.diagnostics.empty()) << format(result.diagnostics);
  EXPECT_EQ(result.plan->description, "Payments agent");
  EXPECT_TRUE(result.plan->default_allow);
}

TEST(Diagnostics, ToJson) {
  CompileResult result = compile_policy("{\"version\": \"1\",\n \"defualt\": \"deny\"}");
  json out = to_json(result.diagnostics);
  ASSERT_TRUE(out.is_array());
  ASSERT_EQ(out.size(), 2u) << out.dump();
  // The unknown field (line 2) comes after the missing default (line 1).
  EXPECT_EQ(out[0]["code"], "missing_default");
  EXPECT_EQ(out[0]["severity"], "warning");
  EXPECT_EQ(out[1]["code"], "unknown_field");
  EXPECT_EQ(out[1]["severity"], "error");
  EXPECT_EQ(out[1]["pointer"], "/defualt");
  EXPECT_EQ(out[1]["line"], 2);
  EXPECT_EQ(out[1]["column"], 2);
  EXPECT_TRUE(out[1]["message"].is_string());
  EXPECT_EQ(to_json(std::vector<Diagnostic>{}), json::array());
}

}  // namespace
}  // namespace toolgate
