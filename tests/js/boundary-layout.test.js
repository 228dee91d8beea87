// The hot path's memory layout is exported by the core (boundaryLayout() in
// wasm/bindings.cpp) and checked at load (wasm/boundary-layout.js): the
// façade holds no offset of its own. Proven four ways:
//  - the real core's layout passes and decodes real decisions (the same as
//    the JSON path; tests/js/boundary.test.js compares thousands);
//  - a real core binary whose layout differs (a field renamed in its data,
//    or any field's offset changed) fails loadToolgate() with a clear
//    EngineError, not a wrong decision;
//  - property tests: any layout the checker accepts (random field order and
//    padding) decodes exactly what was written there, and every kind of
//    mismatch (missing, retyped, misaligned, overlapping, outside the struct,
//    unknown codes) is refused at load with the field named;
//  - the strings' versions (the core's word that a text is unchanged, so the
//    decoder reads none of it): random sequences over a fake core, and 3 000
//    random calls through the real one decoded by a codec that has seen every
//    output and by a fresh one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { EngineError, loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
import { checkLayout, createCodec, COUNTER_FIELDS, COUNT_FIELDS, OUTPUT_FIELDS, TABLE_RECORD_FIELDS } from '../../wasm/boundary-layout.js';
import { random } from './seeded-random.js';

const T0 = Date.UTC(2026, 0, 1);
const wasmFile = new URL('../../wasm/dist/toolgate_core.wasm', import.meta.url);
const toolgate = await loadToolgate();
const realText = toolgate.callCore((core) => core.boundaryLayout());
const real = JSON.parse(realText);

test('the core exports its whole layout and the façade accepts it', () => {
  const layout = checkLayout(realText);
  assert.deepEqual(Object.keys(real.output.fields).sort(), Object.keys(OUTPUT_FIELDS).sort(), 'every output field, and no other');
  assert.deepEqual(Object.keys(real.counter.fields).sort(), Object.keys(COUNTER_FIELDS).sort());
  assert.deepEqual(Object.keys(real.count.fields).sort(), Object.keys(COUNT_FIELDS).sort());
  assert.deepEqual(Object.keys(real.table_record.fields).sort(), Object.keys(TABLE_RECORD_FIELDS).sort());
  assert.deepEqual(layout.verdicts, ['allow', 'deny', 'approval_required']);
  assert.equal(layout.maxParked, 65536);
  assert.equal(toolgate.maxParked, 65536);
  for (const struct of [real.output, real.counter, real.count, real.table_record]) {
    const bytes = Object.values(struct.fields).reduce((sum, field) => sum + field.size, 0);
    assert.equal(bytes, struct.size, 'the fields cover the struct exactly (static_assert in bindings.cpp)');
  }
});

test('decisions and parked evaluations decode through the exported layout', async () => {
  const policy = toolgate.compile({
    version: '1',
    default: 'deny',
    tools: {
      run: { limits: [{ counter: 'runs', window: 'minute', max: 2 }, { window: 'hour', max: 5, scope: 'global', algorithm: 'sliding' }] },
      gate: { action: 'require_approval', approval: { timeout: '5m' } },
    },
  });
  const counters = new MemoryCounterStore();
  const call = { tool: 'run', arguments: {}, grant: 'alice', now: T0 };
  const seen = [];
  for (let i = 0; i < 3; i++) seen.push(await policy.decide(call, { counters }));
  assert.deepEqual(seen.map((d) => d.code), ['allowed', 'allowed', 'rate_limited']);
  assert.equal(seen[2].rule, '/tools/run/limits/0');
  assert.equal(seen[2].retry_after_ms, 60_000);
  const pending = policy.evaluate(call);
  assert.equal(pending.pending, true);
  const denied = await policy.decide({ tool: 'gate', arguments: {}, grant: 'alice', now: T0 });
  assert.equal(denied.decision, 'approval_required');
  assert.match(denied.approval_id, /^[0-9a-f]{64}$/);
  // A parked evaluation's counters, as the store sees them.
  let requests;
  await policy.decide(call, { counters: { reserve: async (r) => { requests = r; return { admitted: true, states: r.map(() => ({ current: 0, previous: 0 })) }; }, commit: async () => {}, rollback: async () => {} } });
  assert.deepEqual(requests.map(({ key, ...rest }) => rest), pending.counters.map(({ key, ...rest }) => rest));
  assert.deepEqual(requests.map((r) => r.key), pending.counters.map((r) => r.key));
  assert.deepEqual(requests.map((r) => [r.scope, r.algorithm, r.window_ms]), [['grant', 'fixed', 60_000], ['global', 'sliding', 3_600_000]]);
});

// The same core binary with one field name changed in its data segment: its
// layout no longer has `counter_count` (it has `counter_kount`). The façade
// must refuse to load it, naming the field.
test('a core built with another layout fails the load with a clear error', async () => {
  const bytes = new Uint8Array(await readFile(wasmFile));
  const needle = Buffer.from('counter_count');
  const at = Buffer.from(bytes).indexOf(needle);
  assert.ok(at > 0, 'the field name is in the binary');
  assert.equal(Buffer.from(bytes).indexOf(needle, at + 1), -1, 'exactly once');
  bytes.set(Buffer.from('counter_kount'), at);
  await assert.rejects(loadToolgate({ wasmBinary: bytes }), (error) => {
    assert.ok(error instanceof EngineError, `an EngineError, got ${error}`);
    assert.match(error.message, /boundary layout does not match/);
    assert.match(error.message, /output\.counter_count is missing/);
    return true;
  });
  // The real binary still loads as its own instance.
  const fresh = await loadToolgate({ wasmBinary: await readFile(wasmFile) });
  assert.equal(fresh.compile({ version: '1', default: 'allow' }).evaluate({ tool: 'x', now: T0 }).code, 'allowed');
});

// Every offset the real binary reports, changed in its data (the layout text
// is built at compile time, so it stands in the binary as is): the fields
// cover each struct exactly, so any other offset for one field overlaps
// another, is misaligned or lies outside, and the load must fail with an
// EngineError naming the struct, never decode from the wrong bytes. Each
// field gets two seeded replacements of the same digit count (the binary
// keeps its size).
test('property: a core whose binary reports any other offset for a field fails the load', async () => {
  const original = Buffer.from(await readFile(wasmFile));
  const base = original.indexOf(Buffer.from(realText));
  assert.ok(base > 0, 'the layout text stands in the binary');
  assert.equal(original.indexOf(Buffer.from(realText), base + 1), -1, 'once');
  const next = random(4242);
  let refused = 0;
  for (const struct of ['output', 'counter', 'count', 'table_record']) {
    const structAt = realText.indexOf(`"${struct}":{"size":`);
    assert.ok(structAt >= 0, `the ${struct} struct is in the text`);
    for (const [field, { offset }] of Object.entries(real[struct].fields)) {
      const marker = `"${field}":{"offset":`;
      const at = realText.indexOf(marker, structAt) + marker.length;
      assert.equal(realText.slice(at, at + String(offset).length), String(offset), `${struct}.${field}'s offset in the text`);
      const digits = String(offset).length;
      const low = digits === 1 ? 0 : 10 ** (digits - 1);
      for (let round = 0; round < 2; round++) {
        let changed;
        do changed = low + Math.floor(next() * (10 ** digits - low)); while (changed === offset);
        const bytes = new Uint8Array(original);
        bytes.set(Buffer.from(String(changed)), base + at);
        await assert.rejects(loadToolgate({ wasmBinary: bytes }), (error) => {
          assert.ok(error instanceof EngineError, `${struct}.${field} at ${changed}: an EngineError, got ${error}`);
          assert.match(error.message, /boundary layout does not match this façade/);
          assert.match(error.message, new RegExp(`${struct}[.:]`), `${struct}.${field} at ${changed}: names the struct`);
          return true;
        }, `${struct}.${field} moved from ${offset} to ${changed} must fail the load`);
        refused++;
      }
    }
  }
  assert.equal(refused, 2 * (Object.keys(OUTPUT_FIELDS).length + Object.keys(COUNTER_FIELDS).length + Object.keys(COUNT_FIELDS).length +
    Object.keys(TABLE_RECORD_FIELDS).length));
});

test('after an engine restart the new instance is checked and decoded by its own layout', async () => {
  const own = await loadToolgate({ wasmBinary: await readFile(wasmFile) });
  const policy = own.compile({ version: '1', default: 'deny', tools: { run: { rate_limit: '1/minute' } } });
  const counters = new MemoryCounterStore();
  const call = { tool: 'run', arguments: {}, grant: 'alice', now: T0 };
  assert.equal((await policy.decide(call, { counters })).code, 'allowed');
  // A trap: the hot path handed an address outside memory.
  assert.throws(() => own.callCore((core) => core._toolgate_finish(0xfffffff0, 1, 1, 0)), EngineError);
  await own.ready();
  assert.equal(own.generation, 1, 'the engine was restarted');
  assert.equal(own.maxParked, 65536);
  assert.equal((await policy.decide(call, { counters })).code, 'rate_limited', 'the recompiled policy decides through the new instance');
  assert.equal((await policy.decide({ ...call, grant: 'bob' }, { counters })).code, 'allowed');
});

// --- property tests over synthetic layouts --------------------------------

const SIZES = { u32: 4, f64: 8 };

// A random layout for `fields`: shuffled order, random aligned padding, an
// 8-aligned size.
function randomStruct(next, fields) {
  const names = Object.keys(fields);
  for (let i = names.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [names[i], names[j]] = [names[j], names[i]];
  }
  let offset = 0;
  const described = {};
  for (const name of names) {
    const size = SIZES[fields[name]];
    offset += Math.floor(next() * 3) * 4; // padding
    offset = Math.ceil(offset / size) * size;
    described[name] = { offset, type: fields[name], size };
    offset += size;
  }
  const size = Math.ceil((offset + Math.floor(next() * 3) * 4) / 8) * 8;
  return { size, align: 8, fields: described };
}

function shuffled(next, list) {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function randomLayout(next) {
  return {
    output: randomStruct(next, OUTPUT_FIELDS),
    counter: randomStruct(next, COUNTER_FIELDS),
    count: randomStruct(next, COUNT_FIELDS),
    table_record: randomStruct(next, TABLE_RECORD_FIELDS),
    kinds: shuffled(next, ['decision', 'parked', 'pending_text']),
    verdicts: shuffled(next, ['allow', 'deny', 'approval_required']),
    scopes: shuffled(next, ['grant', 'global']),
    algorithms: shuffled(next, ['fixed', 'sliding']),
    max_parked: 1 + Math.floor(next() * 100000),
  };
}

// A fake core: one heap with the glue's views, and an input area.
function fakeCore(bytes = 1 << 16) {
  const buffer = new ArrayBuffer(bytes);
  const core = { HEAPU8: new Uint8Array(buffer), HEAPU32: new Uint32Array(buffer), HEAPF64: new Float64Array(buffer), inputAt: 8192 };
  core._toolgate_input = () => core.inputAt;
  return core;
}

const encoder = new TextEncoder();
function writer(core, layout, base, struct) {
  return {
    u32: (field, value) => { core.HEAPU32[(base + layout[struct].fields[field].offset) / 4] = value; },
    f64: (field, value) => { core.HEAPF64[(base + layout[struct].fields[field].offset) / 8] = value; },
  };
}
let textAt = 32768;
function putString(core, text) {
  const bytes = encoder.encode(text);
  const at = textAt;
  core.HEAPU8.set(bytes, at);
  textAt += bytes.length + 1;
  return [at, bytes.length];
}

test('property: any accepted layout decodes exactly what the core wrote by it', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    const raw = randomLayout(next);
    const layout = checkLayout(JSON.stringify(raw));
    const core = fakeCore();
    textAt = 32768;
    const output = 8 * (1 + Math.floor(next() * 64));
    const codec = createCodec(layout, output);
    const out = writer(core, raw, output, 'output');
    const code = (table, name) => raw[table].indexOf(name);
    const pick = (list) => list[Math.floor(next() * list.length)];

    // A decision.
    const verdict = pick(['allow', 'deny', 'approval_required']);
    const decision = { decision: verdict, code: pick(['allowed', 'rate_limited', 'x'.repeat(20)]), rule: pick(['', '/tools/é/limits/0']), message: pick(['ok', 'Denied: 😀 '.repeat(3)]) };
    out.u32('kind', code('kinds', 'decision'));
    out.u32('verdict', code('verdicts', verdict));
    for (const field of ['code', 'rule', 'message']) {
      const [at, length] = putString(core, decision[field]);
      out.u32(field, at);
      out.u32(`${field}_length`, length);
    }
    const retry = next() < 0.5;
    out.u32('has_retry', retry ? 1 : 0);
    out.f64('retry_after_ms', 1234.5);
    if (retry) decision.retry_after_ms = 1234.5;
    const approval = next() < 0.5 ? 'a'.repeat(64) : '';
    const [approvalAt, approvalLength] = putString(core, approval);
    out.u32('approval', approvalAt);
    out.u32('approval_length', approvalLength);
    if (approval) decision.approval_id = approval;
    assert.deepEqual(codec.read(core), decision, `seed ${seed}: decision`);

    // A parked evaluation with its counters.
    out.u32('kind', code('kinds', 'parked'));
    out.u32('ticket', 77 + seed);
    out.f64('now_ms', T0 + seed);
    out.f64('approval_timeout_ms', 300_000);
    const counters = [];
    const count = Math.floor(next() * 4);
    const first = 16384;
    for (let i = 0; i < count; i++) {
      const counter = writer(core, raw, first + i * raw.counter.size, 'counter');
      const expected = {
        key: `tg1:["grant","alice","c${i}",60000,"fixed"]`,
        scope: pick(['grant', 'global']),
        grant: i % 2 ? 'alice' : '',
        cost: i + 0.5,
        max: 10 * (i + 1),
        window_ms: 60_000 * (i + 1),
        algorithm: pick(['fixed', 'sliding']),
        bucket_start_ms: T0 - i,
      };
      for (const field of ['key', 'grant']) {
        const [at, length] = putString(core, expected[field]);
        counter.u32(field, at);
        counter.u32(`${field}_length`, length);
      }
      counter.u32('scope', code('scopes', expected.scope));
      counter.u32('algorithm', code('algorithms', expected.algorithm));
      for (const field of ['cost', 'max', 'window_ms', 'bucket_start_ms']) counter.f64(field, expected[field]);
      counters.push(expected);
    }
    out.u32('counters', first);
    out.u32('counter_count', count);
    // A parked call comes with the fields the façade fills in (address, handle).
    const parked = { ticket: 77 + seed, now: T0 + seed, approval: undefined, counters, address: 0, handle: null };
    if (approval) parked.approval = { id: approval, timeout_ms: 300_000 };
    assert.deepEqual(codec.read(core), parked, `seed ${seed}: parked`);

    // A pending evaluation as JSON text.
    const text = JSON.stringify({ pending: true, tool: 'é', counters: [] });
    const [textStart, textLength] = putString(core, text);
    out.u32('kind', code('kinds', 'pending_text'));
    out.u32('message', textStart);
    out.u32('message_length', textLength);
    assert.deepEqual(codec.read(core), JSON.parse(text), `seed ${seed}: pending text`);

    // The store's counts, where the core reads them; garbage as -1.
    const states = [{ current: 3, previous: 1.5 }, { current: 'x', previous: Infinity }, null];
    assert.equal(codec.writeCounts(core, states), 3);
    const read = (i, field) => core.HEAPF64[(core.inputAt + i * raw.count.size + raw.count.fields[field].offset) / 8];
    assert.deepEqual([0, 1, 2].map((i) => [read(i, 'current'), read(i, 'previous')]), [[3, 1.5], [-1, -1], [-1, -1]], `seed ${seed}: counts`);

    // A code outside a table fails the read, never guesses.
    out.u32('kind', 7);
    assert.throws(() => codec.read(core), (error) => error instanceof EngineError && /output kind code 7/.test(error.message));
    out.u32('kind', code('kinds', 'decision'));
    out.u32('verdict', 3);
    assert.throws(() => codec.read(core), (error) => error instanceof EngineError && /verdict code 3/.test(error.message));
  }
});

// Every way a layout can disagree with the decoder, each applied to random
// valid layouts: the check refuses it and names what is wrong.
const MUTATIONS = [
  ['a missing field', (l, s, f) => { delete l[s].fields[f]; }, (s, f) => `${s}.${f} is missing`],
  ['another type', (l, s, f) => { const d = l[s].fields[f]; d.type = d.type === 'u32' ? 'f64' : 'u32'; }, (s, f) => `${s}.${f} is `],
  ['another size', (l, s, f) => { l[s].fields[f].size *= 2; }, (s, f) => `${s}.${f} is `],
  ['a misaligned offset', (l, s, f) => { l[s].fields[f].offset += l[s].fields[f].size / 2; }, (s, f) => `${s}.${f} is at byte`],
  ['a negative offset', (l, s, f) => { l[s].fields[f].offset = -8; }, (s, f) => `${s}.${f} is at byte`],
  ['a fractional offset', (l, s, f) => { l[s].fields[f].offset += 0.5; }, (s, f) => `${s}.${f} is at byte`],
  ['an offset past the struct', (l, s, f) => { l[s].fields[f].offset = l[s].size; }, (s, f) => `${s}.${f} .* lies outside`],
  ['an overlap', (l, s, f) => {
    const other = Object.entries(l[s].fields).find(([name, d]) => name !== f && d.size === l[s].fields[f].size);
    if (!other) return false;
    l[s].fields[f].offset = other[1].offset;
    return true;
  }, (s) => `${s}\\..* overlaps ${s}\\.`],
];
const STRUCT_MUTATIONS = [
  ['a size that is not a multiple of 8', (l, s) => { l[s].size += 4; }, (s) => `${s}: size`],
  ['an alignment other than 8', (l, s) => { l[s].align = 4; }, (s) => `${s}: size .* alignment 4`],
  ['no size', (l, s) => { delete l[s].size; }, (s) => `${s}: size undefined`],
  ['no struct', (l, s) => { delete l[s]; }, (s) => `no "${s}" struct`],
];
const TABLE_MUTATIONS = [
  ['an unknown name', (l, t) => { l[t][0] = 'maybe'; }],
  ['a missing name', (l, t) => { l[t].pop(); }],
  ['an extra name', (l, t) => { l[t].push('extra'); }],
  ['a repeated name', (l, t) => { l[t][1] = l[t][0]; }],
  ['not a list', (l, t) => { l[t] = 'allow,deny'; }],
];

test('property: every kind of mismatch is refused at load, naming it', () => {
  const structs = { output: OUTPUT_FIELDS, counter: COUNTER_FIELDS, count: COUNT_FIELDS, table_record: TABLE_RECORD_FIELDS };
  let refused = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(1000 + seed);
    const base = randomLayout(next);
    const pick = (list) => list[Math.floor(next() * list.length)];
    for (const [struct, fields] of Object.entries(structs)) {
      const field = pick(Object.keys(fields));
      for (const [what, mutate, message] of MUTATIONS) {
        const layout = structuredClone(base);
        if (mutate(layout, struct, field) === false) continue;
        assert.throws(() => checkLayout(JSON.stringify(layout)), (error) => {
          assert.ok(error instanceof EngineError, `${what}: an EngineError`);
          assert.match(error.message, /boundary layout does not match this façade/);
          assert.match(error.message, new RegExp(message(struct, field)), `${what} of ${struct}.${field}`);
          return true;
        }, `seed ${seed}: ${what} of ${struct}.${field} must be refused`);
        refused++;
      }
      for (const [what, mutate, message] of STRUCT_MUTATIONS) {
        const layout = structuredClone(base);
        mutate(layout, struct);
        assert.throws(() => checkLayout(JSON.stringify(layout)), new RegExp(message(struct)), `seed ${seed}: ${what} of ${struct}`);
        refused++;
      }
    }
    for (const table of ['kinds', 'verdicts', 'scopes', 'algorithms']) {
      for (const [what, mutate] of TABLE_MUTATIONS) {
        const layout = structuredClone(base);
        mutate(layout, table);
        assert.throws(() => checkLayout(JSON.stringify(layout)), new RegExp(`"${table}" is `), `seed ${seed}: ${what} in ${table}`);
        refused++;
      }
    }
  }
  assert.throws(() => checkLayout('{"output":'), /its description is not JSON/);
  assert.throws(() => checkLayout(JSON.stringify({ ...real, max_parked: 0 })), /max_parked is 0/);
  assert.throws(() => createCodec(checkLayout(realText), 12), /output area is at 12, not 8-aligned/);
  assert.ok(refused > 5000, `${refused} mismatches refused`);
});

// --- string versions: the decoder reads no byte of a text the core says it has seen ---

// What the core does (version_of in wasm/bindings.cpp): per place, the last
// text published there and its version; one counter numbers every change.
function versioner() {
  let last = 0;
  const places = new Map();
  return (place, text) => {
    const known = places.get(place);
    if (known && known.text === text) return known.version;
    last += 1;
    places.set(place, { text, version: last });
    return last;
  };
}

test('property: versioned strings decode to what the core wrote, over random sequences', () => {
  const texts = ['allowed', 'default_deny', 'rate_limited', 'x'.repeat(12), 'y'.repeat(12), '', 'é😀', 'Denied: tool "a" is not in the policy.',
    'Denied: tool "b" is not in the policy.', 'z'.repeat(300), 'w'.repeat(300)];
  for (let seed = 1; seed <= 100; seed++) {
    const next = random(5000 + seed);
    const raw = randomLayout(next);
    const layout = checkLayout(JSON.stringify(raw));
    const core = fakeCore();
    const output = 8 * (1 + Math.floor(next() * 64));
    const codec = createCodec(layout, output);
    const out = writer(core, raw, output, 'output');
    const code = (table, name) => raw[table].indexOf(name);
    const pick = (list) => list[Math.floor(next() * list.length)];
    const version = versioner();
    // Few addresses, reused with other text of the same or another length
    // (as the core's reused strings are): a version must be what decides.
    const addresses = [32768, 36864, 40960, 45056, 49152, 53248];
    const put = (text, at) => {
      const bytes = encoder.encode(text);
      core.HEAPU8.set(bytes, at);
      return bytes.length;
    };
    for (let step = 0; step < 200; step++) {
      // Bytes left at other addresses are garbage for this step.
      for (const at of addresses) core.HEAPU8.fill(next() * 256, at, at + 400);
      const unversioned = next() < 0.1; // a core that versions nothing writes 0
      if (next() < 0.6) {
        const verdict = pick(['allow', 'deny', 'approval_required']);
        const decision = { decision: verdict, code: pick(texts), rule: pick(texts), message: pick(texts) };
        out.u32('kind', code('kinds', 'decision'));
        out.u32('verdict', code('verdicts', verdict));
        // Three distinct addresses of the few, in a random order.
        const places = [...addresses].sort(() => next() - 0.5);
        for (const [index, field] of ['code', 'rule', 'message'].entries()) {
          const at = places[index];
          out.u32(field, at);
          out.u32(`${field}_length`, put(decision[field], at));
          out.u32(`${field}_version`, unversioned ? 0 : version(field, decision[field]));
        }
        out.u32('has_retry', 0);
        out.u32('approval_length', 0);
        assert.deepEqual(codec.read(core), decision, `seed ${seed} step ${step}: decision`);
      } else {
        out.u32('kind', code('kinds', 'parked'));
        out.u32('ticket', step + 1);
        out.f64('now_ms', T0);
        out.u32('approval_length', 0);
        const count = 1 + Math.floor(next() * 3);
        const first = 16384;
        const expected = [];
        for (let i = 0; i < count; i++) {
          const counter = writer(core, raw, first + i * raw.counter.size, 'counter');
          const e = { key: pick(texts), scope: 'grant', grant: pick(['alice', 'bobby', '', 'é']), cost: 1, max: 5, window_ms: 60_000, algorithm: 'fixed', bucket_start_ms: T0 };
          for (const field of ['key', 'grant']) {
            // Each counter's strings at their own address (as the core's are).
            const at = 57344 + (i * 2 + (field === 'grant' ? 1 : 0)) * 512;
            const bytes = encoder.encode(e[field]);
            core.HEAPU8.set(bytes, at);
            counter.u32(field, at);
            counter.u32(`${field}_length`, bytes.length);
            counter.u32(`${field}_version`, unversioned ? 0 : version(`${field}${i}`, e[field]));
          }
          counter.u32('scope', code('scopes', 'grant'));
          counter.u32('algorithm', code('algorithms', 'fixed'));
          for (const field of ['cost', 'max', 'window_ms', 'bucket_start_ms']) counter.f64(field, e[field]);
          expected.push(e);
        }
        out.u32('counters', first);
        out.u32('counter_count', count);
        assert.deepEqual(codec.read(core), { ticket: step + 1, now: T0, approval: undefined, counters: expected, address: 0, handle: null }, `seed ${seed} step ${step}: parked`);
      }
    }
  }
});

// The real core over random sequences of decisions whose strings change and
// repeat (codes, rules, messages naming the tool, counter keys and grants of
// other grants): a codec that has seen every output decodes each exactly as a
// codec that has seen none, which reads every byte.
test('property: the real core\'s versions never hand back a stale string', async () => {
  const { default: createToolgateCore } = await import('../../wasm/dist/toolgate_core.mjs');
  const { encodeCallInto } = await import('../../wasm/call-encoder.js');
  const { coreCodec } = await import('../../wasm/boundary-layout.js');
  const core = await createToolgateCore({ wasmBinary: await readFile(wasmFile), print: () => {}, printErr: () => {}, locateFile: (p) => p });
  const policy = new core.CompiledPolicy(JSON.stringify({
    version: '1',
    default: 'deny',
    tools: {
      run: { limits: [{ counter: 'runs', window: 'minute', max: 3 }, { window: 'hour', max: 50, scope: 'global', algorithm: 'sliding' }] },
      'ru*': { deny_if: [{ conditions: [{ path: 'args.n', op: 'gt', value: 5 }] }] },
      gate: { action: 'require_approval', approval: { timeout: '5m' } },
      read: {},
    },
  }));
  const address = policy.address();
  const kept = coreCodec(core);
  const next = random(99);
  const pick = (list) => list[Math.floor(next() * list.length)];
  const counts = new Map();
  for (let i = 0; i < 3000; i++) {
    const call = { tool: pick(['run', 'rux', 'gate', 'read', 'nope', 'other_' + Math.floor(next() * 3)]), arguments: { n: Math.floor(next() * 10) },
      grant: pick(['alice', 'bob', 'carol', 'é']), now: T0 + Math.floor(next() * 4) * 30_000 };
    const input = core._toolgate_input(4096);
    const length = encodeCallInto(call, core.HEAPU8, input, 4096);
    assert.ok(length > 0);
    core._toolgate_start(address, length, T0, 1);
    const first = kept.read(core);
    assert.deepEqual(first, coreCodec(core).read(core), `call ${i} (${JSON.stringify(call)}): step one`);
    if (first.ticket === undefined) continue;
    // Counts kept per key, so limits bite and messages and retries change.
    const states = first.counters.map((c) => ({ current: counts.get(c.key) ?? 0, previous: 0 }));
    for (const c of first.counters) counts.set(c.key, (counts.get(c.key) ?? 0) + (next() < 0.5 ? 1 : 0));
    kept.writeCounts(core, states);
    core._toolgate_finish(address, first.ticket, next() < 0.8 ? 1 : 0, states.length);
    assert.deepEqual(kept.read(core), coreCodec(core).read(core), `call ${i}: finish`);
    core._toolgate_release(address, first.ticket);
    if (next() < 0.02) counts.clear();
  }
  policy.delete();
});
