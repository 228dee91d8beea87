// The gate: what the proxy does to MCP messages, whatever carries them (HTTP
// in handler.js, newline-delimited stdio in stdio.js).
//
// Client to server: every `tools/call` request is decided by the policy before
// it may go on; a denied call is answered here and never forwarded. Anything
// that could smuggle a call past the decision (a tools/call notification, a
// look-alike method name, a reused request id) is refused. Everything else
// passes unchanged.
// Server to client: hidden tools leave every tools/list result; the answer to
// a forwarded call is reported to its Exchange (./exchange.js), which settles
// the reservation and writes the audit event.
import { canonicalJson, knownArgumentHmac, knownCanonicalBytes, sha256Hex } from './audit.js';
import { Exchange } from './exchange.js';
import { findJsonProblem } from './json-check.js';
import { PinMonitor, TOOL_CHANGED } from './pins.js';
import { webCryptoHmac } from './sessions.js';
import { callTrace } from './trace-context.js';

export const JsonRpcError = Object.freeze({
  PARSE: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  // Not JSON-RPC's own: the code MCP servers (the TypeScript SDK's) answer an unknown session with.
  SESSION_NOT_FOUND: -32001,
});

/** Namespaced key under which denials also carry the decision in `_meta`. */
export const DECISION_META_KEY = 'dev.toolgate/decision';

export function errorMessage(id, code, message, data) {
  const error = { code, message };
  if (data !== undefined) error.data = data;
  return { jsonrpc: '2.0', id: id ?? null, error };
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const isId = (id) => typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
// Ids compared as JSON: 1 and "1" are different requests.
const idKey = (id) => JSON.stringify(id);

/** A JSON-RPC 2.0 message's kind: 'request', 'notification', 'response' or 'invalid'. */
export function kindOf(message) {
  if (!isObject(message) || message.jsonrpc !== '2.0') return 'invalid';
  if ('method' in message) {
    if (typeof message.method !== 'string') return 'invalid';
    if ('params' in message && !isObject(message.params) && !Array.isArray(message.params)) return 'invalid';
    if (!('id' in message)) return 'notification';
    return isId(message.id) ? 'request' : 'invalid';
  }
  if ('id' in message && ('result' in message) !== ('error' in message)) return 'response';
  return 'invalid';
}

/**
 * Whether a server-to-client message answers a request: an id, no method,
 * a result or an error (not both). Read leniently (no `jsonrpc` check) as
 * clients read answers; a request from the server has ids of its own and
 * answers nothing.
 */
export const isResponse = (message) => isObject(message) && 'id' in message && !('method' in message)
  && ('result' in message) !== ('error' in message);

/**
 * The reading both transports do before the gate: a body (HTTP) or line
 * (stdio) of JSON text as JSON-RPC messages, or the error that refuses it
 * whole (nothing is forwarded): not JSON, an empty batch, a batch over
 * `maxBatchSize`, duplicate object keys or nesting over 256 levels (which
 * JSON.parse lets through, and a server could read otherwise than toolgate).
 * @returns {{ refused: object } | { batch: boolean, messages: unknown[] }}
 */
export function readMessages(text, { maxBatchSize = Infinity } = {}) {
  let body;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return { refused: errorMessage(null, JsonRpcError.PARSE, `Parse error: not valid JSON (${error.message}).`) };
  }
  const batch = Array.isArray(body);
  if (batch && body.length === 0) return { refused: errorMessage(null, JsonRpcError.INVALID_REQUEST, 'Invalid Request: an empty batch.') };
  if (batch && body.length > maxBatchSize) {
    return { refused: errorMessage(null, JsonRpcError.INVALID_REQUEST, `Invalid Request: a batch of ${body.length} messages; at most ${maxBatchSize} are taken in one request. Nothing was forwarded.`) };
  }
  const problem = findJsonProblem(text);
  if (problem) {
    const what = problem.problem === 'duplicate_key'
      ? `the key ${JSON.stringify(problem.key)} appears twice at ${problem.pointer}` : `it nests deeper than 256 levels at ${problem.pointer}`;
    return { refused: errorMessage(null, JsonRpcError.INVALID_REQUEST, `Invalid Request: ${what}; nothing was forwarded.`) };
  }
  return { batch, messages: batch ? body : [body] };
}

// Anything a lenient server might take for tools/call: once percent-decoded,
// Unicode-normalised and lower-cased, only the letters "toolscall" are left
// ("Tools/Call", "tools/call\u0000", "tools%2Fcall", "tools//call",
// "tools/call/", full-width forms...). tools/call itself is the one method
// spelled exactly so.
export function looksLikeToolsCall(method) {
  if (method === 'tools/call') return false;
  let decoded = method;
  try {
    decoded = decodeURIComponent(method);
  } catch {
    // not percent-encoded: read as it is
  }
  return decoded.normalize('NFKC').toLowerCase().replace(/[^a-z]/g, '') === 'toolscall';
}

// A name as a lenient server might read it: Unicode compatibility forms
// folded, case ignored, invisible characters (format, control, spaces) dropped.
export const foldName = (name) => name.normalize('NFKC').toLowerCase().replace(/[\p{Cc}\p{Cf}\p{Z}\s]/gu, '');

// A glob of the policy language (`*` matches any run of characters, every
// other character itself) as a RegExp.
const globRegExp = (pattern) => new RegExp(`^${pattern.split('*').map((part) => part.replace(/[\\^$.|?+()[\]{}]/g, '\\$&')).join('[\\s\\S]*')}$`, 'u');

// Every name a policy mentions (its tools keys and hide entries, exact and
// globs, as the compiled plan lists them in policy.names), with their folded
// forms; computed once per compiled policy.
const policyNames = new WeakMap();
function namesOf(policy) {
  let names = policyNames.get(policy);
  if (!names) {
    const { exact = [], globs = [] } = policy.names ?? {};
    names = {
      exact: new Set(exact),
      folded: new Map(exact.map((name) => [foldName(name), name])),
      globs: globs.map((pattern) => ({ pattern, exact: globRegExp(pattern), folded: globRegExp(foldName(pattern)) })),
    };
    policyNames.set(policy, names);
  }
  return names;
}
const PLAIN_TOOL_NAME = /^[A-Za-z0-9_.\-/]*$/;

// Whether the policy names `tool` exactly (a tools key or hide entry): for
// metrics, which label only such names, and names of calls the policy let
// through, by name (./metrics.js).
const isNamed = (policy, tool) => typeof tool === 'string' && policy?.names !== undefined && namesOf(policy).exact.has(tool);

/**
 * Why a tool name is refused as a look-alike, or null. One rule for every
 * name the policy mentions (tools keys, hide entries, globs of either): a
 * name the policy does not mention exactly, which a lenient server could take
 * for one it does (same letters once case, Unicode form and invisible
 * characters are ignored), would be decided under one entry and run as
 * another: "GET-ENV" while "get-env" is hidden, "DELETE_REPO" while
 * "delete_*" is denied. Names outside plain ASCII that the policy does not
 * list exactly are refused too (look-alike letters from other scripts).
 * MCP tool names are [A-Za-z0-9_.-].
 */
export function lookAlikeProblem(name, policy) {
  const names = namesOf(policy);
  if (names.exact.has(name)) return null;
  const folded = foldName(name);
  const twin = names.folded.get(folded);
  if (twin !== undefined) {
    return `Tool name ${JSON.stringify(name)} differs from the policy's ${JSON.stringify(twin)} only by case, Unicode form or invisible characters; call ${JSON.stringify(twin)} exactly.`;
  }
  for (const glob of names.globs) {
    if (!glob.exact.test(name) && glob.folded.test(folded)) {
      return `Tool name ${JSON.stringify(name)} matches the policy's ${JSON.stringify(glob.pattern)} only when case, Unicode form or invisible characters are ignored; such names are refused because a server may take them for a tool the policy names.`;
    }
  }
  if (!PLAIN_TOOL_NAME.test(name)) {
    return `Tool name ${JSON.stringify(name)} has characters outside A-Z a-z 0-9 _ . - / and is not listed in the policy exactly; such names are refused because they can look like other tools.`;
  }
  return null;
}

/**
 * The agent's answer for a call that does not go on: a normal tool result with
 * isError, the decision in text (for the model), in structuredContent (for
 * programs) and in _meta. structuredContent is left out for tools that declare
 * an outputSchema, which clients validate it against.
 */
export function decisionResult(decision, { approvalUrl, structured = true } = {}) {
  const details = { decision: decision.decision, code: decision.code, rule: decision.rule, message: decision.message };
  if (decision.retry_after_ms !== undefined) details.retry_after_ms = decision.retry_after_ms;
  let text;
  if (decision.decision === 'approval_required') {
    details.approval_id = decision.approval_id;
    if (approvalUrl) details.approval_url = approvalUrl;
    text = `[APPROVAL REQUIRED] ${decision.message}`
      + (approvalUrl ? ` A human approves it at ${approvalUrl}` : ' A human approves it with the proxy\'s admin token')
      + '; then repeat the identical call.';
  } else {
    text = `[POLICY DENIED] ${decision.message}`;
    if (decision.retry_after_ms !== undefined) text += ` Retry after ${Math.ceil(decision.retry_after_ms / 1000)} s.`;
  }
  const result = { content: [{ type: 'text', text }], isError: true };
  if (structured) result.structuredContent = details;
  result._meta = { [DECISION_META_KEY]: details };
  return result;
}

const invalidCall = (message) => ({ decision: 'deny', code: 'invalid_call', rule: '', message });

export class Gate {
  #counters;
  #approvals;
  #audit;
  #failOpen;
  #clock;
  #auditArguments;
  #approvalTtlMs;
  #log;
  #sha256Hex;
  #hmac;
  #auditKey;
  #maxPendingApprovalsPerGrant;
  #maxApprovalArgumentBytes;
  #onWork;
  #writeEvent;
  #writeBuilt;
  #auditFailed;
  #observer;
  #tracer;
  // server name -> tools seen declaring an outputSchema (learnt from tools/list)
  #outputSchemaTools = new Map();
  // server name -> the approval store seen through that server's ids
  #scopedApprovals = new Map();
  // grant id -> Map(approval id -> expires_at): requests this process recorded
  // that may still wait (see #admitApprovalRequest)
  #pendingByGrant = new Map();
  // tool definitions seen per server and session, checked against pins (./pins.js)
  #pinMonitor = new PinMonitor();
  // audit events waiting for #writeUnwritten: { makeEvent, grant, resolve }
  #unwritten = [];

  /**
   * @param {object} options
   * @param {import('../wasm/index.js').CounterStore} options.counters
   * @param {import('../wasm/index.js').ApprovalStore} [options.approvals]
   * @param {{write(event: object): Promise<void>}} [options.audit]
   * @param {boolean} [options.failOpen] admit calls when the counter store fails (default: deny)
   * @param {() => number} [options.clock] epoch ms
   * @param {boolean} [options.auditArguments] put argument values in audit events (default: keys and HMAC only)
   * @param {number} [options.approvalTtlMs] how long a request waits for a human
   * @param {number} [options.maxPendingApprovalsPerGrant] requests of one grant waiting for a human at once (default 20)
   * @param {number} [options.maxApprovalArgumentBytes] largest arguments (RFC 8785 JSON) kept for a human to
   *   review (default 64 KiB); a larger call that needs approval is denied
   * @param {(level: string, message: string, fields?: object) => void} [options.log]
   * @param {(text: string) => string | Promise<string>} [options.sha256Hex] hex SHA-256 of a string's UTF-8
   *   (approval ids scoped to a server): WebCrypto by default; Node passes node:crypto's
   * @param {(key: string, text: string) => string | Promise<string>} [options.hmac] HMAC-SHA-256, base64url
   *   (audit argument digests): WebCrypto by default
   * @param {string} [options.auditKey] the secret of `argument_hmac`; default: random per Gate, so
   *   digests correlate within one process only
   * @param {(grant: string, ms: number) => void} [options.onWork] told the time spent building a grant's
   *   audit events (work done after the answer, charged to the grant's share: ./grant-lanes.js)
   * @param {{decided(fields: {server: string, tool: string | null, named?: boolean, decision: string, code: string,
   *   enforced: boolean, ms: number}): void}} [options.observer] told every decision as it is made
   *   (`named`: the policy names the tool exactly)
   *   (metrics: ./metrics.js); it must not throw
   * @param {{start(fields: object): {traceparent?: string, end(fields: object): void}}} [options.tracer]
   *   opens toolgate's span for each call (./otel.js); without it the client's traceparent is passed on as it is
   */
  constructor({ counters, approvals, audit, failOpen = false, clock = Date.now, auditArguments = false,
    approvalTtlMs = 24 * 60 * 60 * 1000, log = defaultLog, sha256Hex: hashHex = sha256Hex, hmac = webCryptoHmac(),
    auditKey = randomKey(), maxPendingApprovalsPerGrant = 20, maxApprovalArgumentBytes = 64 * 1024, onWork, observer, tracer } = {}) {
    this.#onWork = onWork;
    this.#tracer = tracer;
    this.#observer = observer;
    this.#counters = counters;
    this.#approvals = approvals;
    this.#audit = audit;
    this.#failOpen = failOpen;
    this.#clock = clock;
    this.#auditArguments = auditArguments;
    this.#approvalTtlMs = approvalTtlMs;
    this.#log = log;
    this.#sha256Hex = hashHex;
    this.#hmac = hmac;
    this.#auditKey = auditKey;
    this.#maxPendingApprovalsPerGrant = maxPendingApprovalsPerGrant;
    this.#maxApprovalArgumentBytes = maxApprovalArgumentBytes;
    // Made once, not per call: an Exchange's writer (called with the
    // request's context), and the two steps of each event's write.
    this.#writeEvent = (makeEvent, context) => this.#write(makeEvent, context);
    this.#writeBuilt = (event) => this.#audit?.write(event);
    this.#auditFailed = (error) => {
      // The decision stands; the operator must hear that its record is missing.
      this.#log('error', 'audit sink failed; the decision stands but its event was not recorded', { error: String(error?.message ?? error) });
    };
  }

  /**
   * Decides a client's messages (one, or a batch).
   * @param {object[]} messages parsed JSON-RPC messages
   * @param {object} context
   * @param {{id: string, attributes?: object}} context.grant
   * @param {string} context.server the upstream server's name
   * @param {import('../wasm/index.js').Policy} context.policy
   * @param {(id: string) => string | undefined} [context.approvalUrl]
   * @param {(promise: Promise<unknown>) => void} [context.waitUntil] keeps background work (audit) alive
   * @param {(idKey: string) => boolean} [context.claimId] claims a request id (JSON text) for the session or
   *   pipe; false when a request still in flight holds it, and the request is refused (the transport frees
   *   an id once the request's answer has been relayed)
   * @param {import('./pins.js').ServerPins} [context.pins] the server's tool pins: a call to a tool whose
   *   last seen definition (in context.session) is not its pin is denied (tool_changed)
   * @param {string} [context.session] the server's MCP session id, when it has one
   * @param {(context: object) => Promise<object[]>} [context.refreshTools] with pins: the server's tools/list (every
   *   page) fetched by the transport in this session, for a tool whose current definition was not seen;
   *   called with the context itself, so that a transport needs no closure per request over it
   * @returns {Promise<{ refused?: object, forward: object[], answers: object[], exchanges: Map<string, Exchange> }>}
   *   refused: the whole body is refused (nothing forwarded) with this error message;
   *   forward: messages to send upstream, in order; answers: replies made here;
   *   exchanges: the forwarded calls by request id (JSON text), to which the transport reports
   *   what happens to them (./exchange.js).
   */
  async admit(messages, context) {
    const forward = [];
    const answers = [];
    const exchanges = new Map();
    const seenIds = new Set();
    // A notification cannot be answered, so a denied one would vanish without
    // a trace: a body carrying tools/call as a notification is refused whole.
    for (const message of messages) {
      const kind = kindOf(message);
      if (kind === 'notification' && (message.method === 'tools/call' || looksLikeToolsCall(message.method))) {
        return { refused: errorMessage(null, JsonRpcError.INVALID_REQUEST, 'tools/call must be a request with an id; toolgate does not forward it as a notification.'), forward: [], answers: [], exchanges };
      }
    }
    for (const message of messages) {
      const kind = kindOf(message);
      if (kind === 'invalid') {
        answers.push(errorMessage(isObject(message) && isId(message.id) ? message.id : null, JsonRpcError.INVALID_REQUEST,
          'Invalid Request: not a JSON-RPC 2.0 request, notification or response.'));
        continue;
      }
      if (kind !== 'request') {
        forward.push(message);
        continue;
      }
      // Answers are matched to requests by id: two requests with one id would
      // let a server's answer to one settle the other.
      const key = idKey(message.id);
      if (seenIds.has(key)) {
        answers.push(errorMessage(message.id, JsonRpcError.INVALID_REQUEST, `Invalid Request: id ${key} is used by another request in this batch.`));
        continue;
      }
      seenIds.add(key);
      // Across requests, a session's server matches answers to requests by id
      // too: an id still in flight there (claimed by the transport) is
      // refused, or the server's answer to this request could settle a
      // running call as failed and give its quota back.
      if (context.claimId && !context.claimId(key)) {
        answers.push(errorMessage(message.id, JsonRpcError.INVALID_REQUEST, `Invalid Request: id ${key} is still in flight: a request with this id is already in flight in this session and the server has not answered it; use a new id, or wait for its answer. This request was not forwarded.`));
        continue;
      }
      if (looksLikeToolsCall(message.method)) {
        answers.push(errorMessage(message.id, JsonRpcError.INVALID_REQUEST, `Invalid Request: method ${JSON.stringify(message.method)} is not "tools/call"; toolgate refuses look-alikes of it.`));
        continue;
      }
      if (message.method !== 'tools/call') {
        forward.push(message);
        continue;
      }
      // Calls in a batch are decided one after another, in order, so that
      // they count against the limits as separate calls would.
      const outcome = await this.#decide(message, context);
      if (outcome.exchange) {
        forward.push(message);
        exchanges.set(key, outcome.exchange);
      } else {
        answers.push(outcome.answer);
      }
    }
    return { forward, answers, exchanges };
  }

  // One tools/call decided: its Exchange (./exchange.js) is made here and
  // either refused at once (answered here, audited) or returned open, to be
  // forwarded and settled by what the transport reports.
  async #decide(message, context) {
    const started = performance.now();
    const now = this.#clock();
    const { grant, server, policy } = context;
    const params = message.params;
    if (!isObject(params)) {
      const exchange = new Exchange({ event: this.#event(message, context, { tool: null, args: undefined, now }), write: this.#writeEvent, writeContext: context, started });
      this.#observer?.decided({ server: context.server, tool: null, decision: 'deny', code: 'invalid_call', enforced: true, ms: elapsed(started) });
      exchange.refuse({ decision: 'deny', code: 'invalid_call', rule: '' });
      return { answer: errorMessage(message.id, JsonRpcError.INVALID_PARAMS, 'Invalid params: tools/call needs params {"name": string, "arguments": object}.') };
    }
    const tool = params.name;
    const args = params.arguments;
    // Monitor mode: the server's (context.monitor) or the policy's own "mode"
    // (the document's, or the entry that governs the tool).
    const monitor = context.monitor === true || (typeof tool === 'string' && policy.isMonitored?.(tool) === true);
    // Trace context (./trace-context.js): only when there is one to keep or a tracer to open a span.
    const trace = this.#tracer || context.traceparent || params._meta !== undefined
      ? callTrace(this.#tracer, { header: context.traceparent, meta: params._meta?.traceparent, server, tool, grant: grant.id })
      : null;
    const exchange = new Exchange({ event: this.#event(message, context, { tool, args, now, monitor }), write: this.#writeEvent, writeContext: context, trace, monitor, started });
    let decision;
    let authorization;
    // Pins come first: a tool whose definition is not the reviewed one is not
    // run, whatever the policy says of its name, and takes no quota.
    // Awaited only when the server's tools must be listed first: the common
    // case (a tool already seen in this session) is a lookup, with no promise
    // and no turn of the microtask queue per call.
    let changed = null;
    if (context.pins && typeof tool === 'string') {
      if (this.#mustListTools(tool, context)) await this.#listTools(tool, context);
      changed = this.#pinMonitor.check(context.server, context.session, context.pins, tool);
    }
    const lookAlike = typeof tool === 'string' ? lookAlikeProblem(tool, policy) : null;
    if (changed) {
      decision = { decision: 'deny', code: TOOL_CHANGED, rule: '', message: changed };
    } else if (lookAlike) {
      decision = invalidCall(lookAlike);
    } else {
      const call = { tool, arguments: args === undefined ? {} : args, grant: { ...grant.attributes, id: grant.id }, now };
      try {
        // The decision, the counters reserved and the approval consumed
        // (wasm/index.js): { decision, commit(), rollback() }, held by the exchange.
        authorization = await policy.authorize(call, { counters: this.#counters, approvals: this.#approvalsOf(server), now, failOpen: this.#failOpen });
        decision = authorization.decision;
      } catch (error) {
        // Only an engine failure gets here (store failures are decisions): deny.
        this.#log('error', 'the policy engine failed; the call is denied', { error: String(error?.message ?? error) });
        this.#observer?.decided({ server, tool: typeof tool === 'string' ? tool : null, named: isNamed(policy, tool), decision: 'deny', code: 'engine_error', enforced: true, ms: elapsed(started) });
        exchange.refuse({ decision: 'deny', code: 'engine_error', rule: '' });
        return { answer: errorMessage(message.id, JsonRpcError.INTERNAL, 'toolgate could not decide this call (engine error); it was not forwarded.') };
      }
    }
    // Monitor mode (the server's, or the policy's "mode"): the decision is recorded, not
    // enforced. A call it would refuse is forwarded anyway, audited with
    // "enforced": false and the would-be decision, code and rule. Limits count
    // what enforcement would count: a call the policy allows is charged as
    // always, a would-be refusal (rate_limited included) charges nothing, so
    // the would-be decisions are the ones enforcing would have made. Names
    // refused as look-alikes (invalid_call) and tools whose definition is not
    // their pin (tool_changed) stay refused: they are not the policy's choice
    // but toolgate's guards against a server misreading or changing tools.
    const monitored = monitor && decision.decision !== 'allow' && decision.code !== 'invalid_call' && decision.code !== TOOL_CHANGED;
    if (decision.decision === 'allow' || monitored) {
      this.#observer?.decided({ server, tool, named: isNamed(policy, tool), decision: decision.decision, code: decision.code, enforced: !monitor, ms: elapsed(started) });
      if (trace?.upstream) passTraceContext(params, trace.upstream, context.tracestate);
      // A would-be refusal (monitor mode) reserved nothing: no reservation to hold.
      exchange.forward(decision, decision.decision === 'allow' ? authorization : undefined);
      return { exchange };
    }
    let approvalUrl;
    if (decision.decision === 'approval_required') {
      decision = await this.#scopeApproval(decision, server);
      const refusal = await this.#admitApprovalRequest(decision, { grant, args, now });
      if (refusal) {
        decision = refusal;
      } else {
        approvalUrl = context.approvalUrl?.(decision.approval_id);
        await this.#recordApprovalRequest(decision, { grant, server, tool, args, now });
      }
    }
    const structured = !this.#outputSchemaTools.get(server)?.has(tool);
    this.#observer?.decided({ server, tool: typeof tool === 'string' ? tool : null, named: isNamed(policy, tool), decision: decision.decision, code: decision.code, enforced: true, ms: elapsed(started) });
    exchange.refuse(decision);
    return { answer: { jsonrpc: '2.0', id: message.id, result: decisionResult(decision, { approvalUrl, structured }) } };
  }

  // Before the pin check of a call to a tool whose current definition has not
  // been seen in this session (no list relayed yet, or the server announced a
  // change): the transport's refreshTools() asks the server for its
  // tools/list in the same session, and the answer is learnt as if relayed;
  // once per session and list_changed, so that calls to names the server does
  // not list cost it nothing. Whatever fails there leaves the tool unseen:
  // denied by the check.
  #mustListTools(tool, context) {
    return typeof context.refreshTools === 'function' && this.#pinMonitor.needsListing(context.server, context.session, tool);
  }

  async #listTools(tool, context) {
    const { server, session, pins } = context;
    try {
      const epoch = this.#pinMonitor.epoch(server, session);
      const tools = await context.refreshTools(context);
      this.#learnOutputSchemas(server, tools);
      this.#pinMonitor.learn(server, session, pins, tools, epoch);
      this.#pinMonitor.listed(server, session, epoch);
    } catch (error) {
      this.#log('warn', 'toolgate could not list the server\'s tools to check a pinned tool; the call is denied', { server, tool, error: String(error?.message ?? error) });
    }
  }

  // Approvals belong to one server: the id a human approves is the core's id
  // (a hash of the call) hashed again with the server's name, so approving
  // `deploy` on staging approves nothing on production.
  #scopedId(server, id) {
    return this.#sha256Hex(`toolgate approval\n${server}\n${id}`);
  }

  #approvalsOf(server) {
    const store = this.#approvals;
    if (!store) return undefined;
    let scoped = this.#scopedApprovals.get(server);
    if (!scoped) {
      scoped = {
        isApproved: async (id, timeoutMs, now) => store.isApproved(await this.#scopedId(server, id), timeoutMs, now),
        consume: async (id, timeoutMs, now) => store.consume(await this.#scopedId(server, id), timeoutMs, now),
      };
      this.#scopedApprovals.set(server, scoped);
    }
    return scoped;
  }

  async #scopeApproval(decision, server) {
    const id = await this.#scopedId(server, decision.approval_id);
    return { ...decision, approval_id: id, message: decision.message.split(decision.approval_id).join(id) };
  }

  // Bounds what one grant can make the approval store hold: at most
  // maxPendingApprovalsPerGrant requests waiting at once (counted by this
  // process, checked against the store before refusing), each with
  // arguments of at most maxApprovalArgumentBytes. A call past either bound
  // is denied, with a decision that says why; null when it may wait.
  async #admitApprovalRequest(decision, { grant, args, now }) {
    if (typeof this.#approvals?.request !== 'function') return null;
    let size;
    try {
      size = knownCanonicalBytes(args) ?? utf8Length(canonicalJson(args ?? {}));
    } catch {
      size = Infinity;
    }
    if (size > this.#maxApprovalArgumentBytes) {
      return { decision: 'deny', code: 'approval_limit', rule: decision.rule,
        message: `This call needs a human's approval, but its arguments (${size === Infinity ? 'not representable' : `${size} bytes`}) are over the ${this.#maxApprovalArgumentBytes} bytes a reviewer is shown; it was not forwarded.` };
    }
    let waiting = this.#pendingByGrant.get(grant.id);
    if (!waiting) this.#pendingByGrant.set(grant.id, waiting = new Map());
    if (waiting.has(decision.approval_id)) return null; // the same call asked again
    for (const [id, expiresAt] of waiting) if (expiresAt <= now) waiting.delete(id);
    if (waiting.size >= this.#maxPendingApprovalsPerGrant) {
      // Requests a human decided (on any instance) no longer wait: look.
      for (const id of [...waiting.keys()]) {
        const held = await this.#approvals.get(id, now).catch(() => undefined);
        if (held === null) waiting.delete(id);
      }
    }
    if (waiting.size >= this.#maxPendingApprovalsPerGrant) {
      return { decision: 'deny', code: 'approval_limit', rule: decision.rule,
        message: `This call needs a human's approval, but this grant already has ${waiting.size} requests waiting (at most ${this.#maxPendingApprovalsPerGrant}); it was not forwarded. Retry once they are decided.` };
    }
    waiting.set(decision.approval_id, now + this.#approvalTtlMs);
    return null;
  }

  async #recordApprovalRequest(decision, { grant, server, tool, args, now }) {
    if (typeof this.#approvals?.request !== 'function') return;
    try {
      await this.#approvals.request({
        id: decision.approval_id, grant: grant.id, server, tool, arguments: args ?? {}, message: decision.message,
        requested_at: now, expires_at: now + this.#approvalTtlMs,
      });
    } catch (error) {
      // The call is not forwarded either way; the approver just will not see it listed.
      this.#log('error', 'recording an approval request failed', { approval_id: decision.approval_id, error: String(error?.message ?? error) });
    }
  }

  // The audit event's fields known at decision time, put together (arguments
  // canonicalised and hashed) when the event is written: () => Promise<event>,
  // made once.
  #event(message, context, fields) {
    let event;
    return () => {
      event ??= this.#eventNow(message, context, fields);
      return event;
    };
  }

  // The event itself when the HMAC answers at once (node:crypto's), else a
  // promise of it (WebCrypto's): no promise per call on Node.
  #eventNow(message, context, { tool, args, now, monitor = false }) {
    const event = {
      time: isoTime(now),
      request_id: message.id,
      grant: context.grant.id,
      server: context.server,
      tool: typeof tool === 'string' ? tool : null,
      policy_hash: context.policy.hash,
      argument_keys: isObject(args) ? Object.keys(args) : [],
      argument_hmac: null,
    };
    let digest;
    try {
      // Keyed: an unkeyed hash of small arguments ({"pin": "4711"}) is
      // undone by trying every value; an HMAC still correlates events.
      digest = knownArgumentHmac(args, this.#auditKey) ?? this.#hmac(this.#auditKey, canonicalJson(args === undefined ? {} : args));
    } catch {
      // arguments too deep or not representable: the hash stays null
      digest = null;
    }
    if (typeof digest?.then === 'function') {
      return digest.then((value) => this.#eventRest(event, value, context, args, monitor), () => this.#eventRest(event, null, context, args, monitor));
    }
    return this.#eventRest(event, digest, context, args, monitor);
  }

  #eventRest(event, digest, context, args, monitor) {
    event.argument_hmac = digest;
    if (this.#auditArguments) {
      event.arguments = args ?? {};
      // What `toolgate replay` needs to decide the call again as it was.
      if (context.grant.attributes && Object.keys(context.grant.attributes).length > 0) event.grant_attributes = context.grant.attributes;
    }
    if (monitor) event.enforced = false;
    if (context.session) event.session = context.session;
    return event;
  }

  // Writes the event `makeEvent()` gives, in a later task: after the call has
  // gone upstream and its answer back to the client, so that building and
  // writing the event adds nothing to the call's latency. Every field is what
  // it was at decision time (latencies are measured before). Events wait in
  // one queue, built and handed to the sink by one task for all that are
  // waiting (not a task and a promise chain each: under load that was a
  // good part of toolgate's CPU per call).
  #write(makeEvent, context = {}) {
    const written = new Promise((resolve) => {
      if (this.#unwritten.push({ makeEvent, grant: context.grant?.id, resolve }) === 1) later(() => this.#writeUnwritten());
    });
    context.waitUntil?.(written);
    return written;
  }

  #writeUnwritten() {
    // At most AUDIT_EVENTS_PER_TASK at a time: after a flood of calls the
    // rest wait for the next task, so I/O (other grants' requests) runs between.
    let batch = this.#unwritten;
    if (batch.length > AUDIT_EVENTS_PER_TASK) {
      this.#unwritten = batch.slice(AUDIT_EVENTS_PER_TASK);
      batch = batch.slice(0, AUDIT_EVENTS_PER_TASK);
      later(() => this.#writeUnwritten());
    } else {
      this.#unwritten = [];
    }
    for (const { makeEvent, grant, resolve } of batch) {
      // The event's canonical JSON and HMAC are computed in makeEvent (at
      // once with a synchronous HMAC, before its first await otherwise):
      // that is the grant's work, charged to its share.
      const started = performance.now();
      let written;
      try {
        const event = makeEvent();
        // An event built at once is handed to the sink at once (no promise
        // chain per call); a promised one when it is there.
        written = typeof event?.then === 'function' ? event.then(this.#writeBuilt) : this.#writeBuilt(event);
      } catch (error) {
        written = Promise.reject(error);
      }
      if (grant !== undefined) this.#onWork?.(grant, performance.now() - started);
      resolve(Promise.resolve(written).catch(this.#auditFailed));
    }
  }

  /**
   * A server-to-client message on its way: hidden tools leave tools/list
   * results, and the answer to a forwarded call is reported to its exchange
   * (`exchanges`: the open exchanges of the request or pipe, by id as JSON).
   * With pins (./pins.js), each listed definition is learnt and a tool that
   * is not its pin leaves the list; notifications/tools/list_changed makes
   * toolgate forget what the session saw (its calls wait for a new list).
   * pinEpoch: pinEpoch() taken when the request this answers was sent, where
   * answers and notifications travel on different streams (HTTP).
   * Returns the message to pass on (the same object when unchanged).
   */
  inspect(message, { server, policy, exchanges, status, pins, session, pinEpoch, monitor = false }) {
    if (pins && isObject(message) && message.method === 'notifications/tools/list_changed') this.#pinMonitor.listChanged(server, session);
    if (!isObject(message) || !('id' in message)) return message;
    if (isResponse(message)) exchanges?.get(idKey(message.id))?.answered(message, { status });
    const tools = message.result?.tools;
    if (!Array.isArray(tools)) return message;
    this.#learnOutputSchemas(server, tools);
    const pinned = pins ? this.#pinMonitor.learn(server, session, pins, tools, pinEpoch) : tools;
    // A listed look-alike of a name the policy mentions could not be called
    // anyway: it leaves the list with the hidden tools.
    // In monitor mode hidden tools stay listed (nothing the policy says is
    // enforced); look-alike names still go, as calls to them are still refused.
    const listAll = monitor || policy.modes?.policy === true; // the whole policy in monitor mode
    const visible = pinned.filter((tool) => isObject(tool) && typeof tool.name === 'string' && (listAll || !policy.isHidden(tool.name)) && !lookAlikeProblem(tool.name, policy));
    if (visible.length === tools.length) return message;
    return { ...message, result: { ...message.result, tools: visible } };
  }

  #learnOutputSchemas(server, tools) {
    let names = this.#outputSchemaTools.get(server);
    if (!names) this.#outputSchemaTools.set(server, names = new Set());
    for (const tool of tools) {
      if (isObject(tool) && typeof tool.name === 'string' && isObject(tool.outputSchema)) names.add(tool.name);
    }
  }

  /** The count of list_changed seen for a server and session (see inspect's pinEpoch). */
  pinEpoch(server, session) {
    return this.#pinMonitor.epoch(server, session);
  }
}

// The MCP request's _meta carries the trace context upstream (besides the
// HTTP header): servers that trace read it there. A client's _meta that is not
// an object is left as it is.
function passTraceContext(params, traceparent, tracestate) {
  if (params._meta === undefined) params._meta = {};
  if (!isObject(params._meta)) return;
  params._meta.traceparent = traceparent;
  if (tracestate && params._meta.tracestate === undefined) params._meta.tracestate = tracestate;
}

const utf8Length = (text) => new TextEncoder().encode(text).byteLength;

// An audit event's time as Date#toISOString writes it. Calls decided in the
// same millisecond share the string; in the same second, only the
// milliseconds are written (a Date and its formatting per call cost about as
// much as the rest of the event's fields).
let lastTime = NaN;
let lastIso = '';
let lastSecond = NaN; // the whole second lastPrefix is of, when it may be reused
let lastPrefix = ''; // lastIso up to and including the "." before the milliseconds
export function isoTime(now) {
  if (now === lastTime) return lastIso;
  const second = Math.floor(now / 1000);
  if (second === lastSecond && Number.isInteger(now)) {
    const ms = now - second * 1000;
    lastIso = `${lastPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
  } else {
    lastIso = new Date(now).toISOString();
    // Integer times only: Date truncates a fraction toward zero, floor does not.
    lastSecond = Number.isInteger(now) ? second : NaN;
    lastPrefix = lastIso.slice(0, -4);
  }
  lastTime = now;
  return lastIso;
}

function randomKey() {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const elapsed = (started) => Math.round((performance.now() - started) * 1000) / 1000;

// Audit events built in one task at most (#writeUnwritten).
const AUDIT_EVENTS_PER_TASK = 128;

// Runs `fn` in a later task: on Node once the I/O of this turn (the answer to
// the client) is done (setImmediate); elsewhere (workerd) after a 0 ms timer.
const later = typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

function defaultLog(level, message, fields) {
  console.error(JSON.stringify({ level, message, ...fields }));
}
