// Large request bodies read off the event loop (Node only: node:worker_threads).
//
// Reading a 4 MiB body is tens of milliseconds of synchronous work: UTF-8
// decoding, JSON.parse, the duplicate-key and depth check (./json-check.js),
// and the canonical JSON of each call's arguments, its HMAC for the audit
// and its length for the approval size bound (./audit.js, ./gate.js). On the event loop that is a stall every other
// grant's calls wait behind (bench/proxy/fairness.bench.js). Bodies of at
// least `threshold` bytes are therefore read by a fixed pool of worker
// threads running the very function the inline path runs
// (./body-read.js readBodyMessages), so the answer and every error are the
// same either way (tests/js/body-pool.test.js holds them to each other on
// generated bodies); smaller bodies are read inline, where a thread's round
// trip would cost more than it saves. The Workers runtime has no pool and
// always reads inline.
//
// No heap limit of its own per thread (resourceLimits): V8 aborts the whole
// process, not the thread, when a thread's limit is reached inside
// JSON.parse (seen in tests/js/body-pool.test.js with a small limit). A
// thread has the heap the event loop would have had for the same body.
//
// Bounded: `threads` threads; at most
// `maxQueuedPerGrant` bodies of one grant wait (more are refused, 429), and
// waiting bodies are taken one grant after another (round robin), so a grant
// sending many large bodies cannot starve another's. A thread that dies or
// does not answer within `timeoutMs` fails its
// body closed (503, nothing forwarded) and is replaced for the next body:
// never a hang, never a body let through unchecked.
import { Buffer } from 'node:buffer';
import { createHmac } from 'node:crypto';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import { canonicalJson, rememberArguments } from './audit.js';
import { readBodyMessages } from './body-read.js';
import { JsonRpcError, errorMessage } from './gate.js';

const ROLE = 'toolgate-body-pool';

// What the gate would compute of a call's arguments (./audit.js
// rememberArguments): the UTF-8 length of their canonical JSON (the approval
// size bound) and, with a key, HMAC-SHA-256 (base64url) of it, exactly as
// ./node.js's NODE_SHA256.hmac computes argument_hmac. null when the
// arguments have no canonical form (the gate then finds that itself).
function argumentFacts(key, args) {
  let canonical;
  try {
    canonical = canonicalJson(args);
  } catch {
    return null;
  }
  return {
    bytes: Buffer.byteLength(canonical, 'utf8'),
    key,
    hmac: typeof key === 'string' ? createHmac('sha256', key).update(canonical, 'utf8').digest('base64url') : undefined,
  };
}

// The arguments object of a tools/call message, or undefined.
function callArguments(message) {
  if (message === null || typeof message !== 'object' || message.method !== 'tools/call') return undefined;
  const { params } = message;
  if (params === null || typeof params !== 'object') return undefined;
  const args = params.arguments;
  return args !== null && typeof args === 'object' ? args : undefined;
}

// ------------------------------------------------------------ the thread

if (!isMainThread && workerData?.role === ROLE) {
  parentPort.on('message', ({ id, bytes, maxBatchSize, auditKey }) => {
    const read = readBodyMessages(bytes, { maxBatchSize });
    const facts = read.refused ? undefined : read.messages.map((message) => {
      const args = callArguments(message);
      return args === undefined ? null : argumentFacts(auditKey, args);
    });
    parentPort.postMessage({ id, read, facts });
  });
}

// ------------------------------------------------------------ the pool

/**
 * @typedef {{ refused: object, status?: number } | { batch: boolean, messages: unknown[] }} ReadBody
 */
export class BodyPool {
  #threads;
  #threshold;
  #maxQueuedPerGrant;
  #timeoutMs;
  #log;
  #idle = []; // threads waiting for a body
  #all = new Set(); // every live thread
  #queues = new Map(); // grant -> jobs waiting, in arrival order
  #turns = []; // grants with jobs waiting, in the order they are served
  #nextId = 1;
  #closed = false;
  #stats = { inline: 0, offThread: 0, refusedBusy: 0, failed: 0, threadsStarted: 0 };

  /**
   * @param {{ threads?: number, threshold?: number, maxQueuedPerGrant?: number, timeoutMs?: number,
   *   log?: (level: string, message: string, fields?: object) => void }} [options]
   *   threads: the pool's size (default 2); threshold: bodies of at least this many bytes go
   *   to a thread (default 128 KiB); maxQueuedPerGrant: one grant's bodies waiting for a thread
   *   (default 16); timeoutMs: how long a thread may take over one body (default 30 s).
   */
  constructor({ threads = 2, threshold = 128 * 1024, maxQueuedPerGrant = 16, timeoutMs = 30_000, log = () => {} } = {}) {
    for (const [name, value] of Object.entries({ threads, maxQueuedPerGrant, timeoutMs })) {
      if (!(Number.isSafeInteger(value) && value > 0)) throw new TypeError(`BodyPool: ${name} must be a positive integer, not ${value}`);
    }
    if (!(Number.isSafeInteger(threshold) && threshold >= 0)) throw new TypeError(`BodyPool: threshold must be an integer >= 0, not ${threshold}`);
    this.#threads = threads;
    this.#threshold = threshold;
    this.#maxQueuedPerGrant = maxQueuedPerGrant;
    this.#timeoutMs = timeoutMs;
    this.#log = log;
  }

  /**
   * `bytes` as messages (./body-read.js readBodyMessages): at once for a small body, on a
   * thread (a promise) for a large one. There, each call's canonical arguments are measured
   * and (with `auditKey`) their audit argument_hmac computed, remembered for the gate
   * (./audit.js rememberArguments). `bytes` is handed
   * to the thread (its buffer transferred when it is the whole buffer): not usable afterwards.
   * @param {Uint8Array} bytes
   * @param {{ maxBatchSize?: number, grant?: string, auditKey?: string }} [context]
   * @returns {ReadBody | Promise<ReadBody>}
   */
  read(bytes, { maxBatchSize = Infinity, grant = '', auditKey } = {}) {
    if (bytes.byteLength < this.#threshold) {
      this.#stats.inline++;
      return readBodyMessages(bytes, { maxBatchSize });
    }
    if (this.#closed) return this.#failure('the proxy is shutting down');
    let queue = this.#queues.get(grant);
    if (queue !== undefined && queue.length >= this.#maxQueuedPerGrant) {
      this.#stats.refusedBusy++;
      return {
        status: 429,
        refused: errorMessage(null, JsonRpcError.INVALID_REQUEST, `Too many large request bodies of this grant are waiting to be read (at most ${this.#maxQueuedPerGrant}); nothing was forwarded. Retry once they are answered.`),
      };
    }
    return new Promise((resolve) => {
      const job = { id: this.#nextId++, bytes, maxBatchSize, auditKey, resolve };
      if (queue === undefined) {
        queue = [];
        this.#queues.set(grant, queue);
        this.#turns.push(grant);
      }
      queue.push(job);
      this.#dispatch();
    });
  }

  /** Counts, for tests and operators: bodies read inline and on threads, refused, failed; threads now, those reading a body, bodies waiting. */
  get stats() {
    let reading = 0;
    for (const thread of this.#all) if (thread.job !== null) reading++;
    return { ...this.#stats, threads: this.#all.size, reading, queued: [...this.#queues.values()].reduce((n, q) => n + q.length, 0) };
  }

  /** Stops the threads; bodies waiting or being read are refused (503). */
  async close() {
    this.#closed = true;
    for (const thread of this.#all) {
      if (thread.job !== null) thread.job.resolve(this.#failure('the proxy is shutting down'));
      thread.job = null;
      clearTimeout(thread.timer);
    }
    for (const queue of this.#queues.values()) for (const job of queue) job.resolve(this.#failure('the proxy is shutting down'));
    this.#queues.clear();
    this.#turns.length = 0;
    await Promise.all([...this.#all].map((thread) => this.#stop(thread)));
  }

  // Hands waiting bodies to free threads, one grant after another.
  #dispatch() {
    while (this.#turns.length > 0) {
      const thread = this.#idle.pop() ?? (this.#all.size < this.#threads ? this.#start() : undefined);
      if (thread === undefined) return;
      const grant = this.#turns.shift();
      const queue = this.#queues.get(grant);
      const job = queue.shift();
      if (queue.length > 0) this.#turns.push(grant);
      else this.#queues.delete(grant);
      this.#run(thread, job);
    }
  }

  #start() {
    // execArgv []: the thread runs this module only, none of the process's
    // --import/--require preloads (a preload may act on the whole process:
    // the benchmarks' exit-with-parent.js, in a thread, would stop it).
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: ROLE }, execArgv: [] });
    // Only a thread reading a body keeps the process alive (ref'd in #run).
    worker.unref();
    const thread = { worker, job: null, timer: null, stopping: null };
    this.#all.add(thread);
    this.#stats.threadsStarted++;
    worker.on('message', (answer) => this.#answered(thread, answer));
    worker.on('messageerror', (error) => this.#lost(thread, `its answer could not be read (${error?.message ?? error})`));
    worker.on('error', (error) => this.#lost(thread, `the thread failed (${error?.code ?? error?.message ?? error})`));
    worker.on('exit', (code) => this.#lost(thread, `the thread exited (code ${code})`));
    return thread;
  }

  #run(thread, job) {
    thread.job = job;
    thread.worker.ref();
    const { bytes } = job;
    // Transfer, not copy, when the view is its whole (non-shared) buffer.
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
    const sent = whole ? bytes : bytes.slice();
    job.bytes = null;
    thread.timer = setTimeout(() => this.#lost(thread, `the thread took longer than ${this.#timeoutMs} ms`), this.#timeoutMs);
    thread.timer.unref?.();
    thread.worker.postMessage({ id: job.id, bytes: sent, maxBatchSize: job.maxBatchSize, auditKey: job.auditKey }, [sent.buffer]);
  }

  #answered(thread, { id, read, facts }) {
    const { job } = thread;
    if (job === null || job.id !== id) return; // answer to a body already failed
    clearTimeout(thread.timer);
    thread.job = null;
    thread.timer = null;
    thread.worker.unref();
    if (facts !== undefined && !read.refused) {
      for (let i = 0; i < facts.length; i++) {
        if (facts[i] !== null) rememberArguments(read.messages[i].params.arguments, facts[i]);
      }
    }
    this.#stats.offThread++;
    job.resolve(read);
    if (!this.#closed) this.#idle.push(thread);
    this.#dispatch();
  }

  // The thread cannot answer its body: the body is refused (fail closed), the
  // thread stopped and forgotten; the next body starts a new one.
  #lost(thread, reason) {
    const { job } = thread;
    thread.job = null;
    clearTimeout(thread.timer);
    if (job !== null) {
      this.#stats.failed++;
      this.#log('error', 'a request body could not be read on a worker thread; refused', { reason });
      job.resolve(this.#failure(reason));
    }
    if (this.#all.has(thread)) {
      this.#all.delete(thread);
      const at = this.#idle.indexOf(thread);
      if (at >= 0) this.#idle.splice(at, 1);
      this.#stop(thread);
    }
    if (!this.#closed) this.#dispatch();
  }

  #stop(thread) {
    this.#all.delete(thread);
    thread.stopping ??= thread.worker.terminate().catch(() => {});
    return thread.stopping;
  }

  #failure(reason) {
    return { status: 503, refused: errorMessage(null, JsonRpcError.INTERNAL, `Internal error: the request body could not be read (${reason}); nothing was forwarded.`) };
  }
}
