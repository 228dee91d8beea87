// Where a JS API decision spends its time: runs `policy.decide()` in a loop
// under V8's CPU profiler (what `node --cpu-prof` records, started through
// node:inspector around the loop only, so loading and warm-up are not in it)
// and prints the self time of the profile grouped by where the code lives (the
// call encoder, the façade, the boundary decoder, the memory store, the
// WebAssembly core, garbage collection, ...) and its heaviest functions.
// WebAssembly functions are named when the .wasm was built with
// TOOLGATE_WASM_EXTRA_LINK=--profiling-funcs into another TOOLGATE_WASM_OUTPUT_DIR;
// pass that folder as --wasm DIR (the façade is copied next to that build,
// as its glue must match its .wasm).
// Run: node bench/js/decide-profile.js [--case typical|deny] [--calls N] [--top N] [--wasm DIR] [--save FILE]
import { cpSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { flagValue, table } from './measure.js';
import { T0, typicalCall, typicalPolicy } from './policies.js';

const argv = process.argv.slice(2);
const which = flagValue(argv, '--case', 'typical');
const calls = Number(flagValue(argv, '--calls', '300000'));
const top = Number(flagValue(argv, '--top', '15'));
const wasmDir = flagValue(argv, '--wasm', null);
const save = flagValue(argv, '--save', null);

let facade = new URL('../../wasm/index.js', import.meta.url);
if (wasmDir) {
  const copy = path.join(mkdtempSync(path.join(tmpdir(), 'decide-profile-')), 'wasm');
  const source = fileURLToPath(new URL('../../wasm/', import.meta.url));
  for (const file of readdirSync(source).filter((f) => f.endsWith('.js'))) cpSync(path.join(source, file), path.join(copy, file));
  cpSync(path.resolve(wasmDir), path.join(copy, 'dist'), { recursive: true });
  facade = pathToFileURL(path.join(copy, 'index.js'));
}
const { loadToolgate, MemoryCounterStore } = await import(facade);
const toolgate = await loadToolgate();
const policy = toolgate.compile(typicalPolicy);
const counters = new MemoryCounterStore();
const call = which === 'deny' ? { tool: 'unknown_tool', arguments: {}, now: T0 } : typicalCall;
const options = { counters };
for (let i = 0; i < 50000; i++) await policy.decide(call, options);

const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 100 });
await session.post('Profiler.start');
const cpuStart = process.cpuUsage();
for (let i = 0; i < calls; i++) await policy.decide(call, options);
const cpuUsed = process.cpuUsage(cpuStart);
const { profile } = await session.post('Profiler.stop');
session.disconnect();
if (save) writeFileSync(save, JSON.stringify(profile));
const cpuPerCall = (cpuUsed.user + cpuUsed.system) / calls;

// Self time per node: the samples that landed in it, times the interval.
const selfUs = new Map(profile.nodes.map((n) => [n.id, 0]));
for (let i = 0; i < profile.samples.length; i++) {
  selfUs.set(profile.samples[i], selfUs.get(profile.samples[i]) + (profile.timeDeltas[i] ?? 0));
}
const groupOf = ({ functionName, url }) => {
  if (url.endsWith('/wasm/call-encoder.js')) return 'call encoder (wasm/call-encoder.js)';
  if (url.endsWith('/wasm/index.js')) return 'façade (wasm/index.js)';
  if (url.endsWith('/wasm/boundary-layout.js')) return 'boundary decoder (wasm/boundary-layout.js)';
  if (url.endsWith('/wasm/memory-store.js') || url.endsWith('/wasm/admission.js')) return 'memory store (memory-store.js, admission.js)';
  if (url.endsWith('/toolgate_core.mjs')) return 'Emscripten glue';
  if (functionName.startsWith('wasm-function') || functionName.startsWith('$') || url.startsWith('wasm://')) return 'WebAssembly core';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(idle)' || functionName === '(root)') return functionName;
  if (url.endsWith('/bench/js/decide-profile.js')) return 'the loop';
  if (functionName === '(program)') return '(program): V8 itself, outside JS and WebAssembly';
  return url ? `other JS (${path.basename(url)})` : `native (${functionName || 'anonymous'})`;
};
const groups = new Map();
const functions = new Map();
let total = 0;
for (const node of profile.nodes) {
  const us = selfUs.get(node.id);
  if (!us) continue;
  total += us;
  const group = groupOf(node.callFrame);
  groups.set(group, (groups.get(group) ?? 0) + us);
  const name = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url ? `${path.basename(node.callFrame.url)}:${node.callFrame.lineNumber + 1}` : ''}`.trim();
  functions.set(name, (functions.get(name) ?? 0) + us);
}
const pct = (us) => `${((100 * us) / total).toFixed(1)} %`;
const perCall = (us) => `${((us / total) * cpuPerCall).toFixed(3)} µs`;
const sorted = (map) => [...map].sort((a, b) => b[1] - a[1]);
console.log(`### decide() profile: ${which}, ${calls} calls, CPU ${cpuPerCall.toFixed(2)} µs per call (Node ${process.versions.node})\n`);
console.log(table(['where (self time)', 'share', 'per call'], sorted(groups).map(([g, us]) => [g, pct(us), perCall(us)])));
console.log();
console.log(table(['function (self time)', 'share'], sorted(functions).slice(0, top).map(([f, us]) => [`\`${f}\``, pct(us)])));
