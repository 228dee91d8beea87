// Shared by the scale benchmarks: figures, Markdown tables, results files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Node-free, so the worker of the Durable Objects benchmark runs it too.
export { drive } from './drive.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RESULTS = join(ROOT, 'bench/results');

// Aligned to every window: a run never crosses a bucket boundary.
export const T0 = Date.UTC(2026, 0, 1);

/**
 * The policy both scale benchmarks drive, with a per-grant limit of `limit`
 * calls an hour; and the grant counts to report the spread at, ending at
 * `grants`.
 */
export function scalePolicy(limit) {
  return {
    version: '1',
    default: 'deny',
    tools: {
      // One grant-scoped counter: every call of a grant goes to one shard (its
      // Redis slot, its Durable Object).
      run: { limits: [{ counter: 'per_grant', window: 'hour', max: limit }] },
      // The same, plus one global counter that never denies: two shards per
      // call, one of them always the global counter's.
      run_global: {
        limits: [
          { counter: 'per_grant', window: 'hour', max: limit },
          { counter: 'all_calls', window: 'hour', max: 1e12, scope: 'global' },
        ],
      },
      // Never denies: for throughput alone (one hot grant against many).
      hot: { limits: [{ counter: 'per_grant', window: 'hour', max: 1e12 }] },
    },
  };
}

/** Fills in the default spread steps and checks the limit against the calls per grant. */
export function checkScaleOptions(options) {
  if (options.steps.length === 0) options.steps = [10, 100, 1000, 10_000].filter((n) => n < options.grants).concat(options.grants);
  if (options.limit > options.callsPerGrant) throw new Error('--limit must be at most --calls-per-grant (the check counts denials)');
  return options;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** { p50_ms, p99_ms, max_ms } of latencies in ms. */
export function latencySummary(samples) {
  const sorted = Float64Array.from(samples).sort();
  return { p50_ms: round(percentile(sorted, 50), 3), p99_ms: round(percentile(sorted, 99), 3), max_ms: round(sorted[sorted.length - 1] ?? null, 3) };
}

export function round(value, digits = 2) {
  if (value === null || value === undefined || !Number.isFinite(value)) return value ?? null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** max / mean of `values` (1 = perfectly even), and the min / max. */
export function spread(values) {
  const total = values.reduce((a, b) => a + b, 0);
  const mean = total / values.length;
  return {
    total,
    min: Math.min(...values),
    max: Math.max(...values),
    mean: round(mean, 2),
    max_over_mean: mean > 0 ? round(Math.max(...values) / mean, 3) : null,
  };
}

/** A Markdown table from a header row and rows (cells stringified). */
export function table(header, rows) {
  const line = (cells) => `| ${cells.map((c) => (c === null || c === undefined ? '' : String(c))).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function fmt(n, digits = 0) {
  if (n === null || n === undefined) return '';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }).replace(/,/g, '\u202f');
}

export function pct(part, whole) {
  return whole > 0 ? `${round((100 * part) / whole, 1)} %` : '';
}

/** What the machine was doing: cores, model, load average before and after. */
export function machine() {
  const list = cpus();
  return { node: process.versions.node, cpus: list.length, cpu_model: list[0]?.model?.trim() ?? null, loadavg_1m: round(loadavg()[0], 2) };
}

/** Writes results/<name>.json and results/<name>.md into `dir`. */
export function writeResults(dir, name, json, markdown) {
  mkdirSync(dir, { recursive: true });
  const jsonPath = join(dir, `${name}.json`);
  const mdPath = join(dir, `${name}.md`);
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(mdPath, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  return { jsonPath, mdPath };
}

/** Parses --flag value / --flag arguments against `defaults` (numbers, booleans, strings). */
export function parseFlags(argv, defaults) {
  const options = { ...defaults };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const name = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(name in defaults)) throw new Error(`unknown flag ${arg}`);
    if (typeof defaults[name] === 'boolean') {
      options[name] = true;
      continue;
    }
    const value = argv[(i += 1)];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (typeof defaults[name] === 'number') {
      options[name] = Number(value);
      if (!Number.isFinite(options[name])) throw new Error(`${arg} needs a number`);
    } else if (Array.isArray(defaults[name])) {
      options[name] = value.split(',').map(Number);
    } else {
      options[name] = value;
    }
  }
  return options;
}
