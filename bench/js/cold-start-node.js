// One cold start in this (fresh) Node process, for bench/js/cold-start.bench.js:
// each phase timed apart, wall clock and the process's CPU time. Prints JSON.
//
//   node bench/js/cold-start-node.js [--stop-after PHASE] [--warm]
//
// Phases: import (the façade and the glue, JS only), read (the .wasm's bytes),
// compile (WebAssembly.compile), instantiate (loadToolgate({ wasmModule }): the
// instance, the glue's start-up, embind's registrations), policy (compile a
// small policy), first (the first decide(), memory counter store), second (the
// same call again). --stop-after ends after a phase (the benchmark counts what
// V8 compiled up to there); --warm passes `warm: true` to loadToolgate.
const argv = process.argv.slice(2);
const stopAfter = argv.includes('--stop-after') ? argv[argv.indexOf('--stop-after') + 1] : null;
const warm = argv.includes('--warm');

const cpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const phases = {};
let last = { wall: performance.now(), cpu: cpu() };
const done = (name) => {
  const now = { wall: performance.now(), cpu: cpu() };
  phases[name] = { wall_ms: now.wall - last.wall, cpu_ms: now.cpu - last.cpu };
  last = now;
  if (name === stopAfter) {
    console.log(JSON.stringify({ phases }));
    process.exit(0);
  }
};

const { loadToolgate, MemoryCounterStore } = await import('../../wasm/index.js');
const { readFile } = await import('node:fs/promises');
done('import');
const bytes = await readFile(new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url));
done('read');
const wasmModule = await WebAssembly.compile(bytes);
done('compile');
const toolgate = await loadToolgate({ wasmModule, warm });
done('instantiate');
const policy = toolgate.compile(JSON.stringify({ version: '1', default: 'deny', tools: { run: { rate_limit: '10/minute' }, read_file: {}, delete_file: { action: 'deny' } } }));
done('policy');
const call = { tool: 'run', arguments: {}, grant: 'alice', now: Date.UTC(2026, 0, 1) };
const decision = await policy.decide(call, { counters: new MemoryCounterStore() });
done('first');
await policy.decide(call, { counters: new MemoryCounterStore() });
done('second');
console.log(JSON.stringify({ phases, decision: decision.decision, wasm_bytes: bytes.length }));
