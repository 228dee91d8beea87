// toolgate replay: recorded calls through a new policy, and what changes.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

import { loadToolgate } from '../../wasm/index.js';
import { compilePolicy, formatDiagnostics } from '../../worker/config.js';
import { commandLine, optionParser } from './args.js';
import { ReplayInputError, formatSummary, recordReader, replay } from '../replay.js';

export const USAGE = `Usage:
  toolgate replay --policy NEW.json [--baseline OLD.json] [--grants GRANTS.json] CALLS.jsonl

Replays recorded calls through NEW.json, in recorded time, each with its grant
and time (counters and approvals in memory, so rate limits count as they did).
CALLS.jsonl (or - for standard input) holds audit events written by
\`toolgate serve --audit-arguments\` or calls in \`toolgate eval\`'s format.

The baseline is OLD.json replayed the same way, or else the decisions the audit
events recorded. Each call whose decision differs is printed on standard output
as one JSON line: {"line", "change", "call": {tool, arguments, grant, now},
"baseline": {decision, code, rule}, "policy": {decision, code, rule}}. A summary
(how many changed, by change, by rule, by tool) goes to standard error.

Options:
  --policy FILE     the policy to try
  --baseline FILE   the policy to compare with (default: the recorded decisions)
  --grants FILE     a grants file: attributes of grants for audit events that
                    do not carry them (grant_attributes)
  --json            the summary as one JSON object on standard error

Exit status: 0 when no decision changed, 1 when any did, 2 when the input or a
policy cannot be read.
`;

const OPTIONS = {
  policy: { type: 'string' },
  baseline: { type: 'string' },
  grants: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

async function readText(path, what) {
  try {
    return path === '-' ? await readStdin() : await readFile(resolve(path), 'utf8');
  } catch (error) {
    throw new ReplayInputError(`cannot read the ${what} ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Calls onLine(text, number) for each line of a byte stream, as
 * `text.split('\n')` of the whole stream decoded as UTF-8 would give them
 * (same numbers, same replacement of invalid bytes), without holding the
 * whole text: an audit log can be larger than the longest string V8 makes
 * (about 512 MiB), and one string of it plus its lines doubles the memory.
 */
export async function forEachLine(chunks, onLine) {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let number = 0;
  for await (const chunk of chunks) {
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    const lines = text.split('\n');
    rest = lines.pop();
    for (let i = 0; i < lines.length; i++) onLine(lines[i], ++number);
  }
  onLine(rest + decoder.end(), ++number);
}

// The recorded calls of a file (or standard input), read as a stream.
async function readCalls(path, options) {
  const reader = recordReader(options);
  const add = (text, line) => reader.add(text, line);
  if (path === '-') {
    await forEachLine(process.stdin, add);
    return reader.finish();
  }
  try {
    await forEachLine(createReadStream(resolve(path), { highWaterMark: 1 << 20 }), add);
  } catch (error) {
    // A file system error (ENOENT, EISDIR, EACCES...) is the input's; a bad
    // line is already a ReplayInputError, and anything else (the engine) stays what it is.
    if (typeof error?.code !== 'string' || typeof error.syscall !== 'string') throw error;
    throw new ReplayInputError(`cannot read the recorded calls ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  }
  return reader.finish();
}

// Each changed call as a JSON line on standard output, about 1 MiB at a time
// (a single string of millions of changed calls could pass V8's longest).
async function writeChanged(changed) {
  let out = '';
  for (let i = 0; i < changed.length; i++) {
    out += `${JSON.stringify(changed[i])}\n`;
    if (out.length < 1 << 20 && i < changed.length - 1) continue;
    if (!process.stdout.write(out)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    out = '';
  }
}

// Compiled once (worker/config.js): the result carries the diagnostics.
function compile(toolgate, text, path) {
  const { policy, diagnostics } = compilePolicy(toolgate, text, path);
  if (!policy) throw new ReplayInputError(formatDiagnostics(diagnostics).join('\n'));
  return policy;
}

async function grantAttributesFrom(path) {
  if (!path) return undefined;
  let document;
  try {
    document = JSON.parse(await readText(path, 'grants file'));
  } catch (error) {
    if (error instanceof ReplayInputError) throw error;
    throw new ReplayInputError(`${path} is not JSON: ${error.message}`);
  }
  if (!Array.isArray(document?.grants)) throw new ReplayInputError(`${path}: expected {"grants": [...]}`);
  return new Map(document.grants.filter((g) => typeof g?.id === 'string').map((g) => [g.id, g.attributes ?? {}]));
}

export async function run(args, { fail }) {
  const parsed = commandLine(args, { command: 'replay', usage: USAGE, parse: optionParser(OPTIONS, { positionals: true }), fail });
  if (!parsed) return undefined;
  const { values, positionals } = parsed;
  if (!values.policy || positionals.length !== 1) {
    process.stderr.write(USAGE);
    return fail('replay needs --policy NEW.json and one file of recorded calls', 2);
  }
  try {
    const toolgate = await loadToolgate();
    const policy = compile(toolgate, await readText(values.policy, 'policy'), values.policy);
    const baseline = values.baseline ? compile(toolgate, await readText(values.baseline, 'baseline policy'), values.baseline) : undefined;
    const grantAttributes = await grantAttributesFrom(values.grants);
    const { calls, skipped } = await readCalls(positionals[0], { parseTime: (value) => toolgate.parseTime(value), grantAttributes });
    const result = await replay({ policy, baseline, calls, skipped });
    await writeChanged(result.changed);
    process.stderr.write(values.json
      ? `${JSON.stringify({ replayed: result.replayed, skipped: result.skipped, changed: result.changed.length, by_change: result.byChange, by_rule: result.byRule, by_tool: result.byTool })}\n`
      : formatSummary(result, { policy: values.policy, baseline: values.baseline }));
    process.exitCode = result.changed.length > 0 ? 1 : 0;
    return undefined;
  } catch (error) {
    if (error instanceof ReplayInputError) return fail(error.message, 2);
    throw error;
  }
}
