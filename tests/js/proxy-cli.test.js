// The proxy's commands as users run them: `toolgate serve` (a child process,
// flags as documented) and `toolgate stdio` (wrapping the real
// server-everything over stdio), each driven by the official MCP SDK client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createClient, createCluster } from 'redis';

import { repoRoot } from './cli-helpers.js';
import { EVERYTHING, collectOutput, connectClient, freePort, grantsDocument, slidingRateLimit, startEverything, tempFile, waitFor } from './proxy-helpers.js';
import { startRedis } from './redis-server.js';
import { startRedisCluster } from '../../bench/scale/redis-cluster-server.js';

const CLI = join(repoRoot, 'bin/toolgate.js');
const POLICY = {
  version: '1',
  default: 'deny',
  hide: ['get-env'],
  // echo: sliding, as its counts are made against the wall clock (slidingRateLimit)
  tools: { echo: slidingRateLimit(2, 'hour'), 'get-sum': {}, 'get-tiny-image': { action: 'require_approval' } },
};
const text = (result) => result.content.map((c) => c.text).join('');

/**
 * `toolgate serve ... --port 0` as a child; resolves once it prints that it
 * listens, with the port it got. (A port picked here and bound by the child
 * later could be taken by another process in between.)
 */
async function serve(args, env = {}) {
  const child = spawn(process.execPath, [CLI, 'serve', ...args, '--port', '0'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  const stderr = collectOutput(child.stderr);
  const stdout = collectOutput(child.stdout);
  const banner = await stderr.until(/is listening on \S+\n/, 'toolgate serve listening').catch((error) => {
    child.kill('SIGKILL'); // not started: leave nothing running
    throw error;
  });
  const listening = /is listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(banner);
  return {
    port: Number(listening[1]),
    url: `http://127.0.0.1:${listening[1]}/mcp`,
    get stderr() { return stderr.text; },
    get stdout() { return stdout.text; },
    stderrUntil: (test) => stderr.until(test),
    // The audit events on stdout, once `count` lines have been written.
    async auditLines(count) {
      await stdout.until((text) => text.split('\n').length > count, `${count} audit lines on stdout`);
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

let everything;
let policyPath;
let grantsPath;
before(async () => {
  everything = await startEverything();
  policyPath = await tempFile('cli-policy.json', POLICY);
  grantsPath = await tempFile('cli-grants.json', grantsDocument({ alice: 'alice-cli' }));
});
after(() => everything?.stop());

describe('toolgate serve', () => {
  test('--policy --upstream --port --grants: a real client through to a real server; audit on stdout', async () => {
    const proxy = await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath]);
    try {
      await proxy.stderrUntil(/sessions: /); // the whole banner
      assert.match(proxy.stderr, new RegExp(`http://127\\.0\\.0\\.1:${proxy.port}/mcp -> ${everything.url.replace(/[.]/g, '\\.')}`));
      assert.match(proxy.stderr, /admin token: \S+/, 'a generated admin token is printed');
      const client = await connectClient(proxy.url, 'alice-cli');
      try {
        assert.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), /3/);
        const denied = await client.callTool({ name: 'get-env', arguments: {} });
        assert.equal(denied.structuredContent.code, 'hidden');
      } finally {
        await client.close();
      }
      const events = await proxy.auditLines(2); // each written after its answer
      assert.deepEqual(events.map((e) => [e.tool, e.decision]), [['get-sum', 'allow'], ['get-env', 'deny']]);
    } finally {
      await proxy.stop();
    }
  });

  test('without --grants: a warning, and loopback clients are "anonymous"', async () => {
    const proxy = await serve(['--policy', policyPath, '--upstream', everything.url]);
    try {
      await proxy.stderrUntil(/warning: no --grants file/);
      const client = await connectClient(proxy.url);
      try {
        assert.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 2 } })), /4/);
      } finally {
        await client.close();
      }
      // the audit event follows the answer
      assert.equal((await proxy.auditLines(1))[0].grant, 'anonymous');
    } finally {
      await proxy.stop();
    }
  });

  test('two instances on one Redis share the counts; audit events go to a file', async () => {
    const redis = await startRedis();
    const auditPath = await tempFile('audit.jsonl', '');
    const proxies = [];
    try {
      for (let i = 0; i < 2; i += 1) {
        proxies.push(await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath,
          '--store', redis.url, '--audit', `file:${auditPath}`]));
      }
      const clients = await Promise.all(proxies.map((proxy) => connectClient(proxy.url, 'alice-cli')));
      try {
        const outcomes = [];
        for (const client of [...clients, ...clients]) {
          outcomes.push((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).structuredContent?.code ?? 'ran');
        }
        // echo: 2/hour per grant, whichever instance is asked
        assert.deepEqual(outcomes, ['ran', 'ran', 'rate_limited', 'rate_limited']);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
      // Each event is appended after its answer: wait for the four, then no more.
      const lines = async () => (await readFile(auditPath, 'utf8')).split('\n').filter(Boolean);
      await waitFor(async () => (await lines()).length >= 4, 'four audit events in the file');
      const events = (await lines()).map((line) => JSON.parse(line));
      assert.equal(events.length, 4);
    } finally {
      await Promise.all(proxies.map((p) => p.stop()));
      await redis.stop();
    }
  });

  test('--redis-cluster: two serve instances and a stdio proxy share one grant\'s counts on a real Redis Cluster; audit in its stream', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const nodes = [];
    const proxies = [];
    let stdio;
    try {
      for (const node of cluster.nodes) {
        const plain = createClient({ url: node.url });
        plain.on('error', () => {});
        await plain.connect();
        nodes.push(plain);
      }
      // Each instance is given a different node: the others are found from it.
      for (let i = 0; i < 2; i += 1) {
        proxies.push(await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath,
          '--store', cluster.nodes[i].url, '--redis-cluster', '--audit', 'redis']));
      }
      const clients = await Promise.all(proxies.map((proxy) => connectClient(proxy.url, 'alice-cli')));
      const outcomes = [];
      try {
        for (const client of clients) outcomes.push((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).structuredContent?.code ?? 'ran');
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
      // The same grant on a desktop client, through the third node: echo is 2/hour.
      stdio = new Client({ name: 'toolgate-cluster-test', version: '1.0.0' });
      await stdio.connect(new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'stdio', '--policy', policyPath, '--grant', 'alice', '--store', cluster.nodes[2].url, '--redis-cluster', '--', process.execPath, EVERYTHING, 'stdio'],
        stderr: 'ignore',
      }));
      outcomes.push((await stdio.callTool({ name: 'echo', arguments: { message: 'x' } })).structuredContent?.code ?? 'ran');
      assert.deepEqual(outcomes, ['ran', 'ran', 'rate_limited']);

      // alice's counter keys are on the one master that serves her hash tag.
      const slot = await nodes[0].sendCommand(['CLUSTER', 'KEYSLOT', '{alice}']);
      const holders = [];
      for (const [i, node] of nodes.entries()) {
        const keys = await node.sendCommand(['CLUSTER', 'GETKEYSINSLOT', String(slot), '100']);
        if (keys.some((key) => key.startsWith('tg:{alice}:'))) holders.push(i);
      }
      assert.equal(holders.length, 1, `alice's counters on one node (${holders})`);

      // Both instances' audit events in the one stream, whichever node holds it.
      const reader = createCluster({ rootNodes: cluster.rootNodes });
      reader.on('error', () => {});
      await reader.connect();
      try {
        await waitFor(async () => (await reader.xRange('toolgate:audit', '-', '+')).length >= 2, 'two audit events in the stream');
        const entries = await reader.xRange('toolgate:audit', '-', '+');
        assert.deepEqual(entries.map((e) => JSON.parse(e.message.event)).map((e) => [e.grant, e.tool, e.decision]), [['alice', 'echo', 'allow'], ['alice', 'echo', 'allow']]);
      } finally {
        await reader.close();
      }
    } finally {
      await stdio?.close();
      await Promise.all(proxies.map((p) => p.stop()));
      await Promise.all(nodes.map((n) => n.close()));
      await cluster.stop();
    }
  });

  test('TOOLGATE_SESSION_KEY: a session opened through one instance continues through another; without the key it does not', async () => {
    const key = { TOOLGATE_SESSION_KEY: 'shared-session-key-0123456789' };
    const proxies = [
      await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath], key),
      await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath], key),
      await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath]),
    ];
    const ports = proxies.map((proxy) => proxy.port);
    const rpc = (port, message, session) => fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer alice-cli', 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18', ...(session ? { 'mcp-session-id': session } : {}),
      },
      body: JSON.stringify(message),
    });
    try {
      await Promise.all([proxies[0].stderrUntil(/sessions: /), proxies[2].stderrUntil(/sessions: /)]);
      assert.match(proxies[0].stderr, /sessions: ids bound to the grant that opened them \(key from TOOLGATE_SESSION_KEY\)/);
      assert.match(proxies[2].stderr, /sessions: ids bound to the grant that opened them \(key derived from the admin token\)/);
      const opened = await rpc(ports[0], { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
      await opened.text();
      const session = opened.headers.get('mcp-session-id');
      assert.match(session, /^[^.]+\.[A-Za-z0-9_-]{22}$/, 'the client holds a bound id');
      await (await rpc(ports[0], { jsonrpc: '2.0', method: 'notifications/initialized' }, session)).text();
      const listed = await rpc(ports[1], { jsonrpc: '2.0', id: 2, method: 'tools/list' }, session);
      assert.equal(listed.status, 200, 'the other instance with the same key continues the session');
      assert.match(await listed.text(), /"echo"/);
      const elsewhere = await rpc(ports[2], { jsonrpc: '2.0', id: 3, method: 'tools/list' }, session);
      assert.equal(elsewhere.status, 404, 'an instance with another key: Session not found');
      assert.equal((await elsewhere.json()).error.code, -32001);
    } finally {
      await Promise.all(proxies.map((p) => p.stop()));
    }
  });

  test('bad flags and files: a clear message and exit 1 or 2', async () => {
    const cases = [
      [['--policy', policyPath], 1, /serve needs --policy and --upstream/],
      [['--policy', '/nope.json', '--upstream', everything.url, '--port', '0'], 1, /cannot read the policy \/nope\.json: no such file/],
      [['--policy', policyPath, '--upstream', 'ftp://x', '--port', '0'], 1, /--upstream must be an http\(s\) URL/],
      [['--policy', await tempFile('bad.json', '{"version": "1", "tools": {"x": {"rate_limit": "ten"}}}'), '--upstream', everything.url, '--port', '0'], 1, /bad\.json:1:\d+: .*\(\/tools\/x\/rate_limit\)/],
      [['--policy', policyPath, '--upstream', everything.url, '--grants', await tempFile('bad-grants.json', { grants: [{ id: 'a', token_sha256: 'abc' }] }), '--port', '0'], 1, /\/grants\/0\/token_sha256: must be the SHA-256/],
      [['--bogus'], 2, /Unknown option '--bogus'/],
      [['--policy', policyPath, '--upstream', everything.url, '--port', '0', '--redis-cluster'], 1, /--redis-cluster needs --store redis:\/\/HOST:PORT/],
      [['--policy', policyPath, '--upstream', everything.url, '--port', '0', '--store', 'memcached://x'], 1, /--store must be "memory" or a redis:\/\/ URL/],
      [['--policy', policyPath, '--upstream', everything.url, '--port', '0', '--audit', 'redis'], 1, /--audit redis needs --store redis:\/\//],
    ];
    for (const [args, code, message] of cases) {
      const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk) => { stderr += chunk; });
      const [exitCode] = await once(child, 'exit');
      assert.match(stderr, message, args.join(' '));
      assert.equal(exitCode, code, `${args.join(' ')}: ${stderr}`);
    }
  });
});

const ADMIN = 'admin-token-for-the-approvals-cli';
/** `toolgate approvals ...` as a user runs it, with only the environment given here. */
async function approvalsCli(args, env = { TOOLGATE_ADMIN_TOKEN: ADMIN }) {
  const { TOOLGATE_ADMIN_TOKEN: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [CLI, 'approvals', ...args], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const [code] = await once(child, 'close');
  return { code, stdout, stderr };
}

describe('toolgate approvals', () => {
  test('list, show, approve and deny against a running toolgate serve; agent-written arguments are shown terminal-safe', async () => {
    const proxy = await serve(['--policy', policyPath, '--upstream', everything.url, '--grants', grantsPath], { TOOLGATE_ADMIN_TOKEN: ADMIN });
    const url = `http://127.0.0.1:${proxy.port}`;
    const client = await connectClient(proxy.url, 'alice-cli');
    try {
      const empty = await approvalsCli(['list', '--url', url]);
      assert.equal(empty.code, 0, empty.stderr);
      assert.equal(empty.stdout, 'No requests are waiting for approval.\n');

      const first = (await client.callTool({ name: 'get-tiny-image', arguments: {} })).structuredContent;
      assert.equal(first.decision, 'approval_required');
      // An agent can write anything into arguments, escape sequences too.
      const hostile = { note: '\u001b[2J\u001b[1;1Happroved by admin\u202e' };
      const second = (await client.callTool({ name: 'get-tiny-image', arguments: hostile })).structuredContent;

      const listed = await approvalsCli(['list', '--url', url]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^2 requests are waiting for approval \(oldest first\):/);
      for (const id of [first.approval_id, second.approval_id]) assert.ok(listed.stdout.includes(`\n${id}\n`), `${id} listed`);
      assert.match(listed.stdout, /  grant: +alice\n  server: +default\n  tool: +get-tiny-image\n  arguments: \{\}\n  age: +\d+s \(requested \d{4}-\d\d-\d\dT[^;]+; waits \d+h \d+m more\)/);
      assert.doesNotMatch(listed.stdout, /[\u001b\u202e]/, 'no raw escape or bidi override reaches the terminal');
      assert.ok(listed.stdout.includes('arguments: {"note":"\\u001b[2J\\u001b[1;1Happroved by admin\\u{202e}"}'), listed.stdout);

      const json = await approvalsCli(['list', '--url', url, '--json']);
      const { approvals } = JSON.parse(json.stdout);
      assert.deepEqual(approvals.map((a) => [a.id, a.grant, a.tool]), [[first.approval_id, 'alice', 'get-tiny-image'], [second.approval_id, 'alice', 'get-tiny-image']]);
      assert.deepEqual(approvals[1].arguments, hostile, '--json keeps the arguments verbatim');

      const shown = await approvalsCli(['show', first.approval_id, '--url', url, '--json']);
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(JSON.parse(shown.stdout), approvals[0]);

      // The approvals page's address (as stdio prints it) works as --url too.
      const approved = await approvalsCli(['approve', first.approval_id, '--url', `${url}/approvals#${first.approval_id}`]);
      assert.equal(approved.code, 0, approved.stderr);
      assert.match(approved.stdout, new RegExp(`^Approved:\n${first.approval_id}\n  grant: +alice`));
      const ran = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      assert.equal(ran.isError, undefined, text(ran));

      // Another variable holds the token.
      const denied = await approvalsCli(['deny', second.approval_id, '--url', url, '--admin-token-env', 'MY_ADMIN'], { MY_ADMIN: ADMIN });
      assert.equal(denied.code, 0, denied.stderr);
      assert.match(denied.stdout, /^Denied \(removed from the list\):/);
      assert.equal((await approvalsCli(['list', '--url', url])).stdout, 'No requests are waiting for approval.\n');

      const again = await approvalsCli(['approve', second.approval_id, '--url', url]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`no request ${second.approval_id} is waiting at ${url}/approvals \\(unknown, already decided, or expired\\)`));
      const unknown = await approvalsCli(['show', 'f'.repeat(64), '--url', url]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no request f{64} is waiting/);

      const wrong = await approvalsCli(['list', '--url', url], { TOOLGATE_ADMIN_TOKEN: 'not-the-token' });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /the proxy refused the admin token from TOOLGATE_ADMIN_TOKEN \(401 Unauthorized\)/);
      assert.equal(wrong.stdout, '');
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  test('an unreachable proxy, no token, a bad id or action, --help: a clear message and exit 1 or 2', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const cases = [
      [['list', '--url', closed], undefined, 1, /cannot reach the proxy at http:\/\/127\.0\.0\.1:\d+\/approvals: connection refused/],
      [['list', '--url', closed], {}, 2, /no admin token: set TOOLGATE_ADMIN_TOKEN/],
      [['list', '--url', closed, '--admin-token-env', 'NOPE_TOKEN'], {}, 2, /no admin token: set NOPE_TOKEN/],
      [['list', '--url', closed], { TOOLGATE_ADMIN_TOKEN: 'two words\n' }, 2, /TOOLGATE_ADMIN_TOKEN holds spaces, control or non-ASCII characters/],
      [['approve', 'abc', '--url', closed], undefined, 2, /"abc" is not an approval id/],
      [['approve', '--url', closed], undefined, 2, /approve needs the approval id/],
      [['list', 'f'.repeat(64)], undefined, 2, /list takes no id/],
      [['accept', 'f'.repeat(64)], undefined, 2, /unknown action "accept"/],
      [[], undefined, 2, /say what to do: list, show, approve, deny/],
      [['list', '--url', 'ftp://x'], undefined, 2, /--url expects the proxy's http:\/\/ or https:\/\/ address/],
      [['list', '--bogus'], undefined, 2, /Unknown option '--bogus'/],
    ];
    for (const [args, env, code, message] of cases) {
      const result = await approvalsCli(args, env);
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
    }
    const help = await approvalsCli(['--help'], {});
    assert.equal(help.code, 0);
    assert.match(help.stdout, /toolgate approvals approve ID/);
    assert.match(help.stdout, /--admin-token-env NAME/);
  });
});

describe('toolgate stdio', () => {
  async function stdioClient(extra = []) {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'stdio', '--policy', policyPath, ...extra, '--', process.execPath, EVERYTHING, 'stdio'],
      stderr: 'pipe',
    });
    const stderr = collectOutput(transport.stderr);
    const client = new Client({ name: 'toolgate-stdio-test', version: '1.0.0' });
    await client.connect(transport);
    return { client, stderr };
  }

  test('the same policy on a stdio server: hidden tools, denials, limits, audit on stderr', async () => {
    const { client, stderr } = await stdioClient(['--grant', 'desktop']);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('echo') && !names.includes('get-env'));
      assert.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 40, b: 2 } })), /42/);
      const outcomes = [];
      for (let i = 0; i < 3; i++) outcomes.push((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).structuredContent?.code ?? 'ran');
      assert.deepEqual(outcomes, ['ran', 'ran', 'rate_limited']);
      const denied = await client.callTool({ name: 'get-structured-content', arguments: { location: 'New York' } });
      assert.match(text(denied), /^\[POLICY DENIED\]/);
      // The audit lines reach stderr on their own pipe, maybe after the answers
      // on stdout: wait for the last call's (the denial), whole.
      const auditEvents = (output) => output.split('\n').slice(0, -1).filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
      const events = auditEvents(await stderr.until((output) => auditEvents(output).some((e) => e.tool === 'get-structured-content'), 'the audit event of the denied call'));
      const sum = events.find((e) => e.tool === 'get-sum');
      assert.ok(sum && sum.decision === 'allow' && sum.grant === 'desktop' && sum.server === 'stdio', JSON.stringify(sum));
      // Keyed (TOOLGATE_AUDIT_KEY is unset here: a random key for the run), so not the plain SHA-256 anyone could recompute.
      assert.match(sum.argument_hmac, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(sum.argument_hmac, createHash('sha256').update('{"a":40,"b":2}').digest('base64url'), 'not an unkeyed hash of the arguments');
      assert.ok(events.some((e) => e.tool === 'echo' && e.code === 'rate_limited'));
    } finally {
      await client.close();
    }
  });

  test('approvals through --approvals-port', async () => {
    // Port 0: the page's address comes from its log line (a port picked here
    // and bound by the child later could be taken by another process between).
    const { client, stderr } = await stdioClient(['--approvals-port', '0']);
    try {
      const [, url, token] = /"message":"approvals page","url":"(http:\/\/127\.0\.0\.1:\d+)\/approvals","admin_token":"([^"]+)"/
        .exec(await stderr.until(/"message":"approvals page".*\n/, 'the approvals page log line'));
      const first = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      assert.equal(first.structuredContent.approval_url, `${url}/approvals#${first.structuredContent.approval_id}`);
      // toolgate approvals, given the approval_url the agent got.
      const approved = await approvalsCli(['approve', first.structuredContent.approval_id, '--url', first.structuredContent.approval_url], { TOOLGATE_ADMIN_TOKEN: token });
      assert.equal(approved.code, 0, approved.stderr);
      assert.match(approved.stdout, /^Approved:\n[0-9a-f]{64}\n  grant: +local\n  server: +stdio\n  tool: +get-tiny-image/);
      const second = await client.callTool({ name: 'get-tiny-image', arguments: {} });
      assert.equal(second.isError, undefined, text(second));
    } finally {
      await client.close();
    }
  });

  test('malformed lines get JSON-RPC errors and never reach the server', async () => {
    const child = spawn(process.execPath, [CLI, 'stdio', '--policy', policyPath, '--', process.execPath, EVERYTHING, 'stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const output = collectOutput(child.stdout);
    child.stdin.write('not json\n');
    child.stdin.write('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-sum","name":"get-env"}}\n');
    child.stdin.write('{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get-env"}}\n');
    child.stdin.write('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"GET-SUM","arguments":{"a":1,"b":1}}}\n');
    await output.until((text) => text.split('\n').length > 4, 'four answers');
    child.stdin.end();
    await once(child, 'exit');
    const answers = output.text.trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(answers.slice(0, 3).map((a) => a.error.code), [-32700, -32600, -32600]);
    assert.equal(answers[3].result.structuredContent.code, 'invalid_call');
  });

  test('a command that does not exist: exit 1 and a clear message', async () => {
    const child = spawn(process.execPath, [CLI, 'stdio', '--policy', policyPath, '--', 'no-such-command-xyz'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const [code] = await once(child, 'exit');
    assert.equal(code, 1);
    assert.match(stderr, /cannot run no-such-command-xyz: command not found/);
  });

  test('bad flags, an unreachable Redis, a failing command with Redis open: a clear message, an exit code, no hang', async () => {
    const redis = await startRedis();
    try {
      const cases = [
        // --audit used to be checked after the policy watcher started, which kept the process alive.
        [['--audit', 'bogus', '--', 'true'], 2, /--audit must be stderr or file:PATH/],
        [['--store', 'memcached://x', '--', 'true'], 2, /--store must be "memory" or a redis:\/\/ URL/],
        [['--redis-cluster', '--', 'true'], 2, /--redis-cluster needs --store redis:\/\/HOST:PORT/],
        [['--store', `redis://127.0.0.1:${await freePort()}`, '--', 'true'], 1, /--store: cannot use Redis at redis:\/\/127\.0\.0\.1:\d+: could not connect/],
        // The Redis clients are closed when the command cannot start.
        [['--store', redis.url, '--', 'no-such-command-xyz'], 1, /cannot run no-such-command-xyz: command not found/],
      ];
      for (const [args, code, message] of cases) {
        const child = spawn(process.execPath, [CLI, 'stdio', '--policy', policyPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (chunk) => { stderr += chunk; });
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        const [exitCode, signal] = await once(child, 'exit');
        clearTimeout(timer);
        assert.equal(signal, null, `${args.join(' ')}: did not exit by itself`);
        assert.match(stderr, message, args.join(' '));
        assert.equal(exitCode, code, `${args.join(' ')}: ${stderr}`);
      }
    } finally {
      await redis.stop();
    }
  });
});
