// The `args` JSON Schema subset: each keyword, nesting, JSON equality in
// enum/const, integer vs 1.0, code point lengths, unanchored patterns, the
// invalid_arguments decision and the untyped_schema warning.
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::decide;
using test::find_diagnostic;
using test::format;
using test::parse_call;

std::string policy_with_args(const std::string& schema) {
  return R"({"version": "1", "default": "deny", "tools": {"t": {"args": )" + schema + "}}}";
}

// The decision for a call to "t" with `arguments` under an args schema.
Decision check(const std::string& schema, const std::string& arguments) {
  auto plan = compile_ok(policy_with_args(schema));
  return decide(plan, parse_call(R"({"tool": "t", "arguments": )" + arguments + "}"));
}

struct Case {
  std::string schema;
  std::string arguments;
  bool valid;
};

void run_table(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    Decision d = check(c.schema, c.arguments);
    if (c.valid) {
      EXPECT_EQ(d.code, "allowed") << c.schema << " with " << c.arguments << ": " << d.message;
    } else {
      EXPECT_EQ(d.code, "invalid_arguments") << c.schema << " with " << c.arguments;
      EXPECT_EQ(d.verdict, Verdict::deny);
      EXPECT_EQ(d.rule, "/tools/t/args") << c.schema;
      EXPECT_EQ(d.message.rfind("Invalid arguments: ", 0), 0u) << d.message;
    }
  }
}

// A schema with one property "v" of the given schema (the instance is {"v": value}).
std::string prop(const std::string& schema) {
  return R"({"type": "object", "properties": {"v": )" + schema + "}}";
}
std::string val(const std::string& value) { return R"({"v": )" + value + "}"; }

TEST(Schema, Types) {
  run_table({
      {prop(R"({"type": "string"})"), val(R"("x")"), true},
      {prop(R"({"type": "string"})"), val("1"), false},
      {prop(R"({"type": "string"})"), val("null"), false},
      {prop(R"({"type": "number"})"), val("1"), true},
      {prop(R"({"type": "number"})"), val("1.5"), true},
      {prop(R"({"type": "number"})"), val(R"("1")"), false},
      {prop(R"({"type": "number"})"), val("true"), false},
      {prop(R"({"type": "boolean"})"), val("false"), true},
      {prop(R"({"type": "boolean"})"), val("0"), false},
      {prop(R"({"type": "null"})"), val("null"), true},
      {prop(R"({"type": "null"})"), val("false"), false},
      {prop(R"({"type": "array"})"), val("[]"), true},
      {prop(R"({"type": "array"})"), val("{}"), false},
      {prop(R"({"type": "object"})"), val("{}"), true},
      {prop(R"({"type": "object"})"), val("[]"), false},
      {prop(R"({"type": ["string", "null"]})"), val("null"), true},
      {prop(R"({"type": ["string", "null"]})"), val(R"("x")"), true},
      {prop(R"({"type": ["string", "null"]})"), val("0"), false},
      {R"({"type": "object"})", "{}", true},
  });
}

// JSON Schema counts 1.0 as an integer; 1.5 is not.
TEST(Schema, IntegerVersusFloat) {
  run_table({
      {prop(R"({"type": "integer"})"), val("1"), true},
      {prop(R"({"type": "integer"})"), val("1.0"), true},
      {prop(R"({"type": "integer"})"), val("1e2"), true},
      {prop(R"({"type": "integer"})"), val("-0.0"), true},
      {prop(R"({"type": "integer"})"), val("1.5"), false},
      {prop(R"({"type": "integer"})"), val("1e-2"), false},
      {prop(R"({"type": "integer"})"), val("18446744073709551615"), true},
      {prop(R"({"type": "integer"})"), val(R"("1")"), false},
      {prop(R"({"type": ["integer", "string"]})"), val("2.5"), false},
      {prop(R"({"type": ["integer", "number"]})"), val("2.5"), true},
  });
}

TEST(Schema, PropertiesRequiredAdditionalProperties) {
  const std::string refund = R"({"type": "object",
    "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}},
    "required": ["amount", "currency"], "additionalProperties": false})";
  run_table({
      {refund, R"({"amount": 100, "currency": "usd"})", true},
      {refund, R"({"amount": 100})", false},
      {refund, R"({"currency": "usd"})", false},
      {refund, R"({"amount": "100", "currency": "usd"})", false},
      {refund, R"({"amount": 100, "currency": "usd", "reverse_transfer": true})", false},
      // additionalProperties true / absent: extra members pass.
      {R"({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": true})", R"({"b": 1})",
       true},
      {R"({"type": "object", "properties": {"a": {"type": "string"}}})", R"({"b": 1})", true},
      // additionalProperties as a schema: every extra member must satisfy it.
      {R"({"type": "object", "properties": {"id": {"type": "integer"}}, "additionalProperties": {"type": "string"}})",
       R"({"id": 1, "note": "x", "tag": "y"})", true},
      {R"({"type": "object", "properties": {"id": {"type": "integer"}}, "additionalProperties": {"type": "string"}})",
       R"({"id": 1, "note": 5})", false},
      // Required members may be null; required only applies to objects.
      {R"({"type": "object", "required": ["a"]})", R"({"a": null})", true},
      {prop(R"({"required": ["a"]})"), val("5"), true},
      // Boolean schemas.
      {R"({"type": "object", "properties": {"force": false}})", R"({"force": false})", false},
      {R"({"type": "object", "properties": {"force": false}})", R"({})", true},
      {R"({"type": "object", "properties": {"any": true}})", R"({"any": [1, {"x": null}]})", true},
      {"true", R"({"anything": 1})", true},
      {"false", R"({})", false},
  });
}

TEST(Schema, NestedPropertiesAndItems) {
  const std::string files = R"({"type": "object", "properties": {
      "files": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
        "type": "object", "required": ["path"], "additionalProperties": false,
        "properties": {"path": {"type": "string", "pattern": "^src/"}, "mode": {"enum": ["r", "w"]}}}}}})";
  run_table({
      {files, R"({"files": [{"path": "src/a.rs"}]})", true},
      {files, R"({"files": [{"path": "src/a.rs", "mode": "w"}, {"path": "src/b.rs", "mode": "r"}]})", true},
      {files, R"({"files": []})", false},
      {files, R"({"files": [{"path": "src/1"}, {"path": "src/2"}, {"path": "src/3"}, {"path": "src/4"}]})", false},
      {files, R"({"files": [{"path": "src/a.rs"}, {"path": "/etc/passwd"}]})", false},
      {files, R"({"files": [{"path": "src/a.rs"}, {}]})", false},
      {files, R"({"files": [{"path": "src/a.rs", "mode": "x"}]})", false},
      {files, R"({"files": [{"path": "src/a.rs", "owner": "root"}]})", false},
      {files, R"({"files": "src/a.rs"})", false},
      {files, R"({})", true},
      {R"({"type": "object", "properties": {"m": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}}})",
       R"({"m": [[1, 2], [3]]})", true},
      {R"({"type": "object", "properties": {"m": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}}})",
       R"({"m": [[1, 2], [3.5]]})", false},
  });
}

TEST(Schema, EnumAndConstUseJsonEquality) {
  run_table({
      {prop(R"({"enum": ["usd", "eur", 1, null, {"a": [1]}]})"), val(R"("eur")"), true},
      {prop(R"({"enum": ["usd", "eur", 1, null, {"a": [1]}]})"), val("1.0"), true},
      {prop(R"({"enum": ["usd", "eur", 1, null, {"a": [1]}]})"), val("null"), true},
      {prop(R"({"enum": ["usd", "eur", 1, null, {"a": [1]}]})"), val(R"({"a": [1.0]})"), true},
      {prop(R"({"enum": ["usd", "eur", 1, null, {"a": [1]}]})"), val(R"("USD")"), false},
      {prop(R"({"enum": ["usd", "eur", 1, null, {"a": [1]}]})"), val(R"("1")"), false},
      {prop(R"({"enum": ["usd", "eur", 1, null, {"a": [1]}]})"), val(R"({"a": [1], "b": 2})"), false},
      {prop(R"({"enum": []})"), val("1"), false},
      {prop(R"({"const": "requested_by_customer"})"), val(R"("requested_by_customer")"), true},
      {prop(R"({"const": "requested_by_customer"})"), val(R"("fraudulent")"), false},
      {prop(R"({"const": 5})"), val("5.0"), true},
      {prop(R"({"const": 5})"), val(R"("5")"), false},
      {prop(R"({"const": false})"), val("0"), false},
      {prop(R"({"const": [1, {"x": "y"}]})"), val(R"([1, {"x": "y"}])"), true},
  });
}

// pattern is an unanchored search (JSON Schema / ECMAScript semantics).
TEST(Schema, PatternIsUnanchored) {
  run_table({
      {prop(R"({"type": "string", "pattern": "[0-9]"})"), val(R"("abc1def")"), true},
      {prop(R"({"type": "string", "pattern": "[0-9]"})"), val(R"("abcdef")"), false},
      {prop(R"({"type": "string", "pattern": "^ch_"})"), val(R"("ch_123")"), true},
      {prop(R"({"type": "string", "pattern": "^ch_"})"), val(R"("xch_123")"), false},
      {prop(R"({"type": "string", "pattern": "^[a-z]+$"})"), val(R"("abc\n")"), false},
      {prop(R"({"type": "string", "pattern": ""})"), val(R"("")"), true},
      {prop(R"({"type": "string", "pattern": "^(a+)+$"})"), val("\"" + std::string(5000, 'a') + "!\""), false},
  });
}

TEST(Schema, LengthsCountCodePoints) {
  run_table({
      {prop(R"({"type": "string", "maxLength": 3})"), val(R"("abc")"), true},
      {prop(R"({"type": "string", "maxLength": 3})"), val(R"("abcd")"), false},
      {prop(R"({"type": "string", "maxLength": 3})"), val(R"("ééé")"), true},  // 6 bytes, 3 code points
      {prop(R"({"type": "string", "maxLength": 2})"), val(R"("😀😀")"), true},  // 8 bytes, 2 code points
      {prop(R"({"type": "string", "maxLength": 1})"), val(R"("\ud83d\ude00")"), true},  // one escaped pair
      {prop(R"({"type": "string", "minLength": 2})"), val(R"("é")"), false},
      {prop(R"({"type": "string", "minLength": 1})"), val(R"("")"), false},
      {prop(R"({"type": "string", "minLength": 0, "maxLength": 0})"), val(R"("")"), true},
      {prop(R"({"type": "string", "minLength": 3})"), val(R"("日本語")"), true},
  });
}

TEST(Schema, NumericBounds) {
  const std::string bounds = prop(R"({"type": "number", "minimum": 1, "maximum": 100})");
  const std::string exclusive = prop(R"({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1})");
  run_table({
      {bounds, val("1"), true},
      {bounds, val("100"), true},
      {bounds, val("100.0"), true},
      {bounds, val("0.999"), false},
      {bounds, val("100.001"), false},
      {bounds, val("-5"), false},
      {exclusive, val("0.5"), true},
      {exclusive, val("0"), false},
      {exclusive, val("1"), false},
      {exclusive, val("1e-9"), true},
      {prop(R"({"type": "integer", "maximum": 9007199254740991})"), val("9007199254740993"), false},
  });
}

TEST(Schema, ItemCounts) {
  run_table({
      {prop(R"({"type": "array", "minItems": 1})"), val("[]"), false},
      {prop(R"({"type": "array", "minItems": 1})"), val("[null]"), true},
      {prop(R"({"type": "array", "maxItems": 2})"), val("[1, 2]"), true},
      {prop(R"({"type": "array", "maxItems": 2})"), val("[1, 2, 3]"), false},
      {prop(R"({"type": "array", "maxItems": 0})"), val("[]"), true},
  });
}

// A keyword for one type lets other types through (JSON Schema's rule), which
// is why compile warns about schemas without "type".
TEST(Schema, KeywordsIgnoreOtherTypes) {
  run_table({
      {prop(R"({"maximum": 100})"), val(R"("1000000")"), true},
      {prop(R"({"maxLength": 1})"), val("123456"), true},
      {prop(R"({"pattern": "^a"})"), val("5"), true},
      {prop(R"({"items": {"type": "string"}})"), val(R"({"0": 1})"), true},
      {prop(R"({"required": ["x"]})"), val("[]"), true},
      {prop(R"({"maxItems": 0})"), val(R"("abc")"), true},
  });
}

TEST(Schema, UntypedSchemaWarning) {
  CompileResult result = compile_policy(policy_with_args(R"({"properties": {"amount": {"maximum": 100},
      "memo": {"type": "string", "maxLength": 10}, "kind": {"enum": ["a", "b"]}, "note": {"description": "free"}}})"));
  ASSERT_TRUE(result.ok()) << format(result.diagnostics);
  ASSERT_EQ(result.diagnostics.size(), 2u) << format(result.diagnostics);
  for (const Diagnostic& d : result.diagnostics) {
    EXPECT_EQ(d.code, "untyped_schema");
    EXPECT_EQ(d.severity, Severity::warning);
  }
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "untyped_schema", "/tools/t/args"));
  auto amount = find_diagnostic(result.diagnostics, "untyped_schema", "/tools/t/args/properties/amount");
  ASSERT_TRUE(amount);
  EXPECT_NE(amount->message.find("\"maximum\""), std::string::npos) << amount->message;
  // Fully typed: no warning.
  result = compile_policy(policy_with_args(R"({"type": "object", "properties": {"amount": {"type": "integer", "maximum": 100}}})"));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.diagnostics.empty()) << format(result.diagnostics);
}

TEST(Schema, AnnotationsAreIgnored) {
  run_table({
      {R"({"type": "object", "title": "Refund", "description": "d", "$comment": "c",
          "properties": {"a": {"type": "integer", "default": 5, "examples": [1, 2]}}})",
       R"({"a": 3})", true},
      {R"({"type": "object", "properties": {"a": {"type": "integer", "default": "not an integer"}}})", R"({})", true},
  });
}

TEST(Schema, MessagesNameTheFirstViolationAndWhere) {
  struct MessageCase {
    std::string schema;
    std::string arguments;
    std::string message;
  };
  const std::string refund = R"({"type": "object", "additionalProperties": false, "required": ["amount"],
      "properties": {"amount": {"type": "integer", "maximum": 100}, "items": {"type": "array",
        "items": {"type": "object", "properties": {"name": {"type": "string", "minLength": 2}}}}}})";
  const MessageCase cases[] = {
      {refund, R"({"amount": 250})", "Invalid arguments: args.amount: 250 is greater than the maximum 100."},
      {refund, R"({})", "Invalid arguments: args.amount is required."},
      {refund, R"({"amount": 1, "x": 1})", "Invalid arguments: args.x is not an allowed argument."},
      {refund, R"({"amount": "1"})", "Invalid arguments: args.amount must be of type integer, not string."},
      {refund, R"({"amount": 1, "items": [{"name": "ok"}, {"name": "x"}]})",
       "Invalid arguments: args.items.1.name must be at least 2 characters long."},
  };
  for (const MessageCase& c : cases) {
    EXPECT_EQ(check(c.schema, c.arguments).message, c.message) << c.arguments;
  }
}

TEST(Schema, ArgsOnlyOnItsOwnTool) {
  auto plan = compile_ok(R"({"version": "1", "default": "allow", "tools": {
      "t": {"args": {"type": "object", "additionalProperties": false}}}})");
  EXPECT_EQ(decide(plan, parse_call(R"({"tool": "t", "arguments": {"x": 1}})")).code, "invalid_arguments");
  EXPECT_EQ(decide(plan, parse_call(R"({"tool": "t"})")).code, "allowed");
  EXPECT_EQ(decide(plan, parse_call(R"({"tool": "other", "arguments": {"x": 1}})")).code, "allowed");
}

TEST(Schema, NestingLimit) {
  std::string schema = R"({"type": "object"})";
  for (int i = 0; i < 40; ++i) schema = R"({"type": "object", "properties": {"a": )" + schema + "}}";
  CompileResult result = compile_policy(policy_with_args(schema));
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(find_diagnostic(result.diagnostics, "invalid_value"));

  // 30 levels is fine, and validates down to the bottom.
  std::string ok_schema = R"({"type": "integer"})";
  std::string ok_value = "1.5";
  for (int i = 0; i < 30; ++i) {
    ok_schema = R"({"type": "object", "properties": {"a": )" + ok_schema + "}}";
    ok_value = R"({"a": )" + ok_value + "}";
  }
  Decision d = check(ok_schema, ok_value);
  EXPECT_EQ(d.code, "invalid_arguments");
  EXPECT_NE(d.message.find("args.a.a.a"), std::string::npos) << d.message;
}

}  // namespace
}  // namespace toolgate
