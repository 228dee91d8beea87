// Replaying recorded calls through a policy: what `toolgate replay` and the
// playground's replay tab run. Runs anywhere the WebAssembly core runs (no
// Node APIs here).
//
// A recorded call is either an audit event written with --audit-arguments
// (`time`, `grant`, `grant_attributes`, `tool`, `arguments`, and the decision
// that was made: `decision`, `code`, `rule`) or a line in `toolgate eval`'s
// input format (`tool`, `arguments`, `grant`, `now`). Calls are decided in
// recorded time (a stable sort on it, so the file's order breaks ties: audit
// events are written when each call is answered, which may be after a later
// call was decided), each with its own grant and time, with counters and
// approvals in memory, so rate limits count as they did.
import { MemoryApprovalStore, MemoryCounterStore } from '../wasm/index.js';
import { lookAlikeProblem } from '../worker/gate.js';

export class ReplayInputError extends Error {
  name = 'ReplayInputError';
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const brief = (decision) => ({ decision: decision.decision, code: decision.code ?? '', rule: decision.rule ?? '' });
// Whether the proxy gave a forwarded call's quota back (worker/exchange.js,
// settlementOf): the replay does the same. Events carry it as `quota`
// ("kept" / "returned"); for logs written before that field, the outcome says
// it: a JSON-RPC error, a 4xx, a stdio server gone before the write, or a
// server that could not be reached (upstream_failed with upstream_status
// "unreachable"); timeouts, 5xx and hang-ups kept the quota.
const RETURNED = new Set(['error', 'upstream_refused', 'server_gone']);
function quotaReturned(record) {
  if (record.decision !== 'allow') return false;
  if (record.quota === 'returned' || record.quota === 'kept') return record.quota === 'returned';
  return RETURNED.has(record.outcome) || (record.outcome === 'upstream_failed' && record.upstream_status === 'unreachable');
}

// One recorded call (or approval) as the replay holds it: flat fields of one
// shape for every record and few objects of its own, because a replay holds
// hundreds of thousands of these until it has them in recorded order (objects
// kept that long are copied by every young-generation collection). The call
// object the core is given is made when it is decided.
class Recorded {
  constructor(line, now) {
    this.line = line;
    this.now = now;
    this.approve = undefined; // an approval's id: a human approved it at `now`
    this.tool = undefined;
    this.arguments = undefined;
    this.grant = undefined; // the call's grant: {...attributes, id} (audit) or as the eval line gives it
    this.decision = undefined; // audit only: what was recorded (undefined for eval lines)
    this.code = '';
    this.rule = '';
    this.rolledBack = false;
  }
}

/**
 * The grant of audit events: `{...attributes, id}`, one frozen object shared
 * by the events of a grant whose attributes are the same flat values in the
 * same order (nearly every event of a log), made anew otherwise. Spreading
 * the attributes of every event costs about as much as deciding it.
 */
function grantMaker() {
  const made = new Map(); // grant id -> { attributes, keys, grant }
  return (id, attributes) => {
    const held = made.get(id);
    if (held !== undefined && (held.attributes === attributes || sameFlatValues(held.keys, held.attributes, attributes))) return held.grant;
    const grant = { ...attributes, id };
    const keys = Object.keys(attributes);
    // Only flat values can be shared safely (and compared with ===).
    if (keys.every((key) => { const value = attributes[key]; return value === null || typeof value !== 'object'; })) {
      made.set(id, { attributes, keys, grant: Object.freeze(grant) });
    }
    return grant;
  };
}

// Whether `other` holds exactly `keys`, in that order, with the values `held`
// has (flat values: anything else is not the same).
function sameFlatValues(keys, held, other) {
  let i = 0;
  for (const key in other) {
    if (!Object.hasOwn(other, key) || key !== keys[i]) return false;
    const value = other[key];
    if (value !== held[key] || (value !== null && typeof value === 'object')) return false;
    i += 1;
  }
  return i === keys.length;
}

/**
 * Reads recorded lines one at a time (the CLI streams a file through it);
 * finish() gives what readRecords does. Throws ReplayInputError naming the
 * line for anything it cannot replay faithfully.
 * @param {object} [options] as readRecords
 * @returns {{add(text: string, line: number): void, finish(): {calls: object[], skipped: number}}}
 */
export function recordReader({ parseTime, grantAttributes } = {}) {
  const grantOf = grantMaker();
  const calls = [];
  let skipped = 0;
  let ordered = true;
  let last = -Infinity;
  const keep = (entry) => {
    if (entry.now < last) ordered = false;
    last = entry.now;
    calls.push(entry);
  };
  return {
    add(text, line) {
      if (text.length === 0 || text.trim() === '') return;
      let record;
      try {
        record = JSON.parse(text);
      } catch (error) {
        throw new ReplayInputError(`line ${line}: not JSON (${error.message})`);
      }
      if (!isObject(record)) throw new ReplayInputError(`line ${line}: a record must be a JSON object`);
      if (Object.hasOwn(record, 'approve')) {
        const entry = new Recorded(line, timeOf(record.now ?? Date.now(), line, parseTime));
        entry.approve = record.approve;
        keep(entry);
        return;
      }
      if (typeof record.time === 'string' && typeof record.decision === 'string') {
        // An event with no tool name was a malformed request, never decided by a policy.
        if (typeof record.tool !== 'string') {
          skipped += 1;
          return;
        }
        if (!Object.hasOwn(record, 'arguments')) {
          throw new ReplayInputError(`line ${line}: this audit event has no "arguments": record with \`toolgate serve --audit-arguments\` to replay calls`);
        }
        if (typeof record.grant !== 'string') throw new ReplayInputError(`line ${line}: "grant" must be the grant's id`);
        const entry = new Recorded(line, timeOf(record.time, line, parseTime));
        entry.tool = record.tool;
        entry.arguments = record.arguments;
        entry.grant = grantOf(record.grant, isObject(record.grant_attributes) ? record.grant_attributes : grantAttributes?.get(record.grant) ?? EMPTY);
        // Only what is compared is kept, not the whole event.
        entry.decision = record.decision;
        entry.code = record.code ?? '';
        entry.rule = record.rule ?? '';
        entry.rolledBack = quotaReturned(record);
        keep(entry);
        return;
      }
      if (typeof record.tool !== 'string') throw new ReplayInputError(`line ${line}: neither an audit event (time, decision, tool, arguments) nor a call (tool, arguments, grant, now)`);
      const entry = new Recorded(line, timeOf(record.now ?? Date.now(), line, parseTime));
      entry.tool = record.tool;
      entry.arguments = record.arguments ?? {};
      entry.grant = record.grant ?? 'anonymous';
      keep(entry);
    },
    finish() {
      // Stable: equal times keep the file's order. (Already in order, the
      // usual case, is left as it is.)
      if (!ordered) calls.sort((a, b) => a.now - b.now || a.line - b.line);
      return { calls, skipped };
    },
  };
}
const EMPTY = Object.freeze({});

/**
 * Reads recorded lines into calls. Throws ReplayInputError naming the line
 * for anything it cannot replay faithfully.
 * @param {string[]} lines JSON text, one record each (blank lines are skipped)
 * @param {object} [options]
 * @param {(text: string | number) => number} options.parseTime epoch ms of a time (the core's reader)
 * @param {Map<string, object>} [options.grantAttributes] grant id -> attributes, for audit events
 *   recorded without grant_attributes
 * @returns {{calls: object[], skipped: number}}
 */
export function readRecords(lines, options) {
  const reader = recordReader(options);
  for (let i = 0; i < lines.length; i++) reader.add(lines[i], i + 1);
  return reader.finish();
}

// What Date.prototype.toISOString writes (every audit event's time), which
// Date.parse reads exactly and fast; any other form goes to the core's reader.
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function timeOf(value, line, parseTime) {
  const ms = typeof value === 'number' ? value
    : typeof value === 'string' && ISO_UTC.test(value) ? Date.parse(value)
      : parseTime ? parseTime(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new ReplayInputError(`line ${line}: the time ${JSON.stringify(value)} is neither epoch milliseconds nor an RFC 3339 time`);
  return ms;
}

/** One policy's decisions, in order, with its own counters and approvals. */
function decider(policy) {
  const counters = new MemoryCounterStore();
  const approvals = new MemoryApprovalStore();
  // lookAlikeProblem's answer per tool name: a log names few tools, many times.
  const lookAlikes = new Map();
  const rolledBack = async (call) => {
    const { decision, rollback } = await policy.authorize(call, { counters, approvals, now: call.now });
    await rollback();
    return decision;
  };
  return {
    // A decision, or a promise of one (not an async function: a replay awaits
    // hundreds of thousands of these, and each extra promise costs).
    decide(call, rollBack) {
      // What the proxy refuses before the policy decides (worker/gate.js): a
      // name that only looks like one the policy mentions.
      let lookAlike = lookAlikes.get(call.tool);
      if (lookAlike === undefined) {
        lookAlike = lookAlikeProblem(call.tool, policy);
        lookAlikes.set(call.tool, lookAlike);
      }
      if (lookAlike !== null) return { decision: 'deny', code: 'invalid_call', rule: '', message: lookAlike };
      if (!rollBack) return policy.decide(call, { counters, approvals, now: call.now });
      return rolledBack(call);
    },
    approve: (id, now) => approvals.approve(id, now),
  };
}

/**
 * Replays calls through `policy`, against `baseline` (a compiled policy) or,
 * without it, the decisions the records hold.
 * @returns {Promise<{replayed: number, skipped: number, changed: object[], byChange: object, byRule: object, byTool: object}>}
 */
export async function replay({ policy, baseline, calls, skipped = 0 }) {
  const next = decider(policy);
  const before = baseline ? decider(baseline) : null;
  const changed = [];
  const byChange = {};
  const byRule = {};
  const byTool = {};
  let replayed = 0;
  for (let i = 0; i < calls.length; i++) {
    const entry = calls[i];
    if (entry.approve !== undefined) {
      await next.approve(entry.approve, entry.now);
      await before?.approve(entry.approve, entry.now);
      continue;
    }
    const call = { tool: entry.tool, arguments: entry.arguments, grant: entry.grant, now: entry.now };
    // Objects for the two decisions are made only for calls that changed:
    // most do not, and a replay decides hundreds of thousands.
    let was;
    if (before) {
      was = await before.decide(call, entry.rolledBack);
    } else if (entry.decision !== undefined) {
      was = entry;
    } else {
      throw new ReplayInputError(`line ${entry.line}: a call in eval format records no decision; give the old policy as --baseline`);
    }
    let now = await next.decide(call, entry.rolledBack);
    replayed += 1;
    if (now.decision === was.decision) continue;
    was = brief(was);
    now = brief(now);
    const change = `${was.decision}->${now.decision}`;
    // The rule that made the difference: the one refusing now, or the one that refused before.
    const rule = now.decision !== 'allow' ? now.rule : was.rule;
    byChange[change] = (byChange[change] ?? 0) + 1;
    byRule[rule || '(none)'] = (byRule[rule || '(none)'] ?? 0) + 1;
    byTool[call.tool] = (byTool[call.tool] ?? 0) + 1;
    changed.push({ line: entry.line, change, call, baseline: was, policy: now });
  }
  return { replayed, skipped, changed, byChange, byRule, byTool };
}

/** The summary as text, for people (the CLI prints it on stderr). */
export function formatSummary(result, { policy, baseline }) {
  const lines = [`replayed ${result.replayed} calls${result.skipped ? ` (${result.skipped} records without a tool skipped)` : ''} through ${policy}; baseline: ${baseline ?? 'the decisions recorded'}`];
  lines.push(`changed: ${result.changed.length}`);
  const section = (title, counts) => {
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (entries.length === 0) return;
    lines.push(`${title}:`);
    for (const [key, count] of entries) lines.push(`  ${key}  ${count}`);
  };
  section('by change', result.byChange);
  section('by rule', result.byRule);
  section('by tool', result.byTool);
  return `${lines.join('\n')}\n`;
}
