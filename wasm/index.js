// toolgate's JS API over the WebAssembly core.
//
//   import { loadToolgate, MemoryCounterStore } from 'toolgate';
//   const toolgate = await loadToolgate();
//   const policy = toolgate.compile(policyText);          // throws PolicyError
//   const decision = await policy.decide({ tool: 'run', arguments: {}, grant: 'alice' });
//
// Works in Node (reads the .wasm next to this file), browsers (fetches it) and
// workerd (pass the precompiled WebAssembly.Module as `wasmModule`).

import createToolgateCore from './dist/toolgate_core.mjs';
import { EngineError, PolicyError, StoreError, ToolgateError } from './errors.js';
import { OVERFLOW, abandonEncodingInto, encodeCall, encodeCallInto, encodedBytes, encodedCallHasNow } from './call-encoder.js';
import { coreCodec, createTableCodec } from './boundary-layout.js';
import { MemoryApprovalStore, MemoryCounterStore, estimateCount, memoryTableIn } from './memory-store.js';

export { EngineError, PolicyError, StoreError, ToolgateError, MemoryApprovalStore, MemoryCounterStore, estimateCount };

// Resolved lazily: workerd has no meaningful import.meta.url (it gets wasmModule).
const wasmUrl = () => {
  if (!import.meta.url) {
    throw new ToolgateError('cannot locate toolgate_core.wasm here (no import.meta.url, as in workerd): pass `wasmModule` (or `wasmBinary`, `wasmUrl`) to loadToolgate()');
  }
  return new URL('./dist/toolgate_core.wasm', import.meta.url);
};
const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

function bytesOf(response, url) {
  if (!response.ok) throw new EngineError(`fetching ${url} failed: HTTP ${response.status}`);
  return response.arrayBuffer();
}
const fetchBytes = async (url) => bytesOf(await fetch(url), url);

async function instantiate(options) {
  // A custom instantiateWasm's failure never reaches the glue's ready promise:
  // without this, loadToolgate() would hang (and leak an unhandled rejection).
  let failLoad;
  const failed = new Promise((_, reject) => {
    failLoad = (error) => reject(error instanceof ToolgateError ? error
      : new EngineError(`loading the WebAssembly core failed: ${error?.message ?? error}`, { cause: error }));
  });
  const moduleArgs = {
    // The core reports through return values; nothing should print.
    print: () => {},
    printErr: () => {},
    // The glue never fetches (it always gets wasmBinary or instantiateWasm), but
    // without locateFile it computes new URL('toolgate_core.wasm', import.meta.url),
    // which throws where import.meta.url is undefined (workerd).
    locateFile: (path) => path,
  };
  if (options.wasmModule) {
    // workerd: code generation from bytes is not allowed, so a module
    // compiled at deploy time is instantiated directly.
    moduleArgs.instantiateWasm = (imports, receive) => {
      WebAssembly.instantiate(options.wasmModule, imports)
        .then((instance) => receive(instance, options.wasmModule))
        .catch(failLoad);
      return {};
    };
  } else if (options.wasmBinary) {
    moduleArgs.wasmBinary = options.wasmBinary;
  } else if (isNode && !options.wasmUrl && wasmUrl().protocol === 'file:') {
    const fs = 'node:fs/promises';
    const { readFile } = await import(/* @vite-ignore */ fs);
    moduleArgs.wasmBinary = await readFile(wasmUrl());
  } else {
    const url = options.wasmUrl ?? wasmUrl();
    moduleArgs.instantiateWasm = (imports, receive) => {
      const response = fetch(url);
      const instantiated = WebAssembly.instantiateStreaming
        ? WebAssembly.instantiateStreaming(response, imports).catch(async () =>
            WebAssembly.instantiate(await fetchBytes(url), imports))
        : response.then((r) => bytesOf(r, url)).then((bytes) => WebAssembly.instantiate(bytes, imports));
      instantiated.then(({ instance, module }) => receive(instance, module)).catch(failLoad);
      return {};
    };
  }
  return Promise.race([createToolgateCore(moduleArgs), failed]);
}

const policyRegistry = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry((handle) => handle.delete())
  : null;

// Decision objects with fields in a stable, readable order.
function decisionFrom(raw) {
  const decision = { decision: raw.decision, code: raw.code, rule: raw.rule, message: raw.message };
  if (raw.retry_after_ms !== undefined) decision.retry_after_ms = raw.retry_after_ms;
  if (raw.approval_id !== undefined) decision.approval_id = raw.approval_id;
  return decision;
}

// The glue's UTF-8 encoder pairs a lone surrogate with whatever code unit
// follows it (swallowing a quote or backslash), so the core would read other
// text than JS holds. A tool name gets U+FFFD instead, as TextEncoder does; JSON
// text gets the \uXXXX escape, which the core rejects (strict JSON), exactly as
// it does for JSON.stringify's output of the same value.
function replaceLoneSurrogates(text, replacement) {
  if (text.isWellFormed?.()) return text;
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i += 1; // a pair
      continue;
    }
    out += text.slice(from, i) + replacement(unit);
    from = i + 1;
  }
  return from === 0 ? text : out + text.slice(from);
}
const wellFormed = (text) => replaceLoneSurrogates(text, () => '\uFFFD');
const escapeLoneSurrogates = (text) => replaceLoneSurrogates(text, (unit) => `\\u${unit.toString(16)}`);

// JSON text for the core. Every entry point takes a string: anything else
// (undefined, a function, a BigInt, a cycle) would make embind throw, which
// #call treats as a trap and restarts the engine. Null when not JSON-able.
function jsonText(value) {
  if (typeof value === 'string') return escapeLoneSurrogates(value);
  try {
    const text = JSON.stringify(value ?? null);
    return typeof text === 'string' ? text : null;
  } catch {
    return null;
  }
}

function notJson(what, value) {
  return `${what} is not representable as JSON (got ${typeof value === 'bigint' ? 'a BigInt' : typeof value === 'object' ? 'an object with a cycle or a BigInt' : `a ${typeof value}`})`;
}

// The policy text, or null with a diagnostic for a value JSON cannot hold.
function policyDiagnostic(policy) {
  return { code: 'json_syntax', severity: 'error', message: notJson('the policy', policy), pointer: '', line: 0, column: 0 };
}

// The `now` option, checked: the core converts it to int64 without a check.
// Undefined (no option) stays undefined: the host's clock, read only when the
// call has no "now" of its own (hostNow).
const optionalNow = (now) => (now === undefined ? undefined : nowOption(now));
const hostNow = (now) => (now === undefined ? Date.now() : now);
function nowOption(now) {
  if (typeof now === 'number' && Number.isFinite(now) && Math.abs(now) <= 8.64e15) return now;
  throw new ToolgateError(`the \`now\` option must be epoch milliseconds, a finite number within the Date range (got ${String(now)})`);
}

// A call JSON cannot hold (a BigInt, a cycle, a function) never reaches the core.
function unrepresentableCall(call) {
  return { decision: 'deny', code: 'invalid_call', rule: '', message: `Malformed tool call: ${notJson('the call', call)}.` };
}

function storeFailure(message) {
  return { decision: 'deny', code: 'store_error', rule: '', message };
}

// authorize()'s answer for a call that does not go ahead (or charged nothing).
const DONE = Promise.resolve();
const DONE_FN = () => DONE;
const settled = (decision) => ({ decision, commit: DONE_FN, rollback: DONE_FN });
const NOTHING_RESERVED = Object.freeze({ admitted: true, states: Object.freeze([]), charges: Object.freeze([]) });
// What commit() does for a reservation: nothing when nothing was charged; the
// memory store's commitNow at once.
function commitFor(counters, reservation, charged) {
  if (!charged) return DONE_FN;
  return typeof counters.commitNow === 'function'
    ? () => { counters.commitNow(reservation); return DONE; }
    : () => counters.commit(reservation);
}

// decide()'s second half for an authorize() that had to wait.
const committed = async ({ decision, commit }) => {
  await commit();
  return decision;
};

// The input area's first size: room for any usual call, so it is asked for
// once and the encoder writes every call straight into it.
const INPUT_SIZE = 4096;

class Toolgate {
  #options;
  #core;
  #generation = 0;
  // The hot path's decoder for this instance (wasm/boundary-layout.js): the
  // layout the core exports, checked here at load, so a core and façade
  // built apart fail the load, never a decision.
  #read;
  #writeCounts;
  #input;
  #forgetInput;
  #coreLent = 0; // callCore() calls under way
  #maxParked;
  // Every use of the engine counts here (#ready): a call encoded straight
  // into the input area is sent only if nothing used the engine while it was
  // being encoded (a getter of the call deciding another call, say).
  #uses = 0;
  // Bytes the engine's input area is known to hold (toolgate_input only grows it).
  #inputSize = INPUT_SIZE;
  #tables = null; // this instance's side of the memory stores' tables

  // The table of `counters` in this engine instance when decide() can
  // reserve, finish and commit in one call into the engine: a
  // MemoryCounterStore bound to this instance (bound now if it was never
  // used); else 0.
  tableOf(counters) {
    if (this.#core === null) return 0;
    return memoryTableIn(counters, this.#tables);
  }

  constructor(core, options) {
    this.#useCore(core);
    this.#options = options;
    this.binaryCalls = options.boundary !== 'json';
  }

  #useCore(core) {
    const { read, writeCounts, input, forgetInput, layout } = coreCodec(core);
    // The memory stores' tables in this instance (memory-store.js): each
    // call into it counts as a use of the engine, as #ready does.
    const use = () => {
      this.#uses += 1;
      abandonEncodingInto();
    };
    const trapped = (error) => {
      if (this.#core === core) this.#failed(error);
    };
    this.#tables = createTableCodec(core, layout, use, (message) => new StoreError(message), trapped);
    this.#read = read;
    this.#writeCounts = writeCounts;
    this.#input = input;
    this.#forgetInput = forgetInput;
    this.#maxParked = layout.maxParked;
    this.#core = core;
    this.#inputSize = INPUT_SIZE; // a new instance's area starts small again
  }

  /** How many evaluations of one policy may wait for their stores at once (authorize() refuses more, store_error). */
  get maxParked() {
    return this.#maxParked;
  }

  /** The core's version, e.g. "0.1.0". */
  get version() {
    return this.#call(() => this.#core.version());
  }

  /** Compiles a policy (JSON text or object). Throws PolicyError with every problem. */
  compile(policy, { source = 'policy' } = {}) {
    const text = jsonText(policy);
    if (text === null) throw new PolicyError([policyDiagnostic(policy)], source);
    const compiled = new Policy(this, text);
    if (!compiled.ok) {
      const diagnostics = compiled.diagnostics;
      compiled.dispose();
      throw new PolicyError(diagnostics, source);
    }
    return compiled;
  }

  /** Checks a policy without throwing: { ok, diagnostics }. */
  check(policy) {
    const text = jsonText(policy);
    if (text === null) return { ok: false, diagnostics: [policyDiagnostic(policy)] };
    const compiled = new Policy(this, text);
    const result = { ok: compiled.ok, diagnostics: compiled.diagnostics };
    compiled.dispose();
    return result;
  }

  /**
   * Where a JSON Pointer (a decision's `rule`) stands in a policy's text:
   * { line, column } (1-based, column in code points), falling back to the
   * nearest enclosing value; null when the text is not JSON.
   */
  locate(policyText, pointer) {
    const text = jsonText(String(policyText));
    const at = this.#call(() => this.#core.locate(text, String(pointer)));
    const [line, column] = at.split(',').map(Number);
    return line > 0 ? { line, column } : null;
  }

  /** Epoch milliseconds of a timestamp (ms number or RFC 3339 string), or NaN. */
  parseTime(value) {
    const text = typeof value === 'string' ? JSON.stringify(value) : jsonText(value);
    if (text === null) return NaN;
    return this.#call(() => this.#core.readTimestamp(text));
  }

  /** Step two of an evaluation: a pending evaluation plus the store's answer -> Decision. */
  finish(pending, approved, states) {
    const input = jsonText({ pending, approved, states });
    if (input === null) return storeFailure(`${notJson("the counter store's answer", states)}; denied (fail closed).`);
    const text = this.#call(() => this.#core.finish(input));
    return decisionFrom(JSON.parse(text));
  }

  // --- internal ---------------------------------------------------------
  get generation() {
    return this.#generation;
  }

  newHandle(text) {
    return this.#call(() => new this.#core.CompiledPolicy(text));
  }

  // Runs fn against the instance. A trap (out of memory, a bug) would leave
  // the instance in an unknown state, so it is replaced: policies recompile on
  // next use and the caller gets an EngineError, never a bare number.
  #call(fn) {
    this.#ready();
    try {
      return fn();
    } catch (error) {
      throw this.#failed(error);
    }
  }

  #ready() {
    this.#uses += 1;
    // Used from a getter of a call being written into the input area: that
    // encoding stops writing there now, before this use can move the area.
    abandonEncodingInto();
    if (!this.#core) throw new EngineError('the WebAssembly engine is restarting; await toolgate.ready()');
  }

  // The error to throw for `error` from the engine, restarting it on a trap.
  #failed(error) {
    if (error instanceof ToolgateError) return error;
    this.#generation += 1;
    this.#core = null;
    this.#replacement = instantiate(this.#options).then((core) => this.#useCore(core));
    return new EngineError(`the WebAssembly engine failed and was restarted: ${error?.message ?? error}`, { cause: error });
  }

  #replacement = null;

  /** Resolves once a restarted engine is ready (after an EngineError). */
  async ready() {
    if (this.#replacement) await this.#replacement;
    return this;
  }

  callCore(fn) {
    // `fn` may call toolgate_input itself (and decide in between): while it
    // runs, and once after, the input area's address is asked for again.
    this.#forgetInput();
    this.#coreLent += 1;
    try {
      return this.#call(() => fn(this.#core));
    } finally {
      this.#coreLent -= 1;
      this.#forgetInput();
    }
  }

  // The hot path: `call` encoded straight into the engine's input area, then
  // start; returns the output (the codec's read), or null when the call must
  // go as JSON text (what the binary form cannot carry). `now` undefined: the
  // host's clock, read only for a call without a "now" of its own (the core
  // uses the default time for nothing else; Date.now() costs about 40 ns).
  // `table` (decide() with a memory store bound to this instance): the call
  // is decided, charged and committed in this one call when it needs no
  // approval (toolgate_decide); else it parks as with `park`.
  startEncoded(address, call, now, park, table = 0) {
    // #call's work inline: no closure per decision on the hot path.
    this.#ready();
    try {
      const core = this.#core;
      const uses = this.#uses;
      // The area as it is: toolgate_input grows it only when asked for more.
      if (this.#coreLent !== 0) this.#forgetInput();
      let input = this.#input(core, this.#inputSize);
      let heap = core.HEAPU8;
      let length = encodeCallInto(call, heap, input, this.#inputSize);
      if (length === OVERFLOW) {
        // Larger than the area: encoded apart, then copied into a larger one.
        length = encodeCall(call);
        if (length < 0) return null;
        input = this.#input(core, length); // may grow memory: read HEAPU8 after
        if (length > this.#inputSize) this.#inputSize = length;
        heap = core.HEAPU8;
        heap.set(encodedBytes(length), input);
      } else if (length < 0) {
        return null;
      }
      // A getter or proxy of the call that used the engine (deciding another
      // call, compiling a policy) may have overwritten the area or grown the
      // memory under the encoder: then the bytes are not this call's.
      if (this.#uses !== uses || this.#core !== core || core.HEAPU8 !== heap) return null;
      const ms = now !== undefined ? now : encodedCallHasNow() ? 0 : Date.now();
      if (table !== 0) core._toolgate_decide(address, table, length, ms);
      else core._toolgate_start(address, length, ms, park ? 1 : 0);
      return this.#read(core);
    } catch (error) {
      throw this.#failed(error);
    }
  }

  // The same for a call as JSON text (what the binary form cannot carry).
  startText(handle, text, now, park) {
    return this.#call(() => {
      handle.startText(text, now, park);
      return this.#read(this.#core);
    });
  }

  // Step two of a parked evaluation, the store's counts as f64 pairs.
  // `release`: the engine releases the ticket too, in the same call.
  finishEncoded(address, ticket, approved, states, release = false) {
    this.#ready();
    try { // #call's work inline, as in startEncoded
      const core = this.#core;
      if (this.#coreLent !== 0) this.#forgetInput();
      const count = this.#writeCounts(core, states);
      core._toolgate_finish(address, ticket, approved ? 1 : 0, count, release ? 1 : 0);
      return this.#read(core);
    } catch (error) {
      throw this.#failed(error);
    }
  }

  release(address, ticket) {
    this.#ready();
    try {
      this.#core._toolgate_release(address, ticket);
    } catch (error) {
      throw this.#failed(error);
    }
  }

  // explain()'s step one: as startEncoded (length >= 0, the encoded call) or
  // startText (`text`), parked, with the core tracing its steps; the parked
  // evaluation keeps a trace for its finish (finishTrace). Returns the
  // output read and step one's { trace, pending? } (parsed JSON).
  startTraced(handle, length, text, now) {
    return this.#call(() => {
      const core = this.#core;
      if (length >= 0) {
        if (this.#coreLent !== 0) this.#forgetInput();
        const input = this.#input(core, length); // may grow memory: read HEAPU8 after
        core.HEAPU8.set(encodedBytes(length), input);
        handle.startBufferTraced(length, now);
      } else {
        handle.startTextTraced(text, now);
      }
      const raw = this.#read(core);
      return { raw, stepOne: JSON.parse(core.tracedStart()) };
    });
  }

  // The steps of the last finish of a parked evaluation from startTraced
  // (read before its release).
  finishTrace(handle, ticket) {
    return JSON.parse(this.#call(() => handle.finishTrace(ticket)));
  }
}

class Policy {
  #toolgate;
  #text;
  #handle = null;
  #generation = -1;
  #handleAddress = 0;
  #diagnostics;
  #ok;
  #hash;
  #names;
  #modes;
  #limits = null;

  constructor(toolgate, text) {
    this.#toolgate = toolgate;
    this.#text = text;
    // One crossing for everything read once per policy (CompiledPolicy::summary
    // in wasm/bindings.cpp): each distinct engine method costs a cold start
    // its first run, and a clean policy's summary is built without nlohmann's
    // serializer.
    const summary = JSON.parse(this.#acquire().summary());
    this.#ok = summary.ok;
    this.#diagnostics = summary.diagnostics;
    this.#hash = summary.hash;
    // Frozen all the way down: hosts share it, and a proxy deciding on it
    // must not see a name added or removed by someone else's code.
    this.#names = Object.freeze({ exact: Object.freeze(summary.exact), globs: Object.freeze(summary.globs) });
    this.#modes = Object.freeze({ policy: summary.monitor, tools: Object.freeze(summary.monitored) });
  }

  /**
   * Where the policy sets "mode": "monitor": `policy` (the whole document) and
   * `tools` (the keys of entries in monitor mode), read-only.
   */
  get modes() {
    return this.#modes;
  }

  /**
   * Whether calls to `tool` run in monitor mode ("mode": "monitor" on the
   * document, or on the tools entry that governs the tool). The decision is
   * the same either way; a proxy forwards a monitored call it would refuse.
   */
  isMonitored(tool) {
    if (this.#modes.policy) return true;
    if (this.#modes.tools.length === 0) return false;
    return this.#toolgate.callCore(() => this.#acquire().monitored(wellFormed(String(tool))));
  }

  /** True when the policy compiled (Toolgate.compile only returns such policies). */
  get ok() {
    return this.#ok;
  }

  /** Warnings (and, for failed checks, errors) with line, column and pointer. */
  get diagnostics() {
    return this.#diagnostics.map((d) => ({ ...d }));
  }

  /** SHA-256 of the policy text (as sha256sum prints it), for audit logs. */
  get hash() {
    return this.#hash;
  }

  /** The policy's source text. */
  get source() {
    return this.#text;
  }

  /**
   * Every tool name the policy mentions, read-only: `exact` (tools keys and
   * hide entries without `*`) and `globs` (those with `*`), each sorted and
   * without repeats. A proxy uses them to refuse look-alikes of these names.
   */
  get names() {
    return this.#names;
  }

  /**
   * Every limit of the policy and the counter it charges, read-only, from the
   * compiled plan: { rule, tool (the tools key, null for all_tools), counter
   * (its name; the rule when unnamed), named, scope, window_ms, algorithm,
   * max, cost (null with cost_from), cost_from, key (the path it is counted
   * per, or null), message }. A pending evaluation's `limits[i].rule` is one
   * of these rules: hosts explain counters from here, never from counter keys.
   */
  get limits() {
    // Built on first use: most hosts never ask, and compile stays as fast.
    if (!this.#limits) {
      const limits = JSON.parse(this.#toolgate.callCore(() => this.#acquire().limits()));
      // Fields in the documented order (the core's JSON has them sorted).
      this.#limits = Object.freeze(limits.map((l) => Object.freeze({
        rule: l.rule, tool: l.tool, counter: l.counter, named: l.named, scope: l.scope, window_ms: l.window_ms,
        algorithm: l.algorithm, max: l.max, cost: l.cost, cost_from: l.cost_from, key: l.key, message: l.message,
      })));
    }
    return this.#limits;
  }

  /** Whether `tool` is hidden (vanishes from tools/list, every call denied). */
  isHidden(tool) {
    return this.#toolgate.callCore(() => this.#acquire().hidden(wellFormed(String(tool))));
  }

  /**
   * Step one: the decision if it needs no store, else a pending evaluation
   * ({ pending: true, approval?, counters, limits, ... }) for finish().
   */
  evaluate(call, { now } = {}) {
    const ms = optionalNow(now);
    if (this.#toolgate.binaryCalls && typeof call !== 'string') { // a string is JSON text
      const raw = this.#toolgate.startEncoded(this.#address(), call, ms, false);
      if (raw !== null) return raw;
    }
    const text = jsonText(call);
    if (text === null) return unrepresentableCall(call);
    return this.#toolgate.startText(this.#acquireHandle(), text, hostNow(ms), false);
  }

  /**
   * The whole decision for a call, charging counters in `counters` (a
   * CounterStore) and using approvals from `approvals`. Resolves to
   * { decision, commit(), rollback() }: call rollback() if the upstream call
   * fails, so the quota is given back.
   */
  async authorize(call, options) {
    return this.#authorize(call, options);
  }

  // authorize()'s work, answered at once when nothing needs waiting for (a
  // settled call; no approval and a store with reserveNow, as the memory
  // store), else as a promise: decide() then spends no turn of the event
  // loop on a call the engine and the store answered synchronously.
  // With `committing` (decide()), a call decided at once comes back as the
  // decision itself, its charge already committed: the common case (a
  // settled call; no approval and a store with reserveNow) then builds no
  // step, closure or answer object.
  #authorize(call, { counters, approvals, now, failOpen = false, observe } = {}, committing = false) {
    // decide() with a memory store bound to this engine instance: one call
    // into the engine reserves, finishes and commits (a decision comes back);
    // a call that needs an approval parks and goes on below.
    const table = committing && observe === undefined && counters !== undefined ? this.#toolgate.tableOf(counters) : 0;
    const first = this.#start(call, now, table);
    if (first.ticket === undefined) return committing && typeof first.decision === 'string' ? first : settled(first);
    if (committing && !first.approval && observe === undefined && first.counters.length > 0 && typeof counters?.reserveNow === 'function') {
      return this.#decideNow(first, counters, approvals, failOpen); // releases the ticket on every path
    }
    // The pending evaluation stays parked in the engine under a ticket;
    // finish() sends back only the counts. Every path releases it, once the
    // answer is known.
    const release = () => this.#release(first.handle, first.address, first.ticket);
    let answer;
    try {
      answer = this.#authorizeParked(first, counters, approvals, failOpen, observe);
    } catch (error) {
      release();
      throw error;
    }
    if (typeof answer.then !== 'function') {
      release();
      return answer;
    }
    return answer.finally(release);
  }

  // decide()'s common case, inline: the memory store reserves at once, the
  // engine finishes, the charge is committed. What #reserveStep and
  // #decideStep do for it, step for step; the rare turns (the store throws,
  // the store and the core disagree, a store without commitNow) answer as
  // they would.
  // The ticket is released on every path: finished and released in one call
  // into the engine on the common one.
  #decideNow(first, counters, approvals, failOpen) {
    let reservation;
    try {
      reservation = counters.reserveNow(first.counters, first.now);
    } catch (error) {
      try {
        const finish = (approved, states) => this.#finishParked(first.handle, first.address, first.ticket, approved, states);
        return this.#reserveFailed({ first, counters, approvals, failOpen, finish }, error);
      } finally {
        this.#release(first.handle, first.address, first.ticket);
      }
    }
    let decision;
    try {
      decision = this.#finishParked(first.handle, first.address, first.ticket, true, reservation.states, true);
    } catch (error) {
      // Thrown before or after the engine's finish: releasing a released
      // ticket finds nothing (tickets are not reused while JS holds them).
      this.#release(first.handle, first.address, first.ticket);
      throw error;
    }
    if ((decision.decision === 'allow') !== Boolean(reservation.admitted)) {
      // The store and the core disagree (a store bug): deny, give back.
      const denied = () => settled(storeFailure('The counter store and the policy disagree; the call is denied (fail closed).'));
      return reservation.admitted ? Promise.resolve(counters.rollback(reservation)).then(denied) : denied();
    }
    if (decision.decision !== 'allow') return decision;
    if (typeof counters.commitNow === 'function') {
      counters.commitNow(reservation);
      return decision;
    }
    return { decision, commit: () => counters.commit(reservation), rollback: DONE_FN };
  }

  // Step two of a parked evaluation: the approval (if any) looked up, the
  // counters reserved, the decision finished. Each step returns a promise
  // only when its store does (or on the rare paths that give quota back).
  #authorizeParked(first, counters, approvals, failOpen, observe) {
    const finish = (approved, states) => {
      // explain() is told what the stores answered, to trace the same step two.
      observe?.(approved, states);
      return this.#finishParked(first.handle, first.address, first.ticket, approved, states);
    };
    const step = { first, counters, approvals, failOpen, finish };
    return first.approval ? this.#approvalStep(step) : this.#reserveStep(step);
  }

  async #approvalStep(step) {
    const { first, approvals, finish } = step;
    if (!approvals) return settled(finish(false, []));
    let approved;
    try {
      approved = await approvals.isApproved(first.approval.id, first.approval.timeout_ms, first.now);
    } catch (error) {
      return settled(storeFailure(`The approval store failed; the call is denied (fail closed): ${error?.message ?? error}`));
    }
    if (!approved) return settled(finish(false, []));
    return this.#reserveStep(step);
  }

  #reserveStep(step) {
    const { first, counters } = step;
    if (first.counters.length === 0) return this.#decideStep(step, NOTHING_RESERVED, false);
    if (!counters) throw new ToolgateError('this policy has limits: pass a counter store as `counters`');
    if (typeof counters.reserveNow !== 'function') {
      let reserving;
      try {
        reserving = Promise.resolve(counters.reserve(first.counters, first.now));
      } catch (error) {
        return this.#reserveFailed(step, error);
      }
      return reserving.then((reservation) => this.#decideStep(step, reservation, true), (error) => this.#reserveFailed(step, error));
    }
    // The memory store answers at once: no promise to wait for.
    let reservation;
    try {
      reservation = counters.reserveNow(first.counters, first.now);
    } catch (error) {
      return this.#reserveFailed(step, error);
    }
    return this.#decideStep(step, reservation, true);
  }

  #reserveFailed(step, error) {
    if (!step.failOpen) {
      return settled(storeFailure(`The counter store failed; the call is denied (fail closed): ${error?.message ?? error}`));
    }
    // Fail open: decide as if every count were zero, charge nothing, and
    // still use the approval up below.
    const states = step.first.counters.map(() => ({ current: 0, previous: 0 }));
    return this.#decideStep(step, { admitted: undefined, states, charges: [] }, false);
  }

  #decideStep(step, reservation, charged) {
    const { first, counters, finish } = step;
    const rollback = () => (charged ? counters.rollback(reservation) : DONE);
    const decision = finish(true, reservation.states);
    if (charged && (decision.decision === 'allow') !== Boolean(reservation.admitted)) {
      // The store and the core disagree (a store bug): deny, give back.
      const denied = () => settled(storeFailure('The counter store and the policy disagree; the call is denied (fail closed).'));
      return reservation.admitted ? Promise.resolve(rollback()).then(denied) : denied();
    }
    if (decision.decision === 'allow' && first.approval) return this.#consumeStep(step, decision, reservation, charged, rollback);
    if (decision.decision !== 'allow') return settled(decision);
    return { decision, commit: commitFor(counters, reservation, charged), rollback };
  }

  // An approved call that is allowed uses its approval up.
  async #consumeStep(step, decision, reservation, charged, rollback) {
    const { first, counters, approvals, finish } = step;
    let consumed;
    try {
      consumed = await approvals.consume(first.approval.id, first.approval.timeout_ms, first.now);
    } catch (error) {
      await rollback();
      return settled(storeFailure(`The approval store failed; the call is denied (fail closed): ${error?.message ?? error}`));
    }
    if (!consumed) {
      // Another call used this approval first.
      await rollback();
      return settled(finish(false, []));
    }
    return { decision, commit: commitFor(counters, reservation, charged), rollback };
  }

  // Step one of authorize(): a decision, or the parked evaluation's ticket.
  // `table`: startEncoded's (decide() with a bound memory store).
  #start(call, now, table = 0) {
    const ms = optionalNow(now);
    let raw = null;
    if (this.#toolgate.binaryCalls && typeof call !== 'string') { // a string is JSON text
      const address = this.#address();
      raw = this.#toolgate.startEncoded(address, call, ms, true, table);
      if (raw !== null) {
        if (raw.ticket === undefined) return raw;
        raw.address = address;
      }
    }
    if (raw === null) {
      const text = jsonText(call);
      if (text === null) return unrepresentableCall(call);
      raw = this.#toolgate.startText(this.#acquireHandle(), text, hostNow(ms), true);
      if (raw.ticket === undefined) return raw;
      raw.address = this.#handleAddress;
    }
    raw.handle = this.#handle;
    return raw;
  }

  // Whether the handle a parked evaluation lives in is still this policy's
  // current one (the engine may have restarted, or the policy been disposed,
  // while the stores answered).
  #current(handle) {
    return handle === this.#handle && this.#generation === this.#toolgate.generation;
  }

  // `release`: the engine releases the ticket with the finish.
  #finishParked(handle, address, ticket, approved, states, release = false) {
    if (!this.#current(handle)) {
      return storeFailure('The policy engine restarted while the stores answered; the call is denied (fail closed).');
    }
    return this.#toolgate.finishEncoded(address, ticket, approved, states ?? [], release);
  }

  #release(handle, address, ticket) {
    if (this.#current(handle)) this.#toolgate.release(address, ticket);
  }

  /**
   * decide(), traced: the decision (counters charged as decide() charges
   * them) with `trace`, its steps as the core took them: which entry
   * matched, each condition with the value it read and whether it held, each
   * limit with its count before this call, the approval looked up. One
   * evaluation, traced as it decides: for people asking why (tracing builds
   * JSON for every step, so it is slower than decide()).
   * @returns {Promise<object>} the decision plus `trace` (an array of steps)
   */
  async explain(call, options = {}) {
    return (await this.explainWithCounters(call, options)).decision;
  }

  /**
   * explain(), with the evaluation it traced, for hosts that show counters
   * (the playground) without evaluating the call again: { decision (with
   * `trace`), pending (the pending evaluation: the counters the call needed
   * and the limits checking them; null when no store was needed), states
   * (what the counter store answered before this call, one per
   * pending.counters; [] when it was not asked) }.
   */
  async explainWithCounters(call, options = {}) {
    const { counters, approvals, now = Date.now(), failOpen = false } = options;
    // Step one, traced: the evaluation authorize() would make, parked, its
    // steps kept. Step two is authorize()'s own (#authorizeParked), on this
    // parked evaluation; the core traces its finish into the parked slot.
    const started = this.#startTraced(call, now);
    if (started === null) return { decision: { ...unrepresentableCall(call), trace: [] }, pending: null, states: [] };
    const { first, stepOne } = started;
    const pending = stepOne.pending ?? null;
    if (first.ticket === undefined) return { decision: { ...first, trace: stepOne.trace }, pending, states: [] };
    let seen = null;
    const observe = (approved, states) => { seen = { approved, states }; };
    let answer;
    let finishSteps;
    try {
      answer = await this.#authorizeParked(first, counters, approvals, failOpen, observe);
      // The last finish's steps (authorize() may finish twice: an approval
      // used up meanwhile), read before the ticket is released.
      finishSteps = seen && this.#current(first.handle) ? this.#toolgate.finishTrace(first.handle, first.ticket) : [];
    } finally {
      this.#release(first.handle, first.address, first.ticket);
    }
    await answer.commit();
    const states = (seen?.states ?? []).map((s) => ({ current: s.current, previous: s.previous }));
    return { decision: { ...answer.decision, trace: [...stepOne.trace, ...finishSteps] }, pending, states };
  }

  // explain()'s step one, as #start but traced: { first (the decision, or
  // the parked evaluation's ticket, address and handle), stepOne: { trace,
  // pending? } }; null for a call JSON cannot carry.
  #startTraced(call, now) {
    const ms = nowOption(now);
    const length = this.#toolgate.binaryCalls && typeof call !== 'string' ? encodeCall(call) : -1; // a string is JSON text
    const text = length >= 0 ? null : jsonText(call);
    if (length < 0 && text === null) return null;
    const handle = this.#acquireHandle();
    const { raw, stepOne } = this.#toolgate.startTraced(handle, length, text, ms);
    if (raw.ticket !== undefined) {
      raw.address = this.#handleAddress;
      raw.handle = this.#handle;
    }
    return { first: raw, stepOne };
  }

  /**
   * What authorize() would decide for `call` now, charging nothing and using
   * no approval up (a preview, "what if I sent this?"): the approval store is
   * asked isApproved() and the counter store peek(requests, now), never
   * reserve() or consume(). One evaluation. Resolves to { decision, pending,
   * states } as explainWithCounters() does (no trace). A store that fails
   * gives store_error, as authorize() does; limits without a counter store
   * that can peek() throw.
   */
  async preview(call, { counters, approvals, now = Date.now() } = {}) {
    const first = this.evaluate(call, { now });
    if (!first.pending) return { decision: first, pending: null, states: [] };
    const answer = (decision, states = []) => ({ decision, pending: first, states });
    if (first.approval) {
      let approved = false;
      try {
        approved = approvals ? await approvals.isApproved(first.approval.id, first.approval.timeout_ms, first.now) : false;
      } catch (error) {
        return answer(storeFailure(`The approval store failed; the call is denied (fail closed): ${error?.message ?? error}`));
      }
      if (!approved) return answer(this.#toolgate.finish(first, false, []));
    }
    let states = [];
    if (first.counters.length > 0) {
      if (typeof counters?.peek !== 'function') throw new ToolgateError('this policy has limits: pass a counter store that can peek() as `counters`');
      try {
        states = await counters.peek(first.counters, first.now);
      } catch (error) {
        return answer(storeFailure(`The counter store failed; the call is denied (fail closed): ${error?.message ?? error}`));
      }
    }
    return answer(this.#toolgate.finish(first, true, states), states);
  }

  /** authorize() and commit at once: the decision for a call that goes ahead. */
  decide(call, options) {
    try {
      const answer = this.#authorize(call, options, true);
      // Decided and committed at once (a settled call, the memory store).
      if (typeof answer.decision === 'string') return Promise.resolve(answer);
      if (typeof answer.then === 'function') return answer.then(committed);
      // Answered at once: commit now, and wait only for a commit that is
      // still under way.
      const done = answer.commit();
      return done === DONE ? Promise.resolve(answer.decision) : Promise.resolve(done).then(() => answer.decision);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #acquireHandle() {
    return this.#toolgate.callCore(() => this.#acquire());
  }

  // The current handle's address in the engine, for the hot-path exports.
  #address() {
    if (!this.#current(this.#handle)) this.#toolgate.callCore(() => this.#acquire());
    return this.#handleAddress;
  }

  /** Frees the compiled plan now instead of at garbage collection. */
  dispose() {
    if (this.#handle) {
      policyRegistry?.unregister(this);
      this.#handle.delete();
      this.#handle = null;
    }
  }

  // The plan in the current engine instance, recompiled after a restart.
  #acquire() {
    if (this.#handle && this.#generation === this.#toolgate.generation) return this.#handle;
    if (this.#handle) policyRegistry?.unregister(this);
    this.#handle = this.#toolgate.newHandle(this.#text);
    this.#handleAddress = this.#handle.address();
    this.#generation = this.#toolgate.generation;
    policyRegistry?.register(this, this.#handle, this);
    return this.#handle;
  }
}

const shared = new Map();

// The `warm` option's policy and call: the common paths of a compile (a tool
// with a condition on an argument, a grant attribute and a limit) and of a
// decision (arguments read, conditions checked, a counter reserved and the
// call finished). V8 compiles each WebAssembly function the first time it runs
// (lazily, in Node, Chromium and workerd alike), and those first runs are most
// of a cold start's cost; warming moves them to load time, off the first call.
const WARM_POLICY = JSON.stringify({
  version: '1',
  default: 'deny',
  tools: {
    run: {
      require: [{ path: 'args.mode', op: 'in', value: ['a', 'b'] }],
      deny_if: [{ conditions: [{ path: 'args.n', op: 'gt', value: 5 }, { path: 'grant.role', op: 'neq', value: 'admin' }] }],
      rate_limit: '10/minute',
    },
  },
});
const WARM_CALL = { tool: 'run', arguments: { mode: 'a', n: 1 }, grant: { id: 'warm', role: 'x' }, now: 0 };

async function warmUp(toolgate) {
  const policy = toolgate.compile(WARM_POLICY);
  try {
    // A fixed clock: nothing here reads the time (Workers' module scope has none).
    await policy.decide(WARM_CALL, { counters: new MemoryCounterStore(), now: 0 });
  } finally {
    policy.dispose();
  }
  return toolgate;
}

/**
 * Loads the WebAssembly core. Options: `wasmModule` (a compiled
 * WebAssembly.Module, for workerd), `wasmBinary` (bytes), `wasmUrl` (where to
 * fetch it in a browser), `boundary` (`'binary'`, the default, writes calls
 * straight into WebAssembly memory; `'json'` sends them as JSON text, for
 * comparing the two), `warm` (true: compile a small policy and decide one call
 * before resolving, so the first real compile and decision do not pay for
 * compiling the engine's code; for a load at startup, as worker/workers.js
 * does at module scope). Calls without options share one instance.
 */
export async function loadToolgate(options = {}) {
  if (options.boundary !== undefined && options.boundary !== 'binary' && options.boundary !== 'json') {
    throw new ToolgateError(`the \`boundary\` option is 'binary' or 'json' (got ${String(options.boundary)})`);
  }
  if (options.warm !== undefined && typeof options.warm !== 'boolean') {
    throw new ToolgateError(`the \`warm\` option is true or false (got ${String(options.warm)})`);
  }
  const key = options.wasmModule || options.wasmBinary || options.wasmUrl || options.boundary === 'json' || options.warm ? null : 'default';
  if (key && shared.has(key)) return shared.get(key);
  const loading = instantiate(options).then((core) => new Toolgate(core, options)).then((toolgate) => (options.warm ? warmUp(toolgate) : toolgate));
  if (key) {
    shared.set(key, loading);
    loading.catch(() => shared.delete(key));
  }
  return loading;
}

export default loadToolgate;
