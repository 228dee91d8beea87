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

// What a call costs: every tools/call counts a decision, times it, times the
// store's reserve and commit and counts the upstream's answer. Through
// prom-client each of those hashes its label object (sorting the names) and
// validates it, about 0.6 µs apiece, 2.7 µs of CPU a call. So a call only adds
// to plain numbers in cells found by Map lookups on the label values (a
// histogram cell per label set, a counter cell per label set), and prom-client
// sees the numbers when /metrics is read: about 0.4 µs a call. And a call
// makes no arrays or closures here (no rest parameters, no spreads, no
// .then() callbacks): in `toolgate serve` these hooks are not inlined, so
// such garbage is real there even where a micro-benchmark's optimiser removes
// it (tests/js/metrics-alloc.test.js; bench/README.md, "Metrics on vs off").

/**
 * A prom-client Counter fed from cells: add(v0, v1, ...) counts one in the
 * cell of that label set (the values in the order of `labelNames`); the counter
 * takes what the cells counted when it is read (its collect(), before every
 * scrape). Cells are found through one Map per label, keyed by the values as
 * they come: no key string is built per call.
 */
function countedCounter(config) {
  const { labelNames } = config;
  const last = labelNames.length - 1;
  const cells = []; // in the order label sets were first counted, as prom-client lists them
  const root = new Map();
  const counter = new client.Counter({
    ...config,
    collect() {
      for (const cell of cells) {
        if (cell.pending === 0) continue;
        this.inc(cell.labels, cell.pending);
        cell.pending = 0;
      }
    },
  });
  // Up to five labels, passed as parameters: a rest parameter made an array
  // per event (170 B a call in toolgate serve's allocation profile, where
  // the function is not inlined).
  if (labelNames.length < 1 || labelNames.length > 5) throw new Error('countedCounter takes 1 to 5 labels');
  const inner = (map, value) => {
    let next = map.get(value);
    if (next === undefined) map.set(value, next = new Map());
    return next;
  };
  return {
    counter,
    add(v0, v1, v2, v3, v4) {
      let map = root;
      if (last > 0) map = inner(map, v0);
      if (last > 1) map = inner(map, v1);
      if (last > 2) map = inner(map, v2);
      if (last > 3) map = inner(map, v3);
      const key = last === 0 ? v0 : last === 1 ? v1 : last === 2 ? v2 : last === 3 ? v3 : v4;
      const cell = map.get(key);
      if (cell !== undefined) {
        cell.pending += 1;
        return;
      }
      const values = [v0, v1, v2, v3, v4];
      const labels = {};
      labelNames.forEach((name, i) => { labels[name] = values[i]; });
      const made = { labels, pending: 1 };
      map.set(key, made);
      cells.push(made);
    },
  };
}

/** One label set's histogram: bucket counts, sum and count. */
class HistogramCell {
  constructor(labels, bounds) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length);
    this.sum = 0;
    this.count = 0;
  }

  // Takes the caller's milliseconds and divides here: a double computed by
  // the caller and handed to a function V8 does not inline (in `toolgate
  // serve` these are not) is boxed, a heap number per call; the gate's and
  // the handler's `ms` are already values of theirs.
  /** One observation of `ms` milliseconds, recorded as ms / 1000 seconds. */
  observeMs(ms) {
    const value = ms / 1000;
    // prom-client throws on these; an observer must never throw into a call.
    if (!Number.isFinite(value)) return;
    const { bounds } = this;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        this.counts[i] += 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }
}

/**
 * A histogram with what prom-client's Histogram exposes (the same names,
 * labels, cumulative buckets, +Inf, _sum and _count, in the order label sets
 * were first seen) and registered like one, whose cells are kept by the
 * caller: cell(labels) once per label set, then cell.observeMs(milliseconds).
 * tests/js/metrics.test.js holds its text to prom-client's own Histogram fed
 * the same values.
 */
class CellHistogram {
  #cells = [];

  constructor({ name, help, buckets, registers }) {
    this.name = name;
    this.help = help;
    this.type = 'histogram';
    this.aggregator = 'sum';
    this.upperBounds = Object.freeze([...buckets]);
    for (const registry of registers) registry.registerMetric(this);
  }

  cell(labels) {
    const cell = new HistogramCell(labels, this.upperBounds);
    this.#cells.push(cell);
    return cell;
  }

  // What prom-client's Histogram.getForPromString() returns: the label set as
  // sharedLabels, `le` (or nothing) as labels.
  async getForPromString() {
    const values = [];
    const bucket = `${this.name}_bucket`;
    for (const cell of this.#cells) {
      if (cell.count === 0) continue; // prom-client shows a label set once observed
      let cumulative = 0;
      for (let i = 0; i < this.upperBounds.length; i++) {
        cumulative += cell.counts[i];
        values.push({ labels: { le: this.upperBounds[i] }, sharedLabels: cell.labels, value: cumulative, metricName: bucket, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: cell.labels, value: cell.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: cell.labels, value: cell.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: cell.labels, value: cell.count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  // prom-client's get(): the same with the label set merged into labels.
  async get() {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...value }) => ({ ...value, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  reset() {
    for (const cell of this.#cells) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}

/** Cells of `histogram` by one label's value, made on first use. */
function cellsBy(histogram, label) {
  const cells = new Map();
  return (value) => {
    let cell = cells.get(value);
    if (cell === undefined) cells.set(value, cell = histogram.cell({ [label]: value }));
    return cell;
  };
}

/**
 * @param {object} [options]
 * @param {{list(now: number): Promise<object[]>}} [options.approvals] read for the pending-approvals gauge at scrape time
 * @param {number} [options.maxToolLabels] distinct tool labels per server (default 100)
 * @param {string} [options.prefix] metric name prefix (default "toolgate_")
 * @param {() => number} [options.clock]
 */
export function createMetrics({ approvals, maxToolLabels = 100, prefix = 'toolgate_', clock = Date.now } = {}) {
  const registry = new client.Registry();
  const decisions = countedCounter({
    name: `${prefix}decisions_total`, help: 'tools/call decisions, by server, tool, decision and code; enforced="false" in monitor mode',
    labelNames: ['server', 'tool', 'decision', 'code', 'enforced'], registers: [registry],
  });
  const decisionSeconds = cellsBy(new CellHistogram({
    name: `${prefix}decision_duration_seconds`, help: 'time to decide a tools/call (policy and stores), by server',
    buckets: LATENCY_BUCKETS, registers: [registry],
  }), 'server');
  const storeSeconds = cellsBy(new CellHistogram({
    name: `${prefix}store_duration_seconds`, help: 'counter store operations, by operation',
    buckets: LATENCY_BUCKETS, registers: [registry],
  }), 'operation');
  const storeErrors = new client.Counter({
    name: `${prefix}store_errors_total`, help: 'counter store operations that failed, by operation',
    labelNames: ['operation'], registers: [registry],
  });
  const upstreamSeconds = cellsBy(new CellHistogram({
    name: `${prefix}upstream_duration_seconds`, help: 'time until the upstream server\'s answer began, by server',
    buckets: LATENCY_BUCKETS, registers: [registry],
  }), 'server');
  const upstreamResponses = countedCounter({
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

  // A store operation's histogram cell, found once per operation and kept:
  // no Map lookup per operation.
  const storeCells = new Map();
  const storeCell = (operation) => {
    let cell = storeCells.get(operation);
    if (cell === undefined) storeCells.set(operation, cell = storeSeconds(operation));
    return cell;
  };
  // A store operation that threw: timed, counted, and the error thrown on.
  const failed = (operation, started, error) => {
    storeCell(operation).observeMs(performance.now() - started);
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
        const label = toolLabel(server, tool, trusted);
        decisions.add(server, label, decision, code, enforced ? 'true' : 'false');
        decisionSeconds(server).observeMs(ms);
      },
      upstream({ server, status, ms }) {
        upstreamResponses.add(server, String(status));
        upstreamSeconds(server).observeMs(ms);
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
      // Any store's operation, timed; a synchronous throw counts as a failure
      // too. An async function rather than .then() with two new closures per
      // operation (Redis, Durable Object and KV stores): a timer without a
      // function made per call.
      const wrap = (operation) => async (...args) => {
        const started = performance.now();
        let value;
        try {
          value = await store[operation](...args);
        } catch (error) {
          failed(operation, started, error);
        }
        storeCell(operation).observeMs(performance.now() - started);
        return value;
      };
      const timed = { reserve: wrap('reserve'), commit: wrap('commit'), rollback: wrap('rollback') };
      // The memory store's synchronous forms, reserveNow(requests, now) and
      // commitNow(reservation) (wasm/index.js uses them when present), with
      // their parameters spelt out: a rest parameter and a spread made an
      // array per call.
      if (typeof store.reserveNow === 'function') {
        timed.reserveNow = (requests, now) => {
          const started = performance.now();
          let value;
          try {
            value = store.reserveNow(requests, now);
          } catch (error) {
            failed('reserve', started, error);
          }
          storeCell('reserve').observeMs(performance.now() - started);
          return value;
        };
      }
      if (typeof store.commitNow === 'function') {
        timed.commitNow = (reservation) => {
          const started = performance.now();
          let value;
          try {
            value = store.commitNow(reservation);
          } catch (error) {
            failed('commit', started, error);
          }
          storeCell('commit').observeMs(performance.now() - started);
          return value;
        };
      }
      // The timed operations are the returned object's own properties, and the
      // store is read through a Proxy only below them (its other methods, bound
      // once): the reads Policy.authorize makes on every call (reserveNow,
      // commitNow, ...) then find an own property, where a Proxy's trap on
      // each read cost more than the metrics themselves. An operation the
      // store lacks is an own `undefined`, so that `typeof` finds it too.
      const bound = new Map();
      const rest = new Proxy(store, {
        get(target, property) {
          const value = Reflect.get(target, property, target);
          if (typeof value !== 'function') return value;
          let held = bound.get(property);
          if (held === undefined || held.value !== value) bound.set(property, held = { value, bound: value.bind(target) });
          return held.bound;
        },
      });
      // Own properties made by description: an assignment would go through the
      // Proxy below and land on the store itself.
      const own = {};
      for (const name of ['reserve', 'commit', 'rollback', 'reserveNow', 'commitNow']) own[name] = { value: timed[name], enumerable: true };
      return Object.create(rest, own);
    },
  };
}
