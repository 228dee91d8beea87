// Random policies and calls for the native-vs-WebAssembly differential test,
// deterministic by (seed, case number): generateCase(seed, i) is always the
// same case, so one divergence out of 100 000 reproduces on its own.
//
// Policies are valid by construction (about 3% get one deliberate mistake, so
// diagnostics are compared too) and cover: default allow/deny/missing, hide,
// all_tools, exact and glob tool keys, allow/deny/require_approval, on_deny and
// reason, approval timeouts, args schemas (type, properties, required,
// additionalProperties, enum, const, pattern, lengths, bounds, items, counts,
// boolean schemas), require (single conditions and groups) and deny_if with
// every operator, limits (counter names shared across tools, fixed and sliding
// windows in every accepted form, grant and global scope, key, cost,
// cost_from, on_deny) and rate_limit as text and object. Calls pick tools,
// arguments, grants (ids and attribute objects) and times (`now` as epoch ms,
// RFC 3339 with fractions and offsets, or the host's default) to hit those
// rules, with a few malformed calls. Number literals are written as text
// ("1.0", "1e400", "-0") so both builds parse the same odd forms.

/** A number written exactly as given in JSON text. */
export class Raw {
  constructor(text) {
    this.text = text;
  }
}

// sfc32, seeded from a string hash: fast, good enough, and the same everywhere.
export function rngFor(...parts) {
  let h = 1779033703 ^ 0;
  const text = parts.join(':');
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  const next = () => {
    h = Math.imul(h ^ (h >>> 16), 2246822507);
    h = Math.imul(h ^ (h >>> 13), 3266489909);
    return (h ^= h >>> 16) >>> 0;
  };
  let a = next(), b = next(), c = next(), d = next();
  const random = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    const r = (t + d) | 0;
    c = (c + r) | 0;
    return (r >>> 0) / 4294967296;
  };
  const rng = {
    random,
    int: (n) => Math.floor(random() * n),
    chance: (p) => random() < p,
    pick: (list) => list[Math.floor(random() * list.length)],
    some: (list, max) => {
      const n = Math.floor(random() * (max + 1));
      const out = [];
      for (let i = 0; i < n; i++) out.push(rng.pick(list));
      return out;
    },
  };
  return rng;
}

// JSON text with Raw numbers, key order as given, optional indentation.
export function toJson(value, indent = '', depth = 0) {
  const nl = indent ? `\n${indent.repeat(depth + 1)}` : '';
  const end = indent ? `\n${indent.repeat(depth)}` : '';
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[${value.map((v) => nl + toJson(v, indent, depth + 1)).join(',')}${end}]`;
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    const sep = indent ? ': ' : ':';
    return `{${entries.map(([k, v]) => nl + JSON.stringify(k) + sep + toJson(v, indent, depth + 1)).join(',')}${end}}`;
  }
  return JSON.stringify(value);
}

export const T0 = 1767225600000; // 2026-01-01T00:00:00Z

const TOOLS = ['read', 'write', 'run', 'deploy', 'search', 'db.query', 'db.read_all', 'run_fast', 'é-tool', 'send/email', 'get-env', 'pay', 'Run', 'x'];
const GLOBS = ['run*', '*_fast', 'db.*', '*', '*-*', 'se*ch', '*e*', 'get-*', '*/*', 'é*'];
const ARGS = ['amount', 'path', 'env', 'tags', 'n', 'user', 'nested', 'cmd', 'currency', 'é', 'list'];
const ATTRS = ['role', 'tier', 'team', 'regions', 'id'];
const COUNTERS = ['shared', 'money', 'calls', 'a/b', 'é'];
const PATTERNS = ['^/tmp/', '\\.pem$', '^[a-z]+$', '\\d{3,}', '^(?:prod|staging)$', 'a|b', '[^\\x00-\\x7f]', '\\bsecret\\b',
  '^.{0,5}$', '(?:ab)+c?', '\\u{1F600}', '[\\w-.]+@', 'x*?y', '^\\s*$', '[]', '[^]', '^\\d+(?:\\.\\d{1,2})?$', '.', '^$',
  'é+', '^[^/]*$', '\\u00e9', '(a|ab)(c|bcd)(d*)', '^(?:[a-z0-9-]+\\.)+[a-z]{2,}$', 'a{2}', 'a{2,}b{0,3}'];
const STRINGS = ['', 'a', 'b', 'prod', 'staging', '/tmp/x', '/etc/passwd', 'id.pem', 'hello world', 'é', '😀', 'abab', 'abc',
  'secret', 'a secret b', '\u2028', 'EUR', 'USD', 'admin', 'x\ny', '12345', '123.45', 'A'.repeat(70), 'é'.repeat(40),
  '😀'.repeat(20), 'x@y.z', 'example.com', 'tab\there', 'quote"back\\slash', '\u0001ctl', 'ab'.repeat(40) + 'é', 'run',
  'ls', 'cat'];
const NUMBERS = ['0', '1', '-1', '2', '3', '5', '10', '0.5', '1.5', '1.0', '1e6', '1e21', '-5', '100', '999.99', '9007199254740993',
  '1e300', '-0', '0.1', '1E2', '7', '250', '500.5', '2.5e-7', '123456789012345678901234567890', '4', '-1e-400', '1E+2'];
const WINDOWS = ['second', 'minute', 'hour', 'day', 'seconds', 'minutes', 'sec', 'secs', 'min', 'mins', 'hr', 'hrs', 'hours',
  'days', '10s', '5m', '2h', '1d', 's', 'm', 'h', 'd', 1, 30, 60, 3600, 7, '999999999d', 1e12, '90s', new Raw('60.0')];
const TIMEOUTS = ['30s', '5m', '2h', '1d', 'hour', 'minute', 10, 90, 600, '999999999d', 1e12];
const OPS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in', 'exists', 'regex', 'contains', 'starts_with', 'ends_with', 'glob'];

// Host times stay within the ECMAScript Date range, as Policy.decide() requires.
const clampNow = (ms) => Math.max(-8.64e15, Math.min(8.64e15, ms));
const num = (rng) => new Raw(rng.pick(NUMBERS));

function value(rng, depth = 0) {
  switch (rng.int(depth > 2 ? 3 : 6)) {
    case 0: return rng.pick(STRINGS);
    case 1: return num(rng);
    case 2: return rng.pick([true, false, null]);
    case 3: return rng.some([0, 1, 2].map(() => value(rng, depth + 1)), 3);
    case 4: {
      const out = {};
      for (const k of rng.some(['x', 'name', 'a', 'b', 'é'], 3)) out[k] = value(rng, depth + 1);
      return out;
    }
    default: return rng.chance(0.5) ? rng.pick(STRINGS) : num(rng);
  }
}

function path(rng) {
  if (rng.chance(0.25)) return `grant.${rng.pick(ATTRS)}`;
  const name = rng.pick(ARGS);
  if (name === 'nested') return rng.pick(['args.nested.x', 'args.nested.name', 'args.nested', 'args.nested.0']);
  if (name === 'list') return rng.pick(['args.list.0', 'args.list.1.name', 'args.list']);
  if (name === 'tags') return rng.pick(['args.tags', 'args.tags.0']);
  return `args.${name}`;
}

function condition(rng) {
  const op = rng.pick(OPS);
  const c = { path: path(rng), op };
  switch (op) {
    case 'lt': case 'lte': case 'gt': case 'gte': c.value = num(rng); break;
    case 'in': case 'not_in': c.value = rng.some([0, 1, 2, 3].map(() => value(rng, 2)), 4); break;
    case 'exists': if (rng.chance(0.6)) c.value = rng.chance(0.5); break;
    case 'regex': c.value = rng.pick(PATTERNS); break;
    case 'starts_with': case 'ends_with': case 'glob':
      c.value = rng.chance(0.3) && op === 'glob' ? rng.pick(['*', '/tmp/*', '*.pem', '*secret*', 'a*b*c', '']) : rng.pick(STRINGS);
      break;
    default: c.value = value(rng, 1);
  }
  // Key order varies: it must not matter.
  return rng.chance(0.2) ? Object.fromEntries(Object.entries(c).reverse()) : c;
}

function group(rng, single) {
  if (single && rng.chance(0.5)) {
    const c = condition(rng);
    if (rng.chance(0.3)) c.on_deny = rng.pick(['need it', 'Requirement: é', 'x'.repeat(3)]);
    return c;
  }
  const g = { conditions: Array.from({ length: rng.chance(0.6) ? 1 : 2 + rng.int(2) }, () => condition(rng)) };
  if (rng.chance(0.4)) g.on_deny = rng.pick(['denied here', 'Not for agents.', '😀 no', 'quote " and \\']);
  return g;
}

function schema(rng, depth = 0) {
  if (rng.chance(0.08)) return rng.chance(0.8);
  const s = {};
  const kind = rng.pick(depth === 0 ? ['object', 'object', 'object', 'any'] : ['string', 'number', 'integer', 'array', 'object', 'boolean', 'null', 'multi', 'any']);
  if (kind === 'multi') s.type = rng.some(['string', 'number', 'null', 'integer', 'boolean'], 3).filter((t, i, a) => a.indexOf(t) === i);
  else if (kind !== 'any') s.type = kind;
  if (Array.isArray(s.type) && s.type.length === 0) s.type = 'string';
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  if (t === 'string' || kind === 'any') {
    if (rng.chance(0.3)) s.minLength = rng.int(3);
    if (rng.chance(0.3)) s.maxLength = rng.int(50);
    if (rng.chance(0.3)) s.pattern = rng.pick(PATTERNS);
  }
  if (t === 'number' || t === 'integer' || kind === 'any') {
    if (rng.chance(0.3)) s.minimum = num(rng);
    if (rng.chance(0.3)) s.maximum = num(rng);
    if (rng.chance(0.2)) s.exclusiveMinimum = num(rng);
    if (rng.chance(0.2)) s.exclusiveMaximum = num(rng);
  }
  if ((t === 'array' || kind === 'any') && depth < 3) {
    if (rng.chance(0.5)) s.items = schema(rng, depth + 1);
    if (rng.chance(0.3)) s.minItems = rng.int(3);
    if (rng.chance(0.3)) s.maxItems = rng.int(4);
  }
  if (t === 'object' && depth < 3) {
    s.properties = {};
    for (const name of rng.some(depth === 0 ? ARGS : ['x', 'name', 'a'], 4)) s.properties[name] = schema(rng, depth + 1);
    if (rng.chance(0.4)) s.required = rng.some(depth === 0 ? ARGS : ['x', 'name'], 2);
    if (rng.chance(0.3)) s.additionalProperties = rng.chance(0.3) ? schema(rng, depth + 1) : rng.chance(0.5);
  }
  if (rng.chance(0.08)) s.enum = rng.some([0, 1, 2].map(() => value(rng, 2)), 3);
  if (rng.chance(0.04)) s.const = value(rng, 2);
  if (rng.chance(0.05)) s.description = 'annotation';
  return s;
}

function limit(rng) {
  const l = {};
  if (rng.chance(0.4)) l.counter = rng.pick(COUNTERS);
  l.window = rng.pick(WINDOWS);
  l.max = rng.chance(0.8) ? 1 + rng.int(4) : rng.pick([10, 100, 1000, new Raw('2.0'), 9007199254740991]);
  if (rng.chance(0.4)) l.scope = rng.pick(['grant', 'global']);
  if (rng.chance(0.2)) l.key = path(rng);
  if (rng.chance(0.4)) l.algorithm = rng.pick(['fixed', 'sliding']);
  if (rng.chance(0.2)) l.cost = 1 + rng.int(3);
  else if (rng.chance(0.15)) l.cost_from = rng.pick(['args.amount', 'args.n', 'grant.tier', 'args.nested.x']);
  if (rng.chance(0.2)) l.on_deny = rng.pick(['slow down', 'quota é', 'Over budget.']);
  return l;
}

function rateLimit(rng) {
  if (rng.chance(0.6)) return `${1 + rng.int(5)}/${rng.pick(['second', 'minute', 'hour', '10s', '5m', '1h', 'day', 'min', 's'])}`;
  const r = { max: 1 + rng.int(4), window: rng.pick(WINDOWS) };
  if (rng.chance(0.4)) r.algorithm = rng.pick(['fixed', 'sliding']);
  if (rng.chance(0.3)) r.on_deny = 'rate limited here';
  return r;
}

function rules(rng, target, weight = 1) {
  if (rng.chance(0.35 * weight)) target.require = Array.from({ length: 1 + rng.int(2) }, () => group(rng, true));
  if (rng.chance(0.35 * weight)) target.deny_if = Array.from({ length: 1 + rng.int(2) }, () => group(rng, false));
  if (rng.chance(0.45 * weight)) target.limits = Array.from({ length: 1 + rng.int(3) }, () => limit(rng));
  if (rng.chance(0.25 * weight)) target.rate_limit = rateLimit(rng);
}

function toolEntry(rng) {
  const e = {};
  if (rng.chance(0.5)) e.action = rng.pick(['allow', 'deny', 'require_approval', 'require_approval']);
  if (rng.chance(0.25)) e[rng.chance(0.7) ? 'on_deny' : 'reason'] = rng.pick(['No.', 'Ask a human.', 'é'.repeat(50), 'Tool says no']);
  if (rng.chance(0.3)) e.args = schema(rng);
  if (e.action === 'require_approval' && rng.chance(0.5)) e.approval = { timeout: rng.pick(TIMEOUTS) };
  rules(rng, e);
  return e;
}

// One deliberate mistake, so that diagnostics are compared too.
function breakPolicy(rng, p) {
  switch (rng.int(8)) {
    case 0: delete p.version; break;
    case 1: p.version = rng.pick([1, '2', null]); break;
    case 2: p.tools = { ...p.tools, broken: { deny_iff: [] } }; break;
    case 3: p.tools = { ...p.tools, broken: { limits: [{ window: 'fortnight', max: 0 }] } }; break;
    case 4: p.tools = { ...p.tools, broken: { require: [{ path: 'arg.x', op: 'matches', value: 1 }] } }; break;
    case 5: p.tools = { ...p.tools, broken: { deny_if: [{ conditions: [{ path: 'args.x', op: 'regex', value: '(?=x)' }] }] } }; break;
    case 6: p.hide = [1, '']; break;
    default: p.tools = { ...p.tools, broken: { args: { type: 'object', tipe: 'x' }, limits: [{ window: 'minute', max: 1, cost: 1, cost_from: 'args.a' }] } };
  }
}

export function generatePolicy(rng) {
  const p = {};
  if (rng.chance(0.1)) p.$schema = '../schema/policy.schema.json';
  p.version = '1';
  if (rng.chance(0.9)) p.default = rng.pick(['allow', 'deny']);
  if (rng.chance(0.2)) p.description = 'generated';
  if (rng.chance(0.3)) p.hide = rng.some([...TOOLS, ...GLOBS.filter((g) => g !== '*')], 2);
  if (rng.chance(0.3)) {
    p.all_tools = {};
    rules(rng, p.all_tools, 0.6);
  }
  p.tools = {};
  const n = rng.int(6);
  for (let i = 0; i < n; i++) p.tools[rng.chance(0.75) ? rng.pick(TOOLS) : rng.pick(GLOBS)] = toolEntry(rng);
  if (rng.chance(0.03)) breakPolicy(rng, p);
  // Shuffle top-level keys sometimes: order must not matter.
  const ordered = rng.chance(0.2) ? Object.fromEntries(Object.entries(p).reverse()) : p;
  return { text: toJson(ordered, rng.pick(['', '', '  ', '\t'])), policy: p };
}

function isoWithOffset(rng, ms) {
  if (!(Math.abs(ms) <= 8.64e15)) return ms;
  const d = new Date(ms);
  if (d.getUTCFullYear() < 0 || d.getUTCFullYear() > 9999) return ms;
  const iso = d.toISOString();
  switch (rng.int(4)) {
    case 0: return iso; // 2026-01-01T00:00:00.000Z
    case 1: return iso.replace(/\.\d{3}Z$/, 'Z');
    case 2: { // the same instant at +01:30
      const shifted = new Date(ms + 90 * 60000).toISOString();
      return shifted.replace(/Z$/, '+01:30');
    }
    default: return iso.slice(0, 10); // a date alone: midnight UTC
  }
}

function callArgs(rng) {
  const args = {};
  for (const name of rng.some(ARGS, 4)) {
    switch (name) {
      case 'amount': case 'n': args[name] = num(rng); break;
      case 'tags': args[name] = rng.some(['prod', 'a', 'b', 'secret', 'x'], 3); break;
      case 'nested': args[name] = rng.chance(0.8) ? { x: value(rng, 2), name: rng.pick(STRINGS) } : value(rng, 1); break;
      case 'list': args[name] = rng.some([{ name: 'x' }, { name: 'y' }, 'a', new Raw('1')], 3); break;
      case 'currency': args[name] = rng.pick(['EUR', 'USD', 'eur', new Raw('1')]); break;
      default: args[name] = rng.chance(0.7) ? rng.pick(STRINGS) : value(rng, 1);
    }
  }
  return args;
}

function grant(rng) {
  switch (rng.int(7)) {
    case 0: return undefined;
    // Ids past the counter key's 64-byte bound are hashed in the key.
    case 1: return rng.pick(['alice', 'bob', 'é', 'x'.repeat(30), 'é'.repeat(40), 'g'.repeat(63)]);
    case 2: case 3: return 'alice';
    default: {
      const g = { id: rng.pick(['alice', 'alice', 'bob', 'carol']) };
      if (rng.chance(0.7)) g.role = rng.pick(['admin', 'dev', 'banned', 'support-lead']);
      if (rng.chance(0.5)) g.tier = num(rng);
      if (rng.chance(0.4)) g.team = rng.pick(['red', 'blue', new Raw('1')]);
      if (rng.chance(0.2)) g.regions = ['eu', 'us'];
      return g;
    }
  }
}

// A malformed call, now and then: the same invalid_call on both sides.
function malformedCall(rng, tool) {
  return rng.pick([
    `{"tool":${JSON.stringify(tool)},"tool":"x"}`,
    `{"tool":${JSON.stringify(tool)},"arguments":[]}`,
    `{"tool":${JSON.stringify(tool)},"grant":""}`,
    `{"tool":${JSON.stringify(tool)},"grant":{"role":"admin"}}`,
    `{"tool":${JSON.stringify(tool)},"extra":1}`,
    `{"tool":"a\\u0000b"}`,
    `{"tool":${JSON.stringify(tool)},"now":"2026-02-30T00:00:00Z"}`,
    `{"tool":${JSON.stringify(tool)},"now":1e400}`,
    `{"tool":${JSON.stringify(tool)},"arguments":{"n":1e400}}`,
    `{"tool":${JSON.stringify(tool)},"arguments":{"a":1,"a":2}}`,
    `[1,2]`,
    `{"tool":${JSON.stringify(tool)},"arguments":{"a":1}`,
    `{"tool":""}`,
  ]);
}

/**
 * One case: a policy text and steps. A call step is {call, now} and may carry
 * `finish` (a seed for a finish() probe the runner builds from the pending
 * call); approve steps approve the last approval_required call; hidden steps
 * ask whether a tool vanishes from tools/list.
 */
export function generateCase(seed, index) {
  const rng = rngFor('toolgate-differential', seed, index);
  const { text: policy, policy: document } = generatePolicy(rng);
  const steps = [];
  // Most calls go to a tool the policy names, so that its rules apply.
  const entries = Object.entries(document.tools ?? {}).filter(([n]) => TOOLS.includes(n));
  const named = entries.map(([n]) => n);
  // Tools with limits (and no conditions in the way): bursts go there.
  const limited = entries.filter(([, e]) => (e.limits || e.rate_limit) && !e.require && !e.args && e.action !== 'deny').map(([n]) => n);
  let now = T0 + rng.pick([0, 0, 1, 999, 59_999, 3_599_999, 86_399_999, -1, 1_234_567]);
  if (rng.chance(0.03)) now = rng.pick([0, -1, -86_400_001, 8.64e15, -8.64e15, 253402300799999]);
  const count = 1 + rng.int(10);
  const tools = [];
  const burst = rng.chance(0.3);
  let previous = null;
  for (let i = 0; i < count; i++) {
    if (i > 0) {
      now += burst ? rng.pick([0, 1, 100, 1000, 10_000, 20_000, 59_999, 60_000]) : rng.pick([0, 1, 10, 500, 999, 1000, 1001, 5000, 10_000, 30_000, 59_999, 60_000, 61_000, 3_600_000, 86_400_000, -1000, -60_000]);
      now = clampNow(now);
    }
    const tool = burst && limited.length > 0 && rng.chance(0.8) ? rng.pick(limited)
      : rng.chance(0.35) && tools.length > 0 ? rng.pick(tools) // repeat a call: limits and approvals
        : rng.chance(0.6) && named.length > 0 ? rng.pick(named) : rng.pick(TOOLS);
    tools.push(tool);
    let text;
    if (burst && previous && rng.chance(0.7)) {
      // The same call again, later: limits fill up and windows roll over.
      text = toJson(Object.fromEntries(Object.entries(previous).map(([k, v]) => [k, k === 'now' ? now : v])));
    } else if (rng.chance(0.04)) {
      text = malformedCall(rng, tool);
    } else {
      const call = {};
      const g = grant(rng);
      const fields = [['tool', tool]];
      if (rng.chance(0.85)) fields.push(['arguments', callArgs(rng)]);
      if (g !== undefined) fields.push(['grant', g]);
      const when = rng.int(10);
      if (when < 5) fields.push(['now', now]);
      else if (when < 7) fields.push(['now', isoWithOffset(rng, now)]);
      else if (when === 7) fields.push(['now', new Raw(`${now}.${rng.int(10)}`)]);
      if (rng.chance(0.05)) fields.push(['expect', rng.pick(['allow', { decision: 'deny' }])]);
      for (const [k, v] of rng.chance(0.2) ? fields.reverse() : fields) call[k] = v;
      text = toJson(call);
      previous = call;
    }
    const step = { call: text, now };
    if (rng.chance(0.35)) step.finish = rng.int(2 ** 31);
    steps.push(step);
    if (rng.chance(0.25)) {
      steps.push({ approve: true, now: now + rng.pick([0, 1, 1000, -1]) });
      // An approval is for the identical call: repeat it sometimes.
      if (rng.chance(0.7)) steps.push({ call: text, now: clampNow(now + rng.pick([0, 1000, 30_000, 600_001])) });
    }
    if (rng.chance(0.1)) steps.push({ hidden: rng.pick([...TOOLS, 'secret-x', 'get-env']) });
  }
  return { policy, steps };
}

// Counts a store could hold for a pending call's counters (finish() probes).
export function finishInput(pendingText, seed) {
  const rng = rngFor('finish', seed);
  const pending = JSON.parse(pendingText);
  const states = pending.counters.map((c) => {
    const pick = () => rng.pick([0, 0, 1, 2, c.max, c.max - 1, c.max + 1, c.max / 2, 0.5, 1e-9, 1e300, rng.int(100) / 7, c.max - c.cost, c.max - c.cost + 0.001]);
    return { current: Math.max(0, pick()), previous: Math.max(0, pick()) };
  });
  if (rng.chance(0.1)) states.pop(); // missing states: store_error
  if (rng.chance(0.1)) pending.now += rng.pick([1, -1, 1000, c0Window(pending)]);
  return JSON.stringify({ pending, approved: rng.chance(0.8), states });
}

const c0Window = (pending) => pending.counters[0]?.window_ms ?? 0;
