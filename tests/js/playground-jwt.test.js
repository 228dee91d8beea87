// The playground takes a pasted OAuth access token (JWT): decoded in the page,
// never sent anywhere, it fills the grant id (sub) and attributes (every other
// claim, scope as a list) as the proxy does (worker/claims.js), so a policy on
// grant.scope or a custom claim decides in the page as it will in the proxy.
// Real headless Chromium (playwright-core), the built page (npm run build:web).
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { SignJWT, generateKeyPair } from 'jose';

import {
  afterCheck, byTestId, chromiumMissing, host, launchChromium, recordDecisionEvents, screenshot, send, setPolicy,
  startStaticServer, trackProblems, waitReady, webDist,
} from './browser-helpers.js';
import { grantFromClaims } from '../../worker/claims.js';

const skipReason = chromiumMissing() ?? (existsSync(path.join(webDist, 'index.html')) ? null : 'web/dist/index.html does not exist: run `npm run build:web` first');

let browser;
let server;
before(async () => {
  if (skipReason) return;
  const dist = path.join(mkdtempSync(path.join(tmpdir(), 'toolgate-playground-jwt-')), 'dist');
  cpSync(webDist, dist, { recursive: true });
  server = await startStaticServer(dist);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

const POLICY = JSON.stringify({
  version: '1', default: 'deny',
  tools: { refund: { require: [{ path: 'grant.scope', op: 'contains', value: 'refunds:write' }, { path: 'grant.team', op: 'eq', value: 'payments' }] } },
});

test('a pasted JWT fills grant id and attributes; nothing carries it out of the page', { timeout: 90_000 }, async (t) => {
  if (skipReason) return t.skip(skipReason);
  const { privateKey } = await generateKeyPair('ES256');
  const claims = { iss: 'https://as.example', aud: 'https://mcp.example/mcp', sub: 'alice', team: 'payments', scope: 'mcp:tools refunds:write', exp: 2_000_000_000 };
  const token = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await context.addInitScript(recordDecisionEvents);
  const page = await context.newPage();
  const problems = trackProblems(page);
  // Every request the page makes, with its body: the token must be in none.
  const requests = [];
  page.on('request', (request) => requests.push(`${request.url()} ${request.postData() ?? ''} ${JSON.stringify(request.headers())}`));
  try {
    await page.goto(`${server.origin}/index.html`);
    await waitReady(page);
    const scope = host(page);
    await afterCheck(page, () => setPolicy(page, POLICY));
    await byTestId(scope, 'tool').fill('refund');
    await byTestId(scope, 'jwt').fill(token);
    assert.equal(await byTestId(scope, 'grant').inputValue(), 'alice');
    const attributes = JSON.parse(await byTestId(scope, 'grant-attributes').inputValue());
    assert.deepEqual(attributes, grantFromClaims(claims).attributes, 'the same attributes as the proxy makes');
    assert.deepEqual(attributes.scope, ['mcp:tools', 'refunds:write']);
    assert.equal((await send(page)).decision, 'allow');
    // Another token: support, no refunds:write: denied as written.
    const other = await new SignJWT({ ...claims, sub: 'bob', team: 'support', scope: 'mcp:tools' }).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    await byTestId(scope, 'jwt').fill(other);
    assert.equal(await byTestId(scope, 'grant').inputValue(), 'bob');
    assert.equal((await send(page)).decision, 'deny');
    // Not a JWT: said so, and the grant is left as it was.
    await byTestId(scope, 'jwt').fill('not.a-token');
    assert.match(await byTestId(scope, 'jwt-note').textContent(), /Not a JWT/);
    assert.equal(await byTestId(scope, 'grant').inputValue(), 'bob');
    for (const line of requests) {
      assert.ok(!line.includes(token) && !line.includes(other) && !line.includes(token.split('.')[1]), `a request carried the token: ${line.slice(0, 200)}`);
    }
    assert.deepEqual(problems, []);
  } finally {
    await screenshot(page, 'jwt');
    await context.close();
  }
});
