// The worker of bench/workerd/cold-start.bench.js, run by Miniflare's workerd.
// MODE (a binding): "toolgate" loads the core from the precompiled module,
// compiles a small policy and decides once per request (`decide` with a
// MemoryCounterStore: the call has a rate limit), timing each step with
// performance.now() (which advances during execution in workerd as Miniflare
// runs it; the benchmark checks that and reports the clock's step); "imports"
// imports the same modules but answers without using them (the baseline for
// timing from outside).
import wasmModule from '../../wasm/dist/toolgate_core.wasm';
import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';

const POLICY = JSON.stringify({
  version: '1',
  default: 'deny',
  tools: { run: { rate_limit: '10/minute' }, read_file: {}, delete_file: { action: 'deny' } },
});
const CALL = { tool: 'run', arguments: {}, grant: 'alice', now: Date.UTC(2026, 0, 1) };

// The smallest step performance.now() takes, over 5 steps (busy-waits at most
// ~50 ms; 0 when the clock does not move while the worker runs).
function clockStep() {
  let smallest = Infinity;
  const begin = performance.now();
  let last = begin;
  // Bounded by iterations too: a frozen clock never reaches 50 ms.
  for (let steps = 0, spins = 0; steps < 5 && performance.now() - begin < 50 && spins < 1e7; spins += 1) {
    const now = performance.now();
    if (now !== last) {
      smallest = Math.min(smallest, now - last);
      last = now;
      steps += 1;
    }
  }
  return Number.isFinite(smallest) ? smallest : 0;
}

let requests = 0;
export default {
  async fetch(request, env) {
    requests += 1;
    if (env.MODE !== 'toolgate') return Response.json({ mode: env.MODE, requests });
    const t0 = performance.now();
    const toolgate = await loadToolgate({ wasmModule });
    const t1 = performance.now();
    const policy = toolgate.compile(POLICY);
    const t2 = performance.now();
    const decision = await policy.decide(CALL, { counters: new MemoryCounterStore() });
    const t3 = performance.now();
    policy.dispose();
    return Response.json({
      mode: env.MODE,
      requests,
      decision: decision.code ?? (decision.pending ? 'pending' : 'unknown'),
      instantiate_ms: t1 - t0,
      compile_ms: t2 - t1,
      first_decision_ms: t3 - t2,
      total_ms: t3 - t0,
      clock_step_ms: new URL(request.url).searchParams.has('clock') ? clockStep() : null,
    });
  },
};
