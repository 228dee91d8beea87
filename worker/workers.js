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
import * as workersRuntime from 'cloudflare:workers';
import wasmModule from '../wasm/dist/toolgate_core.wasm';
import { loadToolgate, MemoryCounterStore } from '../wasm/index.js';
import { ConsoleAuditSink } from './audit.js';
import { ConfigError, loadProxyConfig } from './config.js';
import { sha256Bytes, toHex } from './grants.js';
import { createHandler } from './handler.js';
import { createHostCheck } from './host-check.js';
import { DurableObjectApprovalStore, DurableObjectCounterStore, ToolgateApprovals, ToolgateCounters } from './stores/durable-object.js';
import { KvCounterStore } from './stores/workers-kv.js';
import { json } from './responses.js';
import { analyticsEngineObserver } from './metrics-workers.js';
import { createOAuth } from './oauth.js';

export { ToolgateApprovals, ToolgateCounters };

const log = (level, message, fields) => console.error(JSON.stringify({ level, message, ...fields }));

// One handler per isolate, rebuilt when the bindings' text changes (a new
// deployment or secret). `handler` is the build's promise, so requests that
// arrive while it runs (the startup build below, or a rebuild) share it.
let cached = { key: null, handler: null };

// The engine, loaded and warmed while the isolate starts (module scope: in
// production Workers this runs during the TLS handshake, before the first
// request), so the first request does not pay for instantiating the core and
// for V8 compiling its functions on first use (bench/js/cold-start.bench.js).
// Nothing here does I/O. A load that failed is tried again by the request
// that needs it (and its error reported there, not at startup).
const loadEngine = () => loadToolgate({ wasmModule, warm: true });
let engine = loadEngine();
engine.catch(() => {});
async function currentEngine() {
  try {
    return await engine;
  } catch {
    engine = loadEngine();
    return engine;
  }
}

// The Durable Object stores give back a late charge (or put back a late
// approval) after the answer may have gone out; that work must run inside a
// live request's waitUntil. Stores live per isolate, so they use the newest
// request's: any live request keeps the isolate running.
let latestContext = null;
const waitUntil = (promise) => latestContext?.waitUntil(promise);

// Bindings, for ./config.js: no files (a grant's policy is inline), and no
// message quotes a binding's text (it may be a secret).
const bindingReader = (env) => ({
  read: (name) => env[name],
  label: (name) => `the ${name} binding`,
  secret: true,
});

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

// The bindings' text a handler is built from: a handler is reused while it
// stays the same.
const bindingsKey = (env) => [env.SERVERS, env.POLICY, env.UPSTREAM_URL, env.GRANTS, env.ADMIN_TOKEN, env.UPSTREAM_AUTHORIZATION, env.COUNTER_STORE, env.FAIL_OPEN, env.SESSION_KEY, env.AUDIT_KEY, env.PUBLIC_URL, env.AUDIT_ARGUMENTS, env.ALLOWED_HOSTS, env.ALLOWED_ORIGINS, env.OAUTH, env.OAUTH_ISSUERS, env.OAUTH_RESOURCE, env.PINS, env.TRUST_ON_FIRST_USE, env.MONITOR].join('\u0000');

// The handler for these bindings: the one built for the same text (at startup
// or by an earlier request), else a new build. A build that failed is not
// kept: a request that awaited it reports its error (fail closed), and the
// next request builds again and reports its own.
function handlerFor(env, at) {
  const key = bindingsKey(env);
  if (cached.key !== key) {
    const building = buildHandler(env, at);
    cached = { key, handler: building };
    building.catch(() => {
      if (cached.handler === building) cached = { key: null, handler: null };
    });
  }
  return cached.handler;
}

async function buildHandler(env, at) {
  const toolgate = await currentEngine();
  if (!env.SERVERS) {
    if (!env.UPSTREAM_URL || !env.POLICY) throw new ConfigError('set UPSTREAM_URL and POLICY (or SERVERS)');
    // A [vars] entry may be a TOML boolean or a string.
    if (env.MONITOR !== undefined && !['true', 'false', true, false].includes(env.MONITOR)) throw new ConfigError('MONITOR must be "true" or "false"');
  }
  const loaded = await loadProxyConfig({
    // SERVERS: {"<name>": {"upstream", "policy": {...}, "headers", "monitor", "oauth"}}; or one server.
    ...(env.SERVERS ? { config: 'SERVERS', configForm: 'servers' } : {
      servers: {
        default: {
          upstream: env.UPSTREAM_URL, policy: 'POLICY', monitor: env.MONITOR === 'true' || env.MONITOR === true,
          headers: env.UPSTREAM_AUTHORIZATION ? { authorization: env.UPSTREAM_AUTHORIZATION } : {},
        },
      },
    }),
    grants: env.GRANTS ? 'GRANTS' : undefined,
    // Tool pins (./pins.js): PINS is a pins file's JSON text (toolgate pin);
    // TRUST_ON_FIRST_USE = "true" pins what each isolate sees first.
    pins: env.PINS ? 'PINS' : undefined,
    trustOnFirstUse: env.TRUST_ON_FIRST_USE === 'true',
    oauth: () => oauthSettings(env),
    // Every isolate must derive the same key, from a secret agents never see:
    // never at random, never from configuration that may be shared (GRANTS).
    session: { sessionKey: env.SESSION_KEY, adminToken: env.ADMIN_TOKEN },
  }, { toolgate, reader: bindingReader(env) });
  const { sessionKey } = loaded;
  const counters = env.COUNTER_STORE === 'kv'
    ? new KvCounterStore({ namespace: env.COUNTERS_KV })
    : new DurableObjectCounterStore({ namespace: env.COUNTERS, waitUntil });
  const approvals = env.APPROVALS ? new DurableObjectApprovalStore({ namespace: env.APPROVALS, waitUntil }) : undefined;
  const adminTokenSha256 = env.ADMIN_TOKEN ? toHex(await sha256Bytes(env.ADMIN_TOKEN)) : undefined;
  const oauth = loaded.oauth ? createOAuth(loaded.oauth, { log }) : undefined;
  const hostCheck = configured(() => hostCheckOf(env, oauth && new URL(Object.values(oauth.config.servers)[0].resource).origin));
  const handler = configured(() => createHandler({
    servers: loaded.servers, grants: loaded.grants, grantPolicies: loaded.grantPolicies, counters, approvals, audit: new ConsoleAuditSink(), log, sessionKey,
    auditKey: env.AUDIT_KEY || undefined, publicUrl: env.PUBLIC_URL || undefined, hostCheck,
    adminTokenSha256, oauth,
    failOpen: env.FAIL_OPEN === 'true', auditArguments: env.AUDIT_ARGUMENTS === 'true',
    observer: env.METRICS ? analyticsEngineObserver(env.METRICS) : undefined,
  }));
  // Warming is only an optimisation: a policy that cannot be warmed fails (or
  // not) on its real calls, which report their own errors.
  if (at === 'startup') await warmPolicies(loaded.servers).catch(() => {});
  // Which build serves: one line per build (per isolate, and per change of
  // the bindings), never a binding's value.
  log('info', 'configuration loaded', { at, servers: Object.keys(loaded.servers).length });
  return handler;
}

// Decisions of each server's policy for the first tools it names (else one it
// does not), against a memory store that is dropped; the decisions are thrown
// away and nothing is audited. A few names, not all: the engine's code is
// warmed by one (loadToolgate's `warm` did the rest); a policy of 10 000 tools
// must not make startup slower.
const WARM_TOOLS = 4;
async function warmPolicies(servers) {
  for (const server of Object.values(servers)) {
    const { policy } = server;
    if (!policy) continue;
    const names = policy.names?.exact?.length ? policy.names.exact.slice(0, WARM_TOOLS) : ['toolgate-warm-up'];
    for (const tool of names) {
      policy.isHidden(tool);
      const authorization = await policy.authorize({ tool, arguments: {}, grant: { id: 'toolgate-warm-up' }, now: 0 }, { counters: new MemoryCounterStore(), now: 0 });
      await authorization.rollback();
    }
  }
}

// OAUTH (JSON) with OAUTH_ISSUERS and OAUTH_RESOURCE over it; undefined when
// no issuer is named. A SERVERS entry's own "oauth" is merged in by loadProxyConfig.
function oauthSettings(env) {
  if (!env.OAUTH && !env.OAUTH_ISSUERS) {
    if (env.OAUTH_RESOURCE) throw new ConfigError('OAUTH_RESOURCE needs OAUTH_ISSUERS (or OAUTH)');
    return undefined;
  }
  let config = {};
  if (env.OAUTH) {
    try {
      config = JSON.parse(env.OAUTH);
    } catch (error) {
      // Not error.message: V8 quotes the text around the fault.
      throw new ConfigError(`the OAUTH binding is not JSON (${error.name})`);
    }
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new ConfigError('the OAUTH binding must be a JSON object');
  if (env.OAUTH_ISSUERS) config.issuers = String(env.OAUTH_ISSUERS).split(/[\s,]+/).filter(Boolean);
  if (env.OAUTH_RESOURCE) config.resource = env.OAUTH_RESOURCE;
  if (config.resource === undefined && env.PUBLIC_URL) config.resource = `${String(env.PUBLIC_URL).replace(/\/+$/, '')}/mcp`;
  return config;
}

// The isolate's bindings are importable at module scope (workerd since March
// 2025: `import { env } from 'cloudflare:workers'`), so the handler is built
// while the isolate starts, off the first request: the configuration read and
// checked, every policy compiled (the larger part of a cold request, V8
// compiling the engine's functions on first use: bench/README.md), and one
// decision per server's policy made against a memory store, so the first real
// one finds that code compiled too. Nothing here does I/O or draws random
// numbers (workerd refuses both at startup). The first request awaits this
// build when its bindings are the same text (they are, in one deployment);
// a failed build is reported on that request, never here, and the isolate
// keeps serving 500s that say why (fail closed). A runtime without the import
// builds in the first request, as before.
if (workersRuntime.env) {
  handlerFor(workersRuntime.env, 'startup').catch(() => {});
}

export default {
  async fetch(request, env, ctx) {
    latestContext = ctx;
    let handler;
    try {
      handler = await handlerFor(env, 'request');
    } catch (error) {
      // A broken configuration serves nothing (fail closed) and says why.
      // Configuration errors are written never to quote a binding's value
      // (they may be secrets); anything else is told only to the logs.
      log('error', 'configuration error', { error: error.message });
      // Every problem on one line: ProxyConfigError lists them one a line.
      const told = error instanceof ConfigError ? error.message.replace(/\n\s*/g, ' ') : 'see the Worker\'s logs';
      return json(500, { error: `toolgate is misconfigured; nothing was forwarded: ${told}` });
    }
    // Workers has no loopback clients: without GRANTS every request is 401.
    return handler.fetch(request, { waitUntil: (promise) => ctx.waitUntil(promise) });
  },
};
