// The load loop of the scale benchmarks, in Node (redis-cluster.bench.js, via
// common.js) and inside workerd (do-worker.js): no Node imports.

/**
 * Runs `calls` (an array of thunks answering promises) with at most
 * `concurrency` in flight; resolves to { results, latencies (ms), seconds }.
 */
export async function drive(calls, concurrency) {
  const results = new Array(calls.length);
  const latencies = new Float64Array(calls.length);
  let next = 0;
  const started = performance.now();
  async function lane() {
    while (next < calls.length) {
      const i = next;
      next += 1;
      const t = performance.now();
      results[i] = await calls[i]();
      latencies[i] = performance.now() - t;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, calls.length) }, lane));
  return { results, latencies, seconds: (performance.now() - started) / 1000 };
}
