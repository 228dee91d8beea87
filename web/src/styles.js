// The component's styles (inside its shadow root; adopted as a constructed
// stylesheet where supported, so no inline <style> is needed under a CSP).
export const css = `
:host {
  display: block;
  --tg-bg: #f6f7f9;
  --tg-panel: #ffffff;
  --tg-border: #d9dde3;
  --tg-text: #1c2330;
  --tg-muted: #5b6575;
  --tg-accent: #2456c9;
  --tg-allow: #1d7a3a;
  --tg-allow-bg: #e5f5ea;
  --tg-deny: #b42318;
  --tg-deny-bg: #fdecea;
  --tg-approval: #9a6100;
  --tg-approval-bg: #fff4d6;
  --tg-radius: 8px;
  color: var(--tg-text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: var(--tg-bg);
  container-type: inline-size;
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.tg { padding: 12px; display: flex; flex-direction: column; gap: 12px; min-height: 100%; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--tg-muted); margin: 0; }
h3 { font-size: 13px; margin: 0 0 4px; color: var(--tg-muted); font-weight: 600; }
code, .mono, textarea, input[type=text], input:not([type]) { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { font-size: 12.5px; background: #eef1f5; padding: 1px 4px; border-radius: 4px; word-break: break-all; }
.toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 12px; }
.toolbar .spacer { flex: 1; }
.toolbar label { display: flex; align-items: center; gap: 6px; font-weight: 600; }
.grid { display: grid; grid-template-columns: minmax(0, 1.15fr) minmax(0, 1fr); gap: 12px; align-items: start; }
@container (max-width: 820px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.panel { background: var(--tg-panel); border: 1px solid var(--tg-border); border-radius: var(--tg-radius); padding: 12px; display: flex; flex-direction: column; gap: 8px; min-width: 0; }
.panel-head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.panel-head .spacer { flex: 1; }
.side { display: flex; flex-direction: column; gap: 12px; min-width: 0; }
.editor { height: min(62vh, 640px); min-height: 240px; border: 1px solid var(--tg-border); border-radius: 6px; overflow: hidden; }
.compact .editor { height: 260px; min-height: 160px; }
.editor .cm-editor { height: 100%; }
.editor .cm-editor.cm-focused { outline: 2px solid var(--tg-accent); outline-offset: -1px; }
.editor .cm-scroller { font-size: 13px; }
.editor .tg-rule-highlight { background: #fff1b8; box-shadow: inset 3px 0 0 #e0a100; }
.status { font-size: 12px; padding: 2px 8px; border-radius: 999px; border: 1px solid var(--tg-border); color: var(--tg-muted); }
.status[data-state=ok] { color: var(--tg-allow); background: var(--tg-allow-bg); border-color: #b7e0c3; }
.status[data-state=error] { color: var(--tg-deny); background: var(--tg-deny-bg); border-color: #f3c2bd; }
.status[data-state=checking] { color: var(--tg-approval); background: var(--tg-approval-bg); border-color: #f0d891; }
.diagnostics { list-style: none; margin: 0; padding: 0; max-height: 150px; overflow: auto; display: flex; flex-direction: column; gap: 2px; }
.diagnostics:empty { display: none; }
.diagnostics li button { all: unset; cursor: pointer; display: block; width: 100%; padding: 3px 6px; border-radius: 4px; font-size: 12.5px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-word; }
.diagnostics li button:focus-visible { outline: 2px solid var(--tg-accent); }
.diagnostics li[data-severity=error] button { background: var(--tg-deny-bg); color: var(--tg-deny); }
.diagnostics li[data-severity=warning] button { background: var(--tg-approval-bg); color: var(--tg-approval); }
.field { display: flex; flex-direction: column; gap: 3px; min-width: 0; }
.field > label, .label { font-size: 12px; font-weight: 600; color: var(--tg-muted); }
.row { display: flex; gap: 8px; flex-wrap: wrap; align-items: flex-end; }
.row > .field { flex: 1 1 140px; }
input, select, textarea { font-size: 13px; color: var(--tg-text); background: #fff; border: 1px solid var(--tg-border); border-radius: 6px; padding: 6px 8px; min-width: 0; width: 100%; }
textarea { resize: vertical; min-height: 54px; }
input:focus-visible, select:focus-visible, textarea:focus-visible, button:focus-visible { outline: 2px solid var(--tg-accent); outline-offset: 1px; }
input[type=number] { width: 100%; }
select { width: auto; }
button { font: inherit; font-size: 13px; border: 1px solid var(--tg-border); background: #fff; color: var(--tg-text); border-radius: 6px; padding: 6px 10px; cursor: pointer; white-space: nowrap; }
button:hover { background: #f0f3f7; }
button.primary { background: var(--tg-accent); border-color: var(--tg-accent); color: #fff; font-weight: 600; }
button.primary:hover { background: #1b46a8; }
button.small { padding: 2px 8px; font-size: 12px; }
button[disabled] { opacity: .5; cursor: default; }
.clock-row { display: flex; gap: 4px; }
.clock-row input { flex: 1; }
.error-text { color: var(--tg-deny); font-size: 12.5px; }
.error-text:empty { display: none; }
.hint { color: var(--tg-muted); font-size: 12px; }
.decision { border-radius: 6px; padding: 10px; border: 1px solid var(--tg-border); background: #fafbfc; display: flex; flex-direction: column; gap: 6px; }
.decision[data-decision=allow] { background: var(--tg-allow-bg); border-color: #b7e0c3; }
.decision[data-decision=deny] { background: var(--tg-deny-bg); border-color: #f3c2bd; }
.decision[data-decision=approval_required] { background: var(--tg-approval-bg); border-color: #f0d891; }
.decision-head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.badge { font-weight: 700; font-size: 12px; letter-spacing: .05em; text-transform: uppercase; padding: 2px 8px; border-radius: 4px; color: #fff; background: var(--tg-muted); }
.badge[data-decision=allow] { background: var(--tg-allow); }
.badge[data-decision=deny] { background: var(--tg-deny); }
.badge[data-decision=approval_required] { background: var(--tg-approval); }
.tag { font-size: 11px; color: var(--tg-muted); border: 1px dashed var(--tg-border); border-radius: 4px; padding: 0 6px; }
.decision-message { margin: 0; word-break: break-word; }
.kv { display: flex; gap: 6px; align-items: baseline; flex-wrap: wrap; font-size: 13px; }
.kv > .label { min-width: 48px; }
.stale-note { display: none; font-size: 12px; color: var(--tg-approval); }
[data-stale=true] .stale-note, .stale-note[data-stale=true] { display: block; }
[data-stale=true] > .decision, [data-stale=true] .tests-table { opacity: .6; }
.counters { display: flex; flex-direction: column; gap: 6px; }
.counter { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 2px 8px; font-size: 12.5px; }
.counter .bar { grid-column: 1 / -1; height: 6px; border-radius: 3px; background: #e7eaef; overflow: hidden; }
.counter .bar > span { display: block; height: 100%; background: var(--tg-allow); }
.counter .bar > span.full { background: var(--tg-deny); }
.counter .sub { grid-column: 1 / -1; color: var(--tg-muted); font-size: 12px; }
.chart { width: 100%; height: auto; display: block; background: #fbfcfd; border: 1px solid var(--tg-border); border-radius: 6px; }
.chart text { font: 10px system-ui, sans-serif; fill: var(--tg-muted); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; color: var(--tg-muted); }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 3px; margin-right: 4px; vertical-align: middle; background: var(--swatch); }
.timeline { list-style: none; margin: 0; padding: 0; max-height: 220px; overflow: auto; display: flex; flex-direction: column; gap: 2px; font-size: 12.5px; }
.timeline li { display: grid; grid-template-columns: auto auto minmax(0, 1fr); gap: 8px; align-items: baseline; padding: 2px 6px; border-radius: 4px; border-left: 3px solid var(--tg-border); }
.timeline li[data-decision=allow] { border-left-color: var(--tg-allow); }
.timeline li[data-decision=deny] { border-left-color: var(--tg-deny); }
.timeline li[data-decision=approval_required] { border-left-color: var(--tg-approval); }
.timeline li.approval { border-left-color: var(--tg-accent); color: var(--tg-accent); }
.timeline .what { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.dec { font-weight: 600; }
.dec[data-decision=allow] { color: var(--tg-allow); }
.dec[data-decision=deny] { color: var(--tg-deny); }
.dec[data-decision=approval_required] { color: var(--tg-approval); }
.empty { color: var(--tg-muted); font-size: 12.5px; font-style: italic; }
.tests-table, .scan-table, .replay-table { width: 100%; border-collapse: collapse; font-size: 12.5px; }
.tests-table th, .tests-table td, .scan-table th, .scan-table td, .replay-table th, .replay-table td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eceef2; vertical-align: top; }
.tests-table th, .scan-table th, .replay-table th { color: var(--tg-muted); font-weight: 600; font-size: 12px; }
.monitor-toggle { display: flex; align-items: center; gap: 6px; font-size: 12.5px; }
.trace { margin: 4px 0 0; padding-left: 20px; font-size: 12.5px; }
.trace li { margin: 2px 0; }
.replay-summary p { margin: 4px 0; font-size: 12.5px; }
.tests-table td.call { max-width: 380px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tests-table tr[data-pass=true] td.mark { color: var(--tg-allow); font-weight: 700; }
.tests-table tr[data-pass=false] { background: var(--tg-deny-bg); }
.tests-table tr[data-pass=false] td.mark { color: var(--tg-deny); font-weight: 700; }
.tests-table tr.approve-row td { color: var(--tg-accent); }
.table-wrap { overflow: auto; max-height: 360px; }
.summary { font-size: 12.5px; color: var(--tg-muted); }
.summary[data-failed]:not([data-failed="0"]) { color: var(--tg-deny); font-weight: 600; }
.risk { font-weight: 600; }
.risk[data-risk=high], .risk[data-risk=critical] { color: var(--tg-deny); }
.risk[data-risk=medium] { color: var(--tg-approval); }
.risk[data-risk=low] { color: var(--tg-allow); }
.signals { margin: 0; padding-left: 16px; }
.notices { display: flex; flex-direction: column; gap: 6px; }
.notices:empty { display: none; }
.notice-box { display: flex; gap: 8px; align-items: flex-start; background: var(--tg-approval-bg); border: 1px solid #f0d891; color: #5f3d00; padding: 8px 10px; border-radius: 6px; }
.notice-box [data-testid=notice] { flex: 1; word-break: break-word; }
.share-link { width: min(420px, 100%); font-size: 12px; }
.share-link[hidden] { display: none; }
details summary { cursor: pointer; color: var(--tg-muted); font-size: 12.5px; }
pre { margin: 4px 0 0; font-size: 12px; white-space: pre-wrap; word-break: break-all; background: #f3f5f8; padding: 6px; border-radius: 4px; max-height: 160px; overflow: auto; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.compact.tg { padding: 8px; gap: 8px; }
.compact .panel { padding: 10px; }
`;
