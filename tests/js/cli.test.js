// The toolgate CLI: check and eval exactly as the spec's last section says.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { evalLines, policyFile, repoRoot, runCli, T0 } from './cli-helpers.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

test('--version prints the package version; --help lists the commands', async () => {
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), `toolgate ${pkg.version}`);
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  for (const word of ['check', 'eval', '--policy']) assert.match(help.stdout, new RegExp(word));
});

test('check --help and eval -h print the help instead of reading a file called --help', async () => {
  for (const args of [['check', '--help'], ['eval', '-h']]) {
    const result = await runCli(args);
    assert.equal(result.code, 0, args.join(' '));
    assert.match(result.stdout, /toolgate check POLICY\.json/);
  }
});

test('an unknown command fails with the help on stderr', async () => {
  const result = await runCli(['frobnicate']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /unknown command "frobnicate"/);
});

test('check: a valid policy exits 0 and prints nothing', async () => {
  const file = policyFile({ version: '1', default: 'deny', tools: { run: {} } });
  const result = await runCli(['check', file]);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, '');
});

test('check: a warning alone still exits 0, printed as FILE:LINE:COLUMN: warning: MESSAGE', async () => {
  const file = policyFile('{ "version": "1", "tools": {} }');
  const result = await runCli(['check', file]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:1: warning: .*default.* \\(\\)\n$`));
});

test('check: every problem, each as FILE:LINE:COLUMN: error: MESSAGE (POINTER), exit 1', async () => {
  const text = [
    '{',
    '  "version": "1",',
    '  "default": "deny",',
    '  "tools": {',
    '    "refund": {',
    '      "deny_iff": [],',
    '      "limits": [{ "window": "fortnight", "max": 0 }],',
    '      "require": [{ "path": "args.amount", "op": "greater", "value": 5 }]',
    '    }',
    '  }',
    '}',
  ].join('\n');
  const file = policyFile(text);
  const result = await runCli(['check', file]);
  assert.equal(result.code, 1);
  const lines = result.stdout.trim().split('\n');
  assert.equal(lines.length, 4);
  for (const line of lines) assert.ok(line.startsWith(`${file}:`), line);
  const located = lines.map((line) => {
    const [, position, severity, message, pointer] = line.slice(file.length).match(/^:(\d+:\d+): (error|warning): (.*) \((\/[^)]*)\)$/);
    return { position, severity, message, pointer };
  });
  assert.deepEqual(
    located.map(({ position, severity, pointer }) => [position, severity, pointer]),
    [
      ['6:7', 'error', '/tools/refund/deny_iff'],
      ['7:30', 'error', '/tools/refund/limits/0/window'],
      ['7:50', 'error', '/tools/refund/limits/0/max'],
      ['8:50', 'error', '/tools/refund/require/0/op'],
    ],
  );
  assert.equal(located[0].message, 'unknown field "deny_iff"; did you mean "deny_if"?');
  assert.match(located[1].message, /"window" must be .* \(got "fortnight"\)/);
  assert.equal(located[2].message, '"max" must be a positive whole number (got 0)');
  assert.match(located[3].message, /^unknown operator "greater"; use one of "eq"/);
});

test('check: JSON syntax errors carry line and column', async () => {
  const file = policyFile('{\n  "version": "1",\n  "default": "deny",\n}\n');
  const result = await runCli(['check', file]);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /:4:1: error: syntax error/);
});

test('check: a missing file or a directory is FILE: error: cannot read FILE: why, exit 1; the other files are still checked', async () => {
  const result = await runCli(['check', '/nonexistent/policy.json']);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, '/nonexistent/policy.json: error: cannot read /nonexistent/policy.json: no such file\n');
  assert.doesNotMatch(result.stdout, /:0:0:|\(\)/, 'no made-up position or empty pointer');

  const valid = policyFile({ version: '1', default: 'deny', tools: { run: {} } });
  const invalid = policyFile('{"version":"1","default":"nope"}');
  const several = await runCli(['check', repoRoot, valid, invalid]);
  assert.equal(several.code, 1);
  const lines = several.stdout.trim().split('\n');
  assert.equal(lines[0], `${repoRoot}: error: cannot read ${repoRoot}: it is a directory`);
  assert.equal(lines.length, 2, several.stdout);
  assert.match(lines[1], new RegExp(`^${invalid.replace(/[.]/g, '\\.')}:1:\\d+: error: `));

  const json = JSON.parse((await runCli(['check', '/nonexistent/policy.json', '--json'])).stdout);
  assert.deepEqual(json, { file: '/nonexistent/policy.json', ok: false, diagnostics: [], error: 'cannot read /nonexistent/policy.json: no such file' });
});

test('check --json gives machine-readable diagnostics', async () => {
  const file = policyFile('{"version":"1","default":"nope"}');
  const result = await runCli(['check', '--json', file]);
  assert.equal(result.code, 1);
  const report = JSON.parse(result.stdout);
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.diagnostics.map(({ code, pointer, line, column }) => ({ code, pointer, line, column })),
    [{ code: 'invalid_value', pointer: '/default', line: 1, column: 26 }],
  );
});

test('eval: one decision per input line, in order; blank lines are skipped', async () => {
  const policy = { version: '1', default: 'deny', tools: { read: {} } };
  const out = await evalLines(policy, [{ tool: 'read', now: T0 }, '', '   ', { tool: 'write', now: T0 }]);
  assert.deepEqual(out, [
    { decision: 'allow', code: 'allowed', rule: '/tools/read', message: 'Allowed.' },
    {
      decision: 'deny',
      code: 'default_deny',
      rule: '/default',
      message: 'Tool "write" is not allowed: the policy has no entry for it and denies by default.',
    },
  ]);
});

test('eval: malformed lines get invalid_call and the run goes on', async () => {
  const policy = { version: '1', default: 'allow' };
  const lines = [
    'not json',
    '[1,2]',
    '{"arguments":{}}',
    '{"tool":"x","arguments":[1]}',
    '{"tool":"x","arguments":{"a":1,"a":2}}',
    '{"tool":"x","argumnets":{}}',
    '{"tool":7}',
    '{"tool":"x","now":"yesterday"}',
    '{"tool":"x","grant":{"role":"no-id"}}',
    '{"tool":"x"}',
  ];
  const out = await evalLines(policy, lines);
  assert.equal(out.length, lines.length);
  for (const decision of out.slice(0, -1)) {
    assert.equal(decision.decision, 'deny');
    assert.equal(decision.code, 'invalid_call');
  }
  assert.equal(out.at(-1).decision, 'allow');
  assert.match(out[4].message, /\/arguments\/a/);
});

test('eval: an invalid policy exits 1 with its diagnostics on stderr', async () => {
  const file = policyFile('{"version":"1","default":"deny","tools":{"a":{"actoin":"deny"}}}');
  const result = await runCli(['eval', '--policy', file], { input: '{"tool":"a"}\n' });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /unknown field "actoin"; did you mean "action"\?/);
  assert.equal(result.stdout, '');
});

test('eval: expectations add "pass" and a failed one exits 1', async () => {
  const file = policyFile({ version: '1', default: 'deny', tools: { a: {} } });
  const input = `${JSON.stringify({ tool: 'a', expect: 'allow' })}\n${JSON.stringify({ tool: 'b', expect: { decision: 'allow' } })}\n`;
  const result = await runCli(['eval', '--policy', file], { input });
  assert.equal(result.code, 1);
  const [first, second] = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(first.pass, true);
  assert.equal(second.pass, false);
  assert.match(result.stderr, /1 expectation/);
});

test('eval: approval lines are answered with {"approved": id}; malformed ones with invalid_call', async () => {
  const policy = { version: '1', default: 'deny', tools: { deploy: { action: 'require_approval' } } };
  const call = { tool: 'deploy', arguments: { env: 'prod' }, grant: 'ops', now: T0 };
  const [pending] = await evalLines(policy, [call]);
  const out = await evalLines(policy, [
    call,
    { approve: pending.approval_id, now: T0 + 1000 },
    { ...call, now: T0 + 2000 },
    { approve: 'no-call-has-this-id' },
    { approve: pending.approval_id, extra: 1 },
    { approve: 42 },
  ]);
  assert.equal(out[0].decision, 'approval_required');
  assert.deepEqual(out[1], { approved: pending.approval_id });
  assert.equal(out[2].decision, 'allow');
  assert.deepEqual(out[3], { approved: 'no-call-has-this-id' });
  assert.equal(out[4].code, 'invalid_call');
  assert.equal(out[5].code, 'invalid_call');
});

test('eval: 10 000-deep and 10 MB arguments get a decision, never a crash', async () => {
  const policy = { version: '1', default: 'allow' };
  const deep = `{"tool":"x","arguments":{"a":${'['.repeat(10000)}${']'.repeat(10000)}}}`;
  const huge = JSON.stringify({ tool: 'x', arguments: { blob: 'x'.repeat(10 * 1024 * 1024) } });
  const out = await evalLines(policy, [deep, huge, { tool: 'x' }]);
  assert.equal(out[0].code, 'invalid_call');
  assert.match(out[0].message, /nested/);
  assert.equal(out[1].decision, 'allow');
  assert.equal(out[2].decision, 'allow');
});

test('npx toolgate works from the repository root', async () => {
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync('npx', ['--no-install', 'toolgate', '--version'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), `toolgate ${pkg.version}`);
});
