// A worker of bench/js/cold-start.bench.js, run by Miniflare's workerd.
// MODE (a binding): "toolgate" loads the core in its first request, from the
// precompiled module (`loadToolgate({ wasmModule })`), compiles a small policy
// and decides once (`decide` with a MemoryCounterStore: the call has a rate
// limit), timing each step with performance.now() (which advances during
// execution in workerd as Miniflare runs it; the benchmark checks that and
// reports the clock's step); "imports" imports the same modules but answers
// without using them (the baseline for timing from outside).
// cold-start-startup.worker.js is the same with the core loaded and warmed at
// module scope, as worker/workers.js does.
import wasmModule from '../../wasm/dist/toolgate_core.wasm';
import { loadToolgate } from '../../wasm/index.js';
import { coldStartRequest } from './cold-start-request.js';

let requests = 0;
export default {
  async fetch(request, env) {
    requests += 1;
    if (env.MODE !== 'toolgate') return Response.json({ mode: env.MODE, requests });
    return Response.json({ mode: env.MODE, requests, ...(await coldStartRequest(request, () => loadToolgate({ wasmModule }))) });
  },
};
