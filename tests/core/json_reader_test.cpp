// The JSON reader: values plus a source map (line:column in code points for
// every value and key), JSON Pointers, duplicate keys, syntax errors, the
// nesting limit and large documents.
#include "json_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using LineColumn = std::pair<std::size_t, std::size_t>;

// Line:column of the value at `pointer` (or of its key).
LineColumn value_at(const JsonReadResult& read, const std::string& pointer) {
  const SourceSpan* span = read.source_map.find(pointer);
  if (!span) {
    ADD_FAILURE() << "no position recorded for \"" << pointer << "\"";
    return {0, 0};
  }
  return read.source_map.line_column(span->value_offset);
}

LineColumn key_at(const JsonReadResult& read, const std::string& pointer) {
  const SourceSpan* span = read.source_map.find(pointer);
  if (!span || !span->has_key) {
    ADD_FAILURE() << "no key recorded for \"" << pointer << "\"";
    return {0, 0};
  }
  return read.source_map.line_column(span->key_offset);
}

TEST(JsonReaderPositions, ValuesAndKeysAcrossLines) {
  const std::string text =
      "{\n"
      "  \"tool\": \"run\",\n"
      "  \"args\": {\"n\": 1, \"list\": [true, null, \"x\"]},\n"
      "  \"empty\": {},\n"
      "  \"none\": []\n"
      "}";
  JsonReadResult read = read_json(text);
  ASSERT_TRUE(read.ok()) << test::format(read.errors);
  EXPECT_EQ(value_at(read, ""), LineColumn(1, 1));
  EXPECT_EQ(key_at(read, "/tool"), LineColumn(2, 3));
  EXPECT_EQ(value_at(read, "/tool"), LineColumn(2, 11));
  EXPECT_EQ(key_at(read, "/args"), LineColumn(3, 3));
  EXPECT_EQ(value_at(read, "/args"), LineColumn(3, 11));
  EXPECT_EQ(key_at(read, "/args/n"), LineColumn(3, 12));
  EXPECT_EQ(value_at(read, "/args/n"), LineColumn(3, 17));
  EXPECT_EQ(key_at(read, "/args/list"), LineColumn(3, 20));
  EXPECT_EQ(value_at(read, "/args/list"), LineColumn(3, 28));
  EXPECT_EQ(value_at(read, "/args/list/0"), LineColumn(3, 29));
  EXPECT_EQ(value_at(read, "/args/list/1"), LineColumn(3, 35));
  EXPECT_EQ(value_at(read, "/args/list/2"), LineColumn(3, 41));
  EXPECT_EQ(value_at(read, "/empty"), LineColumn(4, 12));
  EXPECT_EQ(value_at(read, "/none"), LineColumn(5, 11));
  // Array elements have no key.
  EXPECT_FALSE(read.source_map.find("/args/list/0")->has_key);
  EXPECT_TRUE(read.source_map.find("/args/n")->has_key);
}

TEST(JsonReaderPositions, LeadingWhitespaceAndCrLf) {
  const std::string text = "  \r\n\t {\r\n  \"a\": 1\r\n}\r\n";
  JsonReadResult read = read_json(text);
  ASSERT_TRUE(read.ok()) << test::format(read.errors);
  EXPECT_EQ(value_at(read, ""), LineColumn(2, 3));
  EXPECT_EQ(key_at(read, "/a"), LineColumn(3, 3));
  EXPECT_EQ(value_at(read, "/a"), LineColumn(3, 8));
}

// Columns count Unicode code points, not bytes: 2-, 3- and 4-byte UTF-8
// characters each count as one column.
TEST(JsonReaderPositions, ColumnsCountCodePoints) {
  {
    const std::string text = "{\"é\": \"ü\", \"k\": 1}";
    JsonReadResult read = read_json(text);
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(key_at(read, "/é"), LineColumn(1, 2));
    EXPECT_EQ(value_at(read, "/é"), LineColumn(1, 7));
    EXPECT_EQ(key_at(read, "/k"), LineColumn(1, 12));
    EXPECT_EQ(value_at(read, "/k"), LineColumn(1, 17));
  }
  {
    // "€" is 3 bytes, "😀" is 4 bytes (one code point, two UTF-16 units).
    const std::string text = "[\"€😀😀\", 1, {\"日本\": true}]";
    JsonReadResult read = read_json(text);
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(value_at(read, "/0"), LineColumn(1, 2));
    EXPECT_EQ(value_at(read, "/1"), LineColumn(1, 9));
    EXPECT_EQ(value_at(read, "/2"), LineColumn(1, 12));
    EXPECT_EQ(key_at(read, "/2/日本"), LineColumn(1, 13));
    EXPECT_EQ(value_at(read, "/2/日本"), LineColumn(1, 19));
  }
  {
    // Multi-byte characters on an earlier line do not shift later lines.
    const std::string text = "{\"ü\":\n\"ééé\", \"b\":\n  2}";
    JsonReadResult read = read_json(text);
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(value_at(read, "/ü"), LineColumn(2, 1));
    EXPECT_EQ(key_at(read, "/b"), LineColumn(2, 8));
    EXPECT_EQ(value_at(read, "/b"), LineColumn(3, 3));
  }
}

// Escapes in strings are counted as the characters written, not decoded.
TEST(JsonReaderPositions, EscapedStringsCountAsWritten) {
  const std::string text = "[\"\\u00e9\\n\\\"\", 7]";
  JsonReadResult read = read_json(text);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.value[0].get<std::string>(), "é\n\"");
  EXPECT_EQ(value_at(read, "/1"), LineColumn(1, 16));
}

// After a number the lexer reads one character of look-ahead (or none at
// the end of the text); positions of what follows must not drift.
TEST(JsonReaderPositions, NumbersFollowedByEveryKindOfDelimiter) {
  struct Case {
    std::string text;
    std::string pointer;
    LineColumn value;
  };
  const Case cases[] = {
      {"7", "", {1, 1}},
      {"-12.5e+3", "", {1, 1}},
      {"  42  ", "", {1, 3}},
      {"[1,22,333]", "/0", {1, 2}},
      {"[1,22,333]", "/1", {1, 4}},
      {"[1,22,333]", "/2", {1, 7}},
      {"[1,22,333]", "", {1, 1}},
      {"[1, [2], 3]", "/1/0", {1, 6}},
      {"[1, [2], 3]", "/2", {1, 10}},
      {"[[1],[2]]", "/1", {1, 6}},
      {"[[1],[2]]", "/1/0", {1, 7}},
      {"{\"a\":1,\"b\":2}", "/b", {1, 12}},
      {"{\"a\":1}", "/a", {1, 6}},
      {"{\"a\":{\"x\":1},\"b\":2}", "/b", {1, 18}},
      {"{\"a\":-0.5E-2 , \"b\" : 2 }", "/b", {1, 22}},
      {"[1\n,2\n,\n3]", "/1", {2, 2}},
      {"[1\n,2\n,\n3]", "/2", {4, 1}},
      {"[0,0.0,1e5,-1]", "/3", {1, 12}},
      {"[1e5]", "/0", {1, 2}},
      {"{\"n\": 10}", "/n", {1, 7}},
      {"{\"n\": 10\t}", "/n", {1, 7}},
  };
  for (const Case& c : cases) {
    JsonReadResult read = read_json(c.text);
    ASSERT_TRUE(read.ok()) << c.text << "\n" << test::format(read.errors);
    EXPECT_EQ(value_at(read, c.pointer), c.value) << c.text << " at \"" << c.pointer << "\"";
  }
  // The key after a number.
  JsonReadResult read = read_json("{\"a\": 100, \"b\": true, \"c\": 3, \"d\": null}");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(key_at(read, "/b"), LineColumn(1, 12));
  EXPECT_EQ(key_at(read, "/c"), LineColumn(1, 23));
  EXPECT_EQ(key_at(read, "/d"), LineColumn(1, 31));
  EXPECT_EQ(value_at(read, "/d"), LineColumn(1, 36));
}

// Columns on long lines: multi-byte characters spread over many 4 KiB blocks.
TEST(JsonReaderPositions, ColumnsOnALongLine) {
  std::string e5000;
  for (int i = 0; i < 5000; ++i) e5000 += "é";  // 10 000 bytes
  const std::string text = "[\"" + e5000 + "\", 1, \"" + e5000 + "\", {\"k\": 2}]";
  JsonReadResult read = read_json(text);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(value_at(read, "/1"), LineColumn(1, 5006));
  EXPECT_EQ(value_at(read, "/2"), LineColumn(1, 5009));
  EXPECT_EQ(key_at(read, "/3/k"), LineColumn(1, 10014));
  EXPECT_EQ(value_at(read, "/3/k"), LineColumn(1, 10019));
  // Every offset agrees with a direct count of code points.
  std::size_t column = 1;
  for (std::size_t offset = 0; offset <= text.size(); ++offset) {
    if (offset == text.size() || (static_cast<unsigned char>(text[offset]) & 0xC0) != 0x80) {
      ASSERT_EQ(read.source_map.line_column(offset), LineColumn(1, column)) << offset;
      ++column;
    }
  }
}

// A text whose length is a multiple of 4 KiB, asked about its very end.
TEST(JsonReaderPositions, EndOfATextOfWholeBlocks) {
  std::string text = "[\"";
  while (text.size() < 8192 - 2) text += "ü";
  text.resize(8192 - 2);
  text += "\"]";
  ASSERT_EQ(text.size(), 8192u);
  JsonReadResult read = read_json(text);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.source_map.line_column(8192), LineColumn(1, 2 + (8192 - 4) / 2 + 2 + 1));
}

TEST(JsonReaderPositions, LocateFallsBackToTheNearestAncestor) {
  const std::string text = "{\n  \"tools\": {\n    \"run\": {\"limits\": []}\n  }\n}";
  JsonReadResult read = read_json(text);
  ASSERT_TRUE(read.ok());
  // A value: its own position; at_key: the member's key.
  EXPECT_EQ(read.source_map.locate("/tools/run"), LineColumn(3, 12));
  EXPECT_EQ(read.source_map.locate("/tools/run", /*at_key=*/true), LineColumn(3, 5));
  // Never in the text: the closest recorded ancestor's value.
  EXPECT_EQ(read.source_map.locate("/tools/run/limits/0/window"), LineColumn(3, 23));
  EXPECT_EQ(read.source_map.locate("/tools/run/limits/0/window", /*at_key=*/true), LineColumn(3, 23));
  EXPECT_EQ(read.source_map.locate("/nothing/here"), LineColumn(1, 1));
  EXPECT_EQ(read.source_map.locate(""), LineColumn(1, 1));
}

TEST(JsonReaderPositions, OffsetsBeyondTheTextClampToItsEnd) {
  JsonReadResult read = read_json("[1,\n2]");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.source_map.line_column(0), LineColumn(1, 1));
  EXPECT_EQ(read.source_map.line_column(4), LineColumn(2, 1));
  EXPECT_EQ(read.source_map.line_column(1000), LineColumn(2, 3));
}

TEST(JsonReaderPositions, NotRecordedWhenDisabled) {
  JsonReadOptions options;
  options.record_positions = false;
  JsonReadResult read = read_json("{\"a\": [1, 2]}", options);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.value, json::parse("{\"a\": [1, 2]}"));
  EXPECT_EQ(read.source_map.find("/a"), nullptr);
  EXPECT_EQ(read.source_map.find("/a/1"), nullptr);
}

// position_keys_with (a policy's first read: only glob keys' positions are
// used): over seeded random documents of depth 2 (keys with and without '*',
// escapes, arrays), the filtered map holds exactly the object members whose
// key has the character, at the spans the full map gives them, and nothing
// else (no root, no array elements, no other keys); the values are the same.
TEST(JsonReaderPositions, OnlyKeysWithTheCharacterWhenFiltered) {
  std::mt19937_64 rng(2026);
  const std::vector<std::string> pieces = {"a", "*", "run", "_", "~", "/", "\\\"", "\\u002a", "\\n", "\xc3\xa9"};
  auto key = [&] {
    std::string out;
    for (std::size_t i = 0, n = 1 + rng() % 4; i < n; ++i) out += pieces[rng() % pieces.size()];
    return out;
  };
  std::size_t recorded = 0;
  std::size_t skipped = 0;
  for (int round = 0; round < 300; ++round) {
    // {"k": {"k": 1, ...}, "k": [1, {"k": 2}], "k": 3}, keys random (repeats allowed).
    std::string text = "{";
    for (std::size_t i = 0, n = 1 + rng() % 4; i < n; ++i) {
      if (i) text += ",";
      text += "\"" + key() + "\": ";
      switch (rng() % 3) {
        case 0: {
          text += "{";
          for (std::size_t j = 0, m = rng() % 4; j < m; ++j) text += (j ? ", \"" : "\"") + key() + "\": " + std::to_string(j);
          text += "}";
          break;
        }
        case 1: text += "[1, {\"" + key() + "\": 2}]"; break;
        default: text += "3"; break;
      }
    }
    text += "}";
    JsonReadOptions full;
    full.position_depth = 2;
    JsonReadOptions filtered = full;
    filtered.position_keys_with = '*';
    JsonReadResult all = read_json(text, full);
    JsonReadResult some = read_json(text, filtered);
    ASSERT_EQ(all.complete, some.complete) << text;
    if (!all.complete) continue;
    EXPECT_EQ(all.value, some.value) << text;
    EXPECT_EQ(some.source_map.find(""), nullptr) << text;
    // Every pointer of depth 1 and 2 the document has.
    std::vector<std::pair<std::string, bool>> pointers;  // pointer, "an object member whose key has '*'"
    for (const auto& [k1, v1] : all.value.items()) {
      const std::string p1 = "/" + escape_pointer_token(k1);
      pointers.emplace_back(p1, k1.find('*') != std::string::npos);
      if (v1.is_object()) {
        for (const auto& [k2, v2] : v1.items()) pointers.emplace_back(p1 + "/" + escape_pointer_token(k2), k2.find('*') != std::string::npos);
      } else if (v1.is_array()) {
        for (std::size_t i = 0; i < v1.size(); ++i) pointers.emplace_back(p1 + "/" + std::to_string(i), false);
      }
    }
    for (const auto& [pointer, kept] : pointers) {
      const SourceSpan* expected = all.source_map.find(pointer);
      ASSERT_NE(expected, nullptr) << pointer << " in " << text;
      const SourceSpan* got = some.source_map.find(pointer);
      if (!kept) {
        EXPECT_EQ(got, nullptr) << pointer << " in " << text;
        ++skipped;
        continue;
      }
      ASSERT_NE(got, nullptr) << pointer << " in " << text;
      EXPECT_EQ(got->value_offset, expected->value_offset) << pointer;
      EXPECT_EQ(got->key_offset, expected->key_offset) << pointer;
      EXPECT_EQ(got->has_key, expected->has_key) << pointer;
      ++recorded;
    }
  }
  EXPECT_GT(recorded, 100u);
  EXPECT_GT(skipped, 100u);
}

// Reads with and without positions go through one instantiation of
// nlohmann's parser (json_reader.cpp): over seeded random documents, whole
// and mutated (cut, a byte changed or inserted, invalid UTF-8, duplicate
// keys), both read the same value, accept exactly what nlohmann's own
// strict parser accepts, and report the same errors (codes, messages,
// pointers; the syntax error's line and column too: it comes from the
// lexer, not from the positions), stopping at a duplicate or not.
TEST(JsonReaderPositions, ReadsWithAndWithoutPositionsAgree) {
  std::mt19937_64 rng(17);
  const std::vector<std::string> strings = {"a", "run", "*", "\\\"", "\\u00e9", "\xc3\xa9", "\xf0\x9f\x98\x80", "x y", ""};
  std::function<std::string(int)> value = [&](int depth) -> std::string {
    switch (depth > 3 ? rng() % 5 : rng() % 7) {
      case 0: return "null";
      case 1: return rng() % 2 ? "true" : "false";
      case 2: return std::to_string(static_cast<long long>(rng() % 2000000) - 1000000);
      case 3: return std::to_string(static_cast<double>(rng() % 100000) / 7.0) + (rng() % 3 ? "" : "e-3");
      case 4: return "\"" + strings[rng() % strings.size()] + "\"";
      case 5: {
        std::string out = "[";
        for (std::size_t i = 0, n = rng() % 4; i < n; ++i) out += (i ? ", " : "") + value(depth + 1);
        return out + "]";
      }
      default: {
        std::string out = "{";
        for (std::size_t i = 0, n = rng() % 4; i < n; ++i) {
          out += (i ? ",\n " : "") + std::string("\"") + strings[rng() % 4] + "\": " + value(depth + 1);
        }
        return out + "}";
      }
    }
  };
  const std::string bytes = "{}[],:\"\\ 0e.-tfn\x80\xff\xc3";
  std::size_t accepted = 0;
  std::size_t refused = 0;
  std::size_t duplicates = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = value(0);
    switch (rng() % 4) {
      case 0: break;
      case 1: text.resize(rng() % (text.size() + 1)); break;
      case 2: if (!text.empty()) text[rng() % text.size()] = bytes[rng() % bytes.size()]; break;
      default: text.insert(text.begin() + static_cast<std::ptrdiff_t>(rng() % (text.size() + 1)), bytes[rng() % bytes.size()]); break;
    }
    for (bool stop : {false, true}) {
      JsonReadOptions with;
      with.stop_at_duplicate_key = stop;
      JsonReadOptions without = with;
      without.record_positions = false;
      const JsonReadResult a = read_json(text, with);
      const JsonReadResult b = read_json(text, without);
      ASSERT_EQ(a.complete, b.complete) << text;
      EXPECT_EQ(a.value, b.value) << text;
      ASSERT_EQ(a.errors.size(), b.errors.size()) << text;
      for (std::size_t i = 0; i < a.errors.size(); ++i) {
        EXPECT_EQ(a.errors[i].code, b.errors[i].code) << text;
        EXPECT_EQ(a.errors[i].message, b.errors[i].message) << text;
        EXPECT_EQ(a.errors[i].pointer, b.errors[i].pointer) << text;
        if (a.errors[i].code == "json_syntax") {
          EXPECT_EQ(a.errors[i].line, b.errors[i].line) << text;
          EXPECT_EQ(a.errors[i].column, b.errors[i].column) << text;
        }
      }
      const bool has_duplicate = std::any_of(a.errors.begin(), a.errors.end(), [](const Diagnostic& d) { return d.code == "json_duplicate_key"; });
      // nlohmann's own parser (its contiguous-input instantiation) as the
      // reference for which texts are JSON; duplicate keys are JSON to it.
      if (!(stop && has_duplicate)) EXPECT_EQ(a.complete, json::accept(text)) << text;
      if (stop) continue;
      if (has_duplicate) ++duplicates;
      if (a.ok()) ++accepted;
      else ++refused;
    }
  }
  EXPECT_GT(accepted, 500u);
  EXPECT_GT(refused, 500u);
  EXPECT_GT(duplicates, 20u);
}

// RFC 6901: "~" is written "~0" and "/" is written "~1" in a pointer token.
TEST(JsonReaderPointers, EscapeTildeAndSlash) {
  const std::string text = "{\"a/b\": {\"m~n\": [0, {\"~/~1\": 1}]}, \"\": 2}";
  JsonReadResult read = read_json(text);
  ASSERT_TRUE(read.ok()) << test::format(read.errors);
  EXPECT_NE(read.source_map.find("/a~1b"), nullptr);
  EXPECT_NE(read.source_map.find("/a~1b/m~0n"), nullptr);
  EXPECT_NE(read.source_map.find("/a~1b/m~0n/1/~0~1~01"), nullptr);
  EXPECT_NE(read.source_map.find("/"), nullptr);  // the empty key
  EXPECT_EQ(read.source_map.find("/a/b"), nullptr);
  EXPECT_EQ(value_at(read, "/a~1b/m~0n/1/~0~1~01"), LineColumn(1, 30));
  // The pointers resolve to the values through nlohmann's own RFC 6901 code.
  EXPECT_EQ(read.value.at(json::json_pointer("/a~1b/m~0n/1/~0~1~01")), json(1));
  EXPECT_EQ(escape_pointer_token("a/b~c"), "a~1b~0c");
  EXPECT_EQ(escape_pointer_token("~1"), "~01");
  EXPECT_EQ(escape_pointer_token(""), "");
}

TEST(JsonReaderDuplicates, EveryDuplicateReportedWithPointerAndPosition) {
  const std::string text =
      "{\n"
      "  \"a\": 1,\n"
      "  \"b\": {\"c\": 1, \"c\": 2},\n"
      "  \"a\": 3,\n"
      "  \"x/y\": 0, \"x/y\": 0\n"
      "}";
  JsonReadResult read = read_json(text);
  EXPECT_TRUE(read.complete);
  EXPECT_FALSE(read.ok());
  ASSERT_EQ(read.errors.size(), 3u) << test::format(read.errors);
  EXPECT_EQ(read.errors[0].code, "json_duplicate_key");
  EXPECT_EQ(read.errors[0].pointer, "/b/c");
  EXPECT_EQ(read.errors[0].line, 3u);
  EXPECT_EQ(read.errors[0].column, 17u);
  EXPECT_EQ(read.errors[1].pointer, "/a");
  EXPECT_EQ(read.errors[1].line, 4u);
  EXPECT_EQ(read.errors[1].column, 3u);
  EXPECT_EQ(read.errors[2].pointer, "/x~1y");
  EXPECT_EQ(read.errors[2].line, 5u);
  EXPECT_EQ(read.errors[2].column, 13u);
  EXPECT_NE(read.errors[0].message.find("\"c\""), std::string::npos) << read.errors[0].message;
  for (const Diagnostic& error : read.errors) EXPECT_EQ(error.severity, Severity::error);
  // The value is still built (the last duplicate wins, as in JavaScript).
  EXPECT_EQ(read.value["a"], json(3));
  EXPECT_EQ(read.value["b"]["c"], json(2));
}

TEST(JsonReaderDuplicates, SameKeyInDifferentObjectsIsFine) {
  JsonReadResult read = read_json("{\"a\": {\"id\": 1}, \"b\": {\"id\": 2}, \"c\": [{\"id\": 3}, {\"id\": 4}]}");
  EXPECT_TRUE(read.ok()) << test::format(read.errors);
}

TEST(JsonReaderDuplicates, StopAtFirstDuplicate) {
  JsonReadOptions options;
  options.stop_at_duplicate_key = true;
  options.record_positions = false;
  JsonReadResult read = read_json("{\"arguments\": {\"amount\": 1, \"amount\": 1e9}, \"tool\": 1, \"tool\": 2}", options);
  EXPECT_FALSE(read.complete);
  EXPECT_FALSE(read.ok());
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].code, "json_duplicate_key");
  EXPECT_EQ(read.errors[0].pointer, "/arguments/amount");
  EXPECT_TRUE(read.value.is_null());
}

TEST(JsonReaderSyntax, ErrorsCarryLineAndColumn) {
  struct Case {
    std::string text;
    LineColumn at;
  };
  const Case cases[] = {
      {"{\n  \"a\": 1,\n}", {3, 1}},          // trailing comma: at the "}"
      {"[1, 2,]", {1, 7}},                      // trailing comma in an array
      {"{\"a\" 1}", {1, 6}},                    // missing colon: at the "1"
      {"{\"a\": 1 \"b\": 2}", {1, 11}},         // missing comma: at the last character of the unexpected "b"
      {"{\n  // comment\n  \"a\": 1\n}", {2, 3}},  // comments are not JSON
      {"[tru]", {1, 5}},                        // bad literal
      {"[1] x", {1, 5}},                        // trailing garbage
      {"{'a': 1}", {1, 2}},                     // single quotes
      {"[\"é\", é]", {1, 7}},                   // bare non-ASCII, column in code points
      {"[01]", {1, 3}},                         // leading zero
  };
  for (const Case& c : cases) {
    JsonReadResult read = read_json(c.text);
    EXPECT_FALSE(read.complete) << c.text;
    ASSERT_EQ(read.errors.size(), 1u) << c.text;
    EXPECT_EQ(read.errors[0].code, "json_syntax") << c.text;
    EXPECT_EQ(LineColumn(read.errors[0].line, read.errors[0].column), c.at)
        << c.text << "\n" << read.errors[0].message;
    EXPECT_NE(read.errors[0].message.find("syntax error"), std::string::npos) << read.errors[0].message;
    EXPECT_TRUE(read.value.is_null());
  }
}

TEST(JsonReaderSyntax, TruncatedAndEmptyInput) {
  for (std::string text : {"", "   ", "{", "{\"a\": ", "[1, 2", "\"unterminated", "{\"a\": [1, {\"b\": "}) {
    JsonReadResult read = read_json(text);
    EXPECT_FALSE(read.complete) << text;
    ASSERT_EQ(read.errors.size(), 1u) << text;
    EXPECT_EQ(read.errors[0].code, "json_syntax");
    EXPECT_GE(read.errors[0].line, 1u);
    EXPECT_GE(read.errors[0].column, 1u);
  }
  JsonReadResult read = read_json("{\n  \"a\": [1,\n");
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].line, 3u);  // at the end of the text
  EXPECT_EQ(read.errors[0].pointer, "/a/1");
}

TEST(JsonReaderSyntax, InvalidUtf8IsAnError) {
  JsonReadResult read = read_json(std::string("[\"a\xff\"]"));
  EXPECT_FALSE(read.complete);
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].code, "json_syntax");
}

TEST(JsonReaderDepth, TenThousandDeepArraysAreAnErrorNotACrash) {
  const std::string text = std::string(10000, '[') + std::string(10000, ']');
  JsonReadResult read = read_json(text);
  EXPECT_FALSE(read.complete);
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].code, "json_too_deep");
  EXPECT_EQ(read.errors[0].line, 1u);
  EXPECT_EQ(read.errors[0].column, 257u);  // the 257th "[" (default limit 256)
  EXPECT_TRUE(read.value.is_null());
}

TEST(JsonReaderDepth, TenThousandDeepObjectsAreAnErrorNotACrash) {
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "{\"a\":";
  text += "1" + std::string(10000, '}');
  JsonReadResult read = read_json(text);
  EXPECT_FALSE(read.complete);
  ASSERT_EQ(read.errors.size(), 1u);
  EXPECT_EQ(read.errors[0].code, "json_too_deep");
  // The pointer names where the too-deep value stands.
  std::string expected;
  for (int i = 0; i < 256; ++i) expected += "/a";
  EXPECT_EQ(read.errors[0].pointer, expected);
}

TEST(JsonReaderDepth, LimitIsInclusive) {
  JsonReadOptions options;
  options.max_depth = 5;
  EXPECT_TRUE(read_json("[[[[[]]]]]", options).ok());
  EXPECT_TRUE(read_json("[[[[[1]]]]]", options).ok());  // scalars do not add depth
  JsonReadResult too_deep = read_json("[[[[[[]]]]]]", options);
  ASSERT_EQ(too_deep.errors.size(), 1u);
  EXPECT_EQ(too_deep.errors[0].code, "json_too_deep");
  EXPECT_NE(too_deep.errors[0].message.find("5"), std::string::npos);
  // Width is not depth.
  std::string wide = "[";
  for (int i = 0; i < 5000; ++i) wide += (i ? ",[]" : "[]");
  wide += "]";
  EXPECT_TRUE(read_json(wide, options).ok());
}

// A 10 MB policy-sized document: read completely, positions right at the end.
TEST(JsonReaderSize, TenMegabyteDocument) {
  std::string text = "{\"items\": [\n";
  const std::string padding(200, 'x');
  std::size_t count = 0;
  while (text.size() < 10 * 1024 * 1024) {
    if (count) text += ",\n";
    text += "{\"id\": " + std::to_string(count) + ", \"name\": \"é" + padding + "\", \"ok\": true}";
    ++count;
  }
  text += "\n], \"last\": 1}";
  JsonReadResult read = read_json(text);
  ASSERT_TRUE(read.ok()) << test::format(read.errors);
  ASSERT_EQ(read.value["items"].size(), count);
  EXPECT_EQ(read.value["items"][count - 1]["id"].get<std::size_t>(), count - 1);
  const std::string last = "/items/" + std::to_string(count - 1);
  EXPECT_EQ(value_at(read, last), LineColumn(count + 1, 1));
  EXPECT_EQ(value_at(read, last + "/ok"), LineColumn(count + 1, 229 + std::to_string(count - 1).size()));
  EXPECT_EQ(value_at(read, "/last"), LineColumn(count + 2, 12));
}


TEST(JsonReaderPositions, ByteOrderMarkIsNotAColumn) {
  JsonReadResult read = read_json("\xEF\xBB\xBF{\"a\": 1}");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.source_map.locate("/a"), (std::pair<std::size_t, std::size_t>{1, 7}));
  EXPECT_EQ(read.source_map.locate("/a", /*at_key=*/true), (std::pair<std::size_t, std::size_t>{1, 2}));
}

}  // namespace
}  // namespace toolgate
