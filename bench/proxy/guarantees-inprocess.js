// The per-call work of SECURITY.md's guarantees, in process, without HTTP
// or the core: what the whole-process figures (profile-diff.js) cannot
// resolve at a few µs. For the typical call (./typical-call.js) and the bench
// upstream's answer to it: the duplicate-key and depth scan of both
// (worker/json-check.js), the handler's seven reads of a fresh upstream
// answer's headers (worker/node-transport.js upstreamHeaders, or fetch's
// Headers where a checkout has none), the audit event's line (worker/audit.js
// eventLine), the arguments' canonical JSON and their HMAC (NODE_SHA256.hmac,
// worker/node.js).
//
//   node bench/proxy/guarantees-inprocess.js [--baseline DIR] [--rounds N] [--calls N]
//
// --baseline DIR: another checkout (with node_modules, e.g. a symlink) measured
// beside this one, interleaved round by round. Prints, per case and checkout,
// the least time per call over the rounds (the least is the figure least
// disturbed by other processes), in µs, with `uptime`'s load average.
import { once } from 'node:events';
import { createServer } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { BODY } from './typical-call.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { values: flags } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '9' },
    calls: { type: 'string', default: '100000' },
  },
});
const ROUNDS = Number(flags.rounds);
const CALLS = Number(flags.calls);
if (!(Number.isInteger(ROUNDS) && ROUNDS > 0)) throw new Error(`--rounds must be a positive integer, not ${flags.rounds}`);
if (!(Number.isInteger(CALLS) && CALLS > 0)) throw new Error(`--calls must be a positive integer, not ${flags.calls}`);

const ANSWER = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'ran create_refund' }], isError: false } });
const ARGS = JSON.parse(BODY).params.arguments;
// The typical call's audit event as the gate and the exchange complete it.
const EVENT = {
  time: '2026-12-07T23:00:00.000Z', request_id: 1, grant: 'agent', server: 'default', tool: 'create_refund',
  policy_hash: `sha256:${'0123456789abcdef'.repeat(4)}`, argument_keys: Object.keys(ARGS), argument_hmac: 'q3Vd0s8cVbqS0gQm2Wc6JHjQ9vYpR1tq8-UJwVg1j2E',
  decision: 'allow', code: 'allowed', rule: 'tools.create_refund', upstream_status: 200, outcome: 'result', latency_ms: 0.512, quota: 'kept',
};
const AUDIT_KEY = `toolgate audit key\n${'k'.repeat(32)}`;
const HEADER_READS = ['content-type', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'cache-control', 'retry-after', 'content-type'];

// An upstream answering with the bench upstream's headers, for fresh answers.
const upstream = createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
  res.end(ANSWER);
}).listen(0, '127.0.0.1');
await once(upstream, 'listening');
const upstreamUrl = `http://127.0.0.1:${upstream.address().port}/mcp`;

async function checkout(dir) {
  const load = (path) => import(pathToFileURL(join(dir, path)).href);
  const [{ findJsonProblem }, audit, node, transportModule] = await Promise.all([
    load('worker/json-check.js'), load('worker/audit.js'), load('worker/node.js'), load('worker/node-transport.js'),
  ]);
  const transport = transportModule.createNodeTransport();
  const fieldsOf = (response) => transportModule.upstreamHeaders?.(response) ?? response.headers;
  return {
    dir,
    close: () => transport.close(),
    cases: {
      'duplicate-key scan, request + answer': () => {
        let found = 0;
        for (let i = 0; i < CALLS; i++) if (findJsonProblem(BODY) !== null || findJsonProblem(ANSWER) !== null) found++;
        return found;
      },
      // Fresh answers (fetched before the clock starts): what a call reads.
      'seven reads of an answer\'s headers': async () => {
        const n = Math.max(1, Math.floor(CALLS / 50));
        const answers = [];
        for (let i = 0; i < n; i++) {
          const response = await transport(upstreamUrl, { method: 'POST', body: BODY });
          await response.arrayBuffer();
          answers.push(response);
        }
        return { n, run: () => {
          let seen = 0;
          for (const response of answers) {
            const fields = fieldsOf(response);
            for (const name of HEADER_READS) if (fields.get(name) !== null) seen++;
          }
          return seen;
        } };
      },
      'audit line (eventLine)': () => {
        let length = 0;
        for (let i = 0; i < CALLS; i++) length += audit.eventLine(EVENT).length;
        return length;
      },
      'canonical JSON of the arguments': () => {
        let length = 0;
        for (let i = 0; i < CALLS; i++) length += audit.canonicalJson(ARGS).length;
        return length;
      },
      'argument HMAC (canonical JSON + HMAC)': () => {
        let length = 0;
        for (let i = 0; i < CALLS; i++) length += node.NODE_SHA256.hmac(AUDIT_KEY, audit.canonicalJson(ARGS)).length;
        return length;
      },
    },
  };
}

// µs per call of one case: a function timed over CALLS calls, or an async
// one that prepares { n, run } and is timed over n.
async function time(fn) {
  const prepared = fn.constructor.name === 'AsyncFunction' ? await fn() : null;
  const started = process.hrtime.bigint();
  if (prepared) prepared.run();
  else fn();
  return Number(process.hrtime.bigint() - started) / 1000 / (prepared ? prepared.n : CALLS);
}

const checkouts = [await checkout(root)];
if (flags.baseline) checkouts.push(await checkout(flags.baseline));
const least = new Map(); // `${case}\0${index of the checkout}` -> µs
const loadBefore = loadavg();
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of Object.keys(checkouts[0].cases)) {
      // Alternate which checkout goes first, round by round.
      for (const index of round % 2 === 0 ? checkouts.keys() : [...checkouts.keys()].reverse()) {
        const us = await time(checkouts[index].cases[name]);
        const key = `${name}\0${index}`;
        least.set(key, Math.min(least.get(key) ?? Infinity, us));
      }
    }
  }
} finally {
  for (const one of checkouts) await one.close();
  upstream.close();
}

const names = checkouts.map((one, i) => (i === 0 ? 'this checkout' : `baseline (${one.dir})`));
console.log(`The guarantees' per-call work in process, least of ${ROUNDS} interleaved rounds of ${CALLS} calls (µs a call); load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} → ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
console.log(`| case | ${names.join(' | ')} |`);
console.log(`|---|${names.map(() => '---').join('|')}|`);
for (const name of Object.keys(checkouts[0].cases)) {
  console.log(`| ${name} | ${checkouts.map((_, index) => least.get(`${name}\0${index}`).toFixed(3)).join(' | ')} |`);
}
