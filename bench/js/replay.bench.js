// `toolgate replay`'s speed: recorded calls per second through the WebAssembly
// core (lib/replay.js: read the audit lines, decide each call in recorded time
// with memory counters, compare with the recorded decision). The input is
// audit events as `toolgate serve --audit-arguments` writes them, for the
// typical policy (5 arguments, 3 conditions, 1 limit), from 50 grants over a
// day; the new policy tightens the limit so some decisions change. Prints
// Markdown and writes bench/results/replay.{json,md}.
// Run: node bench/js/replay.bench.js [--quick] [--results DIR]
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadToolgate } from '../../wasm/index.js';
import { readRecords, replay } from '../../lib/replay.js';
import { flagValue, table, thousands, writeResults } from './measure.js';
import { T0, typicalCall, typicalPolicy } from './policies.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const resultsDir = path.resolve(flagValue(argv, '--results', fileURLToPath(new URL('../results/', import.meta.url))));
const calls = quick ? 20_000 : 200_000;
const rounds = quick ? 2 : 5;

const toolgate = await loadToolgate();
// The new policy: at most 500 refunds a minute per grant (the recorded one allowed 1e9).
const next = structuredClone(typicalPolicy);
next.tools.create_refund.limits = [{ counter: 'refunds', window: 'minute', max: 500, scope: 'grant' }];
const policy = toolgate.compile(next);

const lines = [];
for (let i = 0; i < calls; i++) {
  const now = T0 + Math.floor(i * (86_400_000 / calls));
  lines.push(JSON.stringify({
    time: new Date(now).toISOString(), request_id: i, grant: `agent-${i % 50}`, server: 'default', tool: typicalCall.tool,
    policy_hash: 'recorded', argument_keys: Object.keys(typicalCall.arguments), argument_hmac: 'x',
    arguments: { ...typicalCall.arguments, amount: i % 700 }, grant_attributes: { role: i % 7 === 0 ? 'admin' : 'support' },
    decision: 'allow', code: 'allowed', rule: '/tools/create_refund', upstream_status: 200, outcome: 'result', latency_ms: 1,
  }));
}

const parseTime = (value) => toolgate.parseTime(value);
const samples = [];
let last;
for (let round = 0; round < rounds; round++) {
  const started = performance.now();
  const { calls: records, skipped } = readRecords(lines, { parseTime });
  last = await replay({ policy, calls: records, skipped });
  samples.push(calls / ((performance.now() - started) / 1000));
}
samples.sort((a, b) => a - b);
const median = samples[Math.floor(samples.length / 2)];

const results = {
  calls, rounds, calls_per_second_median: median, calls_per_second: samples,
  changed: last.changed.length, by_change: last.byChange,
  budgets: [{
    name: '`toolgate replay` speed, typical policy (WASM core, Node)', target: '≥ 100 000 calls/s',
    measured: `${thousands(Math.round(median))} calls/s`, met: median >= 100_000,
  }],
};
const markdown = [
  `Replay of ${thousands(calls)} recorded audit events (typical call: 5 arguments, 3 conditions, 1 limit; 50 grants over a day) through a policy with a tighter limit, ${rounds} rounds, reading and deciding included; Node ${process.versions.node}.`,
  '',
  table(['figure', 'value'], [
    ['calls/s (median)', thousands(Math.round(median))],
    ['calls/s (min – max)', `${thousands(Math.round(samples[0]))} – ${thousands(Math.round(samples.at(-1)))}`],
    ['decisions changed', `${thousands(last.changed.length)} (${Object.entries(last.byChange).map(([k, v]) => `${k} ${v}`).join(', ')})`],
  ]),
  '',
  table(['budget', 'target', 'measured', ''], results.budgets.map((b) => [b.name, b.target, b.measured, b.met ? 'met' : '**not met**'])),
].join('\n');
console.log(markdown);
writeResults(resultsDir, 'replay', results, markdown);
