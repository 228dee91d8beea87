// The decision matrix for the WebAssembly core through the public JS API
// (loadToolgate, compile, decide with a MemoryCounterStore): policy size x
// argument count, each condition operator, fixed and sliding limits. The same
// policies and calls as bench/native/core_bench.cpp (bench/js/policies.js).
// Prints Markdown; writes bench/results/core-matrix.{json,md}.
//
//   node bench/js/matrix.bench.js [--quick] [--sizes 1,100,10000] [--args 0,5,50]
//                                 [--seconds S] [--results DIR]
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
import { flagValue, measure, table, thousands, writeResults } from './measure.js';
import {
  SPEC_OPERATORS, limitsPolicy, matrixCall, matrixPolicy, operatorCall, operatorConditions, singleConditionPolicy, typicalCall,
} from './policies.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const list = (name, fallback) => flagValue(argv, name, fallback).split(',').filter(Boolean).map(Number);
const sizes = list('--sizes', '1,100,10000');
const argCounts = list('--args', '0,5,50');
const seconds = Number(flagValue(argv, '--seconds', quick ? '0.05' : '0.5'));
const resultsDir = path.resolve(flagValue(argv, '--results', fileURLToPath(new URL('../results/', import.meta.url))));
const timing = { seconds, minBatches: quick ? 20 : 200, warmup: quick ? 0.02 : 0.1, batch: 20 };

const toolgate = await loadToolgate();

async function decideCase(name, group, policyText, call, expect = 'allowed') {
  const policy = toolgate.compile(policyText);
  const counters = new MemoryCounterStore();
  const options = { counters };
  const first = await policy.decide(call, options);
  if (first.code !== expect) throw new Error(`${name}: decided ${first.code} (${first.message}), expected ${expect}`);
  const result = await measure(() => policy.decide(call, options), timing);
  policy.dispose();
  process.stderr.write('.');
  return { name, group, ...result };
}

const cases = [];
for (const tools of sizes) {
  const text = matrixPolicy(tools);
  for (const count of argCounts) {
    cases.push(await decideCase(`matrix/tools:${tools}/args:${count}`, 'matrix', text, matrixCall(tools, count)));
  }
}
const missing = SPEC_OPERATORS.filter((op) => !operatorConditions[op]);
if (missing.length) throw new Error(`no benchmark for operators ${missing.join(', ')}`);
for (const [name, condition] of Object.entries(operatorConditions)) {
  cases.push(await decideCase(`operator/${name}`, 'operator', singleConditionPolicy(condition), { ...operatorCall }));
}
for (const algorithm of ['fixed', 'sliding']) {
  for (const count of [1, 3]) {
    const call = { ...typicalCall, tool: 'create_refund' };
    cases.push(await decideCase(`limits/${algorithm}/limits:${count}`, 'limits', limitsPolicy(algorithm, count), call));
  }
}
process.stderr.write('\n');

const f = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
const rows = (group) => cases.filter((c) => c.group === group)
  .map((c) => [c.name.slice(c.name.indexOf('/') + 1), f(c.p50_us), f(c.p99_us), thousands(c.decisions_per_s)]);
const header = (first) => [first, 'p50 µs', 'p99 µs', 'decisions/s'];
const note = `Node ${process.versions.node}, \`decide\` through the public JS API with a \`MemoryCounterStore\`; `
  + `each sample times a batch of ${timing.batch} sequential awaited calls (p50/p99 of batch time / ${timing.batch}); `
  + `decisions/s = 1 / mean. Policies and calls as in \`bench/native/core_bench.cpp\`.`;
const markdown = [
  '### WebAssembly decision matrix (JS API)',
  '',
  note,
  '',
  'Policy size × arguments: every tool has a `deny_if` entry with 3 conditions on `args.a0..a2` and a fixed limit; the call goes to the tool in the middle.',
  '',
  table(header('tools / arguments'), rows('matrix')),
  '',
  'One condition per operator (none holds, so every operator runs to the end), typical call plus a path and a 5-element list:',
  '',
  table(header('operator'), rows('operator')),
  '',
  'Limits (never reached), the counters in the memory store:',
  '',
  table(header('algorithm / limits'), rows('limits')),
].join('\n');
console.log(markdown);
writeResults(resultsDir, 'core-matrix', {
  config: { node: process.versions.node, quick, sizes, arguments: argCounts, ...timing },
  cases,
  budgets: [],
}, markdown);
