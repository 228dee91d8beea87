// Smoke test of bench/cedar/cedar.bench.js (toolgate beside cedar-wasm): the
// --quick run produces every case with the same, expected decision on both
// sides, and the files the results aggregator reads; a policy pair that does
// not decide alike is refused before anything is timed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadToolgate } from '../../wasm/index.js';
import { cases } from '../../bench/cedar/cases.js';
import { loadCedar, verify } from '../../bench/cedar/cedar.bench.js';

const script = fileURLToPath(new URL('../../bench/cedar/cedar.bench.js', import.meta.url));

test('cedar.bench.js --quick: every case, equal decisions on both sides, results written', () => {
  const out = mkdtempSync(join(tmpdir(), 'toolgate-bench-cedar-'));
  try {
    const stdout = execFileSync(process.execPath, [script, '--quick', '--out', out], { encoding: 'utf8', timeout: 60_000 });
    const results = JSON.parse(readFileSync(join(out, 'cedar.json'), 'utf8'));
    const markdown = readFileSync(join(out, 'cedar.md'), 'utf8');
    assert.equal(markdown.trim(), stdout.trim());

    const expected = cases();
    assert.deepEqual(Object.keys(results.cases), expected.map((c) => c.id));
    for (const c of expected) {
      const got = results.cases[c.id];
      assert.deepEqual(got.calls.map((k) => k.name), c.calls.map((k) => k.name), c.id);
      for (const [i, k] of got.calls.entries()) {
        const what = `${c.id} / ${k.name}`;
        assert.equal(k.toolgate.decision, c.calls[i].expected, what);
        assert.equal(k.cedar.decision, c.calls[i].expected, what);
        assert.equal(k.toolgate.code, c.calls[i].code, what);
        for (const side of ['toolgate', 'cedar']) {
          assert.ok(k[side].p50_us > 0 && k[side].p99_us >= k[side].p50_us && k[side].per_s > 0, `${what}: ${side} timings`);
        }
        assert.ok(Number.isFinite(k.ratio_p50) && k.ratio_p50 > 0, what);
        assert.match(markdown, new RegExp(`\\| ${k.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\|`), what);
      }
      assert.ok(got.compile.toolgate_ms > 0 && got.compile.cedar_ms > 0, c.id);
    }
    assert.equal(results.verified.length, expected.reduce((n, c) => n + c.calls.length, 0));
    for (const v of results.verified) assert.ok(v.toolgate === v.expected && v.cedar === v.expected, JSON.stringify(v));
    assert.ok(results.cases.d_many_tools.title.includes('1000 tools'));

    assert.equal(results.toolgate_with_limits.decide_memory_store.decision, 'allow');
    assert.ok(results.cold_start.toolgate.total_ms > 0 && results.cold_start.cedar.total_ms > 0);
    for (const side of ['toolgate', 'cedar']) {
      const s = results.size[side];
      assert.ok(s.wasm_bytes > s.wasm_gzip && s.wasm_gzip > 0 && s.glue_gzip > 0, side);
    }
    assert.ok(results.size.toolgate.facade_files.includes('index.js'));

    assert.ok(Array.isArray(results.budgets) && results.budgets.length >= 1);
    for (const b of results.budgets) {
      assert.equal(typeof b.name, 'string');
      assert.equal(typeof b.target, 'string');
      assert.match(b.measured, /^\d+(\.\d+)?×/);
      assert.equal(typeof b.met, 'boolean');
    }
    assert.ok(results.budgets[0].name.includes('typical call'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a policy pair that decides differently is refused before timing', async () => {
  const toolgate = await loadToolgate();
  const cedar = await loadCedar();
  const [a1] = cases();
  assert.equal(verify(toolgate, cedar, [a1]).length, a1.calls.length);

  // Cedar lets bob in too: its allow no longer matches toolgate's deny.
  const loose = { ...a1, cedar: 'permit(principal, action == Action::"run", resource);' };
  assert.throws(() => verify(toolgate, cedar, [loose]), /bob calls run: Cedar allow, expected deny/);

  // toolgate allows everyone: its decision no longer matches the expected deny.
  const open = { ...a1, toolgate: { version: '1', default: 'allow', tools: {} } };
  assert.throws(() => verify(toolgate, cedar, [open]), /bob calls run: toolgate allow/);

  // A Cedar denial caused by an evaluation error (missing attribute) is not an equivalent denial.
  const erroring = { ...a1, cedar: 'permit(principal, action == Action::"run", resource) when { principal.id == "alice" };' };
  assert.throws(() => verify(toolgate, cedar, [erroring]), /Cedar (allow|deny|evaluation errors)/);
});
