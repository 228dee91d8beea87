// The "Decision" panel: the latest call's decision (or the preview of the
// composer's call before anything is sent): verdict, code, rule, message,
// retry-after, the Approve button, the trace ("Why") and the call itself.
// Drawn from what the session returned; it decides nothing.
import { h } from './dom.js';
import { formatDuration, iso } from './format.js';
import { renderTrace } from './trace-view.js';

export class DecisionPanel {
  constructor() {
    this.decision = h('div', { class: 'decision', testid: 'decision', 'aria-live': 'polite' }, h('span', { class: 'empty', text: 'No decision yet.' }));
    this.panel = h('section', { class: 'panel decision-panel', 'aria-label': 'Decision' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Decision' })),
      h('div', { class: 'stale-note', text: 'The policy has errors: showing results of the last valid policy.' }),
      this.decision);
  }

  /** Marks the panel as showing results of an older policy (the editor's text does not compile). */
  markStale(stale) {
    this.panel.dataset.stale = String(stale);
    this.decision.dataset.stale = String(stale);
  }

  /**
   * Shows `latest` ({ call, decision, preview, approved? }, or null).
   * `monitored`: the call is not enforced (the checkbox or the policy's
   * "mode"); `at`: the call's time (epoch ms); `onApprove` / `onShowRule`:
   * the Approve and "Show in policy" buttons.
   */
  render(latest, { monitored = false, at = NaN, onApprove, onShowRule } = {}) {
    const el = this.decision;
    if (!latest) {
      delete el.dataset.decision;
      delete el.dataset.code;
      el.replaceChildren(h('span', { class: 'empty', text: 'No decision yet.' }));
      return;
    }
    const { decision, call, preview } = latest;
    el.dataset.enforced = String(!monitored);
    el.dataset.decision = decision.decision;
    el.dataset.code = decision.code;
    el.dataset.preview = String(Boolean(preview));
    const parts = [
      h('div', { class: 'decision-head' },
        h('span', { class: 'badge', 'data-decision': decision.decision, text: decision.decision.replace('_', ' ') }),
        h('code', { testid: 'decision-code', text: decision.code }),
        preview ? h('span', { class: 'tag', text: 'preview · not sent' }) : h('span', { class: 'tag', text: `at ${iso(at)}` }),
        monitored ? h('span', { class: 'tag', testid: 'monitor-tag', text: decision.decision === 'allow' ? 'monitor · not enforced' : `monitor · not enforced: would be ${decision.decision.replace('_', ' ')}, forwarded` }) : null),
      h('p', { class: 'decision-message', testid: 'decision-message', text: decision.message }),
      h('div', { class: 'kv' },
        h('span', { class: 'label', text: 'Rule' }),
        h('code', { testid: 'decision-rule', text: decision.rule }),
        decision.rule ? h('button', { type: 'button', class: 'small', onclick: onShowRule }, 'Show in policy') : null),
    ];
    if (decision.retry_after_ms !== undefined) {
      parts.push(h('div', { class: 'kv', testid: 'retry-after', 'data-ms': decision.retry_after_ms },
        h('span', { class: 'label', text: 'Retry' }),
        `after ${formatDuration(decision.retry_after_ms)} (${decision.retry_after_ms} ms, at ${iso(at + decision.retry_after_ms)})`));
    }
    if (decision.decision === 'approval_required') {
      const approve = h('button', { type: 'button', class: 'primary', testid: 'approve', onclick: onApprove }, 'Approve');
      if (preview) approve.title = 'Approves this call for the session at the simulated clock';
      parts.push(h('div', { class: 'kv' },
        h('span', { class: 'label', text: 'Approval' }),
        h('code', { text: decision.approval_id ? `${decision.approval_id.slice(0, 16)}…` : '' }),
        approve));
      if (latest.approved) parts.push(h('p', { class: 'hint', text: 'Approved at the simulated clock: send the same call again from the same grant to use it (once).' }));
    }
    if (Array.isArray(decision.trace)) parts.push(renderTrace(decision.trace));
    parts.push(h('details', {}, h('summary', { text: 'Call' }), h('pre', { text: JSON.stringify(call, null, 2) })));
    el.replaceChildren(...parts);
  }
}
