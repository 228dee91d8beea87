// toolgate serve: the MCP proxy on Node.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

import { loadToolgate } from '../../wasm/index.js';
import { ConfigError, expandEnvironment, loadNodeConfig, startProxy } from '../../worker/node.js';
import { sha256Bytes, toHex } from '../../worker/grants.js';
import { HostCheckConfigError } from '../../worker/host-check.js';
import { commandLine, optionParser } from './args.js';
import { STORE_OPTIONS, STORE_USAGE, openStores } from './stores.js';

export const USAGE = `Usage:
  toolgate serve --policy POLICY.json --upstream URL [options]
  toolgate serve --config toolgate.json [options]

Puts toolgate in front of an MCP server (Streamable HTTP). Clients connect to
http://HOST:PORT/mcp (or /mcp/<name> for each server of a --config file).

Options:
  --policy FILE            the policy for the upstream server
  --upstream URL           the MCP server's endpoint, e.g. http://127.0.0.1:3001/mcp
  --upstream-header "Name: value"
                           sent upstream with every request (repeatable); \${VAR}
                           is replaced by the environment variable VAR
  --config FILE            several servers: {"servers": {"<name>": {"upstream": URL,
                           "policy": FILE, "headers": {...}, "monitor": true|false}},
                           "grants": FILE}
  --monitor                monitor mode for every server: each call is decided and
                           audited ("enforced": false, the would-be decision, code
                           and rule) but forwarded even when the policy would refuse
                           it (a config server's "monitor": true does it for one)
  --grants FILE            {"grants": [{"id", "token_sha256", "attributes", "policy"}]};
                           without it, one "anonymous" grant for loopback clients only
  --port N                 default 8080
  --host ADDRESS           default 127.0.0.1 (0.0.0.0 to listen on every interface)
${STORE_USAGE}
  --audit stdout|file:PATH|redis
                           where audit events go (default stdout; redis: a stream
                           "toolgate:audit" in the --store Redis or Redis Cluster)
  --audit-arguments        put argument values in audit events (default: keys and hash)
  --admin-token-env NAME   environment variable holding the admin token for
                           /approvals (default TOOLGATE_ADMIN_TOKEN; if unset, a
                           token is generated and printed)
  --fail-open              admit calls when the counter store fails (default: deny)
  --max-body-bytes N       largest request body (default 4194304)
  --max-batch-size N       messages in one JSON-RPC batch (default 100)
  --max-pending-approvals N
                           calls of one grant waiting for a human at once (default 20)
  --upstream-timeout-ms N  how long to wait for the server's answer to begin (default 120000)
  --allowed-host NAME      a Host name clients may use (repeatable); without it only
                           localhost, 127.0.0.1 and [::1] (and --public-url's host):
                           other Hosts get 403 (DNS-rebinding protection)
  --allowed-origin ORIGIN  a browser origin that may call (repeatable), besides the
                           proxy's own and --public-url's, e.g. https://app.example.com
  --public-url URL         this proxy's address as people reach it: approval links
                           are built from it (without it they are relative, never
                           taken from the request's Host, which the agent chooses)
  --metrics                Prometheus metrics on /metrics, behind the admin token
  --metrics-port N         Prometheus metrics on their own listener instead, without
                           a token (GET /metrics only; host: --metrics-host, default
                           127.0.0.1)
  --otel                   toolgate's own span per call with OpenTelemetry, exported
                           by the SDK the process registers (NODE_OPTIONS="--import
                           ./tracing.mjs"); the client's traceparent goes upstream
                           either way
  --no-watch               do not reload files when they change
  --pins FILE              hold each server's tools to their pins (written by toolgate
                           pin; reloaded when it changes): a tool whose definition is
                           not its pin, or that has none, leaves tools/list and its
                           calls are denied (tool_changed). A server the file does not
                           name has no pins, so all its tools are blocked (with one
                           server and a file pinning one, that one is used)
  --trust-on-first-use     pin each tool (not pinned by --pins) as first seen, and hold to it

OAuth 2.1 (toolgate as the resource server of the MCP authorization spec):
  --oauth-issuer URL       an authorization server whose access tokens are grants
                           (repeatable); its keys come from RFC 8414 / OpenID
                           discovery. Static --grants tokens keep working beside it
  --resource URL           the canonical URI clients use for /mcp, the audience
                           tokens must carry (default: --public-url + /mcp);
                           server <name> of a --config is URL/<name>
  --oauth-jwks-url URL     the issuer's JWKS, when it has no discovery document
                           (one --oauth-issuer only)
  --oauth-grant-claim NAME the claim that names the grant (default sub; e.g.
                           azp or client_id for machine clients)
  --oauth-scope SCOPE      a scope every token must carry (repeatable; else 403
                           insufficient_scope)
  --oauth-admin CLAIM=VALUE
                           tokens whose claim holds VALUE may use /approvals
                           (repeatable values, one claim), beside the admin token
  The same under "oauth" in --config (its reference: site/guide/authorization.md).
  Keycloak:  --oauth-issuer https://kc.example.com/realms/REALM
  Auth0:     --oauth-issuer https://TENANT.auth0.com/   (API identifier = --resource)
  Entra ID:  --oauth-issuer https://login.microsoftonline.com/TENANT/v2.0
  Cloudflare Access: --oauth-issuer https://TEAM.cloudflareaccess.com

Environment:
  TOOLGATE_SESSION_KEY     the secret (16+ characters) that binds MCP session ids
                           to the grant that opened them; default: derived from
                           the admin token. Instances behind one load balancer
                           need the same key (or the same admin token).
  TOOLGATE_AUDIT_KEY       the secret of audit events' argument_hmac (HMAC-SHA-256
                           of the arguments' RFC 8785 JSON); default: derived from
                           the session key. Same key, same digest: events correlate
                           across instances, but values cannot be guessed from them.
`;

const OPTIONS = {
  policy: { type: 'string' },
  upstream: { type: 'string' },
  'upstream-header': { type: 'string', multiple: true },
  config: { type: 'string' },
  grants: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  ...STORE_OPTIONS,
  audit: { type: 'string' },
  'audit-arguments': { type: 'boolean' },
  'admin-token-env': { type: 'string' },
  'fail-open': { type: 'boolean' },
  'max-body-bytes': { type: 'string' },
  'max-batch-size': { type: 'string' },
  'max-pending-approvals': { type: 'string' },
  'upstream-timeout-ms': { type: 'string' },
  'public-url': { type: 'string' },
  'allowed-host': { type: 'string', multiple: true },
  'allowed-origin': { type: 'string', multiple: true },
  'no-watch': { type: 'boolean' },
  monitor: { type: 'boolean' },
  metrics: { type: 'boolean' },
  otel: { type: 'boolean' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  'oauth-issuer': { type: 'string', multiple: true },
  resource: { type: 'string' },
  'oauth-jwks-url': { type: 'string' },
  'oauth-grant-claim': { type: 'string' },
  'oauth-scope': { type: 'string', multiple: true },
  'oauth-admin': { type: 'string', multiple: true },
  pins: { type: 'string' },
  'trust-on-first-use': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

function positiveInteger(value, name) {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0) throw new ConfigError(`--${name} must be a whole number, not ${JSON.stringify(value)}`);
  return number;
}

function headerList(list = []) {
  const headers = {};
  for (const entry of list) {
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new ConfigError(`--upstream-header must look like "Name: value", not ${JSON.stringify(entry)}`);
    headers[entry.slice(0, colon).trim()] = expandEnvironment(entry.slice(colon + 1).trim());
  }
  return headers;
}

function checkUrl(value, what) {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.href;
  } catch {
    // reported below
  }
  throw new ConfigError(`${what} must be an http(s) URL, not ${JSON.stringify(value)}`);
}

/**
 * What toolgate serve loads, from its flags: the --config file (read, with
 * every file it names, by worker/config.js at start and at each reload) or
 * --policy and --upstream. Throws ConfigError for flags that cannot work.
 */
export function serveSources(values) {
  const common = {
    grants: values.grants, pins: values.pins, trustOnFirstUse: values['trust-on-first-use'] ?? false, monitor: values.monitor === true,
    // The flags over the file's "oauth" (read again at each reload, checked there).
    oauth: (fromFile, path) => oauthFrom(values, fromFile, path),
  };
  if (values.config) {
    if (values.policy || values.upstream) throw new ConfigError('use either --config or --policy/--upstream, not both');
    return { config: values.config, ...common };
  }
  if (!values.policy || !values.upstream) throw new ConfigError('serve needs --policy and --upstream (or --config)');
  return {
    servers: { default: { upstream: checkUrl(values.upstream, '--upstream'), policy: values.policy, headers: headerList(values['upstream-header']), monitor: values.monitor === true } },
    ...common,
  };
}

/**
 * Servers, grants and OAuth settings (as written, before the check) from the
 * command line or a --config file, loaded as toolgate serve loads them.
 * Throws ConfigError (ProxyConfigError: every problem of every file).
 */
export async function serversFrom(values) {
  const { servers, grants, oauthSettings } = await loadNodeConfig(await loadToolgate(), serveSources(values));
  return { servers, grants, oauth: oauthSettings };
}

/**
 * The OAuth configuration: a --config file's "oauth" with the command line's
 * flags over it; undefined when neither names an issuer. Checked in full by
 * worker/oauth.js when the proxy starts.
 */
export function oauthFrom(values, fromFile, path = '--config') {
  if (fromFile !== undefined && (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile))) {
    throw new ConfigError(`${path}: "oauth" must be an object`);
  }
  const oauth = { ...fromFile };
  if (typeof oauth.introspection === 'object') throw new ConfigError(`${path}: "introspection" belongs to an issuer: "issuers": [{"issuer": URL, "introspection": {...}}]`);
  if (Array.isArray(oauth.issuers)) {
    // Introspection credentials may come from the environment, as upstream headers do.
    oauth.issuers = oauth.issuers.map((issuer) => (issuer?.introspection ? {
      ...issuer, introspection: Object.fromEntries(Object.entries(issuer.introspection).map(([k, v]) => [k, typeof v === 'string' ? expandEnvironment(v) : v])),
    } : issuer));
  }
  // Issuers as typed: `iss` is compared exactly, and URL parsing would add a "/".
  if (values['oauth-issuer']) oauth.issuers = values['oauth-issuer'].map((issuer) => (checkUrl(issuer, '--oauth-issuer'), issuer));
  if (values['oauth-jwks-url']) {
    if (oauth.issuers?.length !== 1) throw new ConfigError('--oauth-jwks-url needs exactly one --oauth-issuer');
    const issuer = oauth.issuers[0];
    oauth.issuers = [{ ...(typeof issuer === 'string' ? { issuer } : issuer), jwks_uri: checkUrl(values['oauth-jwks-url'], '--oauth-jwks-url') }];
  }
  // As typed: it is the audience tokens carry and what the metadata says.
  if (values.resource) oauth.resource = (checkUrl(values.resource, '--resource'), values.resource);
  if (values['oauth-grant-claim']) oauth.grant_claim = values['oauth-grant-claim'];
  if (values['oauth-scope']) oauth.scopes = values['oauth-scope'];
  if (values['oauth-admin']) {
    const pairs = values['oauth-admin'].map((entry) => {
      const equals = entry.indexOf('=');
      if (equals <= 0 || equals === entry.length - 1) throw new ConfigError(`--oauth-admin must look like CLAIM=VALUE, not ${JSON.stringify(entry)}`);
      return [entry.slice(0, equals), entry.slice(equals + 1)];
    });
    if (new Set(pairs.map(([claim]) => claim)).size > 1) throw new ConfigError('--oauth-admin: name one claim (e.g. --oauth-admin groups=ops --oauth-admin groups=sre)');
    oauth.admin = { claim: pairs[0][0], values: pairs.map(([, value]) => value) };
  }
  if (oauth.issuers === undefined) {
    const stray = ['resource', 'oauth-jwks-url', 'oauth-grant-claim', 'oauth-scope', 'oauth-admin'].find((flag) => values[flag] !== undefined);
    if (stray) throw new ConfigError(`--${stray} needs --oauth-issuer`);
    if (fromFile !== undefined) throw new ConfigError(`${path}: "oauth" needs "issuers"`);
    return undefined;
  }
  if (oauth.resource === undefined && values['public-url']) oauth.resource = `${checkUrl(values['public-url'], '--public-url').replace(/\/+$/, '')}/mcp`;
  if (oauth.resource === undefined) throw new ConfigError('--oauth-issuer needs --resource URL (the URL clients use for /mcp) or --public-url');
  return oauth;
}

async function auditFrom(spec = 'stdout', stores) {
  if (spec === 'stdout') return { close: async () => {} };
  if (spec.startsWith('file:')) {
    const { FileAuditSink } = await import('../../worker/audit-file.js');
    const sink = new FileAuditSink({ path: resolve(spec.slice(5)) });
    return { audit: sink, close: () => sink.close() };
  }
  if (spec === 'redis') {
    if (!stores.redis) throw new ConfigError('--audit redis needs --store redis://...');
    const { closeRedisClient, connectRedisClient } = await import('../../worker/stores/redis.js');
    const client = await connectRedisClient({
      ...stores.redis,
      onError: () => {}, // a failed write is reported by the sink
    }).catch((error) => {
      throw new ConfigError(`--audit redis: ${error?.message ?? error}`);
    });
    const { RedisStreamAuditSink } = await import('../../worker/audit-redis.js');
    const sink = new RedisStreamAuditSink({ client });
    return { audit: sink, close: () => closeRedisClient(client, 1000) };
  }
  throw new ConfigError(`--audit must be stdout, file:PATH or redis, not ${JSON.stringify(spec)}`);
}

function metricsOption(values) {
  const port = positiveInteger(values['metrics-port'], 'metrics-port');
  if (port !== undefined) return { port, host: values['metrics-host'] ?? '127.0.0.1' };
  if (values['metrics-host'] !== undefined) throw new ConfigError('--metrics-host needs --metrics-port');
  return values.metrics === true;
}

export async function run(args, { fail }) {
  const parsed = commandLine(args, { command: 'serve', usage: USAGE, parse: optionParser(OPTIONS), fail });
  if (!parsed) return undefined;
  const { values } = parsed;
  let proxy;
  let stores;
  try {
    const sources = serveSources(values);
    stores = await openStores(values);
    const audit = await auditFrom(values.audit, stores);
    const tokenVariable = values['admin-token-env'] ?? 'TOOLGATE_ADMIN_TOKEN';
    let adminToken = process.env[tokenVariable];
    const generated = !adminToken;
    if (generated) adminToken = randomBytes(24).toString('base64url');
    // Session ids are bound with this key (worker/sessions.js): the one given,
    // or one derived from the admin token, so instances that share the admin
    // token accept each other's session ids (derived as on Workers).
    const session = { sessionKey: process.env.TOOLGATE_SESSION_KEY, adminToken, names: { sessionKey: 'TOOLGATE_SESSION_KEY', adminToken: tokenVariable } };
    const host = values.host ?? '127.0.0.1';
    proxy = await startProxy({
      ...sources, host, port: positiveInteger(values.port, 'port') ?? 8080,
      counters: stores.counters, approvals: stores.approvals, audit: audit.audit,
      adminTokenSha256: toHex(await sha256Bytes(adminToken)),
      failOpen: values['fail-open'] ?? false, auditArguments: values['audit-arguments'] ?? false,
      maxBodyBytes: positiveInteger(values['max-body-bytes'], 'max-body-bytes'),
      upstreamTimeoutMs: positiveInteger(values['upstream-timeout-ms'], 'upstream-timeout-ms'),
      publicUrl: values['public-url'] === undefined ? undefined : checkUrl(values['public-url'], '--public-url'),
      watch: !values['no-watch'], session, auditKey: process.env.TOOLGATE_AUDIT_KEY || undefined,
      maxBatchSize: positiveInteger(values['max-batch-size'], 'max-batch-size'),
      allowedHosts: values['allowed-host'], allowedOrigins: values['allowed-origin'],
      maxPendingApprovalsPerGrant: positiveInteger(values['max-pending-approvals'], 'max-pending-approvals'),
      metrics: metricsOption(values), tracing: values.otel === true,
    });
    const { servers, grants, oauth } = proxy.configuration;
    const lines = [`toolgate ${process.env.npm_package_version ?? ''}`.trim() + ` is listening on ${proxy.url}`];
    for (const [name, server] of Object.entries(servers)) {
      lines.push(`  ${proxy.url}${name === 'default' ? '/mcp' : `/mcp/${name}`} -> ${server.upstream} (policy ${server.policyFile})${server.monitor ? ' MONITOR MODE: decisions are audited, not enforced' : ''}`);
    }
    lines.push(`  approvals: ${proxy.url}/approvals` + (generated ? ` (admin token: ${adminToken}; set ${tokenVariable} to choose one)` : ` (admin token from ${tokenVariable})`));
    lines.push(`  sessions: ids bound to the grant that opened them (key ${process.env.TOOLGATE_SESSION_KEY ? 'from TOOLGATE_SESSION_KEY' : 'derived from the admin token'})`);
    if (oauth) {
      lines.push(`  oauth: access tokens of ${oauth.issuers.map((i) => i.issuer).join(', ')} for ${[...new Set(Object.values(oauth.servers).map((s) => s.resource))].join(', ')}`);
    } else if (!grants) {
      lines.push('  warning: no --grants file: every loopback client is the grant "anonymous"; other clients get 401');
    }
    if (proxy.metricsUrl) lines.push(`  metrics: ${proxy.metricsUrl}`);
    else if (values.metrics) lines.push(`  metrics: ${proxy.url}/metrics (admin token)`);
    if (values['fail-open']) lines.push('  warning: --fail-open: calls are admitted when the counter store fails');
    process.stderr.write(`${lines.join('\n')}\n`);
    const stop = async () => {
      await proxy.close();
      await audit.close();
      await stores.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return undefined;
  } catch (error) {
    if (proxy) await proxy.close();
    await stores?.close();
    if (error instanceof ConfigError || error instanceof HostCheckConfigError || error?.code === 'EADDRINUSE' || error?.code === 'EACCES') {
      return fail(error.code === 'EADDRINUSE' ? `port ${values.port ?? 8080} is in use (--port)` : error.message, 1);
    }
    throw error;
  }
}
