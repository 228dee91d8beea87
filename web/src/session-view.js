// The session's panels: "Counters of the last call" (used / max per limit,
// named from the plan), the SVG chart of counter usage over simulated time,
// and the timeline of calls and approvals. Drawn from SimulatedSession's
// data (session.js); everything as text nodes and SVG attributes.
import { h, svg } from './dom.js';
import { compactJson, grantId, iso, shortTime } from './format.js';

const MAX_TIMELINE_RENDERED = 300;
const COLORS = ['#2456c9', '#c2410c', '#0f766e', '#9333ea', '#be123c', '#4d7c0f'];

/** The counters panel (with the chart and its legend). */
export class CountersPanel {
  constructor() {
    this.counters = h('div', { class: 'counters', testid: 'counters' });
    this.chart = svg('svg', { class: 'chart', 'data-testid': 'chart', viewBox: '0 0 600 170', role: 'img', 'aria-label': 'Counter usage over simulated time' });
    this.legend = h('div', { class: 'legend' });
    this.panel = h('section', { class: 'panel', 'aria-label': 'Counters' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Counters of the last call' })),
      this.counters,
      h('h3', { text: 'Usage over time' }),
      this.chart,
      this.legend);
  }

  /** One row per limit of the last call (SimulatedSession.counterRows); `hasCall`: whether there is a last call. */
  renderCounters(rows, hasCall) {
    const el = this.counters;
    if (!rows.length) {
      el.replaceChildren(h('p', { class: 'empty', text: hasCall ? 'No limits apply to this call.' : 'Send a call to see its counters.' }));
      return;
    }
    el.replaceChildren(...rows.map((row) => {
      const ratio = row.max > 0 ? Math.min(1, row.used / row.max) : 1;
      const fill = h('span', { class: row.used + row.cost > row.max ? 'full' : '' });
      fill.style.width = `${(ratio * 100).toFixed(1)}%`;
      return h('div', { class: 'counter', testid: 'counter', 'data-used': row.used, 'data-max': row.max, 'data-key': row.key, 'data-reset': iso(row.reset) },
        h('span', { class: 'mono', text: row.label }),
        h('strong', { text: `${row.used} / ${row.max}` }),
        h('div', { class: 'bar', role: 'presentation' }, fill),
        h('span', { class: 'sub', text: `${row.rule} · ${row.algorithm === 'sliding' ? 'bucket rolls' : 'resets'} at ${iso(row.reset)} · cost ${row.cost}` }));
    }));
  }

  /** The chart of the session's series (counter key -> { label, max, points }); at most six counters. */
  renderChart(seriesByKey) {
    const chart = this.chart;
    const series = [...seriesByKey.values()].slice(0, COLORS.length);
    const W = 600;
    const H = 170;
    const pad = { left: 36, right: 10, top: 10, bottom: 22 };
    const nodes = [];
    if (!series.length) {
      nodes.push(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'Counter usage appears here once calls hit a limit.'));
      chart.replaceChildren(...nodes);
      this.legend.replaceChildren();
      return;
    }
    const times = series.flatMap((s) => s.points.map((p) => p.t));
    let t0 = Math.min(...times);
    let t1 = Math.max(...times);
    if (t1 - t0 < 1000) {
      t0 -= 500;
      t1 += 500;
    }
    const yMax = Math.max(1, ...series.map((s) => s.max), ...series.flatMap((s) => s.points.map((p) => p.used))) * 1.08;
    const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (W - pad.left - pad.right);
    const y = (v) => H - pad.bottom - (v / yMax) * (H - pad.top - pad.bottom);
    nodes.push(svg('line', { x1: pad.left, y1: y(0), x2: W - pad.right, y2: y(0), stroke: '#c9ced6' }));
    nodes.push(svg('line', { x1: pad.left, y1: pad.top, x2: pad.left, y2: y(0), stroke: '#c9ced6' }));
    nodes.push(svg('text', { x: pad.left - 4, y: y(0) + 3, 'text-anchor': 'end' }, '0'));
    nodes.push(svg('text', { x: pad.left, y: H - 6, 'text-anchor': 'start' }, shortTime(t0)));
    nodes.push(svg('text', { x: W - pad.right, y: H - 6, 'text-anchor': 'end' }, shortTime(t1)));
    series.forEach((s, i) => {
      const color = COLORS[i];
      nodes.push(svg('line', { x1: pad.left, x2: W - pad.right, y1: y(s.max), y2: y(s.max), stroke: color, 'stroke-dasharray': '4 3', 'stroke-opacity': 0.7, 'data-max': s.max }));
      nodes.push(svg('text', { x: pad.left - 4, y: y(s.max) + 3, 'text-anchor': 'end', fill: color }, String(s.max)));
      const points = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.used).toFixed(1)}`).join(' ');
      nodes.push(svg('polyline', { points, fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
      for (const p of s.points.slice(-200)) nodes.push(svg('circle', { cx: x(p.t).toFixed(1), cy: y(p.used).toFixed(1), r: 2.5, fill: color }));
    });
    chart.replaceChildren(...nodes);
    this.legend.replaceChildren(...series.map((s, i) => {
      const item = h('span', { text: `${s.label} (max ${s.max})` });
      item.style.setProperty('--swatch', COLORS[i]);
      return item;
    }));
  }
}

/** The timeline panel: the session's calls and approvals, the latest 300. */
export class TimelinePanel {
  constructor() {
    this.timeline = h('ol', { class: 'timeline', testid: 'timeline', 'aria-label': 'Calls sent in this session' });
    this.panel = h('section', { class: 'panel', 'aria-label': 'Timeline' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Timeline' })),
      this.timeline);
  }

  render(entries) {
    const shown = entries.slice(-MAX_TIMELINE_RENDERED);
    const items = shown.map((entry) => {
      if (entry.kind === 'approve') {
        return h('li', { class: 'approval', testid: 'timeline-approval' },
          h('span', { class: 'mono', text: shortTime(entry.at) }),
          h('span', { class: 'dec', text: 'approved' }),
          h('span', { class: 'what mono', text: entry.id }));
      }
      const { call, decision } = entry;
      return h('li', { testid: 'timeline-entry', 'data-decision': decision.decision, 'data-code': decision.code, title: decision.message },
        h('span', { class: 'mono', text: shortTime(entry.at) }),
        h('span', { class: 'dec', 'data-decision': decision.decision, text: entry.monitored && decision.decision !== 'allow' ? `${decision.code} (not enforced)` : decision.code }),
        h('span', { class: 'what' }, h('code', { text: String(call.tool) }), ` ${grantId(call.grant)} ${compactJson(call.arguments, 80)}`));
    });
    if (entries.length > shown.length) items.unshift(h('li', { class: 'hint', text: `${entries.length - shown.length} earlier calls not shown` }));
    if (!items.length) items.push(h('li', { class: 'empty', text: 'No calls sent yet.' }));
    this.timeline.replaceChildren(...items);
    this.timeline.scrollTop = this.timeline.scrollHeight;
  }
}
