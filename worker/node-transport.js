// The proxy's upstream transport on Node: fetch's signature, built on
// node:http / node:https with a keep-alive agent. Node's fetch (undici) costs
// about twice the CPU per proxied call of http.request with a kept-alive
// socket, so `toolgate serve` uses this one by default (worker/node.js,
// option `transport: 'fetch'` to go back); Workers keep their global fetch.
//
//   const transport = createNodeTransport();
//   const response = await transport(url, { method, headers, body, signal });
//   transport.close();   // ends the kept-alive sockets
//
// What it does as fetch does, so that worker/handler.js needs no change:
// - resolves with a web Response once the headers are in; its body streams as
//   the server writes it (event streams pass event by event);
// - an aborted `signal` rejects with the signal's reason before the answer,
//   and errors the body after it; the socket is then closed, never reused;
// - a failed connection rejects with a TypeError whose `cause` is the Node
//   error, so `error.cause.code` is ECONNREFUSED, ENOTFOUND, ... for a request
//   that was never sent, and ECONNRESET, ... for one that may have been. A
//   connection not made within connectTimeoutMs fails with the code of
//   undici's connect timeout, UND_ERR_CONNECT_TIMEOUT (never sent either);
// - a server closing the connection in the middle of a body errors the body.
// What it does not: follow redirects (the handler asks for redirect:
// 'manual'; a 3xx is returned as it is), cache, cookies, CORS. It asks for no
// compression (no Accept-Encoding: on loopback it only costs CPU) and
// decodes gzip, deflate and br bodies should a server send them anyway. There
// is no idle timeout on a body that has started: a long-lived event stream
// may stay quiet as long as it likes.
//
// Cost: on Node 20 every web ReadableStream (and AbortSignal) is made
// "transferable" when created, tens of microseconds each. The Response this
// transport returns creates its `body` stream only when someone asks for it;
// `response.arrayBuffer()`, `text()`, `json()`, `bytes()` and `blob()` read
// the socket directly, and `upstreamBody(response)` (what worker/handler.js
// takes as its `upstreamBody` option) reads an answer whole, up to a limit,
// without a web stream either.
import http from 'node:http';
import https from 'node:https';
import { isDisturbed, pipeline } from 'node:stream';
import { urlToHttpOptions } from 'node:url';
import zlib from 'node:zlib';

// Hop-by-hop and framing headers: the transport sets them itself.
const DROPPED_REQUEST_HEADERS = new Set(['connection', 'content-length', 'host', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'trailer', 'proxy-connection']);
// Statuses whose Response must have a null body.
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * @param {object} [options]
 * @param {number} [options.maxSockets] connections per upstream host at most; requests beyond wait for one (default 256)
 * @param {number} [options.maxFreeSockets] idle connections kept per host (default 64)
 * @param {number} [options.keepAliveTimeoutMs] an idle connection is closed after this (default 4000, as undici);
 *   a server's shorter `Keep-Alive: timeout=N` wins
 * @param {number} [options.connectTimeoutMs] a connection not made in this time fails as never sent (default 10000, as undici)
 * @returns {((input: string | URL | Request, init?: RequestInit) => Promise<Response>) & {close(): void, agents: {http: http.Agent, https: https.Agent}}}
 */
export function createNodeTransport({ maxSockets = 256, maxFreeSockets = 64, keepAliveTimeoutMs = 4000, connectTimeoutMs = 10_000 } = {}) {
  const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets, timeout: keepAliveTimeoutMs, scheduling: 'lifo' };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };

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

  // Request options by URL: the proxy calls the same few URLs again and again.
  const targets = new Map();
  function targetOf(url) {
    let target = targets.get(url);
    if (!target) {
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`unsupported protocol ${parsed.protocol}`);
      const secure = parsed.protocol === 'https:';
      target = { secure, host: parsed.host, href: parsed.href, options: { ...urlToHttpOptions(parsed), agent: secure ? agents.https : agents.http } };
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
    if (method === 'GET' || method === 'HEAD') body = null;
    const payload = fixedBody(body);
    if (payload) {
      outgoing['content-length'] = String(payload.byteLength ?? payload.bytes.byteLength);
      if (payload.type && !('content-type' in outgoing)) outgoing['content-type'] = payload.type;
    } else if (body == null && (method === 'POST' || method === 'PUT')) {
      outgoing['content-length'] = '0'; // as fetch does
    }

    let settled = false; // the promise is resolved or rejected
    let finished = false; // nothing more will happen: listeners are gone
    let response = null; // the IncomingMessage, once the headers are in
    let bodySource = null;
    let connectTimer = null;

    const request = (target.secure ? https : http).request({ ...target.options, method, headers: outgoing });

    const finish = () => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      if (connectTimer) clearTimeout(connectTimer);
    };
    const fail = (error) => {
      if (settled) return;
      settled = true;
      finish();
      reject(error);
    };
    function onAbort() {
      const reason = signal.reason ?? abortError();
      if (!settled) {
        fail(reason);
        request.destroy();
        return;
      }
      // After the headers: the body errors with the reason; the socket closes.
      finish();
      if (bodySource && !bodySource.destroyed) bodySource.destroy(reason);
      if (response && response !== bodySource && !response.destroyed) response.destroy(reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });

    request.on('socket', (socket) => {
      if (!socket.connecting || finished) return;
      connectTimer = setTimeout(() => {
        const error = new Error(`no connection to ${target.host} within ${connectTimeoutMs} ms`);
        error.code = 'UND_ERR_CONNECT_TIMEOUT';
        request.destroy(error);
      }, connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(connectTimer);
        connectTimer = null;
      });
    });
    request.on('error', (error) => {
      if (signal?.aborted) fail(signal.reason ?? abortError());
      else fail(new TypeError(`fetch failed: ${error.message}`, { cause: error }));
    });
    request.on('response', (incoming) => {
      if (settled) {
        incoming.destroy();
        return;
      }
      response = incoming;
      let webResponse;
      try {
        const responseHeaders = [];
        const raw = incoming.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) responseHeaders.push([raw[i], raw[i + 1]]);
        const status = incoming.statusCode;
        let body = null;
        if (method === 'HEAD' || NULL_BODY_STATUS.has(status)) {
          incoming.resume();
          incoming.once('end', finish);
          incoming.once('error', finish);
        } else {
          bodySource = decoded(incoming);
          body = new NodeBody(bodySource, finish);
        }
        webResponse = new NodeResponse(body, { status, statusText: incoming.statusMessage ?? '', headers: responseHeaders }, target.href);
      } catch (error) {
        incoming.destroy();
        fail(new TypeError(`fetch failed: the upstream's answer is not a valid HTTP response (${error.message})`, { cause: error }));
        return;
      }
      settled = true;
      resolve(webResponse);
    });

    if (payload) {
      // A string goes out in one write with the headers (Node joins them).
      request.end(payload.text ?? payload.bytes);
    } else if (body == null) {
      request.end();
    } else {
      streamBody(body, request).catch((error) => {
        request.destroy(error);
      });
    }
  }

  transport.agents = agents;
  transport.upstreamBody = upstreamBody;
  // `signal` may be any object with `aborted`, `reason` and
  // add/removeEventListener('abort', fn): send() reads nothing else of it, so
  // worker/handler.js passes its PlainAbort instead of an AbortSignal.
  transport.plainSignal = true;
  transport.close = () => {
    agents.http.destroy();
    agents.https.destroy();
  };
  return transport;
}

function abortError() {
  return new DOMException('This operation was aborted', 'AbortError');
}

/** Request headers (Headers, [name, value] pairs or a record) as a plain object for http.request. */
function headersObject(headers) {
  const out = {};
  if (!headers) return out;
  const add = (name, value) => {
    const key = String(name).toLowerCase();
    if (DROPPED_REQUEST_HEADERS.has(key)) return;
    out[key] = key in out ? `${out[key]}, ${value}` : String(value);
  };
  if (typeof headers.forEach === 'function' && !Array.isArray(headers)) {
    headers.forEach((value, name) => add(name, value));
  } else if (Array.isArray(headers) || typeof headers[Symbol.iterator] === 'function') {
    for (const [name, value] of headers) add(name, value);
  } else {
    for (const name of Object.keys(headers)) add(name, headers[name]);
  }
  return out;
}

const encoder = new TextEncoder();

/** A body whose bytes are known now: { bytes, type? }, or null (no body, or a stream). */
function fixedBody(body) {
  if (body == null) return null;
  if (typeof body === 'string') return { text: body, byteLength: Buffer.byteLength(body, 'utf8'), type: 'text/plain;charset=UTF-8' };
  if (body instanceof ArrayBuffer) return { bytes: Buffer.from(body) };
  if (ArrayBuffer.isView(body)) return { bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  if (body instanceof URLSearchParams) return { bytes: encoder.encode(body.toString()), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
  return null;
}

/** Writes a streamed body (a web ReadableStream, a Blob, a Node stream or any async iterable) to `request`, chunked. */
async function streamBody(body, request) {
  const source = typeof body.stream === 'function' && typeof body.arrayBuffer === 'function' ? body.stream() : body;
  if (typeof source.getReader === 'function') {
    const reader = source.getReader();
    request.once('close', () => reader.cancel().catch(() => {}));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (request.destroyed) return;
      if (!request.write(typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength))) await drained(request);
    }
  } else if (typeof source[Symbol.asyncIterator] === 'function' || typeof source[Symbol.iterator] === 'function') {
    for await (const chunk of source) {
      if (request.destroyed) return;
      if (!request.write(chunk)) await drained(request);
    }
  } else {
    throw new TypeError('fetch failed: unsupported body type');
  }
  if (!request.destroyed) request.end();
}

function drained(request) {
  return new Promise((resolve) => {
    const done = () => {
      request.off('drain', done);
      request.off('close', done);
      resolve();
    };
    request.on('drain', done);
    request.on('close', done);
  });
}

/** The body as sent, or decoded when the server compressed it anyway. */
function decoded(incoming) {
  const encoding = incoming.headers['content-encoding']?.trim().toLowerCase();
  let decoder;
  if (encoding === 'gzip' || encoding === 'x-gzip') decoder = zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  else if (encoding === 'deflate') decoder = zlib.createInflate({ flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  else if (encoding === 'br') decoder = zlib.createBrotliDecompress({ flush: zlib.constants.BROTLI_OPERATION_FLUSH, finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH });
  if (!decoder) return incoming;
  return pipeline(incoming, decoder, () => {});
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
 * socket directly while nobody has asked for `body`.
 */
class NodeResponse extends NativeResponse {
  #body; // a NodeBody, or null
  #url;

  constructor(body, init, url) {
    super(null, init);
    this.#body = body;
    this.#url = url;
  }

  /** See upstreamBody() below. */
  static direct(response) {
    if (!(response instanceof NodeResponse)) return undefined;
    const body = response.#body;
    if (!body) return { empty: true, read: async () => new Uint8Array(0), cancel() {} };
    if (body.streamed || body.used) return undefined;
    return { empty: false, read: (limit) => body.read(limit), cancel: () => body.cancel() };
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
    if (!body) return new NodeResponse(null, init, this.url);
    const [mine, theirs] = body.stream().tee();
    body.replace(mine);
    return new NativeResponse(theirs, init);
  }
}

const utf8 = new TextDecoder();

/**
 * An answer's body, read once: whole (read), or as a web stream (stream).
 * Its source's errors are always listened to (an unheard 'error' would end
 * the process); `done()` runs once when the body ends, fails or is dropped.
 */
class NodeBody {
  #source;
  #done;
  #stream = null;
  #reading = false;
  #ended = false;
  #error = null;

  constructor(source, done) {
    this.#source = source;
    this.#done = done;
    source.once('end', () => this.#over());
    source.once('error', (error) => this.#over(error));
    // Closed before its end: the connection broke mid-body.
    source.once('close', () => {
      if (!this.#ended) this.#over(prematureClose());
    });
  }

  #over(error = null) {
    if (this.#ended) return false;
    this.#ended = true;
    this.#error = error;
    this.#done();
    return true;
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

  /** The whole body; null once it is longer than `limit` (the rest is not read, the socket closes). */
  read(limit) {
    this.#reading = true;
    const source = this.#source;
    return new Promise((resolve, reject) => {
      if (this.#ended && this.#error) {
        reject(this.#error);
        return;
      }
      const chunks = [];
      let length = 0;
      const onData = (chunk) => {
        length += chunk.length;
        if (length > limit) {
          cleanup();
          source.destroy();
          resolve(null);
          return;
        }
        chunks.push(chunk);
      };
      const onEnd = () => {
        cleanup();
        const whole = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
        resolve(new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength));
      };
      const onError = (error) => {
        cleanup();
        reject(error);
      };
      const onClose = () => {
        if (!source.readableEnded) onError(this.#error ?? prematureClose());
      };
      const cleanup = () => {
        source.off('data', onData);
        source.off('end', onEnd);
        source.off('error', onError);
        source.off('close', onClose);
      };
      source.on('data', onData);
      source.once('end', onEnd);
      source.once('error', onError);
      source.once('close', onClose);
      if (source.readableEnded) onEnd();
    });
  }

  /** The body as a web ReadableStream of its chunks as they come (made once). */
  stream() {
    if (this.#stream) return this.#stream;
    const source = this.#source;
    let open = true; // until closed, errored or cancelled: the controller takes nothing after
    const settle = (how) => {
      if (!open) return;
      open = false;
      how();
    };
    this.#stream = new ReadableStream({
      start: (controller) => {
        if (this.#reading) {
          settle(() => controller.error(new TypeError('Body is unusable: Body has already been read')));
          return;
        }
        if (this.#ended && this.#error) {
          settle(() => controller.error(this.#error));
          return;
        }
        source.on('data', (chunk) => {
          if (!open) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if (controller.desiredSize <= 0) source.pause();
        });
        source.once('end', () => settle(() => controller.close()));
        source.once('error', (error) => settle(() => controller.error(error)));
        source.once('close', () => {
          if (!source.readableEnded) settle(() => controller.error(this.#error ?? prematureClose()));
        });
        if (source.readableEnded) settle(() => controller.close());
      },
      pull: () => {
        source.resume();
      },
      cancel: () => {
        open = false;
        // The rest of this body will not be read: the socket cannot be reused.
        this.#over();
        source.destroy();
      },
    });
    return this.#stream;
  }

  /** Drops the body unread: the socket closes. */
  cancel() {
    this.#over();
    this.#source.destroy();
  }
}

function prematureClose() {
  const error = new Error('the upstream closed the connection before the end of the body');
  error.code = 'ECONNRESET';
  return error;
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
