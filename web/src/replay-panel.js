// The "Replay recorded calls" panel: audit lines (`toolgate serve
// --audit-arguments`) or eval-format calls, decided again through the policy
// being edited by lib/replay.js (the code of `toolgate replay`) and compared
// with the recorded decisions: counts by change, rule and tool, and each
// changed call.
import { ReplayInputError, readRecords, replay } from '../../lib/replay.js';
import { h } from './dom.js';
import { grantId, shortTime } from './format.js';

const MAX_CHANGES_RENDERED = 300;

export class ReplayPanel {
  #policy;
  #parseTime;

  /** `policy()`: the policy to replay through (null: none compiles); `parseTime`: Toolgate.parseTime. */
  constructor({ policy, parseTime }) {
    this.#policy = policy;
    this.#parseTime = parseTime;
    this.input = h('textarea', { id: 'replay-input', testid: 'replay-input', rows: 5, spellcheck: 'false',
      placeholder: 'Paste audit lines (toolgate serve --audit-arguments) or calls in eval format, one per line' });
    this.runButton = h('button', { type: 'button', testid: 'replay-run', onclick: () => this.run() }, 'Replay through this policy');
    this.error = h('div', { class: 'error-text', role: 'alert', testid: 'replay-error' });
    this.summary = h('div', { class: 'replay-summary', testid: 'replay-summary' });
    this.results = h('tbody', { testid: 'replay-results' });
    this.panel = h('section', { class: 'panel replay-panel', 'aria-label': 'Replay recorded calls' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Replay recorded calls' })),
      h('p', { class: 'hint', text: 'Each call is decided again in recorded time with its grant, and compared with the decision the audit recorded (like npx toolgate replay --policy policy.json audit.jsonl). Nothing leaves the page.' }),
      h('div', { class: 'field' }, h('label', { for: 'replay-input', text: 'Recorded calls (JSON Lines)' }), this.input),
      h('div', { class: 'row' }, this.runButton),
      this.error,
      this.summary,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'replay-table' },
          h('thead', {}, h('tr', {}, ['Line', 'Tool', 'Grant', 'Time', 'Change', 'Recorded', 'Now'].map((t) => h('th', { scope: 'col', text: t })))),
          this.results)));
  }

  async run() {
    const policy = this.#policy();
    this.error.textContent = '';
    if (!policy) {
      this.error.textContent = 'The policy has errors: fix it first.';
      return;
    }
    let result;
    try {
      const { calls, skipped } = readRecords(this.input.value.split('\n'), { parseTime: (value) => this.#parseTime(value) });
      result = await replay({ policy, calls, skipped });
    } catch (error) {
      this.summary.replaceChildren();
      this.results.replaceChildren();
      this.error.textContent = error instanceof ReplayInputError ? error.message : String(error?.message ?? error);
      return;
    }
    const list = (counts) => Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([key, n]) => `${key} ${n}`).join(', ') || '—';
    this.summary.dataset.changed = String(result.changed.length);
    this.summary.replaceChildren(
      h('p', { testid: 'replay-counts', text: `${result.replayed} calls replayed${result.skipped ? ` (${result.skipped} without a tool skipped)` : ''}; ${result.changed.length} changed.` }),
      h('p', { testid: 'replay-by-change', text: `By change: ${list(result.byChange)}` }),
      h('p', { testid: 'replay-by-rule', text: `By rule: ${list(result.byRule)}` }),
      h('p', { testid: 'replay-by-tool', text: `By tool: ${list(result.byTool)}` }));
    const rows = result.changed.slice(0, MAX_CHANGES_RENDERED).map((change) => h('tr', { testid: 'replay-change', dataset: { change: change.change, tool: change.call.tool } },
      h('td', { text: String(change.line) }),
      h('td', {}, h('code', { text: change.call.tool })),
      h('td', { text: grantId(change.call.grant) }),
      h('td', { text: shortTime(change.call.now) }),
      h('td', { text: change.change }),
      h('td', { text: `${change.baseline.code} ${change.baseline.rule}` }),
      h('td', { text: `${change.policy.code} ${change.policy.rule}` })));
    if (result.changed.length > rows.length) rows.push(h('tr', {}, h('td', { colspan: 7, class: 'hint', text: `${result.changed.length - rows.length} more not shown` })));
    this.results.replaceChildren(...rows);
  }
}
