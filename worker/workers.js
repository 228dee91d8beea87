// The proxy on Cloudflare Workers: the handler of handler.js, with counters and
// approvals in Durable Objects, audit events in Workers Logs (console), and
// its configuration in bindings (see wrangler.toml):
//
//   UPSTREAM_URL            the MCP server (one server, on /mcp)
//   POLICY                  its policy, as JSON text
//   SERVERS                 instead of the two above: JSON {"<name>": {"upstream": URL, "policy": {...},
//                           "headers": {...}}}, each on /mcp/<name>
//   GRANTS                  JSON {"grants": [...]} (token hashes only, so a plain var is fine); a
//                           grant's own policy is inline: "policy": {...} (one server) or
//                           "policies": {"<server>": {...}} (there are no files here: a path fails to load)
//   UPSTREAM_AUTHORIZATION  secret: sent upstream as Authorization (single-server form)
//   ADMIN_TOKEN             secret: the approvals admin token
//   SESSION_KEY             secret (16+ characters): binds MCP session ids to the grant that opened
//                           them (./sessions.js); default: derived from ADMIN_TOKEN. One of the two is
//                           required: a key anyone could derive would let a grant forge another's ids
//   AUDIT_KEY               secret: keys the audit events' argument_hmac; default: derived from the
//                           session key
//   PUBLIC_URL              this Worker's address as people reach it, for approval links (default:
//                           relative links; never the request's Host, which the agent chooses)
//   ALLOWED_HOSTS           Host names the Worker answers to (comma- or space-separated), besides
//                           PUBLIC_URL's; without either only loopback names (wrangler dev): a
//                           deployed Worker needs one of them, or every request gets 403
//   ALLOWED_ORIGINS         browser origins that may call besides the Worker's own and PUBLIC_URL's;
//                           any other Origin gets 403 (./host-check.js)
//   COUNTERS, APPROVALS     Durable Object namespaces (ToolgateCounters, ToolgateApprovals)
//   COUNTERS_KV             optional KV namespace: with COUNTER_STORE = "kv", approximate counters in KV
//   FAIL_OPEN               "true" admits calls when the counter store fails (default: deny)
//   AUDIT_ARGUMENTS         "true" puts argument values in audit events
//   MONITOR                 "true": monitor mode for the POLICY server (a SERVERS entry takes
//                           "monitor": true): calls are decided and audited ("enforced": false),
//                           not enforced, and forwarded
//   METRICS                 optional Workers Analytics Engine dataset: one data point per decision
//                           and per upstream answer (./metrics-workers.js)
//   OAUTH                   JSON: toolgate as an OAuth resource server, as "oauth" in toolgate serve's
//                           --config ({"issuers": [...], "resource": URL, "scopes": [...], ...}; ./oauth.js);
//                           a server of SERVERS may have its own "oauth": {"resource", "scopes"}
//   OAUTH_ISSUERS           instead of OAUTH, or over it: issuer URLs (comma- or space-separated)
//   OAUTH_RESOURCE          the canonical URI of /mcp (default: PUBLIC_URL + /mcp)
//   PINS                    a pins file's JSON text (toolgate pin): tools whose definition is not
//                           their pin leave tools/list and their calls are denied (tool_changed)
//   TRUST_ON_FIRST_USE      "true" pins each tool PINS does not as first seen (per isolate)
import wasmModule from '../wasm/dist/toolgate_core.wasm';
import { loadToolgate } from '../wasm/index.js';
import { ConsoleAuditSink } from './audit.js';
import { Grants, GrantsError, sha256Bytes, toHex } from './grants.js';
import { createHandler } from './handler.js';
import { createHostCheck } from './host-check.js';
import { DurableObjectApprovalStore, DurableObjectCounterStore, ToolgateApprovals, ToolgateCounters } from './stores/durable-object.js';
import { KvCounterStore } from './stores/workers-kv.js';
import { json } from './responses.js';
import { analyticsEngineObserver } from './metrics-workers.js';
import { checkOAuthConfig, createOAuth } from './oauth.js';
import { loadPins, pinsForServer } from './pins.js';

export { ToolgateApprovals, ToolgateCounters };

/** A configuration that cannot mean what it says; its message quotes no binding's value. */
class ConfigError extends Error {
  name = 'ConfigError';
}

const log = (level, message, fields) => console.error(JSON.stringify({ level, message, ...fields }));

// One handler per isolate, rebuilt when the bindings' text changes (a new
// deployment or secret).
let cached = { key: null, handler: null };

// The Durable Object stores give back a late charge (or put back a late
// approval) after the answer may have gone out; that work must run inside a
// live request's waitUntil. Stores live per isolate, so they use the newest
// request's: any live request keeps the isolate running.
let latestContext = null;
const waitUntil = (promise) => latestContext?.waitUntil(promise);

function parseBinding(env, name) {
  try {
    return JSON.parse(env[name]);
  } catch (error) {
    // Not error.message: V8 quotes the text around the fault, which may be a secret header.
    throw new ConfigError(`the ${name} binding is not JSON (${error.name})`);
  }
}

function compile(toolgate, policy, where) {
  const text = typeof policy === 'string' ? policy : JSON.stringify(policy);
  const { ok, diagnostics } = toolgate.check(text);
  if (!ok) {
    throw new ConfigError(`${where} is not a valid policy: ${diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.column} ${d.message} (${d.pointer})`).join('; ')}`);
  }
  return toolgate.compile(text, { source: where });
}

// The handler checks the configuration it is given (servers, headers, grant
// policies) with messages that quote no values.
function configured(make) {
  try {
    return make();
  } catch (error) {
    throw new ConfigError(error.message);
  }
}

// Host and Origin (./host-check.js), as on Node: loopback names (wrangler dev)
// unless ALLOWED_HOSTS or PUBLIC_URL name the Worker's own; a deployed Worker
// must set one of them, or it answers 403 to every request (fail closed).
// Without PUBLIC_URL, the OAuth resource's origin (configured, as PUBLIC_URL is) is the Worker's own.
function hostCheckOf(env, oauthOrigin) {
  return createHostCheck({
    allowedHosts: env.ALLOWED_HOSTS || undefined, allowedOrigins: env.ALLOWED_ORIGINS || undefined, publicUrl: env.PUBLIC_URL || oauthOrigin || undefined,
  });
}

async function handlerFor(env) {
  const key = [env.SERVERS, env.POLICY, env.UPSTREAM_URL, env.GRANTS, env.ADMIN_TOKEN, env.UPSTREAM_AUTHORIZATION, env.COUNTER_STORE, env.FAIL_OPEN, env.SESSION_KEY, env.AUDIT_KEY, env.PUBLIC_URL, env.AUDIT_ARGUMENTS, env.ALLOWED_HOSTS, env.ALLOWED_ORIGINS, env.OAUTH, env.OAUTH_ISSUERS, env.OAUTH_RESOURCE, env.PINS, env.TRUST_ON_FIRST_USE, env.MONITOR].join('\u0000');
  if (cached.key === key) return cached.handler;
  const toolgate = await loadToolgate({ wasmModule });
  const servers = {};
  if (env.SERVERS) {
    for (const [name, server] of Object.entries(parseBinding(env, 'SERVERS'))) {
      if (server.monitor !== undefined && typeof server.monitor !== 'boolean') throw new ConfigError(`SERVERS.${name}.monitor must be true or false`);
      servers[name] = { upstream: server.upstream, headers: server.headers ?? {}, policy: compile(toolgate, server.policy, `SERVERS.${name}.policy`), monitor: server.monitor === true };
    }
  } else {
    if (!env.UPSTREAM_URL || !env.POLICY) throw new ConfigError('set UPSTREAM_URL and POLICY (or SERVERS)');
    const headers = env.UPSTREAM_AUTHORIZATION ? { authorization: env.UPSTREAM_AUTHORIZATION } : {};
    // A [vars] entry may be a TOML boolean or a string.
    if (env.MONITOR !== undefined && !['true', 'false', true, false].includes(env.MONITOR)) throw new ConfigError('MONITOR must be "true" or "false"');
    servers.default = { upstream: env.UPSTREAM_URL, headers, policy: compile(toolgate, env.POLICY, 'POLICY'), monitor: env.MONITOR === 'true' || env.MONITOR === true };
  }
  // Tool pins (./pins.js): PINS is a pins file's JSON text (toolgate pin);
  // TRUST_ON_FIRST_USE = "true" pins what each isolate sees first.
  const trustOnFirstUse = env.TRUST_ON_FIRST_USE === 'true';
  if (env.PINS || trustOnFirstUse) {
    let loaded;
    if (env.PINS) {
      try {
        loaded = await loadPins(env.PINS, { source: 'PINS', trustOnFirstUse });
      } catch (error) {
        throw new ConfigError(error.message);
      }
    }
    const singleServer = Object.keys(servers).length === 1;
    for (const [name, server] of Object.entries(servers)) server.pins = pinsForServer(loaded, name, { singleServer, trustOnFirstUse });
  }
  let grants = null;
  const grantPolicies = new Map();
  if (env.GRANTS) {
    grants = new Grants(parseBinding(env, 'GRANTS'), 'GRANTS');
    for (const [id, perServer] of grants.policySources(Object.keys(servers))) {
      const policies = new Map();
      for (const [server, source] of perServer) {
        // There are no files on Workers: a path would load and be ignored.
        if (typeof source === 'string') {
          throw new ConfigError(`GRANTS: grant "${id}" names the policy file ${JSON.stringify(source)}; on Workers a grant's policy is given inline, as JSON`);
        }
        policies.set(server, compile(toolgate, source, `the policy of grant "${id}" for server "${server}"`));
      }
      grantPolicies.set(id, policies);
    }
  }
  const counters = env.COUNTER_STORE === 'kv'
    ? new KvCounterStore({ namespace: env.COUNTERS_KV })
    : new DurableObjectCounterStore({ namespace: env.COUNTERS, waitUntil });
  const approvals = env.APPROVALS ? new DurableObjectApprovalStore({ namespace: env.APPROVALS, waitUntil }) : undefined;
  // Every isolate must derive the same key, from a secret agents never see:
  // never at random, never from configuration that may be shared (GRANTS).
  if (env.SESSION_KEY !== undefined && String(env.SESSION_KEY).length < 16) throw new ConfigError('SESSION_KEY must be at least 16 characters');
  if (!env.SESSION_KEY && !env.ADMIN_TOKEN) {
    throw new ConfigError('set the SESSION_KEY secret (or ADMIN_TOKEN): MCP session ids are bound to grants with a secret key');
  }
  const sessionKey = env.SESSION_KEY || toHex(await sha256Bytes(`toolgate session key\nadmin\n${env.ADMIN_TOKEN}`));
  const adminTokenSha256 = env.ADMIN_TOKEN ? toHex(await sha256Bytes(env.ADMIN_TOKEN)) : undefined;
  const oauth = oauthOf(env, env.SERVERS ? parseBinding(env, 'SERVERS') : { default: {} });
  const hostCheck = configured(() => hostCheckOf(env, oauth && new URL(Object.values(oauth.config.servers)[0].resource).origin));
  const handler = configured(() => createHandler({
    servers, grants, grantPolicies, counters, approvals, audit: new ConsoleAuditSink(), log, sessionKey,
    auditKey: env.AUDIT_KEY || undefined, publicUrl: env.PUBLIC_URL || undefined, hostCheck,
    adminTokenSha256, oauth,
    failOpen: env.FAIL_OPEN === 'true', auditArguments: env.AUDIT_ARGUMENTS === 'true',
    observer: env.METRICS ? analyticsEngineObserver(env.METRICS) : undefined,
  }));
  cached = { key, handler };
  return handler;
}

// OAUTH (JSON) with OAUTH_ISSUERS and OAUTH_RESOURCE over it; undefined when no issuer is named.
function oauthOf(env, serverBindings) {
  if (!env.OAUTH && !env.OAUTH_ISSUERS) {
    if (env.OAUTH_RESOURCE) throw new ConfigError('OAUTH_RESOURCE needs OAUTH_ISSUERS (or OAUTH)');
    return undefined;
  }
  const config = env.OAUTH ? parseBinding(env, 'OAUTH') : {};
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new ConfigError('the OAUTH binding must be a JSON object');
  if (env.OAUTH_ISSUERS) config.issuers = String(env.OAUTH_ISSUERS).split(/[\s,]+/).filter(Boolean);
  if (env.OAUTH_RESOURCE) config.resource = env.OAUTH_RESOURCE;
  if (config.resource === undefined && env.PUBLIC_URL) config.resource = `${String(env.PUBLIC_URL).replace(/\/+$/, '')}/mcp`;
  const perServer = Object.fromEntries(Object.entries(serverBindings).filter(([, server]) => server?.oauth !== undefined).map(([name, server]) => [name, server.oauth]));
  if (Object.keys(perServer).length > 0) config.servers = { ...config.servers, ...perServer };
  return configured(() => createOAuth(checkOAuthConfig(config, Object.keys(serverBindings)), { log }));
}

export default {
  async fetch(request, env, ctx) {
    latestContext = ctx;
    let handler;
    try {
      handler = await handlerFor(env);
    } catch (error) {
      // A broken configuration serves nothing (fail closed) and says why.
      // Configuration errors are written never to quote a binding's value
      // (they may be secrets); anything else is told only to the logs.
      log('error', 'configuration error', { error: error.message });
      const told = error instanceof ConfigError || error instanceof GrantsError ? error.message : 'see the Worker\'s logs';
      return json(500, { error: `toolgate is misconfigured; nothing was forwarded: ${told}` });
    }
    // Workers has no loopback clients: without GRANTS every request is 401.
    return handler.fetch(request, { waitUntil: (promise) => ctx.waitUntil(promise) });
  },
};
