// Timing helpers shared by the JS benchmarks.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const median = (values) => percentile([...values].sort((a, b) => a - b), 50);

/**
 * Per-call latency of an async (or sync) fn, from batches of `batch` calls (the
 * timer is too coarse for single microsecond calls): each sample is a batch's
 * time / batch. Runs for `seconds` after a warm-up, at least `minBatches`
 * batches. Returns µs per call (p50, p99, mean) and calls per second.
 */
export async function measure(fn, { batch = 20, seconds = 0.5, minBatches = 200, maxBatches = 100000, warmup = 0.1 } = {}) {
  const warmEnd = process.hrtime.bigint() + BigInt(Math.round(warmup * 1e9));
  while (process.hrtime.bigint() < warmEnd) for (let j = 0; j < batch; j++) await fn();
  const samples = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  let total = 0n;
  while (samples.length < maxBatches && (samples.length < minBatches || process.hrtime.bigint() < end)) {
    const start = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) await fn();
    const elapsed = process.hrtime.bigint() - start;
    total += elapsed;
    samples.push(Number(elapsed) / 1000 / batch);
  }
  samples.sort((a, b) => a - b);
  const meanUs = Number(total) / 1000 / (samples.length * batch);
  return {
    p50_us: percentile(samples, 50),
    p99_us: percentile(samples, 99),
    mean_us: meanUs,
    decisions_per_s: 1e6 / meanUs,
    samples: samples.length,
    batch,
  };
}

/** Writes <dir>/<name>.json and <dir>/<name>.md (the contract of bench/report.js). */
export function writeResults(dir, name, json, markdown) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(path.join(dir, `${name}.md`), markdown.endsWith('\n') ? markdown : `${markdown}\n`);
}

/** A Markdown table from a header row and rows of cells. */
export function table(header, rows) {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

/** 1234567 -> "1 234 567" */
export function thousands(value) {
  return Math.round(value).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

export function flagValue(argv, name, fallback) {
  const at = argv.indexOf(name);
  if (at >= 0 && at + 1 < argv.length) return argv[at + 1];
  const inline = argv.find((a) => a.startsWith(`${name}=`));
  return inline ? inline.slice(name.length + 1) : fallback;
}
