// Limits over simulated time: epoch-aligned fixed windows, sliding two-bucket
// estimates, window syntax, scopes, keys, shared counters, costs, the
// rate_limit shorthand, all-or-nothing charging and retry_after_ms.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "test_support.h"

namespace toolgate {
namespace {

using json = nlohmann::json;
using test::compile_ok;
using test::decide;
using test::kDay;
using test::kHour;
using test::kMinute;
using test::kSecond;
using test::kT0;
using test::make_call;
using test::Session;

// The policy of the spec's compatibility example: Convex `run`, 10 a minute per grant.
const char* kConvexRun = R"({ "version": "1", "default": "deny",
  "tools": { "run": { "limits": [ { "counter": "run_rate", "window": "minute", "max": 10, "scope": "grant" } ] } } })";

std::string one_limit(const std::string& limit, const std::string& tool = "run") {
  return R"({"version": "1", "default": "deny", "tools": {")" + tool + R"(": {"limits": [)" + limit + "]}}}";
}

void expect_rate_limited(const Decision& d, const std::string& rule, std::int64_t retry_after_ms) {
  EXPECT_EQ(d.verdict, Verdict::deny);
  EXPECT_EQ(d.code, "rate_limited");
  EXPECT_EQ(d.rule, rule);
  ASSERT_TRUE(d.retry_after_ms.has_value());
  EXPECT_EQ(*d.retry_after_ms, retry_after_ms);
  EXPECT_FALSE(d.approval_id.has_value());
}

void expect_allowed(const Decision& d, const std::string& rule) {
  EXPECT_EQ(d.verdict, Verdict::allow) << d.code << ": " << d.message;
  EXPECT_EQ(d.code, "allowed");
  EXPECT_EQ(d.rule, rule);
  EXPECT_FALSE(d.retry_after_ms.has_value());
}

TEST(Limits, ConvexRunTenPerMinute) {
  Session session(kConvexRun);
  for (int i = 0; i < 10; ++i) {
    expect_allowed(session.call("run", json::object(), "alice", kT0 + 30 * kSecond + i), "/tools/run");
  }
  Decision denied = session.call("run", json::object(), "alice", kT0 + 30 * kSecond + 10);
  expect_rate_limited(denied, "/tools/run/limits/0", 30 * kSecond - 10);
  EXPECT_NE(denied.message.find("10"), std::string::npos) << denied.message;
  EXPECT_NE(denied.message.find("minute"), std::string::npos) << denied.message;
  // Still the same minute a millisecond before it ends; a new count at :00.
  expect_rate_limited(session.call("run", json::object(), "alice", kT0 + kMinute - 1), "/tools/run/limits/0", 1);
  expect_allowed(session.call("run", json::object(), "alice", kT0 + kMinute), "/tools/run");
  // Another grant has its own count (scope grant).
  expect_allowed(session.call("run", json::object(), "bob", kT0 + 59 * kSecond), "/tools/run");
}

// Fixed windows are aligned to the Unix epoch in UTC, not to the first call.
TEST(Limits, FixedWindowsAlignToTheEpoch) {
  {
    Session session(one_limit(R"({"window": "minute", "max": 3})"));
    const std::int64_t late = kT0 + 59 * kSecond + 500;  // 00:00:59.5
    for (int i = 0; i < 3; ++i) expect_allowed(session.call("run", {}, "alice", late), "/tools/run");
    expect_rate_limited(session.call("run", {}, "alice", late), "/tools/run/limits/0", 500);
    // Half a second later the minute has turned over: a full new window.
    for (int i = 0; i < 3; ++i) expect_allowed(session.call("run", {}, "alice", kT0 + kMinute), "/tools/run");
  }
  {
    // A day window resets at 00:00 UTC.
    Session session(one_limit(R"({"window": "day", "max": 2})"));
    const std::int64_t evening = kT0 + kDay - kHour;  // 23:00 UTC
    expect_allowed(session.call("run", {}, "alice", kT0 + kHour), "/tools/run");
    expect_allowed(session.call("run", {}, "alice", evening), "/tools/run");
    expect_rate_limited(session.call("run", {}, "alice", kT0 + kDay - kSecond), "/tools/run/limits/0", kSecond);
    expect_allowed(session.call("run", {}, "alice", kT0 + kDay), "/tools/run");
  }
  {
    Session session(one_limit(R"({"window": "hour", "max": 1})"));
    expect_allowed(session.call("run", {}, "alice", kT0 + 3 * kHour + 59 * kMinute), "/tools/run");
    expect_rate_limited(session.call("run", {}, "alice", kT0 + 3 * kHour + 59 * kMinute + 1), "/tools/run/limits/0",
                        kMinute - 1);
    expect_allowed(session.call("run", {}, "alice", kT0 + 4 * kHour), "/tools/run");
  }
}

TEST(Limits, RetryAfterIsTheTimeToTheEndOfTheWindow) {
  Session session(one_limit(R"({"window": "minute", "max": 1})"));
  expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
  for (std::int64_t offset : {std::int64_t{1}, std::int64_t{12345}, std::int64_t{59999}}) {
    expect_rate_limited(session.call("run", {}, "alice", kT0 + offset), "/tools/run/limits/0", kMinute - offset);
  }
}

TEST(Limits, BucketStartsAndWindowLengths) {
  struct Case {
    std::string window;
    std::int64_t window_ms;
  };
  const Case cases[] = {
      {R"("second")", kSecond}, {R"("minute")", kMinute}, {R"("hour")", kHour},   {R"("day")", kDay},
      {R"("10s")", 10 * kSecond}, {R"("5m")", 5 * kMinute}, {R"("2h")", 2 * kHour}, {R"("1d")", kDay},
      {R"("7d")", 7 * kDay},     {"90", 90 * kSecond},      {"1", kSecond},         {"86400", kDay},
  };
  // 2026-01-01 is a multiple of every one of these windows (even of 7 days:
  // it is a Thursday, like 1970-01-01), so buckets here start at kT0.
  const std::int64_t now = kT0 + 3 * kDay + 5 * kHour + 7 * kMinute + 11 * kSecond + 13;
  for (const Case& c : cases) {
    auto plan = compile_ok(one_limit(R"({"window": )" + c.window + R"(, "max": 5})"));
    ASSERT_TRUE(plan);
    Evaluation e = evaluate(*plan, make_call("run", {}, "alice", now));
    ASSERT_FALSE(e.decision) << c.window;
    ASSERT_EQ(e.pending.counters.size(), 1u);
    const CounterRequest& request = e.pending.counters[0];
    EXPECT_EQ(request.window_ms, c.window_ms) << c.window;
    EXPECT_EQ(request.bucket_start_ms, now - now % c.window_ms) << c.window;
    EXPECT_EQ(request.bucket_start_ms % c.window_ms, 0) << c.window;
    EXPECT_LE(request.bucket_start_ms, now);
    EXPECT_GT(request.bucket_start_ms + request.window_ms, now);
    EXPECT_EQ(request.max, 5);
    EXPECT_EQ(request.cost, 1);
    EXPECT_EQ(e.pending.now_ms, now);
  }
}

TEST(Limits, NumericAndShortWindowsOverTime) {
  {
    Session session(one_limit(R"({"window": "10s", "max": 2})"));
    expect_allowed(session.call("run", {}, "alice", kT0 + 1 * kSecond), "/tools/run");
    expect_allowed(session.call("run", {}, "alice", kT0 + 2 * kSecond), "/tools/run");
    expect_rate_limited(session.call("run", {}, "alice", kT0 + 10 * kSecond - 1), "/tools/run/limits/0", 1);
    expect_allowed(session.call("run", {}, "alice", kT0 + 10 * kSecond), "/tools/run");
  }
  {
    // 90 seconds: buckets [kT0 + 90 s, kT0 + 180 s), ...
    Session session(one_limit(R"({"window": 90, "max": 1})"));
    expect_allowed(session.call("run", {}, "alice", kT0 + 100 * kSecond), "/tools/run");
    expect_rate_limited(session.call("run", {}, "alice", kT0 + 179 * kSecond), "/tools/run/limits/0", kSecond);
    expect_allowed(session.call("run", {}, "alice", kT0 + 180 * kSecond), "/tools/run");
  }
}

TEST(Limits, CountPlusCostMustNotExceedMax) {
  Session session(one_limit(R"({"window": "minute", "max": 10, "cost": 3})"));
  for (int i = 0; i < 3; ++i) expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");  // 9
  Decision d = session.call("run", {}, "alice", kT0);  // 9 + 3 > 10
  expect_rate_limited(d, "/tools/run/limits/0", kMinute);
  EXPECT_NE(d.message.find("units"), std::string::npos) << d.message;

  Session exact(one_limit(R"({"window": "minute", "max": 10, "cost": 5})"));
  expect_allowed(exact.call("run", {}, "alice", kT0), "/tools/run");
  expect_allowed(exact.call("run", {}, "alice", kT0), "/tools/run");  // 10 <= 10
  expect_rate_limited(exact.call("run", {}, "alice", kT0), "/tools/run/limits/0", kMinute);

  // A cost above max can never be admitted.
  Session never(one_limit(R"({"window": "minute", "max": 2, "cost": 3})"));
  expect_rate_limited(never.call("run", {}, "alice", kT0 + 5 * kSecond), "/tools/run/limits/0", 55 * kSecond);
}

TEST(Limits, SlidingEstimateWithKnownNumbers) {
  CounterRequest request;
  request.algorithm = Algorithm::sliding;
  request.window_ms = kMinute;
  request.bucket_start_ms = kT0;
  request.cost = 1;
  // prev * (window - elapsed) / window + current, no rounding.
  EXPECT_DOUBLE_EQ(estimate(request, {2, 10}, kT0 + 15 * kSecond), 10.0 * 45 / 60 + 2);  // 9.5
  EXPECT_DOUBLE_EQ(estimate(request, {0, 10}, kT0), 10);
  EXPECT_DOUBLE_EQ(estimate(request, {0, 10}, kT0 + 30 * kSecond), 5);
  EXPECT_DOUBLE_EQ(estimate(request, {3, 7}, kT0 + 20 * kSecond), 7.0 * 40 / 60 + 3);
  EXPECT_DOUBLE_EQ(estimate(request, {4, 0}, kT0 + 59 * kSecond), 4);
  EXPECT_DOUBLE_EQ(estimate(request, {1, 3}, kT0 + 1), 3.0 * 59999 / 60000 + 1);
  // 9.5 + 1 > 10: denied (rounding the estimate down to 9 would admit it).
  EXPECT_FALSE(admits(request, {2, 10}, kT0 + 15 * kSecond, 10));
  EXPECT_TRUE(admits(request, {1, 10}, kT0 + 15 * kSecond, 10));  // 8.5 + 1
  EXPECT_TRUE(admits(request, {2, 10}, kT0 + 15 * kSecond, 10.5));
  // Fixed windows ignore the previous bucket.
  request.algorithm = Algorithm::fixed;
  EXPECT_DOUBLE_EQ(estimate(request, {2, 10}, kT0 + 15 * kSecond), 2);
  EXPECT_TRUE(admits(request, {9, 100}, kT0, 10));
  EXPECT_FALSE(admits(request, {10, 0}, kT0, 10));
}

TEST(Limits, SlidingWindowOverTime) {
  Session session(one_limit(R"({"window": "minute", "max": 10, "algorithm": "sliding"})"));
  for (int i = 0; i < 10; ++i) expect_allowed(session.call("run", {}, "alice", kT0 + 50 * kSecond), "/tools/run");
  // Same bucket: full.
  EXPECT_EQ(session.call("run", {}, "alice", kT0 + 55 * kSecond).code, "rate_limited");
  // 15 s into the next bucket the previous 10 weigh 7.5: two calls fit
  // (8.5, 9.5 <= 10), the third would make 10.5. Rounding down would admit 3.
  const std::int64_t t = kT0 + kMinute + 15 * kSecond;
  expect_allowed(session.call("run", {}, "alice", t), "/tools/run");
  expect_allowed(session.call("run", {}, "alice", t), "/tools/run");
  Decision d = session.call("run", {}, "alice", t);
  // Admitted again once 10 * (60 - e) / 60 + 2 + 1 <= 10, at e = 18 s.
  expect_rate_limited(d, "/tools/run/limits/0", 3 * kSecond);
  EXPECT_EQ(session.call("run", {}, "alice", t + 3 * kSecond - 1).code, "rate_limited");
  expect_allowed(session.call("run", {}, "alice", t + 3 * kSecond), "/tools/run");
  // Two buckets later nothing carries over.
  for (int i = 0; i < 10; ++i) expect_allowed(session.call("run", {}, "alice", kT0 + 3 * kMinute), "/tools/run");
}

// retry_after_ms is exact: retrying one millisecond earlier is still denied,
// retrying then is admitted (with no other calls in between).
TEST(Limits, RetryAfterIsExactForFixedAndSliding) {
  struct Case {
    std::string limit;
    int burst;                 // calls made at `burst_at`
    std::int64_t burst_at;
    std::int64_t denied_at;    // then a call here is denied
  };
  const Case cases[] = {
      {R"({"window": "minute", "max": 5})", 5, kT0 + 10 * kSecond, kT0 + 20 * kSecond},
      {R"({"window": "minute", "max": 5, "algorithm": "sliding"})", 5, kT0 + 10 * kSecond, kT0 + 20 * kSecond},
      {R"({"window": "minute", "max": 5, "algorithm": "sliding"})", 5, kT0 + 10 * kSecond, kT0 + kMinute + 1},
      {R"({"window": "10s", "max": 7, "algorithm": "sliding"})", 7, kT0 + 9 * kSecond, kT0 + 10 * kSecond + 123},
      {R"({"window": "hour", "max": 3, "algorithm": "sliding", "cost": 2})", 1, kT0 + 59 * kMinute, kT0 + 59 * kMinute},
      {R"({"window": "minute", "max": 4, "algorithm": "sliding", "cost": 3})", 1, kT0, kT0 + kMinute + 7 * kSecond},
  };
  for (const Case& c : cases) {
    Session session(one_limit(c.limit));
    for (int i = 0; i < c.burst; ++i) ASSERT_EQ(session.call("run", {}, "a", c.burst_at).code, "allowed") << c.limit;
    Decision d = session.call("run", {}, "a", c.denied_at);
    ASSERT_EQ(d.code, "rate_limited") << c.limit;
    ASSERT_TRUE(d.retry_after_ms);
    std::int64_t retry = *d.retry_after_ms;
    EXPECT_GE(retry, 1);
    if (retry > 1) {
      EXPECT_EQ(session.call("run", {}, "a", c.denied_at + retry - 1).code, "rate_limited") << c.limit;
    }
    EXPECT_EQ(session.call("run", {}, "a", c.denied_at + retry).code, "allowed") << c.limit << " retry " << retry;
  }
}

TEST(Limits, RetryAfterDirect) {
  CounterRequest request;
  request.algorithm = Algorithm::sliding;
  request.window_ms = kMinute;
  request.bucket_start_ms = kT0;
  request.cost = 1;
  // Previous bucket full, current empty, at the bucket start: wait until the
  // previous 10 weigh 9, i.e. 6 s.
  EXPECT_EQ(retry_after_ms(request, {0, 10}, kT0, 10), 6 * kSecond);
  // Current bucket full: wait for the next bucket, then until this one's 10
  // weigh 9 there: 30 s + 6 s.
  EXPECT_EQ(retry_after_ms(request, {10, 0}, kT0 + 30 * kSecond, 10), 36 * kSecond);
  // A cost above max: the end of the window.
  request.cost = 11;
  EXPECT_EQ(retry_after_ms(request, {0, 0}, kT0 + 30 * kSecond, 10), 30 * kSecond);
  request.algorithm = Algorithm::fixed;
  request.cost = 1;
  EXPECT_EQ(retry_after_ms(request, {10, 0}, kT0 + 30 * kSecond + 1, 10), 30 * kSecond - 1);
}

TEST(Limits, ScopeGrantAndGlobal) {
  {
    Session session(one_limit(R"({"window": "minute", "max": 2, "scope": "grant"})"));
    for (const char* grant : {"alice", "bob", "carol"}) {
      expect_allowed(session.call("run", {}, grant, kT0), "/tools/run");
      expect_allowed(session.call("run", {}, grant, kT0), "/tools/run");
      EXPECT_EQ(session.call("run", {}, grant, kT0).code, "rate_limited") << grant;
    }
  }
  {
    // Default scope is grant.
    Session session(one_limit(R"({"window": "minute", "max": 1})"));
    expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
    expect_allowed(session.call("run", {}, "bob", kT0), "/tools/run");
  }
  {
    Session session(one_limit(R"({"window": "minute", "max": 3, "scope": "global"})"));
    expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
    expect_allowed(session.call("run", {}, "bob", kT0), "/tools/run");
    expect_allowed(session.call("run", {}, "carol", kT0), "/tools/run");
    Decision d = session.call("run", {}, "dave", kT0);
    expect_rate_limited(d, "/tools/run/limits/0", kMinute);
    EXPECT_NE(d.message.find("everyone"), std::string::npos) << d.message;
  }
  {
    // The grant's identity is its id; attributes do not split the count.
    Session session(one_limit(R"({"window": "minute", "max": 1})"));
    EXPECT_EQ(session.call_text(R"({"tool": "run", "grant": {"id": "a", "role": "x"}, "now": 1767225600000})").code,
              "allowed");
    EXPECT_EQ(session.call_text(R"({"tool": "run", "grant": {"id": "a", "role": "y"}, "now": 1767225600000})").code,
              "rate_limited");
  }
}

TEST(Limits, KeyCountsPerValue) {
  Session session(one_limit(R"({"window": "hour", "max": 2, "key": "args.repo"})", "cargo_run"));
  auto call = [&](json args, const std::string& grant = "alice") {
    return session.call("cargo_run", std::move(args), grant, kT0);
  };
  expect_allowed(call({{"repo", "toolgate"}}), "/tools/cargo_run");
  expect_allowed(call({{"repo", "toolgate"}}), "/tools/cargo_run");
  Decision d = call({{"repo", "toolgate"}});
  expect_rate_limited(d, "/tools/cargo_run/limits/0", kHour);
  EXPECT_NE(d.message.find("args.repo"), std::string::npos) << d.message;
  expect_allowed(call({{"repo", "other"}}), "/tools/cargo_run");
  // Still per grant as well.
  expect_allowed(call({{"repo", "toolgate"}}, "bob"), "/tools/cargo_run");
  // Values are compared as JSON: 1 and 1.0 are one value, "1" another.
  expect_allowed(call({{"repo", 1}}), "/tools/cargo_run");
  expect_allowed(call({{"repo", 1.0}}), "/tools/cargo_run");
  EXPECT_EQ(call({{"repo", 1}}).code, "rate_limited");
  expect_allowed(call({{"repo", "1"}}), "/tools/cargo_run");
  // Structured values work as keys too.
  expect_allowed(call({{"repo", {{"org", "a"}, {"name", "b"}}}}), "/tools/cargo_run");
  // A missing key value is invalid_arguments, and charges nothing.
  Decision missing = call({{"repository", "toolgate"}});
  EXPECT_EQ(missing.verdict, Verdict::deny);
  EXPECT_EQ(missing.code, "invalid_arguments");
  EXPECT_EQ(missing.rule, "/tools/cargo_run/limits/0");
  EXPECT_NE(missing.message.find("args.repo"), std::string::npos) << missing.message;
  EXPECT_FALSE(missing.retry_after_ms);
}

// Counter keys hold the grant id and the `key` value as canonical JSON up to
// kMaxKeyPartBytes; longer ones as {"sha256": <hex of that JSON>}, so a
// client cannot make a store keep megabytes per key.
TEST(CounterKeys, ShortPartsAreWrittenAsBefore) {
  auto plan = compile_ok(one_limit(R"({"window": "hour", "max": 2, "key": "args.repo"})"));
  ASSERT_TRUE(plan);
  Evaluation e = evaluate(*plan, make_call("run", {{"repo", "toolgate"}}, "alice", kT0));
  ASSERT_FALSE(e.decision);
  EXPECT_EQ(e.pending.counters[0].key, R"(tg1:["grant","alice","/tools/run/limits/0",3600000,"fixed","toolgate"])");

  // Exactly the bound (64 bytes of canonical JSON, quotes included) stays as written.
  const std::string at_bound(62, 'a');
  e = evaluate(*plan, make_call("run", {{"repo", at_bound}}, std::string(62, 'g'), kT0));
  ASSERT_FALSE(e.decision);
  EXPECT_EQ(e.pending.counters[0].key, "tg1:[\"grant\",\"" + std::string(62, 'g') +
                                           "\",\"/tools/run/limits/0\",3600000,\"fixed\",\"" + at_bound + "\"]");
}

// The grant id's part of a key is its canonical JSON string (evaluate.cpp
// appends one with nothing to escape in one piece): over seeded random ids
// of plain, quoting, control, non-ASCII characters, the key holds exactly
// canonical_json of the id (hashed past the bound, as above).
TEST(CounterKeys, GrantIdsAreWrittenAsCanonicalJson) {
  auto plan = compile_ok(one_limit(R"({"window": "hour", "max": 2})"));
  ASSERT_TRUE(plan);
  const std::string pieces[] = {"a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f", "\xC3\xA9",
                                "\xF0\x9F\x98\x80", "\b", "\f", "\r", "u", "g"};
  std::mt19937 random(41);
  for (int i = 0; i < 2000; ++i) {
    std::string grant;
    const int length = 1 + static_cast<int>(random() % 40);
    const std::size_t pool = random() % 2 == 0 ? 4 : std::size(pieces);  // often plain ids only
    for (int j = 0; j < length; ++j) grant += pieces[random() % pool];
    Evaluation e = evaluate(*plan, make_call("run", json::object(), grant, kT0));
    ASSERT_FALSE(e.decision);
    std::string part = canonical_json(json(grant));
    if (part.size() > kMaxKeyPartBytes) part = R"({"sha256":")" + sha256_hex(part) + R"("})";
    EXPECT_EQ(e.pending.counters.at(0).key, R"(tg1:["grant",)" + part + R"(,"/tools/run/limits/0",3600000,"fixed"])")
        << i;
  }
}

TEST(CounterKeys, LongPartsAreHashed) {
  auto plan = compile_ok(one_limit(R"({"window": "hour", "max": 2, "key": "args.repo"})"));
  ASSERT_TRUE(plan);
  auto key_of = [&](json repo, std::string grant = "alice") {
    Evaluation e = evaluate(*plan, make_call("run", {{"repo", std::move(repo)}}, std::move(grant), kT0));
    EXPECT_FALSE(e.decision);
    return e.decision ? std::string() : e.pending.counters.at(0).key;
  };
  const std::string two_mb(2 * 1024 * 1024, 'x');
  const std::string key = key_of(two_mb);
  EXPECT_LT(key.size(), 160u) << key.substr(0, 200);
  EXPECT_EQ(key, R"(tg1:["grant","alice","/tools/run/limits/0",3600000,"fixed",{"sha256":")" +
                     sha256_hex(canonical_json(json(two_mb))) + R"("}])");
  // Equal values, the same key; distinct ones (even by one byte at the end), distinct keys.
  EXPECT_EQ(key_of(two_mb), key);
  std::string other = two_mb;
  other.back() = 'y';
  EXPECT_NE(key_of(other), key);
  // Just over the bound is hashed too.
  EXPECT_NE(key_of(std::string(63, 'a')).find("{\"sha256\":"), std::string::npos);
  // Structured values: canonical first, so member order does not matter.
  json a = json::parse(R"({"b": ")" + std::string(100, 'b') + R"(", "a": 1})");
  json b = json::parse(R"({"a": 1.0, "b": ")" + std::string(100, 'b') + R"("})");
  EXPECT_EQ(key_of(a), key_of(b));
  // A value shaped like the hashed form is not the hashed form: it is longer
  // than the bound itself, so it is hashed again.
  json lookalike = {{"sha256", sha256_hex(canonical_json(json(two_mb)))}};
  EXPECT_NE(key_of(lookalike), key);
  // A long grant id the same way, in its place (position 1).
  const std::string long_grant(1000, 'g');
  const std::string by_grant = key_of("toolgate", long_grant);
  std::string quoted = "\"" + long_grant + "\"";
  EXPECT_EQ(by_grant, R"(tg1:["grant",{"sha256":")" + sha256_hex(quoted) +
                          R"("},"/tools/run/limits/0",3600000,"fixed","toolgate"])");
  EXPECT_NE(key_of("toolgate", long_grant + "h"), by_grant);
}

TEST(CounterKeys, HashedKeysCountPerValue) {
  Session session(one_limit(R"({"window": "hour", "max": 1, "key": "args.repo"})"));
  std::string first(2 * 1024 * 1024, 'x'), second = first;
  second[0] = 'y';
  EXPECT_EQ(session.call("run", {{"repo", first}}).code, "allowed");
  EXPECT_EQ(session.call("run", {{"repo", first}}).code, "rate_limited");
  EXPECT_EQ(session.call("run", {{"repo", second}}).code, "allowed");
  EXPECT_EQ(session.call("run", {{"repo", second}}).code, "rate_limited");
  EXPECT_EQ(session.call("run", {{"repo", first}}, "bob").code, "allowed");
}

TEST(Limits, KeyFromTheGrant) {
  Session session(one_limit(R"({"window": "minute", "max": 1, "scope": "global", "key": "grant.team"})"));
  EXPECT_EQ(session.call_text(R"({"tool": "run", "grant": {"id": "a", "team": "red"}})").code, "allowed");
  EXPECT_EQ(session.call_text(R"({"tool": "run", "grant": {"id": "b", "team": "red"}})").code, "rate_limited");
  EXPECT_EQ(session.call_text(R"({"tool": "run", "grant": {"id": "c", "team": "blue"}})").code, "allowed");
  EXPECT_EQ(session.call_text(R"({"tool": "run", "grant": "d"})").code, "invalid_arguments");
}

TEST(Limits, CounterNameSharedAcrossTools) {
  Session session(R"({"version": "1", "default": "deny", "tools": {
      "convex_run": {"limits": [{"counter": "backend", "window": "minute", "max": 3}]},
      "convex_query": {"limits": [{"counter": "backend", "window": "minute", "max": 3}]},
      "convex_logs": {"limits": [{"counter": "backend", "window": "hour", "max": 3}]},
      "convex_env": {"limits": [{"counter": "backend", "window": "minute", "max": 3, "scope": "global"}]},
      "convex_deploy": {"limits": [{"window": "minute", "max": 3}]},
      "convex_data": {"limits": [{"window": "minute", "max": 3}]}
    }})");
  expect_allowed(session.call("convex_run", {}, "alice", kT0), "/tools/convex_run");
  expect_allowed(session.call("convex_query", {}, "alice", kT0), "/tools/convex_query");
  expect_allowed(session.call("convex_run", {}, "alice", kT0), "/tools/convex_run");
  expect_rate_limited(session.call("convex_query", {}, "alice", kT0), "/tools/convex_query/limits/0", kMinute);
  expect_rate_limited(session.call("convex_run", {}, "alice", kT0), "/tools/convex_run/limits/0", kMinute);
  // Same name, another window or scope: another count.
  expect_allowed(session.call("convex_logs", {}, "alice", kT0), "/tools/convex_logs");
  expect_allowed(session.call("convex_env", {}, "alice", kT0), "/tools/convex_env");
  // Unnamed limits never share, even when written identically.
  for (int i = 0; i < 3; ++i) expect_allowed(session.call("convex_deploy", {}, "alice", kT0), "/tools/convex_deploy");
  expect_allowed(session.call("convex_data", {}, "alice", kT0), "/tools/convex_data");
}

// A tool limit and an all_tools limit with the same counter share one count;
// a call they both govern counts once, and each checks its own max.
TEST(Limits, CounterSharedBetweenToolAndAllTools) {
  const std::string policy = R"({"version": "1", "default": "allow",
    "all_tools": {"limits": [{"counter": "calls", "window": "minute", "max": 3}]},
    "tools": {"run": {"limits": [{"counter": "calls", "window": "minute", "max": 5}]}}})";
  auto plan = compile_ok(policy);
  ASSERT_TRUE(plan);
  Evaluation e = evaluate(*plan, make_call("run", {}, "alice", kT0));
  ASSERT_FALSE(e.decision);
  ASSERT_EQ(e.pending.counters.size(), 1u);
  EXPECT_EQ(e.pending.counters[0].max, 3);   // the tightest
  EXPECT_EQ(e.pending.counters[0].cost, 1);  // counted once
  ASSERT_EQ(e.pending.limits.size(), 2u);
  EXPECT_EQ(e.pending.limits[0].rule, "/tools/run/limits/0");
  EXPECT_EQ(e.pending.limits[1].rule, "/all_tools/limits/0");

  Session session(policy);
  expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
  expect_allowed(session.call("search", {}, "alice", kT0), "/default");
  expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
  expect_rate_limited(session.call("run", {}, "alice", kT0), "/all_tools/limits/0", kMinute);
  expect_rate_limited(session.call("search", {}, "alice", kT0), "/all_tools/limits/0", kMinute);
}

TEST(Limits, SpendLimitWithCostFrom) {
  const std::string policy = R"({"version": "1", "default": "deny", "tools": {"create_refund": {"limits": [
      {"counter": "refund_spend", "window": "day", "max": 100000, "cost_from": "args.amount",
       "on_deny": "Daily refund budget spent."}]}}})";
  Session session(policy);
  auto refund = [&](json amount, std::int64_t now = kT0 + kHour) {
    return session.call("create_refund", {{"amount", std::move(amount)}, {"charge", "ch_1"}}, "support", now);
  };
  expect_allowed(refund(60000), "/tools/create_refund");
  expect_allowed(refund(40000), "/tools/create_refund");  // exactly 100000
  expect_allowed(refund(0), "/tools/create_refund");      // a zero refund fits
  Decision d = refund(1);
  expect_rate_limited(d, "/tools/create_refund/limits/0", kDay - kHour);
  EXPECT_EQ(d.message, "Daily refund budget spent.");
  expect_allowed(refund(100000, kT0 + kDay), "/tools/create_refund");
  // Fractional amounts are charged exactly.
  Session cents(policy);
  EXPECT_EQ(cents.call("create_refund", {{"amount", 99999.5}}, "s", kT0).code, "allowed");
  EXPECT_EQ(cents.call("create_refund", {{"amount", 0.5}}, "s", kT0).code, "allowed");
  EXPECT_EQ(cents.call("create_refund", {{"amount", 0.001}}, "s", kT0).code, "rate_limited");
  // An amount above max can never fit.
  EXPECT_EQ(cents.call("create_refund", {{"amount", 100001}}, "other", kT0).code, "rate_limited");
}

TEST(Limits, CostFromMustBeANonNegativeNumber) {
  auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"create_refund": {"limits": [
      {"window": "day", "max": 100000, "cost_from": "args.amount"}]}}})");
  for (const char* amount : {"-1", "-0.5", R"("100")", "null", "true", "[100]", R"({"value": 1})"}) {
    Decision d = decide(plan, make_call("create_refund", json::parse(std::string(R"({"amount": )") + amount + "}")));
    EXPECT_EQ(d.verdict, Verdict::deny) << amount;
    EXPECT_EQ(d.code, "invalid_arguments") << amount;
    EXPECT_EQ(d.rule, "/tools/create_refund/limits/0") << amount;
    EXPECT_NE(d.message.find("args.amount"), std::string::npos) << d.message;
  }
  Decision missing = decide(plan, make_call("create_refund", {{"currency", "usd"}}));
  EXPECT_EQ(missing.code, "invalid_arguments");
  EXPECT_EQ(decide(plan, make_call("create_refund", {{"amount", -0.0}})).code, "allowed");
  EXPECT_EQ(decide(plan, make_call("create_refund", {{"amount", 1e300}})).code, "rate_limited");
}

TEST(Limits, RateLimitShorthand) {
  {
    Session session(R"({"version": "1", "default": "deny", "tools": {"run": {"rate_limit": "3/minute"}}})");
    for (int i = 0; i < 3; ++i) expect_allowed(session.call("run", {}, "alice", kT0 + 20 * kSecond), "/tools/run");
    expect_rate_limited(session.call("run", {}, "alice", kT0 + 20 * kSecond), "/tools/run/rate_limit", 40 * kSecond);
    // Scope grant.
    expect_allowed(session.call("run", {}, "bob", kT0 + 20 * kSecond), "/tools/run");
  }
  {
    Session session(R"({"version": "1", "default": "deny", "tools": {"run": {"rate_limit": {"max": 2, "window": 60}}}})");
    expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
    expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
    expect_rate_limited(session.call("run", {}, "alice", kT0 + 1), "/tools/run/rate_limit", kMinute - 1);
    expect_allowed(session.call("run", {}, "bob", kT0), "/tools/run");
  }
  struct Case {
    std::string value;
    double max;
    std::int64_t window_ms;
  };
  const Case cases[] = {
      {R"("10/minute")", 10, kMinute}, {R"("100/1h")", 100, kHour},  {R"("5/second")", 5, kSecond},
      {R"("1/day")", 1, kDay},         {R"("7/10s")", 7, 10 * kSecond}, {R"({"max": 4, "window": "5m"})", 4, 5 * kMinute},
  };
  for (const Case& c : cases) {
    auto plan = compile_ok(R"({"version": "1", "default": "deny", "tools": {"run": {"rate_limit": )" + c.value + "}}}");
    ASSERT_TRUE(plan) << c.value;
    const Limit& limit = plan->tools.at(0).rules.limits.at(0);
    EXPECT_EQ(limit.max, c.max) << c.value;
    EXPECT_EQ(limit.window_ms, c.window_ms) << c.value;
    EXPECT_EQ(limit.scope, Scope::grant);
    EXPECT_EQ(limit.pointer, "/tools/run/rate_limit");
  }
}

// rate_limit comes after limits of the same rule set.
TEST(Limits, RateLimitAfterLimits) {
  Session session(R"({"version": "1", "default": "deny", "tools": {"run": {
      "rate_limit": "1/minute", "limits": [{"window": "minute", "max": 1}]}}})");
  expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
  expect_rate_limited(session.call("run", {}, "alice", kT0), "/tools/run/limits/0", kMinute);
}

// A call consumes quota only when it is allowed, and a call denied by one
// limit charges none of the others.
TEST(Limits, AllOrNothing) {
  const std::string policy = R"({"version": "1", "default": "deny", "tools": {"run": {"limits": [
      {"window": "minute", "max": 10},
      {"window": "hour", "max": 10},
      {"counter": "daily", "window": "day", "max": 2}
    ]}}})";
  Session session(policy);
  auto plan = compile_ok(policy);
  ASSERT_TRUE(plan);
  Evaluation e = evaluate(*plan, make_call("run", {}, "alice", kT0));
  ASSERT_FALSE(e.decision);
  ASSERT_EQ(e.pending.counters.size(), 3u);
  const std::string minute_key = e.pending.counters[0].key;
  const std::string hour_key = e.pending.counters[1].key;
  const std::string day_key = e.pending.counters[2].key;
  EXPECT_NE(minute_key, hour_key);
  EXPECT_NE(hour_key, day_key);

  expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
  expect_allowed(session.call("run", {}, "alice", kT0 + 1), "/tools/run");
  expect_rate_limited(session.call("run", {}, "alice", kT0 + 2), "/tools/run/limits/2", kDay - 2);
  expect_rate_limited(session.call("run", {}, "alice", kT0 + 3), "/tools/run/limits/2", kDay - 3);
  // The denied calls charged neither the minute nor the hour count.
  EXPECT_EQ(session.counters().count(minute_key, kT0), 2);
  EXPECT_EQ(session.counters().count(hour_key, kT0), 2);
  EXPECT_EQ(session.counters().count(day_key, kT0), 2);
  // Within the day, the minute and hour counts still have room for 8 more
  // calls: only the daily count is spent. The next day, 2 more fit.
  expect_rate_limited(session.call("run", {}, "alice", kT0 + kHour), "/tools/run/limits/2", kDay - kHour);
  expect_allowed(session.call("run", {}, "alice", kT0 + kDay), "/tools/run");
  expect_allowed(session.call("run", {}, "alice", kT0 + kDay), "/tools/run");
  expect_rate_limited(session.call("run", {}, "alice", kT0 + kDay), "/tools/run/limits/2", kDay);
  EXPECT_EQ(session.counters().count(minute_key, kT0 + kDay), 2);
}

TEST(Limits, AllOrNothingAcrossToolAndAllTools) {
  // The tool's own limit has room; all_tools' does not: the tool's count is
  // left untouched.
  const std::string policy = R"({"version": "1", "default": "allow",
    "all_tools": {"limits": [{"counter": "global_budget", "window": "minute", "max": 3, "scope": "global"}]},
    "tools": {"run": {"limits": [{"counter": "run_rate", "window": "minute", "max": 10}]}}})";
  Session session(policy);
  for (int i = 0; i < 3; ++i) expect_allowed(session.call("search", {}, "bob", kT0), "/default");
  expect_rate_limited(session.call("run", {}, "alice", kT0), "/all_tools/limits/0", kMinute);
  expect_rate_limited(session.call("run", {}, "alice", kT0), "/all_tools/limits/0", kMinute);
  auto plan = compile_ok(policy);
  Evaluation e = evaluate(*plan, make_call("run", {}, "alice", kT0));
  ASSERT_EQ(e.pending.counters.size(), 2u);
  EXPECT_EQ(session.counters().count(e.pending.counters[0].key, kT0), 0);  // run_rate: never charged
  EXPECT_EQ(session.counters().count(e.pending.counters[1].key, kT0), 3);
  // Next minute: run's own 10 are all there (the global budget of 3 binds first).
  for (int i = 0; i < 3; ++i) expect_allowed(session.call("run", {}, "alice", kT0 + kMinute), "/tools/run");
  EXPECT_EQ(session.counters().count(e.pending.counters[0].key, kT0 + kMinute), 3);
}

// The tool's limits are checked in order, then all_tools'; the first
// exceeded limit decides, with its own window's retry_after_ms (first denial
// wins: another exceeded limit answers the retry with its own wait).
TEST(Limits, OrderToolsLimitsThenAllTools) {
  Session session(R"({"version": "1", "default": "deny",
    "all_tools": {"limits": [{"window": "minute", "max": 1}]},
    "tools": {"run": {"limits": [{"window": "hour", "max": 5}, {"window": "day", "max": 1}]}}})");
  expect_allowed(session.call("run", {}, "alice", kT0), "/tools/run");
  // All three exceeded? No: the hour has room. Day and all_tools are exceeded.
  Decision d = session.call("run", {}, "alice", kT0 + 1);
  expect_rate_limited(d, "/tools/run/limits/1", kDay - 1);

  Session only_all_tools(R"({"version": "1", "default": "deny",
    "all_tools": {"limits": [{"window": "minute", "max": 1}]},
    "tools": {"run": {"limits": [{"window": "hour", "max": 5}]}}})");
  expect_allowed(only_all_tools.call("run", {}, "alice", kT0), "/tools/run");
  expect_rate_limited(only_all_tools.call("run", {}, "alice", kT0 + 1), "/all_tools/limits/0", kMinute - 1);

  Session both(R"({"version": "1", "default": "deny",
    "tools": {"run": {"limits": [{"window": "minute", "max": 1}, {"window": "hour", "max": 1}]}}})");
  expect_allowed(both.call("run", {}, "alice", kT0), "/tools/run");
  expect_rate_limited(both.call("run", {}, "alice", kT0 + 1), "/tools/run/limits/0", kMinute - 1);
  expect_rate_limited(both.call("run", {}, "alice", kT0 + kMinute), "/tools/run/limits/1", kHour - kMinute);
}

TEST(Limits, AllToolsRateLimitShorthand) {
  Session session(R"({"version": "1", "default": "allow", "all_tools": {"rate_limit": "2/minute"}})");
  expect_allowed(session.call("a", {}, "alice", kT0), "/default");
  expect_allowed(session.call("b", {}, "alice", kT0), "/default");
  expect_rate_limited(session.call("c", {}, "alice", kT0), "/all_tools/rate_limit", kMinute);
  expect_allowed(session.call("c", {}, "bob", kT0), "/default");
}

TEST(Limits, DeniedCallsBeforeLimitsChargeNothing) {
  Session session(R"({"version": "1", "default": "deny", "tools": {"run": {
      "deny_if": [{"conditions": [{"path": "args.cmd", "op": "contains", "value": "rm"}]}],
      "limits": [{"window": "minute", "max": 2}]}}})");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(session.call("run", {{"cmd", "rm -rf /"}}, "alice", kT0).code, "condition_denied");
  expect_allowed(session.call("run", {{"cmd", "ls"}}, "alice", kT0), "/tools/run");
  expect_allowed(session.call("run", {{"cmd", "ls"}}, "alice", kT0), "/tools/run");
  EXPECT_EQ(session.call("run", {{"cmd", "ls"}}, "alice", kT0).code, "rate_limited");
}

TEST(Limits, LimitMessages) {
  Session session(R"({"version": "1", "default": "deny", "tools": {
      "a": {"on_deny": "Tool a is busy.", "limits": [{"window": "minute", "max": 1}]},
      "b": {"on_deny": "Tool b is busy.", "limits": [{"window": "minute", "max": 1, "on_deny": "Slow down."}]},
      "c": {"limits": [{"window": "2h", "max": 1, "scope": "global", "key": "args.repo"}]}}})");
  session.call("a", {}, "x", kT0);
  session.call("b", {}, "x", kT0);
  session.call("c", {{"repo", "r"}}, "x", kT0);
  EXPECT_EQ(session.call("a", {}, "x", kT0).message, "Tool a is busy.");
  EXPECT_EQ(session.call("b", {}, "x", kT0).message, "Slow down.");
  const std::string generated = session.call("c", {{"repo", "r"}}, "x", kT0).message;
  for (const char* part : {"Rate limit exceeded", "at most 1 ", "2 hours", "everyone", "args.repo"}) {
    EXPECT_NE(generated.find(part), std::string::npos) << generated;
  }
}

TEST(Limits, MissingStatesFailClosed) {
  auto plan = compile_ok(kConvexRun);
  ASSERT_TRUE(plan);
  Evaluation e = evaluate(*plan, make_call("run"));
  ASSERT_FALSE(e.decision);
  Decision d = finish(e.pending, false, {});
  EXPECT_EQ(d.verdict, Verdict::deny);
  EXPECT_EQ(d.code, "store_error");
  // With the states, a fresh counter admits.
  std::vector<CounterState> states(1);
  EXPECT_EQ(finish(e.pending, false, states).code, "allowed");
  states[0].current = 10;
  EXPECT_EQ(finish(e.pending, false, states).code, "rate_limited");
}

TEST(Limits, TimesBeforeTheEpoch) {
  auto plan = compile_ok(one_limit(R"({"window": "minute", "max": 1})"));
  ASSERT_TRUE(plan);
  Evaluation e = evaluate(*plan, make_call("run", {}, "alice", -1));
  ASSERT_EQ(e.pending.counters.size(), 1u);
  EXPECT_EQ(e.pending.counters[0].bucket_start_ms, -kMinute);
  e = evaluate(*plan, make_call("run", {}, "alice", -kMinute));
  EXPECT_EQ(e.pending.counters[0].bucket_start_ms, -kMinute);
  Decision d = finish(e.pending, false, std::vector<CounterState>{{1, 0}});
  expect_rate_limited(d, "/tools/run/limits/0", kMinute);
}


TEST(LimitMessages, SingularAndPlural) {
  auto plan = test::compile_ok(R"({"version": "1", "default": "deny", "tools": {
    "one": {"rate_limit": "1/hour"}, "many": {"rate_limit": "5/10s"},
    "spend": {"limits": [{"window": "day", "max": 100, "cost_from": "args.amount", "scope": "global"}]}}})");
  EXPECT_EQ(test::decide(plan, test::make_call("one"), {CounterState{1, 0}}).message,
            "Rate limit exceeded: at most 1 call per hour for this grant.");
  EXPECT_EQ(test::decide(plan, test::make_call("many"), {CounterState{5, 0}}).message,
            "Rate limit exceeded: at most 5 calls per 10 seconds for this grant.");
  EXPECT_EQ(test::decide(plan, test::make_call("spend", {{"amount", 1}}), {CounterState{100, 0}}).message,
            "Rate limit exceeded: at most 100 units per day for everyone.");
}

TEST(LimitWindows, UnitAliasesInRateLimitShorthand) {
  auto plan = test::compile_ok(R"({"version": "1", "default": "deny", "tools": {
    "a": {"rate_limit": "10/min"}, "b": {"rate_limit": "5/sec"}, "c": {"rate_limit": "100/hr"}, "d": {"rate_limit": "3/2h"}}})");
  const std::pair<const char*, std::int64_t> expected[] = {{"a", kMinute}, {"b", kSecond}, {"c", kHour}, {"d", 2 * kHour}};
  for (auto [tool, window] : expected) {
    Evaluation e = evaluate(*plan, test::make_call(tool));
    ASSERT_EQ(e.pending.counters.size(), 1u) << tool;
    EXPECT_EQ(e.pending.counters[0].window_ms, window) << tool;
  }
  EXPECT_EQ(test::compile_errors(R"({"version": "1", "default": "deny", "tools": {"a": {"rate_limit": "10/fortnight"}}})")
                .front().code,
            "invalid_value");
}

}  // namespace
}  // namespace toolgate
