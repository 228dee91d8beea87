// npm start: toolgate in front of a real MCP server, ready for a client.
// Starts @modelcontextprotocol/server-everything (Streamable HTTP) as the
// upstream, `toolgate serve` with examples/everything.json, a demo grant with
// a fresh token, and the policy playground; prints where everything is.
// Ctrl-C stops it all. Ports: PORT (proxy, default 8080), UPSTREAM_PORT
// (default 3001), PLAYGROUND_PORT (default 8787).
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { startProxy } from '../worker/node.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const port = Number(process.env.PORT ?? 8080);
const upstreamPort = Number(process.env.UPSTREAM_PORT ?? 3001);
const playgroundPort = Number(process.env.PLAYGROUND_PORT ?? 8787);

const children = [];
function start(name, args, env, ready) {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  return (async () => {
    for (let waited = 0; !ready(output); waited += 50) {
      if (child.exitCode !== null || waited > 20_000) throw new Error(`${name} did not start:\n${output}`);
      await sleep(50);
    }
  })();
}
const stopAll = () => {
  for (const child of children) if (child.exitCode === null) child.kill();
};
process.on('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));

await start('server-everything', ['node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'streamableHttp'],
  { PORT: String(upstreamPort) }, (output) => output.includes('listening'));
await start('the playground server', ['scripts/serve-web.js'], { PORT: String(playgroundPort) }, (output) => output.includes('http://'));

const dir = await mkdtemp(join(tmpdir(), 'toolgate-demo-'));
const token = `demo-${randomBytes(18).toString('base64url')}`;
const adminToken = process.env.TOOLGATE_ADMIN_TOKEN || `admin-${randomBytes(18).toString('base64url')}`;
const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const grantsPath = join(dir, 'grants.json');
await writeFile(grantsPath, JSON.stringify({ grants: [{ id: 'demo', token_sha256: sha256(token), attributes: { role: 'demo' } }] }, null, 2));
const auditPath = join(dir, 'audit.jsonl');
const { FileAuditSink } = await import('../worker/audit-file.js');

const proxy = await startProxy({
  servers: { default: { upstream: `http://127.0.0.1:${upstreamPort}/mcp`, policy: join(root, 'examples/everything.json') } },
  grants: grantsPath, port, audit: new FileAuditSink({ path: auditPath }), adminTokenSha256: sha256(adminToken),
});
const mcp = `${proxy.url}/mcp`;
const bold = (text) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);

console.log(`
${bold('toolgate is running')} in front of @modelcontextprotocol/server-everything.

  MCP endpoint   ${mcp}
  demo token     ${token}          (grant "demo")
  policy         examples/everything.json   (edit it: toolgate reloads it, counters kept)
  approvals      ${proxy.url}/approvals     (admin token: ${adminToken})
  audit log      ${auditPath}
  playground     http://127.0.0.1:${playgroundPort}/
  docs           http://127.0.0.1:${playgroundPort}/docs/

Point a client at it:
  MCP Inspector:   npx @modelcontextprotocol/inspector   -> Streamable HTTP, URL ${mcp},
                   header Authorization: Bearer ${token}
  Claude Desktop / Cursor (via mcp-remote):
    { "mcpServers": { "toolgate-demo": { "command": "npx",
      "args": ["mcp-remote", "${mcp}", "--header", "Authorization: Bearer ${token}"] } } }
  toolgate scan (lists what the agent sees, classified, with a starter policy):
    npx toolgate scan ${mcp} --bearer ${token}

Try: echo six times in a minute (rate limited), get-sum with a > 1000 (denied),
get-env (hidden), get-tiny-image (waits for you on the approvals page).
Ctrl-C stops everything.
`);
