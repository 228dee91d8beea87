// The Workers entry (worker/workers.js) builds its handler while the isolate
// starts, from the bindings imported from 'cloudflare:workers' (config, every
// policy compiled, a warm-up decision), so the first request does not pay for
// it: proved in workerd (Miniflare) between the MCP SDK client and the real
// server-everything, from the entry's own log line per build ("configuration
// loaded", at "startup" or "request"). Bindings whose text changes are still
// noticed: a request whose bindings differ from the startup ones gets a handler
// built from its own (through tests/js/fixtures/workers-env-override.worker.js),
// a new deployment's isolate starts with the new ones, and a configuration
// that fails at startup is reported on every request (500, the reason) while
// the isolate keeps answering.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';

import { Miniflare } from 'miniflare';

import { connectClient, postRaw, sha256, startEverything } from './proxy-helpers.js';
import { repoRoot } from './cli-helpers.js';
import { moduleGraph } from './workerd-modules.js';

const ADMIN = 'startup-admin';
const TOKEN = 'alice-startup';
// get-sum is allowed by POLICY and not by ALT_POLICY (default deny).
const POLICY = { version: '1', default: 'deny', tools: { 'get-sum': {}, echo: { rate_limit: '100/minute' } } };
const ALT_POLICY = { version: '1', default: 'deny', tools: { echo: {} } };

let everything;
before(async () => {
  everything = await startEverything();
});
after(async () => {
  await everything?.stop();
});

/**
 * Miniflare running the entry behind the override wrapper; `lines` collects
 * the JSON lines the worker logs, and `until(predicate)` resolves once a line
 * matching it has arrived (the test waits on the log, never on time).
 */
async function startEntry(bindings) {
  const modules = await moduleGraph('tests/js/fixtures/workers-env-override.worker.js');
  const lines = [];
  const waiters = [];
  const seen = (line) => {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      return; // workerd's own lines
    }
    lines.push(entry);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(entry)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(lines.length);
      }
    }
  };
  const options = (more) => ({
    modulesRoot: repoRoot,
    modules,
    compatibilityDate: '2025-01-01',
    bindings: more,
    durableObjects: {
      COUNTERS: { className: 'ToolgateCounters', useSQLite: true },
      APPROVALS: { className: 'ToolgateApprovals', useSQLite: true },
    },
    host: '127.0.0.1',
    port: 0,
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) createInterface({ input: stream }).on('line', seen);
    },
  });
  const mf = new Miniflare(options(bindings));
  const url = (await mf.ready).href.replace(/\/$/, '');
  return {
    mf,
    url,
    lines,
    // The lines up to and including the first (from `from`) that matches.
    until: (predicate, from = 0) => {
      const at = lines.slice(from).findIndex(predicate);
      if (at >= 0) return Promise.resolve(from + at + 1);
      return new Promise((resolve) => waiters.push({ predicate: (entry) => lines.indexOf(entry) >= from && predicate(entry), resolve }));
    },
    restart: async (more) => {
      await mf.setOptions(options(more));
      return (await mf.ready).href.replace(/\/$/, '');
    },
  };
}

const grants = JSON.stringify({ grants: [{ id: 'alice', token_sha256: sha256(TOKEN) }] });
const builds = (lines) => lines.filter((l) => l.message === 'configuration loaded').map((l) => l.at);
const answered = (path) => (l) => l.message === 'test: answered' && l.path === path;
const sum = async (url) => {
  const client = await connectClient(url, TOKEN);
  try {
    return await client.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } });
  } finally {
    await client.close();
  }
};

describe('the Workers entry builds its handler at startup', () => {
  test('the first request is served by the handler built at startup; changed bindings get a new one', { timeout: 120_000 }, async () => {
    const entry = await startEntry({
      UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), ALT_POLICY: JSON.stringify(ALT_POLICY), GRANTS: grants, ADMIN_TOKEN: ADMIN,
    });
    try {
      const first = await sum(`${entry.url}/mcp`);
      assert.equal(first.isError, undefined, JSON.stringify(first));
      assert.match(first.content[0].text, /42/);
      // Every line the entry wrote up to its answer has arrived: one build, at startup.
      let upTo = await entry.until(answered('/mcp'));
      assert.deepEqual(builds(entry.lines.slice(0, upTo)), ['startup'], 'built at startup, not in the request');

      // The same isolate, bindings with another POLICY: a handler built from them.
      const alt = await sum(`${entry.url}/alt/mcp`);
      assert.equal(alt.structuredContent?.code, 'default_deny', JSON.stringify(alt));
      upTo = await entry.until(answered('/alt/mcp'), upTo);
      assert.deepEqual(builds(entry.lines.slice(0, upTo)), ['startup', 'request']);

      // And back: the startup text again, built again (one handler is kept).
      const back = await sum(`${entry.url}/mcp`);
      assert.match(back.content[0].text, /42/);
      upTo = await entry.until(answered('/mcp'), upTo);
      assert.deepEqual(builds(entry.lines.slice(0, upTo)), ['startup', 'request', 'request']);

      // A new deployment (new bindings, a new isolate): built at startup from the new POLICY.
      const url = await entry.restart({
        UPSTREAM_URL: everything.url, POLICY: JSON.stringify(ALT_POLICY), ALT_POLICY: JSON.stringify(POLICY), GRANTS: grants, ADMIN_TOKEN: ADMIN,
      });
      const from = entry.lines.length;
      const redeployed = await sum(`${url}/mcp`);
      assert.equal(redeployed.structuredContent?.code, 'default_deny', JSON.stringify(redeployed));
      upTo = await entry.until(answered('/mcp'), from);
      assert.ok(builds(entry.lines.slice(0, upTo)).at(-1) === 'startup', 'the new isolate built at startup');
      assert.ok(!entry.lines.slice(from, upTo).some((l) => l.message === 'configuration loaded' && l.at === 'request'));
    } finally {
      await entry.mf.dispose();
    }
  });

  test('requests that arrive together at startup share its build', { timeout: 120_000 }, async () => {
    const entry = await startEntry({ UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), GRANTS: grants, ADMIN_TOKEN: ADMIN });
    try {
      const answers = await Promise.all(Array.from({ length: 8 }, (_, id) => postRaw(`${entry.url}/mcp`,
        { jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, { token: TOKEN })));
      for (const answer of answers) assert.equal(answer.status, 200, answer.text);
      let upTo = 0;
      for (let i = 0; i < answers.length; i++) upTo = await entry.until(answered('/mcp'), upTo);
      assert.deepEqual(builds(entry.lines.slice(0, upTo)), ['startup']);
    } finally {
      await entry.mf.dispose();
    }
  });

  // Every binding the handler is built from, changed alone (a new secret, a
  // new setting): the request is never served by the handler built from the
  // old text. It gets a new build, or, when the new value is not a valid
  // configuration, a 500 that says why (never the old handler's answer).
  test('a change to any one binding the handler reads is noticed', { timeout: 300_000 }, async () => {
    const base = { UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), GRANTS: grants, ADMIN_TOKEN: ADMIN };
    const entry = await startEntry(base);
    const changed = {
      SERVERS: JSON.stringify({ a: { upstream: everything.url, policy: POLICY } }),
      POLICY: JSON.stringify({ ...POLICY, tools: { echo: {} } }),
      UPSTREAM_URL: `${everything.url}?changed`,
      GRANTS: JSON.stringify({ grants: [{ id: 'alice', token_sha256: sha256(TOKEN), attributes: { changed: true } }] }),
      ADMIN_TOKEN: 'another-admin-token',
      UPSTREAM_AUTHORIZATION: 'Bearer another',
      COUNTER_STORE: 'durable-object',
      FAIL_OPEN: 'false',
      SESSION_KEY: 'another-session-key-0123456789',
      AUDIT_KEY: 'another-audit-key',
      PUBLIC_URL: entry.url,
      AUDIT_ARGUMENTS: 'true',
      ALLOWED_HOSTS: '127.0.0.1',
      ALLOWED_ORIGINS: 'https://app.example',
      OAUTH: '{"scopes": ["mcp:tools"]}',
      OAUTH_ISSUERS: 'https://issuer.example',
      OAUTH_RESOURCE: `${entry.url}/mcp`,
      PINS: '{}',
      TRUST_ON_FIRST_USE: 'true',
      MONITOR: 'true',
    };
    try {
      let upTo = 0;
      for (const [name, value] of Object.entries(changed)) {
        // First the startup text again (the handler kept is then its), so the
        // change is the only difference from it.
        await postRaw(`${entry.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { token: TOKEN });
        upTo = await entry.until(answered('/mcp'), upTo);
        const from = upTo;
        const response = await postRaw(`${entry.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' },
          { token: TOKEN, headers: { 'x-test-bindings': JSON.stringify({ [name]: value }) } });
        upTo = await entry.until(answered('/mcp'), from);
        const lines = entry.lines.slice(from, upTo);
        const rebuilt = lines.some((l) => l.message === 'configuration loaded' && l.at === 'request');
        const refused = response.status === 500 && lines.some((l) => l.message === 'configuration error');
        assert.ok(rebuilt || refused, `${name}: ${response.status} ${response.text.slice(0, 200)}`);
      }
      // The same text as at startup, asked again: nothing is rebuilt twice in a row.
      await postRaw(`${entry.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { token: TOKEN });
      upTo = await entry.until(answered('/mcp'), upTo);
      const from = upTo;
      await postRaw(`${entry.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { token: TOKEN });
      upTo = await entry.until(answered('/mcp'), upTo);
      assert.ok(!entry.lines.slice(from, upTo).some((l) => l.message === 'configuration loaded'));
    } finally {
      await entry.mf.dispose();
    }
  });

  test('a configuration that fails at startup is reported on each request; the isolate keeps answering', { timeout: 120_000 }, async () => {
    const entry = await startEntry({
      UPSTREAM_URL: everything.url, POLICY: '{"version": "1", "tools": {"x": {"actoin": "deny"}}}', ALT_POLICY: JSON.stringify(ALT_POLICY), GRANTS: grants, ADMIN_TOKEN: ADMIN,
    });
    try {
      for (let i = 0; i < 2; i++) {
        const response = await postRaw(`${entry.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { token: TOKEN });
        assert.equal(response.status, 500);
        assert.match(response.json.error, /nothing was forwarded: POLICY is not a valid policy: .*actoin/);
      }
      // Valid bindings in the same isolate are served: the failure was not kept.
      const alt = await postRaw(`${entry.url}/alt/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, { token: TOKEN });
      assert.equal(alt.status, 200, alt.text);
      const upTo = await entry.until(answered('/alt/mcp'));
      assert.deepEqual(builds(entry.lines.slice(0, upTo)), ['request']);
    } finally {
      await entry.mf.dispose();
    }
  });
});
