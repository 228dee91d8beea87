// The policy language spec (shared/spec/policy-language.md), case by case,
// through `toolgate eval` as the spec's evaluation CLI section defines it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { evalLines, T0 } from './cli-helpers.js';

const MINUTE = 60_000;
const pick = (decision, ...keys) => Object.fromEntries(keys.map((k) => [k, decision[k]]));
const codes = (out) => out.map((d) => d.code);

describe('compatibility', () => {
  test('the published PolicyLayer example: 10 runs per minute per grant', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: { run: { limits: [{ counter: 'run_rate', window: 'minute', max: 10, scope: 'grant' }] } },
    };
    const calls = [];
    for (let i = 0; i < 11; i++) calls.push({ tool: 'run', arguments: {}, grant: 'alice', now: T0 + 1000 * i });
    calls.push({ tool: 'run', arguments: {}, grant: 'bob', now: T0 + 11_000 });
    calls.push({ tool: 'run', arguments: {}, grant: 'alice', now: T0 + MINUTE });
    calls.push({ tool: 'other', grant: 'alice', now: T0 + MINUTE });
    const out = await evalLines(policy, calls);
    assert.deepEqual(codes(out.slice(0, 10)), Array(10).fill('allowed'));
    assert.deepEqual(pick(out[10], 'decision', 'code', 'rule', 'retry_after_ms'), {
      decision: 'deny',
      code: 'rate_limited',
      rule: '/tools/run/limits/0',
      retry_after_ms: MINUTE - 10_000,
    });
    assert.equal(out[11].code, 'allowed', 'another grant has its own count');
    assert.equal(out[12].code, 'allowed', 'the minute window resets at :00');
    assert.deepEqual(pick(out[13], 'code', 'rule'), { code: 'default_deny', rule: '/default' });
  });
});

describe('document', () => {
  test('default allow: a tool without an entry is allowed by /default', async () => {
    const out = await evalLines({ version: '1', default: 'allow' }, [{ tool: 'anything' }]);
    assert.deepEqual(pick(out[0], 'decision', 'code', 'rule'), { decision: 'allow', code: 'allowed', rule: '/default' });
  });

  test('a missing default denies', async () => {
    const out = await evalLines({ version: '1', tools: { a: {} } }, [{ tool: 'a' }, { tool: 'b' }]);
    assert.deepEqual(codes(out), ['allowed', 'default_deny']);
  });

  test('hide: names and globs, before any entry, with /hide/N', async () => {
    const policy = {
      version: '1',
      default: 'allow',
      hide: ['drop_table', 'env*', '*_secret'],
      tools: { envGet: {} },
    };
    const out = await evalLines(policy, [{ tool: 'drop_table' }, { tool: 'envGet' }, { tool: 'api_secret' }, { tool: 'read' }]);
    assert.deepEqual(out.map((d) => pick(d, 'code', 'rule')), [
      { code: 'hidden', rule: '/hide/0' },
      { code: 'hidden', rule: '/hide/1' },
      { code: 'hidden', rule: '/hide/2' },
      { code: 'allowed', rule: '/default' },
    ]);
  });

  test('tool lookup: exact first, then the glob with most literal characters, ties to the first written', async () => {
    const policy = `{"version":"1","default":"deny","tools":{
      "b*": {"action":"deny","on_deny":"b-star"},
      "*_file": {"action":"deny","on_deny":"star-file"},
      "read_*": {"action":"deny","on_deny":"read-star"},
      "read_file": {},
      "*z": {"action":"deny","on_deny":"z1"},
      "y*": {"action":"deny","on_deny":"z2"}
    }}`;
    const out = await evalLines(policy, [
      { tool: 'read_file' },
      { tool: 'read_dir' },
      { tool: 'write_file' },
      { tool: 'read_x_file' },
      { tool: 'yz' },
    ]);
    assert.deepEqual(out.map((d) => d.message ?? d.code), ['Allowed.', 'read-star', 'star-file', 'star-file', 'z1']);
    assert.equal(out[1].rule, '/tools/read_*/action');
  });

  test('all_tools rules apply to every call, after the tool\'s own', async () => {
    const policy = {
      version: '1',
      default: 'allow',
      all_tools: {
        require: [{ path: 'grant.team', op: 'eq', value: 'platform' }],
        deny_if: [{ conditions: [{ path: 'args.dry_run', op: 'eq', value: false }], on_deny: 'dry runs only' }],
        rate_limit: '2/minute',
      },
      tools: { a: { require: [{ path: 'args.ok', op: 'eq', value: true }] } },
    };
    const grant = { id: 'g', team: 'platform' };
    const out = await evalLines(policy, [
      { tool: 'a', arguments: {}, grant: { id: 'g', team: 'web' }, now: T0 },
      { tool: 'b', arguments: {}, grant: { id: 'g', team: 'web' }, now: T0 },
      { tool: 'b', arguments: { dry_run: false }, grant, now: T0 },
      { tool: 'b', arguments: {}, grant, now: T0 },
      { tool: 'c', arguments: {}, grant, now: T0 },
      { tool: 'd', arguments: {}, grant, now: T0 },
    ]);
    assert.deepEqual(out.map((d) => pick(d, 'code', 'rule')), [
      { code: 'requirement_failed', rule: '/tools/a/require/0' },
      { code: 'requirement_failed', rule: '/all_tools/require/0' },
      { code: 'condition_denied', rule: '/all_tools/deny_if/0' },
      { code: 'allowed', rule: '/default' },
      { code: 'allowed', rule: '/default' },
      { code: 'rate_limited', rule: '/all_tools/rate_limit' },
    ]);
    assert.equal(out[2].message, 'dry runs only');
  });
});

describe('tool entry', () => {
  test('action deny, with on_deny or its alias reason', async () => {
    const policy = {
      version: '1',
      default: 'allow',
      tools: { rm: { action: 'deny', on_deny: 'never rm' }, mv: { action: 'deny', reason: 'never mv' } },
    };
    const out = await evalLines(policy, [{ tool: 'rm' }, { tool: 'mv' }]);
    assert.deepEqual(out.map((d) => pick(d, 'code', 'rule', 'message')), [
      { code: 'tool_denied', rule: '/tools/rm/action', message: 'never rm' },
      { code: 'tool_denied', rule: '/tools/mv/action', message: 'never mv' },
    ]);
  });

  test('args: the JSON Schema subset', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: {
        t: {
          args: {
            type: 'object',
            required: ['n'],
            additionalProperties: false,
            properties: {
              n: { type: 'integer', minimum: 1, maximum: 10 },
              s: { type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-z]+$' },
              e: { enum: ['a', 'b'] },
              c: { const: 42 },
              x: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
              l: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 2 },
            },
          },
        },
      },
    };
    const ok = { n: 5 };
    const cases = [
      [ok, 'allowed'],
      [{ n: 5.0, s: 'abc', e: 'a', c: 42, x: 0.5, l: ['x'] }, 'allowed'],
      [{}, 'invalid_arguments'],
      [{ n: 5.5 }, 'invalid_arguments'],
      [{ n: 0 }, 'invalid_arguments'],
      [{ n: 11 }, 'invalid_arguments'],
      [{ n: 5, s: 'a' }, 'invalid_arguments'],
      [{ n: 5, s: 'abcde' }, 'invalid_arguments'],
      [{ n: 5, s: 'AB' }, 'invalid_arguments'],
      [{ n: 5, e: 'c' }, 'invalid_arguments'],
      [{ n: 5, c: 41 }, 'invalid_arguments'],
      [{ n: 5, x: 0 }, 'invalid_arguments'],
      [{ n: 5, x: 1 }, 'invalid_arguments'],
      [{ n: 5, l: [] }, 'invalid_arguments'],
      [{ n: 5, l: ['a', 'b', 'c'] }, 'invalid_arguments'],
      [{ n: 5, l: [1] }, 'invalid_arguments'],
      [{ n: 5, extra: true }, 'invalid_arguments'],
    ];
    const out = await evalLines(policy, cases.map(([args]) => ({ tool: 't', arguments: args })));
    assert.deepEqual(codes(out), cases.map(([, code]) => code));
    assert.equal(out[3].rule, '/tools/t/args');
  });

  test('require: a condition or {conditions, on_deny}; every entry must hold', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: {
        t: {
          require: [
            { path: 'args.env', op: 'in', value: ['dev', 'staging'] },
            { conditions: [{ path: 'grant.role', op: 'eq', value: 'ci' }, { path: 'args.ok', op: 'exists' }], on_deny: 'ci only' },
          ],
        },
      },
    };
    const out = await evalLines(policy, [
      { tool: 't', arguments: { env: 'prod' }, grant: { id: 'a', role: 'ci' } },
      { tool: 't', arguments: { env: 'dev' }, grant: { id: 'a', role: 'dev' } },
      { tool: 't', arguments: { env: 'dev', ok: 1 }, grant: { id: 'a', role: 'ci' } },
    ]);
    assert.deepEqual(out.map((d) => pick(d, 'code', 'rule')), [
      { code: 'requirement_failed', rule: '/tools/t/require/0' },
      { code: 'requirement_failed', rule: '/tools/t/require/1' },
      { code: 'allowed', rule: '/tools/t' },
    ]);
    assert.equal(out[1].message, 'ci only');
  });

  test('deny_if: denies when all conditions of one entry hold', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: {
        create_refund: {
          deny_if: [
            { conditions: [{ path: 'args.amount', op: 'gt', value: 100 }, { path: 'args.currency', op: 'eq', value: 'usd' }], on_deny: 'big usd' },
            { conditions: [{ path: 'args.note', op: 'contains', value: 'urgent' }] },
          ],
        },
      },
    };
    const out = await evalLines(policy, [
      { tool: 'create_refund', arguments: { amount: 150, currency: 'usd' } },
      { tool: 'create_refund', arguments: { amount: 150, currency: 'eur' } },
      { tool: 'create_refund', arguments: { amount: 1, note: 'very urgent' } },
    ]);
    assert.deepEqual(out.map((d) => pick(d, 'code', 'rule')), [
      { code: 'condition_denied', rule: '/tools/create_refund/deny_if/0' },
      { code: 'allowed', rule: '/tools/create_refund' },
      { code: 'condition_denied', rule: '/tools/create_refund/deny_if/1' },
    ]);
    assert.equal(out[0].message, 'big usd');
  });
});

describe('conditions', () => {
  // Each row: op, value, argument, expected truth (true -> denied by deny_if).
  const rows = [
    ['eq', 1, 1.0, true],
    ['eq', '1', 1, false],
    ['eq', { a: [1, { b: 2 }] }, { a: [1.0, { b: 2 }] }, true],
    ['neq', 'x', 'y', true],
    ['neq', 'x', 'x', false],
    ['lt', 10, 9.5, true],
    ['lt', 10, 10, false],
    ['lte', 10, 10, true],
    ['gt', 10, 11, true],
    ['gt', 10, 10, false],
    ['gte', 10, 10, true],
    ['in', ['a', 1], 1.0, true],
    ['in', ['a', 1], 'b', false],
    ['not_in', ['a', 1], 'b', true],
    ['not_in', ['a', 1], 'a', false],
    ['regex', '^ab+c$', 'abbbc', true],
    ['regex', 'b+c', 'xxabbbcxx', true],
    ['regex', '^ab+c$', 'ac', false],
    ['contains', 'rm -rf', 'sudo rm -rf /', true],
    ['contains', 'x', ['a', 'x'], true],
    ['contains', 2, [1, 2.0], true],
    ['contains', 'z', ['a'], false],
    ['starts_with', '/etc', '/etc/passwd', true],
    ['starts_with', '/etc', '/home', false],
    ['ends_with', '.pem', 'key.pem', true],
    ['ends_with', '.pem', 'key.pub', false],
    ['glob', 'src/*.rs', 'src/main.rs', true],
    ['glob', 'src/*.rs', 'lib/main.rs', false],
  ];
  test('all operators, as deny_if conditions', async () => {
    const tools = {};
    rows.forEach(([op, value], i) => {
      tools[`t${i}`] = { deny_if: [{ conditions: [{ path: 'args.v', op, value }] }] };
    });
    const out = await evalLines(
      { version: '1', default: 'deny', tools },
      rows.map(([, , v], i) => ({ tool: `t${i}`, arguments: { v } })),
    );
    rows.forEach(([op, value, v, holds], i) => {
      assert.equal(out[i].code, holds ? 'condition_denied' : 'allowed', `${JSON.stringify(v)} ${op} ${JSON.stringify(value)}`);
    });
  });

  test('exists tests presence; every other op on a missing path is false', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: {
        a: { deny_if: [{ conditions: [{ path: 'args.x', op: 'exists' }] }] },
        b: { deny_if: [{ conditions: [{ path: 'args.x', op: 'neq', value: 1 }] }] },
        c: { require: [{ path: 'args.x', op: 'neq', value: 1 }] },
      },
    };
    const out = await evalLines(policy, [
      { tool: 'a', arguments: { x: null } },
      { tool: 'a', arguments: {} },
      { tool: 'b', arguments: {} },
      { tool: 'c', arguments: {} },
    ]);
    assert.deepEqual(codes(out), ['condition_denied', 'allowed', 'allowed', 'requirement_failed']);
  });

  test('paths: dot segments, array indexes, grant.id and grant attributes', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: {
        t: {
          require: [
            { path: 'args.files.0.name', op: 'ends_with', value: '.md' },
            { path: 'grant.id', op: 'starts_with', value: 'bot-' },
            { path: 'grant.teams.1', op: 'eq', value: 'docs' },
          ],
        },
      },
    };
    const grant = { id: 'bot-1', teams: ['web', 'docs'] };
    const out = await evalLines(policy, [
      { tool: 't', arguments: { files: [{ name: 'README.md' }] }, grant },
      { tool: 't', arguments: { files: [{ name: 'a.rs' }] }, grant },
      { tool: 't', arguments: { files: [{ name: 'README.md' }] }, grant: { ...grant, id: 'human' } },
      { tool: 't', arguments: { files: [{ name: 'README.md' }] }, grant: { ...grant, teams: ['web'] } },
    ]);
    assert.deepEqual(codes(out), ['allowed', 'requirement_failed', 'requirement_failed', 'requirement_failed']);
  });

  test('type confusion fails closed with invalid_arguments', async () => {
    const ops = [
      ['gt', 100, '1000'],
      ['lte', 5, [1]],
      ['regex', '^a', 5],
      ['starts_with', 'a', ['a']],
      ['ends_with', 'a', { a: 1 }],
      ['glob', '*', true],
      ['contains', 'a', 42],
      ['contains', 1, 'a1'],
    ];
    const tools = {};
    ops.forEach(([op, value], i) => {
      tools[`t${i}`] = { deny_if: [{ conditions: [{ path: 'args.v', op, value }] }] };
    });
    const out = await evalLines(
      { version: '1', default: 'deny', tools },
      ops.map(([, , v], i) => ({ tool: `t${i}`, arguments: { v } })),
    );
    out.forEach((d, i) => assert.deepEqual(pick(d, 'decision', 'code', 'rule'), {
      decision: 'deny', code: 'invalid_arguments', rule: `/tools/t${i}/deny_if/0`,
    }));
  });

  test('a type error denies even when another condition of its entry is false', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: {
        refund: {
          deny_if: [{ conditions: [{ path: 'args.currency', op: 'eq', value: 'usd' }, { path: 'args.amount', op: 'gt', value: 100 }] }],
        },
      },
    };
    const out = await evalLines(policy, [{ tool: 'refund', arguments: { currency: 'eur', amount: '1000' } }]);
    assert.equal(out[0].code, 'invalid_arguments');
  });
});

describe('limits', () => {
  test('windows: named, durations and seconds; retry_after_ms to the end of the window', async () => {
    const windows = ['second', 'minute', 'hour', 'day', '10s', '5m', '2h', '1d', 30];
    const lengths = [1000, MINUTE, 3_600_000, 86_400_000, 10_000, 300_000, 7_200_000, 86_400_000, 30_000];
    const tools = {};
    windows.forEach((window, i) => (tools[`t${i}`] = { limits: [{ window, max: 1 }] }));
    const calls = windows.flatMap((_, i) => [
      { tool: `t${i}`, now: T0 + 400 },
      { tool: `t${i}`, now: T0 + 500 },
      { tool: `t${i}`, now: T0 + lengths[i] },
    ]);
    const out = await evalLines({ version: '1', default: 'deny', tools }, calls);
    windows.forEach((window, i) => {
      const [first, second, next] = out.slice(3 * i, 3 * i + 3);
      assert.equal(first.code, 'allowed', `${window}`);
      assert.equal(second.code, 'rate_limited', `${window}`);
      assert.equal(second.retry_after_ms, lengths[i] - 500, `${window}`);
      assert.equal(next.code, 'allowed', `${window} resets`);
    });
  });

  test('fixed windows align to the UTC epoch, not to the first call', async () => {
    const policy = { version: '1', default: 'deny', tools: { t: { rate_limit: '1/day' } } };
    const out = await evalLines(policy, [
      { tool: 't', now: '2026-03-10T23:59:00Z' },
      { tool: 't', now: '2026-03-10T23:59:30Z' },
      { tool: 't', now: '2026-03-11T00:00:00Z' },
    ]);
    assert.deepEqual(codes(out), ['allowed', 'rate_limited', 'allowed']);
    assert.equal(out[1].retry_after_ms, 30_000);
  });

  test('sliding: the two-bucket estimate prev * (window - elapsed) / window + current', async () => {
    const policy = { version: '1', default: 'deny', tools: { t: { limits: [{ window: 'minute', max: 10, algorithm: 'sliding' }] } } };
    const calls = [];
    for (let i = 0; i < 10; i++) calls.push({ tool: 't', now: T0 + 50_000 + i });
    // 30 s into the next bucket: estimate 10 * 30/60 = 5, so 5 more fit.
    for (let i = 0; i < 6; i++) calls.push({ tool: 't', now: T0 + MINUTE + 30_000 });
    // At 36 s the estimate is 10 * 24/60 + 5 = 9: one more fits.
    calls.push({ tool: 't', now: T0 + MINUTE + 36_000 });
    calls.push({ tool: 't', now: T0 + MINUTE + 36_000 });
    const out = await evalLines(policy, calls);
    assert.deepEqual(codes(out.slice(0, 10)), Array(10).fill('allowed'));
    assert.deepEqual(codes(out.slice(10, 16)), [...Array(5).fill('allowed'), 'rate_limited']);
    assert.equal(out[15].retry_after_ms, 6000, 'when 10*(60-e)/60 + 5 + 1 <= 10, at e = 36 s');
    assert.deepEqual(codes(out.slice(16)), ['allowed', 'rate_limited']);
  });

  test('scope global is one count for everyone; grant counts per grant', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: { t: { limits: [{ window: 'minute', max: 2, scope: 'global' }] }, u: { limits: [{ window: 'minute', max: 1 }] } },
    };
    const out = await evalLines(policy, [
      { tool: 't', grant: 'a', now: T0 },
      { tool: 't', grant: 'b', now: T0 },
      { tool: 't', grant: 'c', now: T0 },
      { tool: 'u', grant: 'a', now: T0 },
      { tool: 'u', grant: 'b', now: T0 },
      { tool: 'u', grant: 'a', now: T0 },
    ]);
    assert.deepEqual(codes(out), ['allowed', 'allowed', 'rate_limited', 'allowed', 'allowed', 'rate_limited']);
  });

  test('key: one count per distinct value; a missing key is invalid_arguments', async () => {
    const policy = { version: '1', default: 'deny', tools: { push: { limits: [{ window: 'hour', max: 1, key: 'args.repo' }] } } };
    const out = await evalLines(policy, [
      { tool: 'push', arguments: { repo: 'a' }, now: T0 },
      { tool: 'push', arguments: { repo: 'b' }, now: T0 },
      { tool: 'push', arguments: { repo: 'a' }, now: T0 },
      { tool: 'push', arguments: {}, now: T0 },
    ]);
    assert.deepEqual(codes(out), ['allowed', 'allowed', 'rate_limited', 'invalid_arguments']);
    assert.equal(out[3].rule, '/tools/push/limits/0');
  });

  test('a shared counter name shares one count across tools', async () => {
    const limit = { counter: 'writes', window: 'minute', max: 3 };
    const policy = { version: '1', default: 'deny', tools: { a: { limits: [limit] }, b: { limits: [limit] }, c: { limits: [{ ...limit, counter: 'other' }] } } };
    const out = await evalLines(policy, ['a', 'b', 'a', 'b', 'c'].map((tool) => ({ tool, now: T0 })));
    assert.deepEqual(codes(out), ['allowed', 'allowed', 'allowed', 'rate_limited', 'allowed']);
  });

  test('cost and cost_from (a spend limit)', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: {
        heavy: { limits: [{ window: 'minute', max: 10, cost: 4 }] },
        spend: { limits: [{ window: 'day', max: 100, cost_from: 'args.amount' }] },
      },
    };
    const out = await evalLines(policy, [
      { tool: 'heavy', now: T0 },
      { tool: 'heavy', now: T0 },
      { tool: 'heavy', now: T0 },
      { tool: 'spend', arguments: { amount: 60.5 }, now: T0 },
      { tool: 'spend', arguments: { amount: 39.5 }, now: T0 },
      { tool: 'spend', arguments: { amount: 0 }, now: T0 },
      { tool: 'spend', arguments: { amount: 0.01 }, now: T0 },
      { tool: 'spend', arguments: { amount: -5 }, now: T0 },
      { tool: 'spend', arguments: { amount: '5' }, now: T0 },
      { tool: 'spend', arguments: {}, now: T0 },
    ]);
    assert.deepEqual(codes(out), [
      'allowed', 'allowed', 'rate_limited',
      'allowed', 'allowed', 'allowed', 'rate_limited',
      'invalid_arguments', 'invalid_arguments', 'invalid_arguments',
    ]);
  });

  test('all or nothing: a call denied by its third limit leaves the first two untouched', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: {
        t: { limits: [{ counter: 'one', window: 'minute', max: 2 }, { counter: 'two', window: 'minute', max: 2 }, { counter: 'three', window: 'minute', max: 1, key: 'args.k' }] },
        probe: { limits: [{ counter: 'one', window: 'minute', max: 2 }] },
      },
    };
    const out = await evalLines(policy, [
      { tool: 't', arguments: { k: 'x' }, now: T0 },
      { tool: 't', arguments: { k: 'x' }, now: T0 },
      { tool: 't', arguments: { k: 'x' }, now: T0 },
      { tool: 'probe', now: T0 },
      { tool: 'probe', now: T0 },
    ]);
    assert.deepEqual(out.map((d) => pick(d, 'code', 'rule')).slice(0, 3), [
      { code: 'allowed', rule: '/tools/t' },
      { code: 'rate_limited', rule: '/tools/t/limits/2' },
      { code: 'rate_limited', rule: '/tools/t/limits/2' },
    ]);
    assert.deepEqual(codes(out.slice(3)), ['allowed', 'rate_limited'], 'counter "one" was charged once, by the allowed call');
  });

  test('rate_limit shorthand: "N/window" and {max, window}', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: { a: { rate_limit: '2/minute' }, b: { rate_limit: { max: 1, window: 60 } }, c: { rate_limit: '1/10s' } },
    };
    const out = await evalLines(policy, [
      ...['a', 'a', 'a'].map((tool) => ({ tool, now: T0 })),
      ...['b', 'b'].map((tool) => ({ tool, now: T0 })),
      { tool: 'c', now: T0 },
      { tool: 'c', now: T0 + 5000 },
      { tool: 'c', now: T0 + 10_000 },
    ]);
    assert.deepEqual(codes(out), ['allowed', 'allowed', 'rate_limited', 'allowed', 'rate_limited', 'allowed', 'rate_limited', 'allowed']);
    assert.equal(out[2].rule, '/tools/a/rate_limit');
    assert.equal(out[6].retry_after_ms, 5000);
  });

  test('a limit\'s on_deny is the message', async () => {
    const policy = { version: '1', default: 'deny', tools: { t: { limits: [{ window: 'minute', max: 1, on_deny: 'slow down' }] } } };
    const out = await evalLines(policy, [{ tool: 't', now: T0 }, { tool: 't', now: T0 }]);
    assert.equal(out[1].message, 'slow down');
  });

  test('quota is consumed only by allowed calls', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      tools: { t: { deny_if: [{ conditions: [{ path: 'args.bad', op: 'eq', value: true }] }], rate_limit: '2/minute' } },
    };
    const out = await evalLines(policy, [
      { tool: 't', arguments: { bad: true }, now: T0 },
      { tool: 't', arguments: { bad: true }, now: T0 },
      { tool: 't', arguments: {}, now: T0 },
      { tool: 't', arguments: {}, now: T0 },
      { tool: 't', arguments: {}, now: T0 },
    ]);
    assert.deepEqual(codes(out), ['condition_denied', 'condition_denied', 'allowed', 'allowed', 'rate_limited']);
  });
});

describe('order of evaluation: first denial wins', () => {
  test('each step before the next', async () => {
    const policy = {
      version: '1',
      default: 'deny',
      hide: ['secret'],
      tools: {
        secret: { action: 'deny' },
        off: { action: 'deny', args: { type: 'object', required: ['x'] } },
        t: {
          action: 'require_approval',
          args: { type: 'object', properties: { n: { type: 'number' } } },
          require: [{ path: 'args.n', op: 'lt', value: 100 }],
          deny_if: [{ conditions: [{ path: 'args.n', op: 'gt', value: 50 }] }],
          rate_limit: '1/minute',
        },
      },
    };
    const out = await evalLines(policy, [
      '{"arguments":{}}',
      { tool: 'secret' },
      { tool: 'unknown' },
      { tool: 'off', arguments: {} },
      { tool: 't', arguments: { n: 'x' } },
      { tool: 't', arguments: { n: 200 } },
      { tool: 't', arguments: { n: 60 } },
      { tool: 't', arguments: { n: 1 } },
    ]);
    assert.deepEqual(out.map((d) => pick(d, 'decision', 'code', 'rule')), [
      { decision: 'deny', code: 'invalid_call', rule: '' },
      { decision: 'deny', code: 'hidden', rule: '/hide/0' },
      { decision: 'deny', code: 'default_deny', rule: '/default' },
      { decision: 'deny', code: 'tool_denied', rule: '/tools/off/action' },
      { decision: 'deny', code: 'invalid_arguments', rule: '/tools/t/args' },
      { decision: 'deny', code: 'requirement_failed', rule: '/tools/t/require/0' },
      { decision: 'deny', code: 'condition_denied', rule: '/tools/t/deny_if/0' },
      { decision: 'approval_required', code: 'approval_required', rule: '/tools/t/action' },
    ]);
  });
});

describe('approvals', () => {
  const policy = {
    version: '1',
    default: 'deny',
    tools: { deploy: { action: 'require_approval', approval: { timeout: '10m' }, rate_limit: '1/hour' } },
  };
  const call = { tool: 'deploy', arguments: { service: 'api', version: 2.0, tags: ['a'] }, grant: 'ops' };

  test('approval_id is the SHA-256 of the RFC 8785 form of {arguments, grant, tool}', async () => {
    const [decision] = await evalLines(policy, [{ ...call, now: T0 }]);
    const canonical = '{"arguments":{"service":"api","tags":["a"],"version":2},"grant":"ops","tool":"deploy"}';
    assert.equal(decision.approval_id, createHash('sha256').update(canonical).digest('hex'));
    assert.equal(decision.decision, 'approval_required');
    assert.equal(decision.code, 'approval_required');
  });

  test('an approved call is allowed once, from the same grant, within the timeout; limits still apply', async () => {
    const [{ approval_id: id }] = await evalLines(policy, [{ ...call, now: T0 }]);
    const out = await evalLines(policy, [
      { approve: id, now: T0 },
      { ...call, grant: 'intruder', now: T0 + 1000 },
      { ...call, arguments: { ...call.arguments, service: 'db' }, now: T0 + 1000 },
      { ...call, now: T0 + 2000 },
      { ...call, now: T0 + 3000 },
      { approve: id, now: T0 + 4000 },
      { ...call, now: T0 + 5000 },
      { approve: id, now: T0 + 2 * 3_600_000 },
      { ...call, now: T0 + 2 * 3_600_000 + 10 * MINUTE + 1 },
    ]);
    assert.deepEqual(out.map((d) => d.code ?? 'approved'), [
      'approved',
      'approval_required',
      'approval_required',
      'allowed',
      'approval_required',
      'approved',
      'rate_limited',
      'approved',
      'approval_required',
    ]);
  });
});
