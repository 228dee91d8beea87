// A worker of bench/js/cold-start.bench.js: the core loaded and warmed at
// module scope (`loadToolgate({ wasmModule, warm: true })`), as
// worker/workers.js did before it also built its handler at startup
// (cold-start-startup.worker.js), so the isolate's startup pays for
// instantiating it and for V8 compiling its functions; each request awaits
// that engine, compiles the small policy and decides once
// (cold-start-request.js). Kept for comparison, measured in turn with it.
import wasmModule from '../../wasm/dist/toolgate_core.wasm';
import { loadToolgate } from '../../wasm/index.js';
import { coldStartRequest } from './cold-start-request.js';

// Timed with Date.now(): performance.now() does not move at module scope in
// workerd; Date.now() does under Miniflare (1 ms steps; production Workers
// freeze both outside requests).
const t0 = Date.now();
const engine = loadToolgate({ wasmModule, warm: true });
let startupMs = null;
engine.then(() => {
  startupMs = Date.now() - t0;
}, () => {});

let requests = 0;
export default {
  async fetch(request) {
    requests += 1;
    const ready = startupMs !== null;
    return Response.json({
      mode: 'engine', requests, engine_ready_before_request: ready, startup_warm_ms: startupMs,
      ...(await coldStartRequest(request, () => engine)),
    });
  },
};
