// Operating toolgate (issue #16) as operators run it: `toolgate serve` as a
// child with the official MCP SDK client and server-everything behind it;
// /metrics scraped by a real Prometheus and read back with PromQL, checked by
// `promtool check metrics`; monitor mode; and `toolgate replay` on the audit
// log that serve itself wrote.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { repoRoot, runCli } from './cli-helpers.js';
import { collectOutput, connectClient, grantsDocument, postRaw, slidingRateLimit, startEverything, tempFile, waitFor } from './proxy-helpers.js';
import { startPrometheus } from './prometheus-server.js';

const CLI = join(repoRoot, 'bin/toolgate.js');
const ADMIN_TOKEN = 'operate-admin-token-0123456789';
const POLICY = {
  version: '1',
  default: 'deny',
  hide: ['get-env'],
  // sliding: counts made against the wall clock (slidingRateLimit)
  tools: { echo: slidingRateLimit(2, 'hour'), 'get-sum': {} },
};
const text = (result) => result.content.map((c) => c.text).join('');

/** `toolgate serve ... --port 0` as a child, once its whole banner is out. */
async function serve(args) {
  const child = spawn(process.execPath, [CLI, 'serve', ...args, '--port', '0'], {
    env: { ...process.env, TOOLGATE_ADMIN_TOKEN: ADMIN_TOKEN }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  const stderr = collectOutput(child.stderr);
  const stdout = collectOutput(child.stdout);
  const banner = await stderr.until(/sessions: [^\n]*\n/, 'toolgate serve banner').catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
  const base = /is listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(banner)[1];
  return {
    base,
    banner,
    metricsUrl: /metrics: (http:\/\/\S+\/metrics)\n/.exec(banner)?.[1],
    get stdout() { return stdout.text; },
    async auditLines(count) {
      await stdout.until((t) => t.split('\n').length > count, `${count} audit lines on stdout`);
      return stdout.text.trim().split('\n').map((line) => JSON.parse(line));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

function promtoolCheck(metricsText) {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(metricsText);
  });
}

async function auditFile(path, count) {
  const lines = async () => (await readFile(path, 'utf8')).split('\n').filter(Boolean);
  await waitFor(async () => (await lines()).length >= count, `${count} audit events in ${path}`);
  return (await lines()).map((line) => JSON.parse(line));
}

let everything;
let policyPath;
let grantsPath;
before(async () => {
  everything = await startEverything();
  policyPath = await tempFile('operate-policy.json', POLICY);
  grantsPath = await tempFile('operate-grants.json', grantsDocument({ alice: 'alice-operate' }, { alice: { team: 'payments' } }));
});
after(() => everything?.stop());

// The calls the first test makes, and what the policy decides for each.
const CALLS = [
  ['get-sum', { a: 1, b: 2 }, 'allowed'],
  ['echo', { message: 'one' }, 'allowed'],
  ['get-sum', { a: 3, b: 4 }, 'allowed'],
  ['echo', { message: 'two' }, 'allowed'],
  ['echo', { message: 'three' }, 'rate_limited'],
  ['get-env', {}, 'hidden'],
  ['get-tiny-image', {}, 'default_deny'],
  ['get-sum', { a: 5, b: 6 }, 'allowed'],
];

describe('metrics scraped by Prometheus, and replay of the audit serve wrote', () => {
  let proxy;
  let prometheus;
  let auditPath;
  before(async () => {
    auditPath = await tempFile('operate-audit.jsonl', '');
    proxy = await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath,
      '--metrics-port', '0', '--audit', `file:${auditPath}`, '--audit-arguments']);
    assert.ok(proxy.metricsUrl, `the banner names the metrics listener:\n${proxy.banner}`);
    const target = new URL(proxy.metricsUrl);
    prometheus = await startPrometheus([{ job: 'toolgate', target: target.host, path: target.pathname }]);
  });
  after(async () => {
    await prometheus?.stop();
    await proxy?.stop();
  });

  test('a PromQL query returns the decisions the client made, by code; promtool accepts the output', async () => {
    const client = await connectClient(`${proxy.base}/mcp`, 'alice-operate');
    try {
      for (const [name, args, code] of CALLS) {
        const result = await client.callTool({ name, arguments: args });
        assert.equal(result.structuredContent?.code ?? 'allowed', code, `${name} ${JSON.stringify(args)}`);
      }
    } finally {
      await client.close();
    }
    const expected = {};
    for (const [, , code] of CALLS) expected[code] = (expected[code] ?? 0) + 1;
    // Wait on Prometheus' own state: scraped until the counts are all there.
    const query = 'sum by (code) (toolgate_decisions_total{job="toolgate",server="default",enforced="true"})';
    const seen = await waitFor(async () => {
      const rows = await prometheus.query(query);
      const counts = Object.fromEntries(rows.map((row) => [row.metric.code, Number(row.value[1])]));
      return JSON.stringify(counts, Object.keys(counts).sort()) === JSON.stringify(expected, Object.keys(expected).sort()) && counts;
    }, `Prometheus to show ${JSON.stringify(expected)}`, { interval: 200 });
    assert.deepEqual(seen, expected);
    const byTool = await prometheus.query('sum by (tool) (toolgate_decisions_total{job="toolgate"})');
    assert.deepEqual(Object.fromEntries(byTool.map((row) => [row.metric.tool, Number(row.value[1])])),
      { 'get-sum': 3, echo: 3, 'get-env': 1, _other: 1 }); // get-tiny-image: refused, and not a name the policy gives
    // Upstream answers and the latency histograms are scraped too.
    const upstream = await prometheus.query('sum(toolgate_upstream_responses_total{job="toolgate",status="200"})');
    assert.ok(Number(upstream[0]?.value[1]) >= 5, 'the five allowed calls (and the session set-up) reached the server');
    const decisions = await prometheus.query('sum(toolgate_decision_duration_seconds_count{job="toolgate"})');
    assert.equal(Number(decisions[0].value[1]), CALLS.length);

    const metricsText = await (await fetch(proxy.metricsUrl)).text();
    for (const name of ['toolgate_decisions_total', 'toolgate_decision_duration_seconds_bucket', 'toolgate_store_duration_seconds_bucket',
      'toolgate_upstream_duration_seconds_bucket', 'toolgate_upstream_responses_total', 'toolgate_reloads_total', 'toolgate_pending_approvals']) {
      assert.match(metricsText, new RegExp(`^${name}`, 'm'), name);
    }
    const checked = await promtoolCheck(metricsText);
    assert.equal(checked.code, 0, `promtool check metrics:\n${checked.output}`);
    // The metrics listener serves nothing else.
    assert.equal((await fetch(new URL('/mcp', proxy.metricsUrl))).status, 404);
  });

  test('toolgate replay on that audit log: the same policy changes nothing; a new one changes what it should', async () => {
    const events = await auditFile(auditPath, CALLS.length);
    assert.equal(events.length, CALLS.length);
    assert.ok(events.every((e) => e.grant_attributes?.team === 'payments'), '--audit-arguments records the grant\'s attributes');

    const same = await runCli(['replay', '--policy', policyPath, auditPath]);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, '');
    assert.match(same.stderr, /replayed 8 calls/);
    assert.match(same.stderr, /changed: 0/);

    // get-sum now needs a human; echo is 1 an hour; get-tiny-image is allowed.
    const next = await tempFile('operate-next.json', {
      version: '1', default: 'deny', hide: ['get-env'],
      tools: { echo: slidingRateLimit(1, 'hour'), 'get-sum': { action: 'require_approval' }, 'get-tiny-image': {} },
    });
    const changed = await runCli(['replay', '--policy', next, '--json', auditPath]);
    assert.equal(changed.code, 1, changed.stderr);
    const summary = JSON.parse(changed.stderr);
    assert.deepEqual(summary, {
      replayed: 8, skipped: 0, changed: 5,
      by_change: { 'allow->approval_required': 3, 'allow->deny': 1, 'deny->allow': 1 },
      by_rule: { '/tools/get-sum/action': 3, '/tools/echo/limits/0': 1, '/default': 1 },
      by_tool: { 'get-sum': 3, echo: 1, 'get-tiny-image': 1 },
    });
    const lines = changed.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((l) => [l.call.tool, l.change]), [
      ['get-sum', 'allow->approval_required'], ['get-sum', 'allow->approval_required'],
      ['echo', 'allow->deny'], ['get-tiny-image', 'deny->allow'], ['get-sum', 'allow->approval_required'],
    ]);
    const echo = lines[2];
    assert.deepEqual(echo.call.arguments, { message: 'two' });
    assert.deepEqual(echo.call.grant, { team: 'payments', id: 'alice' });
    assert.equal(echo.call.now, Date.parse(events.find((e) => e.tool === 'echo' && e.arguments.message === 'two').time));
    assert.deepEqual(echo.baseline, { decision: 'allow', code: 'allowed', rule: '/tools/echo' });
    assert.deepEqual(echo.policy, { decision: 'deny', code: 'rate_limited', rule: '/tools/echo/limits/0' });

    // With --baseline, the old policy is replayed instead of read from the log: same answer.
    const withBaseline = await runCli(['replay', '--policy', next, '--baseline', policyPath, '--json', auditPath]);
    assert.equal(withBaseline.code, 1);
    assert.deepEqual(JSON.parse(withBaseline.stderr), summary);
  });
});

describe('monitor mode', () => {
  test('--monitor: refused calls are forwarded and audited with enforced: false and the would-be decision; metrics say so', async () => {
    const proxy = await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath, '--monitor', '--metrics']);
    try {
      assert.match(proxy.banner, /MONITOR MODE/);
      const client = await connectClient(`${proxy.base}/mcp`, 'alice-operate');
      try {
        // Hidden tools stay listed: nothing is enforced.
        assert.ok((await client.listTools()).tools.some((t) => t.name === 'get-env'));
        const env = await client.callTool({ name: 'get-env', arguments: {} });
        assert.notEqual(env.isError, true, 'the hidden tool ran');
        assert.equal(env.structuredContent?.code, undefined);
        for (const message of ['one', 'two', 'three']) {
          assert.match(text(await client.callTool({ name: 'echo', arguments: { message } })), new RegExp(message), 'every echo ran');
        }
      } finally {
        await client.close();
      }
      const events = await proxy.auditLines(4);
      assert.deepEqual(events.map((e) => [e.tool, e.decision, e.code, e.enforced, e.outcome]), [
        ['get-env', 'deny', 'hidden', false, 'result'],
        ['echo', 'allow', 'allowed', false, 'result'],
        ['echo', 'allow', 'allowed', false, 'result'],
        // Limits count what enforcement would: the two allowed echoes, so the third would be refused.
        ['echo', 'deny', 'rate_limited', false, 'result'],
      ]);
      assert.equal(events[0].rule, '/hide/0');
      assert.equal(events[3].rule, '/tools/echo/limits/0');

      // /metrics on the proxy's own port needs the admin token.
      assert.equal((await fetch(`${proxy.base}/metrics`)).status, 401);
      const metricsText = await (await fetch(`${proxy.base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
      assert.match(metricsText, /^toolgate_decisions_total\{server="default",tool="echo",decision="deny",code="rate_limited",enforced="false"\} 1$/m);
      assert.match(metricsText, /^toolgate_decisions_total\{server="default",tool="get-env",decision="deny",code="hidden",enforced="false"\} 1$/m);

      // An agent making up tool names cannot mint time series: refused names it made up are "_other".
      const flood = [];
      for (let i = 0; i < 300; i += 1) flood.push({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: `made-up-${i}`, arguments: {} } });
      for (let i = 0; i < flood.length; i += 100) {
        await postRaw(`${proxy.base}/mcp`, flood.slice(i, i + 100), { token: 'alice-operate' });
      }
      const after = await (await fetch(`${proxy.base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
      const tools = new Set([...after.matchAll(/^toolgate_decisions_total\{[^}]*tool="([^"]*)"/gm)].map((m) => m[1]));
      assert.deepEqual([...tools].sort(), ['_other', 'echo', 'get-env']);
      assert.match(after, /^toolgate_decisions_total\{server="default",tool="_other",decision="deny",code="default_deny",enforced="false"\} 300$/m);
    } finally {
      await proxy.stop();
    }
  });

  test('a config file monitors one server and enforces the other', async () => {
    const config = await tempFile('operate-config.json', {
      servers: {
        enforced: { upstream: everything.url, policy: policyPath },
        watched: { upstream: everything.url, policy: policyPath, monitor: true },
      },
      grants: grantsPath,
    });
    const proxy = await serve(['--config', config]);
    try {
      const enforced = await connectClient(`${proxy.base}/mcp/enforced`, 'alice-operate');
      const watched = await connectClient(`${proxy.base}/mcp/watched`, 'alice-operate');
      try {
        assert.equal((await enforced.callTool({ name: 'get-tiny-image', arguments: {} })).structuredContent?.code, 'default_deny');
        const ran = await watched.callTool({ name: 'get-tiny-image', arguments: {} });
        assert.notEqual(ran.isError, true);
        assert.ok(ran.content.some((c) => c.type === 'image'), 'the server answered with its image');
      } finally {
        await enforced.close();
        await watched.close();
      }
      const events = await proxy.auditLines(2);
      const byServer = Object.fromEntries(events.map((e) => [e.server, e]));
      assert.equal(byServer.enforced.enforced, undefined);
      assert.equal(byServer.enforced.code, 'default_deny');
      assert.equal(byServer.watched.enforced, false);
      assert.equal(byServer.watched.code, 'default_deny');
      assert.equal(byServer.watched.outcome, 'result');
    } finally {
      await proxy.stop();
    }
  });

  test('a config server\'s "monitor" must be a boolean', async () => {
    const config = await tempFile('operate-bad-config.json', { servers: { a: { upstream: everything.url, policy: policyPath, monitor: 'yes' } } });
    const result = await runCli(['serve', '--config', config, '--port', '0']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /"monitor" must be true or false/);
  });
});

describe('on Workers (workerd through Miniflare)', () => {
  /** The Workers entry with these bindings and a Workers Analytics Engine dataset as METRICS. */
  async function startWorkerProxy(bindings) {
    const { Miniflare } = await import('miniflare');
    const { moduleGraph } = await import('./workerd-modules.js');
    const modules = await moduleGraph('worker/workers.js');
    const mf = new Miniflare({
      modulesRoot: repoRoot, modules, compatibilityDate: '2025-01-01', bindings,
      durableObjects: { COUNTERS: { className: 'ToolgateCounters', useSQLite: true }, APPROVALS: { className: 'ToolgateApprovals', useSQLite: true } },
      analyticsEngineDatasets: { METRICS: { dataset: 'toolgate_metrics' } },
      host: '127.0.0.1', port: 0,
    });
    const url = await mf.ready;
    return { mf, url: url.href.replace(/\/$/, '') };
  }

  test('MONITOR = "true": a hidden tool is called and runs; data points go to Analytics Engine without failing a call', async () => {
    const proxy = await startWorkerProxy({
      UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), MONITOR: 'true',
      GRANTS: JSON.stringify(grantsDocument({ alice: 'alice-operate' })), ADMIN_TOKEN: ADMIN_TOKEN,
    });
    try {
      const client = await connectClient(`${proxy.url}/mcp`, 'alice-operate');
      try {
        const env = await client.callTool({ name: 'get-env', arguments: {} });
        assert.notEqual(env.isError, true, 'the hidden tool ran');
        assert.equal(env.structuredContent?.code, undefined);
        assert.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 40, b: 2 } })), /42/);
      } finally {
        await client.close();
      }
    } finally {
      await proxy.mf.dispose();
    }
  });

  test('a MONITOR that is not true or false is a configuration error: nothing is forwarded', async () => {
    const proxy = await startWorkerProxy({
      UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), MONITOR: 'yes',
      GRANTS: JSON.stringify(grantsDocument({ alice: 'alice-operate' })), ADMIN_TOKEN: ADMIN_TOKEN,
    });
    try {
      const answer = await fetch(`${proxy.url}/mcp`, { method: 'POST', headers: { authorization: 'Bearer alice-operate', 'content-type': 'application/json' }, body: '{}' });
      assert.equal(answer.status, 500);
      assert.match(await answer.text(), /MONITOR must be/);
    } finally {
      await proxy.mf.dispose();
    }
  });
});

describe('"mode": "monitor" in the policy (the core accepts it; the proxy forwards what it would refuse)', () => {
  const MONITORED = {
    version: '1',
    default: 'deny',
    hide: ['get-env'],
    tools: { echo: { mode: 'monitor', ...slidingRateLimit(1, 'hour') }, 'get-sum': {} },
  };

  test('one tool entry in monitor mode: its refusals are forwarded and audited enforced: false; other tools are enforced', async () => {
    const policy = await tempFile('operate-mode-entry.json', MONITORED);
    const proxy = await serve(['--policy', policy, '--upstream', everything.url, '--grants', grantsPath]);
    try {
      const client = await connectClient(`${proxy.base}/mcp`, 'alice-operate');
      try {
        for (const message of ['one', 'two']) {
          assert.match(text(await client.callTool({ name: 'echo', arguments: { message } })), new RegExp(message), 'both echoes ran');
        }
        assert.equal((await client.callTool({ name: 'get-env', arguments: {} })).structuredContent?.code, 'hidden', 'hidden stays refused');
        assert.equal((await client.callTool({ name: 'get-tiny-image', arguments: {} })).structuredContent?.code, 'default_deny');
        assert.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } })), /2/);
      } finally {
        await client.close();
      }
      const events = await proxy.auditLines(5);
      assert.deepEqual(events.map((e) => [e.tool, e.code, e.enforced]), [
        ['echo', 'allowed', false], ['echo', 'rate_limited', false], ['get-env', 'hidden', undefined],
        ['get-tiny-image', 'default_deny', undefined], ['get-sum', 'allowed', undefined],
      ]);
    } finally {
      await proxy.stop();
    }
  });

  test('the whole policy in monitor mode: a call it denies runs; toolgate eval marks it enforced: false; check rejects a bad mode', async () => {
    const policy = await tempFile('operate-mode-policy.json', { ...MONITORED, mode: 'monitor' });
    const proxy = await serve(['--policy', policy, '--upstream', everything.url, '--grants', grantsPath]);
    try {
      const client = await connectClient(`${proxy.base}/mcp`, 'alice-operate');
      try {
        assert.ok((await client.listTools()).tools.some((t) => t.name === 'get-env'), 'hidden tools stay listed');
        const image = await client.callTool({ name: 'get-tiny-image', arguments: {} });
        assert.ok(image.content.some((c) => c.type === 'image'), 'the default-denied tool ran');
      } finally {
        await client.close();
      }
      const [event] = await proxy.auditLines(1);
      assert.deepEqual([event.code, event.rule, event.enforced, event.outcome], ['default_deny', '/default', false, 'result']);
    } finally {
      await proxy.stop();
    }
    const evaluated = await runCli(['eval', '--policy', policy], { input: '{"tool": "get-tiny-image", "arguments": {}, "grant": "a"}\n' });
    assert.deepEqual(JSON.parse(evaluated.stdout).enforced, false);
    assert.equal(JSON.parse(evaluated.stdout).code, 'default_deny');
    const bad = await tempFile('operate-mode-bad.json', { ...MONITORED, mode: 'audit' });
    const checked = await runCli(['check', bad]);
    assert.equal(checked.code, 1);
    assert.match(checked.stdout + checked.stderr, /"mode" must be "enforce" or "monitor"/);
  });
});

test('metrics count reloads, and failed reloads, of the watched policy', async () => {
  const { writeFile } = await import('node:fs/promises');
  const policy = await tempFile('operate-reload.json', POLICY);
  const proxy = await serve(['--policy', policy, '--upstream', everything.url, '--grants', grantsPath, '--metrics-port', '0']);
  const reloads = async () => {
    const metricsText = await (await fetch(proxy.metricsUrl)).text();
    return Object.fromEntries([...metricsText.matchAll(/^toolgate_reloads_total\{result="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
  };
  try {
    assert.deepEqual(await reloads(), { ok: 0, failed: 0 });
    await writeFile(policy, JSON.stringify({ ...POLICY, description: 'changed' }));
    await waitFor(async () => (await reloads()).ok >= 1, 'a reload counted', { interval: 50 });
    await writeFile(policy, '{"version": "1", "default": "sometimes"}');
    await waitFor(async () => (await reloads()).failed >= 1, 'a failed reload counted', { interval: 50 });
  } finally {
    await proxy.stop();
  }
});

test('metrics time the counter store and count its failures (the call is denied store_error, fail closed)', async () => {
  const { startProxy } = await import('../../worker/node.js');
  const { sha256 } = await import('./proxy-helpers.js');
  const { MemoryCounterStore } = await import('../../wasm/index.js');
  const memory = new MemoryCounterStore();
  let failing = false;
  // A store that works, then fails: the real memory store behind a switch.
  const counters = {
    reserve: (requests, now) => (failing ? Promise.reject(new Error('store down')) : memory.reserve(requests, now)),
    commit: (reservation) => memory.commit(reservation),
    rollback: (reservation) => memory.rollback(reservation),
  };
  const policy = await tempFile('operate-store.json', { version: '1', default: 'deny', tools: { echo: slidingRateLimit(100, 'hour') } });
  const proxy = await startProxy({
    servers: { default: { upstream: everything.url, policy } }, port: 0, counters, metrics: true,
    adminTokenSha256: sha256(ADMIN_TOKEN), log: () => {}, audit: { write: async () => {} },
  });
  try {
    const client = await connectClient(`${proxy.url}/mcp`);
    try {
      assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'up' } })), /up/);
      failing = true;
      assert.equal((await client.callTool({ name: 'echo', arguments: { message: 'down' } })).structuredContent.code, 'store_error');
    } finally {
      await client.close();
    }
    const metricsText = await (await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    assert.match(metricsText, /^toolgate_store_errors_total\{operation="reserve"\} 1$/m);
    assert.match(metricsText, /^toolgate_store_duration_seconds_count\{operation="reserve"\} 2$/m);
    assert.match(metricsText, /^toolgate_store_duration_seconds_count\{operation="commit"\} 1$/m);
    assert.match(metricsText, /^toolgate_decisions_total\{server="default",tool="echo",decision="deny",code="store_error",enforced="true"\} 1$/m);
  } finally {
    await proxy.close();
  }
});

test('toolgate stdio with a policy in "mode": "monitor": a denied call reaches the stdio server; stderr audits enforced: false', async () => {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
  const { EVERYTHING } = await import('./proxy-helpers.js');
  const policy = await tempFile('operate-stdio-monitor.json', { version: '1', default: 'deny', mode: 'monitor', tools: { echo: {} } });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'stdio', '--policy', policy, '--grant', 'desktop', '--', process.execPath, EVERYTHING, 'stdio'],
    stderr: 'pipe',
  });
  const stderr = collectOutput(transport.stderr);
  const client = new Client({ name: 'toolgate-operate-stdio', version: '1.0.0' });
  await client.connect(transport);
  try {
    const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    assert.match(text(sum), /5/, 'the call the policy denies by default ran');
    const audited = await stderr.until(/"tool":"get-sum"[^\n]*\n/, 'the audit event of get-sum');
    const event = JSON.parse(audited.split('\n').find((line) => line.includes('"tool":"get-sum"')));
    assert.deepEqual([event.decision, event.code, event.enforced], ['deny', 'default_deny', false]);
  } finally {
    await client.close();
  }
});
