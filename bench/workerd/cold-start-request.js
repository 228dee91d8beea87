// What each request of the cold-start workers does: get the engine (load it,
// or await the one loaded at startup), get the policy (compile it, or take the
// one compiled at startup) and decide one call, timing each step with
// performance.now().
import { MemoryCounterStore } from '../../wasm/index.js';

// The policy (the POLICY binding of the benchmark's workers) and the call.
export const POLICY = JSON.stringify({
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

// `engine()` gives the engine; `policyOf(toolgate)` the policy to decide with
// and whether this request owns it (compiled here: disposed after).
const compileHere = (toolgate) => ({ policy: toolgate.compile(POLICY), owned: true });

export async function coldStartRequest(request, engine, policyOf = compileHere) {
  const t0 = performance.now();
  const toolgate = await engine();
  const t1 = performance.now();
  const { policy, owned } = await policyOf(toolgate);
  const t2 = performance.now();
  const decision = await policy.decide(CALL, { counters: new MemoryCounterStore() });
  const t3 = performance.now();
  if (owned) policy.dispose();
  return {
    decision: decision.code ?? (decision.pending ? 'pending' : 'unknown'),
    instantiate_ms: t1 - t0,
    compile_ms: t2 - t1,
    first_decision_ms: t3 - t2,
    total_ms: t3 - t0,
    clock_step_ms: new URL(request.url).searchParams.has('clock') ? clockStep() : null,
  };
}
