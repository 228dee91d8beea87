// Globs for tool names (hide, glob keys in tools) and the `glob` operator:
// `*` matches any run of characters, everything else (`?` and `[` included)
// matches itself.
#include "glob.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

namespace toolgate {
namespace {

struct GlobCase {
  const char* pattern;
  const char* text;
  bool matches;
};

// Shown when a case fails (the default would print the struct's bytes).
void PrintTo(const GlobCase& c, std::ostream* out) {
  *out << "pattern \"" << c.pattern << "\" text \"" << c.text << "\"";
}

class GlobMatch : public ::testing::TestWithParam<GlobCase> {};

TEST_P(GlobMatch, Matches) {
  const GlobCase& c = GetParam();
  EXPECT_EQ(Glob(c.pattern).matches(c.text), c.matches) << "pattern \"" << c.pattern << "\" text \"" << c.text << "\"";
}

const GlobCase kCases[] = {
    // No star: exact match only.
    {"run", "run", true},
    {"run", "runs", false},
    {"run", "Run", false},
    {"run", "", false},
    {"", "", true},
    {"", "run", false},
    // A lone star matches anything, including nothing.
    {"*", "", true},
    {"*", "anything at all", true},
    {"**", "", true},
    {"**", "x", true},
    // Star at the end, the start, the middle.
    {"db_*", "db_query", true},
    {"db_*", "db_", true},
    {"db_*", "db", false},
    {"db_*", "xdb_query", false},
    {"*_admin", "user_admin", true},
    {"*_admin", "_admin", true},
    {"*_admin", "user_admin2", false},
    {"stripe_*_refund", "stripe_create_refund", true},
    {"stripe_*_refund", "stripe__refund", true},
    {"stripe_*_refund", "stripe_refund", false},  // "_" cannot serve both sides
    // Several stars.
    {"*a*b*", "xxaxxbxx", true},
    {"*a*b*", "ab", true},
    {"*a*b*", "ba", false},
    {"a*b*c", "abc", true},
    {"a*b*c", "aXbYc", true},
    {"a*b*c", "acb", false},
    {"a*b*c", "abcb", false},  // must end with c
    {"a*a", "a", false},       // prefix and suffix may not overlap
    {"a*a", "aa", true},
    {"ab*ba", "aba", false},
    {"ab*ba", "abba", true},
    {"*.*.*", "a.b.c", true},
    {"*.*.*", "a.b", false},
    // ? and [ are literals, not wildcards.
    {"run?", "run?", true},
    {"run?", "runx", false},
    {"[ab]", "[ab]", true},
    {"[ab]", "a", false},
    {"file[0-9]*", "file[0-9].txt", true},
    {"file[0-9]*", "file1.txt", false},
    {"\\*", "\\anything", true},  // no escaping: the backslash is a literal, the star a wildcard
    // Empty text.
    {"a*", "", false},
    {"*a", "", false},
    // UTF-8 text is compared byte for byte.
    {"café_*", "café_menu", true},
    {"*é", "café", true},
    {"*é", "cafe", false},
};

std::string case_name(const ::testing::TestParamInfo<GlobCase>& param) { return "case" + std::to_string(param.index); }

INSTANTIATE_TEST_SUITE_P(Table, GlobMatch, ::testing::ValuesIn(kCases), case_name);

TEST(Glob, LiteralLengthCountsNonStarCharacters) {
  EXPECT_EQ(Glob("run").literal_length(), 3u);
  EXPECT_EQ(Glob("*").literal_length(), 0u);
  EXPECT_EQ(Glob("db_*").literal_length(), 3u);
  EXPECT_EQ(Glob("a*b*c").literal_length(), 3u);
  EXPECT_EQ(Glob("**x**").literal_length(), 1u);
}

TEST(Glob, HasWildcardOnlyWithAStar) {
  EXPECT_FALSE(Glob("run").has_wildcard());
  EXPECT_FALSE(Glob("run?").has_wildcard());
  EXPECT_FALSE(Glob("[a]").has_wildcard());
  EXPECT_TRUE(Glob("*").has_wildcard());
  EXPECT_TRUE(Glob("run_*").has_wildcard());
  EXPECT_EQ(Glob("run_*").pattern(), "run_*");
}

// Patterns that make a backtracking matcher take exponential (or high
// polynomial) time must still answer at once. No timing assertion: a
// regression would show as a hung test.
TEST(Glob, PathologicalPatternsOnLongInputs) {
  const std::string as(100000, 'a');
  EXPECT_FALSE(Glob("*a*a*a*a*b").matches(as));
  EXPECT_TRUE(Glob("*a*a*a*a*a").matches(as));
  EXPECT_FALSE(Glob("*a*a*a*a*a*a*a*a*a*a*a*a*ab").matches(as));
  EXPECT_FALSE(Glob("a*a*a*a*a*a*a*a*a*a*a*a*a*b*a").matches(as));
  std::string many_stars;
  for (int i = 0; i < 1000; ++i) many_stars += "*a";
  EXPECT_TRUE(Glob(many_stars).matches(as));
  EXPECT_FALSE(Glob(many_stars + "*b").matches(as));
}

}  // namespace
}  // namespace toolgate
