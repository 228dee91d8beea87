// "Why": a sent call's decision trace (Policy.explain's steps) as an ordered
// list, one readable line per step: the entry that matched, each condition
// with the value it read, each limit with its count, the approval looked up.
import { h } from './dom.js';
import { compactJson } from './format.js';

/** One step of a decision trace as a line of text. */
export function traceText(step) {
  const value = (v) => compactJson(v, 60);
  switch (step.step) {
    case 'hide': return 'hidden: the tool matches a hide entry';
    case 'entry': return step.entry === null ? `no tools entry: the default (${step.default}) decides` : `entry ${JSON.stringify(step.entry)} matched`;
    case 'action': return `action ${step.action}`;
    case 'args': return step.valid ? 'arguments match the schema' : `arguments do not match the schema: ${step.problem}`;
    case 'require':
    case 'deny_if':
      return `${step.step} ${step.holds ? 'holds' : 'does not hold'}: ${step.conditions.map((c) => `${c.path} ${c.op} ${value(c.value)} (read ${'actual' in c ? value(c.actual) : 'nothing'}: ${c.error ? `error, ${c.error}` : c.holds ? 'true' : 'false'})`).join('; ')}`;
    case 'limit': return `limit: ${Math.round(step.count * 100) / 100} counted + ${step.cost} ≤ ${step.max}? ${step.admitted ? 'yes' : 'no'}`;
    case 'approval': return step.approved ? 'approved by a human' : 'waits for a human\'s approval';
    default: return compactJson(step, 120);
  }
}

/** The trace as an open <details> (data-testid decision-trace / trace-step). */
export function renderTrace(trace) {
  return h('details', { testid: 'decision-trace', open: true },
    h('summary', { text: `Why: ${trace.length} step${trace.length === 1 ? '' : 's'}` }),
    h('ol', { class: 'trace' }, trace.map((step) => h('li', { testid: 'trace-step', dataset: { step: step.step } },
      h('code', { text: step.rule }), ` ${traceText(step)}`))));
}
