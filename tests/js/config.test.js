// worker/config.js: one loader of the proxy's configuration for every host.
// loadProxyConfig through an in-memory reader (as Workers reads bindings) and
// through the Node file reader: every kind of problem, all of them in one
// ProxyConfigError, each policy compiled once (counted on the real façade),
// the files it read; a seeded property test that any corruption of any input
// either loads or is one ProxyConfigError (never another error, never half a
// configuration); the session key every host derives; and `toolgate serve
// --config` reloading when the config file changes, refusing an invalid edit.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rename, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { loadToolgate } from '../../wasm/index.js';
import { CONFIG_CODES, ConfigError, ProxyConfigError, deriveSessionKey, loadProxyConfig } from '../../worker/config.js';
import { loadNodeConfig } from '../../worker/node.js';
import { repoRoot, runCli } from './cli-helpers.js';
import { collectOutput, echoResults, grantsDocument, postRaw, sha256, slidingRateLimit, startFakeUpstream, tempFile, waitFor } from './proxy-helpers.js';
import { random } from './seeded-random.js';

const CLI = `${repoRoot}bin/toolgate.js`;
const ALLOW = { version: '1', default: 'deny', tools: { echo: {} } };
const DENY = { version: '1', default: 'deny', tools: {} };
const BAD_POLICY = '{"version": "1",\n "tools": {"x": {"actoin": "deny"},\n  "y": {"rate_limit": "ten"}}}';

let toolgate;
before(async () => {
  toolgate = await loadToolgate();
});

/** The real façade, its compile() counted and its check() refused (there is no check pass). */
function countingFacade() {
  const counted = Object.create(toolgate);
  counted.compiles = [];
  counted.compile = (text, options) => {
    counted.compiles.push(options?.source);
    return toolgate.compile(text, options);
  };
  counted.locate = (...args) => toolgate.locate(...args);
  counted.check = () => {
    throw new Error('loadProxyConfig must not run a separate check pass');
  };
  return counted;
}

/** Files in memory: a reader as Node's (paths, relative references), without a disk. */
function memoryFiles(files) {
  const reads = [];
  return {
    reads,
    reader: {
      files: true,
      read: async (path) => {
        reads.push(path);
        if (!Object.hasOwn(files, path)) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
        const value = files[path];
        return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
      },
      resolve: (from, reference) => posix.resolve(posix.dirname(from), reference),
      label: (path, what) => `the ${what} ${path}`,
    },
  };
}

async function problemsOf(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProxyConfigError, `a ProxyConfigError, not ${error?.name}: ${error?.message}`);
    assert.ok(error instanceof ConfigError, 'a ConfigError (what the CLI reports)');
    return error;
  }
  assert.fail('the configuration loaded');
}

const GOOD_TOKEN = sha256('alice-token');

describe('loadProxyConfig', () => {
  test('a --config file, its policies, grants with their own policies and pins: each policy compiled once, every file listed', async () => {
    const facade = countingFacade();
    const { reader, reads } = memoryFiles({
      '/etc/tg/toolgate.json': { servers: { one: { upstream: 'http://127.0.0.1:1/mcp', policy: 'one.json' }, two: { upstream: 'http://127.0.0.1:2/mcp', policy: 'policies/two.json', monitor: true } }, grants: 'grants.json' },
      '/etc/tg/one.json': ALLOW,
      '/etc/tg/policies/two.json': DENY,
      '/etc/tg/grants.json': { grants: [{ id: 'alice', token_sha256: GOOD_TOKEN, policies: { one: 'alice-one.json', two: DENY } }] },
      '/etc/tg/alice-one.json': ALLOW,
      '/etc/tg/pins.json': { toolgate_pins: 1, servers: { one: { tools: {} } } },
    });
    const loaded = await loadProxyConfig({ config: '/etc/tg/toolgate.json', pins: '/etc/tg/pins.json' }, { toolgate: facade, reader });
    assert.deepEqual(Object.keys(loaded.servers), ['one', 'two']);
    assert.equal(loaded.servers.two.monitor, true);
    assert.equal(loaded.servers.one.policyFile, '/etc/tg/one.json');
    assert.ok(loaded.servers.one.pins, 'pins for the server the file names');
    assert.deepEqual([...loaded.grantPolicies.get('alice').keys()], ['one', 'two']);
    assert.match(loaded.grantPolicies.get('alice').get('one').hash, /^[0-9a-f]{64}$/);
    // Four policies, four compiles, each once; no check() (it throws).
    assert.deepEqual(facade.compiles.sort(), ['/etc/tg/alice-one.json', '/etc/tg/grants.json: the inline policy of grant "alice"', '/etc/tg/one.json', '/etc/tg/policies/two.json'].sort());
    assert.deepEqual(loaded.files.sort(), ['/etc/tg/alice-one.json', '/etc/tg/grants.json', '/etc/tg/one.json', '/etc/tg/pins.json', '/etc/tg/policies/two.json', '/etc/tg/toolgate.json'].sort());
    assert.equal(new Set(reads).size, reads.length, 'each file read once');
  });

  test('every problem of every file in one ProxyConfigError, each with file, place, code and message', async () => {
    const facade = countingFacade();
    const { reader } = memoryFiles({
      '/c/toolgate.json': '{"servers": {\n  "one": {"upstream": "http://127.0.0.1:1/mcp", "policy": "bad.json"},\n  "two": {"upstream": "ftp://x", "policy": "missing.json", "monitor": "yes"},\n  "bad name": {"upstream": "http://x/mcp", "policy": "one.json"}\n}, "grants": "grants.json"}',
      '/c/bad.json': BAD_POLICY,
      '/c/grants.json': '{"grants": [\n  {"id": "a", "token_sha256": "abc"}\n]}',
      '/c/pins.json': '{"toolgate_pins": 1, "servers": {"one": {"tools": {"t": {"sha256": "00", "definition": {}}}}}}',
    });
    const error = await problemsOf(loadProxyConfig({
      config: '/c/toolgate.json', pins: '/c/pins.json',
      oauth: () => ({ issuers: [] }),
    }, { toolgate: facade, reader }));
    const byCode = (code) => error.diagnostics.filter((d) => d.code === code);
    // The policy: both of its errors, placed.
    const policy = error.diagnostics.filter((d) => d.file === '/c/bad.json');
    assert.deepEqual(policy.map((d) => [d.line, d.pointer, d.code]), [[2, '/tools/x/actoin', 'unknown_field'], [3, '/tools/y/rate_limit', 'invalid_value']]);
    // The config file: three problems, each placed by its pointer.
    const config = byCode(CONFIG_CODES.config);
    assert.deepEqual(config.map((d) => [d.file, d.pointer, d.line]), [
      ['/c/toolgate.json', '/servers/two/upstream', 3], ['/c/toolgate.json', '/servers/two/monitor', 3], ['/c/toolgate.json', '/servers/bad name', 4],
    ]);
    assert.deepEqual(byCode(CONFIG_CODES.unreadable).map((d) => d.file), ['/c/missing.json']);
    assert.deepEqual(byCode(CONFIG_CODES.grants).map((d) => [d.pointer, d.line]), [['/grants/0/token_sha256', 2]]);
    assert.equal(byCode(CONFIG_CODES.pins).length, 1);
    assert.equal(byCode(CONFIG_CODES.oauth).length, 1);
    for (const d of error.diagnostics) {
      assert.equal(d.severity, 'error');
      assert.ok(typeof d.file === 'string' && typeof d.code === 'string' && typeof d.message === 'string' && d.message !== '', JSON.stringify(d));
    }
    // The message: one line a problem (a policy's under its heading).
    const lines = error.message.split('\n');
    assert.equal(lines[0], '/c/bad.json is not a valid policy:');
    assert.match(lines[1], /^ {2}\/c\/bad\.json:2:\d+: unknown field "actoin"; did you mean "action"\? \(\/tools\/x\/actoin\)$/);
    assert.ok(lines.some((l) => /^\/c\/toolgate\.json:3:\d+: \/servers\/two\/upstream: server "two" "upstream" must be an http\(s\) URL, not "ftp:\/\/x"$/.test(l)), error.message);
    assert.ok(lines.some((l) => l === 'cannot read the policy of server "two" /c/missing.json: no such file'), error.message);
    assert.equal(lines.length, 2 + error.diagnostics.length - 1);
  });

  test('each kind of input that cannot be read or parsed', async () => {
    const cases = [
      ['no config file', {}, { config: '/x/none.json' }, CONFIG_CODES.unreadable, /^cannot read the config file \/x\/none\.json: no such file$/],
      ['a config file that is not JSON', { '/x/c.json': '{"servers": ' }, { config: '/x/c.json' }, CONFIG_CODES.notJson, /^\/x\/c\.json is not JSON: /],
      ['servers that are not an object', { '/x/c.json': { servers: [] } }, { config: '/x/c.json' }, CONFIG_CODES.config, /\/servers: "servers" must be an object/],
      ['no server', { '/x/c.json': { servers: {} } }, { config: '/x/c.json' }, CONFIG_CODES.config, /"servers" must name at least one server/],
      ['a server named like an object\'s own key', { '/x/c.json': '{"servers": {"__proto__": {"upstream": "http://x/mcp", "policy": "p.json"}}}', '/x/p.json': ALLOW }, { config: '/x/c.json' }, CONFIG_CODES.config, /server name "__proto__" is reserved/],
      ['a server without a policy', { '/x/c.json': { servers: { a: { upstream: 'http://x/mcp' } } } }, { config: '/x/c.json' }, CONFIG_CODES.config, /server "a" needs "policy" \(a file\)/],
      ['"grants" that is not a file name', { '/x/c.json': { servers: { a: { upstream: 'http://x/mcp', policy: 'p.json' } }, grants: 3 }, '/x/p.json': ALLOW }, { config: '/x/c.json' }, CONFIG_CODES.config, /"grants" must be a file name/],
      ['no policy file', {}, { servers: { default: { upstream: 'http://x/mcp', policy: '/x/p.json' } } }, CONFIG_CODES.unreadable, /^cannot read the policy \/x\/p\.json: no such file$/],
      ['an invalid policy', { '/x/p.json': BAD_POLICY }, { servers: { default: { upstream: 'http://x/mcp', policy: '/x/p.json' } } }, 'unknown_field', /^\/x\/p\.json is not a valid policy:\n {2}\/x\/p\.json:2:/],
      ['grants that are not JSON', { '/x/p.json': ALLOW, '/x/g.json': 'nope' }, { servers: { default: { upstream: 'http://x/mcp', policy: '/x/p.json' } }, grants: '/x/g.json' }, CONFIG_CODES.notJson, /^\/x\/g\.json is not JSON/],
      ['a grant naming a server that does not exist', { '/x/p.json': ALLOW, '/x/g.json': { grants: [{ id: 'a', token_sha256: GOOD_TOKEN, policies: { nope: 'p.json' } }] } }, { servers: { default: { upstream: 'http://x/mcp', policy: '/x/p.json' } }, grants: '/x/g.json' }, CONFIG_CODES.grants, /\/grants\/0\/policies\/nope: no server named "nope"/],
      ['a grant policy file that is not there', { '/x/p.json': ALLOW, '/x/g.json': { grants: [{ id: 'a', token_sha256: GOOD_TOKEN, policy: 'gone.json' }] } }, { servers: { default: { upstream: 'http://x/mcp', policy: '/x/p.json' } }, grants: '/x/g.json' }, CONFIG_CODES.unreadable, /cannot read the policy of grant "a" \/x\/gone\.json: no such file/],
      ['pins that are not JSON', { '/x/p.json': ALLOW, '/x/pins.json': '{' }, { servers: { default: { upstream: 'http://x/mcp', policy: '/x/p.json' } }, pins: '/x/pins.json' }, CONFIG_CODES.notJson, /\/x\/pins\.json is not JSON/],
      ['pins that are not a pins file', { '/x/p.json': ALLOW, '/x/pins.json': { servers: 1 } }, { servers: { default: { upstream: 'http://x/mcp', policy: '/x/p.json' } }, pins: '/x/pins.json' }, CONFIG_CODES.pins, /is not a toolgate pins file/],
      ['a header the host refuses', { '/x/c.json': { servers: { a: { upstream: 'http://x/mcp', policy: 'p.json', headers: { authorization: '${NOPE}' } } } }, '/x/p.json': ALLOW }, { config: '/x/c.json', header: () => { throw new ConfigError('environment variable NOPE is not set (used in an upstream header)'); } }, CONFIG_CODES.config, /NOPE is not set/],
      ['a server "oauth" without issuers', { '/x/c.json': { servers: { a: { upstream: 'http://x/mcp', policy: 'p.json', oauth: { scopes: ['s'] } } } }, '/x/p.json': ALLOW }, { config: '/x/c.json' }, CONFIG_CODES.oauth, /a server has "oauth" but no issuers are configured/],
      ['a session key too short', { '/x/p.json': ALLOW }, { servers: { default: { upstream: 'http://x/mcp', policy: '/x/p.json' } }, session: { sessionKey: 'short', names: { sessionKey: 'TOOLGATE_SESSION_KEY' } } }, CONFIG_CODES.config, /^TOOLGATE_SESSION_KEY must be at least 16 characters$/],
    ];
    for (const [name, files, sources, code, message] of cases) {
      const { reader } = memoryFiles(files);
      const error = await problemsOf(loadProxyConfig(sources, { toolgate, reader }));
      assert.equal(error.diagnostics[0].code, code, `${name}: ${error.message}`);
      assert.match(error.message, message, name);
    }
  });

  test('on Workers (bindings, no files): inline policies, a file path refused, no binding text quoted', async () => {
    const secret = 'Bearer s3cr3t-value';
    const env = {
      SERVERS: JSON.stringify({ a: { upstream: 'http://127.0.0.1:1/mcp', policy: ALLOW, headers: { authorization: secret } }, b: { upstream: 'http://127.0.0.1:2/mcp', policy: JSON.stringify(DENY) } }),
      GRANTS: JSON.stringify({ grants: [{ id: 'alice', token_sha256: GOOD_TOKEN, policies: { a: DENY } }] }),
    };
    const reader = { read: (name) => env[name], label: (name) => `the ${name} binding`, secret: true };
    const facade = countingFacade();
    const loaded = await loadProxyConfig({ config: 'SERVERS', configForm: 'servers', grants: 'GRANTS', session: { adminToken: 'an-admin-token' } }, { toolgate: facade, reader });
    assert.deepEqual(facade.compiles, ['SERVERS.a.policy', 'SERVERS.b.policy', 'grant "alice" for server "a"']);
    assert.deepEqual(loaded.files, [], 'bindings are not files');
    assert.equal(loaded.servers.a.headers.authorization, secret);
    assert.equal(loaded.sessionKey, await deriveSessionKey({ adminToken: 'an-admin-token' }));

    const broken = {
      SERVERS: `{"a": {"upstream": "${secret}", "policy": {"version": "1", "tools": {"x": {"actoin": "deny"}}}}, "b": {"upstream": "http://x/mcp", "policy": "not json ${secret}"}}`,
      GRANTS: JSON.stringify({ grants: [{ id: 'alice', token_sha256: GOOD_TOKEN, policies: { a: 'release.json' } }] }),
      PINS: `{"servers": ${secret}`,
    };
    const brokenReader = { read: (name) => broken[name], label: (name) => `the ${name} binding`, secret: true };
    const error = await problemsOf(loadProxyConfig({ config: 'SERVERS', configForm: 'servers', grants: 'GRANTS', pins: 'PINS', session: {} }, { toolgate, reader: brokenReader }));
    assert.ok(!error.message.includes('s3cr3t'), error.message);
    assert.match(error.message, /SERVERS\.a\.policy is not a valid policy:\n {2}SERVERS\.a\.policy:1:\d+: unknown field "actoin"/);
    assert.match(error.message, /\/a\/upstream: server "a" "upstream" must be an http\(s\) URL$/m);
    assert.match(error.message, /SERVERS\.b\.policy/);
    assert.match(error.message, /on Workers a grant's policy is given inline/);
    assert.match(error.message, /the PINS binding is not JSON \(SyntaxError\)|PINS is not JSON/);
    assert.match(error.message, /set the SESSION_KEY secret \(or ADMIN_TOKEN\)/);
    const unset = await problemsOf(loadProxyConfig({ servers: { default: { upstream: 'http://x/mcp', policy: 'POLICY' } } }, { toolgate, reader: { read: () => undefined, label: (n) => `the ${n} binding`, secret: true } }));
    assert.equal(unset.message, 'cannot read the POLICY binding: it is not set');
  });

  test('the Node file reader: paths relative to the config file, every file read listed', async () => {
    const policy = await tempFile('config-node-policy.json', ALLOW);
    const grants = await tempFile('config-node-grants.json', grantsDocument({ alice: 'alice-token' }));
    const config = await tempFile('config-node.json', { servers: { a: { upstream: 'http://127.0.0.1:1/mcp', policy: 'config-node-policy.json' } }, grants: 'config-node-grants.json' });
    const loaded = await loadNodeConfig(toolgate, { config });
    assert.deepEqual(loaded.files.sort(), [config, grants, policy].sort());
    const missing = await problemsOf(loadNodeConfig(toolgate, { config: `${config}.nope` }));
    assert.equal(missing.message, `cannot read the config file ${config}.nope: no such file`);
    assert.deepEqual(missing.files, [`${config}.nope`], 'what it tried to read, for the watcher');
  });

  test('property: any corruption of any input loads whole or is one ProxyConfigError', async () => {
    const seed = Number(process.env.CONFIG_PROPERTY_SEED ?? 20261207);
    const next = random(seed);
    const pick = (list) => list[Math.floor(next() * list.length)];
    const base = {
      '/p/toolgate.json': JSON.stringify({ servers: { a: { upstream: 'http://127.0.0.1:1/mcp', policy: 'a.json', headers: { 'x-k': 'v' } }, b: { upstream: 'http://127.0.0.1:2/mcp', policy: 'b.json', monitor: false } }, grants: 'grants.json' }),
      '/p/a.json': JSON.stringify({ version: '1', default: 'deny', tools: { echo: { rate_limit: '3/minute' }, run: { action: 'require_approval' } } }),
      '/p/b.json': JSON.stringify(DENY),
      '/p/grants.json': JSON.stringify({ grants: [{ id: 'alice', token_sha256: GOOD_TOKEN, attributes: { role: 'dev' }, policies: { b: 'a.json' } }] }),
    };
    const junk = ['', '{', '}', '"', ',', ':', '[]', 'null', '0', '"x"', '{"servers":1}', '\u0000', 'ftp://', '../', '"policy"', '"grants"', 'true'];
    for (let i = 0; i < 300; i++) {
      const files = { ...base };
      const name = pick(Object.keys(files));
      const text = files[name];
      const at = Math.floor(next() * (text.length + 1));
      const cut = Math.floor(next() * 6);
      const mutation = pick(['insert', 'delete', 'replace', 'drop']);
      if (mutation === 'drop') delete files[name];
      else files[name] = text.slice(0, at) + (mutation === 'delete' ? '' : pick(junk)) + text.slice(at + (mutation === 'insert' ? 0 : cut));
      const facade = countingFacade();
      const { reader } = memoryFiles(files);
      const context = `seed ${seed} case ${i}: ${mutation} in ${name}`;
      let loaded;
      try {
        loaded = await loadProxyConfig({ config: '/p/toolgate.json' }, { toolgate: facade, reader });
      } catch (error) {
        assert.ok(error instanceof ProxyConfigError, `${context}: ${error?.stack}`);
        assert.ok(error.diagnostics.length > 0, context);
        for (const d of error.diagnostics) assert.ok(d.file && d.code && d.message, `${context}: ${JSON.stringify(d)}`);
        continue;
      }
      // Loaded: whole, every server with a compiled policy and an http(s) upstream.
      for (const [server, entry] of Object.entries(loaded.servers)) {
        assert.ok(entry.policy?.hash, `${context}: server ${server} has a policy`);
        assert.match(entry.upstream, /^https?:\/\//, context);
      }
      assert.equal(new Set(facade.compiles).size, facade.compiles.length, `${context}: no policy compiled twice`);
    }
  });
});

describe('deriveSessionKey: one derivation for every host', () => {
  test('the key given, or one derived from the admin token; none is an error', async () => {
    const a = await deriveSessionKey({ adminToken: 'token-one' });
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.equal(await deriveSessionKey({ adminToken: 'token-one' }), a, 'the same token, the same key (instances agree)');
    assert.notEqual(await deriveSessionKey({ adminToken: 'token-two' }), a);
    assert.notEqual(a, sha256('token-one'), 'not the admin token\'s own hash');
    assert.equal(await deriveSessionKey({ sessionKey: 'a-session-key-of-16+', adminToken: 'token-one' }), 'a-session-key-of-16+');
    await assert.rejects(deriveSessionKey({ sessionKey: 'short' }, { sessionKey: 'TOOLGATE_SESSION_KEY' }), /^ConfigError: TOOLGATE_SESSION_KEY must be at least 16 characters$/);
    await assert.rejects(deriveSessionKey({}), /set the SESSION_KEY secret \(or ADMIN_TOKEN\)/);
  });
});

describe('the CLI prints every problem at once', () => {
  test('toolgate serve --config and toolgate stdio: every file\'s problems, exit 1, nothing started', async () => {
    const bad = await tempFile('config-cli-bad.json', BAD_POLICY);
    const grants = await tempFile('config-cli-grants.json', '{"grants": [{"id": "a", "token_sha256": "abc"}]}');
    const config = await tempFile('config-cli.json', { servers: { one: { upstream: 'http://127.0.0.1:1/mcp', policy: 'config-cli-bad.json' }, two: { upstream: 'http://127.0.0.1:2/mcp', policy: 'config-cli-none.json' } }, grants: 'config-cli-grants.json' });
    const served = await runCli(['serve', '--config', config, '--port', '0']);
    assert.equal(served.code, 1, served.stderr);
    assert.match(served.stderr, new RegExp(`toolgate: ${bad} is not a valid policy:\n  ${bad}:2:\\d+: unknown field "actoin"`));
    assert.match(served.stderr, new RegExp(`  ${bad}:3:\\d+: "rate_limit" must be`));
    assert.match(served.stderr, /cannot read the policy of server "two" .*config-cli-none\.json: no such file/);
    assert.match(served.stderr, new RegExp(`${grants}:1:\\d+: /grants/0/token_sha256: must be the SHA-256`));
    assert.doesNotMatch(served.stderr, /is listening/);

    const pins = await tempFile('config-cli-pins.json', '{"servers": 1}');
    const stdio = await runCli(['stdio', '--policy', bad, '--pins', pins, '--', process.execPath, '-e', '']);
    assert.equal(stdio.code, 1, stdio.stderr);
    assert.match(stdio.stderr, /unknown field "actoin"/);
    assert.match(stdio.stderr, /is not a toolgate pins file/);
  });
});

describe('toolgate serve --config: the config file is watched', () => {
  let upstream;
  before(async () => {
    upstream = await startFakeUpstream((req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(echoResults(body)));
    });
  });
  after(() => upstream?.stop());

  // Written as editors write: a new file renamed over the old one.
  let version = 0;
  const replace = async (path, content) => {
    const next = `${path}.${++version}.tmp`;
    await writeFile(next, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    await rename(next, path);
  };

  test('a changed config file takes effect; an invalid one is refused and the running one stays, counters kept', async () => {
    const limited = { version: '1', default: 'deny', tools: { echo: slidingRateLimit(3, 'hour') } };
    await tempFile('config-reload-a.json', limited);
    const config = await tempFile('config-reload.json', { servers: { a: { upstream: upstream.url, policy: 'config-reload-a.json' } } });
    const child = spawn(process.execPath, [CLI, 'serve', '--config', config, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    const stderr = collectOutput(child.stderr);
    collectOutput(child.stdout);
    try {
      const banner = await stderr.until(/is listening on \S+\n/, 'toolgate serve listening');
      const base = /is listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(banner)[1];
      let id = 0;
      const call = async (server, tool = 'echo') => (await postRaw(`${base}/mcp/${server}`, { jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: tool, arguments: {} } })).json;

      assert.equal((await call('a')).result?.content?.[0]?.text, 'ran echo', 'the first call runs');
      assert.equal((await postRaw(`${base}/mcp/b`, { jsonrpc: '2.0', id: ++id, method: 'tools/list' })).status, 404, 'no server b yet');

      // A second server in the config file: served once the proxy has read it.
      await replace(config, { servers: { a: { upstream: upstream.url, policy: 'config-reload-a.json' }, b: { upstream: upstream.url, policy: 'config-reload-b.json' } } });
      const policyB = await tempFile('config-reload-b.json', DENY);
      await waitFor(async () => (await postRaw(`${base}/mcp/b`, { jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'echo', arguments: {} } })).json?.result?.structuredContent?.code === 'default_deny',
        'server b (named by the new config file, its policy created after it) to be served');
      // Counters carried over: two more calls on a, then the limit of 3.
      assert.equal((await call('a')).result?.content?.[0]?.text, 'ran echo');
      assert.equal((await call('a')).result?.content?.[0]?.text, 'ran echo');
      assert.equal((await call('a')).result?.structuredContent?.code, 'rate_limited', 'the count kept across the reload');

      // A file the new config named is watched too: b's policy now allows echo.
      await replace(policyB, ALLOW);
      await waitFor(async () => (await call('b')).result?.content?.[0]?.text === 'ran echo', 'b\'s new policy to take effect');

      // Invalid edits are refused, whole: the running configuration stays. Each
      // refusal is waited for by what it says (its own problem, in the log).
      // Complete lines only: a chunk may end inside one.
      const refusals = () => stderr.text.split('\n').slice(0, -1).filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
        .filter((event) => event.message === 'configuration not reloaded; the running one stays');
      for (const [invalid, said] of [
        ['{"servers": {"a": ', (event) => event.diagnostics?.some((d) => d.file === config && d.code === 'not_json')],
        [{ servers: { a: { upstream: upstream.url, policy: 'config-reload-a.json', monitor: 'yes' } } },
          (event) => event.diagnostics?.some((d) => d.file === config && d.pointer === '/servers/a/monitor' && d.line > 0 && d.code === 'invalid_config')],
        [{ servers: { a: { upstream: upstream.url, policy: 'config-reload-missing.json' } } },
          (event) => /cannot read the policy of server "a" .*config-reload-missing\.json: no such file/.test(event.error)],
      ]) {
        await replace(config, invalid);
        await stderr.until(() => refusals().some(said), `the refusal of ${JSON.stringify(invalid)}`);
        assert.equal((await call('b')).result?.content?.[0]?.text, 'ran echo', 'server b still served');
        assert.equal((await call('a')).result?.structuredContent?.code, 'rate_limited', 'a still counted');
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
