// Which part of the policy governs a tool: hide, then the exact name, then
// the glob key with the most literal characters (ties: first in the text),
// else `default`.
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace toolgate {
namespace {

using test::compile_ok;
using test::decide;
using test::make_call;

struct Expect {
  const char* tool;
  const char* code;
  const char* rule;
};

void check_all(const std::string& policy, std::initializer_list<Expect> expectations) {
  auto plan = compile_ok(policy);
  ASSERT_TRUE(plan);
  for (const Expect& e : expectations) {
    Decision decision = decide(plan, make_call(e.tool));
    EXPECT_EQ(decision.code, e.code) << e.tool << ": " << decision.message;
    EXPECT_EQ(decision.rule, e.rule) << e.tool;
  }
}

TEST(Lookup, ExactNameBeatsEveryGlob) {
  check_all(R"({"version": "1", "default": "deny", "tools": {
      "deploy_*": {"action": "deny"},
      "deploy_prod*": {"action": "deny"},
      "*": {"action": "deny"},
      "deploy_prod": {}
    }})",
            {
                {"deploy_prod", "allowed", "/tools/deploy_prod"},
                {"deploy_prod2", "tool_denied", "/tools/deploy_prod*/action"},
                {"deploy_dev", "tool_denied", "/tools/deploy_*/action"},
                {"build", "tool_denied", "/tools/*/action"},
            });
}

TEST(Lookup, MostLiteralCharactersWins) {
  check_all(R"({"version": "1", "default": "allow", "tools": {
      "*": {"action": "deny"},
      "db_*": {"action": "require_approval"},
      "db_read_*": {},
      "*_admin_tool": {"action": "deny", "on_deny": "admin"}
    }})",
            {
                {"db_read_users", "allowed", "/tools/db_read_*"},
                {"db_drop_users", "approval_required", "/tools/db_*/action"},
                {"db_", "approval_required", "/tools/db_*/action"},
                // 11 literal characters beat 3, wherever the star stands.
                {"db_admin_tool", "tool_denied", "/tools/*_admin_tool/action"},
                {"db_read_admin_tool", "tool_denied", "/tools/*_admin_tool/action"},
                {"search", "tool_denied", "/tools/*/action"},
            });
}

// Literal characters are counted across all pieces: "a*b*c" has 3.
TEST(Lookup, LiteralCharactersCountedAcrossStars) {
  check_all(R"({"version": "1", "default": "deny", "tools": {
      "ab*": {"action": "deny"},
      "a*b*c": {}
    }})",
            {
                {"abXc", "allowed", "/tools/a*b*c"},
                {"abX", "tool_denied", "/tools/ab*/action"},
            });
}

// nlohmann::json sorts object keys, so "first" must come from the text.
TEST(Lookup, TiesGoToTheKeyWrittenFirst) {
  // "z_*" and "*_a" both have 2 literal characters and both match "z_a".
  check_all(R"({"version": "1", "default": "deny", "tools": {
      "z_*": {},
      "*_a": {"action": "deny"}
    }})",
            {{"z_a", "allowed", "/tools/z_*"}});
  check_all(R"({"version": "1", "default": "deny", "tools": {
      "*_a": {"action": "deny"},
      "z_*": {}
    }})",
            {{"z_a", "tool_denied", "/tools/*_a/action"}});
  // Three-way tie, the winner written in the middle of the text and last in
  // sorted order.
  check_all(R"({"version": "1", "default": "deny", "tools": {"b*x": {"action": "deny"},
      "zz*": {}, "*xx": {"action": "require_approval"}}})",
            {{"zzxx", "allowed", "/tools/zz*"}, {"bxx", "tool_denied", "/tools/b*x/action"}});
  // The tie-break is by position, also when a key is written with escapes.
  check_all(R"({"version": "1", "default": "deny", "tools": {
      "\u007a_*": {"action": "require_approval"},
      "*_a": {}
    }})",
            {{"z_a", "approval_required", "/tools/z_*/action"}});
}

TEST(Lookup, GlobKeysAreCaseSensitiveAndLiteralOtherwise) {
  check_all(R"({"version": "1", "default": "deny", "tools": {
      "Deploy": {},
      "file?": {},
      "[admin]*": {}
    }})",
            {
                {"Deploy", "allowed", "/tools/Deploy"},
                {"deploy", "default_deny", "/default"},
                {"file?", "allowed", "/tools/file?"},
                {"files", "default_deny", "/default"},
                {"[admin]_reset", "allowed", "/tools/[admin]*"},
                {"a_reset", "default_deny", "/default"},
            });
}

TEST(Lookup, RulePointersEscapeToolNames) {
  check_all(R"({"version": "1", "default": "deny", "tools": {
      "fs/read": {"action": "deny"},
      "a~b*": {"action": "deny"}
    }})",
            {
                {"fs/read", "tool_denied", "/tools/fs~1read/action"},
                {"a~bc", "tool_denied", "/tools/a~0b*/action"},
            });
}

TEST(Lookup, HideWithNamesAndGlobs) {
  check_all(R"({"version": "1", "default": "allow",
    "hide": ["secret_tool", "internal_*", "*_debug", "*"],
    "tools": {"secret_tool": {}, "internal_ping": {}}
  })",
            {
                // Hidden even with an entry of its own.
                {"secret_tool", "hidden", "/hide/0"},
                {"internal_ping", "hidden", "/hide/1"},
                {"internal_", "hidden", "/hide/1"},
                {"db_debug", "hidden", "/hide/2"},
                // The first hide entry that matches is reported.
                {"internal_debug", "hidden", "/hide/1"},
                {"anything_else", "hidden", "/hide/3"},
            });
  check_all(R"({"version": "1", "default": "allow", "hide": ["secret_tool", "internal_*"]})",
            {
                {"secret_tool", "hidden", "/hide/0"},
                // A name without a star hides only that exact name.
                {"secret_tool_2", "allowed", "/default"},
                {"my_secret_tool", "allowed", "/default"},
                {"internal", "allowed", "/default"},
            });
}

TEST(Lookup, HiddenMessageDoesNotRevealThePolicy) {
  auto plan = compile_ok(R"({"version": "1", "default": "allow", "hide": ["admin_*"]})");
  Decision decision = decide(plan, make_call("admin_reset"));
  EXPECT_EQ(decision.verdict, Verdict::deny);
  EXPECT_EQ(decision.code, "hidden");
  EXPECT_NE(decision.message.find("admin_reset"), std::string::npos) << decision.message;
  EXPECT_EQ(decision.message.find("hide"), std::string::npos) << decision.message;
}

TEST(Lookup, DefaultAllowAndDeny) {
  check_all(R"({"version": "1", "default": "allow", "tools": {"run": {"action": "deny"}}})",
            {
                {"search", "allowed", "/default"},
                {"run", "tool_denied", "/tools/run/action"},
            });
  check_all(R"({"version": "1", "default": "deny", "tools": {"run": {}}})",
            {
                {"search", "default_deny", "/default"},
                {"run", "allowed", "/tools/run"},
            });
  // A catch-all glob means default never applies.
  check_all(R"({"version": "1", "default": "deny", "tools": {"*": {}}})", {{"anything", "allowed", "/tools/*"}});
  // No tools at all.
  check_all(R"({"version": "1", "default": "deny"})", {{"run", "default_deny", "/default"}});
  check_all(R"({"version": "1", "default": "allow", "tools": {}})", {{"run", "allowed", "/default"}});
}

TEST(Lookup, DefaultDenyMessageNamesTheTool) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny"})");
  Decision decision = decide(plan, make_call("drop_table"));
  EXPECT_EQ(decision.verdict, Verdict::deny);
  EXPECT_NE(decision.message.find("\"drop_table\""), std::string::npos) << decision.message;
}

TEST(Lookup, PlanFindToolAndFindHidden) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "hide": ["x_*"],
    "tools": {"run": {}, "r*": {}, "ru*": {}}})");
  ASSERT_TRUE(plan);
  ASSERT_NE(plan->find_tool("run"), nullptr);
  EXPECT_EQ(plan->find_tool("run")->key, "run");
  EXPECT_EQ(plan->find_tool("rust")->key, "ru*");
  EXPECT_EQ(plan->find_tool("rx")->key, "r*");
  EXPECT_EQ(plan->find_tool("x"), nullptr);
  EXPECT_EQ(plan->find_tool(""), nullptr);
  ASSERT_NE(plan->find_hidden("x_y"), nullptr);
  EXPECT_EQ(plan->find_hidden("x_y")->pointer, "/hide/0");
  EXPECT_EQ(plan->find_hidden("run"), nullptr);
  // Glob keys are kept most literal first.
  ASSERT_EQ(plan->glob_tools.size(), 2u);
  EXPECT_EQ(plan->glob_tools[0].first.pattern(), "ru*");
  EXPECT_EQ(plan->glob_tools[1].first.pattern(), "r*");
}

TEST(Lookup, UnicodeToolNames) {
  check_all(R"({"version": "1", "default": "deny", "tools": {"café_*": {}, "日本": {"action": "deny"}}})",
            {
                {"café_order", "allowed", "/tools/café_*"},
                {"cafe_order", "default_deny", "/default"},
                {"日本", "tool_denied", "/tools/日本/action"},
            });
}

// Plan::names: every tool name and glob the policy mentions, for hosts that
// refuse look-alikes of them.
TEST(Lookup, NamesListsEveryToolKeyAndHideEntry) {
  auto plan = compile_ok(R"({"version": "1", "default": "allow",
      "hide": ["secret_*", "drop_db", "run", "*_admin", "drop_db"],
      "tools": {"run": {}, "read_*": {}, "write": {"action": "deny"}, "café": {}, "*": {"action": "deny"}}})");
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->names.exact, (std::vector<std::string>{"café", "drop_db", "run", "write"}));
  EXPECT_EQ(plan->names.globs, (std::vector<std::string>{"*", "*_admin", "read_*", "secret_*"}));

  auto empty = compile_ok(R"({"version": "1", "default": "deny"})");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->names.exact.empty());
  EXPECT_TRUE(empty->names.globs.empty());
}

}  // namespace
}  // namespace toolgate
