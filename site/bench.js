// Benchmark (not a test): how soon a docs page with live examples is
// interactive, in headless Chromium, on this machine. `npm run bench:site`
// (after `npm run build:web && npm run build:site`).
//
// "Interactive" = every live example of the page has its <toolgate-playground>
// `ready` (the core is loaded, the policy compiled, the first decision shown),
// so the reader can edit and send. Measured in the page, from navigation start
// (performance.now() when the last example became ready) and after the `load`
// event; cold loads (a fresh browser context each time: no HTTP or code cache),
// served as `npm start` serves them. Also counts the .wasm fetches per page.
//
//   node site/bench.js [--runs N] [--page /docs/embedding.html] [--json] [--quick] [--out DIR]
//
// Writes bench/results/site.json and site.md (with its budgets) unless --json
// or --page is given, for bench/report.js's summary.
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromiumMissing, launchChromium, repoRoot, startStaticServer, webDist } from '../tests/js/browser-helpers.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    page: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const runs = values.quick ? 2 : Number(values.runs);
// The embedding page has three live examples; the policy reference has fifteen
// (made as they come near the viewport: the first screenful counts here).
const targets = values.page ?? ['/docs/embedding.html', '/docs/reference/policy.html'];

const siteDist = path.join(repoRoot, 'site', 'dist');
const missing = chromiumMissing() ?? (existsSync(path.join(siteDist, 'index.html')) ? null : 'site/dist does not exist: npm run build:web && npm run build:site');
if (missing) {
  console.error(`bench:site: ${missing}`);
  process.exit(1);
}

const root = path.join(mkdtempSync(path.join(tmpdir(), 'toolgate-site-bench-')), 'root');
cpSync(webDist, root, { recursive: true });
cpSync(siteDist, path.join(root, 'docs'), { recursive: true });
const server = await startStaticServer(root);
const browser = await launchChromium();

// Runs in the page before its scripts: notes when examples become ready.
function watchReady() {
  window.__tgBench = { ready: [] };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'attributes' && record.attributeName === 'ready' && record.target.localName === 'toolgate-playground') {
        window.__tgBench.ready.push(performance.now());
      }
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['ready'] });
}

const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const results = [];
for (const url of targets) {
  const samples = [];
  for (let run = 0; run < runs; run++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.addInitScript(watchReady);
    let wasm = 0;
    page.on('request', (request) => {
      if (request.url().endsWith('.wasm')) wasm++;
    });
    const started = Date.now();
    await page.goto(`${server.origin}${url}`, { waitUntil: 'load' });
    // The examples in (or near) the first screen are made at once; wait for them.
    await page.waitForFunction(() => {
      const near = [...document.querySelectorAll('.tg-live, .tg-full')].filter((el) => el.getBoundingClientRect().top < innerHeight + 600);
      return near.length > 0 && near.every((el) => el.querySelector('toolgate-playground')?.hasAttribute('ready'));
    }, null, { timeout: 30_000 });
    const wall = Date.now() - started;
    const sample = await page.evaluate(() => {
      const [nav] = performance.getEntriesByType('navigation');
      const ready = window.__tgBench.ready;
      const last = Math.max(...ready);
      const resources = performance.getEntriesByType('resource');
      const wasm = resources.find((r) => r.name.endsWith('.wasm'));
      const module = resources.find((r) => r.name.endsWith('/toolgate-playground.js'));
      return {
        examples: ready.length,
        interactiveMs: last,
        afterLoadMs: last - nav.loadEventEnd,
        loadMs: nav.loadEventEnd,
        domContentLoadedMs: nav.domContentLoadedEventEnd,
        moduleFetchedMs: module?.responseEnd ?? null,
        wasmRequestedMs: wasm?.startTime ?? null,
      };
    });
    samples.push({ ...sample, wallMs: wall, wasmFetches: wasm });
    await context.close();
  }
  const pick = (key) => median(samples.map((s) => s[key]));
  results.push({
    url,
    runs,
    examples: samples[0].examples,
    interactive_ms_median: pick('interactiveMs'),
    interactive_ms_range: [Math.min(...samples.map((s) => s.interactiveMs)), Math.max(...samples.map((s) => s.interactiveMs))],
    after_load_ms_median: pick('afterLoadMs'),
    load_event_ms_median: pick('loadMs'),
    wasm_requested_ms_median: pick('wasmRequestedMs'),
    wall_ms_median: pick('wallMs'),
    wasm_fetches_per_page: Math.max(...samples.map((s) => s.wasmFetches)),
  });
}

await browser.close();
await server.close();

const version = browser.version?.() ?? '';
if (values.json) {
  console.log(JSON.stringify({ chromium: version, results }, null, 2));
} else {
  const ms = (n) => `${Math.round(n)} ms`;
  const lines = [
    `Docs pages in headless Chromium ${version}, cold loads (a fresh browser context each: no HTTP or code cache), median of ${runs} (budget: interactive ≤ 1.5 s, .wasm fetched once per page)`,
    '',
    '| page | live examples near the first screen | interactive (from navigation start) | after the load event | load event | .wasm fetches |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    lines.push(`| \`${r.url}\` | ${r.examples} | **${ms(r.interactive_ms_median)}** (${ms(r.interactive_ms_range[0])}–${ms(r.interactive_ms_range[1])}) | ${ms(r.after_load_ms_median)} | ${ms(r.load_event_ms_median)} | ${r.wasm_fetches_per_page} |`);
  }
  const markdown = lines.join('\n');
  console.log(markdown);
  if (!values.page) {
    // The budgets are about the page with three live examples.
    const embedding = results.find((r) => r.url === '/docs/embedding.html');
    const budgets = [
      { name: 'docs page with three live examples interactive (Chromium, cold load)', target: '≤ 1.5 s', measured: ms(embedding.interactive_ms_median), met: embedding.interactive_ms_median <= 1500 },
      { name: 'docs pages: `.wasm` fetched once per page', target: '1', measured: String(Math.max(...results.map((r) => r.wasm_fetches_per_page))), met: results.every((r) => r.wasm_fetches_per_page === 1) },
    ];
    const outDir = values.out ? path.resolve(values.out) : path.join(repoRoot, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path.join(outDir, 'site.json'), `${JSON.stringify({ chromium: version, runs, quick: values.quick, results, budgets }, null, 2)}\n`);
    writeFileSync(path.join(outDir, 'site.md'), `${markdown}\n`);
  }
}
