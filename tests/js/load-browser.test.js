// Loading the package the way a browser does: index.js finds the .wasm next to
// itself (import.meta.url) and fetches it, compiling it with
// WebAssembly.instantiateStreaming. (a) In Node through fetch, with an explicit
// wasmUrl; (b) in a real headless Chromium, from a static page.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
import { startStaticServer } from './browser-helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const packageJson = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const CHROMIUM = '/usr/bin/chromium';
const WASM_PATH = '/wasm/dist/toolgate_core.wasm';
const PAGE_PATH = '/tests/js/fixtures/browser.html';

// The page may run WebAssembly but not eval or new Function: proves that the
// façade and the glue (built with -sDYNAMIC_EXECUTION=0) never generate code.
const PAGE_CSP = "default-src 'self'; script-src 'self' 'nonce-toolgate-test' 'wasm-unsafe-eval'; object-src 'none'; img-src data:";

// The repository served statically, counting requests per path; pages get
// PAGE_CSP, and nothing under node_modules is reachable.
const startServer = ({ wasmType = 'application/wasm' } = {}) => startStaticServer(root, {
  types: { '.wasm': wasmType },
  headersFor: { '.html': { 'content-security-policy': PAGE_CSP } },
  forbid: (file) => file.includes(`${path.sep}node_modules${path.sep}`),
});

// Everything this file starts is stopped, even when a test fails midway.
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const policy = {
  version: '1',
  default: 'deny',
  tools: {
    read_file: {},
    run: { limits: [{ counter: 'run_rate', window: 'minute', max: 1, scope: 'grant' }] },
  },
};

test('in Node: loadToolgate({ wasmUrl }) fetches the .wasm once over HTTP', async () => {
  const server = await startServer();
  cleanups.push(() => server.close());
  const toolgate = await loadToolgate({ wasmUrl: `${server.origin}${WASM_PATH}` });
  assert.equal(server.count(WASM_PATH), 1);
  assert.equal(toolgate.version, packageJson.version);
  assert.notEqual(toolgate, await loadToolgate(), 'a wasmUrl gets its own instance');

  const compiled = toolgate.compile(policy);
  const counters = new MemoryCounterStore();
  const now = Date.UTC(2026, 0, 1);
  assert.equal((await compiled.decide({ tool: 'read_file' })).code, 'allowed');
  assert.equal((await compiled.decide({ tool: 'write_file' })).code, 'default_deny');
  assert.equal((await compiled.decide({ tool: 'run', grant: 'a', now }, { counters })).code, 'allowed');
  assert.equal((await compiled.decide({ tool: 'run', grant: 'a', now }, { counters })).code, 'rate_limited');
  assert.equal(server.count(WASM_PATH), 1, 'compiling and deciding fetch nothing more');
  await server.close();
});

test('in Node: a URL object works as wasmUrl', async () => {
  const server = await startServer();
  cleanups.push(() => server.close());
  const toolgate = await loadToolgate({ wasmUrl: new URL(WASM_PATH, server.origin) });
  assert.equal(toolgate.version, packageJson.version);
  assert.equal(server.count(WASM_PATH), 1);
  await server.close();
});

test('in Node: a server sending the wrong content type still works (ArrayBuffer fallback)', async () => {
  const server = await startServer({ wasmType: 'application/octet-stream' });
  cleanups.push(() => server.close());
  const toolgate = await loadToolgate({ wasmUrl: `${server.origin}${WASM_PATH}` });
  assert.equal(toolgate.version, packageJson.version);
  assert.equal((await toolgate.compile(policy).decide({ tool: 'read_file' })).code, 'allowed');
  // instantiateStreaming refuses the type; the fallback fetches the bytes again.
  assert.equal(server.count(WASM_PATH), 2);
  await server.close();
});

test('in Node: a missing .wasm rejects with EngineError (no hang)', { timeout: 10_000 }, async () => {
  const server = await startServer();
  cleanups.push(() => server.close());
  await assert.rejects(loadToolgate({ wasmUrl: `${server.origin}/wasm/dist/missing.wasm` }), (error) => {
    assert.equal(error.name, 'EngineError');
    assert.equal(error.code, 'engine_error');
    assert.match(error.message, /404/);
    return true;
  });
  await server.close();
});

// The timeouts only catch a hang: starting Chromium and loading the page took
// 9 s beside two CPU-bound loops, against a limit of 25 s (20 s for the launch).
test('in headless Chromium: the page imports /wasm/index.js and decides', { timeout: 90_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} does not exist (install Debian's chromium package to run the browser test)`);
    return;
  }
  const { chromium } = await import('playwright-core');
  const server = await startServer();
  cleanups.push(() => server.close());
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
    timeout: 60_000,
  });
  cleanups.push(() => browser.close());

  const page = await browser.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console.error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));

  const response = await page.goto(`${server.origin}${PAGE_PATH}`);
  assert.equal(response.status(), 200);
  await page.waitForFunction(() => window.toolgateResult !== undefined);
  const result = await page.evaluate(() => window.toolgateResult);

  assert.equal(result.codeGenerationBlocked, true, 'the page CSP forbids new Function (so the core ran without it)');
  assert.equal(result.version, packageJson.version);
  assert.equal(result.same, true, 'loadToolgate() shares one instance in the page');
  assert.match(result.hash, /^[0-9a-f]{64}$/);
  assert.deepEqual(
    result.decisions.map((d) => [d.decision, d.code, d.rule]),
    [
      ['allow', 'allowed', '/tools/read_file'],
      ['deny', 'tool_denied', '/tools/delete_*/action'],
      ['allow', 'allowed', '/tools/run'],
      ['deny', 'rate_limited', '/tools/run/limits/0'],
    ],
  );
  assert.equal(result.decisions[1].message, 'No deleting.');
  assert.equal(result.decisions[3].retry_after_ms, 60_000);
  assert.deepEqual(result.policyError, {
    name: 'PolicyError',
    isPolicyError: true,
    isError: true,
    pointers: ['', '/deny_iff'],
  });

  // The same decisions as in Node, for a call evaluated in the page.
  const call = { tool: 'run', arguments: { cmd: 'ls' }, grant: 'carol', now: Date.UTC(2026, 0, 1, 0, 0, 30) };
  const inPage = await page.evaluate(
    async ({ policy, call }) => {
      const compiled = window.toolgate.compile(policy);
      const counters = new window.MemoryCounterStore();
      return [await compiled.decide(call, { counters }), await compiled.decide(call, { counters })];
    },
    { policy, call },
  );
  const inNode = await (async () => {
    const compiled = (await loadToolgate()).compile(policy);
    const counters = new MemoryCounterStore();
    return [await compiled.decide(call, { counters }), await compiled.decide(call, { counters })];
  })();
  assert.deepEqual(inPage, inNode);
  assert.equal(inPage[1].retry_after_ms, 30_000);

  assert.equal(server.count(WASM_PATH), 1, 'the .wasm is fetched exactly once');
  assert.equal(server.count('/wasm/index.js'), 1);
  assert.equal(server.count('/wasm/dist/toolgate_core.mjs'), 1);
  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');

  await page.close();
  await browser.close();
  await server.close();
});
