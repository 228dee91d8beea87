// The simulated session: what the calls sent from the composer have done.
// In-memory counter and approval stores (the proxy's own kinds), the
// timeline of calls and approvals, and each counter's usage over simulated
// time for the chart. Every call is decided by the façade in one call:
// Policy.explainWithCounters() for a sent call (the decision, its trace, and
// the counters it needed), Policy.preview() for "what would happen"
// (charging nothing). No DOM here: session-view.js draws it.
import { MemoryApprovalStore, MemoryCounterStore, estimateCount } from '../../wasm/index.js';
import { formatDuration } from './format.js';

/** Where the simulated clock starts, and the time of calls without `now`. */
export const DEFAULT_CLOCK = '2026-01-01T00:00:00Z';
export const DEFAULT_NOW = Date.parse(DEFAULT_CLOCK);

export class SimulatedSession {
  counters = new MemoryCounterStore();
  approvals = new MemoryApprovalStore();
  /** { kind: 'call', call, decision, at, monitored } and { kind: 'approve', id, at }, in order. */
  timeline = [];
  /** counter key -> { label, max, points: [{ t, used }] }, for the chart. */
  series = new Map();
  // A pending evaluation -> policy.limits of the policy that made it (the
  // counters panel may show a call made before the policy was edited).
  #limitsOf = new WeakMap();

  /** What `call` would get now from `policy`, charging nothing: { call, decision, pending, preview: true }. */
  async preview(policy, call) {
    const { decision, pending } = await policy.preview(call, { counters: this.counters, approvals: this.approvals, now: DEFAULT_NOW });
    if (pending) this.#limitsOf.set(pending, policy.limits);
    return { call, decision, pending, preview: true };
  }

  /**
   * Sends `call` at `at` (epoch ms) through `policy`: charged and approvals
   * used as the proxy would, with the decision's trace. Records it in the
   * timeline (`monitored`: shown as not enforced) and the chart's series.
   * Resolves to { call, decision, pending, preview: false }.
   */
  async send(policy, call, at, { monitored }) {
    let pending = null;
    let decision;
    try {
      // One call into the façade: the same decision and charge as decide(),
      // with its steps and the counters it needed.
      const explained = await policy.explainWithCounters(call, { counters: this.counters, approvals: this.approvals, now: DEFAULT_NOW });
      decision = explained.decision;
      pending = explained.pending;
      if (pending) this.#limitsOf.set(pending, policy.limits);
    } catch (error) {
      decision = { decision: 'deny', code: 'invalid_call', rule: '', message: String(error?.message ?? error) };
    }
    this.timeline.push({ kind: 'call', call, decision, at, monitored });
    if (pending) {
      // After the call: what it charged shows in the chart.
      const states = await this.counters.peek(pending.counters);
      pending.counters.forEach((request, i) => {
        const limit = pending.limits.find((l) => l.counter === i);
        let series = this.series.get(request.key);
        if (!series) {
          series = { label: this.#counterLabel(pending, request, limit), max: request.max, points: [] };
          this.series.set(request.key, series);
        }
        series.max = request.max;
        series.points.push({ t: at, used: estimateCount(request, states[i], pending.now) });
      });
    }
    return { call, decision, pending, preview: false };
  }

  /** A human approves `id` at `at` (epoch ms). */
  async approve(id, at) {
    await this.approvals.approve(id, at);
    this.timeline.push({ kind: 'approve', id, at });
  }

  // A counter's label, from the plan's description of the limit that checks
  // it (policy.limits, by the pending evaluation's rule): its counter name (the
  // rule when unnamed) and what it is counted per. Counter keys are the
  // stores' business; nothing here reads them.
  #counterLabel(pending, request, limit) {
    const described = limit ? this.#limitsOf.get(pending)?.find((l) => l.rule === limit.rule) : undefined;
    const name = described?.counter ?? limit?.rule ?? request.key;
    const per = described?.key ? ` per ${described.key}` : '';
    const who = request.scope === 'grant' ? `grant ${request.grant}` : 'global';
    return `${name}${per} · ${who} · ${formatDuration(request.window_ms)} ${request.algorithm}`;
  }

  /** Current usage of the counters a call needs: one row per limit. */
  async counterRows(pending) {
    const states = await this.counters.peek(pending.counters);
    return pending.limits.map((limit) => {
      const request = pending.counters[limit.counter];
      const state = states[limit.counter] ?? { current: 0, previous: 0 };
      const used = estimateCount(request, state, pending.now);
      return {
        key: request.key,
        label: this.#counterLabel(pending, request, limit),
        rule: limit.rule,
        used: Math.round(used * 100) / 100,
        max: limit.max,
        cost: request.cost,
        reset: request.bucket_start_ms + request.window_ms,
        algorithm: request.algorithm,
      };
    });
  }
}
