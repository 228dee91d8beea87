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
// The answers after which the proxy gave the quota back (worker/exchange.js,
// settlementOf): the replay does the same.
const ROLLED_BACK = new Set(['error', 'failed', 'upstream_failed', 'upstream_refused']);

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
export function readRecords(lines, { parseTime, grantAttributes } = {}) {
  const calls = [];
  let skipped = 0;
  lines.forEach((text, index) => {
    const line = index + 1;
    if (text.trim() === '') return;
    let record;
    try {
      record = JSON.parse(text);
    } catch (error) {
      throw new ReplayInputError(`line ${line}: not JSON (${error.message})`);
    }
    if (!isObject(record)) throw new ReplayInputError(`line ${line}: a record must be a JSON object`);
    if (Object.hasOwn(record, 'approve')) {
      calls.push({ line, approve: record.approve, now: timeOf(record.now ?? Date.now(), line, parseTime) });
      return;
    }
    const audit = typeof record.time === 'string' && typeof record.decision === 'string';
    if (audit) {
      // An event with no tool name was a malformed request, never decided by a policy.
      if (typeof record.tool !== 'string') {
        skipped += 1;
        return;
      }
      if (!Object.hasOwn(record, 'arguments')) {
        throw new ReplayInputError(`line ${line}: this audit event has no "arguments": record with \`toolgate serve --audit-arguments\` to replay calls`);
      }
      if (typeof record.grant !== 'string') throw new ReplayInputError(`line ${line}: "grant" must be the grant's id`);
      const attributes = isObject(record.grant_attributes) ? record.grant_attributes : grantAttributes?.get(record.grant) ?? {};
      calls.push({
        line,
        call: { tool: record.tool, arguments: record.arguments, grant: { ...attributes, id: record.grant }, now: timeOf(record.time, line, parseTime) },
        // Only what is compared is kept, not the whole event: a replay holds
        // hundreds of thousands of these.
        recorded: { decision: record.decision, code: record.code ?? '', rule: record.rule ?? '' },
        rolledBack: record.decision === 'allow' && ROLLED_BACK.has(record.outcome),
      });
      return;
    }
    if (typeof record.tool !== 'string') throw new ReplayInputError(`line ${line}: neither an audit event (time, decision, tool, arguments) nor a call (tool, arguments, grant, now)`);
    const now = timeOf(record.now ?? Date.now(), line, parseTime);
    const call = { tool: record.tool, arguments: record.arguments ?? {}, grant: record.grant ?? 'anonymous', now };
    calls.push({ line, call });
  });
  let ordered = true;
  for (let i = 0; i < calls.length; i++) {
    const entry = calls[i];
    entry.now ??= entry.call.now;
    if (i > 0 && entry.now < calls[i - 1].now) ordered = false;
  }
  // Stable: equal times keep the file's order. (Already in order, the usual
  // case, is left as it is.)
  if (!ordered) calls.sort((a, b) => a.now - b.now || a.line - b.line);
  return { calls, skipped };
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
  return {
    async decide(entry) {
      // What the proxy refuses before the policy decides (worker/gate.js): a
      // name that only looks like one the policy mentions.
      const lookAlike = lookAlikeProblem(entry.call.tool, policy);
      if (lookAlike) return { decision: 'deny', code: 'invalid_call', rule: '', message: lookAlike };
      if (!entry.rolledBack) return policy.decide(entry.call, { counters, approvals, now: entry.call.now });
      const { decision, rollback } = await policy.authorize(entry.call, { counters, approvals, now: entry.call.now });
      await rollback();
      return decision;
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
  for (const entry of calls) {
    if (entry.approve !== undefined) {
      await next.approve(entry.approve, entry.now);
      await before?.approve(entry.approve, entry.now);
      continue;
    }
    // Objects for the two decisions are made only for calls that changed:
    // most do not, and a replay decides hundreds of thousands.
    let was;
    if (before) {
      was = await before.decide(entry);
    } else if (entry.recorded) {
      was = entry.recorded;
    } else {
      throw new ReplayInputError(`line ${entry.line}: a call in eval format records no decision; give the old policy as --baseline`);
    }
    let now = await next.decide(entry);
    replayed += 1;
    if (now.decision === was.decision) continue;
    was = brief(was);
    now = brief(now);
    const change = `${was.decision}->${now.decision}`;
    // The rule that made the difference: the one refusing now, or the one that refused before.
    const rule = now.decision !== 'allow' ? now.rule : was.rule;
    byChange[change] = (byChange[change] ?? 0) + 1;
    byRule[rule || '(none)'] = (byRule[rule || '(none)'] ?? 0) + 1;
    byTool[entry.call.tool] = (byTool[entry.call.tool] ?? 0) + 1;
    changed.push({
      line: entry.line, change,
      call: { tool: entry.call.tool, arguments: entry.call.arguments, grant: entry.call.grant, now: entry.call.now },
      baseline: was, policy: now,
    });
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
