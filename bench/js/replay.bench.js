// `toolgate replay`'s speed: recorded calls per second through the WebAssembly
// core. The input is an audit log as `toolgate serve --audit-arguments` writes
// it: the typical call (5 arguments, 3 conditions, 1 limit) from 50 grants
// (a seventh of them admins) over a day, each event holding the decision the
// recorded policy (bench/js/policies.js, typicalPolicy) made. The new policy
// lowers the refund threshold (amount > 450 instead of 500 is refused to
// non-admins), so a few % of the decisions change, as a real policy change
// would.
//
// Measured, each the median of --rounds:
//   pipeline   lib/replay.js in this process: the log's lines read (JSON.parse,
//              times, grants) and every call decided again and compared with
//              the recorded decision. The budget's figure.
//   baseline   the same with --baseline: the old policy decided too (two
//              decisions per call).
//   CLI        `toolgate replay --policy NEW audit.jsonl` as a child process on
//              the file: start-up, loading the core, streaming the file,
//              printing the changed calls; wall time.
// calls/s by wall time, and per CPU second (this process's CPU time, steadier
// than wall time on a shared machine). Prints Markdown and writes
// bench/results/replay.{json,md}.
// Run: node bench/js/replay.bench.js [--quick] [--calls N] [--rounds N] [--results DIR]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { MemoryCounterStore, loadToolgate } from '../../wasm/index.js';
import { readRecords, replay } from '../../lib/replay.js';
import { flagValue, median, table, thousands, writeResults } from './measure.js';
import { T0, typicalCall, typicalPolicy } from './policies.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const resultsDir = path.resolve(flagValue(argv, '--results', path.join(root, 'bench/results/')));
const calls = Number(flagValue(argv, '--calls', quick ? 20_000 : 200_000));
const rounds = Number(flagValue(argv, '--rounds', quick ? 2 : 5));
const BUDGET = 100_000;

const toolgate = await loadToolgate();
const recorded = toolgate.compile(typicalPolicy);
const nextDocument = structuredClone(typicalPolicy);
nextDocument.tools.create_refund.deny_if[0].conditions[0].value = 450;
const policy = toolgate.compile(nextDocument);

// The log, with the decisions the recorded policy made (decided here, in order).
const work = mkdtempSync(path.join(tmpdir(), 'toolgate-replay-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const counters = new MemoryCounterStore();
let text = '';
for (let i = 0; i < calls; i++) {
  const now = T0 + Math.floor(i * (86_400_000 / calls));
  const grant = `agent-${i % 50}`;
  const attributes = { role: i % 50 < 7 ? 'admin' : 'support', team: 'payments' };
  const args = { ...typicalCall.arguments, amount: (i * 37) % 700 };
  const decision = await recorded.decide({ tool: typicalCall.tool, arguments: args, grant: { ...attributes, id: grant } }, { counters, now });
  text += `${JSON.stringify({
    time: new Date(now).toISOString(), request_id: i, grant, server: 'default', tool: typicalCall.tool,
    policy_hash: recorded.hash, argument_keys: Object.keys(args), argument_hmac: '5d1c'.repeat(16),
    arguments: args, grant_attributes: attributes,
    decision: decision.decision, code: decision.code, rule: decision.rule,
    ...(decision.decision === 'allow' ? { upstream_status: 200, outcome: 'result' } : {}), latency_ms: 0.4,
  })}\n`;
}
const auditPath = path.join(work, 'audit.jsonl');
const policyPath = path.join(work, 'next.json');
writeFileSync(auditPath, text);
writeFileSync(policyPath, JSON.stringify(nextDocument));

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const parseTime = (value) => toolgate.parseTime(value);

/** Reads the log and replays it `rounds` times; calls/s by wall and by CPU time. */
async function pipeline(baseline) {
  const wall = [];
  const cpu = [];
  const readingCpu = [];
  const decidingCpu = [];
  let last;
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    const cpu0 = cpuMs();
    const { calls: records, skipped } = readRecords(text.split('\n'), { parseTime });
    const cpu1 = cpuMs();
    last = await replay({ policy, baseline, calls: records, skipped });
    wall.push(last.replayed / ((performance.now() - started) / 1000));
    cpu.push(last.replayed / ((cpuMs() - cpu0) / 1000));
    readingCpu.push(last.replayed / ((cpu1 - cpu0) / 1000));
    decidingCpu.push(last.replayed / ((cpuMs() - cpu1) / 1000));
  }
  return {
    calls_per_second: median(wall), calls_per_cpu_second: median(cpu), rounds_calls_per_second: wall, result: last,
    // The two halves: lines read into records, and records decided (the core's part).
    reading_per_cpu_second: median(readingCpu), deciding_per_cpu_second: median(decidingCpu),
  };
}

/** `toolgate replay` on the file, `rounds` times: calls/s by wall time, start-up included. */
async function cli() {
  const wall = [];
  let summary;
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    const child = spawn(process.execPath, [path.join(root, 'bin/toolgate.js'), 'replay', '--policy', policyPath, '--json', auditPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdoutBytes = 0;
    child.stdout.on('data', (chunk) => { stdoutBytes += chunk.length; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const code = await new Promise((resolve) => child.on('close', resolve));
    if (code !== 1) throw new Error(`toolgate replay exited ${code}: ${stderr}`);
    summary = { ...JSON.parse(stderr), stdout_bytes: stdoutBytes };
    wall.push(summary.replayed / ((performance.now() - started) / 1000));
  }
  return { calls_per_second: median(wall), rounds_calls_per_second: wall, summary };
}

const load = loadavg();
const plain = await pipeline(undefined);
const withBaseline = await pipeline(recorded);
const viaCli = await cli();
const { result } = plain;
// The three ways agree on what changed.
if (withBaseline.result.changed.length !== result.changed.length || viaCli.summary.changed !== result.changed.length) {
  throw new Error(`the replays disagree: ${result.changed.length} changed, ${withBaseline.result.changed.length} with --baseline, ${viaCli.summary.changed} by the CLI`);
}

const k = (n) => thousands(Math.round(n));
const results = {
  calls, rounds, load_average_at_start: load, load_average_at_end: loadavg(), node: process.versions.node,
  log_bytes: text.length,
  calls_per_second_median: plain.calls_per_second,
  calls_per_cpu_second_median: plain.calls_per_cpu_second,
  calls_per_second: plain.rounds_calls_per_second,
  reading_per_cpu_second: plain.reading_per_cpu_second,
  deciding_per_cpu_second: plain.deciding_per_cpu_second,
  baseline: { calls_per_second_median: withBaseline.calls_per_second, calls_per_cpu_second_median: withBaseline.calls_per_cpu_second },
  cli: { calls_per_second_median: viaCli.calls_per_second, calls_per_second: viaCli.rounds_calls_per_second, stdout_bytes: viaCli.summary.stdout_bytes },
  changed: result.changed.length, by_change: result.byChange, by_rule: result.byRule,
  budgets: [{
    name: '`toolgate replay` speed, typical policy (WASM core, Node)', target: '≥ 100 000 calls/s',
    measured: `${k(plain.calls_per_second)} calls/s (${k(plain.calls_per_cpu_second)} per CPU second; load average ${load[0].toFixed(2)})`,
    met: plain.calls_per_second >= BUDGET,
  }],
};
const markdown = [
  `Replay of ${k(calls)} audit events (${(text.length / 2 ** 20).toFixed(1)} MiB; typical call: 5 arguments, 3 conditions, 1 limit; 50 grants over a day) through a policy with a lower refund threshold; median of ${rounds} rounds; Node ${process.versions.node}; load average ${load.map((l) => l.toFixed(2)).join(' ')} at the start.`,
  '',
  table(['replay', 'calls/s', 'calls per CPU second'], [
    ['recorded decisions as the baseline (lib/replay.js: reading and deciding)', k(plain.calls_per_second), k(plain.calls_per_cpu_second)],
    ['`--baseline` the old policy (two decisions per call)', k(withBaseline.calls_per_second), k(withBaseline.calls_per_cpu_second)],
    ['`toolgate replay` CLI on the file (start-up, streaming, printing included)', k(viaCli.calls_per_second), '—'],
  ]),
  '',
  `Of the first: reading the lines into records ${k(plain.reading_per_cpu_second)} per CPU second, deciding them and comparing ${k(plain.deciding_per_cpu_second)} per CPU second.`,
  '',
  `Decisions changed: ${k(result.changed.length)} of ${k(result.replayed)} (${Object.entries(result.byChange).map(([c, n]) => `${c} ${n}`).join(', ')}).`,
  '',
  table(['budget', 'target', 'measured', ''], results.budgets.map((b) => [b.name, b.target, b.measured, b.met ? 'met' : '**not met**'])),
].join('\n');
console.log(markdown);
writeResults(resultsDir, 'replay', results, markdown);
