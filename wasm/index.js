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
import { MemoryApprovalStore, MemoryCounterStore, estimateCount } from './memory-store.js';

export { EngineError, PolicyError, StoreError, ToolgateError, MemoryApprovalStore, MemoryCounterStore, estimateCount };

// Resolved lazily: workerd has no meaningful import.meta.url (it gets wasmModule).
const wasmUrl = () => new URL('./dist/toolgate_core.wasm', import.meta.url);
const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

async function instantiate(options) {
  const moduleArgs = {
    // The core reports through return values; nothing should print.
    print: () => {},
    printErr: () => {},
  };
  if (options.wasmModule) {
    // workerd: code generation from bytes is not allowed, so a module
    // compiled at deploy time is instantiated directly.
    moduleArgs.instantiateWasm = (imports, receive) => {
      WebAssembly.instantiate(options.wasmModule, imports).then((instance) => receive(instance, options.wasmModule));
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
            WebAssembly.instantiate(await (await fetch(url)).arrayBuffer(), imports))
        : response.then((r) => r.arrayBuffer()).then((bytes) => WebAssembly.instantiate(bytes, imports));
      instantiated.then(({ instance, module }) => receive(instance, module));
      return {};
    };
  }
  return createToolgateCore(moduleArgs);
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

function storeFailure(message) {
  return { decision: 'deny', code: 'store_error', rule: '', message };
}

class Toolgate {
  #options;
  #core;
  #generation = 0;

  constructor(core, options) {
    this.#core = core;
    this.#options = options;
  }

  /** The core's version, e.g. "0.1.0". */
  get version() {
    return this.#call(() => this.#core.version());
  }

  /** Compiles a policy (JSON text or object). Throws PolicyError with every problem. */
  compile(policy, { source = 'policy' } = {}) {
    const text = typeof policy === 'string' ? policy : JSON.stringify(policy);
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
    const text = typeof policy === 'string' ? policy : JSON.stringify(policy);
    const compiled = new Policy(this, text);
    const result = { ok: compiled.ok, diagnostics: compiled.diagnostics };
    compiled.dispose();
    return result;
  }

  /** Epoch milliseconds of a timestamp (ms number or RFC 3339 string), or NaN. */
  parseTime(value) {
    return this.#call(() => this.#core.readTimestamp(JSON.stringify(value ?? null)));
  }

  /** Step two of an evaluation: a pending evaluation plus the store's answer -> Decision. */
  finish(pending, approved, states) {
    const text = this.#call(() => this.#core.finish(JSON.stringify({ pending, approved, states })));
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
    if (!this.#core) throw new EngineError('the WebAssembly engine is restarting; await toolgate.ready()');
    try {
      return fn();
    } catch (error) {
      if (error instanceof ToolgateError) throw error;
      this.#generation += 1;
      this.#core = null;
      this.#replacement = instantiate(this.#options).then((core) => {
        this.#core = core;
      });
      throw new EngineError(`the WebAssembly engine failed and was restarted: ${error?.message ?? error}`, { cause: error });
    }
  }

  #replacement = null;

  /** Resolves once a restarted engine is ready (after an EngineError). */
  async ready() {
    if (this.#replacement) await this.#replacement;
    return this;
  }

  callCore(fn) {
    return this.#call(() => fn(this.#core));
  }
}

class Policy {
  #toolgate;
  #text;
  #handle = null;
  #generation = -1;
  #diagnostics;
  #ok;
  #hash;

  constructor(toolgate, text) {
    this.#toolgate = toolgate;
    this.#text = text;
    const handle = this.#acquire();
    this.#ok = handle.ok();
    this.#diagnostics = JSON.parse(handle.diagnostics());
    this.#hash = handle.hash();
  }

  /** True when the policy compiled (Toolgate.compile only returns such policies). */
  get ok() {
    return this.#ok;
  }

  /** Warnings (and, for failed checks, errors) with line, column and pointer. */
  get diagnostics() {
    return this.#diagnostics.map((d) => ({ ...d }));
  }

  /** SHA-256 of the policy's canonical JSON, for audit logs. */
  get hash() {
    return this.#hash;
  }

  /** The policy's source text. */
  get source() {
    return this.#text;
  }

  /** Whether `tool` is hidden (vanishes from tools/list, every call denied). */
  isHidden(tool) {
    return this.#toolgate.callCore(() => this.#acquire().hidden(String(tool)));
  }

  /**
   * Step one: the decision if it needs no store, else a pending evaluation
   * ({ pending: true, approval?, counters, limits, ... }) for finish().
   */
  evaluate(call, { now = Date.now() } = {}) {
    const text = typeof call === 'string' ? call : JSON.stringify(call ?? null);
    const raw = JSON.parse(this.#toolgate.callCore(() => this.#acquire().evaluate(text, now)));
    return raw.pending ? raw : decisionFrom(raw);
  }

  /**
   * The whole decision for a call, charging counters in `counters` (a
   * CounterStore) and using approvals from `approvals`. Resolves to
   * { decision, commit(), rollback() }: call rollback() if the upstream call
   * fails, so the quota is given back.
   */
  async authorize(call, { counters, approvals, now = Date.now(), failOpen = false } = {}) {
    const noop = async () => {};
    const first = this.evaluate(call, { now });
    if (!first.pending) return { decision: first, commit: noop, rollback: noop };
    const pending = first;
    let approved = false;
    if (pending.approval) {
      if (!approvals) return { decision: this.#toolgate.finish(pending, false, []), commit: noop, rollback: noop };
      try {
        approved = await approvals.isApproved(pending.approval.id, pending.approval.timeout_ms, pending.now);
      } catch (error) {
        return { decision: storeFailure(`The approval store failed; the call is denied (fail closed): ${error?.message ?? error}`), commit: noop, rollback: noop };
      }
      if (!approved) return { decision: this.#toolgate.finish(pending, false, []), commit: noop, rollback: noop };
    }
    let reservation = { admitted: true, states: [], charges: [] };
    if (pending.counters.length > 0) {
      if (!counters) throw new ToolgateError('this policy has limits: pass a counter store as `counters`');
      try {
        reservation = await counters.reserve(pending.counters, pending.now);
      } catch (error) {
        if (failOpen) {
          const decision = this.#toolgate.finish(pending, true, pending.counters.map(() => ({ current: 0, previous: 0 })));
          return { decision, commit: noop, rollback: noop };
        }
        return {
          decision: storeFailure(`The counter store failed; the call is denied (fail closed): ${error?.message ?? error}`),
          commit: noop,
          rollback: noop,
        };
      }
    }
    const rollback = () => (pending.counters.length > 0 ? counters.rollback(reservation) : Promise.resolve());
    let decision = this.#toolgate.finish(pending, true, reservation.states);
    if ((decision.decision === 'allow') !== Boolean(reservation.admitted)) {
      // The store and the core disagree (a store bug): deny, give back.
      if (reservation.admitted) await rollback();
      return { decision: storeFailure('The counter store and the policy disagree; the call is denied (fail closed).'), commit: noop, rollback: noop };
    }
    if (decision.decision === 'allow' && pending.approval) {
      const consumed = await approvals.consume(pending.approval.id, pending.approval.timeout_ms, pending.now);
      if (!consumed) {
        // Another call used this approval first.
        await rollback();
        decision = this.#toolgate.finish(pending, false, []);
        return { decision, commit: noop, rollback: noop };
      }
    }
    if (decision.decision !== 'allow') return { decision, commit: noop, rollback: noop };
    return {
      decision,
      commit: () => (pending.counters.length > 0 ? counters.commit(reservation) : Promise.resolve()),
      rollback,
    };
  }

  /** authorize() and commit at once: the decision for a call that goes ahead. */
  async decide(call, options) {
    const { decision, commit } = await this.authorize(call, options);
    await commit();
    return decision;
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
    this.#generation = this.#toolgate.generation;
    policyRegistry?.register(this, this.#handle, this);
    return this.#handle;
  }
}

const shared = new Map();

/**
 * Loads the WebAssembly core. Options: `wasmModule` (a compiled
 * WebAssembly.Module, for workerd), `wasmBinary` (bytes), `wasmUrl` (where to
 * fetch it in a browser). Calls without options share one instance.
 */
export async function loadToolgate(options = {}) {
  const key = options.wasmModule || options.wasmBinary || options.wasmUrl ? null : 'default';
  if (key && shared.has(key)) return shared.get(key);
  const loading = instantiate(options).then((core) => new Toolgate(core, options));
  if (key) {
    shared.set(key, loading);
    loading.catch(() => shared.delete(key));
  }
  return loading;
}

export default loadToolgate;
