// schema/policy.schema.json, the JSON Schema editors use to validate and
// complete policies: it compiles in Ajv's strict mode, accepts every example,
// gives the core's verdict on a corpus of small policies (except where JSON
// Schema cannot express the rule, marked "beyond JSON Schema"), and documents
// every property it has.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';

import { loadToolgate } from '../../wasm/index.js';
import { repoRoot } from './cli-helpers.js';

const schemaPath = join(repoRoot, 'schema', 'policy.schema.json');
const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
const toolgate = await loadToolgate();

// strict: true turns on every strict check (unknown keywords, types, required
// properties, tuples), so a schema that compiles here has no silent mistakes.
const ajv = new Ajv2020({ strict: true, allErrors: true });
const validate = ajv.compile(schema);

const schemaVerdict = (document) => validate(document);
const coreVerdict = (text) => toolgate.check(text).ok;
const errorsText = () => ajv.errorsText(validate.errors);

test('the schema compiles in Ajv strict mode (draft 2020-12), with $id and title', () => {
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(schema.$id, 'https://toolgate.dev/schema/policy.schema.json');
  assert.equal(typeof schema.title, 'string');
  assert.equal(typeof validate, 'function');
});

describe('every example policy validates against the schema', () => {
  const examples = join(repoRoot, 'examples');
  const files = readdirSync(examples).filter((f) => f.endsWith('.json'));
  test('there are examples', () => assert.ok(files.length >= 5));
  for (const file of files) {
    test(`examples/${file}`, () => {
      const document = JSON.parse(readFileSync(join(examples, file), 'utf8'));
      assert.ok(schemaVerdict(document), errorsText());
    });
  }
});

// --- the corpus: the schema's verdict must be the core's -------------------
const policy = (tools, extra = {}) => ({ version: '1', default: 'deny', ...extra, tools });
const tool = (entry) => policy({ t: entry });
const limit = (fields) => tool({ limits: [{ window: 'minute', max: 10, ...fields }] });
const condition = (fields) => tool({ require: [{ path: 'args.x', op: 'eq', value: 1, ...fields }] });
const denyIf = (conditions) => tool({ deny_if: [{ conditions, on_deny: 'no' }] });
const nested = (depth, leaf, wrap) => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = wrap(value);
  return value;
};

const valid = [
  ['the PolicyLayer example, unchanged', '{ "version": "1", "default": "deny",\n  "tools": { "run": { "limits": [ { "counter": "run_rate", "window": "minute", "max": 10, "scope": "grant" } ] } } }'],
  ['"$schema" at the top level', policy({ run: {} }, { $schema: '../schema/policy.schema.json' })],
  ['no "default" (a warning, not an error)', { version: '1', tools: { run: {} } }],
  ['every top-level field', policy({ 'env*': { action: 'deny', reason: 'secret' }, run: {} }, {
    description: 'all of it', hide: ['envSet', 'delete_*'],
    all_tools: { require: [{ path: 'grant.id', op: 'exists' }], deny_if: [{ conditions: [{ path: 'args.x', op: 'eq', value: 1 }] }],
      limits: [{ window: 'day', max: 1000, scope: 'global' }], rate_limit: '100/1h' },
  })],
  ['every window unit name', tool({ limits: ['second', 'minute', 'hour', 'day', 'seconds', 'minutes', 'hours', 'days', 'sec', 'secs', 'min', 'mins', 'hr', 'hrs'].map((window) => ({ window, max: 1 })) })],
  ['durations: a bare unit, 9 digits, whole seconds up to 10^12', tool({ limits: ['s', '10s', '5m', '2h', '999999999d', 1, 60, 1e12].map((window) => ({ window, max: 1 })) })],
  ['whole numbers written as 10.0 and 1e2', '{"version":"1","default":"deny","tools":{"t":{"limits":[{"window":60.0,"max":10.0,"cost":1e2}]}}}'],
  ['max and cost up to 2^53 - 1', limit({ max: 9007199254740991, cost: 9007199254740991 })],
  ['rate_limit strings', policy({ a: { rate_limit: '10/minute' }, b: { rate_limit: '100/1h' }, c: { rate_limit: '1/s' }, d: { rate_limit: '999999999999999/hrs' } })],
  ['rate_limit object', tool({ rate_limit: { max: 5, window: 60, algorithm: 'sliding', on_deny: 'slow down' } })],
  ['a limit with every field (cost)', limit({ counter: 'c', scope: 'global', key: 'args.repo', algorithm: 'sliding', cost: 3, on_deny: 'no' })],
  ['a spend limit (cost_from)', limit({ cost_from: 'args.amount' })],
  ['exists without a value, and with false', tool({ require: [{ path: 'args.x', op: 'exists' }, { path: 'grant.role', op: 'exists', value: false }] })],
  ['every operator with its value type', denyIf([
    ['eq', { a: 1 }], ['neq', null], ['lt', 1], ['lte', 1.5], ['gt', -1], ['gte', 0], ['in', [1, '1']], ['not_in', []],
    ['exists', true], ['regex', '^(internal|admin)[:/]'], ['contains', 'x'], ['starts_with', 'a'], ['ends_with', 'z'], ['glob', 'acme/*'],
  ].map(([op, value]) => ({ path: 'args.files.0', op, value })))],
  ['a single-condition requirement with its own on_deny', condition({ on_deny: 'admins only' })],
  ['a requirement group', tool({ require: [{ conditions: [{ path: 'args.x', op: 'gt', value: 1 }], on_deny: 'no' }] })],
  ['deny_if without on_deny', tool({ deny_if: [{ conditions: [{ path: 'args.x', op: 'eq', value: 1 }] }] })],
  ['require_approval with a timeout in seconds', tool({ action: 'require_approval', approval: { timeout: 600 } })],
  ['approval on an allow tool (a warning, not an error)', tool({ approval: { timeout: '1h' } })],
  ['an args schema with every keyword', tool({ args: {
    type: 'object', title: 'T', description: 'D', $comment: 'C', default: {}, examples: [{}], required: ['s'],
    additionalProperties: { type: ['string', 'null'] },
    properties: {
      s: { type: 'string', pattern: '^a', minLength: 1, maxLength: 5, enum: ['a', 'ab'] },
      n: { type: 'number', minimum: 0, maximum: 10, exclusiveMinimum: -1, exclusiveMaximum: 11, const: 3 },
      l: { type: 'array', items: { type: 'integer' }, minItems: 0, maxItems: 3 },
      any: true, never: false,
    },
  } })],
  ['args: true', tool({ args: true })],
  ['args annotations of any type (the core ignores them)', tool({ args: { type: 'object', title: 5, examples: 'x' } })],
];

const invalid = [
  ['typo: deny_iff', tool({ deny_iff: [] })],
  ['typo: actoin', tool({ actoin: 'deny' })],
  ['typo: windw', tool({ limits: [{ windw: 'minute', max: 10 }] })],
  ['typo at the top: tool', { version: '1', default: 'deny', tool: {} }],
  ['version "2"', { version: '2', tools: {} }],
  ['version 1 (a number)', { version: 1, tools: {} }],
  ['no version', { default: 'deny', tools: {} }],
  ['the policy is not an object', '[]'],
  ['default "maybe"', policy({}, { default: 'maybe' })],
  ['action "block"', tool({ action: 'block' })],
  ['scope "user"', limit({ scope: 'user' })],
  ['algorithm "rolling"', limit({ algorithm: 'rolling' })],
  ...['fortnight', '1w', '0s', '01m', '10 s', 'S', '1000000000s', '', 0, 1.5, -60, 1e12 + 1, true].map((window) => [`window ${JSON.stringify(window)}`, limit({ window })]),
  ['a limit without window', tool({ limits: [{ max: 10 }] })],
  ['a limit without max', tool({ limits: [{ window: 'minute' }] })],
  ...[0, 1.5, '10', 9007199254740992].map((max) => [`max ${JSON.stringify(max)}`, limit({ max })]),
  ['cost 0', limit({ cost: 0 })],
  ['counter ""', limit({ counter: '' })],
  ['cost with cost_from', limit({ cost: 2, cost_from: 'args.amount' })],
  ...['10/fortnight', '0/minute', '010/minute', '10 per minute', '10/', '/minute', '10/60', '10/minute ', '-5/minute',
    '1000000000000000/minute', 10].map((rate) => [`rate_limit ${JSON.stringify(rate)}`, tool({ rate_limit: rate })]),
  ['rate_limit object without window', tool({ rate_limit: { max: 10 } })],
  ['rate_limit object with a counter', tool({ rate_limit: { max: 10, window: 60, counter: 'c' } })],
  ['reason with on_deny', tool({ on_deny: 'a', reason: 'b' })],
  ['on_deny not a string', tool({ on_deny: 1 })],
  ['gt without value', condition({ op: 'gt', value: undefined })],
  ['gt with a string value', condition({ op: 'gt', value: '100' })],
  ['in with a non-list value', condition({ op: 'in', value: 'a' })],
  ['regex with a number', condition({ op: 'regex', value: 1 })],
  ['glob with a number', condition({ op: 'glob', value: 1 })],
  ['exists with "yes"', condition({ op: 'exists', value: 'yes' })],
  ['unknown op "greater"', condition({ op: 'greater' })],
  ['a condition without op', tool({ require: [{ path: 'args.x', value: 1 }] })],
  ['a condition without path', tool({ require: [{ op: 'eq', value: 1 }] })],
  ...['amount', 'args.', 'args..x', 'args.x.', 'arg.x', 'grant', 'Args.x'].map((path) => [`path ${JSON.stringify(path)}`, condition({ path })]),
  ['key not a path', limit({ key: 'repo' })],
  ['deny_if with empty conditions', tool({ deny_if: [{ conditions: [], on_deny: 'no' }] })],
  ['deny_if entry without conditions', tool({ deny_if: [{ on_deny: 'no' }] })],
  ['deny_if entry that is a single condition', tool({ deny_if: [{ path: 'args.x', op: 'eq', value: 1 }] })],
  ['require group with empty conditions', tool({ require: [{ conditions: [] }] })],
  ['require group with a condition field', tool({ require: [{ conditions: [{ path: 'args.x', op: 'exists' }], path: 'args.y' }] })],
  ['on_deny on a condition inside conditions', denyIf([{ path: 'args.x', op: 'eq', value: 1, on_deny: 'no' }])],
  ['args keyword "format" (unsupported)', tool({ args: { type: 'string', format: 'email' } })],
  ['args keyword "tipe" (typo)', tool({ args: { tipe: 'object' } })],
  ['args type "float"', tool({ args: { type: 'float' } })],
  ['args type []', tool({ args: { type: [] } })],
  ['args minLength -1', tool({ args: { type: 'string', minLength: -1 } })],
  ['args maxItems 1.5', tool({ args: { type: 'array', maxItems: 1.5 } })],
  ['args minimum "0"', tool({ args: { type: 'number', minimum: '0' } })],
  ['args items as a list (tuple form)', tool({ args: { type: 'array', items: [{ type: 'string' }] } })],
  ['args required not a list of names', tool({ args: { type: 'object', required: [1] } })],
  ['args a string', tool({ args: 'object' })],
  ['"$schema" inside a tool entry', tool({ $schema: 'x' })],
  ['"$schema" not a string', policy({}, { $schema: 1 })],
  ['hide with an empty name', policy({}, { hide: [''] })],
  ['an empty tool name', policy({ '': {} })],
  ['a tool entry that is not an object', policy({ run: true })],
  ['all_tools with a tool-only field', policy({}, { all_tools: { action: 'deny' } })],
  ['approval with an unknown field', tool({ action: 'require_approval', approval: { ttl: '1h' } })],
  ['approval timeout "forever"', tool({ action: 'require_approval', approval: { timeout: 'forever' } })],
];

// Rules the core enforces that JSON Schema cannot state: the schema accepts
// these, the core rejects them. Editors miss them; `toolgate check` does not.
const beyond = [
  ['regex syntax: an unbalanced group', condition({ op: 'regex', value: '(a' })],
  ['regex syntax: lookahead is unsupported', condition({ op: 'regex', value: '(?=a)b' })],
  ['args pattern syntax: a reversed range', tool({ args: { type: 'string', pattern: '[z-a]' } })],
  ['duplicate keys', '{"version": "1", "default": "deny", "default": "allow", "tools": {}}'],
  ['args schemas nested deeper than 32 levels', tool({ args: nested(40, { type: 'string' }, (items) => ({ type: 'array', items })) })],
  ['policies nested deeper than 128 levels', condition({ value: nested(130, 1, (inner) => [inner]) })],
];

const textOf = (document) => (typeof document === 'string' ? document : JSON.stringify(document));

describe('corpus: the schema agrees with the core', () => {
  test('the corpus is large enough', () => assert.ok(valid.length + invalid.length + beyond.length >= 30));
  for (const [name, document] of valid) {
    test(`valid: ${name}`, () => {
      const text = textOf(document);
      assert.equal(coreVerdict(text), true, JSON.stringify(toolgate.check(text).diagnostics));
      assert.equal(schemaVerdict(JSON.parse(text)), true, errorsText());
    });
  }
  for (const [name, document] of invalid) {
    test(`invalid: ${name}`, () => {
      const text = textOf(document);
      assert.equal(coreVerdict(text), false, 'the core accepts it');
      assert.equal(schemaVerdict(JSON.parse(text)), false, 'the schema accepts it');
    });
  }
});

describe('beyond JSON Schema: the schema accepts, the core rejects', () => {
  for (const [name, document] of beyond) {
    test(`beyond JSON Schema: ${name}`, () => {
      const text = textOf(document);
      assert.equal(coreVerdict(text), false, 'the core accepts it');
      assert.equal(schemaVerdict(JSON.parse(text)), true, errorsText());
    });
  }
});

// --- documentation: what editors show on hover ----------------------------
// Visits every subschema at a keyword position, with its JSON Pointer. `if`
// and `not` subschemas are tests (which op, which fields are present), not
// properties a user writes, so `skipTests` leaves them out.
function walk(node, pointer, visit, { skipTests = false } = {}) {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
  visit(node, pointer);
  const child = (value, at) => walk(value, at, visit, { skipTests });
  const escape = (name) => name.replace(/~/g, '~0').replace(/\//g, '~1');
  for (const keyword of ['properties', 'patternProperties', '$defs', 'dependentSchemas']) {
    for (const [name, value] of Object.entries(node[keyword] ?? {})) child(value, `${pointer}/${keyword}/${escape(name)}`);
  }
  for (const keyword of ['allOf', 'anyOf', 'oneOf', 'prefixItems']) {
    (node[keyword] ?? []).forEach((value, i) => child(value, `${pointer}/${keyword}/${i}`));
  }
  for (const keyword of ['additionalProperties', 'items', 'contains', 'propertyNames', 'then', 'else']) {
    if (node[keyword] !== undefined) child(node[keyword], `${pointer}/${keyword}`);
  }
  if (!skipTests) {
    for (const keyword of ['if', 'not']) if (node[keyword] !== undefined) child(node[keyword], `${pointer}/${keyword}`);
  }
}

test('every property and every definition has a description', () => {
  const missing = [];
  let properties = 0;
  walk(schema, '', (node, pointer) => {
    const described = (value) => typeof value?.description === 'string' && /^\S[\s\S]{9,}[.)"]$/.test(value.description);
    for (const [name, value] of Object.entries(node.properties ?? {})) {
      properties++;
      if (!described(value)) missing.push(`${pointer}/properties/${name}`);
    }
    for (const [name, value] of Object.entries(node.$defs ?? {})) {
      if (!described(value)) missing.push(`${pointer}/$defs/${name}`);
    }
  }, { skipTests: true });
  assert.deepEqual(missing, []);
  assert.ok(properties >= 50, `only ${properties} properties`);
});

test('every "examples" and "default" in the schema is valid where it stands', () => {
  let checked = 0;
  walk(schema, '', (node, pointer) => {
    const values = [...(Array.isArray(node.examples) ? node.examples : []), ...('default' in node ? [node.default] : [])];
    if (values.length === 0) return;
    const check = ajv.getSchema(`${schema.$id}#${pointer}`);
    for (const value of values) {
      checked++;
      assert.ok(check(value), `${pointer}: ${JSON.stringify(value)}: ${ajv.errorsText(check.errors)}`);
    }
  }, { skipTests: true });
  assert.ok(checked >= 20, `only ${checked} examples`);
});
