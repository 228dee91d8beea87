// The proxy on Node: the same handler as on Workers, served by
// @hono/node-server, with its configuration read from files, reloaded when
// they change, counters in memory or Redis, and audit events on stdout, in a
// file or in a Redis stream. Upstream requests go over undici's dispatcher with
// kept-alive connections (./node-transport.js), not fetch: half the CPU per call.
import crypto from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';

import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../wasm/index.js';
import { StreamAuditSink } from './audit.js';
import { BodyPool } from './body-pool.js';
import { ConfigError, ProxyConfigError, loadProxyConfig } from './config.js';
import { watchFiles } from './file-watch.js';
import { createHandler } from './handler.js';
import { createHostCheck } from './host-check.js';
import { createNodeTransport, upstreamBody, upstreamHeaders } from './node-transport.js';
import { createOAuth } from './oauth.js';

/**
 * Where the proxy's configuration lives: one server (policy + upstream,
 * answering on /mcp), several (servers: name -> {upstream, policy, headers},
 * each on /mcp/<name>), or a --config file naming them. Paths are read (and
 * watched) by ./config.js's loadProxyConfig.
 * @typedef {object} NodeProxyOptions
 * @property {Record<string, {upstream: string, policy: string, headers?: Record<string, string>, monitor?: boolean}>} [servers]
 * @property {string} [config] path of a config file ({"servers": {...}, "grants": FILE, "oauth": {...}}), instead of servers
 * @property {string} [grants] path of the grants file (over the config file's "grants")
 */

// The configuration's errors: ConfigError for a flag or file, ProxyConfigError
// (a ConfigError) with every problem of every file.
export { ConfigError, ProxyConfigError };

/** Files, for ./config.js: paths are absolute, a document's references relative to it. */
export const NODE_FILE_READER = Object.freeze({
  files: true,
  read: (path) => readFile(path, 'utf8'),
  resolve: (from, reference) => resolve(dirname(from), reference),
  label: (path, what) => `the ${what} ${path}`,
});

/** What loadProxyConfig reads for startProxy's options. */
export function nodeConfigSources(options) {
  const servers = options.servers === undefined ? undefined
    : Object.fromEntries(Object.entries(options.servers).map(([name, server]) => [name, { ...server, policy: resolve(server.policy) }]));
  return {
    config: options.config === undefined ? undefined : resolve(options.config),
    servers,
    grants: options.grants === undefined ? undefined : resolve(options.grants),
    pins: options.pins === undefined ? undefined : resolve(options.pins),
    trustOnFirstUse: options.trustOnFirstUse ?? false,
    monitor: options.monitor === true,
    // ${VAR} in a config file's header values, read again at each reload.
    header: options.header ?? ((value) => expandEnvironment(value)),
    // A function (toolgate serve: its flags over the file's "oauth"), or settings given whole.
    oauth: typeof options.oauth === 'function' ? options.oauth : (fromFile) => options.oauth ?? fromFile,
    // {sessionKey, adminToken, names}: the session key derived as every host derives it.
    session: options.session,
  };
}

/**
 * Reads every file of the configuration and compiles every policy, once.
 * Throws ProxyConfigError (every problem; nothing half-loaded).
 * @returns {Promise<import('./config.js').LoadedProxyConfig>}
 */
export function loadNodeConfig(toolgate, options) {
  return loadProxyConfig(nodeConfigSources(options), { toolgate, reader: NODE_FILE_READER, sha256Hex: NODE_SHA256.hex });
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
 *   oauth?: object | ((fromFile: object | undefined, path: string) => object | undefined),
 *   monitor?: boolean, header?: (value: string) => string,
 *   session?: {sessionKey?: string, adminToken?: string, names?: {sessionKey: string, adminToken: string}},
 *   bodyPool?: false | {threads?: number, threshold?: number, maxQueuedPerGrant?: number, timeoutMs?: number},
 * }} options
 *   bodyPool: request bodies of 128 KiB or more are read (decoded, parsed, checked, their audit
 *   HMACs computed) on a pool of worker threads (./body-pool.js); its settings, or false to
 *   read every body on the event loop.
 *   Configuration files (servers' policies or config, grants, pins) are loaded by
 *   loadNodeConfig (./config.js): a problem anywhere throws ProxyConfigError with all of them.
 *   oauth: toolgate as an OAuth resource server: {issuers, resource, grant_claim?, scopes?,
 *   servers?, admin?, ...} (or a function of the config file's "oauth"), checked by
 *   ./oauth.js's checkOAuthConfig (read at start; a change needs a restart).
 *   monitor: every server in monitor mode; header: what a config file's header value
 *   becomes (default: ${VAR} from the environment).
 *   transport: how requests go upstream: 'node' (default: undici's dispatcher with
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
 *   every instance behind one load balancer needs the same. Or session: {sessionKey,
 *   adminToken, names}, derived by ./config.js's deriveSessionKey (as on Workers).
 *   Default: random, so this process's ids are its own.
 */
export async function startProxy(options) {
  const log = options.log ?? ((level, message, fields) => process.stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`));
  // Warmed: V8 compiles each WebAssembly function on its first call, so an
  // engine used cold makes the first policy compile and the first calls pay
  // milliseconds each (bench/README.md, cold start); warming runs them once
  // here, at start-up. A warmed engine is this proxy's own (not shared).
  const toolgate = await loadToolgate({ warm: true });
  let loaded = await loadNodeConfig(toolgate, options);
  const oauth = loaded.oauth ? createOAuth(loaded.oauth, { sha256Hex: NODE_SHA256.hex, log }) : undefined;
  let counters = options.counters ?? new MemoryCounterStore();
  const approvals = options.approvals ?? new MemoryApprovalStore();
  // Loaded only when asked for: without metrics nothing of prom-client runs.
  const metrics = options.metrics ? (await import('./metrics.js')).createMetrics({ approvals }) : null;
  const ownMetricsPort = metrics && typeof options.metrics === 'object' && options.metrics.port !== undefined;
  const storeForHandler = metrics ? metrics.instrumentStore(counters) : counters;
  const tracer = options.tracing ? (await import('./otel.js')).openTelemetryTracer() : undefined;
  // One write to stdout for the events of a loop turn, not one per event.
  const audit = options.audit ?? new StreamAuditSink({ write: (line) => process.stdout.write(line) }, { coalesce: true });
  // TOOLGATE_UPSTREAM_TRANSPORT=fetch chooses fetch where no option can be
  // passed (toolgate serve), e.g. to compare the two.
  const transport = transportOf(options.transport ?? (process.env.TOOLGATE_UPSTREAM_TRANSPORT || undefined));
  // Large bodies are read on worker threads, off the event loop (./body-pool.js);
  // bodyPool: false reads every body inline, as on Workers.
  const bodyPool = options.bodyPool === false ? null : new BodyPool({ log, ...options.bodyPool });
  const handler = createHandler({
    ...handlerConfig(loaded), counters: storeForHandler, approvals, audit, log, oauth, observer: metrics?.observer, tracer, metrics: ownMetricsPort ? undefined : metrics ?? undefined, fetch: transport.fetch, upstreamBody: transport.upstreamBody, upstreamHeaders: transport.upstreamHeaders, sha256: NODE_SHA256,
    parseBody: bodyPool ? (bytes, context) => bodyPool.read(bytes, context) : undefined,
    adminTokenSha256: options.adminTokenSha256, failOpen: options.failOpen, auditArguments: options.auditArguments,
    maxBodyBytes: options.maxBodyBytes, upstreamTimeoutMs: options.upstreamTimeoutMs, publicUrl: options.publicUrl,
    sessionKey: options.sessionKey ?? loaded.sessionKey ?? crypto.randomBytes(32).toString('hex'), auditKey: options.auditKey,
    maxBatchSize: options.maxBatchSize, maxConcurrentPerGrant: options.maxConcurrentPerGrant, bodyTimeoutMs: options.bodyTimeoutMs,
    // One timer per deadline length for all requests, not one per request (./deadlines.js).
    sharedTimers: true,
    maxPendingApprovalsPerGrant: options.maxPendingApprovalsPerGrant, maxApprovalArgumentBytes: options.maxApprovalArgumentBytes,
    // The OAuth resource's host is one clients use, as --public-url's is.
    hostCheck: options.hostCheck ?? createHostCheck({ allowedHosts: options.allowedHosts, allowedOrigins: options.allowedOrigins, publicUrl: options.publicUrl ?? oauthOrigin(oauth) }),
  });
  const server = createAdaptorServer({
    fetch: (request, env) => handler.fetch(request, {
      remoteAddress: env?.incoming?.socket?.remoteAddress,
      client: env?.outgoing ? new NodeClient(env.incoming, env.outgoing) : undefined,
    }),
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

  // Reload: a change to any file it read (the --config file, policies,
  // grants, pins) reads them all again; only a configuration that loads
  // without error replaces the running one. Counters live in their store, so
  // they carry over. OAuth settings are read at start only.
  let reloading = Promise.resolve();
  let watcher;
  const reload = () => {
    reloading = reloading.then(async () => {
      let next;
      try {
        next = await loadNodeConfig(toolgate, options);
        // Old plans are freed by the façade once nothing uses them (an open
        // event stream may still filter with its policy).
        handler.update(handlerConfig(next));
      } catch (error) {
        metrics?.reloaded(false);
        // Also watch what it tried to read: creating a missing file retries.
        if (Array.isArray(error?.files)) watcher?.set([...new Set([...loaded.files, ...error.files])]);
        log('error', 'configuration not reloaded; the running one stays', { error: error.message, ...(error.diagnostics ? { diagnostics: error.diagnostics } : {}) });
        return;
      }
      loaded = next;
      watcher?.set(next.files);
      metrics?.reloaded(true);
      if (JSON.stringify(next.oauth) !== JSON.stringify(oauth?.config)) log('warn', 'the OAuth settings changed: they take effect when toolgate restarts');
      log('info', 'configuration reloaded', { policies: Object.fromEntries(Object.entries(next.servers).map(([n, s]) => [n, s.policy.hash])) });
    });
    return reloading;
  };
  if (options.watch !== false) watcher = watchFiles(loaded.files, reload);

  return {
    port,
    url: `http://${options.host && options.host !== '0.0.0.0' && options.host !== '::' ? options.host : '127.0.0.1'}:${port}`,
    handler,
    counters,
    /** The configuration running now (./config.js's loadProxyConfig result). */
    get configuration() {
      return loaded;
    },
    /** The metrics listener's URL ({metrics: {port}}), or undefined. */
    metricsUrl: metricsServer ? `http://${hostForUrl(options.metrics.host ?? '127.0.0.1')}:${metricsServer.address().port}/metrics` : undefined,
    approvals,
    /** The pool reading large bodies (./body-pool.js; its `stats`), or null. */
    bodyPool,
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
      await transport.close();
      await bodyPool?.close();
    },
  };
}

// SHA-256 of bearer tokens and audit arguments with node:crypto: synchronous,
// no WebCrypto promise and thread-pool job per hash. crypto.hash (one shot)
// where this Node has it (>= 20.12), createHash otherwise.
const oneShot = typeof crypto.hash === 'function';
export const NODE_SHA256 = Object.freeze({
  hex: oneShot ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex'),
  // A bearer token's digest as a latin1 string (one character a byte), which
  // Grants.find compares as bytes: a Buffer costs node:crypto more than twice
  // the hash itself (0.73 against 0.28 µs a token, Node 20).
  bytes: oneShot ? (text) => crypto.hash('sha256', text, 'latin1') : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('latin1'),
  // HMAC-SHA-256, base64url: session ids bound to grants (./sessions.js) and
  // audit argument digests (./gate.js). The key as a KeyObject made once per
  // key (a few: the session and audit keys), not imported again per call.
  hmac: (key, text) => crypto.createHmac('sha256', hmacKey(key)).update(text, 'utf8').digest('base64url'),
});

// Secret KeyObjects by key text. The keys are the configuration's own
// secrets, already held as strings; at most HMAC_KEYS are kept (then the
// memo starts over), so keys that change with reloads do not pile up.
const HMAC_KEYS = 16;
const hmacKeys = new Map();
function hmacKey(key) {
  let object = hmacKeys.get(key);
  if (object === undefined) {
    object = crypto.createSecretKey(Buffer.from(key, 'utf8'));
    if (hmacKeys.size >= HMAC_KEYS) hmacKeys.clear();
    hmacKeys.set(key, object);
  }
  return object;
}

/**
 * The client of one request, for the handler (its `Client`, ./handler.js):
 * it left when the response closed before it was finished, or the request
 * broke, which is when @hono/node-server aborts the request's signal. Asking
 * the signal instead would make it: an AbortController per request, several
 * microseconds on Node 20 for a signal that almost never fires.
 */
export class NodeClient {
  #incoming;
  #outgoing;
  #left = false;
  // fn, target, fn, target, ... (no closure per listener)
  #listeners = null;

  constructor(incoming, outgoing) {
    this.#incoming = incoming;
    this.#outgoing = outgoing;
    // One listener function for every response (not a closure and a once
    // wrapper per request); it finds its client on the response.
    outgoing[CLIENT] = this;
    outgoing.on('close', NodeClient.#onResponseClose);
  }

  // `this` is the response.
  static #onResponseClose() {
    const client = this[CLIENT];
    if (client.#incoming.errored || !client.#outgoing.writableFinished) client.#leave();
  }

  get left() {
    return this.#left;
  }

  get reason() {
    return this.#left ? new DOMException('the client went away', 'AbortError') : undefined;
  }

  /** fn(target, reason) once the client leaves (at once if it has). */
  onLeave(fn, target) {
    if (this.#left) fn(target, this.reason);
    else (this.#listeners ??= []).push(fn, target);
  }

  #leave() {
    if (this.#left) return;
    this.#left = true;
    const listeners = this.#listeners ?? [];
    this.#listeners = null;
    for (let i = 0; i < listeners.length; i += 2) listeners[i](listeners[i + 1], this.reason);
  }
}

const CLIENT = Symbol('toolgate NodeClient');

// The origin of the OAuth resource (checked by then), or undefined.
function oauthOrigin(oauth) {
  const resource = oauth && Object.values(oauth.config.servers)[0]?.resource;
  return resource ? new URL(resource).origin : undefined;
}

// What the handler takes of a loaded configuration (it checks it again).
const handlerConfig = ({ servers, grants, grantPolicies }) => ({ servers, grants, grantPolicies });

function transportOf(choice = 'node') {
  if (typeof choice === 'function') return { fetch: choice, async close() {} };
  if (choice === 'fetch') return { fetch: (...args) => fetch(...args), async close() {} };
  if (choice === 'node') {
    const transport = createNodeTransport();
    return { fetch: transport, upstreamBody, upstreamHeaders, close: transport.close };
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
