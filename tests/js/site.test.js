// The docs site (site/, built by `npm run build:site` into site/dist/) in real
// headless Chromium, as a new reader meets it: served at /docs/ beside the
// playground (web/dist at /), the way `npm start` serves both.
//
// - every page loads with no console error, page error or failed request;
// - every internal link resolves: the page exists, and so does the #anchor;
// - every live example renders: its <toolgate-playground> gets `ready` and
//   shows the decision the page promises for the first call (or, for a policy
//   shown with an error, the error); then "Run all in order" replays the
//   example's calls in the page and every row gets the decision it expects
//   (the same calls tests/js/site-docs.test.js runs through `toolgate eval`);
// - the WebAssembly core is fetched once per page, and not again when the
//   reader moves to another page;
// - a reader's edit to a live example changes what it decides.
//
// Page-level checks read the component's DOM contract (web/README.md): the
// `ready` attribute, data-testid=decision (data-decision, data-code) and
// data-testid=diagnostic (data-severity) inside its open shadow root.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromiumMissing, launchChromium, repoRoot, setPolicy, startStaticServer, trackProblems, webDist } from './browser-helpers.js';

const siteDist = path.join(repoRoot, 'site', 'dist');
const BASE = '/docs/';

const skipReason =
  chromiumMissing() ??
  (!existsSync(path.join(siteDist, 'index.html'))
    ? 'site/dist/index.html does not exist: run `npm run build:web && npm run build:site` first'
    : !existsSync(path.join(webDist, 'index.html'))
      ? 'web/dist/index.html does not exist: run `npm run build:web` first'
      : null);
if (skipReason) console.log(`# site suite skipped: ${skipReason}`);

// Every built page, as a URL path under /docs/.
function builtPages(dir = siteDist, prefix = '') {
  const pages = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const relative = `${prefix}${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'assets' && entry.name !== 'live') pages.push(...builtPages(path.join(dir, entry.name), `${relative}/`));
    } else if (entry.name.endsWith('.html') && relative !== '404.html') {
      pages.push(`${BASE}${relative.replace(/(^|\/)index\.html$/, '$1')}`);
    }
  }
  return pages.sort();
}

const pages = skipReason ? [] : builtPages();
// The heaviest pages (most live examples) first, so that running pages in
// parallel does not end with one long page alone.
const liveCount = (url) => {
  const file = path.join(siteDist, url.slice(BASE.length).replace(/(^|\/)$/, '$1index.html'));
  return (readFileSync(file, 'utf8').match(/class="tg-live"/g) ?? []).length;
};
const pagesHeaviestFirst = [...pages].sort((a, b) => liveCount(b) - liveCount(a));

let browser;
let server;
const visited = new Map(); // path → { ids: Set, links: [{ from, href }] }

before(async () => {
  if (skipReason) return;
  // A copy of both builds, mounted as npm start serves them.
  const root = path.join(mkdtempSync(path.join(tmpdir(), 'toolgate-site-')), 'root');
  cpSync(webDist, root, { recursive: true });
  cpSync(siteDist, path.join(root, 'docs'), { recursive: true });
  server = await startStaticServer(root);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

// Live examples are created when they come near the viewport (an
// IntersectionObserver). `eager` makes every observed element intersect at
// once, so a test sees all of a page's examples without scrolling through it.
function everythingIntersects() {
  window.IntersectionObserver = class {
    constructor(callback) {
      this.callback = callback;
    }
    observe(target) {
      setTimeout(() => this.callback([{ target, isIntersecting: true, intersectionRatio: 1 }], this), 0);
    }
    unobserve() {}
    disconnect() {}
    takeRecords() {
      return [];
    }
  };
}

async function openPage(url, { viewport = { width: 1280, height: 900 }, eager = false } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  if (eager) await page.addInitScript(everythingIntersects);
  const problems = trackProblems(page);
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  const requests = [];
  page.on('request', (request) => requests.push(new URL(request.url()).pathname));
  await page.goto(`${server.origin}${url}`, { waitUntil: 'load' });
  // VitePress has hydrated when the app is mounted on #app.
  await page.waitForFunction(() => !!document.querySelector('#app')?.__vue_app__, null, { timeout: 15_000 });
  return { context, page, problems, requests };
}

const wasmFetches = (requests) => requests.filter((p) => p.endsWith('.wasm')).length;

// What the page says the first call gets ({ any } for a string expectation).
const firstExpectation = (expect) => (expect === null ? null : typeof expect === 'string' ? { any: expect } : expect);

// The live examples a built page holds, by id (data-example), in order.
const builtExampleIds = (url) => {
  const file = path.join(siteDist, decodeURIComponent(new URL(url, 'http://x').pathname).slice(BASE.length).replace(/(^|\/)$/, '$1index.html'));
  return [...readFileSync(file, 'utf8').matchAll(/class="tg-live" data-example="([^"]*)"/g)].map(([, id]) => id);
};

// Waits until the document shows `url`'s page: its live examples, by id, are
// the built page's. VitePress changes the URL (history.pushState) before it
// has fetched and rendered the next page, so after a click the old page's
// examples are still in the DOM, ready, when the URL already names the new
// one; anything read then is the old page's, and an element held from it is
// detached a moment later ("Element is not attached to the DOM").
async function waitForPage(page, url) {
  const ids = builtExampleIds(url);
  await page.waitForFunction(
    (expected) => JSON.stringify([...document.querySelectorAll('.tg-live')].map((el) => el.dataset.example)) === JSON.stringify(expected),
    ids,
    { timeout: 30_000 },
  );
  return ids;
}

// Waits for every live example of `url` (the page shown, or being shown) to
// render and returns what each shows. Examples are created when they come near
// the viewport: `scroll` scrolls to each in turn, as a reader does; otherwise
// the page was opened `eager`. Elements are found again at every step (by
// locator or inside the page), never held: Vue may replace them.
async function renderLiveExamples(page, url, { scroll = false, limit = Infinity } = {}) {
  const count = Math.min((await waitForPage(page, url)).length, limit);
  for (let i = 0; i < count; i++) {
    if (scroll) await page.locator('.tg-live').nth(i).scrollIntoViewIfNeeded();
    await page.waitForFunction(
      (n) => ['ready', 'failed'].includes(document.querySelectorAll('.tg-live')[n]?.dataset.state),
      i,
      { timeout: 30_000 },
    );
  }
  return page.evaluate((n) => [...document.querySelectorAll('.tg-live')].slice(0, n).map((el) => {
    const playground = el.querySelector('toolgate-playground');
    const root = playground?.shadowRoot;
    const decision = root?.querySelector('[data-testid="decision"]');
    return {
      id: el.dataset.example,
      state: el.dataset.state,
      ready: playground?.hasAttribute('ready') ?? false,
      visible: !!playground && playground.getClientRects().length > 0,
      decision: decision?.getAttribute('data-decision') ?? null,
      code: decision?.getAttribute('data-code') ?? null,
      rule: root?.querySelector('[data-testid="decision-rule"]')?.textContent ?? null,
      errors: [...(root?.querySelectorAll('[data-testid="diagnostic"][data-severity="error"]') ?? [])].map((d) => d.textContent),
      expectError: el.dataset.expectError ?? '',
      firstExpect: el.dataset.firstExpect ? JSON.parse(el.dataset.firstExpect) : null,
      message: el.querySelector('.tg-live-message')?.textContent ?? '',
    };
  }), count);
}

// Presses "Run all in order" on every example of the page at once and returns
// the rows that did not get the decision the page promises.
async function runAllCalls(page, url) {
  const count = await page.evaluate(() => {
    const buttons = [...document.querySelectorAll('.tg-live .tg-live-actions button')];
    for (const button of buttons) button.click();
    return buttons.length;
  });
  await page.waitForFunction(
    () => [...document.querySelectorAll('.tg-live')].every((el) => {
      const rows = el.querySelectorAll('.tg-live-calls tbody tr');
      return rows.length === 0 || (el.querySelectorAll('.tg-live-calls tbody tr[data-pass]').length === rows.length && !el.querySelector('.tg-live-actions button[disabled]'));
    }),
    null,
    { timeout: 60_000 },
  ).catch(() => {}); // the rows left without a result are reported below
  const failures = await page.evaluate(() => [...document.querySelectorAll('.tg-live')].flatMap((el) =>
    [...el.querySelectorAll('.tg-live-calls tbody tr')]
      .filter((tr) => tr.dataset.pass !== 'true' && tr.dataset.pass !== 'null')
      .map((tr) => `${el.dataset.example} row ${Number(tr.dataset.row) + 1}: ${tr.textContent.replace(/\s+/g, ' ').trim()} (${tr.dataset.pass ?? 'no result'}) ${el.querySelector('.tg-live-message')?.textContent ?? ''}`)));
  return { count, failures: failures.map((f) => `${url} ${f}`) };
}

function checkShown(url, shown) {
  for (const example of shown) {
    const where = `${url} example ${example.id}`;
    assert.equal(example.state, 'ready', `${where}: ${example.message}`);
    assert.ok(example.ready && example.visible, `${where}: the playground is not ready and visible`);
    if (example.expectError) {
      assert.ok(example.errors.length > 0, `${where}: the page shows a policy with an error, but the playground shows none`);
      continue;
    }
    assert.deepEqual(example.errors, [], `${where}: the playground shows errors`);
    assert.ok(['allow', 'deny', 'approval_required'].includes(example.decision), `${where}: no decision shown (${example.decision})`);
    const expect = firstExpectation(example.firstExpect);
    if (!expect) continue;
    if (expect.any) assert.ok(expect.any === example.decision || expect.any === example.code, `${where}: shows ${example.decision}/${example.code}, the page promises ${expect.any}`);
    if (expect.decision) assert.equal(example.decision, expect.decision, `${where}: decision`);
    if (expect.code) assert.equal(example.code, expect.code, `${where}: code`);
    if (expect.rule !== undefined) assert.equal(example.rule, expect.rule, `${where}: rule`);
  }
}

describe('the docs site in Chromium', { skip: skipReason ?? false }, () => {
  test('the built site has every page of the sidebar', async () => {
    const { sidebar } = await import('../../site/.vitepress/config.js');
    assert.ok(pages.length >= 25, `${pages.length} pages`);
    for (const group of sidebar) {
      for (const item of group.items) {
        const url = `${BASE}${item.link.slice(1)}${item.link.endsWith('/') ? '' : '.html'}`;
        assert.ok(pages.includes(url), `${item.text} (${url}) was not built`);
      }
    }
  });

  let examplesWithCalls = 0;
  // Pages in parallel (each in its own browser context): most of a page's time is waiting.
  describe('every page', { concurrency: 4 }, () => {
  for (const url of pagesHeaviestFirst) {
    test(`${url}: loads cleanly, every live example renders and decides as the page says`, { timeout: 120_000 }, async () => {
      const { context, page, problems, requests } = await openPage(url, { eager: true });
      try {
        const hasExamples = (await page.locator('.tg-live').count()) > 0;
        const hasFull = (await page.locator('.tg-full').count()) > 0;
        // Everything the reader can follow, and every anchor a link could land on.
        const { ids, links } = await page.evaluate(() => ({
          ids: [...document.querySelectorAll('[id]')].map((el) => el.id),
          links: [...document.querySelectorAll('a[href]')].map((a) => a.href),
        }));
        visited.set(url, { ids: new Set(ids), links });
        const shown = await renderLiveExamples(page, url);
        checkShown(url, shown);
        if (hasFull) {
          await page.waitForFunction(() => document.querySelector('.tg-full toolgate-playground')?.hasAttribute('ready'), null, { timeout: 20_000 });
          const decision = await page.locator('.tg-full toolgate-playground [data-testid="decision"]').getAttribute('data-decision');
          assert.ok(['allow', 'deny', 'approval_required'].includes(decision), `${url}: the full playground shows no decision`);
        }
        // Each example's calls, replayed in the page: every row gets what the page promises.
        const { count, failures } = await runAllCalls(page, url);
        examplesWithCalls += count;
        assert.deepEqual(failures, [], `${url}: calls that did not get the decision the page promises`);
        // The core once per page (none on pages without examples), the component once.
        assert.equal(wasmFetches(requests), hasExamples || hasFull ? 1 : 0, `${url}: .wasm fetched ${wasmFetches(requests)} times`);
        assert.ok(requests.filter((p) => p.endsWith('/toolgate-playground.js')).length <= 1, `${url}: the component module was fetched more than once`);
        await page.waitForTimeout(50); // late console errors
        assert.deepEqual(problems, [], `${url}: problems in the page`);
      } finally {
        await context.close();
      }
    });
  }
  });

  test('the site has live examples with calls to run', () => {
    assert.ok(examplesWithCalls >= 70, `${examplesWithCalls} examples with calls`);
  });

  test('every internal link resolves, anchors included', { timeout: 60_000 }, async () => {
    assert.equal(visited.size, pages.length, 'every page was visited first');
    const broken = [];
    const fetched = new Map();
    for (const [from, { links }] of visited) {
      for (const href of links) {
        const target = new URL(href);
        if (target.origin !== server.origin) continue; // external: not checked here
        const pathname = decodeURIComponent(target.pathname);
        const hash = decodeURIComponent(target.hash.slice(1));
        if (visited.has(pathname)) {
          if (hash && !visited.get(pathname).ids.has(hash)) broken.push(`${from} → ${pathname}#${hash}: no such anchor`);
          continue;
        }
        if (!fetched.has(pathname)) fetched.set(pathname, (await fetch(`${server.origin}${pathname}`)).status);
        if (fetched.get(pathname) !== 200) broken.push(`${from} → ${pathname}: HTTP ${fetched.get(pathname)}`);
        else if (pathname.endsWith('.html') || pathname.endsWith('/')) broken.push(`${from} → ${pathname}: a page outside the site`);
      }
    }
    assert.deepEqual(broken, []);
  });

  test('moving to another page keeps the one core: no second .wasm or module fetch', { timeout: 60_000 }, async () => {
    const { context, page, problems, requests } = await openPage(`${BASE}guide/`);
    try {
      await renderLiveExamples(page, `${BASE}guide/`, { scroll: true });
      assert.equal(wasmFetches(requests), 1);
      // Client-side navigation through the sidebar, as a reader clicks.
      await page.locator('.VPSidebar a[href$="/cookbook/refunds.html"]').first().click();
      await page.waitForURL('**/cookbook/refunds.html');
      const shown = await renderLiveExamples(page, `${BASE}cookbook/refunds.html`, { scroll: true });
      assert.equal(shown.length, 1);
      checkShown('cookbook/refunds.html (after navigation)', shown);
      await page.locator('.VPSidebar a[href$="/reference/decisions.html"]').first().click();
      await page.waitForURL('**/reference/decisions.html');
      const [first] = await renderLiveExamples(page, `${BASE}reference/decisions.html`, { scroll: true, limit: 1 });
      checkShown('reference/decisions.html (after navigation)', [first]);
      assert.equal(wasmFetches(requests), 1, 'the .wasm was fetched again');
      assert.equal(requests.filter((p) => p.endsWith('/toolgate-playground.js')).length, 1, 'the component was fetched again');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a reader edits a live example and its calls follow the edit', { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(`${BASE}guide/`);
    try {
      // The first (and only) example, found again at every step: a handle held
      // across renders could be detached by then.
      const example = page.locator('.tg-live').first();
      await renderLiveExamples(page, `${BASE}guide/`, { scroll: true });
      const playground = example.locator('toolgate-playground');
      // Deny `status`: the first row ("status" → allow) now gets a deny, marked as not what the page says.
      await setPolicy(page, '{ "version": "1", "default": "deny", "tools": { "status": { "action": "deny" }, "run": { "rate_limit": "10/minute" } } }', playground);
      await page.waitForFunction(() => document.querySelector('.tg-live toolgate-playground')?.shadowRoot.querySelector('[data-testid="decision"]')?.getAttribute('data-code') === 'tool_denied', null, { timeout: 10_000 });
      await example.locator('tbody tr').first().locator('button').click();
      await page.waitForFunction(() => document.querySelector('.tg-live tbody tr')?.dataset.pass === 'false', null, { timeout: 10_000 });
      assert.match(await example.locator('tbody tr').first().textContent(), /✗ deny · tool_denied/);
      // Reset brings the page's policy back, and the row passes again. (Try is
      // disabled while the reset reloads the policy; the click waits for it.)
      await example.locator('.tg-live-head button').click();
      await page.waitForFunction(() => document.querySelector('.tg-live toolgate-playground')?.policyText.includes('"status": {}'), null, { timeout: 10_000 });
      await example.locator('tbody tr').first().locator('button').click();
      await page.waitForFunction(() => document.querySelector('.tg-live tbody tr')?.dataset.pass === 'true', null, { timeout: 10_000 });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('examples keep the reader where they are: loading one or trying a call does not scroll the page', { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(`${BASE}guide/`);
    try {
      // The example is below the first screen: it loads (near the viewport) without moving the page.
      await page.waitForFunction(() => document.querySelector('.tg-live')?.dataset.state === 'ready', null, { timeout: 20_000 });
      await page.waitForTimeout(300);
      assert.equal(await page.evaluate(() => window.scrollY), 0, 'the page scrolled when the example loaded');
      // Reading the calls table (the editor above, off screen), the reader presses Try.
      const row = page.locator('.tg-live tbody tr').nth(2);
      await row.evaluate((el) => el.scrollIntoView({ block: 'end' }));
      const before = await page.evaluate(() => window.scrollY);
      await row.locator('button').click();
      await page.waitForFunction(() => document.querySelectorAll('.tg-live tbody tr')[2]?.dataset.pass === 'true', null, { timeout: 10_000 });
      await page.waitForTimeout(300);
      assert.equal(await page.evaluate(() => window.scrollY), before, 'the page jumped when a call was sent');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('search finds a topic and takes the reader there', { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(BASE);
    try {
      await page.locator('.VPNavBarSearch button').first().click();
      const input = page.locator('.VPLocalSearchBox input').first();
      await input.waitFor({ timeout: 15_000 });
      // Results update as the reader types: wait for the one this query is
      // about. The index loads lazily; on a busy machine a query typed before
      // it arrived may show nothing, so the reader types it again once.
      const found = () => page.waitForFunction(() => /Fixed and sliding windows/.test(document.querySelector('.VPLocalSearchBox .result')?.textContent ?? ''), null, { timeout: 15_000 });
      await input.fill('sliding window');
      try {
        await found();
      } catch {
        await input.fill('');
        await input.fill('sliding window');
        await found();
      }
      await input.press('Enter');
      await page.waitForFunction(() => location.pathname.endsWith('/concepts/counters.html') && location.hash === '#fixed-and-sliding-windows', null, { timeout: 15_000 });
      await page.waitForFunction(() => document.querySelector('#fixed-and-sliding-windows') !== null, null, { timeout: 15_000 });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('the pages read without JavaScript: each example shows its policy and its calls', { timeout: 60_000 }, async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await page.goto(`${server.origin}${BASE}reference/limits.html`);
      const examples = page.locator('.tg-live');
      assert.ok((await examples.count()) >= 10);
      const first = examples.first();
      assert.match(await first.locator('pre').first().textContent(), /"version": "1"/);
      assert.ok((await first.locator('tbody tr').count()) >= 1);
    } finally {
      await context.close();
    }
  });
});
