// The proxy on Node: the same handler as on Workers, served by
// @hono/node-server, with its configuration read from files, reloaded when
// they change, counters in memory or Redis, and audit events on stdout, in a
// file or in a Redis stream. Upstream requests go over node:http with kept-alive
// connections (./node-transport.js), not fetch: half the CPU per call.
import crypto from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';

import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../wasm/index.js';
import { StreamAuditSink } from './audit.js';
import { watchFiles } from './file-watch.js';
import { pinsForServer } from './pins.js';
import { readPinsFile } from '../lib/pins-file.js';
import { Grants } from './grants.js';
import { createHandler } from './handler.js';
import { createHostCheck } from './host-check.js';
import { createNodeTransport, upstreamBody } from './node-transport.js';
import { OAuthConfigError, checkOAuthConfig, createOAuth } from './oauth.js';

/**
 * Where the proxy's configuration lives. Either one server (policy + upstream,
 * answering on /mcp) or several (servers: name -> {upstream, policy, headers},
 * each on /mcp/<name>). Paths are read (and watched) by loadConfig.
 * @typedef {object} NodeProxyOptions
 * @property {Record<string, {upstream: string, policy: string, headers?: Record<string, string>}>} servers
 * @property {string} [grants] path of the grants file
 */

export class ConfigError extends Error {
  name = 'ConfigError';
}

async function readText(path, what) {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the ${what} ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  }
}

function compilePolicy(toolgate, text, path) {
  const { ok, diagnostics } = toolgate.check(text);
  if (!ok) {
    throw new ConfigError(`${path} is not a valid policy:\n${diagnostics.filter((d) => d.severity === 'error')
      .map((d) => `  ${path}:${d.line}:${d.column}: ${d.message} (${d.pointer})`).join('\n')}`);
  }
  return toolgate.compile(text, { source: path });
}

/**
 * Reads every file of the configuration and compiles every policy. Throws
 * ConfigError (nothing half-loaded) when any part is missing or invalid.
 * @returns {Promise<{config: import('./handler.js').ProxyConfig, files: string[]}>}
 */
export async function loadConfig(toolgate, options) {
  const files = [];
  const servers = {};
  for (const [name, server] of Object.entries(options.servers)) {
    const path = resolve(server.policy);
    files.push(path);
    servers[name] = {
      upstream: server.upstream, headers: server.headers ?? {}, policy: compilePolicy(toolgate, await readText(path, 'policy'), path),
      monitor: server.monitor === true,
    };
  }
  // Tool pins (./pins.js): checked whole at each (re)load, like a policy.
  if (options.pins !== undefined || options.trustOnFirstUse) {
    let loaded;
    if (options.pins !== undefined) {
      const path = resolve(options.pins);
      files.push(path);
      try {
        loaded = await readPinsFile(path, { trustOnFirstUse: options.trustOnFirstUse ?? false });
      } catch (error) {
        throw new ConfigError(error.message);
      }
    }
    const singleServer = Object.keys(servers).length === 1;
    for (const [name, server] of Object.entries(servers)) {
      server.pins = pinsForServer(loaded, name, { singleServer, trustOnFirstUse: options.trustOnFirstUse ?? false });
    }
  }
  let grants = null;
  const grantPolicies = new Map();
  if (options.grants) {
    const path = resolve(options.grants);
    files.push(path);
    const text = await readText(path, 'grants file');
    let document;
    try {
      document = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(`${path} is not JSON: ${error.message}`);
    }
    try {
      grants = new Grants(document, path);
    } catch (error) {
      throw new ConfigError(error.message);
    }
    // A grant's own policy replaces a server's policy for that grant, on the
    // server it names ("policies"), or on the one server there is ("policy").
    let sources;
    try {
      sources = grants.policySources(Object.keys(servers));
    } catch (error) {
      throw new ConfigError(error.message);
    }
    for (const [id, perServer] of sources) {
      const policies = new Map();
      for (const [server, source] of perServer) {
        if (typeof source === 'string') {
          const policyPath = resolve(dirname(path), source);
          files.push(policyPath);
          policies.set(server, compilePolicy(toolgate, await readText(policyPath, `policy of grant "${id}"`), policyPath));
        } else {
          policies.set(server, compilePolicy(toolgate, JSON.stringify(source), `${path}: the inline policy of grant "${id}" for server "${server}"`));
        }
      }
      grantPolicies.set(id, policies);
    }
  }
  return { config: { servers, grants, grantPolicies }, files };
}

/** Replaces ${NAME} in configured header values with environment variables. */
export function expandEnvironment(value, env = process.env) {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name) => {
    if (env[name] === undefined) throw new ConfigError(`environment variable ${name} is not set (used in an upstream header)`);
    return env[name];
  });
}

/**
 * Starts the proxy. Resolves once it listens.
 * @param {NodeProxyOptions & {
 *   port?: number, host?: string, counters?: object, approvals?: object, audit?: object,
 *   adminTokenSha256?: string, failOpen?: boolean, auditArguments?: boolean, maxBodyBytes?: number,
 *   upstreamTimeoutMs?: number, publicUrl?: string, watch?: boolean, sessionKey?: string, auditKey?: string,
 *   maxBatchSize?: number, maxConcurrentPerGrant?: number, bodyTimeoutMs?: number,
 *   maxPendingApprovalsPerGrant?: number, maxApprovalArgumentBytes?: number,
 *   hostCheck?: (request: Request) => Response | null,
 *   allowedHosts?: string[] | string, allowedOrigins?: string[] | string,
 *   transport?: 'node' | 'fetch' | typeof fetch, pins?: string, trustOnFirstUse?: boolean,
 *   metrics?: boolean | {port?: number, host?: string},
 *   tracing?: boolean,
 *   log?: (level: string, message: string, fields?: object) => void,
 *   oauth?: object,
 * }} options
 *   oauth: toolgate as an OAuth resource server: {issuers, resource, grant_claim?, scopes?,
 *   servers?, admin?, ...}, checked by ./oauth.js's checkOAuthConfig (read at start; a
 *   change needs a restart).
 *   transport: how requests go upstream: 'node' (default: node:http with
 *   kept-alive connections, ./node-transport.js), 'fetch' (Node's global
 *   fetch, as on Workers), or a function with fetch's signature.
 *   hostCheck: DNS-rebinding protection; default ./host-check.js's createHostCheck with
 *   allowedHosts, allowedOrigins and publicUrl (loopback Host names and the request's own
 *   Origin unless configured).
 *   metrics: Prometheus metrics (./metrics.js, prom-client): true serves them on /metrics
 *   behind the admin token; {port, host} on their own listener instead (default host
 *   127.0.0.1), without a token. Off by default.
 *   tracing: toolgate's own span per call with @opentelemetry/api (./otel.js), exported by
 *   whatever SDK the process registered. Off by default (the client's traceparent is
 *   passed upstream either way).
 *   pins: a pins file (toolgate pin), reloaded with the rest; trustOnFirstUse: tools it does
 *   not pin are pinned as first seen (./pins.js).
 *   sessionKey: the secret that binds MCP session ids to grants (./sessions.js);
 *   every instance behind one load balancer needs the same. Default: random,
 *   so this process's ids are its own.
 */
export async function startProxy(options) {
  const log = options.log ?? ((level, message, fields) => process.stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`));
  let oauth;
  try {
    oauth = options.oauth ? createOAuth(checkOAuthConfig(options.oauth, Object.keys(options.servers)), { sha256Hex: NODE_SHA256.hex, log }) : undefined;
  } catch (error) {
    throw error instanceof OAuthConfigError ? new ConfigError(error.message) : error;
  }
  const toolgate = await loadToolgate();
  const loaded = await loadConfig(toolgate, options);
  let counters = options.counters ?? new MemoryCounterStore();
  const approvals = options.approvals ?? new MemoryApprovalStore();
  // Loaded only when asked for: without metrics nothing of prom-client runs.
  const metrics = options.metrics ? (await import('./metrics.js')).createMetrics({ approvals }) : null;
  const ownMetricsPort = metrics && typeof options.metrics === 'object' && options.metrics.port !== undefined;
  const storeForHandler = metrics ? metrics.instrumentStore(counters) : counters;
  const tracer = options.tracing ? (await import('./otel.js')).openTelemetryTracer() : undefined;
  const audit = options.audit ?? new StreamAuditSink({ write: (line) => process.stdout.write(line) });
  // TOOLGATE_UPSTREAM_TRANSPORT=fetch chooses fetch where no option can be
  // passed (toolgate serve), e.g. to compare the two.
  const transport = transportOf(options.transport ?? (process.env.TOOLGATE_UPSTREAM_TRANSPORT || undefined));
  const handler = createHandler({
    ...loaded.config, counters: storeForHandler, approvals, audit, log, oauth, observer: metrics?.observer, tracer, metrics: ownMetricsPort ? undefined : metrics ?? undefined, fetch: transport.fetch, upstreamBody: transport.upstreamBody, sha256: NODE_SHA256,
    adminTokenSha256: options.adminTokenSha256, failOpen: options.failOpen, auditArguments: options.auditArguments,
    maxBodyBytes: options.maxBodyBytes, upstreamTimeoutMs: options.upstreamTimeoutMs, publicUrl: options.publicUrl,
    sessionKey: options.sessionKey ?? crypto.randomBytes(32).toString('hex'), auditKey: options.auditKey,
    maxBatchSize: options.maxBatchSize, maxConcurrentPerGrant: options.maxConcurrentPerGrant, bodyTimeoutMs: options.bodyTimeoutMs,
    maxPendingApprovalsPerGrant: options.maxPendingApprovalsPerGrant, maxApprovalArgumentBytes: options.maxApprovalArgumentBytes,
    // The OAuth resource's host is one clients use, as --public-url's is.
    hostCheck: options.hostCheck ?? createHostCheck({ allowedHosts: options.allowedHosts, allowedOrigins: options.allowedOrigins, publicUrl: options.publicUrl ?? oauthOrigin(options.oauth) }),
  });
  const server = createAdaptorServer({
    fetch: (request, env) => handler.fetch(request, { remoteAddress: env?.incoming?.socket?.remoteAddress }),
    hostname: options.host ?? '127.0.0.1',
  });
  // Long-lived event streams must not be cut by Node's request timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const { port } = server.address();
  let metricsServer = null;
  if (ownMetricsPort) {
    metricsServer = await listenMetrics(metrics, options.metrics).catch(async (error) => {
      server.closeAllConnections?.();
      await new Promise((done) => server.close(() => done()));
      throw error;
    });
  }

  // Reload: a changed file is read again in full; only a configuration that
  // loads without error replaces the running one. Counters live in their
  // store, so they carry over.
  let reloading = Promise.resolve();
  let watcher;
  const reload = () => {
    reloading = reloading.then(async () => {
      try {
        const next = await loadConfig(toolgate, options);
        // Old plans are freed by the façade once nothing uses them (an open
        // event stream may still filter with its policy).
        handler.update(next.config);
        watcher?.set(next.files);
        metrics?.reloaded(true);
        log('info', 'configuration reloaded', { policies: Object.fromEntries(Object.entries(next.config.servers).map(([n, s]) => [n, s.policy.hash])) });
      } catch (error) {
        metrics?.reloaded(false);
        log('error', 'configuration not reloaded; the running one stays', { error: error.message });
      }
    });
    return reloading;
  };
  if (options.watch !== false) watcher = watchFiles(loaded.files, reload);

  return {
    port,
    url: `http://${options.host && options.host !== '0.0.0.0' && options.host !== '::' ? options.host : '127.0.0.1'}:${port}`,
    handler,
    counters,
    /** The metrics listener's URL ({metrics: {port}}), or undefined. */
    metricsUrl: metricsServer ? `http://${hostForUrl(options.metrics.host ?? '127.0.0.1')}:${metricsServer.address().port}/metrics` : undefined,
    approvals,
    /** Reads the configuration again now (what a file change does). */
    reload,
    async close() {
      watcher?.close();
      server.closeAllConnections?.();
      await new Promise((done) => server.close(() => done()));
      if (metricsServer) {
        metricsServer.closeAllConnections?.();
        await new Promise((done) => metricsServer.close(() => done()));
      }
      await reloading;
      transport.close();
    },
  };
}

// SHA-256 of bearer tokens and audit arguments with node:crypto: synchronous,
// no WebCrypto promise and thread-pool job per hash. crypto.hash (one shot)
// where this Node has it (>= 20.12), createHash otherwise.
const oneShot = typeof crypto.hash === 'function';
export const NODE_SHA256 = Object.freeze({
  hex: oneShot ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex'),
  bytes: oneShot ? (text) => crypto.hash('sha256', text, 'buffer') : (text) => crypto.createHash('sha256').update(text, 'utf8').digest(),
  // HMAC-SHA-256, base64url: session ids bound to grants (./sessions.js).
  hmac: (key, text) => crypto.createHmac('sha256', key).update(text, 'utf8').digest('base64url'),
});

// The origin of the OAuth resource (checked by then), or undefined.
function oauthOrigin(oauth) {
  try {
    return oauth?.resource ? new URL(oauth.resource).origin : undefined;
  } catch {
    return undefined;
  }
}

function transportOf(choice = 'node') {
  if (typeof choice === 'function') return { fetch: choice, close() {} };
  if (choice === 'fetch') return { fetch: (...args) => fetch(...args), close() {} };
  if (choice === 'node') {
    const transport = createNodeTransport();
    return { fetch: transport, upstreamBody, close: transport.close };
  }
  throw new ConfigError(`transport must be "node", "fetch" or a function, not ${JSON.stringify(choice)}`);
}

const hostForUrl = (host) => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host);

// /metrics on a listener of its own (what a Prometheus on the same host or
// network scrapes without holding the admin token); nothing else is served there.
async function listenMetrics(metrics, { port, host = '127.0.0.1' }) {
  const { createServer } = await import('node:http');
  const server = createServer((request, response) => {
    const path = new URL(request.url, 'http://localhost').pathname;
    if (request.method !== 'GET' || path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('toolgate serves only GET /metrics here\n');
      return;
    }
    metrics.text().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${error?.message ?? error}\n`),
    );
  });
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  return server;
}
