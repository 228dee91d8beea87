// Audit sinks: where the proxy writes one JSON event per tools/call decision.
// This module is runtime-neutral (Workers, Node, browsers): no Node built-ins.
// Node-only sinks live in ./audit-file.js; the Redis stream sink in ./audit-redis.js.
//
// A sink is { write(event): Promise<void>, close(): Promise<void> }. write()
// rejects when the event was not written, so the caller decides what a lost
// audit event means (log it, deny, alert). The proxy builds the event; a sink
// only serialises it, as one line of JSON.
//
// canonicalJson and sha256Hex compute `argument_sha256` the way the core
// computes approval ids (core/canonical_json.h): RFC 8785 JSON, then SHA-256.

// Nesting limit of canonicalJson, as the core's JSON reader (core/json_reader.h).
const MAX_DEPTH = 256;

/** One audit event as a line: JSON without a newline inside, then "\n". */
export function eventLine(event) {
  if (!event || typeof event !== 'object' || Array.isArray(event)) {
    throw new TypeError('an audit event must be an object');
  }
  // JSON.stringify escapes every line break but U+2028/U+2029, which
  // line-oriented tools (split on "\n") do not treat as one.
  return `${JSON.stringify(event)}\n`;
}

/**
 * RFC 8785 (JSON Canonicalization Scheme) text of JSON data: object members
 * sorted by the UTF-16 code units of their names, no whitespace, numbers as
 * ECMAScript formats them, strings as JSON.stringify escapes them. Throws on
 * what JSON cannot hold the same way everywhere: non-finite numbers, undefined,
 * functions, symbols, bigints, objects other than plain ones and arrays, and
 * containers nested more than 256 deep.
 */
export function canonicalJson(value) {
  return canonical(value, 0);
}

function canonical(value, depth) {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError(`canonicalJson: ${value} is not a JSON number`);
      return String(value); // ECMAScript Number::toString; -0 is "0", as RFC 8785 wants
    case 'object':
      break;
    default:
      throw new TypeError(`canonicalJson: a ${typeof value} is not JSON`);
  }
  if (value === null) return 'null';
  if (depth >= MAX_DEPTH) throw new RangeError(`canonicalJson: nested more than ${MAX_DEPTH} deep`);
  // Built as one string (not an array of parts, a closure and join): this
  // runs for every audited call's arguments.
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i += 1) {
      if (!(i in value)) throw new TypeError('canonicalJson: an array with holes is not JSON');
      if (i > 0) text += ',';
      text += canonical(value[i], depth + 1);
    }
    return `${text}]`;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    // A Date, Map, class instance...: JSON.stringify would guess (toJSON, or {}).
    throw new TypeError(`canonicalJson: a ${value.constructor?.name ?? 'non-plain'} object is not JSON data`);
  }
  const names = sortedNames(Object.keys(value));
  let text = '{';
  for (let i = 0; i < names.length; i += 1) {
    if (i > 0) text += ',';
    text += `${JSON.stringify(names[i])}:${canonical(value[names[i]], depth + 1)}`;
  }
  return `${text}}`;
}

// An object's names in RFC 8785's order: by UTF-16 code units, which is how
// both `<` and Array.prototype.sort compare strings. A few names (what
// arguments objects have) are sorted in place by insertion: sort() copies the
// array into a work area of its own each time, a fifth of the bytes an audited
// call allocated in canonicalJson. Names are distinct (an object's own keys).
const INSERTION_SORT_NAMES = 16;
function sortedNames(names) {
  const n = names.length;
  if (n > INSERTION_SORT_NAMES) return names.sort();
  for (let i = 1; i < n; i += 1) {
    const name = names[i];
    let j = i - 1;
    while (j >= 0 && names[j] > name) {
      names[j + 1] = names[j];
      j -= 1;
    }
    names[j + 1] = name;
  }
  return names;
}

// What was computed of a call's arguments where they were parsed (on Node, a
// large body's worker thread, ./body-pool.js), by the arguments object: the
// UTF-8 length of their canonical JSON, and its argument_hmac under the key it
// was computed with. The gate takes these instead of walking and hashing
// megabytes on the event loop again. A WeakMap: nothing outlives the parsed
// message. Arguments are never changed after parsing.
const knownArguments = new WeakMap();

/**
 * Records, for `args`, `bytes`: the UTF-8 length of canonicalJson(args), and `hmac`:
 * HMAC-SHA-256 (base64url) of it under `key` (both optional).
 */
export function rememberArguments(args, { bytes, key, hmac } = {}) {
  if (args === null || typeof args !== 'object') return;
  knownArguments.set(args, {
    bytes: Number.isSafeInteger(bytes) ? bytes : undefined,
    key: typeof key === 'string' && typeof hmac === 'string' ? key : undefined,
    hmac: typeof key === 'string' && typeof hmac === 'string' ? hmac : undefined,
  });
}

/** The HMAC rememberArguments recorded for `args` under `key`, or undefined. */
export function knownArgumentHmac(args, key) {
  if (args === null || typeof args !== 'object') return undefined;
  const known = knownArguments.get(args);
  return known !== undefined && known.key !== undefined && known.key === key ? known.hmac : undefined;
}

/** The UTF-8 length of canonicalJson(args) rememberArguments recorded, or undefined. */
export function knownCanonicalBytes(args) {
  if (args === null || typeof args !== 'object') return undefined;
  return knownArguments.get(args)?.bytes;
}

/** Lowercase hex SHA-256 of `text`'s UTF-8 bytes (WebCrypto: Workers, Node >= 20, browsers). */
export async function sha256Hex(text) {
  if (typeof text !== 'string') throw new TypeError('sha256Hex needs a string');
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * Lines waiting to be written together (StreamAuditSink's coalescing,
 * ./audit-file.js's FileAuditSink): their text, and one promise every line of
 * the batch is answered with, settled once by the one write.
 * @returns {{ text: string, promise: Promise<void>, resolve: () => void, reject: (error: Error) => void }}
 */
export function newLineBatch() {
  const batch = { text: '', promise: null, resolve: null, reject: null };
  batch.promise = new Promise((resolve, reject) => {
    batch.resolve = resolve;
    batch.reject = reject;
  });
  return batch;
}

/**
 * One JSON line per event through console.log: on Workers, what Workers Logs
 * (and `wrangler tail`) collects; on Node, standard output. `log` replaces
 * console.log (looked up at each write, so a patched console is honoured).
 */
export class ConsoleAuditSink {
  #log;

  constructor({ log } = {}) {
    if (log !== undefined && typeof log !== 'function') throw new TypeError('ConsoleAuditSink `log` must be a function');
    this.#log = log;
  }

  async write(event) {
    const line = eventLine(event).slice(0, -1); // console.log adds its own newline
    (this.#log ?? console.log)(line);
  }

  async close() {}
}

/**
 * JSON lines to a writer: a function (line) => void | Promise, an object with
 * write(line) returning a promise (a WritableStreamDefaultWriter), or a Node
 * writable stream (process.stdout). Writes reach the writer in the order of
 * the write() calls, one at a time: each waits for the one before.
 *
 * `coalesce: true`: the lines of the write() calls made in one turn of the
 * event loop go to the writer together, as one text (one system call for
 * process.stdout instead of one per event: the proxy writes its events in
 * batches, ./gate.js). Each write() settles with its batch; a failed batch
 * rejects each of its lines, and the next batch is tried all the same.
 */
export class StreamAuditSink {
  #write;
  #queue = Promise.resolve();
  #streamError = null;
  #coalesce;
  // With coalesce: this turn's lines as one text and the promise they share
  // ({ text, promise, resolve, reject }: one promise a batch, not one a line,
  // as ./audit-file.js), or null.
  #pending = null;

  constructor(writer, { coalesce = false } = {}) {
    this.#coalesce = coalesce === true;
    if (typeof writer === 'function') {
      this.#write = async (line) => writer(line);
    } else if (writer && typeof writer.write === 'function' && typeof writer.on === 'function') {
      // A Node stream: done when its callback says so. Its 'error' events are
      // listened to (an unheard one would crash the process); later writes reject.
      writer.on('error', (error) => {
        this.#streamError ??= error;
      });
      this.#write = (line) => new Promise((resolve, reject) => {
        if (this.#streamError) {
          reject(this.#streamError);
          return;
        }
        writer.write(line, (error) => (error ? reject(error) : resolve()));
      });
    } else if (writer && typeof writer.write === 'function') {
      this.#write = async (line) => writer.write(line);
    } else {
      throw new TypeError('StreamAuditSink needs a function or an object with a write() method');
    }
  }

  write(event) {
    let line;
    try {
      line = eventLine(event);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#coalesce) {
      let batch = this.#pending;
      if (batch === null) {
        batch = this.#pending = newLineBatch();
        laterTask(this.#writePendingLater);
      }
      batch.text += line;
      return batch.promise;
    }
    return this.#enqueue(line);
  }

  #enqueue(text) {
    const written = this.#queue.then(() => this.#write(text));
    this.#queue = written.catch(() => {}); // one failed write does not stop the next
    return written;
  }

  #writePendingLater = () => this.#writePending();

  #writePending() {
    const batch = this.#pending;
    this.#pending = null;
    if (batch === null) return;
    this.#enqueue(batch.text).then(batch.resolve, batch.reject);
  }

  // Writes what waits for this turn, then waits for the writes under way;
  // the writer is the caller's to close.
  async close() {
    this.#writePending();
    await this.#queue;
  }
}

// A later task: on Node after this turn's I/O (setImmediate), elsewhere a 0 ms timer.
const laterTask = typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

/**
 * Every event to every sink, at once. write() resolves when all of them wrote
 * it, and rejects (AggregateError of the failures) when any failed, after all
 * have tried: one broken sink does not keep the event from the others.
 */
export class MultiAuditSink {
  #sinks;

  constructor(sinks) {
    if (!Array.isArray(sinks) || !sinks.every((sink) => sink && typeof sink.write === 'function')) {
      throw new TypeError('MultiAuditSink needs an array of sinks');
    }
    this.#sinks = [...sinks];
  }

  async write(event) {
    await settleAll(this.#sinks.map((sink) => sink.write(event)), 'audit sinks failed to write the event');
  }

  async close() {
    await settleAll(this.#sinks.map((sink) => sink.close?.()), 'audit sinks failed to close');
  }
}

async function settleAll(promises, message) {
  const results = await Promise.allSettled(promises);
  const errors = results.filter((result) => result.status === 'rejected').map((result) => result.reason);
  if (errors.length > 0) throw new AggregateError(errors, `${errors.length} of ${results.length} ${message}`);
}
