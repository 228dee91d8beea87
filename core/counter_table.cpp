#include "counter_table.h"

#include <cmath>

// The rare paths (a key's first charge, the sweep) compiled for size in the
// WebAssembly build (the .wasm + glue gzip budget), as evaluate.cpp's cold
// code; the look-up and the checks every reservation runs stay -O2.
#if defined(__EMSCRIPTEN__)
#define TOOLGATE_SMALL __attribute__((minsize, noinline))
#else
#define TOOLGATE_SMALL
#endif

namespace toolgate {

namespace {

// Math.max of two numbers, as JS computes it (the table must give the JS
// store's starts to the last bit): NaN when either is NaN, +0 over -0.
double js_max(double a, double b) {
  if (a != a || b != b) return std::nan("");
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}

double as_double(std::int64_t value) { return static_cast<double>(value); }

// wasm/admission.js estimateCount, operation for operation, in doubles.
double estimate_count(const CounterRequest& request, CounterState state, double now_ms) {
  if (request.algorithm != Algorithm::sliding) return state.current;
  const double window = as_double(request.window_ms);
  const double elapsed = now_ms - as_double(request.bucket_start_ms);
  return state.previous * (window - elapsed) / window + state.current;
}

}  // namespace

std::ptrdiff_t CounterTable::first_denied(std::span<const CounterRequest> requests, std::span<const CounterState> states,
                                          double now_ms) {
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const CounterRequest& request = requests[i];
    double before = 0;
    for (std::size_t j = 0; j < i; ++j) {
      if (requests[j].key == request.key) before += requests[j].cost;
    }
    if (!(estimate_count(request, states[i], now_ms) + before + request.cost <= request.max))
      return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

// MemoryCounterStore#state: the counts at the request's bucket, rolling the
// window forward; a bucket newer than the request's (the clock went back)
// keeps its counts.
CounterState CounterTable::state_of(const CounterRequest& request, const Bucket* bucket) {
  if (!bucket) return {};
  const double start = as_double(request.bucket_start_ms);
  if (bucket->start == start) return {bucket->current, bucket->previous};
  if (bucket->start == start - as_double(request.window_ms)) return {0, bucket->current};
  if (bucket->start > start) return {bucket->current, bucket->previous};
  return {};
}

// One copy of the look-up (reserve() makes two).
__attribute__((noinline)) std::ptrdiff_t CounterTable::find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? -1 : static_cast<std::ptrdiff_t>(it->second);
}

// A new key's bucket. Room first, then the index, then the bucket: an
// allocation that fails (a trap in WebAssembly) leaves the table as it was.
TOOLGATE_SMALL std::size_t CounterTable::insert(std::string_view key) {
  if (buckets_.size() == buckets_.capacity()) buckets_.reserve(buckets_.size() * 2 + 8);
  std::size_t index = buckets_.size();
  auto it = index_.emplace(std::string(key), index).first;
  buckets_.push_back(Bucket{&it->first, 0, 0, 0, 0});
  return index;
}

TOOLGATE_SMALL bool CounterTable::reserve(std::span<const CounterRequest> requests, double now_ms, std::vector<CounterState>& states,
                           std::vector<double>& starts) {
  const std::size_t count = requests.size();
  states.resize(count);
  // Until charged, starts[i] holds the index of the bucket read for request i
  // (-1: none): no third vector.
  starts.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::ptrdiff_t at = find(requests[i].key);
    starts[i] = static_cast<double>(at);
    states[i] = state_of(requests[i], at < 0 ? nullptr : &buckets_[static_cast<std::size_t>(at)]);
  }
  const bool admitted = first_denied(requests, states, now_ms) == -1;
  if (admitted) {
    for (std::size_t i = 0; i < count; ++i) {
      const CounterRequest& request = requests[i];
      bool charged = false;  // by an earlier request of this call with the same key
      for (std::size_t j = 0; j < i && !charged; ++j) charged = requests[j].key == request.key;
      // Only a charge of the same key earlier in this call can have changed
      // the bucket read above (buckets only move in sweep(), below).
      const std::ptrdiff_t at = charged ? find(request.key) : static_cast<std::ptrdiff_t>(starts[i]);
      const double bucket_start = as_double(request.bucket_start_ms);
      double start = bucket_start;
      double current = states[i].current + request.cost;
      std::size_t index;
      if (at < 0) {
        index = insert(request.key);
      } else {
        index = static_cast<std::size_t>(at);
        const Bucket& held = buckets_[index];
        start = js_max(bucket_start, held.start);
        if (charged && held.start == start) current = held.current + request.cost;  // already charged by this call
      }
      Bucket& bucket = buckets_[index];
      bucket.start = start;
      bucket.window = as_double(request.window_ms);
      bucket.current = current;
      bucket.previous = states[i].previous;
      starts[i] = start;
    }
  }
  sweep(now_ms);
  return admitted;
}

void CounterTable::rollback(std::string_view key, double start, double cost) {
  const std::ptrdiff_t at = find(key);
  if (at < 0) return;
  Bucket& bucket = buckets_[static_cast<std::size_t>(at)];
  if (bucket.start == start) bucket.current = js_max(0, bucket.current - cost);
}

CounterState CounterTable::peek(const CounterRequest& request) const {
  const std::ptrdiff_t at = find(request.key);
  return state_of(request, at < 0 ? nullptr : &buckets_[static_cast<std::size_t>(at)]);
}

// MemoryCounterStore#sweep: buckets too old to matter go, at most once per
// second of call time, and only once the table is large (small runs with
// out-of-order simulated clocks keep every count). The sweeping itself is
// rare: out of line and small.
void CounterTable::sweep(double now_ms) {
  if (buckets_.size() < 10000 || now_ms < sweep_at_) return;
  sweep_now(now_ms);
}

// The sweep walks the buckets once: a bucket kept costs a comparison, one
// dropped a look-up and an erase (its place taken by the last bucket, whose
// index follows it). Nothing is copied: a table of many live keys sweeps as
// cheaply as the JS store's Map (rebuilding the kept buckets instead made a
// sweep of 200 000 live keys take 60-90 ms against the Map's 2-4 ms).
TOOLGATE_SMALL void CounterTable::sweep_now(double now_ms) {
  sweep_at_ = now_ms + 1000;
  for (std::size_t i = 0; i < buckets_.size();) {
    const Bucket& bucket = buckets_[i];
    if (!(bucket.start + 2 * bucket.window <= now_ms)) {
      ++i;
      continue;
    }
    index_.erase(index_.find(std::string_view(*bucket.key)));  // frees the key `bucket` points at
    if (i + 1 != buckets_.size()) {
      buckets_[i] = buckets_.back();
      index_.find(std::string_view(*buckets_[i].key))->second = i;
    }
    buckets_.pop_back();
  }
}

}  // namespace toolgate
