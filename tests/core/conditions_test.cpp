// Conditions: the 14 operators, JSON equality, paths into arguments and the
// grant, missing paths, type confusion (fails closed with invalid_arguments),
// require vs deny_if groups, and their messages.
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::decide;
using test::parse_call;

enum class Outcome { holds, fails, error };

std::string outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::holds: return "holds";
    case Outcome::fails: return "fails";
    default: return "error";
  }
}

// Runs one condition as a deny_if on tool "t" against a call.
Outcome run_condition(const std::string& condition, const std::string& call) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"t": {"deny_if": [{"conditions": [)" +
                         condition + R"(], "on_deny": "hit"}]}}})");
  if (!plan) return Outcome::error;
  Decision decision = decide(plan, parse_call(call));
  if (decision.code == "condition_denied") {
    EXPECT_EQ(decision.message, "hit");
    EXPECT_EQ(decision.rule, "/tools/t/deny_if/0");
    return Outcome::holds;
  }
  if (decision.code == "allowed") return Outcome::fails;
  EXPECT_EQ(decision.code, "invalid_arguments") << condition;
  EXPECT_EQ(decision.verdict, Verdict::deny);
  EXPECT_EQ(decision.rule, "/tools/t/deny_if/0");
  return Outcome::error;
}

struct Case {
  std::string condition;
  std::string arguments;  // the call's arguments
  Outcome expected;
};

void run_table(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    Outcome outcome = run_condition(c.condition, R"({"tool": "t", "arguments": )" + c.arguments + "}");
    EXPECT_EQ(outcome_name(outcome), outcome_name(c.expected)) << c.condition << " on " << c.arguments;
  }
}

constexpr Outcome kHolds = Outcome::holds;
constexpr Outcome kFails = Outcome::fails;
constexpr Outcome kError = Outcome::error;

TEST(Conditions, Equality) {
  run_table({
      {R"({"path": "args.a", "op": "eq", "value": 5})", R"({"a": 5})", kHolds},
      {R"({"path": "args.a", "op": "eq", "value": 5})", R"({"a": 6})", kFails},
      // JSON equality: 1 equals 1.0, "1" does not equal 1.
      {R"({"path": "args.a", "op": "eq", "value": 1})", R"({"a": 1.0})", kHolds},
      {R"({"path": "args.a", "op": "eq", "value": 1.0})", R"({"a": 1})", kHolds},
      {R"({"path": "args.a", "op": "eq", "value": 1})", R"({"a": 1e0})", kHolds},
      {R"({"path": "args.a", "op": "eq", "value": -0.0})", R"({"a": 0})", kHolds},
      {R"({"path": "args.a", "op": "eq", "value": 1})", R"({"a": "1"})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": "1"})", R"({"a": 1})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": true})", R"({"a": 1})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": 0})", R"({"a": false})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": null})", R"({"a": null})", kHolds},
      {R"({"path": "args.a", "op": "eq", "value": null})", R"({"a": 0})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": ""})", R"({"a": null})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": "Prod"})", R"({"a": "prod"})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": "café"})", R"({"a": "caf\u00e9"})", kHolds},
      // Nested objects and arrays: deep equality, key order irrelevant,
      // numbers compared as numbers at every depth.
      {R"({"path": "args.a", "op": "eq", "value": {"x": [1, {"y": 2}], "z": null}})",
       R"({"a": {"z": null, "x": [1.0, {"y": 2.0}]}})", kHolds},
      {R"({"path": "args.a", "op": "eq", "value": {"x": [1, 2]}})", R"({"a": {"x": [2, 1]}})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": {"x": 1}})", R"({"a": {"x": 1, "y": 2}})", kFails},
      {R"({"path": "args.a", "op": "eq", "value": [1, "1"]})", R"({"a": [1.0, "1"]})", kHolds},
      {R"({"path": "args.a", "op": "eq", "value": []})", R"({"a": {}})", kFails},
      // neq is the negation of eq.
      {R"({"path": "args.a", "op": "neq", "value": 5})", R"({"a": 6})", kHolds},
      {R"({"path": "args.a", "op": "neq", "value": 5})", R"({"a": 5.0})", kFails},
      {R"({"path": "args.a", "op": "neq", "value": 1})", R"({"a": "1"})", kHolds},
      {R"({"path": "args.a", "op": "neq", "value": {"k": [1]}})", R"({"a": {"k": [1.0]}})", kFails},
  });
}

TEST(Conditions, NumericComparisons) {
  run_table({
      {R"({"path": "args.n", "op": "lt", "value": 10})", R"({"n": 9})", kHolds},
      {R"({"path": "args.n", "op": "lt", "value": 10})", R"({"n": 10})", kFails},
      {R"({"path": "args.n", "op": "lt", "value": 10})", R"({"n": 9.999})", kHolds},
      {R"({"path": "args.n", "op": "lte", "value": 10})", R"({"n": 10.0})", kHolds},
      {R"({"path": "args.n", "op": "lte", "value": 10})", R"({"n": 10.5})", kFails},
      {R"({"path": "args.n", "op": "gt", "value": 100})", R"({"n": 101})", kHolds},
      {R"({"path": "args.n", "op": "gt", "value": 100})", R"({"n": 100})", kFails},
      {R"({"path": "args.n", "op": "gt", "value": 100})", R"({"n": 1e3})", kHolds},
      {R"({"path": "args.n", "op": "gt", "value": -1})", R"({"n": -0.5})", kHolds},
      {R"({"path": "args.n", "op": "gte", "value": 0.5})", R"({"n": 0.5})", kHolds},
      {R"({"path": "args.n", "op": "gte", "value": 0.5})", R"({"n": 0})", kFails},
      {R"({"path": "args.n", "op": "gt", "value": 9007199254740991})", R"({"n": 18446744073709551615})", kHolds},
      {R"({"path": "args.n", "op": "lt", "value": 0})", R"({"n": -9223372036854775808})", kHolds},
  });
}

TEST(Conditions, Membership) {
  run_table({
      {R"({"path": "args.env", "op": "in", "value": ["staging", "prod"]})", R"({"env": "prod"})", kHolds},
      {R"({"path": "args.env", "op": "in", "value": ["staging", "prod"]})", R"({"env": "dev"})", kFails},
      {R"({"path": "args.env", "op": "in", "value": []})", R"({"env": "dev"})", kFails},
      {R"({"path": "args.n", "op": "in", "value": [1, 2]})", R"({"n": 2.0})", kHolds},
      {R"({"path": "args.n", "op": "in", "value": [1, 2]})", R"({"n": "2"})", kFails},
      {R"({"path": "args.n", "op": "in", "value": [{"a": [1]}]})", R"({"n": {"a": [1.0]}})", kHolds},
      {R"({"path": "args.n", "op": "in", "value": [null]})", R"({"n": null})", kHolds},
      {R"({"path": "args.env", "op": "not_in", "value": ["staging", "prod"]})", R"({"env": "dev"})", kHolds},
      {R"({"path": "args.env", "op": "not_in", "value": ["staging", "prod"]})", R"({"env": "prod"})", kFails},
      {R"({"path": "args.env", "op": "not_in", "value": []})", R"({"env": "prod"})", kHolds},
      {R"({"path": "args.n", "op": "not_in", "value": [1]})", R"({"n": 1.0})", kFails},
  });
}

TEST(Conditions, Exists) {
  run_table({
      {R"({"path": "args.a", "op": "exists"})", R"({"a": 1})", kHolds},
      {R"({"path": "args.a", "op": "exists"})", R"({"a": null})", kHolds},  // present, even if null
      {R"({"path": "args.a", "op": "exists"})", R"({"a": false})", kHolds},
      {R"({"path": "args.a", "op": "exists"})", R"({})", kFails},
      {R"({"path": "args.a", "op": "exists", "value": true})", R"({"a": ""})", kHolds},
      {R"({"path": "args.a", "op": "exists", "value": true})", R"({"b": 1})", kFails},
      // exists with value false tests absence.
      {R"({"path": "args.a", "op": "exists", "value": false})", R"({})", kHolds},
      {R"({"path": "args.a", "op": "exists", "value": false})", R"({"a": null})", kFails},
      {R"({"path": "args.a.b", "op": "exists"})", R"({"a": {"b": {}}})", kHolds},
      {R"({"path": "args.a.b", "op": "exists"})", R"({"a": "b"})", kFails},
      {R"({"path": "args.a.b", "op": "exists", "value": false})", R"({"a": 5})", kHolds},
  });
}

TEST(Conditions, StringOperators) {
  run_table({
      // regex: an unanchored search, anchors when written.
      {R"({"path": "args.s", "op": "regex", "value": "^ch_[0-9]+$"})", R"({"s": "ch_123"})", kHolds},
      {R"({"path": "args.s", "op": "regex", "value": "^ch_[0-9]+$"})", R"({"s": "ch_12a"})", kFails},
      {R"({"path": "args.s", "op": "regex", "value": "DROP\\s+TABLE"})", R"({"s": "x; DROP  TABLE users"})", kHolds},
      {R"({"path": "args.s", "op": "regex", "value": "abc"})", R"({"s": "xxabcxx"})", kHolds},
      {R"({"path": "args.s", "op": "regex", "value": "abc"})", R"({"s": "ABC"})", kFails},
      {R"({"path": "args.s", "op": "regex", "value": "^.$"})", R"({"s": "é"})", kHolds},
      // contains: substring of a string, or element of an array (JSON equality).
      {R"({"path": "args.s", "op": "contains", "value": "rm -rf"})", R"({"s": "sudo rm -rf /"})", kHolds},
      {R"({"path": "args.s", "op": "contains", "value": "rm -rf"})", R"({"s": "rm -r"})", kFails},
      {R"({"path": "args.s", "op": "contains", "value": ""})", R"({"s": "x"})", kHolds},
      {R"({"path": "args.l", "op": "contains", "value": "admin"})", R"({"l": ["user", "admin"]})", kHolds},
      {R"({"path": "args.l", "op": "contains", "value": "admin"})", R"({"l": ["administrator"]})", kFails},
      {R"({"path": "args.l", "op": "contains", "value": 1})", R"({"l": [1.0]})", kHolds},
      {R"({"path": "args.l", "op": "contains", "value": 1})", R"({"l": ["1"]})", kFails},
      {R"({"path": "args.l", "op": "contains", "value": {"k": 1}})", R"({"l": [{"k": 1}]})", kHolds},
      {R"({"path": "args.l", "op": "contains", "value": "x"})", R"({"l": []})", kFails},
      // starts_with / ends_with: byte-exact, case-sensitive.
      {R"({"path": "args.s", "op": "starts_with", "value": "/etc/"})", R"({"s": "/etc/passwd"})", kHolds},
      {R"({"path": "args.s", "op": "starts_with", "value": "/etc/"})", R"({"s": "/home/etc/"})", kFails},
      {R"({"path": "args.s", "op": "starts_with", "value": ""})", R"({"s": ""})", kHolds},
      {R"({"path": "args.s", "op": "starts_with", "value": "abc"})", R"({"s": "ab"})", kFails},
      {R"({"path": "args.s", "op": "ends_with", "value": ".env"})", R"({"s": "prod.env"})", kHolds},
      {R"({"path": "args.s", "op": "ends_with", "value": ".env"})", R"({"s": "prod.ENV"})", kFails},
      {R"({"path": "args.s", "op": "ends_with", "value": ".env"})", R"({"s": "env"})", kFails},
      {R"({"path": "args.s", "op": "ends_with", "value": "é"})", R"({"s": "café"})", kHolds},
      // glob: * is the only wildcard.
      {R"({"path": "args.s", "op": "glob", "value": "*.env"})", R"({"s": "config/prod.env"})", kHolds},
      {R"({"path": "args.s", "op": "glob", "value": "*.env"})", R"({"s": "prod.env.bak"})", kFails},
      {R"({"path": "args.s", "op": "glob", "value": "s3://*/secrets/*"})", R"({"s": "s3://bucket/secrets/key"})", kHolds},
      {R"({"path": "args.s", "op": "glob", "value": "a?c"})", R"({"s": "abc"})", kFails},
      {R"({"path": "args.s", "op": "glob", "value": "a?c"})", R"({"s": "a?c"})", kHolds},
  });
}

// A missing path makes every operator false except exists.
TEST(Conditions, MissingPathIsFalse) {
  for (const char* op_value : {R"("op": "eq", "value": null)", R"("op": "neq", "value": 1)", R"("op": "lt", "value": 1)",
                               R"("op": "lte", "value": 1)", R"("op": "gt", "value": 1)", R"("op": "gte", "value": 1)",
                               R"("op": "in", "value": [null])", R"("op": "not_in", "value": [1])",
                               R"("op": "regex", "value": "")", R"("op": "contains", "value": "")",
                               R"("op": "starts_with", "value": "")", R"("op": "ends_with", "value": "")",
                               R"("op": "glob", "value": "*")"}) {
    std::string condition = std::string(R"({"path": "args.missing", )") + op_value + "}";
    EXPECT_EQ(outcome_name(run_condition(condition, R"({"tool": "t", "arguments": {"other": 1}})")), "fails")
        << condition;
    condition = std::string(R"({"path": "grant.missing.deep", )") + op_value + "}";
    EXPECT_EQ(outcome_name(run_condition(condition, R"({"tool": "t", "grant": {"id": "a", "x": 1}})")), "fails")
        << condition;
  }
  EXPECT_EQ(outcome_name(run_condition(R"({"path": "args.missing", "op": "exists"})", R"({"tool": "t"})")), "fails");
  EXPECT_EQ(outcome_name(run_condition(R"({"path": "args.missing", "op": "exists", "value": false})", R"({"tool": "t"})")),
            "holds");
}

TEST(Conditions, ArrayIndexPaths) {
  const std::string args = R"({"files": ["a.txt", {"name": "b.env"}], "map": {"0": "zero", "01": "one"}, "s": "abc"})";
  run_table({
      {R"({"path": "args.files.0", "op": "eq", "value": "a.txt"})", args, kHolds},
      {R"({"path": "args.files.1.name", "op": "ends_with", "value": ".env"})", args, kHolds},
      {R"({"path": "args.files.2", "op": "exists"})", args, kFails},
      {R"({"path": "args.files.99999999999", "op": "exists"})", args, kFails},
      // Leading zeros are not an index.
      {R"({"path": "args.files.00", "op": "exists"})", args, kFails},
      // A decimal segment on an object is an ordinary key.
      {R"({"path": "args.map.0", "op": "eq", "value": "zero"})", args, kHolds},
      {R"({"path": "args.map.01", "op": "eq", "value": "one"})", args, kHolds},
      // Strings are not indexed.
      {R"({"path": "args.s.0", "op": "exists"})", args, kFails},
      {R"({"path": "args.files.name", "op": "exists"})", args, kFails},
      {R"({"path": "args.files.-1", "op": "exists"})", args, kFails},
  });
}

TEST(Conditions, GrantPaths) {
  struct GrantCase {
    std::string condition;
    std::string call;
    Outcome expected;
  };
  const GrantCase cases[] = {
      {R"({"path": "grant.id", "op": "eq", "value": "alice"})", R"({"tool": "t", "grant": "alice"})", kHolds},
      {R"({"path": "grant.id", "op": "eq", "value": "alice"})", R"({"tool": "t", "grant": {"id": "alice", "role": "ci"}})",
       kHolds},
      {R"({"path": "grant.id", "op": "eq", "value": "anonymous"})", R"({"tool": "t"})", kHolds},
      {R"({"path": "grant.id", "op": "starts_with", "value": "svc-"})", R"({"tool": "t", "grant": "svc-deploy"})", kHolds},
      {R"({"path": "grant.id.x", "op": "exists"})", R"({"tool": "t", "grant": "alice"})", kFails},
      {R"({"path": "grant.role", "op": "eq", "value": "ci"})", R"({"tool": "t", "grant": {"id": "a", "role": "ci"}})",
       kHolds},
      {R"({"path": "grant.role", "op": "in", "value": ["admin", "ci"]})", R"({"tool": "t", "grant": {"id": "a", "role": "dev"}})",
       kFails},
      {R"({"path": "grant.role", "op": "exists"})", R"({"tool": "t", "grant": "alice"})", kFails},
      {R"({"path": "grant.team.name", "op": "eq", "value": "pay"})",
       R"({"tool": "t", "grant": {"id": "a", "team": {"name": "pay"}}})", kHolds},
      {R"({"path": "grant.scopes.1", "op": "eq", "value": "write"})",
       R"({"tool": "t", "grant": {"id": "a", "scopes": ["read", "write"]}})", kHolds},
      {R"({"path": "grant.level", "op": "gte", "value": 3})", R"({"tool": "t", "grant": {"id": "a", "level": 3}})", kHolds},
      // Grant attributes are not arguments, and arguments are not grant attributes.
      {R"({"path": "args.role", "op": "exists"})", R"({"tool": "t", "grant": {"id": "a", "role": "ci"}})", kFails},
      {R"({"path": "grant.role", "op": "exists"})", R"({"tool": "t", "arguments": {"role": "admin"}})", kFails},
  };
  for (const GrantCase& c : cases) {
    EXPECT_EQ(outcome_name(run_condition(c.condition, c.call)), outcome_name(c.expected)) << c.condition << " " << c.call;
  }
}

// Type confusion fails closed: an evaluation error denies with invalid_arguments.
TEST(Conditions, TypeConfusionIsAnError) {
  run_table({
      {R"({"path": "args.n", "op": "gt", "value": 100})", R"({"n": "1000000"})", kError},
      {R"({"path": "args.n", "op": "gte", "value": 100})", R"({"n": null})", kError},
      {R"({"path": "args.n", "op": "lt", "value": 100})", R"({"n": true})", kError},
      {R"({"path": "args.n", "op": "lte", "value": 100})", R"({"n": [1]})", kError},
      {R"({"path": "args.n", "op": "lt", "value": 100})", R"({"n": {"v": 1}})", kError},
      {R"({"path": "args.s", "op": "regex", "value": "^[0-9]+$"})", R"({"s": 123})", kError},
      {R"({"path": "args.s", "op": "regex", "value": "x"})", R"({"s": ["x"]})", kError},
      {R"({"path": "args.s", "op": "contains", "value": "1"})", R"({"s": 123})", kError},
      {R"({"path": "args.s", "op": "contains", "value": "a"})", R"({"s": {"a": 1}})", kError},
      {R"({"path": "args.s", "op": "contains", "value": null})", R"({"s": null})", kError},
      {R"({"path": "args.s", "op": "contains", "value": 1})", R"({"s": "123"})", kError},
      {R"({"path": "args.s", "op": "starts_with", "value": "a"})", R"({"s": ["a"]})", kError},
      {R"({"path": "args.s", "op": "ends_with", "value": "a"})", R"({"s": {"a": "a"}})", kError},
      {R"({"path": "args.s", "op": "glob", "value": "*"})", R"({"s": true})", kError},
      {R"({"path": "args.s", "op": "glob", "value": "*"})", R"({"s": null})", kError},
      // Operators that take any JSON value never fail on type.
      {R"({"path": "args.s", "op": "eq", "value": "1"})", R"({"s": 1})", kFails},
      {R"({"path": "args.s", "op": "in", "value": ["1"]})", R"({"s": {"a": 1}})", kFails},
      {R"({"path": "args.s", "op": "not_in", "value": [1]})", R"({"s": [1]})", kHolds},
      {R"({"path": "args.s", "op": "exists"})", R"({"s": {"a": 1}})", kHolds},
  });
}

TEST(Conditions, TypeErrorMessageNamesPathOperatorAndType) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"refund": {
      "on_deny": "tool message",
      "deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 100}], "on_deny": "too much"}]}}})");
  Decision decision = decide(plan, parse_call(R"({"tool": "refund", "arguments": {"amount": "1000000"}})"));
  EXPECT_EQ(decision.verdict, Verdict::deny);
  EXPECT_EQ(decision.code, "invalid_arguments");
  EXPECT_EQ(decision.rule, "/tools/refund/deny_if/0");
  // The error explains itself rather than reusing an on_deny written for another reason.
  EXPECT_NE(decision.message.find("args.amount"), std::string::npos) << decision.message;
  EXPECT_NE(decision.message.find("\"gt\""), std::string::npos) << decision.message;
  EXPECT_NE(decision.message.find("string"), std::string::npos) << decision.message;
}

// Every condition of a group is evaluated, so a type error anywhere denies
// even when another condition already made the group false: reordering
// conditions must never let a confused value through.
TEST(Conditions, TypeErrorInAnyConditionOfAGroupDenies) {
  const std::string false_condition = R"({"path": "args.currency", "op": "eq", "value": "usd"})";
  const std::string confused_condition = R"({"path": "args.amount", "op": "gt", "value": 100})";
  const std::string call = R"({"tool": "t", "arguments": {"currency": "eur", "amount": "5000"}})";
  EXPECT_EQ(outcome_name(run_condition(false_condition + ", " + confused_condition, call)), "error");
  EXPECT_EQ(outcome_name(run_condition(confused_condition + ", " + false_condition, call)), "error");

  // In a require group too (where a false condition would otherwise fail it).
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"t": {"require": [
      {"conditions": [)" + false_condition + ", " + confused_condition + R"(], "on_deny": "need usd"}]}}})");
  Decision decision = decide(plan, parse_call(call));
  EXPECT_EQ(decision.code, "invalid_arguments");
  EXPECT_EQ(decision.rule, "/tools/t/require/0");

  // A missing value is not a type error: the group is just false.
  EXPECT_EQ(outcome_name(run_condition(false_condition + ", " + confused_condition,
                                       R"({"tool": "t", "arguments": {"currency": "eur"}})")),
            "fails");
}

TEST(Conditions, RequireSingleConditionOrGroup) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"deploy": {"require": [
      {"path": "grant.role", "op": "in", "value": ["admin", "release"]},
      {"conditions": [{"path": "args.env", "op": "exists"}, {"path": "args.ticket", "op": "regex", "value": "^OPS-[0-9]+$"}],
       "on_deny": "Deploys need an env and an OPS ticket."}
    ]}}})");
  auto call = [&](const std::string& grant, const std::string& args) {
    return decide(plan, parse_call(R"({"tool": "deploy", "grant": )" + grant + R"(, "arguments": )" + args + "}"));
  };
  Decision d = call(R"({"id": "a", "role": "dev"})", R"({"env": "prod", "ticket": "OPS-1"})");
  EXPECT_EQ(d.code, "requirement_failed");
  EXPECT_EQ(d.rule, "/tools/deploy/require/0");
  // A generated message says which condition failed.
  EXPECT_NE(d.message.find("grant.role"), std::string::npos) << d.message;

  d = call(R"({"id": "a", "role": "admin"})", R"({"env": "prod", "ticket": "JIRA-1"})");
  EXPECT_EQ(d.code, "requirement_failed");
  EXPECT_EQ(d.rule, "/tools/deploy/require/1");
  EXPECT_EQ(d.message, "Deploys need an env and an OPS ticket.");

  d = call(R"({"id": "a", "role": "admin"})", R"({"ticket": "OPS-1"})");
  EXPECT_EQ(d.rule, "/tools/deploy/require/1");

  d = call(R"({"id": "a", "role": "release"})", R"({"env": "prod", "ticket": "OPS-12"})");
  EXPECT_EQ(d.code, "allowed");
  EXPECT_EQ(d.verdict, Verdict::allow);
  EXPECT_EQ(d.rule, "/tools/deploy");

  // A requirement on a missing path fails (missing is false).
  d = call(R"("alice")", R"({"env": "prod", "ticket": "OPS-1"})");
  EXPECT_EQ(d.code, "requirement_failed");
  EXPECT_EQ(d.rule, "/tools/deploy/require/0");
}

TEST(Conditions, DenyIfNeedsAllConditionsOfOneEntry) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"create_refund": {"deny_if": [
      {"conditions": [{"path": "args.amount", "op": "gt", "value": 10000},
                      {"path": "grant.role", "op": "neq", "value": "admin"}],
       "on_deny": "Refunds over $100 need an admin."},
      {"conditions": [{"path": "args.reason", "op": "eq", "value": "fraudulent"}]}
    ]}}})");
  auto call = [&](const std::string& role, const std::string& args) {
    return decide(plan, parse_call(R"({"tool": "create_refund", "grant": {"id": "a", "role": ")" + role +
                                   R"("}, "arguments": )" + args + "}"));
  };
  Decision d = call("support", R"({"amount": 20000})");
  EXPECT_EQ(d.code, "condition_denied");
  EXPECT_EQ(d.rule, "/tools/create_refund/deny_if/0");
  EXPECT_EQ(d.message, "Refunds over $100 need an admin.");
  EXPECT_EQ(call("admin", R"({"amount": 20000})").code, "allowed");
  EXPECT_EQ(call("support", R"({"amount": 500})").code, "allowed");
  d = call("admin", R"({"amount": 500, "reason": "fraudulent"})");
  EXPECT_EQ(d.code, "condition_denied");
  EXPECT_EQ(d.rule, "/tools/create_refund/deny_if/1");
  // Without any on_deny the message is generated from the conditions.
  EXPECT_NE(d.message.find("args.reason"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("fraudulent"), std::string::npos) << d.message;
}

// Messages: the entry's own on_deny, else the tool's on_deny (or its alias
// reason), else a generated one. all_tools rules never borrow a tool's message.
TEST(Conditions, MessagesFallBackFromEntryToTool) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny",
    "all_tools": {
      "require": [{"path": "grant.id", "op": "neq", "value": "anonymous"}],
      "deny_if": [{"conditions": [{"path": "args.dry_run", "op": "eq", "value": false}]}]
    },
    "tools": {
      "a": {"on_deny": "Tool a says no.",
            "require": [{"path": "args.ok", "op": "eq", "value": true},
                        {"conditions": [{"path": "args.n", "op": "lt", "value": 5}], "on_deny": "n too big"}],
            "deny_if": [{"conditions": [{"path": "args.bad", "op": "exists"}]},
                        {"conditions": [{"path": "args.worse", "op": "exists"}], "on_deny": "worse"}]},
      "b": {"reason": "Tool b says no.", "require": [{"path": "args.ok", "op": "eq", "value": true}]},
      "c": {}
    }})");
  auto message = [&](const std::string& call) { return decide(plan, parse_call(call)).message; };
  EXPECT_EQ(message(R"({"tool": "a", "grant": "g", "arguments": {"ok": false}})"), "Tool a says no.");
  EXPECT_EQ(message(R"({"tool": "a", "grant": "g", "arguments": {"ok": true, "n": 9}})"), "n too big");
  EXPECT_EQ(message(R"({"tool": "a", "grant": "g", "arguments": {"ok": true, "n": 1, "bad": 1}})"), "Tool a says no.");
  EXPECT_EQ(message(R"({"tool": "a", "grant": "g", "arguments": {"ok": true, "n": 1, "worse": 1}})"), "worse");
  EXPECT_EQ(message(R"({"tool": "b", "grant": "g", "arguments": {"ok": 1}})"), "Tool b says no.");

  // all_tools: generated messages, not the tool's.
  Decision d = decide(plan, parse_call(R"({"tool": "a", "arguments": {"ok": true, "n": 1}})"));
  EXPECT_EQ(d.code, "requirement_failed");
  EXPECT_EQ(d.rule, "/all_tools/require/0");
  EXPECT_NE(d.message, "Tool a says no.");
  EXPECT_NE(d.message.find("grant.id"), std::string::npos) << d.message;
  d = decide(plan, parse_call(R"({"tool": "a", "grant": "g", "arguments": {"ok": true, "n": 1, "dry_run": false}})"));
  EXPECT_EQ(d.code, "condition_denied");
  EXPECT_EQ(d.rule, "/all_tools/deny_if/0");
  EXPECT_NE(d.message, "Tool a says no.");
  EXPECT_NE(d.message.find("args.dry_run"), std::string::npos) << d.message;
  EXPECT_EQ(decide(plan, parse_call(R"({"tool": "c", "grant": "g", "arguments": {"dry_run": true}})")).code, "allowed");
}

// all_tools applies to tools with no entry too (under default allow).
TEST(Conditions, AllToolsAppliesWithoutAnEntry) {
  auto plan = compile_ok(R"({"version": "1", "default": "allow",
    "all_tools": {"deny_if": [{"conditions": [{"path": "args.path", "op": "glob", "value": "*.env"}], "on_deny": "No secrets."}]}})");
  Decision d = decide(plan, parse_call(R"({"tool": "read_file", "arguments": {"path": "app/.env"}})"));
  EXPECT_EQ(d.code, "condition_denied");
  EXPECT_EQ(d.rule, "/all_tools/deny_if/0");
  EXPECT_EQ(d.message, "No secrets.");
  EXPECT_EQ(decide(plan, parse_call(R"({"tool": "read_file", "arguments": {"path": "app/main.rs"}})")).rule, "/default");
}


TEST(Requirements, SingleConditionMayCarryItsOwnMessage) {
  auto plan = test::compile_ok(R"({"version": "1", "default": "deny", "tools": {"t": {"on_deny": "tool message",
    "require": [{"path": "args.env", "op": "eq", "value": "dev", "on_deny": "dev only"},
                {"path": "args.ok", "op": "exists"}]}}})");
  Decision first = test::decide(plan, test::make_call("t", {{"env", "prod"}}));
  EXPECT_EQ(first.code, "requirement_failed");
  EXPECT_EQ(first.message, "dev only");
  Decision second = test::decide(plan, test::make_call("t", {{"env", "dev"}}));
  EXPECT_EQ(second.rule, "/tools/t/require/1");
  EXPECT_EQ(second.message, "tool message");
  // on_deny is still not a field of a condition inside "conditions".
  auto errors = test::compile_errors(R"({"version": "1", "default": "deny", "tools": {"t": {"deny_if": [
    {"conditions": [{"path": "args.a", "op": "exists", "on_deny": "x"}]}]}}})");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "unknown_field");
}

}  // namespace
}  // namespace toolgate
