// The summary of every benchmark: reads bench/results/<name>.json and
// <name>.md (each benchmark writes both; the JSON may hold a top-level
// "budgets": [{name, target, measured, met}] array) and writes
// bench/results/summary.md and summary.json: a header (date, machine, versions,
// the command), one table of every budget, then each benchmark's Markdown in a
// fixed order. Also replaces the text between <!-- bench:summary:start --> and
// <!-- bench:summary:end --> in site/benchmarks.md when both markers are there.
//
//   node bench/report.js [--results DIR] [--site FILE|none] [--quick]
//                        [--since EPOCH_MS] [--failed a,b] [--command TEXT]
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const argv = process.argv.slice(2);
function flag(name, fallback) {
  const at = argv.indexOf(name);
  if (at >= 0 && at + 1 < argv.length) return argv[at + 1];
  const inline = argv.find((a) => a.startsWith(`${name}=`));
  return inline ? inline.slice(name.length + 1) : fallback;
}
const quick = argv.includes('--quick');
const resultsDir = path.resolve(flag('--results', path.join(root, 'bench/results')));
const siteFile = flag('--site', path.join(root, 'site/benchmarks.md'));
const since = Number(flag('--since', '0')) || 0;
const failed = flag('--failed', '').split(',').filter(Boolean);
const command = flag('--command', `npm run bench${quick ? ' -- --quick' : ''}`);

/** Sections in this order: a file matches the first entry one of whose keys its name equals or contains; others follow, by name. */
export const ORDER = [
  [['core-native'], 'Native core'],
  [['core-js'], 'WebAssembly core through the JS API (Node)'],
  [['core-matrix'], 'WebAssembly decision matrix (JS API)'],
  [['replay'], 'Replaying recorded calls (toolgate replay)'],
  [['cold-start'], 'Cold start, phase by phase (Node, workerd, Chromium)'],
  [['cedar'], 'Compared with Cedar'],
  [['redis-cluster', 'scale-redis'], 'Counters in Redis Cluster'],
  [['durable-objects', 'scale-do'], 'Counters in Durable Objects'],
  [['proxy-fairness'], 'MCP proxy: one grant waiting while another floods'],
  [['proxy'], 'MCP proxy'],
  [['playground'], 'Browser playground'],
  [['site'], 'Docs site'],
];
const IGNORED = new Set(['summary']);

const entryOf = (name) => ORDER.findIndex(([keys]) => keys.some((key) => name === key || name.includes(key)));
const rank = (name) => (entryOf(name) < 0 ? ORDER.length : entryOf(name));
const titleOf = (name) => (entryOf(name) < 0 ? name : ORDER[entryOf(name)][1]);

// Budgets as the contract has them; tolerates {group: {name: bool}} objects.
function budgetsOf(json) {
  const budgets = json?.budgets;
  if (Array.isArray(budgets)) {
    return budgets.filter((b) => b && typeof b === 'object').map((b) => ({
      name: String(b.name ?? '(unnamed)'), target: b.target ?? null, measured: b.measured ?? null, met: typeof b.met === 'boolean' ? b.met : null,
    }));
  }
  if (budgets && typeof budgets === 'object') {
    const out = [];
    for (const [group, value] of Object.entries(budgets)) {
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        for (const [name, met] of Object.entries(value)) out.push({ name: `${group}: ${name}`, target: null, measured: null, met: typeof met === 'boolean' ? met : null });
      } else {
        out.push({ name: group, target: null, measured: null, met: typeof value === 'boolean' ? value : null });
      }
    }
    return out;
  }
  return [];
}

function firstLine(file, args) {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20000 }).split('\n')[0].trim();
  } catch {
    return 'not found';
  }
}

function machine() {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (model) cpu = model[1].trim();
  } catch { /* not Linux */ }
  let system = `${os.type()} ${os.release()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (pretty) system = `${pretty[1]} (${os.type()} ${os.release()})`;
  } catch { /* not Linux */ }
  return {
    cpu,
    cores: os.cpus().length,
    memory_gib: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: system,
    node: process.versions.node,
    gxx: firstLine('g++', ['--version']),
    emcc: firstLine('emcc', ['--version']).replace(/ \(Emscripten gcc\/clang-like replacement[^)]*\)/, '').replace(/\s*\(\)\s*$/, ''),
    load_average: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

// A section's own headings go below the summary's "## <benchmark>": the
// shallowest becomes ###, the others keep their depth relative to it
// (code blocks untouched).
export function demoteHeadings(markdown, top = 3) {
  const lines = markdown.split('\n');
  let fence = false;
  const isHeading = [];
  let shallowest = 7;
  for (const line of lines) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    const m = !fence && /^(#{1,6})\s/.exec(line);
    isHeading.push(m ? m[1].length : 0);
    if (m) shallowest = Math.min(shallowest, m[1].length);
  }
  if (shallowest === 7 || shallowest >= top) return markdown;
  const shift = top - shallowest;
  return lines.map((line, i) => (isHeading[i] ? '#'.repeat(Math.min(6, isHeading[i] + shift)) + line.slice(isHeading[i]) : line)).join('\n');
}

const cell = (value) => (value === null || value === undefined || value === '' ? '–' : String(value).replace(/\|/g, '\\|').replace(/\n/g, ' '));
const metCell = (met) => (met === true ? 'met' : met === false ? '**not met**' : '–');

export function collect(dir) {
  const names = existsSync(dir)
    ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).filter((n) => !IGNORED.has(n))
    : [];
  names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return names.map((name) => {
    const jsonFile = path.join(dir, `${name}.json`);
    const mdFile = path.join(dir, `${name}.md`);
    let json = null;
    let error = null;
    try {
      json = JSON.parse(readFileSync(jsonFile, 'utf8'));
    } catch (e) {
      error = `cannot read ${name}.json: ${e.message}`;
    }
    const markdown = existsSync(mdFile) ? readFileSync(mdFile, 'utf8').trim() : null;
    const written = Math.max(statSync(jsonFile).mtimeMs, markdown === null ? 0 : statSync(mdFile).mtimeMs);
    return { name, title: titleOf(name), json, error, markdown, written_at: new Date(written).toISOString(), stale: since > 0 && written < since };
  });
}

export function render({ sections, info, generatedAt, failedNames, quickRun, commandText }) {
  const budgets = sections.flatMap((s) => budgetsOf(s.json).map((b) => ({ benchmark: s.name, ...b })));
  const lines = [];
  lines.push(`Generated ${generatedAt} by \`${commandText}\`${quickRun ? ' (**quick smoke run: figures are not comparable**)' : ''}.`);
  lines.push('');
  lines.push(`Machine: ${info.cpu}, ${info.cores} cores, ${info.memory_gib} GiB, ${info.os}; Node ${info.node}; ${info.gxx}; ${info.emcc}. `
    + `Load average at the end: ${info.load_average.join(' ')}.`);
  if (failedNames.length) lines.push('', `**Failed** (no fresh results): ${failedNames.map((n) => `\`${n}\``).join(', ')}.`);
  const stale = sections.filter((s) => s.stale);
  if (stale.length) lines.push('', `From an earlier run (older than this one): ${stale.map((s) => `\`${s.name}\` (${s.written_at})`).join(', ')}.`);
  lines.push('', '## Budgets', '');
  if (budgets.length) {
    lines.push('| benchmark | budget | target | measured | |', '|---|---|---|---|---|');
    for (const b of budgets) lines.push(`| ${cell(b.benchmark)} | ${cell(b.name)} | ${cell(b.target)} | ${cell(b.measured)} | ${metCell(b.met)} |`);
  } else {
    lines.push('No benchmark declared a budget.');
  }
  for (const s of sections) {
    lines.push('', `## ${s.title} (\`${s.name}\`)`, '');
    lines.push(`_\`bench/results/${s.name}.json\`${s.markdown === null ? '' : ` and \`.md\``}, written ${s.written_at}${s.stale ? ', **from an earlier run**' : ''}._`, '');
    if (s.error) lines.push(`**${s.error}**`, '');
    lines.push(s.markdown === null ? `_No \`${s.name}.md\`: see the JSON._` : demoteHeadings(s.markdown));
  }
  return { budgets, body: lines.join('\n') };
}

function replaceBetweenMarkers(file, body) {
  const start = '<!-- bench:summary:start -->';
  const end = '<!-- bench:summary:end -->';
  if (!existsSync(file)) return 'missing';
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return 'no markers';
  writeFileSync(file, `${text.slice(0, a + start.length)}\n\n${body}\n\n${text.slice(b)}`);
  return 'updated';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const sections = collect(resultsDir);
  const info = machine();
  const generatedAt = new Date().toISOString();
  const { budgets, body } = render({ sections, info, generatedAt, failedNames: failed, quickRun: quick, commandText: command });
  writeFileSync(path.join(resultsDir, 'summary.md'), `# Benchmarks\n\n${body}\n`);
  writeFileSync(path.join(resultsDir, 'summary.json'), `${JSON.stringify({
    generated_at: generatedAt,
    command,
    quick,
    machine: info,
    failed,
    budgets,
    sections: sections.map(({ name, title, written_at: writtenAt, stale, error, markdown }) => ({ name, title, written_at: writtenAt, stale, error, markdown })),
    results: Object.fromEntries(sections.map((s) => [s.name, s.json])),
  }, null, 2)}\n`);
  const site = siteFile === 'none' ? 'skipped' : replaceBetweenMarkers(siteFile, body);
  const unmet = budgets.filter((b) => b.met === false).length;
  console.log(`bench/report.js: ${sections.length} benchmarks, ${budgets.length} budgets (${unmet} not met) -> `
    + `${path.relative(process.cwd(), path.join(resultsDir, 'summary.md'))}, summary.json; site page: ${site}`);
}
