// The memory store's counter table in the core (core/counter_table.h): the
// rule every store shares (wasm/admission.js), buckets rolling forward, a
// clock that goes back, keys named twice in one call, rollbacks, the sweep.
// tests/js/counter-table.test.js holds it to the JS MemoryCounterStore over
// seeded call sequences through the WebAssembly build.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "counter_table.h"

namespace toolgate {
namespace {

constexpr double kMinute = 60000;
constexpr double kT0 = 1767225600000;  // a minute boundary

CounterRequest fixed(std::string_view key, double max, double bucket, double cost = 1) {
  CounterRequest request;
  request.key = std::string(key);
  request.cost = cost;
  request.max = max;
  request.window_ms = static_cast<std::int64_t>(kMinute);
  request.bucket_start_ms = static_cast<std::int64_t>(bucket);
  return request;
}

struct Reserved {
  bool admitted;
  std::vector<CounterState> states;
  std::vector<double> starts;
};

Reserved reserve(CounterTable& table, std::vector<CounterRequest> requests, double now) {
  Reserved out;
  out.admitted = table.reserve(requests, now, out.states, out.starts);
  return out;
}

TEST(CounterTable, CountsUpToMaxInOneBucket) {
  CounterTable table;
  for (int i = 0; i < 3; ++i) {
    Reserved r = reserve(table, {fixed("k", 3, kT0)}, kT0 + 5);
    EXPECT_TRUE(r.admitted);
    EXPECT_EQ(r.states[0].current, i);
    EXPECT_EQ(r.starts[0], kT0);
  }
  Reserved denied = reserve(table, {fixed("k", 3, kT0)}, kT0 + 6);
  EXPECT_FALSE(denied.admitted);
  EXPECT_EQ(denied.states[0].current, 3);
  EXPECT_EQ(table.peek(fixed("k", 3, kT0)).current, 3);
  EXPECT_EQ(table.size(), 1u);
}

TEST(CounterTable, NextBucketMovesCurrentToPrevious) {
  CounterTable table;
  reserve(table, {fixed("k", 10, kT0, 4)}, kT0);
  CounterState next = table.peek(fixed("k", 10, kT0 + kMinute));
  EXPECT_EQ(next.current, 0);
  EXPECT_EQ(next.previous, 4);
  CounterState later = table.peek(fixed("k", 10, kT0 + 2 * kMinute));
  EXPECT_EQ(later.current, 0);
  EXPECT_EQ(later.previous, 0);
}

TEST(CounterTable, SlidingEstimateWeighsThePreviousBucket) {
  CounterTable table;
  reserve(table, {fixed("k", 10, kT0, 10)}, kT0);
  CounterRequest sliding = fixed("k", 10, kT0 + kMinute);
  sliding.algorithm = Algorithm::sliding;
  // Half way into the next bucket: 10 * 0.5 + 0 + 1 <= 10.
  EXPECT_TRUE(reserve(table, {sliding}, kT0 + kMinute + kMinute / 2).admitted);
  // Just after it started: 10 * ~1 + 1 + 1 > 10.
  EXPECT_FALSE(reserve(table, {sliding}, kT0 + kMinute + 1).admitted);
}

TEST(CounterTable, AllOrNothingAcrossCounters) {
  CounterTable table;
  Reserved r = reserve(table, {fixed("a", 5, kT0), fixed("b", 0, kT0)}, kT0);
  EXPECT_FALSE(r.admitted);
  EXPECT_EQ(table.size(), 0u);  // "a" was not charged either
  EXPECT_EQ(table.peek(fixed("a", 5, kT0)).current, 0);
}

TEST(CounterTable, KeyNamedTwiceIsCheckedWithTheEarlierCostAndChargedTwice) {
  CounterTable table;
  // 1 + 1 <= 2: admitted, charged twice.
  Reserved r = reserve(table, {fixed("k", 2, kT0), fixed("k", 2, kT0)}, kT0);
  EXPECT_TRUE(r.admitted);
  EXPECT_EQ(table.peek(fixed("k", 2, kT0)).current, 2);
  // The second copy is checked with the first's cost: 0 + 1 + 1 > 1.
  CounterTable other;
  EXPECT_FALSE(reserve(other, {fixed("k", 1, kT0), fixed("k", 1, kT0)}, kT0).admitted);
  EXPECT_EQ(CounterTable::first_denied(std::vector<CounterRequest>{fixed("k", 1, kT0), fixed("k", 1, kT0)},
                                       std::vector<CounterState>{{0, 0}, {0, 0}}, kT0),
            1);
}

TEST(CounterTable, ClockGoingBackKeepsCounts) {
  CounterTable table;
  reserve(table, {fixed("k", 10, kT0 + kMinute, 3)}, kT0 + kMinute);
  // A call from the bucket before: the newer bucket's counts are kept.
  Reserved back = reserve(table, {fixed("k", 10, kT0)}, kT0);
  EXPECT_TRUE(back.admitted);
  EXPECT_EQ(back.states[0].current, 3);
  EXPECT_EQ(back.starts[0], kT0 + kMinute);  // charged in the newer bucket
  EXPECT_EQ(table.peek(fixed("k", 10, kT0 + kMinute)).current, 4);
}

TEST(CounterTable, RollbackOnlyInTheChargedBucketAndNeverBelowZero) {
  CounterTable table;
  Reserved r = reserve(table, {fixed("k", 10, kT0, 2)}, kT0);
  table.rollback("k", r.starts[0], 2);
  EXPECT_EQ(table.peek(fixed("k", 10, kT0)).current, 0);
  table.rollback("k", r.starts[0], 2);  // the table itself clamps at 0 (JS settles each reservation once)
  EXPECT_EQ(table.peek(fixed("k", 10, kT0)).current, 0);
  Reserved old = reserve(table, {fixed("k", 10, kT0, 1)}, kT0);
  reserve(table, {fixed("k", 10, kT0 + kMinute, 1)}, kT0 + kMinute);
  table.rollback("k", old.starts[0], 1);  // its bucket is gone: nothing given back
  EXPECT_EQ(table.peek(fixed("k", 10, kT0 + kMinute)).current, 1);
  table.rollback("missing", kT0, 1);
  EXPECT_EQ(table.size(), 1u);
}

TEST(CounterTable, SweepDropsOldBucketsOnceLarge) {
  CounterTable table;
  std::vector<std::string> keys;
  for (int i = 0; i < 10000; ++i) keys.push_back("k" + std::to_string(i));
  for (const std::string& key : keys) reserve(table, {fixed(key, 10, kT0)}, kT0);
  EXPECT_EQ(table.size(), 10000u);
  // Two windows later every old bucket is too old; the new key stays.
  reserve(table, {fixed("new", 10, kT0 + 2 * kMinute)}, kT0 + 2 * kMinute);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.peek(fixed("new", 10, kT0 + 2 * kMinute)).current, 1);
  // The moved buckets kept their keys: every remaining key finds its counts.
  for (int i = 0; i < 10000; ++i) reserve(table, {fixed(keys[static_cast<std::size_t>(i)], 10, kT0 + 3 * kMinute)}, kT0 + 3 * kMinute);
  EXPECT_EQ(table.size(), 10001u);
  for (int i = 0; i < 10000; i += 997) EXPECT_EQ(table.peek(fixed(keys[static_cast<std::size_t>(i)], 10, kT0 + 3 * kMinute)).current, 1);
  // At most once per second of call time: a key past its windows stays until then.
  reserve(table, {fixed("late", 10, kT0 + 5 * kMinute)}, kT0 + 5 * kMinute);
  EXPECT_EQ(table.size(), 1u);  // everything at kT0 + 3 min is 2 windows old by now
}

TEST(CounterTable, IndexOrdersKeysByTheirBytes) {
  // The index is a tree ordered by compare_bytes (no hash a client's values
  // could be chosen to collide in): keys that share long prefixes, differ
  // only in their last byte or in an embedded NUL, are longer than eight
  // bytes or not, each keep their own count, through inserts in shuffled
  // order and a sweep that moves buckets.
  CounterTable table;
  std::vector<std::string> keys;
  const std::string prefix = "grant:alice|refunds|60000|fixed|args.repo=";
  for (int i = 0; i < 3000; ++i) keys.push_back(prefix + std::to_string(i * 7919 % 3000));
  keys.push_back(prefix + std::string("\0a", 2));
  keys.push_back(prefix + std::string("\0b", 2));
  keys.push_back(prefix);
  keys.push_back("g");
  for (std::size_t i = 0; i < keys.size(); ++i) {
    CounterRequest request = fixed(keys[i], 1e9, kT0, static_cast<double>(i % 5 + 1));
    Reserved r = reserve(table, {request}, kT0);
    ASSERT_TRUE(r.admitted);
    ASSERT_EQ(r.states[0].current, 0) << "a new key read another's count: " << i;
  }
  EXPECT_EQ(table.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(table.peek(fixed(keys[i], 1e9, kT0)).current, static_cast<double>(i % 5 + 1)) << i;
  }
  // 10 000 keys charged ten minutes earlier, then a sweep that drops them all:
  // the live keys keep their counts.
  for (int i = 0; i < 10000; ++i) {
    reserve(table, {fixed("old:" + std::to_string(i), 1e9, kT0 - 10 * kMinute)}, kT0 - 10 * kMinute);
  }
  reserve(table, {fixed("trigger", 1e9, kT0 + kMinute)}, kT0 + kMinute);
  EXPECT_EQ(table.size(), keys.size() + 1);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(table.peek(fixed(keys[i], 1e9, kT0 + kMinute)).previous, static_cast<double>(i % 5 + 1)) << i;
  }
}

}  // namespace
}  // namespace toolgate
