// A worker of bench/js/cold-start.bench.js that does what worker/workers.js
// does: at module scope, the core loaded and warmed
// (`loadToolgate({ wasmModule, warm: true })`), then the POLICY binding
// (imported from 'cloudflare:workers') compiled and warmed with decisions of
// its first tools against a dropped memory store, so the isolate's startup
// pays for all of it; each request awaits that build and takes its policy
// when the request's POLICY is the same text (else compiles its own, as the
// entry rebuilds its handler), then decides once (cold-start-request.js).
// cold-start-engine.worker.js is the entry before it built the policy at
// startup (the engine only), measured in turn with this one.
import * as workersRuntime from 'cloudflare:workers';
import wasmModule from '../../wasm/dist/toolgate_core.wasm';
import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
import { coldStartRequest } from './cold-start-request.js';

// Timed with Date.now(): performance.now() does not move at module scope in
// workerd; Date.now() does under Miniflare (1 ms steps; production Workers
// freeze both outside requests).
const t0 = Date.now();
const engine = loadToolgate({ wasmModule, warm: true });
let startupMs = null;
let built = { key: null, policy: null };
const WARM_TOOLS = 4; // as worker/workers.js
const startup = engine.then(async (toolgate) => {
  const text = workersRuntime.env?.POLICY;
  if (typeof text !== 'string') return;
  const policy = toolgate.compile(text);
  for (const tool of policy.names.exact.slice(0, WARM_TOOLS)) {
    policy.isHidden(tool);
    const authorization = await policy.authorize({ tool, arguments: {}, grant: { id: 'toolgate-warm-up' }, now: 0 }, { counters: new MemoryCounterStore(), now: 0 });
    await authorization.rollback();
  }
  built = { key: text, policy };
}).finally(() => {
  startupMs = Date.now() - t0;
});
startup.catch(() => {});

let requests = 0;
export default {
  async fetch(request, env) {
    requests += 1;
    const ready = startupMs !== null;
    const policyOf = async (toolgate) => {
      await startup.catch(() => {});
      return built.key === env.POLICY ? { policy: built.policy, owned: false } : { policy: toolgate.compile(env.POLICY), owned: true };
    };
    const timed = await coldStartRequest(request, () => engine, policyOf);
    return Response.json({
      mode: 'startup', requests, engine_ready_before_request: ready, startup_warm_ms: startupMs, policy_built_at_startup: built.key === env.POLICY,
      ...timed,
    });
  },
};
