// The proxy's upstream transport on Node: fetch's signature, built on undici's
// dispatcher, the engine under Node's own fetch, without fetch's layers. One
// undici Agent holds a pool of kept-alive connections per upstream origin;
// each request is one `agent.dispatch()` with a handler of our own (`Call`
// below) that turns undici's callbacks into a web Response. Node's fetch
// costs about twice the CPU per proxied call of a kept-alive node:http
// request (web streams, AbortControllers and Request/Response copies made per
// call); this transport pays for none of them, so `toolgate serve` uses it by
// default (worker/node.js, option `transport: 'fetch'` to go back); Workers
// keep their global fetch.
//
//   const transport = createNodeTransport();
//   const response = await transport(url, { method, headers, body, signal });
//   await transport.close();   // ends the kept-alive connections
//
// What it does as fetch does, so that worker/handler.js needs no change:
// - resolves with a web Response once the headers are in; its body streams as
//   the server writes it (event streams pass event by event);
// - an aborted `signal` rejects with the signal's reason before the answer
//   (at once; a request still waiting for a connection is then never sent),
//   and errors the body after it; a connection with part of a request or of
//   an answer still on it is closed, never reused;
// - a failed connection rejects with a TypeError whose `cause` is undici's
//   error, so `error.cause.code` is ECONNREFUSED, ENOTFOUND, ... for a request
//   that was never sent, and UND_ERR_SOCKET, ECONNRESET, ... for one that may
//   have been. A connection not made within connectTimeoutMs fails with
//   UND_ERR_CONNECT_TIMEOUT (never sent either);
// - a server closing the connection in the middle of a body errors the body,
//   also a chunked body whose server said `Connection: close` (undici before
//   7.26, and so Node 20's own fetch, read that one as complete:
//   nodejs/undici#5307; package.json asks for undici ^7.30).
// undici never sends a request twice: a request is written to one connection
// once; one that was written and lost its connection fails (maybe sent), and
// only requests still waiting for a connection move to another. There are no
// retries (no RetryAgent), and one request at a time per connection
// (pipelining 1), so a broken connection can fail only the request on it.
// What it does not: follow redirects (the handler asks for redirect:
// 'manual'; a 3xx is returned as it is), cache, cookies, CORS. It asks for no
// compression (no Accept-Encoding: on loopback it only costs CPU) and
// decodes gzip, deflate and br bodies should a server send them anyway. There
// is no idle timeout on a body that has started (bodyTimeout 0: a long-lived
// event stream may stay quiet as long as it likes) and none on the headers
// (headersTimeout 0: the handler's upstreamTimeoutMs aborts instead).
//
// Cost: on Node 20 every web ReadableStream (and AbortSignal) is made
// "transferable" when created, tens of microseconds each. The Response this
// transport returns creates its `body` stream only when someone asks for it;
// `response.arrayBuffer()`, `text()`, `json()`, `bytes()` and `blob()` take
// the chunks as undici hands them over, and `upstreamBody(response)` (what
// worker/handler.js takes as its `upstreamBody` option) reads an answer
// whole, up to a limit, without a web stream either. Measured on the bench's
// typical tools/call against bench/proxy/upstream.js (2 shared cores, load
// 4-5, alternating rounds): this transport alone 49 µs of CPU per call where
// the node:http one it replaced took 100 (38 vs 89 with 10 at once); all of
// `toolgate serve`, 202-224 µs per call where it took 261-298.
import { isDisturbed } from 'node:stream';
import zlib from 'node:zlib';
import { Agent } from 'undici';

// Hop-by-hop and framing headers: the transport sets them itself. undici
// refuses some of them outright, and `expect` (it never waits for a 100).
const DROPPED_REQUEST_HEADERS = new Set(['connection', 'content-length', 'host', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'trailer', 'proxy-connection', 'expect']);
// Statuses whose Response must have a null body.
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
// An answer's bytes waiting for a reader, at most; beyond, the connection is
// paused until someone reads (as a node:http response's buffer would).
const UNREAD_BYTES = 64 * 1024;

/**
 * @param {object} [options]
 * @param {number} [options.maxSockets] connections per upstream origin at most; requests beyond wait for one (default 256)
 * @param {number} [options.keepAliveTimeoutMs] an idle connection is closed after this (default 4000, as undici);
 *   a server's shorter `Keep-Alive: timeout=N` wins (less undici's 2 s margin)
 * @param {number} [options.connectTimeoutMs] a connection not made in this time fails as never sent (default 10000, as undici)
 * @returns {((input: string | URL | Request, init?: RequestInit) => Promise<Response>) & {close(): Promise<void>, agent: Agent}}
 */
export function createNodeTransport({ maxSockets = 256, keepAliveTimeoutMs = 4000, connectTimeoutMs = 10_000 } = {}) {
  const agent = new Agent({
    connections: maxSockets,
    pipelining: 1,
    keepAliveTimeout: keepAliveTimeoutMs,
    keepAliveMaxTimeout: keepAliveTimeoutMs,
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: { timeout: connectTimeoutMs },
  });

  function transport(input, init = {}) {
    let url;
    let method;
    let headers;
    let body;
    let signal;
    if (typeof input === 'object' && input !== null && !(input instanceof URL) && typeof input.url === 'string') {
      // a Request
      url = input.url;
      method = init.method ?? input.method;
      headers = init.headers ?? input.headers;
      body = 'body' in init ? init.body : input.body;
      signal = init.signal ?? input.signal;
    } else {
      url = String(input);
      ({ method = 'GET', headers, body, signal } = init);
    }
    method = String(method).toUpperCase();
    return new Promise((resolve, reject) => send({ url, method, headers, body, signal }, resolve, reject));
  }

  // Where each URL goes, by URL: the proxy calls the same few URLs again and again.
  const targets = new Map();
  function targetOf(url) {
    let target = targets.get(url);
    if (!target) {
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`unsupported protocol ${parsed.protocol}`);
      // Credentials in the URL go as Basic authorization (as node:http did with them), unless the request has its own.
      const auth = parsed.username || parsed.password
        ? `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}`
        : null;
      parsed.username = '';
      parsed.password = '';
      target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}`, href: parsed.href, auth };
      if (targets.size >= 256) targets.clear();
      targets.set(url, target);
    }
    return target;
  }

  function send({ url, method, headers, body, signal }, resolve, reject) {
    let target;
    try {
      target = targetOf(url);
    } catch (error) {
      reject(new TypeError(`fetch failed: bad URL ${JSON.stringify(String(url))}`, { cause: error }));
      return;
    }
    if (signal?.aborted) {
      reject(signal.reason ?? abortError());
      return;
    }
    const outgoing = headersObject(headers);
    if (target.auth && !('authorization' in outgoing)) outgoing.authorization = target.auth;
    if (method === 'GET' || method === 'HEAD') body = null;
    let payload;
    try {
      payload = requestBody(body, outgoing);
    } catch (error) {
      reject(error);
      return;
    }
    const call = new Call({ method, url: target.href, signal, resolve, reject });
    // A request undici refuses (a header value it cannot send) reaches
    // call.onResponseError at once, and the promise rejects.
    agent.dispatch({ origin: target.origin, path: target.path, method, headers: outgoing, body: payload }, call);
  }

  transport.agent = agent;
  transport.upstreamBody = upstreamBody;
  transport.upstreamHeaders = upstreamHeaders;
  // `signal` may be any object with `aborted`, `reason` and
  // add/removeEventListener('abort', fn): nothing else of it is read, so
  // worker/handler.js passes its PlainAbort instead of an AbortSignal.
  transport.plainSignal = true;
  // Ends every connection now (a request in flight fails); resolves once they are closed.
  transport.close = () => agent.destroy();
  return transport;
}

function abortError() {
  return new DOMException('This operation was aborted', 'AbortError');
}

/**
 * Request headers (Headers, [name, value] pairs or a record) as an object of
 * lower-case names, without a prototype (a header named `constructor` or
 * `__proto__` is a header like any other).
 */
function headersObject(headers) {
  const out = Object.create(null);
  if (!headers) return out;
  if (typeof headers.forEach === 'function' && !Array.isArray(headers)) {
    headers.forEach((value, name) => addHeader(out, name, value));
  } else if (Array.isArray(headers) || typeof headers[Symbol.iterator] === 'function') {
    for (const [name, value] of headers) addHeader(out, name, value);
  } else {
    // A record (what the handler passes): no closure per request.
    for (const name of Object.keys(headers)) addHeader(out, name, headers[name]);
  }
  return out;
}

function addHeader(out, name, value) {
  const key = String(name).toLowerCase();
  if (DROPPED_REQUEST_HEADERS.has(key)) return;
  out[key] = key in out ? `${out[key]}, ${value}` : String(value);
}

/**
 * The body as undici takes it (a string or bytes: sent with a Content-Length;
 * an async iterable: sent chunked as it is produced), with fetch's
 * Content-Type for a string, form parameters or a typed Blob.
 */
function requestBody(body, headers) {
  if (body == null) return null;
  if (typeof body === 'string') {
    defaultType(headers, 'text/plain;charset=UTF-8');
    return body;
  }
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof URLSearchParams) {
    defaultType(headers, 'application/x-www-form-urlencoded;charset=UTF-8');
    return body.toString();
  }
  if (body instanceof Blob) {
    defaultType(headers, body.type);
    return body;
  }
  // A web ReadableStream, a Node stream or any async iterable.
  if (typeof body[Symbol.asyncIterator] === 'function') return body;
  throw new TypeError('fetch failed: unsupported body type');
}

// fetch's Content-Type for a body, unless the request has one.
function defaultType(headers, value) {
  if (value && !('content-type' in headers)) headers['content-type'] = value;
}

/**
 * One request, as undici's dispatch handler (the controller API: undici
 * calls onRequestStart when it writes the request to a connection, then
 * onResponseStart, onResponseData..., and onResponseEnd or onResponseError).
 * Settles the transport's promise once, and feeds the answer's body.
 */
class Call {
  #method;
  #url;
  #signal;
  #resolve;
  #reject;
  #settled = false; // the promise is resolved or rejected
  #done = false; // the signal is no longer listened to
  #controller = null; // undici's, once the request is on a connection
  #body = null; // an AnswerBody, once the headers are in (null for HEAD, 204, 304)
  #decoder = null; // a zlib stream between the connection and the body, for a compressed answer

  constructor({ method, url, signal, resolve, reject }) {
    this.#method = method;
    this.#url = url;
    this.#signal = signal ?? null;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal?.addEventListener('abort', this.#onAbort);
  }

  #onAbort = () => {
    const reason = this.#signal.reason ?? abortError();
    this.#fail(reason);
    // Closes the connection (undici destroys its socket): the request may be
    // half-written, or its answer half-read. A request still waiting for a
    // connection is dropped when it gets one (onRequestStart), unsent.
    this.#controller?.abort(reason);
  };

  #finish() {
    if (this.#done) return;
    this.#done = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  /** Rejects the promise, or errors the body once the promise is resolved. */
  #fail(error) {
    if (!this.#settled) {
      this.#settled = true;
      this.#finish();
      this.#reject(error);
      return;
    }
    this.#decoder?.destroy();
    this.#body?.fail(error);
  }

  // The body's link to the connection.
  resume() {
    if (this.#decoder) this.#decoder.resume();
    else this.#controller?.resume();
  }

  abort(reason) {
    this.#decoder?.destroy();
    this.#controller?.abort(reason);
  }

  bodyOver() {
    this.#finish();
  }

  onRequestStart(controller) {
    this.#controller = controller;
    // Aborted while it waited for a connection (the promise is rejected
    // already): undici is about to write it. Thrown here, the request is
    // dropped unwritten and the connection stays good for the next one;
    // controller.abort() would close it.
    if (this.#settled) throw this.#signal?.reason ?? abortError();
  }

  onResponseStart(controller, status, headers, statusText) {
    // 1xx informational answers (103 Early Hints): the answer follows.
    if (status < 200 || this.#settled) return;
    let response;
    try {
      const body = this.#method === 'HEAD' || NULL_BODY_STATUS.has(status) ? null : new AnswerBody(this);
      const pairs = headerPairs(headers);
      response = new NodeResponse(body, { status, statusText: statusText ?? '', headers: pairs }, this.#url, pairs);
      this.#body = body;
      if (body) this.#decoder = decoderFor(headers['content-encoding'], body, this);
    } catch (error) {
      this.#fail(new TypeError(`fetch failed: the upstream's answer is not a valid HTTP response (${error.message})`, { cause: error }));
      controller.abort(error);
      return;
    }
    this.#settled = true;
    this.#resolve(response);
  }

  onResponseData(controller, chunk) {
    if (this.#decoder) {
      if (!this.#decoder.write(chunk)) controller.pause(); // resumed on the decoder's 'drain'
    } else if (this.#body && !this.#body.push(chunk)) {
      controller.pause(); // resumed when the body is read (resume())
    }
  }

  onResponseEnd() {
    if (this.#decoder) this.#decoder.end();
    else if (this.#body) this.#body.end();
    else this.#finish();
  }

  onResponseError(controller, error) {
    if (this.#signal?.aborted) this.#fail(this.#signal.reason ?? abortError());
    else if (this.#settled) this.#fail(error);
    else this.#fail(new TypeError(`fetch failed: ${error.message}`, { cause: error }));
  }

  /** For the decoder: more bytes may come from the connection. */
  drained() {
    this.#controller?.resume();
  }
}

/**
 * The answer's headers as [name, value] pairs, from undici's object (lower-case
 * names, values read byte for byte as Latin-1 as fetch reads them, an array
 * for a repeated header such as Set-Cookie).
 */
function headerPairs(headers) {
  const pairs = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (Array.isArray(value)) for (const one of value) pairs.push([name, one]);
    else pairs.push([name, value]);
  }
  return pairs;
}

/** A zlib stream from the connection to `body` for a compressed answer, or null. */
function decoderFor(contentEncoding, body, call) {
  const encoding = typeof contentEncoding === 'string' ? contentEncoding.trim().toLowerCase() : '';
  let decoder;
  if (encoding === 'gzip' || encoding === 'x-gzip') decoder = zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  else if (encoding === 'deflate') decoder = zlib.createInflate({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  else if (encoding === 'br') decoder = zlib.createBrotliDecompress({ flush: zlib.constants.BROTLI_OPERATION_FLUSH, finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH });
  else return null;
  decoder.on('data', (chunk) => {
    if (!body.push(chunk)) decoder.pause();
  });
  decoder.on('drain', () => call.drained());
  decoder.once('end', () => body.end());
  decoder.once('error', (error) => {
    body.fail(error);
    call.abort(error);
  });
  return decoder;
}

// The Response class of this runtime: web frameworks may replace the global
// with a subclass of their own (@hono/node-server does); the original is at
// the root of its prototype chain.
let NativeResponse = globalThis.Response;
while (Object.getPrototypeOf(NativeResponse) !== Function.prototype) NativeResponse = Object.getPrototypeOf(NativeResponse);

/**
 * fetch's Response for an answer of this transport. Everything is Response's
 * own but the body: `body` is a web ReadableStream made on first use, and the
 * readers (arrayBuffer, bytes, text, json, blob) take the bytes from the
 * connection directly while nobody has asked for `body`.
 */
class NodeResponse extends NativeResponse {
  #body; // an AnswerBody, or null
  #url;
  #pairs; // the headers as they came ([name, value] pairs), which super() took
  #fields = null; // a HeaderFields of them, made on first use

  constructor(body, init, url, pairs = []) {
    super(null, init);
    this.#body = body;
    this.#url = url;
    this.#pairs = pairs;
  }

  /** See upstreamHeaders() below. */
  static fields(response) {
    if (!(response instanceof NodeResponse)) return undefined;
    response.#fields ??= new HeaderFields(response.#pairs);
    return response.#fields;
  }

  /** See upstreamBody() below. */
  static direct(response) {
    if (!(response instanceof NodeResponse)) return undefined;
    const body = response.#body;
    if (!body) return NO_BODY;
    if (body.streamed || body.used) return undefined;
    // The AnswerBody itself: it has empty, read(limit) and cancel() (not an
    // object and two closures made per answer to forward them).
    return body;
  }

  get body() {
    return this.#body?.stream() ?? null;
  }

  get bodyUsed() {
    return this.#body?.used ?? false;
  }

  get url() {
    return this.#url;
  }

  async bytes() {
    const body = this.#body;
    if (!body) return new Uint8Array(0);
    if (body.used) throw new TypeError('Body is unusable: Body has already been read');
    if (body.streamed) return new Uint8Array(await new NativeResponse(body.stream()).arrayBuffer());
    return body.read(Infinity);
  }

  async arrayBuffer() {
    const bytes = await this.bytes();
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  }

  async text() {
    return utf8.decode(await this.bytes());
  }

  async json() {
    return JSON.parse(await this.text());
  }

  async blob() {
    return new Blob([await this.bytes()], { type: this.headers.get('content-type') ?? '' });
  }

  async formData() {
    return new NativeResponse(this.body, { headers: this.headers }).formData();
  }

  clone() {
    const body = this.#body;
    if (body?.used) throw new TypeError('Response.clone: Body has already been consumed.');
    const init = { status: this.status, statusText: this.statusText, headers: this.headers };
    if (!body) return new NodeResponse(null, init, this.url, this.#pairs);
    const [mine, theirs] = body.stream().tee();
    body.replace(mine);
    return new NativeResponse(theirs, init);
  }
}

/**
 * An answer's header fields as `get(name)` reads them, without fetch's
 * Headers: each `Headers.get` checks the name with a regular expression,
 * lower-cases it and checks the object's brand, and the handler reads an
 * answer's headers seven times a call. The values are the ones the
 * Response's Headers hold: the same pairs, which Headers accepted (super()
 * would have thrown), each trimmed of HTTP whitespace as Headers does,
 * repeated names joined with ", " in order.
 * A Response's headers can be changed by whoever holds it; worker/handler.js,
 * the one reader, never changes an upstream answer's.
 */
class HeaderFields {
  #pairs;
  #names; // the pairs' names, lower-cased (undici's are already: then the same strings)

  constructor(pairs) {
    this.#pairs = pairs;
    this.#names = pairs.map(lowerName);
  }

  /** The field's value as Headers.get gives it: a string, or null. */
  get(name) {
    // A scan of the few pairs an answer has, not a record built for them:
    // that cost more (bytes and time) than the handler's seven reads.
    const key = name.toLowerCase();
    const names = this.#names;
    let value = null;
    for (let i = 0; i < names.length; i++) {
      if (names[i] !== key) continue;
      const normal = trimHttpWhitespace(this.#pairs[i][1]);
      value = value === null ? normal : `${value}, ${normal}`;
    }
    return value;
  }
}

const lowerName = ([name]) => name.toLowerCase();

// Fetch's "normalize" of a header value: leading and trailing tabs, spaces,
// CRs and LFs removed.
const isHttpWhitespace = (code) => code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
function trimHttpWhitespace(value) {
  let start = 0;
  let end = value.length;
  while (start < end && isHttpWhitespace(value.charCodeAt(start))) start++;
  while (end > start && isHttpWhitespace(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

const utf8 = new TextDecoder();

// upstreamBody() of an answer without a body (HEAD, 204, 304).
const NO_BODY = Object.freeze({ empty: true, read: async () => new Uint8Array(0), cancel() {} });

// A body's web stream holds up to UNREAD_BYTES before the connection pauses
// (counted in chunks, as by default, it would pause and resume the
// connection for every chunk).
const STREAM_STRATEGY = Object.freeze({ highWaterMark: UNREAD_BYTES, size: (chunk) => chunk.byteLength });

// An AnswerBody's states.
const OPEN = 0; // bytes may still come
const COMPLETE = 1; // every byte has come; some may wait for the reader
const OVER = 2; // read to the end, failed or dropped: nothing more happens

/**
 * An answer's body, read once: whole (read), or as a web stream (stream).
 * Chunks come from the connection (push, end, fail); bytes nobody reads yet
 * wait here, up to UNREAD_BYTES, and then the connection is paused. `source`
 * (the Call) resumes the connection, aborts it (the rest is not read: undici
 * closes the connection), and hears when the body is over.
 */
class AnswerBody {
  #source;
  #state = OPEN;
  #error = null;
  #chunks = []; // Buffers not handed to a reader yet
  #length = 0; // their bytes
  #read = null; // a pending read(): { limit, resolve, reject }
  #controller = null; // the web stream's, while it takes chunks
  #stream = null;
  #reading = false;

  constructor(source) {
    this.#source = source;
  }

  /** For upstreamBody(): an AnswerBody is made only for an answer with a body. */
  get empty() {
    return false;
  }

  get used() {
    return this.#reading || (this.#stream !== null && isDisturbed(this.#stream));
  }

  get streamed() {
    return this.#stream !== null;
  }

  replace(stream) {
    this.#stream = stream;
  }

  #over(error = null) {
    if (this.#state === OVER) return;
    this.#state = OVER;
    this.#error = error;
    this.#chunks = [];
    this.#length = 0;
    this.#source.bodyOver();
  }

  /** A chunk from the connection; false when the connection should pause. */
  push(chunk) {
    if (this.#state !== OPEN) return false;
    // undici hands over an empty chunk when it resumes inside a chunked
    // body; pausing on it would resume to the same empty chunk forever.
    if (chunk.length === 0) return true;
    if (this.#controller) {
      this.#controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      return this.#controller.desiredSize > 0;
    }
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    if (this.#read) {
      if (this.#length > this.#read.limit) {
        const { resolve } = this.#read;
        this.#read = null;
        this.cancel();
        resolve(null);
        return false;
      }
      return true;
    }
    return this.#length < UNREAD_BYTES;
  }

  /** The connection's part is done. */
  end() {
    if (this.#state !== OPEN) return;
    this.#state = COMPLETE;
    if (this.#read) {
      const { resolve } = this.#read;
      this.#read = null;
      resolve(this.#whole());
    } else if (this.#controller) {
      const controller = this.#controller;
      this.#controller = null;
      this.#over();
      controller.close();
    }
  }

  /** The answer broke (or the request was aborted): a reader gets `error`. */
  fail(error) {
    if (this.#state === OVER) return;
    const read = this.#read;
    const controller = this.#controller;
    this.#read = null;
    this.#controller = null;
    this.#over(error);
    read?.reject(error);
    controller?.error(error);
  }

  #whole() {
    const chunks = this.#chunks;
    const length = this.#length;
    this.#over();
    const whole = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
    return new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength);
  }

  /** The whole body; null once it is longer than `limit` (the rest is not read, the connection closes). */
  read(limit) {
    this.#reading = true;
    if (this.#state === OVER) return this.#error ? Promise.reject(this.#error) : Promise.reject(new TypeError('Body is unusable: Body has already been read'));
    if (this.#length > limit) {
      this.cancel();
      return Promise.resolve(null);
    }
    if (this.#state === COMPLETE) return Promise.resolve(this.#whole());
    return new Promise((resolve, reject) => {
      this.#read = { limit, resolve, reject };
      this.#source.resume();
    });
  }

  /** The body as a web ReadableStream of its chunks as they come (made once). */
  stream() {
    if (this.#stream) return this.#stream;
    this.#stream = new ReadableStream({
      start: (controller) => {
        if (this.#reading) {
          controller.error(new TypeError('Body is unusable: Body has already been read'));
          return;
        }
        if (this.#state === OVER) {
          controller.error(this.#error ?? new TypeError('Body is unusable'));
          return;
        }
        for (const chunk of this.#chunks) controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        this.#chunks = [];
        this.#length = 0;
        if (this.#state === COMPLETE) {
          this.#over();
          controller.close();
          return;
        }
        this.#controller = controller;
      },
      pull: () => {
        this.#source.resume();
      },
      cancel: () => {
        this.#controller = null;
        // The rest of this body will not be read: the connection cannot be reused.
        this.cancel();
      },
    }, STREAM_STRATEGY);
    return this.#stream;
  }

  /** Drops the body unread: the connection closes (unless it has all come already). */
  cancel() {
    if (this.#state === OVER) return;
    const open = this.#state === OPEN;
    this.#over();
    if (open) this.#source.abort(new DOMException('The body was dropped unread', 'AbortError'));
  }
}

/**
 * What worker/handler.js takes as `upstreamBody`: for an answer of this
 * transport whose body nobody has touched yet, direct access to it:
 * { empty, read(limit) → bytes | null over the limit, cancel() }. Undefined
 * for any other Response (the handler then reads `response.body`).
 */
export function upstreamBody(response) {
  return NodeResponse.direct(response);
}

/**
 * What worker/handler.js takes as `upstreamHeaders`: for an answer of this
 * transport, its header fields with `get(name)` answering as
 * `response.headers.get(name)` does, at a fraction of the cost (HeaderFields
 * above). Undefined for any other Response (the handler then reads
 * `response.headers`).
 */
export function upstreamHeaders(response) {
  return NodeResponse.fields(response);
}
