// The gate: what the proxy does to MCP messages, whatever carries them (HTTP
// in handler.js, newline-delimited stdio in stdio.js).
//
// Client to server: every `tools/call` request is decided by the policy before
// it may go on; a denied call is answered here and never forwarded. Anything
// that could smuggle a call past the decision (a tools/call notification, a
// look-alike method name, a reused request id) is refused. Everything else
// passes unchanged.
// Server to client: hidden tools leave every tools/list result; the answer to
// a forwarded call settles its reservation (commit, or rollback when the
// server failed) and writes its audit event.
import { canonicalJson, sha256Hex } from './audit.js';

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

// "Tools/Call", "tools/call " or a full-width look-alike is not tools/call to
// this proxy, but a lenient server might treat it as one: refuse them all.
function looksLikeToolsCall(method) {
  return method !== 'tools/call'
    && method.normalize('NFKC').toLowerCase().replace(/[\s\u200b-\u200f\u2060\ufeff]/g, '') === 'tools/call';
}

// What a policy names exactly, folded for look-alike checks; computed once per
// compiled policy.
const policyNames = new WeakMap();
function namesOf(policy) {
  let names = policyNames.get(policy);
  if (!names) {
    let tools = {};
    try {
      tools = JSON.parse(policy.source).tools ?? {};
    } catch {
      // a policy compiled from an object has no source to read names from
    }
    names = { exact: new Set(Object.keys(tools)), folded: new Map() };
    for (const name of names.exact) names.folded.set(fold(name), name);
    policyNames.set(policy, names);
  }
  return names;
}
const fold = (name) => name.normalize('NFKC').toLowerCase();
const PLAIN_TOOL_NAME = /^[A-Za-z0-9_.\-/]*$/;

// Tool names a server would likely take for a different, policy-named tool:
// a case or Unicode-form variant of a name the policy lists, or any name
// outside plain ASCII that the policy does not list exactly (look-alike
// letters from other scripts). MCP tool names are [A-Za-z0-9_.-].
function lookAlikeProblem(name, policy) {
  const names = namesOf(policy);
  if (names.exact.has(name)) return null;
  const twin = names.folded.get(fold(name));
  if (twin !== undefined) {
    return `Tool name ${JSON.stringify(name)} differs from the policy's ${JSON.stringify(twin)} only by case or Unicode form; call ${JSON.stringify(twin)} exactly.`;
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
  #waitUntil;
  #sha256Hex;
  // server name -> tools seen declaring an outputSchema (learnt from tools/list)
  #outputSchemaTools = new Map();

  /**
   * @param {object} options
   * @param {import('../wasm/index.js').CounterStore} options.counters
   * @param {import('../wasm/index.js').ApprovalStore} [options.approvals]
   * @param {{write(event: object): Promise<void>}} [options.audit]
   * @param {boolean} [options.failOpen] admit calls when the counter store fails (default: deny)
   * @param {() => number} [options.clock] epoch ms
   * @param {boolean} [options.auditArguments] put argument values in audit events (default: keys and hash only)
   * @param {number} [options.approvalTtlMs] how long a request waits for a human
   * @param {(level: string, message: string, fields?: object) => void} [options.log]
   * @param {(text: string) => string | Promise<string>} [options.sha256Hex] hex SHA-256 of a string's UTF-8
   *   (argument hashes): WebCrypto by default; Node passes node:crypto's, which answers at once
   */
  constructor({ counters, approvals, audit, failOpen = false, clock = Date.now, auditArguments = false,
    approvalTtlMs = 24 * 60 * 60 * 1000, log = defaultLog, sha256Hex: hashHex = sha256Hex } = {}) {
    this.#counters = counters;
    this.#approvals = approvals;
    this.#audit = audit;
    this.#failOpen = failOpen;
    this.#clock = clock;
    this.#auditArguments = auditArguments;
    this.#approvalTtlMs = approvalTtlMs;
    this.#log = log;
    this.#sha256Hex = hashHex;
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
   * @returns {Promise<{ refused?: object, forward: object[], answers: object[], tickets: Map<string, Ticket> }>}
   *   refused: the whole body is refused (nothing forwarded) with this error message;
   *   forward: messages to send upstream, in order; answers: replies made here;
   *   tickets: forwarded calls by request id, to settle with the server's answer.
   */
  async admit(messages, context) {
    const forward = [];
    const answers = [];
    const tickets = new Map();
    const seenIds = new Set();
    // A notification cannot be answered, so a denied one would vanish without
    // a trace: a body carrying tools/call as a notification is refused whole.
    for (const message of messages) {
      const kind = kindOf(message);
      if (kind === 'notification' && (message.method === 'tools/call' || looksLikeToolsCall(message.method))) {
        return { refused: errorMessage(null, JsonRpcError.INVALID_REQUEST, 'tools/call must be a request with an id; toolgate does not forward it as a notification.'), forward: [], answers: [], tickets };
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
      if (outcome.ticket) {
        forward.push(message);
        tickets.set(key, outcome.ticket);
      } else {
        answers.push(outcome.answer);
      }
    }
    return { forward, answers, tickets };
  }

  async #decide(message, context) {
    const started = performance.now();
    const now = this.#clock();
    const { grant, server, policy } = context;
    const params = message.params;
    if (!isObject(params)) {
      const event = this.#event(message, context, { tool: null, args: undefined, now });
      const latency = elapsed(started);
      this.#write(() => event().then((e) => ({ ...e, decision: 'deny', code: 'invalid_call', rule: '', upstream_status: null, latency_ms: latency })), context);
      return { answer: errorMessage(message.id, JsonRpcError.INVALID_PARAMS, 'Invalid params: tools/call needs params {"name": string, "arguments": object}.') };
    }
    const tool = params.name;
    const args = params.arguments;
    const base = this.#event(message, context, { tool, args, now });
    let decision;
    let authorization;
    const lookAlike = typeof tool === 'string' ? lookAlikeProblem(tool, policy) : null;
    if (lookAlike) {
      decision = invalidCall(lookAlike);
    } else {
      const call = { tool, arguments: args === undefined ? {} : args, grant: { ...grant.attributes, id: grant.id }, now };
      try {
        authorization = await policy.authorize(call, { counters: this.#counters, approvals: this.#approvals, now, failOpen: this.#failOpen });
        decision = authorization.decision;
      } catch (error) {
        // Only an engine failure gets here (store failures are decisions): deny.
        this.#log('error', 'the policy engine failed; the call is denied', { error: String(error?.message ?? error) });
        const latency = elapsed(started);
        this.#write(() => base().then((e) => ({ ...e, decision: 'deny', code: 'engine_error', rule: '', upstream_status: null, latency_ms: latency })), context);
        return { answer: errorMessage(message.id, JsonRpcError.INTERNAL, 'toolgate could not decide this call (engine error); it was not forwarded.') };
      }
    }
    if (decision.decision === 'allow') {
      return { ticket: new Ticket(this, base, decision, authorization, context) };
    }
    let approvalUrl;
    if (decision.decision === 'approval_required') {
      approvalUrl = context.approvalUrl?.(decision.approval_id);
      await this.#recordApprovalRequest(decision, { grant, server, tool, args, now });
    }
    const structured = !this.#outputSchemaTools.get(server)?.has(tool);
    const latency = elapsed(started);
    this.#write(() => base().then((e) => ({ ...e, ...decisionFields(decision), upstream_status: null, latency_ms: latency })), context);
    return { answer: { jsonrpc: '2.0', id: message.id, result: decisionResult(decision, { approvalUrl, structured }) } };
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

  async #eventNow(message, context, { tool, args, now }) {
    const event = {
      time: new Date(now).toISOString(),
      request_id: message.id,
      grant: context.grant.id,
      server: context.server,
      tool: typeof tool === 'string' ? tool : null,
      policy_hash: context.policy.hash,
      argument_keys: isObject(args) ? Object.keys(args) : [],
      argument_sha256: null,
    };
    try {
      event.argument_sha256 = await this.#sha256Hex(canonicalJson(args === undefined ? {} : args));
    } catch {
      // arguments too deep or not representable: the hash stays null
    }
    if (this.#auditArguments) event.arguments = args ?? {};
    if (context.session) event.session = context.session;
    return event;
  }

  // Writes the event `makeEvent()` gives, in a later task: after the call has
  // gone upstream and its answer back to the client, so that building and
  // writing the event adds nothing to the call's latency. Every field is what
  // it was at decision time (latencies are measured before).
  #write(makeEvent, context = {}) {
    const written = new Promise(later)
      .then(makeEvent)
      .then((event) => this.#audit?.write(event))
      .catch((error) => {
        // The decision stands; the operator must hear that its record is missing.
        this.#log('error', 'audit sink failed; the decision stands but its event was not recorded', { error: String(error?.message ?? error) });
      });
    context.waitUntil?.(written);
    return written;
  }

  /**
   * A server-to-client message on its way: hidden tools leave tools/list
   * results, and the answer to a forwarded call settles its ticket.
   * Returns the message to pass on (the same object when unchanged).
   */
  inspect(message, { server, policy, tickets, status }) {
    if (!isObject(message) || !('id' in message)) return message;
    const ticket = tickets?.get(idKey(message.id));
    if (ticket) {
      // A JSON-RPC error means the server did not run the tool (unknown tool,
      // bad params): quota goes back. A tool result, even isError, ran.
      const failed = 'error' in message;
      ticket.settle({ failed, status, outcome: failed ? 'error' : message.result?.isError === true ? 'tool_error' : 'result' });
    }
    const tools = message.result?.tools;
    if (!Array.isArray(tools)) return message;
    this.#learnOutputSchemas(server, tools);
    const visible = tools.filter((tool) => isObject(tool) && typeof tool.name === 'string' && !policy.isHidden(tool.name));
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

  /** Settles every ticket not settled yet (the stream ended without their answers). */
  static settleAll(tickets, outcome) {
    for (const ticket of tickets?.values() ?? []) ticket.settle(outcome);
  }

  // for Ticket
  _finish(event, context) {
    return this.#write(event, context);
  }
}

const decisionFields = (decision) => {
  const fields = { decision: decision.decision, code: decision.code, rule: decision.rule };
  if (decision.retry_after_ms !== undefined) fields.retry_after_ms = decision.retry_after_ms;
  if (decision.approval_id !== undefined) fields.approval_id = decision.approval_id;
  return fields;
};

const elapsed = (started) => Math.round((performance.now() - started) * 1000) / 1000;

// Runs `fn` in a later task: on Node once the I/O of this turn (the answer to
// the client) is done (setImmediate); elsewhere (workerd) after a 0 ms timer.
const later = typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

/**
 * A forwarded call waiting for the server's answer. settle() once: commit the
 * reservation when the server answered, roll it back when it failed (an error
 * response, an HTTP error, unreachable), then write the audit event.
 */
export class Ticket {
  #gate;
  #event;
  #decision;
  #authorization;
  #settled = false;
  #started = performance.now();
  #context;

  constructor(gate, event, decision, authorization, context) {
    this.#gate = gate;
    this.#event = event;
    this.#decision = decision;
    this.#authorization = authorization;
    this.#context = context;
  }

  get settled() {
    return this.#settled;
  }

  /**
   * @param {{failed: boolean, status: number | string, outcome?: string}} how the server answered:
   *   status is its HTTP status (or 'timeout', 'unreachable'); outcome what became of the call
   */
  settle({ failed, status, outcome = failed ? 'failed' : 'no_answer' }) {
    if (this.#settled) return undefined;
    this.#settled = true;
    const latency = elapsed(this.#started);
    const settled = (failed ? this.#authorization.rollback() : this.#authorization.commit()).catch(() => {});
    const event = () => this.#event().then((event) => ({ ...event, ...decisionFields(this.#decision), upstream_status: status, outcome, latency_ms: latency }));
    return Promise.all([settled, this.#gate._finish(event, this.#context)]);
  }
}

function defaultLog(level, message, fields) {
  console.error(JSON.stringify({ level, message, ...fields }));
}
