#!/usr/bin/env node
// Native vs WebAssembly, case by case: generated policies and call sequences
// (tests/differential/generate.js) go through the WebAssembly build in this
// process and through the native core (build/native/tests/differential/
// toolgate_differential) in a child; every output line must be equal, byte
// for byte.
//
//   node tests/differential/run.js [--count N] [--seed S] [--from I] [--native PATH] [--quiet]
//   node tests/differential/run.js --case I [--seed S]     one case, printed with both outputs
//
// Compared per case: the policy's diagnostics (P) and hash (H); per call the
// raw evaluate() text, a decision or the whole pending call (E); the decision
// with in-memory counter and approval stores, through Policy.decide() on the
// WebAssembly side and the same host loop and store rules in the native
// driver (D); where the decision's rule stands in the policy text (L); and
// for some pending calls, finish() on generated counter states (F); plus
// approvals granted (A) and tools/list hiding (V).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import createToolgateCore from '../../wasm/dist/toolgate_core.mjs';
import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../../wasm/index.js';
import { finishInput, generateCase } from './generate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// Step one of a call through the binary path (an object) and through the
// text path (the same object as JSON text): null when equal, else a line
// naming both.
function binaryAgainstText(handle, policy, step) {
  let parsed;
  try {
    parsed = JSON.parse(step.call);
  } catch {
    return null;
  }
  const fromText = JSON.parse(handle.evaluate(JSON.stringify(parsed), step.now));
  const fromBinary = policy.evaluate(parsed, { now: step.now });
  const a = sortedJson(fromText);
  const b = sortedJson(fromBinary);
  return a === b ? null : `B binary path ${b} differs from text path ${a}`;
}

// JSON text with every object's keys sorted (the two paths order them apart).
const sortedJson = (value) => JSON.stringify(value, (key, v) =>
  v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v);

function parseArgs(argv) {
  const options = { count: 5000, seed: '1', from: 0, native: path.join(root, 'build/native/tests/differential/toolgate_differential'), quiet: false, case: undefined, chunk: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => argv[++i];
    if (arg === '--count') options.count = Number(next());
    else if (arg === '--seed') options.seed = next();
    else if (arg === '--from') options.from = Number(next());
    else if (arg === '--native') options.native = next();
    else if (arg === '--case') options.case = Number(next());
    else if (arg === '--chunk') options.chunk = Number(next());
    else if (arg === '--quiet') options.quiet = true;
    else if (/^\d+$/.test(arg)) options.count = Number(arg);
    else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

export async function loadCores() {
  const wasmBinary = await readFile(path.join(root, 'wasm/dist/toolgate_core.wasm'));
  const core = await createToolgateCore({ wasmBinary, print: () => {}, printErr: () => {}, locateFile: (p) => p });
  const toolgate = await loadToolgate();
  return { core, toolgate };
}

/**
 * The WebAssembly side of one case: its output lines, and the case as the
 * native driver reads it (finish probes filled in from the pending calls).
 */
export async function runWasm({ core, toolgate }, generated) {
  const lines = [];
  const steps = [];
  const text = generated.policy;
  const handle = new core.CompiledPolicy(text);
  let policy = null;
  try {
    lines.push(`P ${handle.diagnostics()}`, `H ${handle.hash()}`);
    if (handle.ok()) policy = toolgate.compile(text);
    const counters = new MemoryCounterStore();
    const approvals = new MemoryApprovalStore();
    let lastApproval = null;
    for (const step of generated.steps) {
      if (step.call !== undefined) {
        steps.push({ call: step.call, now: step.now });
        const evaluated = handle.evaluate(step.call, step.now);
        lines.push(`E ${evaluated}`);
        if (!policy) continue;
        // The JS API's hot path (the binary call read in place, no DOM) must
        // evaluate as the JSON text path does: checked here, inside the
        // WebAssembly build, on every generated call JSON.parse can read. A
        // difference becomes a line the native side never writes.
        const binary = binaryAgainstText(handle, policy, step);
        if (binary) lines.push(binary);
        const decision = await policy.decide(step.call, { counters, approvals, now: step.now });
        lines.push(`D ${JSON.stringify(decision)}`);
        if (decision.approval_id !== undefined) lastApproval = decision.approval_id;
        lines.push(`L ${core.locate(text, decision.rule)}`);
        if (step.finish !== undefined && evaluated.includes('"pending":true')) {
          const input = finishInput(evaluated, step.finish);
          steps.push({ finish: input });
          lines.push(`F ${core.finish(input)}`);
        }
      } else if (step.approve) {
        steps.push({ approve: true, now: step.now });
        if (lastApproval !== null) await approvals.approve(lastApproval, step.now);
        lines.push(`A ${lastApproval ?? '-'}`);
      } else if (step.hidden !== undefined) {
        steps.push({ hidden: step.hidden });
        lines.push(`V ${handle.hidden(step.hidden) ? 1 : 0}`);
      }
    }
  } finally {
    handle.delete();
    policy?.dispose();
  }
  lines.push('.');
  return { lines, input: JSON.stringify({ policy: text, steps }) };
}

/** Runs the native driver on cases (JSON Lines); resolves to its output lines. */
const children = new Set();
export function runNative(nativePath, inputLines) {
  return new Promise((resolve, reject) => {
    const child = spawn(nativePath, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    const chunks = [];
    child.stdout.on('data', (chunk) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${nativePath} exited with ${code}`));
      resolve(utf8Lines(Buffer.concat(chunks)));
    });
    child.stdin.on('error', reject);
    child.stdin.end(`${inputLines.join('\n')}\n`);
  });
}

// The native output's lines. The WebAssembly glue decodes the core's UTF-8
// leniently (a stray byte becomes U+FFFD), which would hide a message that is
// not valid UTF-8; the native bytes are checked strictly, and a line that
// fails is marked so that it differs.
const strict = new TextDecoder('utf-8', { fatal: true });
const lenient = new TextDecoder('utf-8');
function utf8Lines(bytes) {
  let lines;
  try {
    lines = strict.decode(bytes).split('\n');
  } catch {
    lines = [];
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== 0x0a) continue;
      const line = bytes.subarray(start, i);
      try {
        lines.push(strict.decode(line));
      } catch {
        lines.push(`<not valid UTF-8> ${lenient.decode(line)}`);
      }
      start = i + 1;
    }
  }
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

// Splits the native output into cases at the "." lines.
function splitCases(lines) {
  const cases = [];
  let current = [];
  for (const line of lines) {
    current.push(line);
    if (line === '.') {
      cases.push(current);
      current = [];
    }
  }
  return cases;
}

function firstDifference(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(options.native)) {
    console.error(`differential: no native driver at ${options.native}; build it first (scripts/build.sh)`);
    process.exit(2);
  }
  const cores = await loadCores();
  if (options.case !== undefined) {
    const generated = generateCase(options.seed, options.case);
    const wasm = await runWasm(cores, generated);
    const native = splitCases(await runNative(options.native, [wasm.input]))[0] ?? [];
    console.log(JSON.stringify(JSON.parse(wasm.input), null, 2));
    const at = firstDifference(wasm.lines, native);
    for (let i = 0; i < Math.max(wasm.lines.length, native.length); i++) {
      const same = wasm.lines[i] === native[i];
      console.log(`${same ? '  ' : '≠ '}wasm   ${wasm.lines[i]}`);
      if (!same) console.log(`≠ native ${native[i]}`);
    }
    console.log(at < 0 ? 'same' : `differs at line ${at}`);
    process.exit(at < 0 ? 0 : 1);
  }

  const started = performance.now();
  let compared = 0;
  let calls = 0;
  let compiled = 0;
  let lines = 0;
  const decisions = new Map();
  const kinds = {};
  let approvedCalls = 0;
  let pendingNative = null; // the previous chunk's native run, overlapping this chunk's WebAssembly work
  const check = async (job) => {
    const native = splitCases(await job.native);
    for (let k = 0; k < job.wasm.length; k++) {
      const wasmLines = job.wasm[k].lines;
      const nativeLines = native[k] ?? [];
      const at = firstDifference(wasmLines, nativeLines);
      if (at >= 0) {
        const index = job.first + k;
        const dir = path.join(root, 'build/differential');
        await mkdir(dir, { recursive: true });
        const file = path.join(dir, `divergence-seed${options.seed}-case${index}.json`);
        await writeFile(file, `${JSON.stringify({ seed: options.seed, case: index, input: JSON.parse(job.wasm[k].input), line: at, wasm: wasmLines, native: nativeLines }, null, 2)}\n`);
        console.error(`differential: case ${index} (seed ${options.seed}) differs at output line ${at}:`);
        console.error(`  wasm:   ${wasmLines[at]}`);
        console.error(`  native: ${nativeLines[at]}`);
        console.error(`  written to ${path.relative(root, file)}; replay: node tests/differential/run.js --seed ${options.seed} --case ${index}`);
        for (const child of children) child.kill();
        process.exit(1);
      }
      compared += 1;
      lines += wasmLines.length;
      for (const line of wasmLines) {
        kinds[line[0]] = (kinds[line[0]] ?? 0) + 1;
        if (line.startsWith('D ') && line.includes('"message":"Allowed with a human\'s approval."')) approvedCalls += 1;
        if (line.startsWith('D ')) {
          calls += 1;
          const code = JSON.parse(line.slice(2)).code;
          decisions.set(code, (decisions.get(code) ?? 0) + 1);
        } else if (line.startsWith('H ') && line.length > 2) {
          compiled += 1;
        }
      }
    }
  };
  for (let first = options.from; first < options.from + options.count; first += options.chunk) {
    const last = Math.min(first + options.chunk, options.from + options.count);
    const wasm = [];
    for (let i = first; i < last; i++) wasm.push(await runWasm(cores, generateCase(options.seed, i)));
    const job = { first, wasm, native: runNative(options.native, wasm.map((w) => w.input)) };
    job.native.catch(() => {}); // awaited in check(); a failure surfaces there
    if (pendingNative) await check(pendingNative);
    pendingNative = job;
    if (!options.quiet) process.stderr.write(`\rdifferential: ${last - options.from}/${options.count} cases`);
  }
  if (pendingNative) await check(pendingNative);
  const seconds = (performance.now() - started) / 1000;
  if (!options.quiet) process.stderr.write('\n');
  const codes = [...decisions.entries()].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', ');
  console.log(`differential: ${compared} cases (seed ${options.seed}, from ${options.from}), ${compiled} policies compiled, ${calls} decisions, ${lines} lines equal in ${seconds.toFixed(1)} s (${Math.round(compared / seconds)} cases/s, ${Math.round(calls / seconds)} decisions/s)`);
  console.log(`differential: decisions: ${codes}; ${approvedCalls} allowed with an approval`);
  console.log(`differential: lines: ${['P', 'H', 'E', 'D', 'L', 'F', 'A', 'V'].map((k) => `${k} ${kinds[k] ?? 0}`).join(', ')}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await main();
}
