// A counter store's table, in the core: what the JS MemoryCounterStore keeps
// in a Map (wasm/memory-store.js), kept here so that a decision with the
// memory store reserves, finishes and commits in one call into the engine
// (wasm/bindings.cpp, toolgate_decide). Pure: `now` comes in, no clock, no
// I/O, no threads (one table is used by one thread at a time).
//
// Its rule is the one every store shares (wasm/admission.js estimateCount and
// firstDenied; the core's own estimate/admits), step for step, in doubles:
// the JS store and this table give the same admissions, states, charges and
// rollbacks for any sequence of calls (tests/js/counter-table.test.js holds
// them to each other; tests/core/counter_table_test.cpp holds the cases).
//
//  - Each key holds the count of its current fixed bucket and of the one
//    before it ({start, window, current, previous}).
//  - A reservation is all or nothing across the call's counters; a key named
//    twice in one call is checked with the earlier copies' costs added and
//    charged twice.
//  - A clock that went back (a bucket older than the key's) keeps the counts.
//  - A rollback gives back a charge only while its bucket is still the one it
//    was charged in, never below 0; JS settles each reservation once.
//  - Old buckets are swept as MemoryCounterStore#sweep does: once the table
//    holds 10 000 keys, at most once per second of call time.
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "evaluate.h"
#include "plan.h"
#include "value.h"

namespace toolgate {

class CounterTable {
 public:
  // Reserves all of `requests` at `now_ms`, or none: true when admitted.
  // `states` gets what each key held before this call (one per request, at
  // its bucket), `starts` the bucket each was charged in (when admitted;
  // rollback() takes it back).
  //
  // Requests are the core's CounterRequests; their integer times are read
  // as doubles, converted as the output area converts them for JS, so the
  // table and a JS store see the same numbers (windows can pass 2^53 ms).
  bool reserve(std::span<const CounterRequest> requests, double now_ms, std::vector<CounterState>& states,
               std::vector<double>& starts);

  // Gives back `cost` charged to `key` in the bucket starting at `start`, if
  // that is still the key's bucket (never below 0).
  void rollback(std::string_view key, double start, double cost);

  // What `request`'s key holds at its bucket, charging nothing.
  CounterState peek(const CounterRequest& request) const;

  std::size_t size() const { return buckets_.size(); }

  // The rule shared by every store (wasm/admission.js firstDenied): the index
  // of the first request that does not fit, or -1.
  static std::ptrdiff_t first_denied(std::span<const CounterRequest> requests, std::span<const CounterState> states,
                                     double now_ms);

 private:
  struct Bucket {
    const std::string* key;  // the index's key (node-based: it does not move)
    double start, window, current, previous;
  };

  static CounterState state_of(const CounterRequest& request, const Bucket* bucket);
  std::ptrdiff_t find(std::string_view key) const;
  std::size_t insert(std::string_view key);
  void sweep(double now_ms);
  void sweep_now(double now_ms);

  // Orders keys by their bytes (compare_bytes: eight at a time).
  struct KeyOrder {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return compare_bytes(a, b) < 0; }
  };
  // key -> index in buckets_. Ordered, not hashed: counter keys hold what
  // clients send (a limit's `key` value, up to 64 bytes as written), and an
  // unkeyed hash (std::hash on a 32-bit target is MurmurHash2 without a
  // seed) lets anyone who knows the key format compute values that share one
  // bucket, so that every look-up walks them. A tree costs O(log n)
  // comparisons whatever the keys, and needs no random key (which a Node
  // cold start would pay for loading WebCrypto, and a Worker's global scope
  // refuses).
  std::map<std::string, std::size_t, KeyOrder> index_;
  std::vector<Bucket> buckets_;
  double sweep_at_ = 0;
};

}  // namespace toolgate
