// Shared pieces for the suites that drive headless Chromium (the playground
// suite and bench/web): launching Debian's Chromium through playwright-core, a
// tiny static server that counts requests, and helpers that speak the
// <toolgate-playground> DOM contract (web/README or the component's docs).
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
export const webDist = path.join(repoRoot, 'web', 'dist');
export const artifactsDir = path.join(repoRoot, 'tests', 'artifacts');

export const contentTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

// Why the Chromium suites cannot run here, or null when they can.
export function chromiumMissing() {
  return existsSync(CHROMIUM)
    ? null
    : `${CHROMIUM} does not exist (install Debian's chromium package to run the browser tests)`;
}

export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

// A static server on 127.0.0.1 (port 0) for `dir`, plus in-memory `files`
// ({ '/page.html': 'text' }) served ahead of the directory. Counts every
// request by pathname and keeps them in order (`log`), so a test can tell what
// a page fetched. `cors` adds Access-Control-Allow-Origin: * (a page on another
// origin loading the module and its .wasm needs it, as from any CDN). `types`
// overrides content types by extension ({ '.wasm': '...' }), `headersFor`
// adds headers by extension ({ '.html': { 'content-security-policy': ... } }),
// and `forbid(file)` answers 403 for files a page must not reach.
export async function startStaticServer(dir, { files = {}, cors = false, headers: extraHeaders = {}, types = {}, headersFor = {}, forbid = () => false } = {}) {
  const root = path.resolve(dir);
  const requests = new Map();
  const log = [];
  const server = http.createServer(async (request, response) => {
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
    } catch {
      response.writeHead(400).end();
      return;
    }
    requests.set(pathname, (requests.get(pathname) ?? 0) + 1);
    log.push(pathname);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405).end();
      return;
    }
    let body;
    let file = pathname;
    if (Object.hasOwn(files, pathname)) {
      body = Buffer.from(files[pathname]);
    } else {
      if (file.endsWith('/')) file += 'index.html';
      const resolved = path.resolve(root, `.${file}`);
      if ((resolved !== root && !resolved.startsWith(root + path.sep)) || forbid(resolved)) {
        response.writeHead(403).end();
        return;
      }
      try {
        body = await readFile(resolved);
      } catch {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
    }
    const ext = path.extname(file);
    const headers = {
      'content-type': types[ext] ?? contentTypes[ext] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'no-store',
      ...headersFor[ext],
      ...extraHeaders,
    };
    if (cors) headers['access-control-allow-origin'] = '*';
    response.writeHead(200, headers);
    response.end(request.method === 'HEAD' ? undefined : body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  let closed = null;
  return {
    origin,
    requests,
    log,
    count: (pathname) => requests.get(pathname) ?? 0,
    // Requests whose pathname matches `test` (a RegExp), summed.
    countMatching: (test) => [...requests].filter(([p]) => test.test(p)).reduce((sum, [, n]) => sum + n, 0),
    reset() {
      requests.clear();
      log.length = 0;
    },
    close() {
      closed ??= new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

// Runs in every page before its own scripts: records each `decision` event
// that reaches the document (composed, so its target is the host element).
export function recordDecisionEvents() {
  window.__tgEvents = [];
  document.addEventListener(
    'decision',
    (event) => {
      let detail;
      try {
        detail = JSON.parse(JSON.stringify(event.detail ?? null));
      } catch {
        detail = String(event.detail);
      }
      const hosts = [...document.querySelectorAll('toolgate-playground')];
      window.__tgEvents.push({
        host: hosts.indexOf(event.target),
        id: event.target?.id ?? '',
        tag: event.target?.tagName ?? '',
        bubbles: event.bubbles,
        composed: event.composed,
        detail,
      });
    },
    true,
  );
}

// Console errors, uncaught exceptions and failed requests of one page.
export function trackProblems(page, problems = []) {
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console.error: ${message.text()} (${message.location()?.url ?? ''})`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) => {
    problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('crash', () => problems.push('page crashed'));
  return problems;
}

export async function screenshot(page, name) {
  await mkdir(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `playground-${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true, timeout: 15_000 });
  } catch {
    try {
      await page.screenshot({ path: file, timeout: 15_000 });
    } catch {
      // A crashed page has nothing to show; the test reports the crash.
    }
  }
  return file;
}

// ---- The <toolgate-playground> DOM contract ---------------------------------

export const host = (page, index = 0) => page.locator('toolgate-playground').nth(index);
export const byTestId = (scope, id) => scope.locator(`[data-testid="${id}"]`);

export async function waitReady(page, { count = 1, timeout = 30_000 } = {}) {
  await page.waitForFunction(
    (n) => {
      const hosts = [...document.querySelectorAll('toolgate-playground')];
      return hosts.length >= n && hosts.every((h) => h.hasAttribute('ready'));
    },
    count,
    { timeout },
  );
}

// The editor's whole text. CodeMirror renders only the lines in view, so the
// DOM is not the document: ask the EditorView (found through the DOM node's
// view reference) and fall back to the rendered lines for small documents.
export async function editorText(scope) {
  return byTestId(scope, 'editor')
    .locator('.cm-content')
    .evaluate((content) => {
      const seen = new Set();
      const viewOf = (node) => {
        for (let n = node; n && !seen.has(n); n = n.parent) {
          seen.add(n);
          if (n.view && n.view.state && n.view.state.doc) return n.view;
          if (n.state && n.state.doc && n.dispatch) return n;
        }
        return null;
      };
      const view = viewOf(content.cmView) ?? viewOf(content.cmTile) ?? viewOf(content.parentElement?.cmView);
      if (view) return view.state.doc.toString();
      return [...content.querySelectorAll('.cm-line')].map((line) => line.textContent).join('\n');
    });
}

// Replaces the policy text as a user does: click, select all, insert.
export async function setPolicy(page, text, scope = host(page)) {
  const content = byTestId(scope, 'editor').locator('.cm-content');
  await content.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
}

// Replaces the policy text with a real paste event (clipboardData), as a
// user's Ctrl+V of a large clipboard does.
export async function pastePolicy(page, text, scope = host(page)) {
  const content = byTestId(scope, 'editor').locator('.cm-content');
  await content.click();
  await page.keyboard.press('Control+A');
  await content.evaluate((node, pasted) => {
    const data = new DataTransfer();
    data.setData('text/plain', pasted);
    node.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true, composed: true }));
  }, text);
}

export async function decisionEventCount(page, index = 0) {
  return page.evaluate((i) => (window.__tgEvents ?? []).filter((e) => e.host === i).length, index);
}

// What the decision panel shows.
export async function readDecision(scope) {
  const decision = byTestId(scope, 'decision');
  return decision.evaluate((node) => {
    const find = (id) => node.querySelector(`[data-testid="${id}"]`);
    const visible = (el) => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    return {
      decision: node.getAttribute('data-decision'),
      code: node.getAttribute('data-code'),
      message: find('decision-message')?.textContent ?? null,
      rule: find('decision-rule')?.textContent ?? null,
      retryAfter: visible(find('retry-after')) ? find('retry-after').textContent : null,
      approve: visible(find('approve')),
      text: node.textContent,
    };
  });
}

// Clicks Send and waits until the component reports the call: its decision
// event and, when the component shows one, a new timeline row.
export async function send(page, index = 0, { timeout = 15_000 } = {}) {
  const scope = host(page, index);
  const events = await decisionEventCount(page, index);
  const timeline = byTestId(scope, 'timeline-entry');
  const rows = await timeline.count();
  await byTestId(scope, 'send').click();
  await page.waitForFunction(
    ([i, n]) => (window.__tgEvents ?? []).filter((e) => e.host === i).length > n,
    [index, events],
    { timeout },
  );
  if ((await byTestId(scope, 'timeline').count()) > 0) {
    await page.waitForFunction(
      ([i, n]) => {
        const h = document.querySelectorAll('toolgate-playground')[i];
        return (h?.shadowRoot?.querySelectorAll('[data-testid="timeline-entry"]').length ?? 0) > n;
      },
      [index, rows],
      { timeout },
    );
  }
  return readDecision(scope);
}

// Runs `action` (an edit that leaves a policy that compiles: typing, a preset,
// a scan applied, a paste) and waits until component `index` has checked the
// new text: compiled it, shown its diagnostics, re-run its tests and its
// preview. The component re-checks after a debounce and then works
// asynchronously, so a fixed pause races it on a loaded machine. It sets
// `lastEvaluationMs` at the end of every check of a text that compiles
// (web/README.md); clearing it first makes its return the signal. (A text that
// does not compile never sets it: wait for its diagnostics instead.)
export async function afterCheck(page, action, { index = 0, timeout = 30_000 } = {}) {
  await page.evaluate((i) => {
    document.querySelectorAll('toolgate-playground')[i].lastEvaluationMs = undefined;
  }, index);
  await action();
  await page.waitForFunction(
    (i) => typeof document.querySelectorAll('toolgate-playground')[i].lastEvaluationMs === 'number',
    index,
    { timeout },
  );
}

// Waits for `count` animation frames of the page: CodeMirror measures and
// scrolls in an animation frame (requestMeasure), so once two frames have run
// after an action, any scroll it caused has happened.
export async function animationFrames(page, count = 2) {
  await page.evaluate(async (n) => {
    for (let i = 0; i < n; i += 1) await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  }, count);
}
