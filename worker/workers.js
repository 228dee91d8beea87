// The proxy on Cloudflare Workers: the handler of handler.js, with counters and
// approvals in Durable Objects, audit events in Workers Logs (console), and
// its configuration in bindings (see wrangler.toml):
//
//   UPSTREAM_URL            the MCP server (one server, on /mcp)
//   POLICY                  its policy, as JSON text
//   SERVERS                 instead of the two above: JSON {"<name>": {"upstream": URL, "policy": {...},
//                           "headers": {...}}}, each on /mcp/<name>
//   GRANTS                  JSON {"grants": [...]} (token hashes only, so a plain var is fine);
//                           grants may name a policy of SERVERS-style key "policy" inline as an object
//   UPSTREAM_AUTHORIZATION  secret: sent upstream as Authorization (single-server form)
//   ADMIN_TOKEN             secret: the approvals admin token
//   SESSION_KEY             secret (16+ characters): binds MCP session ids to the grant that opened
//                           them (./sessions.js); default: derived from ADMIN_TOKEN, else from GRANTS
//                           (then a change of GRANTS ends every session)
//   COUNTERS, APPROVALS     Durable Object namespaces (ToolgateCounters, ToolgateApprovals)
//   COUNTERS_KV             optional KV namespace: with COUNTER_STORE = "kv", approximate counters in KV
//   FAIL_OPEN               "true" admits calls when the counter store fails (default: deny)
//   AUDIT_ARGUMENTS         "true" puts argument values in audit events
import wasmModule from '../wasm/dist/toolgate_core.wasm';
import { loadToolgate } from '../wasm/index.js';
import { ConsoleAuditSink } from './audit.js';
import { Grants, sha256Bytes, toHex } from './grants.js';
import { createHandler } from './handler.js';
import { DurableObjectApprovalStore, DurableObjectCounterStore, ToolgateApprovals, ToolgateCounters } from './stores/durable-object.js';
import { KvCounterStore } from './stores/workers-kv.js';
import { json } from './responses.js';

export { ToolgateApprovals, ToolgateCounters };

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
    throw new Error(`the ${name} binding is not JSON: ${error.message}`);
  }
}

function compile(toolgate, policy, where) {
  const text = typeof policy === 'string' ? policy : JSON.stringify(policy);
  const { ok, diagnostics } = toolgate.check(text);
  if (!ok) {
    throw new Error(`${where} is not a valid policy: ${diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.column} ${d.message} (${d.pointer})`).join('; ')}`);
  }
  return toolgate.compile(text, { source: where });
}

async function handlerFor(env) {
  const key = [env.SERVERS, env.POLICY, env.UPSTREAM_URL, env.GRANTS, env.ADMIN_TOKEN, env.UPSTREAM_AUTHORIZATION, env.COUNTER_STORE, env.FAIL_OPEN, env.SESSION_KEY].join('\u0000');
  if (cached.key === key) return cached.handler;
  const toolgate = await loadToolgate({ wasmModule });
  const servers = {};
  if (env.SERVERS) {
    for (const [name, server] of Object.entries(parseBinding(env, 'SERVERS'))) {
      servers[name] = { upstream: server.upstream, headers: server.headers ?? {}, policy: compile(toolgate, server.policy, `SERVERS.${name}.policy`) };
    }
  } else {
    if (!env.UPSTREAM_URL || !env.POLICY) throw new Error('set UPSTREAM_URL and POLICY (or SERVERS)');
    const headers = env.UPSTREAM_AUTHORIZATION ? { authorization: env.UPSTREAM_AUTHORIZATION } : {};
    servers.default = { upstream: env.UPSTREAM_URL, headers, policy: compile(toolgate, env.POLICY, 'POLICY') };
  }
  let grants = null;
  const grantPolicies = new Map();
  if (env.GRANTS) {
    // Grants' own policies are inline objects here (there are no files).
    const document = parseBinding(env, 'GRANTS');
    const inline = new Map();
    for (const grant of document.grants ?? []) {
      if (grant && typeof grant.policy === 'object' && grant.policy !== null) {
        inline.set(grant.id, grant.policy);
        grant.policy = `GRANTS(${grant.id})`;
      }
    }
    grants = new Grants(document, 'GRANTS');
    for (const [id, policy] of inline) grantPolicies.set(id, compile(toolgate, policy, `the policy of grant "${id}"`));
  }
  const counters = env.COUNTER_STORE === 'kv'
    ? new KvCounterStore({ namespace: env.COUNTERS_KV })
    : new DurableObjectCounterStore({ namespace: env.COUNTERS, waitUntil });
  const approvals = env.APPROVALS ? new DurableObjectApprovalStore({ namespace: env.APPROVALS, waitUntil }) : undefined;
  // Every isolate must derive the same key: from secrets or configuration
  // agents never see, never at random.
  const sessionKey = env.SESSION_KEY
    || toHex(await sha256Bytes(env.ADMIN_TOKEN ? `toolgate session key\nadmin\n${env.ADMIN_TOKEN}` : `toolgate session key\ngrants\n${env.GRANTS ?? ''}`));
  const handler = createHandler({
    servers, grants, grantPolicies, counters, approvals, audit: new ConsoleAuditSink(), log, sessionKey,
    adminTokenSha256: env.ADMIN_TOKEN ? toHex(await sha256Bytes(env.ADMIN_TOKEN)) : undefined,
    failOpen: env.FAIL_OPEN === 'true', auditArguments: env.AUDIT_ARGUMENTS === 'true',
  });
  cached = { key, handler };
  return handler;
}

export default {
  async fetch(request, env, ctx) {
    latestContext = ctx;
    let handler;
    try {
      handler = await handlerFor(env);
    } catch (error) {
      // A broken configuration serves nothing (fail closed) and says why.
      log('error', 'configuration error', { error: error.message });
      return json(500, { error: `toolgate is misconfigured: ${error.message}` });
    }
    // Workers has no loopback clients: without GRANTS every request is 401.
    return handler.fetch(request, { waitUntil: (promise) => ctx.waitUntil(promise) });
  },
};
