// toolgate JS API (hand-written declarations for wasm/index.js).

/** A problem found in a policy. */
export interface Diagnostic {
  /** Stable identifier, e.g. "unknown_field", "json_syntax", "invalid_regex". */
  code: string;
  severity: 'error' | 'warning';
  /** What is wrong and how to fix it. */
  message: string;
  /** JSON Pointer (RFC 6901) of the offending part; "" is the whole document. */
  pointer: string;
  /** 1-based line; 0 when unknown. */
  line: number;
  /** 1-based column in Unicode code points; 0 when unknown. */
  column: number;
}

export type DecisionCode =
  | 'allowed'
  | 'invalid_call'
  | 'hidden'
  | 'default_deny'
  | 'tool_denied'
  | 'invalid_arguments'
  | 'requirement_failed'
  | 'condition_denied'
  | 'approval_required'
  | 'rate_limited'
  | 'store_error';

export interface Decision {
  decision: 'allow' | 'deny' | 'approval_required';
  code: DecisionCode;
  /** JSON Pointer of the deciding part of the policy, e.g. "/tools/run/limits/0". */
  rule: string;
  /** Human-readable, for the agent. */
  message: string;
  /** With code "rate_limited": milliseconds until the call could be admitted. */
  retry_after_ms?: number;
  /** With decision "approval_required": SHA-256 of the call's RFC 8785 form. */
  approval_id?: string;
}

/** A tool call as the core reads it. */
export interface Call {
  tool: string;
  /** Defaults to {}. */
  arguments?: Record<string, unknown>;
  /** A grant id, or an object with an id and attributes (read as grant.<name>). Defaults to "anonymous". */
  grant?: string | ({ id: string } & Record<string, unknown>);
  /** Epoch milliseconds or an RFC 3339 string. Defaults to the `now` option. */
  now?: number | string;
}

/** One count a call needs. Limits sharing counter name, window, algorithm and scope share a key. */
export interface CounterRequest {
  key: string;
  scope: 'grant' | 'global';
  /** The grant id for scope "grant", "" for "global". */
  grant: string;
  cost: number;
  /** Tightest max of the limits sharing this key. */
  max: number;
  window_ms: number;
  algorithm: 'fixed' | 'sliding';
  /** Start of the current epoch-aligned fixed bucket. */
  bucket_start_ms: number;
}

/** What a store holds for a counter: counts in the current and previous bucket. */
export interface CounterState {
  current: number;
  previous: number;
}

export interface Reservation {
  /** True when every counter admitted the call and was charged. */
  admitted: boolean;
  /** The counts seen before charging, one per request, in order. */
  states: CounterState[];
  /** Store-specific data for commit/rollback. */
  [detail: string]: unknown;
}

/**
 * Where counters live. reserve() must be atomic and all-or-nothing across
 * the requests: admit (and charge every counter) only when, for each one,
 * estimateCount(request, state, now) + request.cost <= request.max.
 */
export interface CounterStore {
  reserve(requests: CounterRequest[], now: number): Promise<Reservation>;
  /** Makes a reservation final (may be a no-op). */
  commit(reservation: Reservation): Promise<void>;
  /** Gives back what reserve() charged (the upstream call failed). */
  rollback(reservation: Reservation): Promise<void>;
  /** The counts without charging, one per request (Policy.preview needs it; every store in this package has it). */
  peek?(requests: CounterRequest[], now: number): Promise<CounterState[]>;
}

/** A call waiting for a human (the proxy records one per approval_required answer). */
export interface ApprovalRequest {
  /** The decision's approval_id. */
  id: string;
  grant: string;
  /** The upstream server's name ("default" for a single one). */
  server: string;
  tool: string;
  /** Shown to the approver; they decide on what exactly will run. */
  arguments: Record<string, unknown>;
  /** The decision's message. */
  message: string;
  /** Epoch ms of the first request. */
  requested_at: number;
  /** Epoch ms after which the request is dropped unanswered. */
  expires_at: number;
}

/**
 * Where approvals live. authorize() needs approve/isApproved/consume; the
 * proxy also records and lists requests (request/get/list/reject).
 */
export interface ApprovalStore {
  /** Approves an id (and removes its request from the waiting list). */
  approve(id: string, now: number): Promise<void>;
  isApproved(id: string, timeoutMs: number, now: number): Promise<boolean>;
  /** Uses an approval up (it allows one call); false when it was not valid. */
  consume(id: string, timeoutMs: number, now: number): Promise<boolean>;
  /** Records a waiting request; a request already waiting under the same id is kept as it is. */
  request?(request: ApprovalRequest): Promise<void>;
  /** A waiting request, or null (unknown, decided or expired). */
  get?(id: string, now: number): Promise<ApprovalRequest | null>;
  /** Waiting requests, oldest first, expired ones left out. */
  list?(now: number): Promise<ApprovalRequest[]>;
  /** A human said no: drops the request. False when it was not waiting. */
  reject?(id: string, now: number): Promise<boolean>;
}

/** Step one's answer when the decision needs the store. */
export interface PendingEvaluation {
  pending: true;
  tool: string;
  now: number;
  allow_rule: string;
  approval?: { id: string; timeout_ms: number; rule: string; message: string };
  counters: CounterRequest[];
  limits: { counter: number; max: number; rule: string; message: string }[];
}

/** One step of a decision (Policy.explain): `step` says which, `rule` where in the policy. */
export interface TraceStep {
  step: 'hide' | 'entry' | 'action' | 'args' | 'require' | 'deny_if' | 'limit' | 'approval';
  rule: string;
  /** entry: the tools key that matched, or null (the default decides). */
  entry?: string | null;
  default?: 'allow' | 'deny';
  /** require / deny_if: whether the group held, and each condition. */
  holds?: boolean;
  conditions?: { path: string; op: string; value: unknown; actual?: unknown; holds: boolean; error?: string }[];
  /** args: whether the arguments matched the schema. */
  valid?: boolean;
  problem?: string;
  /** limit: the counter, its count before this call, this call's cost, the max, and the verdict. */
  counter?: string;
  count?: number;
  cost?: number;
  max?: number;
  admitted?: boolean;
  /** approval */
  approval_id?: string;
  approved?: boolean;
  [key: string]: unknown;
}

export interface DecideOptions {
  counters?: CounterStore;
  approvals?: ApprovalStore;
  /** Epoch ms used when the call has no `now`: a finite number within ±8.64e15. Default: Date.now(). */
  now?: number;
  /** Admit calls when the counter store fails. Default false: deny (fail closed). */
  failOpen?: boolean;
}

export interface Authorization {
  decision: Decision;
  /** Makes the charge final; call after the upstream call succeeded. */
  commit(): Promise<void>;
  /** Gives the quota back; call when the upstream call failed. */
  rollback(): Promise<void>;
}

/** The tool names a policy mentions (Policy.names). */
export interface PolicyNames {
  readonly exact: readonly string[];
  readonly globs: readonly string[];
}

/**
 * One limit of a policy and the counter it charges (Policy.limits), from the
 * compiled plan. A pending evaluation's `limits[i].rule` is one of these
 * `rule`s: name and explain counters from here, never from counter keys.
 */
export interface PolicyLimit {
  /** The limit's JSON Pointer, e.g. "/tools/run/limits/0", "/tools/run/rate_limit", "/all_tools/limits/0". */
  readonly rule: string;
  /** The tools key (name or glob) that sets it; null for all_tools (every call that reaches the rules). */
  readonly tool: string | null;
  /** The counter's name; the rule itself when the limit names none (its count is then its own). */
  readonly counter: string;
  /** Whether `counter` was given (limits sharing name, window, algorithm and scope share one count). */
  readonly named: boolean;
  readonly scope: 'grant' | 'global';
  readonly window_ms: number;
  readonly algorithm: 'fixed' | 'sliding';
  readonly max: number;
  /** What a call adds; null when `cost_from` gives it. */
  readonly cost: number | null;
  /** The path holding what a call adds (a spend limit), e.g. "args.amount"; else null. */
  readonly cost_from: string | null;
  /** The path the count is kept per value of, e.g. "args.repo"; else null. */
  readonly key: string | null;
  /** What a call denied by this limit is told. */
  readonly message: string;
}

/** A decision with what it was made from (Policy.explainWithCounters, Policy.preview). */
export interface CallInsight<D> {
  decision: D;
  /** Step one's pending evaluation: the counters the call needed and the limits checking them; null when decided without a store. */
  pending: PendingEvaluation | null;
  /** What the counter store answered before the call, one per pending.counters; [] when it was not asked. */
  states: CounterState[];
}

/** A compiled policy (from Toolgate.compile); not constructible directly. */
export interface Policy {
  /** Always true for policies returned by Toolgate.compile. */
  readonly ok: boolean;
  /** Warnings (and errors, for a failed check). */
  readonly diagnostics: Diagnostic[];
  /** SHA-256 of the policy text (the same as `sha256sum policy.json`). */
  readonly hash: string;
  readonly source: string;
  /**
   * Every tool name the policy mentions (frozen), so a proxy can refuse
   * look-alikes (case or Unicode variants) of hidden names and glob keys.
   * `exact`: each `tools` key and `hide` entry without `*`; `globs`: those with
   * `*`. Each list sorted by code point, without repeats.
   */
  readonly names: PolicyNames;
  /** Every limit (each tools entry's, in plan order, then all_tools'), frozen; built on first use. */
  readonly limits: readonly PolicyLimit[];
  isHidden(tool: string): boolean;
  /** Step one, synchronous: the decision, or what the store must supply. */
  /** `now` (epoch ms, finite, within ±8.64e15) applies when the call has none; default Date.now(). */
  evaluate(call: Call | string, options?: { now?: number }): Decision | PendingEvaluation;
  /** The decision with counters reserved; commit or roll back after the upstream call. */
  authorize(call: Call | string, options?: DecideOptions): Promise<Authorization>;
  /** authorize() and commit at once. */
  decide(call: Call | string, options?: DecideOptions): Promise<Decision>;
  /** Where the policy sets "mode": "monitor": the whole document, and the keys of tools entries. */
  readonly modes: { readonly policy: boolean; readonly tools: readonly string[] };
  /** Whether calls to `tool` run in monitor mode (the document's or its entry's "mode"). */
  isMonitored(tool: string): boolean;
  /**
   * decide(), traced: the decision with the steps the core took (entry matched, each
   * condition with the value it read and whether it held, each limit with its count).
   */
  explain(call: Call | string, options?: DecideOptions): Promise<Decision & { trace: TraceStep[] }>;
  /**
   * explain(), with the evaluation it traced, so a host showing counters need
   * not evaluate the call again: the pending evaluation (null when no store
   * was needed) and the counts the store answered before the call ([] when not asked).
   */
  explainWithCounters(call: Call | string, options?: DecideOptions): Promise<CallInsight<Decision & { trace: TraceStep[] }>>;
  /**
   * What authorize() would decide now, charging nothing and using no approval
   * up (isApproved() and peek(), never reserve() or consume()); one
   * evaluation. A failing store gives store_error; limits without a counter
   * store that can peek() throw ToolgateError.
   */
  preview(call: Call | string, options?: { counters?: CounterStore; approvals?: ApprovalStore; now?: number }): Promise<CallInsight<Decision>>;
  /** Frees the compiled plan now (otherwise at garbage collection). */
  dispose(): void;
}

export interface Toolgate {
  /** The core's version. */
  readonly version: string;
  /** Whether calls cross into the engine in binary form (false with `boundary: 'json'`). */
  readonly binaryCalls: boolean;
  /**
   * How many authorize() calls of one policy may wait for their stores at once
   * (65 536). One more is denied at once with `store_error` ("too many calls of
   * this policy are waiting…"); no waiting call is ever dropped.
   */
  readonly maxParked: number;
  /** Compiles a policy; throws PolicyError listing every problem. */
  compile(policy: string | object, options?: { source?: string }): Policy;
  /** Validates a policy without throwing. */
  check(policy: string | object): { ok: boolean; diagnostics: Diagnostic[] };
  /** Where a JSON Pointer stands in a policy's text (nearest enclosing value), or null when not JSON. */
  locate(policyText: string, pointer: string): { line: number; column: number } | null;
  /** Epoch ms of a timestamp (ms number or RFC 3339 string), or NaN. */
  parseTime(value: number | string): number;
  /** Step two: a pending evaluation and the store's answer -> Decision. */
  finish(pending: PendingEvaluation, approved: boolean, states: CounterState[]): Decision;
  /** Resolves once a restarted engine is ready (after an EngineError). */
  ready(): Promise<Toolgate>;
}

export interface LoadOptions {
  /** A compiled module (workerd: import it from the .wasm file). */
  wasmModule?: WebAssembly.Module;
  /** The .wasm bytes. */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Where a browser fetches the .wasm; default: next to index.js. */
  wasmUrl?: string | URL;
  /**
   * How calls cross into the engine. `'binary'` (default): written straight
   * into WebAssembly memory in a compact binary form, falling back to JSON text
   * for values JSON.stringify would transform. `'json'`: always JSON text.
   * Both decide identically; `'json'` exists to compare and to debug.
   */
  boundary?: 'binary' | 'json';
  /**
   * Compile a small policy and decide one call before resolving, so that the
   * first real compile and decision do not pay for V8 compiling the engine's
   * functions (it compiles each on first use). For a load at startup, as the
   * Workers entry does at module scope. Never shares an instance.
   */
  warm?: boolean;
}

/** Loads the core. Calls without options share one instance. */
export function loadToolgate(options?: LoadOptions): Promise<Toolgate>;
export default loadToolgate;

export class ToolgateError extends Error {}
export class PolicyError extends ToolgateError {
  readonly code: 'invalid_policy';
  readonly diagnostics: Diagnostic[];
}
export class StoreError extends ToolgateError {
  readonly code: 'store_error';
}
export class EngineError extends ToolgateError {
  readonly code: 'engine_error';
}

/** The spec's count estimate for a counter (fixed: current; sliding: two-bucket estimate). */
export function estimateCount(request: CounterRequest, state: CounterState, now: number): number;

export class MemoryCounterStore implements CounterStore {
  reserve(requests: CounterRequest[], now: number): Promise<Reservation>;
  commit(reservation: Reservation): Promise<void>;
  rollback(reservation: Reservation): Promise<void>;
  /** Current counts without charging. */
  peek(requests: CounterRequest[]): Promise<CounterState[]>;
  readonly size: number;
}

export class MemoryApprovalStore implements ApprovalStore {
  approve(id: string, now: number): Promise<void>;
  isApproved(id: string, timeoutMs: number, now: number): Promise<boolean>;
  consume(id: string, timeoutMs: number, now: number): Promise<boolean>;
  request(request: ApprovalRequest): Promise<void>;
  get(id: string, now: number): Promise<ApprovalRequest | null>;
  list(now: number): Promise<ApprovalRequest[]>;
  reject(id: string, now: number): Promise<boolean>;
}
