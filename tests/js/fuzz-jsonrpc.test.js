// The proxy's JSON-RPC gate under a bounded random and mutational fuzz loop
// (tests/fuzz/jsonrpc.fuzz.js): createHandler() in front of a fake upstream,
// fed valid, mutated and hostile bodies. It must never throw, always answer
// JSON-RPC, never forward a tools/call the policy denies or a body with
// duplicate keys, and never show a hidden tool. FUZZ_JSONRPC_ITERATIONS sets
// the count (default 3000, about 10 s); `node tests/fuzz/jsonrpc.fuzz.js N`
// runs longer.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fuzzJsonRpc } from '../fuzz/jsonrpc.fuzz.js';

const iterations = Number(process.env.FUZZ_JSONRPC_ITERATIONS ?? 3000);

test(`${iterations} fuzzed JSON-RPC requests through the proxy's handler keep every invariant`, { timeout: 300_000 }, async () => {
  const stats = await fuzzJsonRpc({ iterations, seed: process.env.FUZZ_JSONRPC_SEED ?? '1' });
  assert.equal(stats.requests, iterations);
  // The loop must reach the interesting paths, not only refusals.
  assert.ok(stats.forwardedCalls > iterations / 50, `only ${stats.forwardedCalls} tools/call forwarded`);
  assert.ok(stats.statuses[400] > 0 && stats.statuses[200] > 0, JSON.stringify(stats.statuses));
});
