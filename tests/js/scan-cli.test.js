// `toolgate scan` as a user runs it (a child process), against real MCP servers:
// @modelcontextprotocol/server-everything over stdio, Streamable HTTP and the older
// HTTP+SSE transport, plus small hand-written servers for what the real one never does
// (paginate, list destructive tools, demand a token, answer garbage, hang, die).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseScanArgs } from '../../lib/cli/scan.js';
import { repoRoot, runCli } from './cli-helpers.js';
import { startEverything } from './proxy-helpers.js';

const cli = join(repoRoot, 'bin', 'toolgate.js');
const everything = join(repoRoot, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const scratch = mkdtempSync(join(tmpdir(), 'toolgate-scan-'));

// What server-everything 2026.8.31 lists, and what the rules make of each tool.
const EVERYTHING = {
  echo: 'read', 'get-annotated-message': 'read', 'get-env': 'read', 'get-resource-links': 'read',
  'get-resource-reference': 'read', 'get-structured-content': 'read', 'get-sum': 'read',
  'get-tiny-image': 'read', 'gzip-file-as-resource': 'write', 'toggle-simulated-logging': 'write',
  'toggle-subscriber-updates': 'write', 'trigger-long-running-operation': 'execute',
  'simulate-research-query': 'write',
};

// Runs `toolgate scan ...`; a scan that hangs is killed and fails the test
// instead of the suite. (The limit only catches a hang: a scan of a stdio
// server starts two Node processes, which a loaded machine can make slow.)
function scan(args, { limitMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cli, 'scan', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      if (signal === 'SIGKILL') reject(new Error(`toolgate scan ${args.join(' ')} hung (killed after ${limitMs} ms)\n${stderr}`));
      else resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

async function scanJson(args) {
  const result = await scan(['--json', ...args]); // before the args: after "--" it would be the server's
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

// A port nothing listens on (just released by the kernel).
function freePort() {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// Starts an in-process HTTP server; resolves to its base URL.
function listen(handler) {
  const server = createServer(handler);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }));
  });
}

function readBody(req) {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => resolve(body));
  });
}

const tool = (name, description, properties = {}, annotations = undefined) => ({
  name, description, inputSchema: { type: 'object', properties }, ...(annotations ? { annotations } : {}),
});

// Two pages of tools, one of each category; the cursor is opaque text.
const PAGES = [
  { tools: [tool('read_note', 'Read a note', { id: { type: 'string' } }), tool('write_note', 'Write a note', { id: { type: 'string' }, text: { type: 'string' } })], nextCursor: 'page-2 of 2' },
  { tools: [tool('run_command', 'Run a shell command', { command: { type: 'string' } }), tool('delete_file', 'Delete a file', { path: { type: 'string' } })] },
];

// A JSON-RPC answer for one request of the hand-written servers.
function answer(message) {
  if (message.method === 'initialize') {
    return {
      jsonrpc: '2.0', id: message.id,
      result: { protocolVersion: message.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'notes', version: '0.0.1' } },
    };
  }
  if (message.method === 'tools/list') {
    const page = message.params?.cursor === PAGES[0].nextCursor ? PAGES[1] : PAGES[0];
    return { jsonrpc: '2.0', id: message.id, result: page };
  }
  return { jsonrpc: '2.0', id: message.id, error: { code: -32601, message: 'Method not found' } };
}

// The same server over stdio, as a script: newline-delimited JSON-RPC on stdin/stdout.
const notesServerFile = join(scratch, 'notes-server.cjs');
writeFileSync(notesServerFile, `
const PAGES = ${JSON.stringify(PAGES)};
${answer.toString()}
let buffer = '';
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let newline;
  while ((newline = buffer.indexOf('\\n')) >= 0) {
    const message = JSON.parse(buffer.slice(0, newline));
    buffer = buffer.slice(newline + 1);
    if (message.id !== undefined && message.method) process.stdout.write(JSON.stringify(answer(message)) + '\\n');
  }
});
`);

function tableRows(stdout) {
  // The table: a header line "TOOL  CATEGORY  RISK  SIGNALS", then one row per tool.
  const lines = stdout.split('\n');
  const header = lines.findIndex((line) => /^TOOL\s+CATEGORY\s+RISK\s+SIGNALS$/.test(line));
  assert.ok(header >= 0, stdout);
  const rows = [];
  for (const line of lines.slice(header + 1)) {
    if (line === '') break;
    const [name, category, risk] = line.split(/\s+/);
    rows.push({ name, category, risk });
  }
  return rows;
}

let streamable;
let sse;
before(async () => {
  [streamable, sse] = await Promise.all([startEverything('streamableHttp'), startEverything('sse')]);
});
after(async () => {
  await streamable?.stop();
  await sse?.stop();
});

describe('toolgate scan against server-everything', { concurrency: 4 }, () => {
  const stdioArgs = ['--', process.execPath, everything, 'stdio'];

  test('stdio: the table lists every tool with its category, then the starter policy', async () => {
    const { code, stdout, stderr } = await scan(stdioArgs);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, '', 'the server\'s stderr is captured, not shown, when the scan works');
    assert.match(stdout, /^Server: mcp-servers\/everything \S+ \(stdio: /);
    const rows = tableRows(stdout);
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.name, r.category])), EVERYTHING);
    assert.match(stdout, /13 tools: 8 read, 4 write, 1 execute, 0 destructive/);
    // After the table and a separator, the policy as JSON, to the end of the output.
    const separator = stdout.indexOf('--- Starter policy');
    assert.ok(separator > stdout.indexOf('13 tools:'), stdout);
    const policy = JSON.parse(stdout.slice(stdout.indexOf('\n{', separator)));
    assert.equal(policy.default, 'deny');
    assert.deepEqual(Object.keys(policy.tools).sort(), Object.keys(EVERYTHING).sort());
    // get-env prints the server's environment: never allowed unattended.
    assert.deepEqual(policy.tools['get-env'], { action: 'require_approval' });
    assert.match(stdout, /--- Starter policy \(7 allowed, 5 rate-limited, 1 only with approval, 0 hidden; every other tool denied\) ---/);
  });

  test('--json: {server, tools, policy}, one JSON object', async () => {
    const stdioJson = await scanJson(stdioArgs);
    assert.deepEqual(Object.keys(stdioJson), ['server', 'tools', 'policy']);
    assert.equal(stdioJson.server.name, 'mcp-servers/everything');
    assert.equal(typeof stdioJson.server.version, 'string');
    assert.deepEqual(stdioJson.tools.map((t) => t.name), Object.keys(EVERYTHING));
    for (const t of stdioJson.tools) {
      assert.deepEqual(Object.keys(t), ['name', 'category', 'risk', 'signals']);
      assert.equal(t.category, EVERYTHING[t.name], t.name);
      for (const s of t.signals) assert.deepEqual(Object.keys(s), ['id', 'detail']);
    }
    const byName = Object.fromEntries(stdioJson.tools.map((t) => [t.name, t]));
    assert.equal(byName['get-env'].risk, 'medium');
    assert.ok(byName['get-env'].signals.some((s) => s.id === 'handles_credentials'));
    assert.deepEqual(stdioJson.policy.tools['get-env'], { action: 'require_approval' });
    assert.match(stdioJson.policy.description, /need a human's approval for every call, so that secrets are not handed out unattended: "get-env"/);
    assert.deepEqual(byName['trigger-long-running-operation'].signals.map((s) => s.id), ['verb', 'annotation_overridden']);
    assert.deepEqual(stdioJson.policy.tools['trigger-long-running-operation'], { rate_limit: '10/minute' });
    assert.deepEqual(stdioJson.policy.tools['toggle-simulated-logging'], { rate_limit: '30/minute' });
    assert.deepEqual(stdioJson.policy.tools.echo, {});
    assert.deepEqual(stdioJson.policy.hide, []);
  });

  test('Streamable HTTP gives the same result as stdio', async () => {
    const [http, viaStdio] = await Promise.all([
      scanJson([`http://127.0.0.1:${streamable.port}/mcp`]),
      scanJson(stdioArgs),
    ]);
    assert.deepEqual(http, viaStdio);
  });

  test('an HTTP+SSE server (2024-11-05 transport): falls back to it after the POST gets 404', async () => {
    const url = `http://127.0.0.1:${sse.port}/sse`;
    const { code, stdout, stderr } = await scan([url]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /\(HTTP\+SSE: http:\/\/127\.0\.0\.1:\d+\/sse\)/);
    assert.deepEqual(Object.fromEntries(tableRows(stdout).map((r) => [r.name, r.category])), EVERYTHING);
  });

  test('--out writes the policy (and only says so); toolgate check accepts it; no overwrite without --force', async () => {
    const out = join(scratch, 'everything-policy.json');
    const url = `http://127.0.0.1:${streamable.port}/mcp`; // quicker than starting a stdio server three times
    const first = await scan(['--out', out, url]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Starter policy written to .*everything-policy\.json/);
    assert.doesNotMatch(first.stdout, /"default": "deny"/, 'the policy goes to the file, not to stdout');
    const written = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(Object.keys(written.tools).sort(), Object.keys(EVERYTHING).sort());

    const checked = await runCli(['check', out]);
    assert.deepEqual(checked, { code: 0, stdout: '', stderr: '' });

    writeFileSync(out, '{"hand": "edited"}');
    const again = await scan(['--out', out, url]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /cannot write the policy to .*everything-policy\.json: it exists \(add --force to replace it\)/);
    assert.equal(readFileSync(out, 'utf8'), '{"hand": "edited"}');
    const forced = await scan(['--out', out, '--force', url]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), written);
  });
});

describe('toolgate scan: the starter policy and pagination (hand-written servers)', { concurrency: 4 }, () => {
  const EXPECTED_POLICY_TOOLS = {
    read_note: {},
    write_note: { rate_limit: '30/minute' },
    run_command: { rate_limit: '10/minute' },
  };

  test('stdio: every page of tools/list; destructive hidden, write 30/minute, execute 10/minute, read {}', async () => {
    const result = await scanJson(['--', process.execPath, notesServerFile]);
    assert.deepEqual(result.server, { name: 'notes', version: '0.0.1' });
    assert.deepEqual(
      Object.fromEntries(result.tools.map((t) => [t.name, [t.category, t.risk]])),
      { read_note: ['read', 'low'], write_note: ['write', 'medium'], run_command: ['execute', 'critical'], delete_file: ['destructive', 'critical'] },
    );
    assert.deepEqual(result.policy.hide, ['delete_file']);
    assert.deepEqual(result.policy.tools, EXPECTED_POLICY_TOOLS);
    assert.equal(result.policy.default, 'deny');
  });

  test('HTTP with --bearer: the token is sent (the server answers 401 without it), and pages are followed', async () => {
    const seen = [];
    const { server, url } = await listen(async (req, res) => {
      seen.push(`${req.method} ${req.headers.authorization ?? '-'} ${req.headers['x-team'] ?? '-'}`);
      if (req.headers.authorization !== 'Bearer s3cret') {
        res.writeHead(401, { 'www-authenticate': 'Bearer' }).end('unauthorized');
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const message = JSON.parse(await readBody(req));
      if (message.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer(message)));
    });
    try {
      const refused = await scan([`${url}/mcp`]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^toolgate: scan: cannot scan http:\/\/127\.0\.0\.1:\d+\/mcp: the server requires authentication \(HTTP 401 Unauthorized\); pass a token with --bearer TOKEN/);
      assert.equal(refused.stdout, '');

      const wrong = await scan([`${url}/mcp`, '--bearer', 'guess']);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /refused the credentials \(HTTP 401 Unauthorized\)/);

      seen.length = 0;
      const result = await scanJson([`${url}/mcp`, '--bearer', 's3cret', '--header', 'X-Team: blue']);
      assert.deepEqual(result.policy.tools, EXPECTED_POLICY_TOOLS);
      assert.deepEqual(result.policy.hide, ['delete_file']);
      assert.ok(seen.length >= 3 && seen.every((line) => line.endsWith('Bearer s3cret blue')), seen.join('\n'));
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});

describe('toolgate scan: what the server names is data', () => {
  test('control and bidi characters in names never reach the terminal raw; the JSON still means the same', async () => {
    const hostile = ['get_report\u202Efdp.exe', 'list\u001b[2J', 'read\u2028line'];
    const { server, url } = await listen(async (req, res) => {
      if (req.method !== 'POST') return res.writeHead(405).end();
      const message = JSON.parse(await readBody(req));
      if (message.id === undefined) return res.writeHead(202).end();
      const reply = message.method === 'tools/list'
        ? { jsonrpc: '2.0', id: message.id, result: { tools: hostile.map((name) => tool(name, 'Get it')) } }
        : answer(message);
      reply.result.serverInfo &&= { name: 'evil\u001b]0;title\u0007', version: '\u202E1' };
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
    try {
      const text = await scan([url]);
      assert.equal(text.code, 0, text.stderr);
      assert.doesNotMatch(text.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069]/u);
      assert.match(text.stdout, /^Server: evil\\u\{1b\}\]0;title\\u\{7\} \\u\{202e\}1 /);
      assert.match(text.stdout, /^get_report\\u\{202e\}fdp\.exe +read/m);
      const policy = JSON.parse(text.stdout.slice(text.stdout.indexOf('\n{')));
      assert.deepEqual(Object.keys(policy.tools), hostile);

      const json = await scan(['--json', url]);
      assert.doesNotMatch(json.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069]/u);
      const parsed = JSON.parse(json.stdout);
      assert.deepEqual(parsed.tools.map((t) => t.name), hostile, 'verbatim after parsing');
      assert.equal(parsed.server.version, '\u202E1');
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});

describe('toolgate scan: failures exit 1 with what, where and why', { concurrency: 4 }, () => {
  test('an unreachable URL: connection refused, at once', async () => {
    const port = await freePort();
    const { code, stdout, stderr, ms } = await scan([`http://127.0.0.1:${port}/mcp`]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.equal(stderr, `toolgate: scan: cannot scan http://127.0.0.1:${port}/mcp: cannot reach the server: connection refused (ECONNREFUSED)\n`);
    assert.ok(ms < 10_000, `took ${ms} ms`); // well under the 30 s default
  });

  test('a URL that is not an MCP endpoint: 404, and the HTTP+SSE fallback gets 404 too', async () => {
    const { code, stderr } = await scan([`http://127.0.0.1:${streamable.port}/nothing-here`]);
    assert.equal(code, 1);
    assert.match(stderr, /cannot scan http:\/\/127\.0\.0\.1:\d+\/nothing-here: HTTP 404 Not Found: no MCP endpoint at this path .*; the older HTTP\+SSE transport, tried next, got the same\n$/);
  });

  test('an HTTP server answering garbage: the content type is named', async () => {
    const { server, url } = await listen((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
    try {
      const { code, stderr } = await scan([url]);
      assert.equal(code, 1);
      assert.match(stderr, /cannot scan http:\/\/127\.0\.0\.1:\d+\/: it answered with content type text\/html, not JSON or an event stream: is this an MCP endpoint\?/);
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  test('a stdio command that does not exist', async () => {
    const { code, stderr } = await scan(['--', 'toolgate-no-such-server', '--stdio']);
    assert.equal(code, 1);
    assert.equal(stderr, 'toolgate: scan: cannot start "toolgate-no-such-server": command not found (is it installed and on PATH?)\n');
  });

  test('a stdio server that exits at once: the command and its stderr are shown', async () => {
    const { code, stderr } = await scan(['--', process.execPath, '-e', 'console.error("missing API_KEY"); process.exit(3)']);
    assert.equal(code, 1);
    assert.match(stderr, /^toolgate: scan: the server \S+ -e 'console\.error\("missing API_KEY"\); process\.exit\(3\)' exited during initialize\nserver stderr \(last lines\):\n {2}missing API_KEY\n$/);
  });

  test('a stdio program that is no MCP server: its output is named as not JSON-RPC', async () => {
    const { code, stderr } = await scan(['--', process.execPath, '-e', 'console.log("Usage: frobnicate FILE")']);
    assert.equal(code, 1);
    assert.match(stderr, /exited during initialize; it wrote something to standard output that is not JSON-RPC \(.*"Usage: fro/);
  });

  test('a stdio server that never answers: --timeout ends the scan and the server', async () => {
    // The server is found by its command line (a sleep of a duration no other
    // process uses), not by a pid it prints: on a loaded machine the 500 ms can
    // run out before sh has printed anything. If sh never got to the sleep,
    // there is no server left either.
    const duration = `30.${process.pid}${Date.now() % 1000}`;
    const running = () => readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).some((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `sleep\0${duration}\0`;
      } catch {
        return false; // gone meanwhile
      }
    });
    const { code, stderr, ms } = await scan(['--timeout', '500', '--', 'sh', '-c', `exec sleep ${duration}`]);
    assert.equal(code, 1);
    assert.match(stderr, /no answer from the server .* within 500 ms \(during initialize\); if the server is just slow, raise the limit with --timeout MS/);
    assert.ok(ms < 10_000, `took ${ms} ms`); // well under the 30 s default
    assert.equal(running(), false, 'the server process is gone');
  });

  test('an HTTP server that never answers: --timeout ends the scan', async () => {
    const { server, url } = await listen(() => {}); // accepts, never responds
    try {
      const { code, stderr, ms } = await scan([`${url}/mcp`, '--timeout', '400']);
      assert.equal(code, 1);
      assert.match(stderr, /no answer from http:\/\/127\.0\.0\.1:\d+\/mcp within 400 ms \(during initialize\)/);
      assert.ok(ms < 10_000, `took ${ms} ms`); // well under the 30 s default
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  test('a tools/list answer the scanner cannot use', async () => {
    const { server, url } = await listen(async (req, res) => {
      if (req.method !== 'POST') return res.writeHead(405).end();
      const message = JSON.parse(await readBody(req));
      if (message.id === undefined) return res.writeHead(202).end();
      const reply = message.method === 'tools/list'
        ? { jsonrpc: '2.0', id: message.id, result: { tools: [{ description: 'no name' }] } }
        : answer(message);
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
    try {
      const { code, stderr } = await scan([url]);
      assert.equal(code, 1);
      assert.match(stderr, /the tools\/list answer of http:\/\/127\.0\.0\.1:\d+\/ cannot be scanned: tools\[0\] has no string "name"/);
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});

describe('toolgate scan: usage', { concurrency: 4 }, () => {
  test('--help prints the usage and exits 0', async () => {
    const { code, stdout, stderr } = await scan(['--help']);
    assert.equal(code, 0);
    assert.equal(stderr, '');
    assert.match(stdout, /^Usage:\n {2}toolgate scan URL \[options\]\n {2}toolgate scan \[options\] -- COMMAND \[ARGS\.\.\.\]/);
    for (const option of ['--header', '--bearer', '--json', '--out', '--force', '--details', '--timeout']) assert.ok(stdout.includes(option), option);
  });

  // Two through the CLI for the exit code and the message's form; the rest below, in-process.
  for (const [args, message] of [
    [[], /which server\? Give its URL, or -- and the command that starts it/],
    [['http://a.example/', '--', 'node'], /give either a URL or a command after --, not both/],
  ]) {
    test(`usage error, exit 2: scan ${args.join(' ')}`, async () => {
      const { code, stdout, stderr } = await scan(args);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.match(stderr, message);
      assert.match(stderr, /^toolgate: scan: .*\nRun "toolgate scan --help" for usage\.\n$/);
    });
  }

  test('parseScanArgs: every usage error has its message', () => {
    const usageErrors = [
      [['npx', 'some-server'], /scan takes one URL, got 2 arguments/],
      [['some-server'], /"some-server" is not an http:\/\/ or https:\/\/ URL; to scan a stdio server, put its command after --/],
      [['ftp://a.example/'], /: "ftp:\/\/a\.example\/" is not an http:\/\/ or https:\/\/ URL$/],
      [['--'], /no command after --/],
      [['--bearer', 't', '--', 'node'], /--header and --bearer are for HTTP servers/],
      [['http://a.example/', '--timeout', '10s'], /--timeout expects milliseconds/],
      [['http://a.example/', '--timeout', '0'], /--timeout expects milliseconds/],
      [['http://a.example/', '--header', 'no colon'], /--header expects "Name: value"/],
      [['http://a.example/', '--header', ': value'], /--header expects "Name: value"/],
      [['http://a.example/', '--bearer', 't', '--header', 'authorization: Basic x'], /--bearer or an Authorization --header, not both/],
      [['http://a.example/', '--bearer', 'two words'], /--bearer expects a token/],
      [['http://user:pw@a.example/'], /put credentials in --bearer or --header, not in the URL/],
      [['http://a.example/', '--force'], /--force only makes sense with --out FILE/],
      [['http://a.example/', '--frobnicate'], /: unknown option --frobnicate$/],
      [['http://a.example/', '--out'], /--out/],
    ];
    for (const [args, message] of usageErrors) {
      assert.throws(() => parseScanArgs(args), message, args.join(' '));
    }
  });

  test('parseScanArgs: URL, headers, bearer, timeout; options before "--" belong to scan, after it to the server', () => {
    const http = parseScanArgs(['https://mcp.example/mcp', '--header', 'X-Team: blue', '--header', 'x-team:  red ', '--bearer', 'tok', '--timeout', '1500', '--json']);
    assert.equal(http.target.url.href, 'https://mcp.example/mcp');
    assert.deepEqual(http.target.headers, { 'x-team': 'red', Authorization: 'Bearer tok' });
    assert.equal(http.timeoutMs, 1500);
    assert.equal(http.output.json, true);
    assert.equal(parseScanArgs(['http://a.example/']).timeoutMs, 30_000);

    const stdio = parseScanArgs(['--out', 'p.json', '--', 'npx', '-y', 'server', '--json', '--', 'x']);
    assert.deepEqual(stdio.target, { kind: 'stdio', command: 'npx', args: ['-y', 'server', '--json', '--', 'x'] });
    assert.deepEqual(stdio.output, { json: false, out: 'p.json', force: false, details: false });
    assert.deepEqual(parseScanArgs(['--help', 'whatever']), { help: true });
  });
});
