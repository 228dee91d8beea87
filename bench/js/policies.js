// Policies and calls shared by the JS benchmarks. bench/native/core_bench.cpp
// builds the same ones, so native and WebAssembly figures line up.

export const T0 = Date.UTC(2026, 0, 1); // 1767225600000, a minute boundary

// The "typical call" of the budgets: 5 arguments, 3 conditions, 1 limit.
export const typicalPolicy = {
  version: '1',
  default: 'deny',
  tools: {
    create_refund: {
      require: [{ path: 'args.currency', op: 'in', value: ['usd', 'eur'] }],
      deny_if: [{ conditions: [{ path: 'args.amount', op: 'gt', value: 500 }, { path: 'grant.role', op: 'neq', value: 'admin' }] }],
      limits: [{ counter: 'refunds', window: 'minute', max: 1e9 }],
    },
  },
};
export const typicalCall = {
  tool: 'create_refund',
  arguments: { amount: 120, currency: 'usd', charge: 'ch_123', reason: 'duplicate', notify: true },
  grant: { id: 'alice', role: 'support' },
  now: T0,
};

/** Compile-scaling policy: every tool has a deny_if condition and a rate limit. */
export function policyWithTools(count) {
  const tools = {};
  for (let i = 0; i < count; i++) {
    tools[`tool_${i}`] = { deny_if: [{ conditions: [{ path: 'args.n', op: 'gt', value: i }] }], rate_limit: '10/minute' };
  }
  return JSON.stringify({ version: '1', default: 'deny', tools });
}

/**
 * Matrix policy of `tools` tools: each has one deny_if entry with three
 * conditions (args.a0 gt, args.a1 eq, args.a2 in), none of which holds, and one
 * fixed limit that is never reached.
 */
export function matrixPolicy(tools) {
  const entries = {};
  for (let i = 0; i < tools; i++) {
    entries[`tool_${i}`] = {
      deny_if: [{
        conditions: [
          { path: 'args.a0', op: 'gt', value: 1000000 },
          { path: 'args.a1', op: 'eq', value: 'blocked' },
          { path: 'args.a2', op: 'in', value: ['x', 'y', 'z'] },
        ],
      }],
      limits: [{ counter: 'calls', window: 'minute', max: 1000000000 }],
    };
  }
  return JSON.stringify({ version: '1', default: 'deny', tools: entries });
}

/** A call to the tool in the middle with `count` arguments of mixed types. */
export function matrixCall(tools, count) {
  const args = {};
  for (let i = 0; i < count; i++) {
    const name = `a${i}`;
    switch (i % 5) {
      case 0: args[name] = i * 10 + 7; break;
      case 1: args[name] = `value_${i}`; break;
      case 2: args[name] = `text ${i} of a call`; break;
      case 3: args[name] = i % 2 === 0; break;
      default: args[name] = [i, 'item'];
    }
  }
  return { tool: `tool_${Math.floor(tools / 2)}`, arguments: args, grant: { id: 'alice', role: 'support' }, now: T0 };
}

/**
 * One condition per operator of the spec (policy-language.md: eq neq lt lte gt
 * gte in not_in exists regex contains starts_with ends_with glob), none of
 * which holds for operatorCall, plus contains on an array.
 */
const currencies = ['gbp', 'jpy', 'chf', 'cad', 'aud', 'nzd', 'sek', 'nok', 'dkk'];
export const operatorConditions = {
  eq: { path: 'args.currency', op: 'eq', value: 'gbp' },
  neq: { path: 'args.currency', op: 'neq', value: 'usd' },
  lt: { path: 'args.amount', op: 'lt', value: 10 },
  lte: { path: 'args.amount', op: 'lte', value: 10 },
  gt: { path: 'args.amount', op: 'gt', value: 500 },
  gte: { path: 'args.amount', op: 'gte', value: 500 },
  in: { path: 'args.currency', op: 'in', value: [...currencies, 'pln'] },
  not_in: { path: 'args.currency', op: 'not_in', value: [...currencies, 'usd'] },
  exists: { path: 'args.approved_by', op: 'exists', value: true },
  regex: { path: 'args.path', op: 'regex', value: '^(etc|root|var)/.*\\.(key|pem)$' },
  contains: { path: 'args.reason', op: 'contains', value: 'fraud' },
  starts_with: { path: 'args.path', op: 'starts_with', value: '/etc/' },
  ends_with: { path: 'args.path', op: 'ends_with', value: '.pem' },
  glob: { path: 'args.path', op: 'glob', value: 'secrets/*.pem' },
  contains_array: { path: 'args.tags', op: 'contains', value: 'wholesale' },
};
export const SPEC_OPERATORS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in', 'exists', 'regex', 'contains', 'starts_with', 'ends_with', 'glob'];

export function singleConditionPolicy(condition) {
  return JSON.stringify({ version: '1', default: 'deny', tools: { checked: { deny_if: [{ conditions: [condition] }] } } });
}
export const operatorCall = {
  tool: 'checked',
  arguments: {
    amount: 120, currency: 'usd', charge: 'ch_123', reason: 'duplicate', notify: true,
    path: 'src/components/button/index.js', tags: ['billing', 'refund', 'eu', 'priority', 'manual'],
  },
  grant: { id: 'alice', role: 'support' },
  now: T0,
};

/** A tool with `count` limits (distinct counters; minute, hour, day), all fixed or all sliding. */
export function limitsPolicy(algorithm, count) {
  const windows = ['minute', 'hour', 'day'];
  const limits = [];
  for (let i = 0; i < count; i++) limits.push({ counter: `c${i}`, window: windows[i % 3], max: 1000000000, algorithm });
  return JSON.stringify({ version: '1', default: 'deny', tools: { create_refund: { limits } } });
}
