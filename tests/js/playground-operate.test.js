// The playground's operating features (issue #16) in headless Chromium, on the
// built web/dist/: the trace of each decision ("Why"), monitor mode shown as
// not enforced, and replay of pasted audit lines with the same diff as
// `toolgate replay` (compared with the CLI on the same lines). Same contract
// and helpers as playground.test.js: no console errors, a screenshot per test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  afterCheck, byTestId, chromiumMissing, host, launchChromium, readDecision, recordDecisionEvents, repoRoot,
  screenshot, send, setPolicy, startStaticServer, trackProblems, waitReady, webDist,
} from './browser-helpers.js';
import { policyFile, runCli } from './cli-helpers.js';

const skipReason = chromiumMissing()
  ?? (existsSync(path.join(webDist, 'index.html')) ? null : `${path.relative(repoRoot, webDist)}/index.html does not exist: run \`npm run build:web\` first`);
const scratch = mkdtempSync(path.join(tmpdir(), 'toolgate-playground-operate-'));

const POLICY = {
  version: '1',
  default: 'deny',
  tools: {
    refund: { require: [{ path: 'args.amount', op: 'lte', value: 100 }], limits: [{ window: 'hour', max: 1 }] },
    read: {},
  },
};
// What `toolgate serve --audit-arguments` writes, recorded under an older policy.
const AUDIT = [
  { time: '2026-01-01T00:00:01.000Z', grant: 'bot', server: 'default', tool: 'refund', arguments: { amount: 50 }, decision: 'allow', code: 'allowed', rule: '/tools/refund' },
  { time: '2026-01-01T00:00:02.000Z', grant: 'bot', server: 'default', tool: 'refund', arguments: { amount: 60 }, decision: 'allow', code: 'allowed', rule: '/tools/refund' },
  { time: '2026-01-01T00:00:03.000Z', grant: 'bot', server: 'default', tool: 'refund', arguments: { amount: 500 }, decision: 'allow', code: 'allowed', rule: '/tools/refund' },
  { time: '2026-01-01T00:00:04.000Z', grant: 'bot', server: 'default', tool: 'read', arguments: {}, decision: 'deny', code: 'default_deny', rule: '/default' },
  { time: '2026-01-01T00:00:05.000Z', grant: 'bot', server: 'default', tool: 'read', arguments: {}, decision: 'allow', code: 'allowed', rule: '/tools/read' },
].map((event) => JSON.stringify(event)).join('\n');

let browser;
let server;
before(async () => {
  if (skipReason) return;
  const dist = path.join(scratch, 'dist');
  cpSync(webDist, dist, { recursive: true });
  server = await startStaticServer(dist);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

function playgroundTest(name, title, body) {
  test(title, { timeout: 90_000 }, async (t) => {
    if (skipReason) {
      t.skip(skipReason);
      return;
    }
    const context = await browser.newContext({ viewport: { width: 1400, height: 1400 } });
    await context.addInitScript(recordDecisionEvents);
    const page = await context.newPage();
    const problems = trackProblems(page);
    try {
      const response = await page.goto(`${server.origin}/index.html`);
      assert.equal(response.status(), 200);
      await waitReady(page);
      await afterCheck(page, () => setPolicy(page, JSON.stringify(POLICY, null, 2)));
      await body(page);
      assert.deepEqual(problems, [], 'no console errors, uncaught exceptions or failed requests');
    } finally {
      await screenshot(page, name);
      await context.close();
    }
  });
}

const pg = (page) => host(page);
async function compose(page, { tool, args, grant = 'bot' }) {
  await byTestId(pg(page), 'tool').fill(tool);
  await byTestId(pg(page), 'arguments').fill(args);
  await byTestId(pg(page), 'grant').fill(grant);
}
const steps = (page) => byTestId(pg(page), 'trace-step').evaluateAll((items) => items.map((li) => [li.dataset.step, li.textContent]));

playgroundTest('operate-trace', 'each decision shows its steps: the entry, the condition with the value it read, the limit with its count', async (page) => {
  await compose(page, { tool: 'refund', args: '{"amount": 40}' });
  await send(page);
  assert.equal((await readDecision(pg(page))).code, 'allowed');
  const first = await steps(page);
  assert.deepEqual(first.map(([step]) => step), ['entry', 'require', 'limit']);
  assert.match(first[1][1], /args\.amount lte 100 \(read 40: true\)/);
  assert.match(first[2][1], /limit: 0 counted \+ 1 ≤ 1\? yes/);
  await send(page);
  assert.equal((await readDecision(pg(page))).code, 'rate_limited');
  assert.match((await steps(page)).at(-1)[1], /limit: 1 counted \+ 1 ≤ 1\? no/);
  await compose(page, { tool: 'refund', args: '{"amount": 400}' });
  await send(page);
  assert.equal((await readDecision(pg(page))).code, 'requirement_failed');
  assert.match((await steps(page))[1][1], /read 400: false/);
});

playgroundTest('operate-monitor', 'monitor mode: a refused call is shown as not enforced, would be denied', async (page) => {
  await byTestId(pg(page), 'monitor').check();
  await compose(page, { tool: 'delete', args: '{}' });
  await send(page);
  const decision = byTestId(pg(page), 'decision');
  assert.equal(await decision.getAttribute('data-enforced'), 'false');
  assert.equal((await readDecision(pg(page))).code, 'default_deny');
  assert.match(await byTestId(pg(page), 'monitor-tag').textContent(), /not enforced: would be deny, forwarded/);
  assert.match(await byTestId(pg(page), 'timeline-entry').last().textContent(), /default_deny \(not enforced\)/);
  await byTestId(pg(page), 'monitor').uncheck();
  assert.equal(await decision.getAttribute('data-enforced'), 'true');
});

playgroundTest('operate-replay', 'pasted audit lines are replayed through the policy: the same diff as toolgate replay', async (page) => {
  await byTestId(pg(page), 'replay-input').fill(AUDIT);
  await byTestId(pg(page), 'replay-run').click();
  const summary = byTestId(pg(page), 'replay-summary');
  await page.waitForFunction((el) => el.hasAttribute('data-changed'), await summary.elementHandle());
  assert.equal(await summary.getAttribute('data-changed'), '3');
  assert.equal(await byTestId(pg(page), 'replay-counts').textContent(), '5 calls replayed; 3 changed.');
  const rows = await byTestId(pg(page), 'replay-change').evaluateAll((list) => list.map((tr) => [tr.dataset.tool, tr.dataset.change]));
  assert.deepEqual(rows, [['refund', 'allow->deny'], ['refund', 'allow->deny'], ['read', 'deny->allow']]);

  // The CLI on the same lines says the same.
  const audit = path.join(scratch, 'audit.jsonl');
  writeFileSync(audit, `${AUDIT}\n`);
  const cli = await runCli(['replay', '--policy', policyFile(POLICY), '--json', audit]);
  assert.equal(cli.code, 1);
  const expected = JSON.parse(cli.stderr);
  assert.equal(expected.changed, 3);
  const list = (counts) => Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([key, n]) => `${key} ${n}`).join(', ');
  assert.equal(await byTestId(pg(page), 'replay-by-change').textContent(), `By change: ${list(expected.by_change)}`);
  assert.equal(await byTestId(pg(page), 'replay-by-rule').textContent(), `By rule: ${list(expected.by_rule)}`);
  assert.equal(await byTestId(pg(page), 'replay-by-tool').textContent(), `By tool: ${list(expected.by_tool)}`);

  // A line it cannot replay is an error naming the line; nothing half-shown.
  await byTestId(pg(page), 'replay-input').fill(`${AUDIT}\n{"time": "2026-01-01T00:00:06.000Z", "grant": "bot", "tool": "read", "decision": "allow"}`);
  await byTestId(pg(page), 'replay-run').click();
  await page.waitForFunction((el) => el.textContent !== '', await byTestId(pg(page), 'replay-error').elementHandle());
  assert.match(await byTestId(pg(page), 'replay-error').textContent(), /line 6: .*--audit-arguments/);
  assert.equal(await byTestId(pg(page), 'replay-change').count(), 0);
});
