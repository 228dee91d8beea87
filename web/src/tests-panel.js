// The "Policy tests" panel: calls with "expect" (and {"approve": id} lines),
// run in order against fresh counter and approval stores on every edit, as
// `npx toolgate eval` runs them; adding the last call as a test, deleting,
// and exporting JSON Lines for `npx toolgate eval`. Each call is decided with
// one Policy.decide().
import { MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { h } from './dom.js';
import { compactJson, expectText, grantId, meets, shortTime } from './format.js';
import { DEFAULT_NOW } from './session.js';

export class TestsPanel {
  /** The test lines: call objects (optional "expect"), {"approve": id}, or anything else (decided as invalid). */
  lines = [];
  #results = [];
  #run = 0;
  #policy = () => null;
  #timeOf;
  #onNotice;

  /**
   * `policy()`: the policy to run against (null: none compiles); `latest()`:
   * the last sent call and its decision ({ call, decision }, or null);
   * `timeOf(value, fallback)`: a line's time in epoch ms; `onNotice(text)`.
   */
  constructor({ policy, latest, timeOf, onNotice }) {
    this.#policy = policy;
    this.#timeOf = timeOf;
    this.#onNotice = onNotice;
    this.summary = h('span', { class: 'summary' });
    this.tests = h('tbody', { testid: 'tests' });
    this.addTest = h('button', { type: 'button', testid: 'add-test', onclick: () => this.#addCall(latest()) }, 'Add current call as test');
    this.exportButton = h('button', { type: 'button', testid: 'export-tests', onclick: () => this.#export() }, 'Export JSON Lines');
    this.exportText = h('textarea', { id: 'export-text', testid: 'export-text', readOnly: true, rows: 4, spellcheck: 'false', placeholder: 'Export fills this with JSON Lines for npx toolgate eval' });
    this.panel = h('section', { class: 'panel tests-panel', 'aria-label': 'Policy tests' },
      h('div', { class: 'panel-head' },
        h('h2', { text: 'Policy tests' }), this.summary, h('span', { class: 'spacer' }), this.addTest, this.exportButton),
      h('div', { class: 'stale-note', text: 'The policy has errors: showing results of the last valid policy.' }),
      h('p', { class: 'hint', text: 'Run in order against fresh counters and approvals on every edit, like npx toolgate eval.' }),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'tests-table' },
          h('thead', {}, h('tr', {}, ['', '#', 'Call', 'Grant', 'Time', 'Expected', 'Got', ''].map((t) => h('th', { scope: 'col', text: t })))),
          this.tests)),
      h('div', { class: 'field' }, h('label', { for: 'export-text', text: 'Exported tests (npx toolgate eval --policy policy.json < tests.jsonl)' }), this.exportText));
  }

  markStale(stale) {
    this.panel.dataset.stale = String(stale);
  }

  // Adds the last call as a test expecting the decision it got.
  #addCall(latest) {
    if (!latest || !latest.call) {
      this.#onNotice('Send a call first: the test expects the decision it got.');
      return;
    }
    const { call, decision } = latest;
    this.lines.push({ ...call, expect: { decision: decision.decision, code: decision.code } });
    this.run();
  }

  /** Runs every line in order against fresh stores; a newer run supersedes an unfinished one. */
  async run() {
    const policy = this.#policy();
    if (!policy) return;
    const run = ++this.#run;
    const counters = new MemoryCounterStore();
    const approvals = new MemoryApprovalStore();
    const results = [];
    for (const line of this.lines) {
      if (line && typeof line === 'object' && !Array.isArray(line) && 'approve' in line) {
        const at = this.#timeOf(line.now, DEFAULT_NOW);
        await approvals.approve(String(line.approve), at);
        results.push({ approved: true });
        continue;
      }
      const call = line && typeof line === 'object' && !Array.isArray(line) ? { ...line } : line;
      let expect;
      if (call && typeof call === 'object' && !Array.isArray(call)) {
        expect = call.expect;
        delete call.expect;
      }
      let decision;
      try {
        decision = await policy.decide(call, { counters, approvals, now: DEFAULT_NOW });
      } catch (error) {
        decision = { decision: 'deny', code: 'invalid_call', rule: '', message: String(error?.message ?? error) };
      }
      results.push({ decision, expect, pass: expect === undefined ? null : meets(expect, decision) });
      if (run !== this.#run) return;
    }
    if (run !== this.#run) return;
    this.#results = results;
    this.render();
  }

  #delete(index) {
    this.lines.splice(index, 1);
    this.#results.splice(index, 1);
    this.render();
    this.run();
  }

  /** The tests as JSON Lines (`npx toolgate eval` input). */
  exportLines() {
    return this.lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + (this.lines.length ? '\n' : '');
  }

  #export() {
    const text = this.exportLines();
    this.exportText.value = text;
    const url = URL.createObjectURL(new Blob([text], { type: 'application/x-ndjson' }));
    const link = h('a', { href: url, download: 'toolgate-tests.jsonl', hidden: true });
    this.panel.getRootNode().append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  render() {
    const rows = [];
    let passed = 0;
    let failed = 0;
    this.lines.forEach((line, index) => {
      const result = this.#results[index];
      const remove = h('button', { type: 'button', class: 'small', 'aria-label': `Delete test ${index + 1}`, onclick: () => this.#delete(index) }, 'Delete');
      if (line && typeof line === 'object' && 'approve' in line) {
        rows.push(h('tr', { testid: 'test-approve', class: 'approve-row' },
          h('td', { class: 'mark', text: '✓' }),
          h('td', { text: String(index + 1) }),
          h('td', { class: 'call', colspan: 2, title: String(line.approve) }, `approve ${compactJson(line.approve, 24)}`),
          h('td', { text: line.now === undefined ? '' : shortTime(this.#timeOf(line.now, DEFAULT_NOW)) }),
          h('td', { text: '—' }),
          h('td', { text: 'approved' }),
          h('td', {}, remove)));
        return;
      }
      const isCall = line && typeof line === 'object' && !Array.isArray(line);
      const decision = result?.decision;
      const pass = result ? (result.pass === null ? 'true' : String(result.pass)) : 'false';
      if (result?.pass === false) failed += 1;
      else if (result) passed += 1;
      rows.push(h('tr', { testid: 'test-row', 'data-pass': pass, 'data-decision': decision?.decision ?? '', 'data-code': decision?.code ?? '' },
        h('td', { class: 'mark', 'aria-label': pass === 'true' ? 'pass' : 'fail', text: pass === 'true' ? '✓' : '✗' }),
        h('td', { text: String(index + 1) }),
        h('td', { class: 'call', title: compactJson(isCall ? line.arguments ?? {} : line, 2000) },
          h('code', { text: isCall ? String(line.tool ?? '') : compactJson(line, 60) }), ' ',
          isCall ? compactJson(line.arguments ?? {}, 80) : ''),
        h('td', { text: isCall ? grantId(line.grant) : '' }),
        h('td', { text: isCall && line.now !== undefined ? shortTime(this.#timeOf(line.now, DEFAULT_NOW)) : '' }),
        h('td', { text: expectText(result ? result.expect : line?.expect) }),
        h('td', {}, decision ? h('span', { class: 'dec', 'data-decision': decision.decision, text: `${decision.decision} · ${decision.code}` }) : ''),
        h('td', {}, remove)));
    });
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 8, class: 'empty', text: 'No tests yet: send a call, then “Add current call as test”.' })));
    this.tests.replaceChildren(...rows);
    this.summary.dataset.failed = String(failed);
    this.summary.textContent = `${passed} passed · ${failed} failed`;
  }
}
