// Every policy shown to users passes `check`, and every example call file
// gets the decisions it expects: the examples and the README cannot rot.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { policyFile, repoRoot, runCli } from './cli-helpers.js';

const examples = join(repoRoot, 'examples');
const policies = readdirSync(examples).filter((f) => f.endsWith('.json'));

test('there are examples', () => assert.ok(policies.length >= 5));

for (const file of policies) {
  test(`examples/${file} passes check with no diagnostics`, async () => {
    const result = await runCli(['check', join(examples, file)]);
    assert.equal(result.code, 0, result.stdout);
    assert.equal(result.stdout, '');
  });
}

for (const file of readdirSync(examples).filter((f) => f.endsWith('.calls.jsonl'))) {
  test(`examples/${file}: every call gets the decision it expects`, async () => {
    const policy = join(examples, file.replace('.calls.jsonl', '.json'));
    const input = readFileSync(join(examples, file), 'utf8');
    const result = await runCli(['eval', '--policy', policy], { input });
    const out = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const lines = input.trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(out.length, lines.length);
    lines.forEach((line, i) => {
      if (line.expect !== undefined) assert.equal(out[i].pass, true, `line ${i + 1}: ${JSON.stringify(out[i])}`);
    });
    assert.equal(result.code, 0, result.stderr);
  });
}

test('every policy in the README passes check', async () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) => b.includes('"version"'));
  assert.ok(blocks.length >= 1);
  for (const block of blocks) {
    const result = await runCli(['check', policyFile(block)]);
    assert.equal(result.code, 0, `${block}\n${result.stdout}`);
  }
});
