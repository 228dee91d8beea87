#!/usr/bin/env node
// Writes the seed corpora in tests/fuzz/corpus/<target>/ from the project's
// own inputs: examples/*.json and their calls, the spec's example, policies
// from the differential generator, the regex patterns the tests use, and
// pending calls as the WebAssembly finish() receives them. Rerun after the
// examples change: node tests/fuzz/seed-corpus.js
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadToolgate } from '../../wasm/index.js';
import { finishInput, generateCase } from '../differential/generate.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const corpus = (target) => path.join(here, 'corpus', target);

const seeds = { policy: new Map(), evaluate: new Map(), regex: new Map(), wire: new Map() };
const add = (target, name, content) => {
  const bytes = Buffer.from(content);
  const hash = createHash('sha1').update(bytes).digest('hex').slice(0, 10);
  seeds[target].set(`${name}-${hash}`, bytes);
};

// --- policies ---------------------------------------------------------------
const examples = readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.json')).sort();
const exampleTexts = examples.map((f) => readFileSync(path.join(root, 'examples', f), 'utf8'));
examples.forEach((f, i) => add('policy', `example-${f.replace(/\.json$/, '')}`, exampleTexts[i]));
add('policy', 'spec', '{ "version": "1", "default": "deny",\n  "tools": { "run": { "limits": [ { "counter": "run_rate", "window": "minute", "max": 10, "scope": "grant" } ] } } }\n');
add('policy', 'trailing-comma', '{"version":"1","tools":{"a":{},}}');
add('policy', 'duplicate-key', '{"version":"1","tools":{"a":{}},"tools":{"b":{}}}');
add('policy', 'deep', `${'['.repeat(200)}${']'.repeat(200)}`);
add('policy', 'typo', '{"version":"1","default":"deny","tools":{"a":{"deny_iff":[],"limits":[{"window":"fortnight","max":0,"cost":1,"cost_from":"x"}]}}}');
add('policy', 'bad-regex', '{"version":"1","tools":{"a":{"args":{"type":"object","properties":{"p":{"pattern":"(?=x)\\\\1"}}}}}}');
const generated = [];
for (let i = 0; generated.length < 24 && i < 500; i++) {
  const c = generateCase('seed-corpus', i);
  generated.push(c);
  if (i % 2 === 0) add('policy', `generated-${i}`, c.policy);
}

// --- evaluate: a fixed policy (selector byte) or a one-line policy, a call, store bytes
// The fixed policies are the three in fuzz_evaluate.cpp, then examples/*.json sorted.
const FIXED_INLINE = 3;
const fixedCount = FIXED_INLINE + examples.length;
const selector = (index) => {
  for (let c = 0x30; c < 0x7f; c++) if (c !== 0x7b && c % fixedCount === index) return String.fromCharCode(c);
  throw new Error('no selector');
};
const storeBytes = '\x00\x00\x01\x9b\x8e\x5a\x00\x00\x01\x01\x05\x03\x02\x04\x06';
examples.forEach((f, i) => {
  const calls = path.join(root, 'examples', f.replace(/\.json$/, '.calls.jsonl'));
  let lines = [];
  try {
    lines = readFileSync(calls, 'utf8').split('\n').filter((l) => l.trim() && !l.includes('"approve"'));
  } catch {
    // no calls for this example
  }
  lines.slice(0, 6).forEach((line, j) => add('evaluate', `example-${f.replace(/\.json$/, '')}-${j}`, `${selector(FIXED_INLINE + i)}${line}\n${storeBytes}`));
});
const inlineCalls = [
  [0, { tool: 'run', arguments: { cmd: 'ls', n: 3, path: '/tmp/a.pem', tags: ['prod'], user: 'c', force: true, list: [{ name: 'x' }] }, grant: { id: 'alice', role: 'dev', tier: 3 } }],
  [0, { tool: 'x_fast', grant: 'bob' }],
  [0, { tool: 'secret-thing' }],
  [1, { tool: 'pay', arguments: { amount: 250.5, currency: 'EUR', memo: 'rent' }, grant: { id: 'alice', team: 'red' }, now: '2026-01-01T23:59:59.999Z' }],
  [1, { tool: 'deploy', arguments: { env: 'prod', replicas: 2, regions: ['eu-west-1'], dry: true } }],
  [1, { tool: 'search', arguments: { q: 'x' }, now: 1767225600999 }],
  [2, { tool: 'db.read_x', arguments: { table: 't' } }],
  [2, { tool: 'a.write', arguments: {} }],
  [2, { tool: 'spend', arguments: { amount: 12.5, account: 'acct_1' }, grant: { id: 'alice', budget: 3 } }],
];
inlineCalls.forEach(([index, call], j) => add('evaluate', `inline-${index}-${j}`, `${selector(index)}${JSON.stringify(call)}\n${storeBytes}`));
generated.slice(0, 16).forEach((c, i) => {
  const oneLine = JSON.stringify(JSON.parse(c.policy));
  const call = c.steps.find((s) => s.call !== undefined)?.call ?? '{"tool":"run"}';
  add('evaluate', `generated-${i}`, `${oneLine}\n${call}\n${storeBytes}`);
});

// --- regex: pattern NUL subject
const patterns = [
  ['^/tmp/', '/tmp/x'], ['\\.pem$', 'id.pem'], ['^[a-z]+$', 'abc'], ['\\d{3,}', 'a1234'], ['^(?:prod|staging)$', 'prod'],
  ['[^\\x00-\\x7f]', 'é'], ['\\bsecret\\b', 'a secret b'], ['^.{0,5}$', '😀😀'], ['(?:ab)+c?', 'ababc'], ['\\u{1F600}', '😀'],
  ['[\\w-.]+@', 'a.b-c@'], ['x*?y', 'xxy'], ['^\\s*$', ' \u2028\t'], ['[]', 'a'], ['[^]', '\n'], ['(a|ab)(c|bcd)(d*)', 'abcd'],
  ['^(?:[a-z0-9-]+\\.)+[a-z]{2,}$', 'example.com'], ['a{2,}b{0,3}', 'aabbb'], ['(a+)+$', `${'a'.repeat(40)}!`],
  ['\\uD83D\\uDE00', '😀'], ['\\cJ\\x41\\u0042', '\nAB'], ['[\\b]', '\b'], ['\\B', 'ab'], ['a{2}{3}', 'aa'], ['(?=a)', 'a'],
  ['\\1', '1'], ['(?<n>a)', 'a'], ['a{3,2}', 'aaa'], ['[z-a]', 'b'], ['((((((((((a))))))))))', 'a'], ['a{300}', 'a'.repeat(256)],
  ['^$', ''], ['.', '\u2029'], ['\\p{L}', 'a'], ['{foo}', '{foo}'], [']', ']'], ['a{,5}', 'a{,5}'],
];
patterns.forEach(([p, s], i) => add('regex', `pattern-${i}`, `${p}\x00${s}`));

// --- wire: calls as hosts hand them over, and finish() inputs
examples.forEach((f) => {
  try {
    readFileSync(path.join(root, 'examples', f.replace(/\.json$/, '.calls.jsonl')), 'utf8').split('\n').filter((l) => l.trim()).slice(0, 4)
      .forEach((line, j) => add('wire', `example-${f.replace(/\.json$/, '')}-${j}`, line));
  } catch {
    // no calls for this example
  }
});
[
  '{"tool":"run","arguments":{"a":1,"a":2}}', '{"tool":"a\\u0000b"}', '{"tool":"run","grant":{"id":"alice","role":"admin","id":"bob"}}',
  '{"tool":"run","now":"2026-02-29T00:00:00Z"}', '{"tool":"run","now":"2028-02-29T23:59:60.123456-23:59"}', '{"tool":"run","now":-8640000000000000}',
  '{"tool":"run","now":8.64e15}', '{"tool":"run","now":1e400}', `{"tool":"run","arguments":${'{"a":'.repeat(300)}1${'}'.repeat(300)}}`,
  '{"tool":"run","grant":{"id":""}}', '{"tool":"é😀","arguments":{"\\ud83d\\ude00":"\\u2028"}}', '[]', '"2026-01-01"', '1767225600000.5',
].forEach((text, i) => add('wire', `call-${i}`, text));
const toolgate = await loadToolgate();
let finishes = 0;
for (const c of generated) {
  if (finishes >= 12) break;
  let policy;
  try {
    policy = toolgate.compile(c.policy);
  } catch {
    continue;
  }
  for (const step of c.steps) {
    if (step.call === undefined) continue;
    const out = policy.evaluate(step.call, { now: step.now });
    if (out.pending) {
      add('wire', `finish-${finishes}`, finishInput(JSON.stringify(out), finishes));
      finishes += 1;
      break;
    }
  }
  policy.dispose();
}
add('wire', 'finish-huge', '{"pending":{"pending":true,"tool":"t","now":1e300,"allow_rule":"/default","counters":[{"key":"k","scope":"grant","grant":"g","cost":1e308,"max":1,"window_ms":1e300,"algorithm":"sliding","bucket_start_ms":-1e300}],"limits":[{"counter":0,"max":1,"rule":"/r","message":"m"}],"approval":{"id":"x","timeout_ms":1e300,"rule":"/a","message":"m"}},"approved":true,"states":[{"current":1e-300,"previous":1e300}]}');

// --- what fuzzing and the differential test found (tests/core/fuzz_regressions_test.cpp)
const bytes = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
add('policy', 'regression-invalid-utf8-key', bytes('{"version":"1","default":"deny","tools":{"a":{"deny_iff":[],"', [0xc4], 'imits":[]}}}'));
add('evaluate', 'regression-invalid-utf8-call', bytes(selector(8), '{"tool":"envSet","expect":{"rule":"/hide/', [0x98, 0x98, 0x98], '0"}}\n\x00'));
add('evaluate', 'regression-split-character', `${selector(0)}${JSON.stringify({ tool: 'run', arguments: { cmd: 'é'.repeat(40) } })}\n`);
add('evaluate', 'regression-huge-cost-from', `${selector(2)}{"tool":"spend","arguments":{"amount":1e300,"account":"a"},"grant":{"id":"a","budget":1}}\n`);
add('wire', 'regression-empty-approval-message', '{"pending":{"now":0,"allow_rule":"/tools/run","tool":"run","counters":[],"limits":[],"approval":{"id":"0000000000000000000000000000000000000000000000000000000000000000","timeout_ms":0,"rule":"/tools/run/action","message":""}}}');
add('evaluate', 'regression-long-window', '{"version":"1","default":"deny","tools":{"run":{"limits":[{"window":"999999999d","max":2,"cost":2,"algorithm":"sliding"}]}}}\n{"tool":"run"}\n\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x02');

// Inputs long fuzzing runs found (found-*, merged in with libFuzzer's -merge=1;
// see README.md) stay: only the seeds written here are replaced.
for (const [target, files] of Object.entries(seeds)) {
  mkdirSync(corpus(target), { recursive: true });
  for (const name of readdirSync(corpus(target))) {
    if (!name.startsWith('found-')) rmSync(path.join(corpus(target), name), { force: true });
  }
  for (const [name, bytes] of files) writeFileSync(path.join(corpus(target), name), bytes);
  console.log(`${target}: ${files.size} seeds`);
}
