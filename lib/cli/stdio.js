// toolgate stdio: a local MCP server run as a child, with the policy enforced
// on its stdin/stdout. For desktop clients' configs, e.g.
//   "command": "npx", "args": ["toolgate", "stdio", "--policy", "cargo.json", "--", "npx", "@paretools/cargo"]
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { StreamAuditSink } from '../../worker/audit.js';
import { watchFiles } from '../../worker/file-watch.js';
import { Gate } from '../../worker/gate.js';
import { sha256Bytes, toHex } from '../../worker/grants.js';
import { createApprovalRoutes } from '../../worker/approvals.js';
import { runStdioProxy } from '../../worker/stdio.js';
import { ConfigError, NODE_SHA256, loadNodeConfig } from '../../worker/node.js';
import { commandLine, optionParser } from './args.js';
import { STORE_OPTIONS, STORE_USAGE, openStores } from './stores.js';

export const USAGE = `Usage:
  toolgate stdio --policy POLICY.json [options] -- COMMAND [ARGS...]

Runs COMMAND (a stdio MCP server) as a child and enforces the policy on the
newline-delimited JSON-RPC between the client (this process's stdin/stdout)
and it. Audit events and messages go to stderr, never stdout.

Options:
  --policy FILE            the policy (reloaded when the file changes)
  --grant ID               the grant this client is (default "local")
  --grant-attributes JSON  the grant's attributes, e.g. '{"role": "dev"}'
${STORE_USAGE}
  --audit stderr|file:PATH where audit events go (default stderr)
  --audit-arguments        put argument values in audit events
  --approvals-port N       serve the approvals page on http://127.0.0.1:N/approvals
                           (admin token from TOOLGATE_ADMIN_TOKEN, or generated and printed)
  --fail-open              admit calls when the counter store fails (default: deny)
  --pins FILE              hold the server's tools to their pins (written by toolgate pin;
                           reloaded when the file changes): a tool whose definition is
                           not its pin, or that has none, leaves tools/list and its calls
                           are denied (tool_changed)
  --trust-on-first-use     pin each tool (not pinned by --pins) as first seen, and hold to it
`;

const OPTIONS = {
  policy: { type: 'string' },
  grant: { type: 'string' },
  'grant-attributes': { type: 'string' },
  ...STORE_OPTIONS,
  audit: { type: 'string' },
  'audit-arguments': { type: 'boolean' },
  'approvals-port': { type: 'string' },
  'fail-open': { type: 'boolean' },
  pins: { type: 'string' },
  'trust-on-first-use': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const log = (level, message, fields) => process.stderr.write(`toolgate: ${JSON.stringify({ level, message, ...fields })}\n`);

export async function run(args, { fail }) {
  const split = args.indexOf('--');
  const own = split < 0 ? args : args.slice(0, split);
  const [command, ...commandArgs] = split < 0 ? [] : args.slice(split + 1);
  const parsed = commandLine(own, { command: 'stdio', usage: USAGE, parse: optionParser(OPTIONS), fail });
  if (!parsed) return undefined;
  const { values } = parsed;
  if (!values.policy) return fail('stdio needs --policy FILE', 2);
  if (!command) return fail('stdio needs the server command after --, e.g. toolgate stdio --policy p.json -- npx @paretools/cargo', 2);

  let attributes = {};
  if (values['grant-attributes'] !== undefined) {
    try {
      attributes = JSON.parse(values['grant-attributes']);
    } catch (error) {
      return fail(`--grant-attributes must be a JSON object: ${error.message}`, 2);
    }
    if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes) || 'id' in attributes) {
      return fail('--grant-attributes must be a JSON object without "id"', 2);
    }
  }
  const grant = { id: values.grant ?? 'local', attributes };
  // Before anything is opened: a wrong flag must not leave a watcher or a
  // Redis client holding the process open.
  if (values.audit && values.audit !== 'stderr' && !values.audit.startsWith('file:')) {
    return fail('--audit must be stderr or file:PATH', 2);
  }

  // The policy and the pins, loaded as toolgate serve loads its files
  // (worker/config.js: each policy compiled once, every problem at once) and
  // reloaded whole when any of them changes; a change that does not load
  // keeps the running ones.
  const toolgate = await loadToolgate();
  const load = () => loadNodeConfig(toolgate, {
    servers: { stdio: { policy: values.policy } }, pins: values.pins, trustOnFirstUse: values['trust-on-first-use'] ?? false,
  });
  let loaded;
  try {
    loaded = await load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return fail(error.message, 1);
  }
  let policy = loaded.servers.stdio.policy;
  let pins = loaded.servers.stdio.pins;
  const watcher = watchFiles(loaded.files, async () => {
    try {
      const next = await load();
      ({ policy, pins } = next.servers.stdio);
      watcher.set(next.files);
      log('info', 'configuration reloaded', { policy_hash: policy.hash });
    } catch (error) {
      log('error', 'configuration not reloaded; the running one stays', { error: error.message });
    }
  });

  // Whatever happens from here, the watcher, the stores and the approvals
  // server are closed before the command returns.
  const closers = [() => watcher.close()];
  try {
    return await proxy();
  } finally {
    for (const close of closers.reverse()) await close();
  }

  async function proxy() {
    let stores;
    try {
      stores = await openStores(values);
    } catch (error) {
      if (error instanceof ConfigError) return fail(error.message, error.usage ? 2 : 1);
      throw error;
    }
    closers.push(() => stores.close());
    const counters = stores.counters ?? new MemoryCounterStore();
    const approvals = stores.approvals ?? new MemoryApprovalStore();
    let audit = new StreamAuditSink({ write: (line) => process.stderr.write(line) });
    if (values.audit?.startsWith('file:')) {
      const { FileAuditSink } = await import('../../worker/audit-file.js');
      const sink = new FileAuditSink({ path: resolve(values.audit.slice(5)) });
      audit = sink;
      closers.push(() => sink.close());
    }

    let approvalUrl;
    if (values['approvals-port'] !== undefined) {
      const adminToken = process.env.TOOLGATE_ADMIN_TOKEN || randomBytes(24).toString('base64url');
      const routes = createApprovalRoutes({ approvals, adminTokenSha256: toHex(await sha256Bytes(adminToken)), log });
      const { createAdaptorServer } = await import('@hono/node-server');
      const server = createAdaptorServer({
        fetch: (request) => {
          const path = new URL(request.url).pathname.replace(/\/+$/, '') || '/';
          return path === '/approvals' || path.startsWith('/approvals/') ? routes(request, path) : new Response('not found', { status: 404 });
        },
      });
      await new Promise((done, reject) => server.once('error', reject).listen(Number(values['approvals-port']), '127.0.0.1', done));
      const base = `http://127.0.0.1:${server.address().port}`;
      approvalUrl = (id) => `${base}/approvals#${id}`;
      log('info', 'approvals page', { url: `${base}/approvals`, ...(process.env.TOOLGATE_ADMIN_TOKEN ? {} : { admin_token: adminToken }) });
      closers.push(() => new Promise((done) => {
        server.close(done);
        server.closeAllConnections(); // an approvals page left open keeps its connection
      }));
    }

    const gate = new Gate({
      counters, approvals, audit, failOpen: values['fail-open'] ?? false, auditArguments: values['audit-arguments'] ?? false, log,
      sha256Hex: NODE_SHA256.hex, hmac: NODE_SHA256.hmac, // node:crypto, synchronous (as toolgate serve), not WebCrypto
      // argument_hmac's key: TOOLGATE_AUDIT_KEY, or random for this run (digests then correlate within it)
      auditKey: process.env.TOOLGATE_AUDIT_KEY || undefined,
    });
    let code;
    try {
      code = await runStdioProxy({ command, args: commandArgs, policy: () => policy, grant, gate, approvalUrl, pins: () => pins });
    } catch (error) {
      return fail(`cannot run ${command}: ${error.code === 'ENOENT' ? 'command not found' : error.message}`, 1);
    }
    process.exitCode = code;
    return undefined;
  }
}
