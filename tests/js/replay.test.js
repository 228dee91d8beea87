// `toolgate replay` (lib/replay.js, lib/cli/replay.js) is fast because it
// keeps little per record, shares grant objects, avoids promises it does not
// need and streams its input. None of that may change a result: seeded random
// audit logs (out of order, equal times, approvals, rolled-back calls,
// look-alike names, grants whose attributes change, eval lines) are replayed
// through lib/replay.js and through the CLI, and compared with a plain
// reference that reads every line, sorts, and decides each call through the
// public API one at a time. `REPLAY_SEED` replays one seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

import { MemoryApprovalStore, MemoryCounterStore, loadToolgate } from '../../wasm/index.js';
import { formatSummary, readRecords, recordReader, replay } from '../../lib/replay.js';
import { forEachLine } from '../../lib/cli/replay.js';
import { lookAlikeProblem } from '../../worker/gate.js';
import { T0, runCli } from './cli-helpers.js';
import { random } from './seeded-random.js';

const toolgate = await loadToolgate();
const parseTime = (value) => toolgate.parseTime(value);
const scratch = mkdtempSync(path.join(tmpdir(), 'toolgate-replay-'));
let files = 0;
const tempFile = (text) => {
  const file = path.join(scratch, `file-${++files}`);
  writeFileSync(file, text);
  return file;
};

// --- the reference: what replay means, written plainly ---------------------

// The quota went back when the event says so ("quota", written since the
// exchange); in older logs, when the outcome proves the call did not run.
const returned = (record) => {
  if (record.decision !== 'allow') return false;
  if (record.quota === 'kept') return false;
  if (record.quota === 'returned') return true;
  return ['error', 'upstream_refused', 'server_gone'].includes(record.outcome)
    || (record.outcome === 'upstream_failed' && record.upstream_status === 'unreachable');
};

function referenceRead(lines, grantAttributes) {
  const records = [];
  let skipped = 0;
  lines.forEach((text, index) => {
    if (text.trim() === '') return;
    const record = JSON.parse(text);
    const line = index + 1;
    const time = (value) => (typeof value === 'number' ? value : parseTime(value));
    if ('approve' in record) {
      records.push({ line, now: time(record.now), approve: record.approve });
    } else if (typeof record.time === 'string' && typeof record.decision === 'string') {
      if (typeof record.tool !== 'string') {
        skipped += 1;
        return;
      }
      const attributes = record.grant_attributes ?? grantAttributes?.get(record.grant) ?? {};
      const now = time(record.time);
      records.push({
        line, now,
        call: { tool: record.tool, arguments: record.arguments, grant: { ...attributes, id: record.grant }, now },
        recorded: { decision: record.decision, code: record.code ?? '', rule: record.rule ?? '' },
        rolledBack: returned(record),
      });
    } else {
      const now = time(record.now);
      records.push({ line, now, call: { tool: record.tool, arguments: record.arguments ?? {}, grant: record.grant ?? 'anonymous', now } });
    }
  });
  // Array.prototype.sort is stable: equal times keep the file's order.
  return { records: records.sort((a, b) => a.now - b.now), skipped };
}

async function referenceReplay(policy, baseline, lines, grantAttributes) {
  const { records, skipped } = referenceRead(lines, grantAttributes);
  const stores = (p) => ({ policy: p, counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore() });
  const next = stores(policy);
  const before = baseline ? stores(baseline) : null;
  const decide = async ({ policy: p, counters, approvals }, record) => {
    const lookAlike = lookAlikeProblem(record.call.tool, p);
    if (lookAlike) return { decision: 'deny', code: 'invalid_call', rule: '' };
    const { decision, commit, rollback } = await p.authorize(record.call, { counters, approvals, now: record.now });
    await (record.rolledBack ? rollback() : commit());
    return { decision: decision.decision, code: decision.code, rule: decision.rule };
  };
  const result = { replayed: 0, skipped, changed: [], byChange: {}, byRule: {}, byTool: {} };
  for (const record of records) {
    if (record.approve !== undefined) {
      await next.approvals.approve(record.approve, record.now);
      await before?.approvals.approve(record.approve, record.now);
      continue;
    }
    const was = before ? await decide(before, record) : record.recorded;
    const now = await decide(next, record);
    result.replayed += 1;
    if (was.decision === now.decision) continue;
    const change = `${was.decision}->${now.decision}`;
    const rule = (now.decision !== 'allow' ? now.rule : was.rule) || '(none)';
    result.byChange[change] = (result.byChange[change] ?? 0) + 1;
    result.byRule[rule] = (result.byRule[rule] ?? 0) + 1;
    result.byTool[record.call.tool] = (result.byTool[record.call.tool] ?? 0) + 1;
    result.changed.push({ line: record.line, change, call: record.call, baseline: was, policy: now });
  }
  return result;
}

// --- random logs -------------------------------------------------------------

const TOOLS = ['refund', 'read', 'deploy', 'drop_db', 'Drop_DB', 'read_notes', 'READ_notes', 'other'];

function randomPolicy(next) {
  const pick = (list) => list[Math.floor(next() * list.length)];
  const limit = () => ({
    window: pick(['second', 'minute', 'hour']), max: 1 + Math.floor(next() * 4),
    scope: pick(['grant', 'global']), algorithm: pick(['fixed', 'sliding']),
  });
  const tools = {
    refund: {
      require: next() < 0.5 ? [{ path: 'args.amount', op: 'lte', value: Math.floor(next() * 200) }] : undefined,
      deny_if: next() < 0.5 ? [{ conditions: [{ path: 'grant.role', op: 'eq', value: pick(['support', 'admin']) }] }] : undefined,
      limits: next() < 0.7 ? [limit()] : undefined,
    },
    read: next() < 0.5 ? {} : { limits: [limit(), limit()] },
    'read_*': next() < 0.5 ? {} : { action: 'deny' },
  };
  if (next() < 0.7) tools.deploy = { action: 'require_approval', approval: { timeout: pick(['1m', '10m']) }, limits: next() < 0.5 ? [limit()] : undefined };
  return toolgate.compile(JSON.parse(JSON.stringify({ version: '1', default: pick(['allow', 'deny']), hide: next() < 0.5 ? ['drop_db'] : [], tools })));
}

/** Audit lines (and some eval lines, blank lines, approvals) as a proxy would have written them. */
async function randomLog(next, { evalLines, approvalsFor }) {
  const pick = (list) => list[Math.floor(next() * list.length)];
  const lines = [];
  let time = T0 + Math.floor(next() * 3_600_000);
  const roles = {};
  const count = 20 + Math.floor(next() * 60);
  for (let i = 0; i < count; i++) {
    // Mostly forward, sometimes the same millisecond, sometimes back (written when answered).
    const step = next();
    time += step < 0.2 ? 0 : step < 0.85 ? Math.floor(next() * 5000) : -Math.floor(next() * 20_000);
    const grant = pick(['alice', 'bob', 'carol']);
    if (next() < 0.15) roles[grant] = pick(['support', 'admin', 'viewer']);
    const shape = next();
    // Attributes as the audit records them: usually the same flat values, sometimes
    // in another order, with a nested value, or absent (from --grants instead).
    const attributes = shape < 0.6 ? { role: roles[grant] ?? 'support', team: 'payments' }
      : shape < 0.7 ? { team: 'payments', role: roles[grant] ?? 'support' }
        : shape < 0.8 ? { role: roles[grant] ?? 'support', tags: ['a', grant] }
          : shape < 0.85 ? { id: 'spoofed', role: 'admin' }
            : undefined;
    const tool = pick(TOOLS);
    const args = tool === 'refund' ? { amount: Math.floor(next() * 250), currency: pick(['usd', 'eur']) } : next() < 0.5 ? {} : { path: `/x/${i}` };
    const decision = pick(['allow', 'allow', 'deny', 'approval_required']);
    const stamp = next() < 0.9 ? new Date(time).toISOString() : new Date(time).toISOString().replace('Z', '+00:00');
    if (evalLines && next() < 0.2) {
      lines.push(JSON.stringify({ tool, arguments: args, grant: { id: grant, role: roles[grant] ?? 'support' }, now: next() < 0.5 ? time : new Date(time).toISOString() }));
      continue;
    }
    if (approvalsFor && tool === 'deploy' && next() < 0.6) {
      const grantObject = { ...(attributes ?? {}), id: grant };
      const asked = await approvalsFor.decide({ tool, arguments: args, grant: grantObject }, { counters: new MemoryCounterStore(), now: time });
      if (asked.approval_id) lines.push(JSON.stringify({ approve: asked.approval_id, now: time - Math.floor(next() * 90_000) }));
    }
    const event = {
      time: stamp, request_id: i, grant, server: 'default', tool, policy_hash: 'x', argument_keys: Object.keys(args), argument_hmac: 'h',
      arguments: args, ...(attributes ? { grant_attributes: attributes } : {}),
      decision, code: decision === 'allow' ? 'allowed' : pick(['default_deny', 'rate_limited', 'approval_required']),
      rule: pick(['/tools/refund', '/default', '']),
      outcome: pick(['result', 'result', 'error', 'upstream_failed', 'upstream_refused', 'server_gone', 'client_left', 'tool_error']),
    };
    if (event.outcome === 'upstream_failed') event.upstream_status = pick(['unreachable', 'timeout', 502]);
    // Newer logs say what happened to the quota; it wins over the outcome.
    if (next() < 0.5) event.quota = pick(['kept', 'returned']);
    if (next() < 0.1) delete event.rule;
    lines.push(JSON.stringify(event));
    if (next() < 0.05) lines.push(next() < 0.5 ? '' : '   ');
    if (next() < 0.03) lines.push(JSON.stringify({ time: stamp, grant, decision: 'deny', code: 'invalid_request' })); // no tool: skipped
  }
  return lines;
}

const GRANTS = new Map([['alice', { role: 'admin', team: 'ops' }], ['bob', { role: 'support' }]]);

test('lib/replay.js gives what the plain reference gives, on random logs (with and without a baseline)', async () => {
  const seeds = process.env.REPLAY_SEED ? [Number(process.env.REPLAY_SEED)] : Array.from({ length: 150 }, (_, i) => 9100 + i);
  let changed = 0;
  let replayed = 0;
  for (const seed of seeds) {
    const next = random(seed);
    const policy = randomPolicy(next);
    const baseline = next() < 0.4 ? randomPolicy(next) : undefined;
    const lines = await randomLog(next, { evalLines: baseline !== undefined, approvalsFor: policy });
    const expected = await referenceReplay(policy, baseline, lines, GRANTS);
    const { calls, skipped } = readRecords(lines, { parseTime, grantAttributes: GRANTS });
    const actual = await replay({ policy, baseline, calls, skipped });
    assert.deepEqual(actual, expected, `seed ${seed} (REPLAY_SEED=${seed} replays it)`);
    // deepEqual ignores the order of keys; the CLI prints them, so it matters.
    assert.equal(JSON.stringify(actual.changed), JSON.stringify(expected.changed), `seed ${seed}: key order`);
    // And once more from the same records: reading leaves nothing a second replay would see.
    assert.deepEqual(await replay({ policy, baseline, calls, skipped }), expected, `seed ${seed}, replayed twice`);
    changed += expected.changed.length;
    replayed += expected.replayed;
  }
  // The logs exercise what they are meant to: some calls change, most are replayed.
  if (seeds.length > 1) assert.ok(changed > 100 && replayed > 5000, `${changed} changed of ${replayed}`);
});

test('changed calls do not share objects a caller could change under another result', async () => {
  const policy = toolgate.compile({ version: '1', default: 'deny', tools: { read: {} } });
  const lines = [1, 2].map((s) => JSON.stringify({ time: new Date(T0 + s).toISOString(), grant: 'bot', grant_attributes: { role: 'x' }, tool: 'write', arguments: {}, decision: 'allow', code: 'allowed', rule: '/tools/write' }));
  const result = await replay({ policy, ...readRecords(lines, { parseTime }) });
  assert.equal(result.changed.length, 2);
  // A grant shared by both calls is frozen: writing to it throws instead of altering the other.
  assert.throws(() => { 'use strict'; result.changed[0].call.grant.role = 'admin'; }, TypeError);
  assert.deepEqual(result.changed[1].call.grant, { role: 'x', id: 'bot' });
});

test('recordReader reads line by line what readRecords reads, and names the line of a bad record', () => {
  const next = random(77);
  const lines = [];
  for (let i = 0; i < 200; i++) {
    lines.push(JSON.stringify({ time: new Date(T0 + Math.floor(next() * 1e6)).toISOString(), grant: 'g', tool: 'read', arguments: { i }, decision: 'allow' }));
  }
  const reader = recordReader({ parseTime });
  lines.forEach((text, index) => reader.add(text, index + 1));
  assert.deepEqual(reader.finish(), readRecords(lines, { parseTime }));
  for (const [bad, message] of [
    ['{"time": "2026-01-01T00:00:00.000Z", "grant": "g", "tool": "read", "decision": "allow"}', /line 3: this audit event has no "arguments"/],
    ['{"tool": "read", "now": "yesterday"}', /line 3: the time "yesterday" is neither/],
    ['[1]', /line 3: a record must be a JSON object/],
    ['{"time": "2026-01-01T00:00:00.000Z", "grant": 7, "tool": "read", "arguments": {}, "decision": "allow"}', /line 3: "grant" must be the grant's id/],
    ['{"nothing": 1}', /line 3: neither an audit event/],
    ['{"tool": ', /line 3: not JSON/],
  ]) {
    assert.throws(() => readRecords([lines[0], lines[1], bad, lines[2]], { parseTime }), message);
  }
});

test('forEachLine gives the lines of text.split("\\n") of the whole stream, however the bytes are cut', async () => {
  const next = random(4242);
  const pieces = ['a', 'é', '€', '😀', '\n', '\r\n', '{"x":1}', '\n\n', ' ', '\u2028'];
  for (let round = 0; round < 300; round++) {
    const parts = [];
    const length = Math.floor(next() * 40);
    for (let i = 0; i < length; i++) parts.push(pieces[Math.floor(next() * pieces.length)]);
    let bytes = Buffer.from(parts.join(''));
    // Sometimes an invalid byte, or a multi-byte character cut off at the end.
    if (next() < 0.2) bytes = Buffer.concat([bytes, Buffer.from([0xff])]);
    if (next() < 0.2) bytes = Buffer.concat([bytes, Buffer.from('😀').subarray(0, 2)]);
    const chunks = [];
    for (let at = 0; at < bytes.length;) {
      const size = 1 + Math.floor(next() * 6);
      chunks.push(bytes.subarray(at, at + size));
      at += size;
    }
    const seen = [];
    await forEachLine(Readable.from(chunks), (text, number) => seen.push([number, text]));
    const expected = bytes.toString('utf8').split('\n').map((text, i) => [i + 1, text]);
    assert.deepEqual(seen, expected, `round ${round}: ${JSON.stringify(bytes.toString('latin1'))} in ${chunks.length} chunks`);
  }
});

test('toolgate replay (the CLI, a file read as a stream and standard input) prints what lib/replay.js finds', async () => {
  for (const seed of [31, 32, 33]) {
    const next = random(seed);
    const policy = randomPolicy(next);
    const baseline = seed === 33 ? randomPolicy(next) : undefined;
    // A log larger than the CLI's 1 MiB read size, so records straddle reads.
    let lines = [];
    while (lines.join('\n').length < 1.5 * 2 ** 20) lines = lines.concat(await randomLog(next, { evalLines: baseline !== undefined, approvalsFor: policy }));
    const text = `${lines.join('\n')}\n`;
    const policyPath = tempFile(policy.source);
    const log = tempFile(text);
    const baselineArgs = baseline ? ['--baseline', tempFile(baseline.source)] : [];
    const expected = await referenceReplay(policy, baseline, lines, undefined);
    assert.ok(expected.changed.length > 0);
    const out = await runCli(['replay', '--policy', policyPath, ...baselineArgs, '--json', log]);
    assert.equal(out.code, 1, out.stderr);
    assert.deepEqual(JSON.parse(out.stderr), {
      replayed: expected.replayed, skipped: expected.skipped, changed: expected.changed.length,
      by_change: expected.byChange, by_rule: expected.byRule, by_tool: expected.byTool,
    });
    assert.equal(out.stdout, expected.changed.map((c) => `${JSON.stringify(c)}\n`).join(''));
    // Standard input, and the text summary.
    const piped = await runCli(['replay', '--policy', policyPath, ...baselineArgs, '-'], { input: text });
    assert.equal(piped.code, 1);
    assert.equal(piped.stdout, out.stdout);
    assert.equal(piped.stderr, formatSummary(expected, { policy: policyPath, baseline: baselineArgs[1] }));
  }
});

test('toolgate replay: a bad line far into a streamed file is an error naming it, and nothing is printed', async () => {
  const good = JSON.stringify({ time: new Date(T0).toISOString(), grant: 'g', tool: 'read', arguments: { pad: 'x'.repeat(400) }, decision: 'deny', code: 'default_deny', rule: '/default' });
  const lines = Array.from({ length: 5000 }, () => good);
  lines[4321] = '{"time": "2026-01-01T00:00:00.000Z", "grant": "g", "tool": "read", "arguments": {}, "decision": "allow"'; // cut off
  const policyPath = tempFile(JSON.stringify({ version: '1', default: 'allow' }));
  const out = await runCli(['replay', '--policy', policyPath, tempFile(lines.join('\n'))]);
  assert.equal(out.code, 2);
  assert.equal(out.stdout, '');
  assert.match(out.stderr, /line 4322: not JSON/);
  const missing = await runCli(['replay', '--policy', policyPath, path.join(scratch, 'no-such-file.jsonl')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read the recorded calls .*no-such-file\.jsonl: no such file/);
  const directory = await runCli(['replay', '--policy', policyPath, scratch]);
  assert.equal(directory.code, 2);
  assert.match(directory.stderr, /cannot read the recorded calls/);
});

test('toolgate replay prints megabytes of changed calls whole, in file order', async () => {
  const lines = Array.from({ length: 6000 }, (_, i) => JSON.stringify({
    time: new Date(T0 + i).toISOString(), grant: `g${i % 7}`, tool: 'read', arguments: { i, pad: 'é'.repeat(300) },
    decision: 'allow', code: 'allowed', rule: '/tools/read',
  }));
  const policyPath = tempFile(JSON.stringify({ version: '1', default: 'deny' }));
  const out = await runCli(['replay', '--policy', policyPath, tempFile(lines.join('\n'))]);
  assert.equal(out.code, 1, out.stderr);
  assert.ok(out.stdout.length > 3 * 2 ** 20, `${out.stdout.length} characters`);
  const printed = out.stdout.split('\n');
  assert.equal(printed.pop(), '');
  assert.deepEqual(printed.map((l) => JSON.parse(l).line), lines.map((_, i) => i + 1));
  assert.deepEqual(JSON.parse(printed[5999]).call.arguments, { i: 5999, pad: 'é'.repeat(300) });
});
