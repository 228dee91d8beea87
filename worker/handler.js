// The proxy as one function from a web-standard Request to a Response, so the
// same code runs in Cloudflare Workers (workers.js), on Node (node.js) and in
// tests. It speaks MCP's Streamable HTTP transport (2025-06-18, and 2025-03-26
// batches) on /mcp (one upstream) or /mcp/<name> (several), and serves the
// approvals page and API on /approvals.
import { jsonContentTypeProblem } from './content-type.js';
import { findJsonProblem } from './json-check.js';
import { Gate, JsonRpcError, errorMessage } from './gate.js';
import { readBodyMessages, strictUtf8 } from './body-read.js';
import { Failure, Outcome } from './exchange.js';
import { ANONYMOUS_GRANT, bearerToken, tokenMatches } from './grants.js';
import { transformEventStream } from './sse.js';
import { createApprovalRoutes } from './approvals.js';
import { cleanTracestate, formatTraceparent, parseTraceparent } from './trace-context.js';
import { GrantLanes } from './grant-lanes.js';
import { json } from './responses.js';
import { SessionBinding, webCryptoHmac } from './sessions.js';
import { eventStreamMessages, listToolsThrough } from './pins.js';
import { DeadlineQueue, PerCallDeadlines } from './deadlines.js';

const MB = 1024 * 1024;
// The largest answer toolgate reads to a request of its own (tools/list for pins).
const MAX_OWN_ANSWER_BYTES = 16 * MB;

// Request headers that go upstream: an allow-list of headers that cannot change
// what the body means. Everything else stays here: the client's Authorization
// (it authenticates to toolgate, not to the server), cookies, and above all
// Content-Type and Content-Encoding: the body toolgate forwards is the one it
// decided, written again as UTF-8 JSON, and is labelled so by toolgate
// (callUpstream), never by the client. Upstream credentials come from the
// server's configured headers.
// (Mcp-Session-Id and traceparent are forwarded too, but not as the client
// sent them: the server's own session id, and a checked trace parent, both
// taken from the request's scope, which read them once.)
const FORWARDED_REQUEST_HEADERS = ['accept', 'mcp-protocol-version', 'last-event-id'];
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'mcp-session-id', 'mcp-protocol-version', 'cache-control', 'retry-after'];

/**
 * @typedef {object} ServerConfig
 * @property {string} upstream the server's MCP endpoint URL
 * @property {Record<string, string>} [headers] sent upstream with every request (credentials)
 * @property {import('../wasm/index.js').Policy} policy
 *
 * @typedef {object} ProxyConfig
 * @property {Record<string, ServerConfig>} servers by name; "default" answers on /mcp
 * @property {import('./grants.js').Grants | null} grants null: one anonymous grant, loopback only
 * @property {Map<string, import('../wasm/index.js').Policy>} [grantPolicies] a grant's own policy, by grant id
 */

/**
 * @param {ProxyConfig & {
 *   counters: import('../wasm/index.js').CounterStore,
 *   approvals?: import('../wasm/index.js').ApprovalStore,
 *   audit?: {write(event: object): Promise<void>},
 *   adminTokenSha256?: string,
 *   failOpen?: boolean,
 *   auditArguments?: boolean,
 *   auditKey?: string,
 *   maxBodyBytes?: number,
 *   maxResponseBytes?: number,
 *   maxBatchSize?: number,
 *   grantShare?: number,
 *   maxConcurrentPerGrant?: number,
 *   maxPendingApprovalsPerGrant?: number,
 *   maxApprovalArgumentBytes?: number,
 *   bodyTimeoutMs?: number,
 *   upstreamTimeoutMs?: number,
 *   sharedTimers?: boolean,
 *   publicUrl?: string,
 *   hostCheck?: (request: Request) => Response | null,
 *   fetch?: typeof fetch,
 *   sha256?: { hex(text: string): string | Promise<string>, bytes(text: string): Uint8Array | string | Promise<Uint8Array | string>,
 *     hmac?(key: string, text: string): string | Promise<string> },
 *   sessionKey?: string,
 *   upstreamBody?: (response: Response) => UpstreamBody | undefined,
 *   upstreamHeaders?: (response: Response) => { get(name: string): string | null } | undefined,
 *   clock?: () => number,
 *   log?: (level: string, message: string, fields?: object) => void,
 *   oauth?: ReturnType<typeof import('./oauth.js').createOAuth>,
 *   parseBody?: (bytes: Uint8Array, context: { maxBatchSize: number, grant: string, auditKey?: string }) =>
 *     ReadBody | Promise<ReadBody>,
 * }} options
 *   parseBody: a POST body's bytes as messages (default ./body-read.js readBodyMessages, inline);
 *   Node passes ./body-pool.js's, which reads large bodies on worker threads with the same
 *   answers. A refusal may carry an HTTP `status` (default 400).
 *   oauth: toolgate as an OAuth resource server (./oauth.js): RFC 9728 metadata, and
 *   access tokens taken as grants beside the static grants (which are tried first).
 *   fetch: how requests go upstream (default: the global fetch; Node passes ./node-transport.js's).
 *   sha256: SHA-256 of bearer tokens (bytes, or a string of them one character each: latin1), and HMAC-SHA-256 (base64url) for session ids
 *   and audit argument digests; default WebCrypto, which runs everywhere; Node passes
 *   node:crypto's, synchronous and cheaper.
 *   sessionKey: a secret (16+ characters) that binds MCP session ids to the grant and server
 *   that opened them (./sessions.js); every instance behind one load balancer needs the
 *   same. Without it, session ids pass through as the server made them.
 *   auditKey: the secret of audit events' `argument_hmac` (./gate.js); default: derived from
 *   sessionKey.
 *   publicUrl: this proxy's address as people reach it; approval links are built from it
 *   (never from the request's Host, which the agent chooses), relative without it.
 *   hostCheck: refuses requests whose Host or Origin this proxy does not answer to (DNS
 *   rebinding); run before anything else on every route.
 *   maxBatchSize: messages in one JSON-RPC batch (default 100); maxConcurrentPerGrant: POSTs of
 *   one grant being read and decided at once (default 32; more get 429), so one grant cannot
 *   take the event loop from the others; bodyTimeoutMs: how long a request body may take to
 *   arrive (default 30 s; then 408); grantShare: the part of the event loop one grant's work may
 *   take while other grants are active (default 0.25; ./grant-lanes.js).
 *   sharedTimers: the body and upstream deadlines of all requests share one timer per
 *   deadline length (./deadlines.js DeadlineQueue) instead of a setTimeout per request;
 *   Node's host sets it (./node.js). Not on Workers, where a timer belongs to the request
 *   that made it.
 *   upstreamBody: direct access to the body of an upstream answer that `fetch` made, to read
 *   it whole without a web stream (Node's transport offers it: web streams are costly
 *   there); undefined for an answer it does not know, whose `body` is then read.
 *   upstreamHeaders: the header fields of an upstream answer that `fetch` made, read as
 *   `response.headers.get` reads them but without fetch's Headers (Node's transport offers
 *   it: each Headers.get checks, lower-cases and brands, and an answer's headers are read
 *   seven times a call); undefined for an answer it does not know, whose `headers` are then read.
 *
 * @typedef {{ refused: object, status?: number } | { batch: boolean, messages: unknown[] }} ReadBody
 *
 * @typedef {object} UpstreamBody
 * @property {boolean} empty the answer has no body (what `response.body === null` says)
 * @property {(limit: number) => Promise<Uint8Array | null>} read the whole body; null when longer than limit
 * @property {() => void} cancel drop it unread
 */
export function createHandler(options) {
  const {
    counters, approvals, audit, adminTokenSha256, failOpen = false, auditArguments = false,
    maxBodyBytes = 4 * MB, maxResponseBytes = 32 * MB, upstreamTimeoutMs = 120_000, publicUrl,
    maxBatchSize = 100, maxConcurrentPerGrant = 32, bodyTimeoutMs = 30_000, hostCheck, grantShare = 0.25, sharedTimers = false,
    maxPendingApprovalsPerGrant, maxApprovalArgumentBytes,
    fetch: fetchUpstream = (...args) => fetch(...args), clock = Date.now, log = defaultLog, sha256, upstreamBody, upstreamHeaders, sessionKey,
    observer, metrics, tracer, oauth, parseBody = readBodyMessages,
  } = options;
  const hmac = sha256?.hmac ?? webCryptoHmac();
  const sessions = sessionKey === undefined ? null : new SessionBinding({ key: sessionKey, hmac });
  // The body of an upstream answer, through upstreamBody when it knows the answer.
  const bodyOf = (response) => upstreamBody?.(response) ?? webBody(response);
  // The header fields of an upstream answer (get(name)), through upstreamHeaders when it knows the answer.
  const headersOf = (response) => upstreamHeaders?.(response) ?? response.headers;
  let config = configOf(options);
  const lanes = new GrantLanes({ share: grantShare });
  const auditKey = options.auditKey ?? (sessionKey === undefined ? undefined : `toolgate audit key\n${sessionKey}`);
  const gate = new Gate({
    counters, approvals, audit, failOpen, clock, auditArguments, log, hmac, auditKey, sha256Hex: sha256?.hex,
    maxPendingApprovalsPerGrant, maxApprovalArgumentBytes, onWork: (grant, ms) => lanes.charge(grant, ms), observer, tracer,
  });
  const approvalRoutes = createApprovalRoutes({ approvals, adminTokenSha256, clock, log, isAdmin: oauth?.config.admin ? (request) => oauth.isAdmin(bearerToken(request)) : undefined });
  const approvalBase = publicUrl === undefined ? '' : publicUrl.replace(/\/+$/, '');
  // The link an approval_required answer carries (one function for every request).
  const approvalUrl = approvals && adminTokenSha256 ? (id) => `${approvalBase}/approvals#${id}` : undefined;
  // POSTs of each grant being read and decided now (see maxConcurrentPerGrant).
  const inFlight = new Map();
  // Request ids in flight per upstream session (server + the server's session id).
  const sessionIds = new Map();
  // The body's and the upstream answer's deadlines (see sharedTimers).
  const Deadlines = sharedTimers ? DeadlineQueue : PerCallDeadlines;
  const bodyDeadlines = new Deadlines(bodyTimeoutMs);
  const upstreamDeadlines = new Deadlines(upstreamTimeoutMs);
  const upstreamTimeoutMessage = `no answer within ${upstreamTimeoutMs} ms`;
  // Made once: what an upstream deadline does to its request's controller.
  const abortOnTimeout = (controller) => controller.abort(new Error(upstreamTimeoutMessage));

  // context: { remoteAddress, waitUntil (Workers), client (a Client, below:
  // the host's own word on the client leaving; else the request's signal) }.
  async function handle(request, context = {}) {
    const url = requestUrl(request.url);
    const path = url.path;
    try {
      const refused = hostCheck?.(request);
      if (refused) {
        log('warn', 'a request for a host or origin this proxy does not serve was refused', { host: request.headers.get('host'), origin: request.headers.get('origin') });
        return refused;
      }
      if (path === '/mcp' || path.startsWith('/mcp/')) return await handleMcp(request, context, url, path);
      if (path === '/approvals' || path.startsWith('/approvals/')) return await approvalRoutes(request, path);
      if (path === '/healthz') return await health(request);
      if (path === '/metrics' && metrics) return await metricsPage(request);
      if (oauth?.servesMetadata(path) && (request.method === 'GET' || request.method === 'HEAD')) {
        const metadata = oauth.metadata(path);
        return metadata ? json(200, metadata, { 'cache-control': 'max-age=300' }) : json(404, { error: 'no protected resource is described at this path' });
      }
      return json(404, { error: `nothing at ${path}: MCP clients connect to /mcp or /mcp/<server>` });
    } catch (error) {
      log('error', 'request failed', { path, error: String(error?.stack ?? error) });
      return json(500, errorMessage(null, JsonRpcError.INTERNAL, 'toolgate failed on this request; nothing was forwarded.'));
    }
  }

  // Liveness for anyone; which servers and policies run, for the admin only.
  async function health(request) {
    if (!adminTokenSha256 || !(await tokenMatches(bearerToken(request), adminTokenSha256))) return json(200, { ok: true });
    return json(200, { ok: true, servers: Object.fromEntries(Object.entries(config.servers).map(([name, s]) => [name, { policy_hash: s.policy.hash }])) });
  }

  // Prometheus text (./metrics.js), for the admin token only: the numbers
  // name servers, tools and grants' traffic.
  async function metricsPage(request) {
    if (!adminTokenSha256 || !(await tokenMatches(bearerToken(request), adminTokenSha256))) {
      return json(401, { error: 'metrics need the admin token: Authorization: Bearer <admin token>' }, { 'www-authenticate': 'Bearer realm="toolgate"' });
    }
    return new Response(await metrics.text(), { status: 200, headers: { 'content-type': metrics.contentType } });
  }

  async function handleMcp(request, context, url, path) {
    const name = path === '/mcp' ? 'default' : safeDecode(path.slice('/mcp/'.length));
    const server = name !== null && Object.hasOwn(config.servers, name) ? config.servers[name] : undefined;
    if (!server) {
      // Which servers exist is not told to whoever asks.
      return json(404, errorMessage(null, JsonRpcError.INVALID_REQUEST, 'No MCP server is served at this path.'));
    }
    let authenticated = authenticate(request, context, name, url);
    if (authenticated instanceof Promise) authenticated = await authenticated;
    if (authenticated.refused) return authenticated.refused;
    const { grant } = authenticated;
    // A grant's own policy is a static grant's: an access token whose subject
    // happens to equal a static grant's id never gets that grant's policy.
    const policy = (grant.oauth ? undefined : config.grantPolicies?.get(grant.id)?.get(name)) ?? server.policy;
    // The server's own session id, taken out of the bound one the client holds.
    let session = request.headers.get('mcp-session-id') ?? undefined;
    if (session !== undefined && sessions) {
      session = await sessions.unwrap(session, { grant: grant.id, server: name });
      if (session === null) {
        log('warn', 'a session id this grant did not open; nothing was forwarded', { grant: grant.id, server: name });
        return json(404, errorMessage(null, JsonRpcError.SESSION_NOT_FOUND, 'Session not found: this Mcp-Session-Id was not opened by this grant on this server. Start a new session (initialize).'));
      }
    }
    const scope = {
      grant, server: name, policy, session, monitor: server.monitor === true, pins: server.pins,
      // With pins, a call to a tool whose current definition toolgate has not
      // seen makes toolgate list the tools itself, in this session (./pins.js):
      // the gate calls refreshTools(scope), which asks the upstream with this
      // request's headers. One function for every request, not a closure per
      // request over its scope: that closure made every request's objects
      // outlive V8's young-generation collections under load (bench/README.md,
      // "Pins: what made them cost").
      refreshTools: server.pins ? refreshScopeTools : undefined, request: server.pins ? request : undefined, serverConfig: server.pins ? server : undefined,
      traceparent: request.headers.get('traceparent') ?? undefined, tracestate: cleanTracestate(request.headers.get('tracestate')) ?? undefined,
      waitUntil: context.waitUntil, client: context.client ?? signalClient(request),
      clientLeft: scopeClientLeft,
      approvalUrl,
    };
    switch (request.method) {
      case 'POST':
        return post(request, server, scope);
      case 'GET':
      case 'DELETE':
        return relay(request, server, scope);
      default:
        return json(405, errorMessage(null, JsonRpcError.INVALID_REQUEST, `Method ${request.method} is not part of MCP's Streamable HTTP transport.`), { allow: 'GET, POST, DELETE' });
    }
  }

  // One grant's POSTs being read, parsed and decided: at most
  // maxConcurrentPerGrant at a time (more get 429), and their CPU work one at
  // a time in the grant's lane (./grant-lanes.js), so that a grant flooding
  // the proxy cannot take the event loop from the others.
  // takeSlot says whether the grant got a slot; each slot taken is given
  // back by exactly one freeSlot (post's finally).
  function takeSlot(grant) {
    const running = inFlight.get(grant.id) ?? 0;
    if (running >= maxConcurrentPerGrant) return false;
    inFlight.set(grant.id, running + 1);
    return true;
  }

  function freeSlot(grant) {
    const left = inFlight.get(grant.id) - 1;
    if (left === 0) inFlight.delete(grant.id);
    else inFlight.set(grant.id, left);
  }

  // { grant } or { refused: Response }. Static grants first (a hash lookup);
  // then, with OAuth, the token as an access token. With OAuth there is no
  // anonymous loopback grant. Without OAuth, answered at once when the
  // token's hash is (node:crypto's): no promise per request.
  function authenticate(request, context, name, url) {
    if (oauth) return authenticateOAuth(request, name, url);
    const grant = config.grants ? config.grants.find(bearerToken(request), sha256?.bytes) : isLoopback(context.remoteAddress) ? ANONYMOUS_GRANT : null;
    return grant instanceof Promise ? grant.then(staticGrant) : staticGrant(grant);
  }

  function staticGrant(grant) {
    if (grant) return { grant };
    return { refused: json(401, errorMessage(null, JsonRpcError.INVALID_REQUEST, config.grants
      ? 'Unauthorized: send the grant\'s token as "Authorization: Bearer <token>".'
      : 'Unauthorized: without a grants file toolgate serves loopback clients only.'),
    { 'www-authenticate': 'Bearer realm="toolgate"' }) };
  }

  async function authenticateOAuth(request, name, url) {
    const token = bearerToken(request);
    const { queryToken } = url;
    let grant = !queryToken && config.grants ? config.grants.find(token, sha256?.bytes) : null;
    if (grant instanceof Promise) grant = await grant;
    if (grant) return { grant };
    const answer = await oauth.authenticate(token, name, { queryToken });
    if (answer.grant) return answer;
    return { refused: json(answer.status, { ...errorMessage(null, JsonRpcError.INVALID_REQUEST, `${answer.status === 403 ? 'Forbidden' : answer.status === 503 ? 'Unavailable' : 'Unauthorized'}: ${answer.description}.`), ...(answer.error ? { error: answer.error, error_description: answer.description } : {}) }, answer.headers) };
  }

  async function post(request, server, scope) {
    const typeProblem = jsonContentTypeProblem(request.headers.get('content-type'));
    if (typeProblem) return json(415, errorMessage(null, JsonRpcError.INVALID_REQUEST, `${typeProblem} Nothing was forwarded.`));
    const encoding = request.headers.get('content-encoding');
    if (encoding !== null && !/^\s*identity\s*$/i.test(encoding)) {
      return json(415, errorMessage(null, JsonRpcError.INVALID_REQUEST, 'Content-Encoding is not supported on requests: send the JSON body as it is. Nothing was forwarded.'));
    }
    if (!takeSlot(scope.grant)) {
      return json(429, errorMessage(null, JsonRpcError.INVALID_REQUEST, `Too many requests: this grant already has ${maxConcurrentPerGrant} requests being read and decided; retry when they are answered. Nothing was forwarded.`), { 'retry-after': '1' });
    }
    const ids = claimsFor(scope);
    let admitted;
    try {
      // The scope is this request's own: the gate reads its claimId.
      scope.claimId = ids.claim;
      admitted = await readAndAdmit(request, scope);
    } finally {
      freeSlot(scope.grant);
    }
    if (admitted.response || admitted.forward.length === 0) ids.release();
    if (admitted.response) return admitted.response;
    const { batch, forward, answers, exchanges } = admitted;
    if (forward.length === 0) return json(200, batch ? answers : answers[0]);
    // One call forwarded: the header carries its span (as its _meta does).
    if (exchanges.size === 1) scope.upstreamTraceparent = exchanges.values().next().value.traceparent ?? undefined;
    // The session's ids stay claimed until the answer is through: at once for
    // a JSON answer or a failure, at the end of an event stream.
    const relay = { batch, forward, answers, exchanges, releaseIds: ids.release, streaming: false };
    try {
      return await relayAdmitted(request, server, scope, relay);
    } finally {
      if (!relay.streaming) {
        ids.release();
        // Done with this request: a call whose answer did not come (or a path
        // that threw) ends here, so that each exchange settles exactly once.
        endAll(exchanges);
      }
    }
  }

  // The ids a POST claims in its upstream session, given back once its answer
  // has been relayed (or has failed). Without a session there is nothing to
  // share ids with: a stateless server handles each request on its own.
  function claimsFor(scope) {
    if (scope.session === undefined) return NO_CLAIMS;
    const sessionKey = `${scope.server}\u0000${scope.session}`;
    const claimed = [];
    return {
      claim(id) {
        let held = sessionIds.get(sessionKey);
        if (!held) sessionIds.set(sessionKey, held = new Set());
        if (held.has(id)) return false;
        held.add(id);
        claimed.push(id);
        return true;
      },
      release() {
        const held = sessionIds.get(sessionKey);
        if (!held) return;
        for (const id of claimed.splice(0)) held.delete(id);
        if (held.size === 0) sessionIds.delete(sessionKey);
      },
    };
  }

  // Sends the admitted messages upstream and relays the answer.
  // What happens to the calls is reported to their exchanges (./exchange.js),
  // which alone decide whether their quota is kept or given back.
  async function relayAdmitted(request, server, scope, relay) {
    const { batch, forward, answers, exchanges } = relay;
    // What goes upstream is the parsed body written again, as UTF-8 JSON
    // labelled by toolgate: the server receives exactly the messages that
    // were decided on.
    // Taken before the request goes: a tools/list answer to it that comes
    // after a list_changed (on the GET stream) may predate the change.
    const pinEpoch = scope.pins ? gate.pinEpoch(scope.server, scope.session) : undefined;
    const text = JSON.stringify(batch ? forward : forward[0]);
    // From here on the server may receive the calls.
    sentAll(exchanges);
    const upstream = await callUpstream(server, request, text, scope);
    if (upstream.error) {
      // The connection never made (unreachable) proves the server did not get
      // the calls; a timeout or a reset after sending does not.
      const { status } = upstream;
      if (status === 'client_left') report(exchanges, (exchange) => exchange.clientLeft({ status }));
      else report(exchanges, (exchange) => exchange.failed(status === 'unreachable' ? Failure.UNREACHABLE : Failure.UPSTREAM, { status }));
      const failures = forward.filter((m) => 'method' in m && 'id' in m).map((m) => errorMessage(m.id, JsonRpcError.INTERNAL, upstream.error));
      const all = [...answers, ...failures];
      // Notifications and responses get no JSON-RPC answer; the status says it failed.
      return json(502, batch && all.length > 0 ? all : (all[0] ?? errorMessage(null, JsonRpcError.INTERNAL, upstream.error)));
    }
    const response = upstream.response;
    const fields = headersOf(response);
    const type = fields.get('content-type') ?? '';
    if (!response.ok) {
      // A 4xx: the server refused the whole request (an expired session, its
      // own auth) before running anything. A 5xx may come after a tool ran
      // (or from a gateway in front of it).
      const refused = response.status >= 400 && response.status < 500;
      report(exchanges, (exchange) => exchange.failed(refused ? Failure.REFUSED : Failure.UPSTREAM, { status: response.status }));
      if (!isJsonOrEventStream(type)) return notStreamableHttp(response, type);
      return passThrough(response, scope);
    }
    const answer = bodyOf(response);
    if (response.status === 202 || answer.empty) {
      report(exchanges, (exchange) => exchange.ended(Outcome.NO_ANSWER, { status: response.status }));
      return answers.length > 0 ? json(200, batch ? answers : answers[0]) : passThrough(response, scope);
    }
    const inspectOptions = { server: scope.server, policy: scope.policy, exchanges, status: response.status, pins: scope.pins, session: scope.session, monitor: scope.monitor, pinEpoch };
    const inspect = (message) => gate.inspect(message, inspectOptions);
    if (/^text\/event-stream/i.test(type)) {
      // Headers first: once the stream exists, only its end settles the calls.
      const headers = await clientHeaders(response, scope);
      const stream = transformEventStream(response.body, {
        prefix: answers,
        onMessage: inspect,
        // The stream ends, breaks, or loses its client: calls not answered on it are told so.
        onEnd: (reason) => {
          const status = response.status;
          if (scope.clientLeft()) report(exchanges, (exchange) => exchange.clientLeft({ status }));
          else report(exchanges, (exchange) => exchange.ended(STREAM_END[reason], { status }));
          relay.releaseIds();
        },
      });
      relay.streaming = true;
      return new Response(stream, { status: response.status, headers });
    }
    if (/^application\/json/i.test(type)) {
      const needsReading = exchanges.size > 0 || answers.length > 0 || forward.some((m) => m.method === 'tools/list');
      if (!needsReading) return passThrough(response, scope);
      return mergeJson(response, answer, { batch, answers, exchanges, inspect, scope, type });
    }
    // The server took the request (2xx) but answered in a form this proxy
    // does not relay.
    report(exchanges, (exchange) => exchange.failed(Failure.INVALID_RESPONSE, { status: response.status }));
    answer.cancel();
    return notStreamableHttp(response, type);
  }

  // The request's body, read (outside the grant's lane: that is waiting, not
  // work) and then decided in the grant's lane. { response } when it is
  // refused here; else the gate's admission and whether it was a batch.
  async function readAndAdmit(request, scope) {
    const bytes = await readBody(request, maxBodyBytes, bodyDeadlines);
    if (bytes === TIMED_OUT) {
      return { response: json(408, errorMessage(null, JsonRpcError.INVALID_REQUEST, `The request body did not arrive within ${bodyTimeoutMs} ms; nothing was forwarded.`), { connection: 'close' }) };
    }
    if (bytes === null) {
      return { response: json(413, errorMessage(null, JsonRpcError.INVALID_REQUEST, `The request body exceeds ${maxBodyBytes} bytes; nothing was forwarded.`)) };
    }
    const leaveLane = lanes.tryEnter(scope.grant.id) ?? await lanes.enter(scope.grant.id);
    try {
      return await decideBody(bytes, scope);
    } finally {
      leaveLane();
    }
  }

  async function decideBody(bytes, scope) {
    // What stdio checks too (./gate.js readMessages, through ./body-read.js), then the
    // gate. parseBody may answer later (Node: large bodies on a worker thread).
    let read = parseBody(bytes, { maxBatchSize, grant: scope.grant.id, auditKey });
    if (read instanceof Promise) read = await read;
    if (read.refused) return { response: json(read.status ?? 400, read.refused) };
    const admission = await gate.admit(read.messages, scope);
    if (admission.refused) return { response: json(400, admission.refused) };
    return { batch: read.batch, ...admission };
  }

  // An answer that is neither JSON nor an event stream: most often an HTML
  // page, from a server that speaks MCP's older HTTP+SSE transport (or a
  // URL that is not an MCP endpoint). The client gets a JSON-RPC error that
  // says so, not the page.
  function notStreamableHttp(response, type) {
    response.body?.cancel().catch(() => {});
    const hint = response.status === 404 || response.status === 405 || /^text\/html/i.test(type)
      ? ' It may be an older HTTP+SSE server (MCP 2024-11-05), which toolgate does not proxy, or not an MCP endpoint: point the upstream at the server\'s Streamable HTTP endpoint (often /mcp).'
      : '';
    log('warn', 'the upstream answered in neither JSON nor an event stream', { status: response.status, content_type: type });
    return json(502, errorMessage(null, JsonRpcError.INTERNAL, `The upstream server answered HTTP ${response.status} with Content-Type ${JSON.stringify(type)}, not MCP's Streamable HTTP (JSON or an event stream).${hint}`));
  }

  // A JSON answer is one value; to drop hidden tools from it, or to add this
  // proxy's own answers to a batch, it is read whole (up to maxResponseBytes).
  // type: the answer's Content-Type, as read.
  async function mergeJson(response, answer, { batch, answers, exchanges, inspect, scope, type }) {
    const bytes = await answer.read(maxResponseBytes).catch(() => undefined);
    let parsed;
    // The text as toolgate read it, when the bytes are strict UTF-8 without a
    // byte order mark (so the text is exactly what the bytes say); else null.
    let exactText = null;
    try {
      if (bytes) {
        exactText = readExactly(bytes);
        parsed = JSON.parse(exactText ?? utf8.decode(bytes));
      }
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed === null || typeof parsed !== 'object') {
      // The server has the calls and began to answer; then the client left,
      // or the answer broke.
      const status = response.status;
      if (scope.clientLeft()) report(exchanges, (exchange) => exchange.clientLeft({ status }));
      else report(exchanges, (exchange) => exchange.failed(Failure.INVALID_RESPONSE, { status }));
      const reason = bytes === null ? `over ${maxResponseBytes} bytes` : bytes === undefined ? 'cut off' : 'not JSON';
      return json(502, errorMessage(null, JsonRpcError.INTERNAL, `The upstream server's answer was ${reason}.`));
    }
    const messages = Array.isArray(parsed) ? parsed.map(inspect) : [inspect(parsed)];
    // Calls the answer left unanswered (the server took them).
    endAll(exchanges, response.status);
    const all = answers.length === 0 ? messages : [...answers, ...messages];
    let headers = clientHeaders(response, scope);
    if (headers instanceof Promise) headers = await headers;
    // The server's own bytes go on when the client reads in them exactly the
    // value toolgate inspected (answerPassesAsIs): nothing of toolgate's to
    // add, nothing removed, and no reading of them that could differ from
    // toolgate's. Otherwise the value toolgate read is written again.
    const body = answers.length === 0 && answerPassesAsIs(exactText, parsed, messages, batch, type)
      ? bytes : JSON.stringify(batch || all.length > 1 ? all : all[0]);
    return new Response(body, { status: 200, headers });
  }

  // GET opens the server's event stream; DELETE ends a session. Neither
  // carries calls, but a GET stream may carry tools/list results (a resumed
  // stream), so its events are inspected too.
  async function relay(request, server, scope) {
    const upstream = await callUpstream(server, request, undefined, scope);
    if (upstream.error) return json(502, errorMessage(null, JsonRpcError.INTERNAL, upstream.error));
    const response = upstream.response;
    const type = headersOf(response).get('content-type') ?? '';
    if (response.ok && /^text\/event-stream/i.test(type) && response.body) {
      const stream = transformEventStream(response.body, { onMessage: (message) => gate.inspect(message, { server: scope.server, policy: scope.policy, pins: scope.pins, session: scope.session, monitor: scope.monitor }) });
      return new Response(stream, { status: response.status, headers: await clientHeaders(response, scope) });
    }
    // A GET or DELETE answer that is neither (a 405 "no stream here") passes
    // as JSON or without a body; anything else is not relayed as it is.
    if (response.body && type !== '' && !isJsonOrEventStream(type)) return notStreamableHttp(response, type);
    return passThrough(response, scope);
  }

  // The headers the client gets: the forwarded ones, with the server's session
  // id bound to this grant and server.
  // The headers, or a promise of them when a session id must be bound (the
  // common answer, without a session, takes no promise).
  function clientHeaders(response, scope) {
    const headers = responseHeaders(headersOf(response));
    const session = headers['mcp-session-id'];
    if (sessions && session !== undefined) return bindSession(headers, session, scope);
    return headers;
  }

  async function bindSession(headers, session, scope) {
    headers['mcp-session-id'] = await sessions.wrap(session, { grant: scope.grant.id, server: scope.server });
    return headers;
  }

  // A pinned server's tools/list, asked by toolgate in the request's session
  // (scope.refreshTools, called by the gate with the scope).
  function refreshScopeTools(scope) {
    return listToolsThrough((message) => askUpstream(scope.request, scope.serverConfig, scope, message));
  }

  // One request of toolgate's own to the server, in the client's session (its
  // headers), and the server's answer to it, from JSON or an event stream.
  async function askUpstream(request, server, scope, message) {
    const upstream = await callUpstream(server, request, JSON.stringify(message), scope);
    if (upstream.error) throw new Error(upstream.error);
    const { response } = upstream;
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`the server answered HTTP ${response.status}`);
    }
    const stream = /^text\/event-stream/i.test(headersOf(response).get('content-type') ?? '');
    // Read until the answer is there (an event stream may stay open after
    // it), at most MAX_OWN_ANSWER_BYTES; then the body is let go.
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (value) text += decoder.decode(value, { stream: true });
        if (text.length > MAX_OWN_ANSWER_BYTES) throw new Error(`the server's answer exceeds ${MAX_OWN_ANSWER_BYTES} bytes`);
        if (stream) {
          const found = eventStreamMessages(text).find((m) => m !== null && typeof m === 'object' && m.id === message.id);
          if (found) return found;
        }
        if (done) break;
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    if (stream) return undefined;
    return [JSON.parse(text)].flat().find((m) => m !== null && typeof m === 'object' && m.id === message.id);
  }

  async function passThrough(response, scope) {
    return new Response(response.body, { status: response.status, headers: await clientHeaders(response, scope) });
  }

  async function callUpstream(server, request, body, scope) {
    // A plain object: fetch takes one, and it costs less than Headers.
    const headers = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    // The body is toolgate's own JSON text, so toolgate labels it.
    if (body !== undefined) headers['content-type'] = 'application/json';
    // The server's own session id (the client holds the bound one).
    if (scope.session !== undefined) headers['mcp-session-id'] = scope.session;
    // W3C trace context: a valid client traceparent (or toolgate's span for
    // the one call forwarded) goes upstream; an invalid one is dropped. The
    // scope holds the request's header as read once (handleMcp).
    const clientParent = scope.traceparent === undefined ? null : parseTraceparent(scope.traceparent);
    const traceparent = scope.upstreamTraceparent ?? (clientParent ? formatTraceparent(clientParent) : null);
    if (traceparent) {
      headers.traceparent = traceparent;
      if (scope.tracestate) headers.tracestate = scope.tracestate;
    }
    for (const [name, value] of configuredHeaders(server)) headers[name] = value;
    // Headers arrive within upstreamTimeoutMs or the call fails; a stream that
    // has started may then run as long as it needs. One controller aborts the
    // upstream request for both reasons: the timeout, and the client leaving
    // (linked by a listener, not AbortSignal.any, which costs a hundred
    // microseconds and more per call on Node 20). A transport that takes a
    // plain signal (Node's) gets one: on Node 20 an AbortController costs
    // several microseconds, the request's own signal as much again.
    const upstreamAbort = fetchUpstream.plainSignal === true ? new PlainAbort() : new AbortController();
    const deadline = upstreamDeadlines.add(abortOnTimeout, upstreamAbort);
    const { client } = scope;
    client.onLeave(abortWithReason, upstreamAbort);
    const started = observer ? performance.now() : 0;
    try {
      const response = await fetchUpstream(server.upstream, { method: request.method, headers, body, signal: upstreamAbort.signal, redirect: 'manual' });
      observer?.upstream({ server: scope.server, status: response.status, ms: performance.now() - started });
      return { response };
    } catch (error) {
      const code = error?.cause?.code;
      const status = client.left ? 'client_left' : deadline.fired ? 'timeout' : NOT_SENT.has(code) ? 'unreachable' : 'failed';
      const cause = status === 'timeout' ? upstreamTimeoutMessage : status === 'client_left' ? 'the client went away' : (code ?? error?.message ?? String(error));
      if (status !== 'client_left') log('warn', 'upstream request failed', { upstream: server.upstream, error: cause });
      observer?.upstream({ server: scope.server, status, ms: performance.now() - started });
      return { error: `The upstream MCP server did not answer (${cause}); the request was not completed.`, status };
    } finally {
      upstreamDeadlines.cancel(deadline);
    }
  }

  return {
    fetch: handle,
    /** Swaps servers, policies and grants (reload); counters are kept in their store. */
    update(next) {
      config = configOf({ ...config, ...next });
    },
    get config() {
      return config;
    },
  };
}

function configOf({ servers, grants = null, grantPolicies = new Map() }) {
  if (!servers || Object.keys(servers).length === 0) throw new Error('the proxy needs at least one upstream server');
  for (const [name, server] of Object.entries(servers)) {
    if (!server?.upstream || !server?.policy) throw new Error(`server "${name}" needs an upstream URL and a policy`);
    // Every configured header is checked now: a value that cannot be sent
    // (a line break in a secret) fails the configuration, not each call.
    configuredHeaders(server, name);
  }
  for (const [grant, policies] of grantPolicies) {
    if (!(policies instanceof Map)) throw new Error(`the policies of grant "${grant}" must be a Map from server name to policy`);
    for (const name of policies.keys()) {
      if (!Object.hasOwn(servers, name)) throw new Error(`grant "${grant}" has a policy for server "${name}", which is not configured`);
    }
  }
  return { servers, grants, grantPolicies };
}

// A request outside a session claims no ids.
const NO_CLAIMS = Object.freeze({ claim: undefined, release() {} });

// Reports an event to each exchange of a request (./exchange.js ignores it
// for those already settled).
function report(exchanges, event) {
  for (const exchange of exchanges.values()) event(exchange);
}

// The two reports every forwarded call makes, without a closure per call:
// the calls went upstream; the request is done (calls not answered by then,
// with the upstream's status when there was one).
function sentAll(exchanges) {
  for (const exchange of exchanges.values()) exchange.sent();
}

function endAll(exchanges, status) {
  for (const exchange of exchanges.values()) exchange.ended(Outcome.NO_ANSWER, status === undefined ? undefined : { status });
}

// What the client leaving does to the upstream request (Client.onLeave).
const abortWithReason = (controller, reason) => controller.abort(reason);

// scope.clientLeft, called as a method of the request's scope.
function scopeClientLeft() {
  return this.client.left;
}

// How an upstream event stream ended (./sse.js onEnd) as an exchange's Outcome.
const STREAM_END = Object.freeze({ end: Outcome.STREAM_ENDED, error: Outcome.STREAM_BROKEN, cancel: Outcome.STREAM_CANCELLED });

const isJsonOrEventStream = (type) => /^(application\/json|text\/event-stream)\s*(;|$)/i.test(type);

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

export function isLoopback(address) {
  if (typeof address !== 'string') return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain === '::1' || /^127\.\d+\.\d+\.\d+$/.test(plain);
}

// Connection errors that happen before a request is sent: the server cannot
// have received the call.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

const TIMED_OUT = Symbol('timed out');

// The request body, or null when it is longer than `limit`, or TIMED_OUT when
// it has not arrived by its deadline (`deadlines`, ./deadlines.js: a client
// trickling a body would hold its slot forever). A declared Content-Length
// within the limit takes arrayBuffer(), which Node's adapter serves without
// building a web stream; otherwise the body is read as a stream and cut off
// at the limit.
async function readBody(request, limit, deadlines) {
  const header = request.headers.get('content-length');
  const declared = Number(header);
  // arrayBuffer() when the length is declared: an ArrayBuffer, checked
  // against the limit once read; else readLimited's bytes or null.
  const whole = header !== null && Number.isSafeInteger(declared) && declared >= 0;
  if (whole && declared > limit) return null;
  const reading = whole ? request.arrayBuffer() : readLimited(request.body, limit);
  // One promise settled by the read or by the deadline, whichever comes
  // first (not a timeout promise and Promise.race: fewer promises per call).
  let deadline;
  try {
    const read = await new Promise((resolve, reject) => {
      deadline = deadlines.add(resolveTimedOut, resolve);
      reading.then(resolve, reject);
    });
    if (read === TIMED_OUT) {
      request.body?.cancel().catch(() => {});
      return TIMED_OUT;
    }
    if (!whole) return read;
    return read.byteLength > limit ? null : new Uint8Array(read);
  } finally {
    deadlines.cancel(deadline);
  }
}
const resolveTimedOut = (resolve) => resolve(TIMED_OUT);

/** The body's bytes, or null when it is longer than `limit`. */
async function readLimited(body, limit) {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks = [];
  let length = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > limit) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

// As a plain object: Response takes one, and @hono/node-server writes it
// without going through Headers again. `fields`: the answer's headers (get(name)).
function responseHeaders(fields) {
  const headers = {};
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = fields.get(name);
    if (value !== null) headers[name] = value;
  }
  return headers;
}

// A server's configured upstream headers as [lowercase name, value] pairs,
// checked by Headers once per configuration (an invalid one throws, as
// Headers.set did on every request).
const checkedHeaders = new WeakMap();
function configuredHeaders(server, name = 'upstream') {
  let pairs = checkedHeaders.get(server);
  if (!pairs) {
    const headers = new Headers();
    for (const [header, value] of Object.entries(server.headers ?? {})) {
      try {
        // Headers would quietly trim a line break at either end; any is a mistake.
        if (typeof value !== 'string' || /[\r\n\0]/.test(value)) throw new TypeError('bad value');
        headers.set(header, value);
      } catch {
        throw new Error(`server "${name}": the upstream header ${JSON.stringify(header)} cannot be sent (a name or value with line breaks or other characters HTTP forbids)`);
      }
    }
    pairs = [...headers];
    checkedHeaders.set(server, pairs);
  }
  return pairs;
}

/** An UpstreamBody over a Response's web stream. */
function webBody(response) {
  return {
    empty: response.body === null,
    read: (limit) => readLimited(response.body, limit),
    cancel: () => {
      response.body?.cancel().catch(() => {});
    },
  };
}

// The request URL's path (trailing slashes dropped) and whether its query
// has an access_token, by URL text: a proxy sees the same few URLs again and
// again, and WHATWG URL parsing is a microsecond or more each time. At most
// URL_MEMO_SIZE URLs of at most URL_MEMO_LENGTH characters are kept (then
// the memo starts over), so varied or long URLs cost what they cost before
// and at most a few hundred kilobytes.
const URL_MEMO_SIZE = 256;
const URL_MEMO_LENGTH = 1024;
const urlMemo = new Map();
function requestUrl(text) {
  let url = urlMemo.get(text);
  if (url === undefined) {
    const parsed = new URL(text);
    url = Object.freeze({ path: parsed.pathname.replace(/\/+$/, '') || '/', queryToken: parsed.searchParams.has('access_token') });
    if (text.length <= URL_MEMO_LENGTH) {
      if (urlMemo.size >= URL_MEMO_SIZE) urlMemo.clear();
      urlMemo.set(text, url);
    }
  }
  return url;
}

/**
 * The client of a request, as the handler asks about it: `left` (it went
 * away before its answer was complete), `reason`, and `onLeave(fn, target)` (fn(target, reason) runs
 * once when it leaves, at once if it has). Hosts may pass their own as
 * `context.client` (Node's, ./node.js, listens to the response's 'close'
 * without making the request's AbortSignal); otherwise the request's signal
 * says it.
 * @typedef {{ readonly left: boolean, readonly reason: unknown, onLeave<T>(fn: (target: T, reason: unknown) => void, target?: T): void }} Client
 */
function signalClient(request) {
  return {
    get left() {
      return request.signal?.aborted === true;
    },
    get reason() {
      return request.signal?.reason;
    },
    onLeave(fn, target) {
      const signal = request.signal;
      if (!signal) return;
      if (signal.aborted) fn(target, signal.reason);
      else signal.addEventListener('abort', () => fn(target, signal.reason), { once: true });
    },
  };
}

/**
 * An AbortController whose `signal` is itself: what a transport marked
 * `plainSignal` (./node-transport.js) reads of a signal (`aborted`, `reason`,
 * add/removeEventListener of 'abort'), without an EventTarget.
 */
export class PlainAbort {
  aborted = false;
  reason = undefined;
  // The one listener a call has (the transport's), or an array of several, or
  // null: no array per call for the one.
  #listeners = null;

  get signal() {
    return this;
  }

  abort(reason = new DOMException('This operation was aborted', 'AbortError')) {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = null;
    if (listeners === null) return;
    const event = { type: 'abort', target: this };
    if (typeof listeners === 'function') listeners.call(this, event);
    else for (const listener of listeners) listener.call(this, event);
  }

  addEventListener(type, listener) {
    if (type !== 'abort' || typeof listener !== 'function' || this.aborted) return;
    const listeners = this.#listeners;
    if (listeners === null) this.#listeners = listener;
    else if (typeof listeners === 'function') {
      if (listeners !== listener) this.#listeners = [listeners, listener];
    } else if (!listeners.includes(listener)) listeners.push(listener);
  }

  removeEventListener(type, listener) {
    const listeners = this.#listeners;
    if (type !== 'abort' || listeners === null) return;
    if (listeners === listener) {
      this.#listeners = null;
      return;
    }
    if (typeof listeners === 'function') return;
    const at = listeners.indexOf(listener);
    if (at >= 0) listeners.splice(at, 1);
  }
}

const utf8 = new TextDecoder();
// The bytes as text when they are strict UTF-8 and do not start with a byte
// order mark (the text then says exactly what the bytes do, for any reader:
// a decoder drops a leading mark, a JSON reader may refuse it); else null.
function readExactly(bytes) {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return null;
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Whether an upstream JSON answer may be sent to the client as the server's
 * own bytes: only when any JSON reader takes from those bytes exactly the
 * value toolgate inspected and would otherwise write again.
 * - `exactText` (not null): strict UTF-8 with no byte order mark, so the text
 *   toolgate parsed is what the bytes say;
 * - labelled application/json with no charset or UTF-8 (a client honouring
 *   another charset would read other characters);
 * - no duplicate object key and no nesting past 256 (./json-check.js): with a
 *   duplicate, readers that keep the first key would see another id, result
 *   or error than JSON.parse (which keeps the last) showed toolgate;
 * - inspecting changed nothing (every message returned as it came: no
 *   hidden tool removed), and the shape is the one toolgate would write (an
 *   array for a batch or several answers, one object otherwise).
 * What may still differ from toolgate's own writing is spelling only:
 * whitespace, string escapes ("\u0041" for "A"), number forms ("1.0", "1e2").
 */
function answerPassesAsIs(exactText, parsed, messages, batch, contentType) {
  if (exactText === null || jsonContentTypeProblem(contentType) !== null) return false;
  if (Array.isArray(parsed)) {
    if (!(batch || parsed.length > 1)) return false;
    for (let i = 0; i < parsed.length; i += 1) if (messages[i] !== parsed[i]) return false;
  } else if (batch || messages[0] !== parsed) {
    return false;
  }
  return findJsonProblem(exactText) === null;
}


function defaultLog(level, message, fields) {
  console.error(JSON.stringify({ level, message, ...fields }));
}
