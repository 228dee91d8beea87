// The Worker that bench/scale/durable-objects.bench.js runs in workerd through
// Miniflare: decisions are made inside the Worker, as the deployed proxy makes
// them (policy.decide() with a DurableObjectCounterStore), against
// ToolgateCounters, the Durable Object class the Workers entry
// (worker/workers.js) exports, re-exported here from the same module.
//
// POST /run     { space, policy, tool, grants, grantPrefix, grantOffset, callsPerGrant, concurrency, now, timeoutMs }
//   -> { decisions, ms, latencies_ms: [...], codes: {code: n}, first_failure, rpcs: {shard: {method: n}} }
//      grants x callsPerGrant decide() calls, round by round, `concurrency` in flight.
// POST /inspect { space, policy, tool, grants, grantPrefix, grantOffset, now }
//   -> { counts: [per grant: its grant counter's current count], shards: {shard: rows held} }
// Errors: { error: { name, message } } with status 500.
//
// Every run names a "space": object names get it as a prefix, so runs never
// share objects. The store's own names (grant:<id>, global:<counter key>) are
// what the RPC log shows.
import wasmModule from '../../wasm/dist/toolgate_core.wasm';
import { loadToolgate } from '../../wasm/index.js';
import { DurableObjectCounterStore } from '../../worker/stores/durable-object.js';
import { drive } from './drive.js';

export { ToolgateCounters } from '../../worker/stores/durable-object.js';

let toolgate = null;
const policies = new Map(); // policy JSON text -> compiled policy

async function policyFor(policy) {
  toolgate ??= await loadToolgate({ wasmModule });
  const text = JSON.stringify(policy);
  if (!policies.has(text)) policies.set(text, toolgate.compile(text));
  return policies.get(text);
}

// The COUNTERS binding as the store sees it, names kept apart per space, and
// every RPC counted per object (shard name) and method.
function countingNamespace(binding, space, rpcs) {
  const names = new WeakMap(); // id -> the store's name for it
  return {
    idFromName(name) {
      const id = binding.idFromName(`${space}|${name}`);
      names.set(id, name);
      return id;
    },
    get(id) {
      const shard = names.get(id);
      const stub = binding.get(id);
      return new Proxy({}, {
        get: (_, method) => {
          if (typeof method !== 'string' || method === 'then') return undefined;
          return (...args) => {
            let counts = rpcs.get(shard);
            if (!counts) rpcs.set(shard, (counts = {}));
            counts[method] = (counts[method] ?? 0) + 1;
            return stub[method](...args);
          };
        },
      });
    },
  };
}

const grantName = (prefix, i) => `${prefix}${String(i).padStart(5, '0')}`;

async function run(body, env, ctx) {
  const policy = await policyFor(body.policy);
  const rpcs = new Map();
  const namespace = countingNamespace(env.COUNTERS, body.space, rpcs);
  const counters = new DurableObjectCounterStore({ namespace, timeoutMs: body.timeoutMs ?? 30_000, waitUntil: (p) => ctx.waitUntil(p) });
  const grants = Array.from({ length: body.grants }, (_, i) => grantName(body.grantPrefix ?? 'grant-', (body.grantOffset ?? 0) + i));
  const calls = [];
  for (let round = 0; round < body.callsPerGrant; round += 1) {
    for (const grant of grants) calls.push({ tool: body.tool, grant, now: body.now + round });
  }
  const { results, latencies, seconds } = await drive(calls.map(({ now, ...call }) => () => policy.decide(call, { counters, now })), body.concurrency);
  const codes = {};
  let firstFailure = null;
  for (const decision of results) {
    codes[decision.code] = (codes[decision.code] ?? 0) + 1;
    if (decision.code !== 'allowed' && decision.code !== 'rate_limited') firstFailure ??= decision.message;
  }
  const ms = seconds * 1000;
  return { decisions: calls.length, ms, latencies_ms: Array.from(latencies), codes, first_failure: firstFailure, rpcs: Object.fromEntries(rpcs) };
}

// Reads back, object by object: each grant's own count, and the rows each
// object holds (ToolgateCounters.size()).
async function inspect(body, env) {
  const policy = await policyFor(body.policy);
  const stubOf = (shard) => env.COUNTERS.get(env.COUNTERS.idFromName(`${body.space}|${shard}`));
  const grants = Array.from({ length: body.grants }, (_, i) => grantName(body.grantPrefix ?? 'grant-', (body.grantOffset ?? 0) + i));
  const shards = {};
  const counts = [];
  for (let i = 0; i < grants.length; i += 200) {
    const batch = grants.slice(i, i + 200);
    const parts = await Promise.all(batch.map(async (grant) => {
      const requests = policy.evaluate({ tool: body.tool, grant }, { now: body.now }).counters;
      const own = requests.filter((r) => r.scope === 'grant');
      const shard = DurableObjectCounterStore.shardOf(own[0]);
      const [states, rows] = await Promise.all([stubOf(shard).peek(own, body.now), stubOf(shard).size()]);
      shards[shard] = rows;
      return states[0].current;
    }));
    counts.push(...parts);
  }
  // The global counters' objects.
  const sample = policy.evaluate({ tool: body.tool, grant: grants[0] }, { now: body.now }).counters;
  const globals = {};
  for (const request of sample.filter((r) => r.scope === 'global')) {
    const shard = DurableObjectCounterStore.shardOf(request);
    shards[shard] = await stubOf(shard).size();
    globals[shard] = (await stubOf(shard).peek([request], body.now))[0].current;
  }
  return { counts, shards, globals };
}

export default {
  async fetch(request, env, ctx) {
    const json = (value, status = 200) => new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } });
    try {
      const body = await request.json();
      const path = new URL(request.url).pathname;
      if (path === '/run') return json({ result: await run(body, env, ctx) });
      if (path === '/inspect') return json({ result: await inspect(body, env) });
      throw new Error(`no route ${path}`);
    } catch (error) {
      return json({ error: { name: error?.name ?? 'Error', message: error?.message ?? String(error) } }, 500);
    }
  },
};
