// The approvals page in real headless Chromium: an agent's call waits, a
// human opens /approvals, enters the admin token, sees what exactly would run
// and approves (or denies) it; the identical call then runs. Served by
// `toolgate serve` in front of the real server-everything, under the page's
// own Content-Security-Policy (no inline script or style).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startProxy } from '../../worker/node.js';
import { chromiumMissing, launchChromium, screenshot, trackProblems } from './browser-helpers.js';
import { connectClient, grantsDocument, memoryAudit, sha256, startEverything, tempFile } from './proxy-helpers.js';

const skip = chromiumMissing() ?? false;
const ADMIN = 'page-admin-token';
const TOKEN = 'page-agent-token';

let everything;
let proxy;
let browser;
before(async () => {
  if (skip) return;
  everything = await startEverything();
  proxy = await startProxy({
    servers: { default: { upstream: everything.url, policy: await tempFile('page-policy.json', { version: '1', default: 'deny', tools: { 'get-sum': { action: 'require_approval' } } }) } },
    grants: await tempFile('page-grants.json', grantsDocument({ 'deploy-bot': TOKEN })),
    port: 0, audit: memoryAudit(), adminTokenSha256: sha256(ADMIN), log: () => {},
  });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await proxy?.close();
  await everything?.stop();
});

test('a human approves a waiting call on the page; a denied one disappears', { skip }, async () => {
  const client = await connectClient(`${proxy.url}/mcp`, TOKEN);
  const page = await browser.newPage();
  const problems = trackProblems(page);
  try {
    const waiting = await client.callTool({ name: 'get-sum', arguments: { a: 40, b: 2 } });
    const other = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } });
    const id = waiting.structuredContent.approval_id;
    const otherId = other.structuredContent.approval_id;

    // The page refreshes its list every 5 s, and a refresh rewrites the status
    // line: one landing between an approval and the check of its message below
    // would replace 'Approved: …'. The page's timers run on a paused clock
    // (they never fire here); its fetches are real.
    await page.clock.install();
    await page.clock.pauseAt(Date.now() + 1000);
    // Without --public-url the link is relative (never built from the agent's Host): the admin opens it on the proxy.
    assert.equal(waiting.structuredContent.approval_url, `/approvals#${id}`);
    await page.goto(new URL(waiting.structuredContent.approval_url, proxy.url).href);
    await page.fill('#token', 'wrong');
    await page.click('button[type=submit]');
    await page.waitForSelector('#status.error');
    assert.match(await page.textContent('#status'), /Unauthorized/);

    await page.fill('#token', ADMIN);
    await page.click('button[type=submit]');
    const row = page.locator(`tr[id="${id}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('class'), 'highlight', 'the row the agent was sent to is highlighted');
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[1], 'deploy-bot');
    assert.equal(cells[3], 'get-sum');
    assert.deepEqual(JSON.parse(cells[4]), { a: 40, b: 2 }, 'the approver sees the exact arguments');
    await screenshot(page, 'approvals-page');

    await page.locator(`tr[id="${otherId}"] button.reject`).click();
    await page.locator(`tr[id="${otherId}"]`).waitFor({ state: 'detached' });
    await row.locator('button.approve').click();
    await row.waitFor({ state: 'detached' });
    assert.match(await page.textContent('#status'), /Approved: get-sum for deploy-bot/);

    const approved = await client.callTool({ name: 'get-sum', arguments: { a: 40, b: 2 } });
    assert.equal(approved.isError, undefined);
    assert.match(approved.content[0].text, /42/);
    const denied = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } });
    assert.match(denied.content[0].text, /^\[APPROVAL REQUIRED\]/, 'a denied request is not an approval');
    assert.deepEqual(problems.filter((p) => !/401/.test(p)), []);
  } finally {
    await page.close();
    await client.close();
  }
});
