// Prometheus metrics for the proxy on Node, with prom-client: one registry per
// proxy, fed by hooks (the gate's observer, the handler's upstream timing, a
// wrapper around the counter store, the reload loop) and read on /metrics.
//
// Label values come from agents (tool names): an agent holding a grant could
// otherwise mint a new time series per call and exhaust the proxy's memory and
// the Prometheus server's. So a tool gets its own label only when the policy
// names it exactly or let the call through (a refused made-up name is
// "_other"), each server keeps at most `maxToolLabels` distinct tool labels
// (the first seen; later names are "_other" too), and a name is cut to 128
// characters.
import client from 'prom-client';

const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
export const OTHER_TOOL = '_other';

/**
 * @param {object} [options]
 * @param {{list(now: number): Promise<object[]>}} [options.approvals] read for the pending-approvals gauge at scrape time
 * @param {number} [options.maxToolLabels] distinct tool labels per server (default 100)
 * @param {string} [options.prefix] metric name prefix (default "toolgate_")
 * @param {() => number} [options.clock]
 */
export function createMetrics({ approvals, maxToolLabels = 100, prefix = 'toolgate_', clock = Date.now } = {}) {
  const registry = new client.Registry();
  const decisions = new client.Counter({
    name: `${prefix}decisions_total`, help: 'tools/call decisions, by server, tool, decision and code; enforced="false" in monitor mode',
    labelNames: ['server', 'tool', 'decision', 'code', 'enforced'], registers: [registry],
  });
  const decisionSeconds = new client.Histogram({
    name: `${prefix}decision_duration_seconds`, help: 'time to decide a tools/call (policy and stores), by server',
    labelNames: ['server'], buckets: LATENCY_BUCKETS, registers: [registry],
  });
  const storeSeconds = new client.Histogram({
    name: `${prefix}store_duration_seconds`, help: 'counter store operations, by operation',
    labelNames: ['operation'], buckets: LATENCY_BUCKETS, registers: [registry],
  });
  const storeErrors = new client.Counter({
    name: `${prefix}store_errors_total`, help: 'counter store operations that failed, by operation',
    labelNames: ['operation'], registers: [registry],
  });
  const upstreamSeconds = new client.Histogram({
    name: `${prefix}upstream_duration_seconds`, help: 'time until the upstream server\'s answer began, by server',
    labelNames: ['server'], buckets: LATENCY_BUCKETS, registers: [registry],
  });
  const upstreamResponses = new client.Counter({
    name: `${prefix}upstream_responses_total`, help: 'upstream answers by server and HTTP status (or timeout, unreachable, failed, client_left)',
    labelNames: ['server', 'status'], registers: [registry],
  });
  const reloads = new client.Counter({
    name: `${prefix}reloads_total`, help: 'configuration reloads, by result (ok, failed)',
    labelNames: ['result'], registers: [registry],
  });
  new client.Gauge({
    name: `${prefix}pending_approvals`, help: 'calls waiting for a human\'s approval (read from the approval store at scrape time)',
    registers: [registry],
    async collect() {
      if (typeof approvals?.list !== 'function') return;
      try {
        this.set((await approvals.list(clock())).length);
      } catch {
        // a store that cannot answer leaves the gauge as it was
      }
    },
  });
  reloads.inc({ result: 'ok' }, 0);
  reloads.inc({ result: 'failed' }, 0);

  const toolLabels = new Map(); // server -> Set of tool labels in use
  const toolLabel = (server, tool, trusted) => {
    if (typeof tool !== 'string') return '';
    if (!trusted) return OTHER_TOOL;
    const name = tool.length > 128 ? tool.slice(0, 128) : tool;
    let seen = toolLabels.get(server);
    if (!seen) toolLabels.set(server, seen = new Set());
    if (seen.has(name)) return name;
    if (seen.size >= maxToolLabels) return OTHER_TOOL;
    seen.add(name);
    return name;
  };

  const time = (operation, started) => storeSeconds.observe({ operation }, (performance.now() - started) / 1000);
  const failed = (operation, started, error) => {
    time(operation, started);
    storeErrors.inc({ operation });
    throw error;
  };

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    /** The gate's and handler's observer (worker/gate.js, worker/handler.js). */
    observer: {
      decided({ server, tool, named = false, decision, code, enforced, ms }) {
        const trusted = named || (decision === 'allow' && code === 'allowed');
        decisions.inc({ server, tool: toolLabel(server, tool, trusted), decision, code, enforced: enforced ? 'true' : 'false' });
        decisionSeconds.observe({ server }, ms / 1000);
      },
      upstream({ server, status, ms }) {
        upstreamResponses.inc({ server, status: String(status) });
        upstreamSeconds.observe({ server }, ms / 1000);
      },
    },
    reloaded(ok) {
      reloads.inc({ result: ok ? 'ok' : 'failed' });
    },
    /**
     * The counter store with its operations timed and failures counted; every
     * other property is the store's own.
     */
    instrumentStore(store) {
      // Any store's operation, timed; a synchronous throw counts as a failure too.
      const wrap = (operation) => (...args) => {
        const started = performance.now();
        let result;
        try {
          result = Promise.resolve(store[operation](...args));
        } catch (error) {
          result = Promise.reject(error);
        }
        return result.then((value) => { time(operation, started); return value; }, (error) => failed(operation, started, error));
      };
      const timed = { reserve: wrap('reserve'), commit: wrap('commit'), rollback: wrap('rollback') };
      // The memory store's synchronous forms (wasm/index.js uses them when present).
      const sync = (operation) => (...args) => {
        const started = performance.now();
        try {
          const value = store[operation](...args);
          time(operation === 'reserveNow' ? 'reserve' : 'commit', started);
          return value;
        } catch (error) {
          return failed(operation === 'reserveNow' ? 'reserve' : 'commit', started, error);
        }
      };
      if (typeof store.reserveNow === 'function') timed.reserveNow = sync('reserveNow');
      if (typeof store.commitNow === 'function') timed.commitNow = sync('commitNow');
      return new Proxy(store, {
        get(target, property) {
          if (Object.hasOwn(timed, property)) return timed[property];
          const value = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
}
