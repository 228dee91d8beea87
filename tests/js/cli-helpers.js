// Runs the toolgate CLI as a user would (a child process), for the CLI suites.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repoRoot, 'bin', 'toolgate.js');

export function runCli(args, { input = '', cwd = repoRoot } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

const scratch = mkdtempSync(join(tmpdir(), 'toolgate-cli-'));
let files = 0;

// Writes a policy (object or raw text) to a temporary file and returns its path.
export function policyFile(policy, name = `policy-${++files}.json`) {
  const path = join(scratch, name);
  writeFileSync(path, typeof policy === 'string' ? policy : JSON.stringify(policy, null, 2));
  return path;
}

// Evaluates call lines (objects or raw strings) against a policy; returns the parsed output lines.
export async function evalLines(policy, lines) {
  const input = lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n';
  const result = await runCli(['eval', '--policy', policyFile(policy)], { input });
  if (result.code !== 0) throw new Error(`toolgate eval exited ${result.code}: ${result.stderr}`);
  return result.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

export const T0 = Date.UTC(2026, 0, 1); // 2026-01-01T00:00:00Z, a minute/hour/day boundary
