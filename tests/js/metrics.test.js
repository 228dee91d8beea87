// worker/metrics.js counts into plain cells and lets prom-client see them at
// scrape time (so a call costs well under a microsecond of metrics). Held to
// prom-client itself: seeded random sequences of decisions, upstream answers
// and store operations, scraped at random moments, give exactly the text that
// prom-client's own Counter and Histogram give when fed the same events the
// plain way (label objects per event). `METRICS_SEED` replays one seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import client from 'prom-client';

import { MemoryCounterStore } from '../../wasm/index.js';
import { OTHER_TOOL, createMetrics } from '../../worker/metrics.js';
import { random } from './seeded-random.js';

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

// The plain way: prom-client with a label object per event, and the same
// rule for which tool names get a label of their own.
function reference({ maxToolLabels }) {
  const registry = new client.Registry();
  const decisions = new client.Counter({ name: 'toolgate_decisions_total', help: 'tools/call decisions, by server, tool, decision and code; enforced="false" in monitor mode', labelNames: ['server', 'tool', 'decision', 'code', 'enforced'], registers: [registry] });
  const histogram = (name, help, label) => new client.Histogram({ name, help, labelNames: [label], buckets: BUCKETS, registers: [registry] });
  const decisionSeconds = histogram('toolgate_decision_duration_seconds', 'time to decide a tools/call (policy and stores), by server', 'server');
  const storeSeconds = histogram('toolgate_store_duration_seconds', 'counter store operations, by operation', 'operation');
  const storeErrors = new client.Counter({ name: 'toolgate_store_errors_total', help: 'counter store operations that failed, by operation', labelNames: ['operation'], registers: [registry] });
  const upstreamSeconds = histogram('toolgate_upstream_duration_seconds', 'time until the upstream server\'s answer began, by server', 'server');
  const upstreamResponses = new client.Counter({ name: 'toolgate_upstream_responses_total', help: 'upstream answers by server and HTTP status (or timeout, unreachable, failed, client_left)', labelNames: ['server', 'status'], registers: [registry] });
  const reloads = new client.Counter({ name: 'toolgate_reloads_total', help: 'configuration reloads, by result (ok, failed)', labelNames: ['result'], registers: [registry] });
  new client.Gauge({ name: 'toolgate_pending_approvals', help: 'calls waiting for a human\'s approval (read from the approval store at scrape time)', registers: [registry] });
  reloads.inc({ result: 'ok' }, 0);
  reloads.inc({ result: 'failed' }, 0);
  const seen = new Map();
  const toolLabel = (server, tool, trusted) => {
    if (typeof tool !== 'string') return '';
    if (!trusted) return OTHER_TOOL;
    const name = tool.length > 128 ? tool.slice(0, 128) : tool;
    if (!seen.has(server)) seen.set(server, new Set());
    const names = seen.get(server);
    if (names.has(name)) return name;
    if (names.size >= maxToolLabels) return OTHER_TOOL;
    names.add(name);
    return name;
  };
  return {
    text: () => registry.metrics(),
    decided({ server, tool, named = false, decision, code, enforced, ms }) {
      const trusted = named || (decision === 'allow' && code === 'allowed');
      decisions.inc({ server, tool: toolLabel(server, tool, trusted), decision, code, enforced: enforced ? 'true' : 'false' });
      decisionSeconds.observe({ server }, ms / 1000);
    },
    upstream({ server, status, ms }) {
      upstreamResponses.inc({ server, status: String(status) });
      upstreamSeconds.observe({ server }, ms / 1000);
    },
    store(operation, failed) {
      storeSeconds.observe({ operation }, 0.001);
      if (failed) storeErrors.inc({ operation });
    },
    reloaded: (ok) => reloads.inc({ result: ok ? 'ok' : 'failed' }),
  };
}

// Store durations are measured with the real clock, so they differ run to
// run: compared by their counts only (and every other line exactly).
const comparable = (text) => text.split('\n')
  .filter((line) => !/^toolgate_store_duration_seconds_(bucket|sum)/.test(line))
  .join('\n');

// A counter store whose operations fail when told to.
class FlakyStore extends MemoryCounterStore {
  failNext = false;

  reserveNow(requests, now) {
    if (this.failNext) throw new Error('store down');
    return super.reserveNow(requests, now);
  }

  async rollback(reservation) {
    if (this.failNext) throw new Error('store down');
    return super.rollback(reservation);
  }
}

test('the exposition equals prom-client\'s own for the same events, scraped at random moments', async () => {
  const seeds = process.env.METRICS_SEED ? [Number(process.env.METRICS_SEED)] : Array.from({ length: 40 }, (_, i) => 500 + i);
  for (const seed of seeds) {
    const next = random(seed);
    const pick = (list) => list[Math.floor(next() * list.length)];
    const maxToolLabels = 1 + Math.floor(next() * 6);
    const ours = createMetrics({ maxToolLabels });
    const plain = reference({ maxToolLabels });
    const flaky = new FlakyStore();
    const store = ours.instrumentStore(flaky);
    const servers = ['default', 'github', 'a\u0000b', 'x"y\\z\n'];
    const tools = ['refund', 'read', `long_${'x'.repeat(140)}`, 'made-up-1', 'made\u0000up', null, 'ÿ-tool'];
    const steps = 50 + Math.floor(next() * 300);
    for (let step = 0; step < steps; step++) {
      const what = next();
      if (what < 0.55) {
        const event = {
          server: pick(servers), tool: pick(tools), named: next() < 0.5,
          decision: pick(['allow', 'deny', 'approval_required']), code: pick(['allowed', 'rate_limited', 'default_deny', 'approval_required', 'invalid_call']),
          enforced: next() < 0.8,
          // Durations anywhere in the buckets, on a bound, past the last one, and 0.
          ms: pick([0, 0.05, 0.1, 1, 30_000, 45_000, next() * 50, next() * 5000]),
        };
        ours.observer.decided(event);
        plain.decided(event);
      } else if (what < 0.8) {
        const event = { server: pick(servers), status: pick([200, 202, 404, 500, 'timeout', 'unreachable', 'client_left']), ms: pick([0.2, 3, next() * 100, 31_000]) };
        ours.observer.upstream(event);
        plain.upstream(event);
      } else if (what < 0.93) {
        flaky.failNext = next() < 0.2;
        const request = [{ key: `k${step % 3}`, scope: 'grant', grant: 'g', cost: 1, max: 1e9, window_ms: 60_000, algorithm: 'fixed', bucket_start_ms: 0 }];
        if (next() < 0.5) {
          let reservation;
          try {
            reservation = store.reserveNow(request, 0);
          } catch {
            plain.store('reserve', true);
            continue;
          }
          plain.store('reserve', false);
          store.commitNow(reservation);
          plain.store('commit', false);
        } else {
          const reservation = await store.reserve(request, 0).catch(() => null);
          plain.store('reserve', reservation === null);
          if (reservation) {
            const failed = await store.rollback(reservation).then(() => false, () => true);
            plain.store('rollback', failed);
          }
        }
      } else if (what < 0.95) {
        const ok = next() < 0.5;
        ours.reloaded(ok);
        plain.reloaded(ok);
      } else {
        assert.equal(comparable(await ours.text()), comparable(await plain.text()), `seed ${seed}, step ${step} (METRICS_SEED=${seed})`);
      }
    }
    assert.equal(comparable(await ours.text()), comparable(await plain.text()), `seed ${seed}, at the end (METRICS_SEED=${seed})`);
    // Scraping again without events changes nothing.
    assert.equal(comparable(await ours.text()), comparable(await plain.text()), `seed ${seed}, scraped twice`);
  }
});

test('histograms read as JSON as prom-client\'s do, and reset like them', async () => {
  const ours = createMetrics();
  const plain = new client.Registry();
  const histogram = new client.Histogram({ name: 'toolgate_decision_duration_seconds', help: 'h', labelNames: ['server'], buckets: BUCKETS, registers: [plain] });
  for (const [server, ms] of [['a', 0.3], ['b', 12], ['a', 99_999], ['a', 0.05]]) {
    ours.observer.decided({ server, tool: 'x', decision: 'allow', code: 'allowed', enforced: true, ms });
    histogram.observe({ server }, ms / 1000);
  }
  const json = async (registry) => (await registry.getMetricsAsJSON()).find((m) => m.name === 'toolgate_decision_duration_seconds');
  const { help: ignored, ...mine } = await json(ours.registry);
  const { help: alsoIgnored, ...theirs } = await json(plain);
  assert.deepEqual(mine, theirs);
  ours.registry.resetMetrics();
  assert.doesNotMatch(await ours.text(), /^toolgate_decision_duration_seconds_count/m);
  ours.observer.decided({ server: 'a', tool: 'x', decision: 'allow', code: 'allowed', enforced: true, ms: 2 });
  assert.match(await ours.text(), /^toolgate_decision_duration_seconds_count\{server="a"\} 1$/m);
});

test('an observer never throws into a call: odd durations and server names are taken or ignored', async () => {
  const ours = createMetrics();
  for (const ms of [NaN, Infinity, -1, undefined]) {
    assert.doesNotThrow(() => ours.observer.decided({ server: 'default', tool: 'read', decision: 'allow', code: 'allowed', enforced: true, ms }));
    assert.doesNotThrow(() => ours.observer.upstream({ server: 'default', status: 200, ms }));
  }
  assert.doesNotThrow(() => ours.observer.decided({ server: undefined, tool: 'read', decision: 'deny', code: 'invalid_call', enforced: true, ms: 1 }));
  const text = await ours.text();
  assert.match(text, /^toolgate_decisions_total\{server="default",tool="read",decision="allow",code="allowed",enforced="true"\} 4$/m);
  // Only the finite duration (-1 ms) was observed; NaN and Infinity were not.
  assert.match(text, /^toolgate_decision_duration_seconds_count\{server="default"\} 1$/m);
});
