// lib/scan.js: classification of the real tools/list captures in ../shared/data/tools-list/,
// the starter policies they give (checked and evaluated by the core), the accepted input
// shapes, ScanError, each rule and signal on its own, hostile names, formatScan, and
// scan.d.ts / lib/README.md against the module.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as scan from '../../lib/scan.js';
import {
  CATEGORIES,
  classifyTool,
  formatScan,
  ScanError,
  scanTools,
  splitWords,
  starterPolicy,
  WORDS,
} from '../../lib/scan.js';
import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';

const toolgate = await loadToolgate();

// tests/js → tests → main → /work, so this is /work/shared/data/tools-list/.
const capturesDir = new URL('../../../shared/data/tools-list/', import.meta.url);
const libDir = new URL('../../lib/', import.meta.url);

function capture(file) {
  return JSON.parse(readFileSync(new URL(file, capturesDir), 'utf8'));
}

const byName = (result) => Object.fromEntries(result.tools.map((t) => [t.name, t]));
const ids = (classification) => classification.signals.map((s) => s.id);
const categories = (result) => Object.fromEntries(result.tools.map((t) => [t.name, t.category]));

// What every capture must classify as: the whole table, so any change of rule shows here.
const EXPECTED = {
  'convex.json': {
    status: 'read', data: 'read', tables: 'read', functionSpec: 'read', run: 'execute',
    envList: 'read', envGet: 'read', envSet: 'write', envRemove: 'destructive',
    runOneoffQuery: 'execute', logs: 'read', insights: 'read',
  },
  'filesystem.json': {
    read_file: 'read', read_text_file: 'read', read_media_file: 'read', read_multiple_files: 'read',
    // The server annotates these destructiveHint: true (they overwrite); annotations may raise.
    write_file: 'destructive', edit_file: 'destructive', move_file: 'destructive',
    create_directory: 'write',
    list_directory: 'read', list_directory_with_sizes: 'read', directory_tree: 'read',
    search_files: 'read', get_file_info: 'read', list_allowed_directories: 'read',
  },
  'memory.json': {
    create_entities: 'write', create_relations: 'write', add_observations: 'write',
    delete_entities: 'destructive', delete_observations: 'destructive', delete_relations: 'destructive',
    read_graph: 'read', search_nodes: 'read', open_nodes: 'read',
  },
  'everything.json': {
    echo: 'read', 'get-annotated-message': 'read', 'get-env': 'read', 'get-resource-links': 'read',
    'get-resource-reference': 'read', 'get-structured-content': 'read', 'get-sum': 'read',
    'get-tiny-image': 'read', 'gzip-file-as-resource': 'write', 'toggle-simulated-logging': 'write',
    'toggle-subscriber-updates': 'write', 'trigger-long-running-operation': 'execute',
    'simulate-research-query': 'write',
  },
  'cargo-run.json': { run: 'execute' },
};
const COUNTS = { 'convex.json': 12, 'filesystem.json': 14, 'memory.json': 9, 'everything.json': 13, 'cargo-run.json': 1 };

describe('the real captures', () => {
  test('the captures directory resolves to ../shared/data/tools-list/', () => {
    assert.match(fileURLToPath(capturesDir), /[/\\]shared[/\\]data[/\\]tools-list[/\\]$/);
    assert.deepEqual(Object.keys(COUNTS).map((f) => capture(f).tools.length), Object.values(COUNTS));
  });

  for (const [file, expected] of Object.entries(EXPECTED)) {
    test(`${file}: every tool's category`, () => {
      const result = scanTools(capture(file));
      assert.equal(result.tools.length, COUNTS[file]);
      assert.deepEqual(categories(result), expected);
      const summary = { read: 0, write: 0, execute: 0, destructive: 0 };
      for (const c of Object.values(expected)) summary[c] += 1;
      assert.deepEqual(result.summary, summary);
      for (const t of result.tools) {
        assert.ok(t.signals.length > 0, `${t.name} is explained by at least one signal`);
        assert.ok(t.signals.some((s) => ['annotation', 'verb', 'unknown_verb'].includes(s.id)), `${t.name}: what decided`);
        for (const s of t.signals) {
          assert.equal(typeof s.id, 'string');
          assert.ok(typeof s.detail === 'string' && s.detail.length > 0);
        }
        assert.equal(new Set(ids(t)).size, t.signals.length, `${t.name}: each signal once`);
      }
    });
  }

  test('convex: reads, env credentials, envRemove, run vs runOneoffQuery', () => {
    const t = byName(scanTools(capture('convex.json')));
    for (const name of ['tables', 'functionSpec', 'logs', 'insights', 'data']) {
      assert.equal(t[name].risk, 'low', name);
    }
    // status takes projectDir, a directory.
    assert.ok(ids(t.status).includes('accepts_paths'));
    assert.equal(t.status.risk, 'medium');
    // logs has tokensLimit (LLM tokens), which is not a credential.
    assert.ok(!ids(t.logs).includes('handles_credentials'));
    // data and insights have no verb in their name: their description's first word decides.
    assert.match(t.data.signals.find((s) => s.id === 'verb').detail, /description starts with "Read"/);
    assert.match(t.insights.signals.find((s) => s.id === 'verb').detail, /"Fetch"/);
    for (const name of ['envList', 'envGet', 'envSet', 'envRemove']) {
      assert.ok(ids(t[name]).includes('handles_credentials'), name);
    }
    assert.equal(t.envList.risk, 'medium');
    assert.equal(t.envGet.risk, 'medium');
    assert.equal(t.envSet.risk, 'high');
    assert.match(t.envSet.signals.find((s) => s.id === 'verb').detail, /"set"/);
    assert.equal(t.envRemove.risk, 'critical');
    assert.match(t.envRemove.signals.find((s) => s.id === 'verb').detail, /"remove" → destructive/);
    // run: a deployed function with JSON args (a string) is not arbitrary code.
    assert.equal(t.run.risk, 'high');
    assert.ok(!ids(t.run).includes('arbitrary_code'));
    // runOneoffQuery: JavaScript source in `query`.
    assert.equal(t.runOneoffQuery.risk, 'critical');
    assert.match(t.runOneoffQuery.signals.find((s) => s.id === 'arbitrary_code').detail, /"query"/);
  });

  test('filesystem: reads take paths, writes are annotated destructive, create_directory writes', () => {
    const t = byName(scanTools(capture('filesystem.json')));
    for (const name of ['read_file', 'read_text_file', 'read_multiple_files', 'list_directory', 'search_files', 'get_file_info', 'directory_tree']) {
      assert.ok(ids(t[name]).includes('accepts_paths'), name);
      assert.ok(ids(t[name]).includes('annotation'), name);
      assert.equal(t[name].risk, 'medium', name);
    }
    assert.match(t.read_multiple_files.signals.find((s) => s.id === 'accepts_paths').detail, /"paths"/);
    assert.equal(t.list_allowed_directories.risk, 'low');
    for (const name of ['write_file', 'edit_file', 'move_file']) {
      assert.equal(t[name].risk, 'critical');
      assert.equal(t[name].signals.find((s) => s.id === 'annotation').detail, 'destructiveHint: true → destructive');
      assert.match(t[name].signals.find((s) => s.id === 'verb').detail, /→ write/, 'the verb alone says write');
    }
    assert.match(t.move_file.signals.find((s) => s.id === 'accepts_paths').detail, /"source", "destination"/);
    assert.equal(t.create_directory.risk, 'high');
  });

  test('memory: deletes are destructive, reads low, creates medium', () => {
    const t = byName(scanTools(capture('memory.json')));
    for (const name of ['delete_entities', 'delete_observations', 'delete_relations']) assert.equal(t[name].risk, 'critical');
    for (const name of ['read_graph', 'search_nodes', 'open_nodes']) assert.equal(t[name].risk, 'low');
    for (const name of ['create_entities', 'create_relations', 'add_observations']) assert.equal(t[name].risk, 'medium');
    // search_nodes takes `query`, but only execute tools get arbitrary_code.
    assert.ok(!ids(t.search_nodes).includes('arbitrary_code'));
  });

  test('everything: annotations decide echo/gzip, untrusted readOnlyHint does not lower trigger', () => {
    const t = byName(scanTools(capture('everything.json')));
    assert.deepEqual(ids(t.echo), ['annotation']);
    assert.deepEqual(ids(t['get-sum']), ['annotation', 'verb']);
    assert.equal(t['get-sum'].risk, 'low');
    assert.ok(ids(t['get-env']).includes('handles_credentials'));
    assert.equal(t['get-env'].risk, 'medium');
    assert.deepEqual(ids(t['gzip-file-as-resource']), ['annotation', 'open_world']);
    assert.deepEqual(ids(t['toggle-simulated-logging']), ['annotation', 'verb']);
    const trigger = t['trigger-long-running-operation'];
    assert.deepEqual(ids(trigger), ['verb', 'annotation_overridden']);
    assert.equal(trigger.risk, 'high');
    assert.match(trigger.signals[1].detail, /readOnlyHint: true says read/);
    // "query" in its name is not execute: it takes no code-like input.
    assert.deepEqual(ids(t['simulate-research-query']), ['annotation']);
  });

  test('cargo run: execute, critical (args is a command line), accepts paths', () => {
    const [run] = scanTools(capture('cargo-run.json')).tools;
    assert.equal(run.category, 'execute');
    assert.equal(run.risk, 'critical');
    assert.deepEqual(ids(run), ['verb', 'arbitrary_code', 'accepts_paths']);
  });
});

describe('starter policies', () => {
  for (const file of Object.keys(EXPECTED)) {
    test(`${file}: passes the core's check with no diagnostics, and follows the rule`, () => {
      const result = scanTools(capture(file));
      const text = JSON.stringify(result.policy, null, 2);
      assert.deepEqual(toolgate.check(text), { ok: true, diagnostics: [] });
      const { policy } = result;
      assert.deepEqual(Object.keys(policy), ['version', 'default', 'description', 'hide', 'tools']);
      assert.equal(policy.version, '1');
      assert.equal(policy.default, 'deny');
      assert.match(policy.description, /generated by toolgate scan/);
      const expected = { hide: [], tools: {} };
      for (const t of result.tools) {
        if (t.category === 'destructive') {
          expected.hide.push(t.name);
          continue;
        }
        const entry = {};
        // Credentials are never handed out unattended: a human approves each call.
        if (ids(t).includes('handles_credentials')) entry.action = 'require_approval';
        if (t.category !== 'read') entry.rate_limit = t.category === 'write' ? '30/minute' : '10/minute';
        expected.tools[t.name] = entry;
      }
      assert.deepEqual(policy.hide, expected.hide);
      assert.deepEqual(policy.tools, expected.tools);
      assert.deepEqual(starterPolicy(result.tools), policy);
    });
  }

  test('the convex starter policy decides as intended in the core', async () => {
    const policy = toolgate.compile(scanTools(capture('convex.json')).policy);
    const counters = new MemoryCounterStore();
    const now = Date.UTC(2026, 0, 1);
    const decide = (tool) => policy.decide({ tool, grant: 'alice', now }, { counters });
    assert.equal((await decide('status')).code, 'allowed');
    assert.equal((await decide('envRemove')).code, 'hidden');
    assert.equal((await decide('deploy')).code, 'default_deny');
    for (let i = 0; i < 10; i++) assert.equal((await decide('run')).code, 'allowed', `run #${i + 1}`);
    assert.equal((await decide('run')).code, 'rate_limited');
    // The deployment's environment holds its secrets: read or written, a human approves each call.
    for (const tool of ['envList', 'envGet', 'envSet']) assert.equal((await decide(tool)).code, 'approval_required', tool);
    for (let i = 0; i < 100; i++) assert.equal((await decide('logs')).code, 'allowed');
    policy.dispose();
  });

  test('tools that handle credentials need approval, with the reason in the description: server-everything\'s get-env (prints the environment) is not allowed unattended', async () => {
    const result = scanTools(capture('everything.json'));
    const getEnv = result.tools.find((t) => t.name === 'get-env');
    assert.equal(getEnv.category, 'read');
    assert.ok(ids(getEnv).includes('handles_credentials'));
    assert.deepEqual(result.policy.tools['get-env'], { action: 'require_approval' });
    assert.match(result.policy.description, /tools that handle credentials \(signal handles_credentials\) need a human's approval for every call, so that secrets are not handed out unattended: "get-env"\./);
    // Only get-env: the other read tools stay allowed.
    assert.deepEqual(Object.entries(result.policy.tools).filter(([, e]) => e.action).map(([name]) => name), ['get-env']);
    const policy = toolgate.compile(result.policy);
    const now = Date.UTC(2026, 0, 1);
    const decision = await policy.decide({ tool: 'get-env', grant: 'alice', now }, { counters: new MemoryCounterStore() });
    assert.equal(decision.decision, 'approval_required');
    assert.equal(decision.rule, '/tools/get-env/action');
    assert.equal((await policy.decide({ tool: 'get-sum', arguments: { a: 1, b: 2 }, grant: 'alice', now }, { counters: new MemoryCounterStore() })).code, 'allowed');
    policy.dispose();
  });

  test('approval follows a name through duplicates, keeps the rate limit of write and execute tools, and is not given to what is hidden or left out', () => {
    const credentials = [{ id: 'handles_credentials', detail: 'name mentions "token"' }];
    const policy = starterPolicy([
      { name: 'tokenGet', category: 'read', signals: credentials },
      { name: 'rotate', category: 'read', signals: [] }, { name: 'rotate', category: 'execute', signals: credentials },
      { name: 'keySet', category: 'write', signals: credentials },
      { name: 'keyDelete', category: 'destructive', signals: credentials },
      { name: 'key*', category: 'read', signals: credentials },
      { name: 'plain', category: 'read' },
    ]);
    assert.deepEqual(policy.tools, {
      tokenGet: { action: 'require_approval' },
      rotate: { action: 'require_approval', rate_limit: '10/minute' },
      keySet: { action: 'require_approval', rate_limit: '30/minute' },
      plain: {},
    });
    assert.deepEqual(policy.hide, ['keyDelete']);
    assert.match(policy.description, /approval for every call, so that secrets are not handed out unattended: "tokenGet", "rotate", "keySet"\./);
    assert.deepEqual(toolgate.check(policy), { ok: true, diagnostics: [] });
    assert.doesNotMatch(starterPolicy([{ name: 'plain', category: 'read', signals: [] }]).description, /approval/);
  });

  test('the policy in lib/README.md passes check', () => {
    const readme = readFileSync(new URL('README.md', libDir), 'utf8');
    const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]);
    assert.ok(blocks.length > 0);
    for (const block of blocks) assert.deepEqual(toolgate.check(block), { ok: true, diagnostics: [] });
  });

  test('a duplicated name gets its riskiest category; destructive names are only hidden', () => {
    const policy = starterPolicy([
      { name: 'a', category: 'read' }, { name: 'a', category: 'execute' },
      { name: 'b', category: 'write' }, { name: 'b', category: 'destructive' }, { name: 'b', category: 'read' },
    ]);
    assert.deepEqual(policy.tools, { a: { rate_limit: '10/minute' } });
    assert.deepEqual(policy.hide, ['b']);
    assert.match(policy.description, /from 2 tools: 1 execute .*1 destructive \(hidden\)/);
    assert.deepEqual(toolgate.check(policy), { ok: true, diagnostics: [] });
  });

  test('no tools: a valid policy that denies everything', () => {
    const policy = starterPolicy([]);
    assert.deepEqual({ ...policy, description: '' }, { version: '1', default: 'deny', description: '', hide: [], tools: {} });
    assert.match(policy.description, /Every tool is denied/);
    assert.deepEqual(toolgate.check(policy), { ok: true, diagnostics: [] });
    assert.deepEqual(scanTools([]).summary, { read: 0, write: 0, execute: 0, destructive: 0 });
  });

  test('starterPolicy rejects what is not a list of classifications', () => {
    for (const bad of [null, {}, 'x', [{}], [{ name: 'a', category: 'admin' }], [{ name: '', category: 'read' }], [{ name: 'a', category: 'toString' }],
      [{ name: 'a', category: 'read', signals: 'handles_credentials' }], [{ name: 'a', category: 'read', signals: null }]]) {
      assert.throws(() => starterPolicy(bad), ScanError, JSON.stringify(bad));
    }
  });
});

describe('input shapes', () => {
  const result = capture('memory.json');

  test('a tools/list result, a JSON-RPC response and a bare array give the same scan', () => {
    const expected = scanTools(result);
    assert.deepEqual(scanTools({ jsonrpc: '2.0', id: 7, result }), expected);
    assert.deepEqual(scanTools({ jsonrpc: '2.0', id: 'x', result: { ...result, nextCursor: 'abc' } }), expected);
    assert.deepEqual(scanTools(result.tools), expected);
    assert.deepEqual(scanTools({ tools: result.tools, nextCursor: 'abc' }), expected);
  });

  test('the input is not modified and the scan is deterministic', () => {
    const input = capture('everything.json');
    const copy = structuredClone(input);
    const first = scanTools(input);
    assert.deepEqual(input, copy);
    assert.deepEqual(scanTools(input), first);
    assert.deepEqual(JSON.parse(JSON.stringify(first)), first, 'plain JSON data');
  });

  const garbage = [
    ['null', null, /got null/],
    ['undefined', undefined, /got nothing/],
    ['a number', 42, /got number 42/],
    ['a string', '{"tools": []}', /got a string \(parse the JSON first\)/],
    ['{}', {}, /expected a tools\/list result/],
    ['{tools: [{}]}', { tools: [{}] }, /tools\[0\] has no string "name"/],
    ['a tool with a number name', [{ name: 1 }], /tools\[0\] has no string "name"/],
    ['a tool with an empty name', [{ name: 'ok' }, { name: '' }], /tools\[1\] has no string "name"/],
    ['a null tool', [null], /tools\[0\] must be a tool object, got null/],
    ['a string tool', ['read_file'], /tools\[0\] must be a tool object/],
    ['tools not an array', { tools: { a: {} } }, /"tools" must be an array/],
    ['result.tools not an array', { jsonrpc: '2.0', id: 1, result: { tools: 'x' } }, /"result.tools" must be an array/],
    ['a result without tools', { jsonrpc: '2.0', id: 1, result: {} }, /expected a tools\/list result/],
    ['a JSON-RPC error', { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'Method not found' } }, /JSON-RPC response is an error.*Method not found/],
  ];
  for (const [what, input, message] of garbage) {
    test(`ScanError for ${what}`, () => {
      assert.throws(() => scanTools(input), (error) => {
        assert.ok(error instanceof ScanError);
        assert.ok(error instanceof Error);
        assert.equal(error.name, 'ScanError');
        assert.match(error.message, message);
        return true;
      });
    });
  }

  test('classifyTool: ScanError for a non-object or a tool without a name; tolerates the rest', () => {
    for (const bad of [null, 'x', [], {}, { name: 3 }, { name: '' }]) assert.throws(() => classifyTool(bad), ScanError);
    // No schema, a garbage schema, garbage annotations and description: still classified.
    for (const tool of [
      { name: 'x' },
      { name: 'x', inputSchema: 'nope', annotations: 'nope', description: 7, title: null },
      { name: 'x', inputSchema: { properties: [1, 2] }, annotations: { readOnlyHint: 'yes' } },
    ]) {
      const c = classifyTool(tool);
      assert.equal(c.category, 'write');
      assert.deepEqual(ids(c), ['unknown_verb']);
    }
  });
});

const tool = (name, extra = {}) => ({ name, inputSchema: { type: 'object', properties: {} }, ...extra });
const props = (...names) => ({ type: 'object', properties: Object.fromEntries(names.map((n) => [n, { type: 'string' }])) });

describe('rules', () => {
  test('splitWords: camelCase, snake_case, kebab-case, acronyms, dots and slashes', () => {
    assert.deepEqual(splitWords('envRemove'), ['env', 'remove']);
    assert.deepEqual(splitWords('read_text_file'), ['read', 'text', 'file']);
    assert.deepEqual(splitWords('get-sum'), ['get', 'sum']);
    assert.deepEqual(splitWords('runOneoffQuery'), ['run', 'oneoff', 'query']);
    assert.deepEqual(splitWords('HTTPServerStart'), ['http', 'server', 'start']);
    assert.deepEqual(splitWords('github.repos/delete'), ['github', 'repos', 'delete']);
    assert.deepEqual(splitWords('apiKey'), ['api', 'key']);
    assert.deepEqual(splitWords(''), []);
  });

  test('verbs: each category, whole words only, the riskiest wins', () => {
    const cases = {
      drop_table: 'destructive', killProcess: 'destructive', 'revoke-token': 'destructive', purge: 'destructive',
      exec: 'execute', evalJs: 'execute', shell_command: 'execute', deployApp: 'execute', spawn: 'execute',
      start_process: 'execute', launchBrowser: 'execute', invoke_lambda: 'execute',
      upload_file: 'write', sendEmail: 'write', rename: 'write', insertRow: 'write', patch_issue: 'write', put: 'write',
      list_issues: 'read', describeStack: 'read', view: 'read', find: 'read', fetch_url: 'read',
      get_and_delete: 'destructive', list_then_run: 'execute', get_settings: 'read', list_commands: 'read',
      get_posts: 'read', reset_password: 'destructive',
    };
    for (const [name, category] of Object.entries(cases)) {
      assert.equal(classifyTool(tool(name)).category, category, name);
    }
  });

  test('the title counts like the name; the description only by its first word', () => {
    assert.equal(classifyTool(tool('x', { title: 'Delete Everything' })).category, 'destructive');
    assert.equal(classifyTool(tool('x', { annotations: { title: 'Run Job' } })).category, 'execute');
    const lead = classifyTool(tool('x', { description: 'Deletes a row.' }));
    assert.equal(lead.category, 'destructive');
    assert.equal(lead.signals[0].detail, 'description starts with "Deletes" → destructive');
    assert.equal(classifyTool(tool('x', { description: 'Fetches a page.' })).category, 'read');
    assert.equal(classifyTool(tool('x', { description: 'Recursively search for files.' })).category, 'read');
    // A verb later in the description does not count ("set status to failure" in convex logs).
    assert.equal(classifyTool(tool('x', { description: 'Shows logs. To filter, set status; never deploy.' })).category, 'read');
    assert.equal(classifyTool(tool('x', { description: 'A thing that deletes.' })).category, 'write', 'unknown');
  });

  test('"query" and "sql" in a name are execute only with code-like input', () => {
    assert.equal(classifyTool(tool('query', { inputSchema: props('sql') })).category, 'execute');
    assert.equal(classifyTool(tool('query', { inputSchema: props('sql') })).risk, 'critical');
    assert.equal(classifyTool(tool('research_query', { inputSchema: props('topic') })).category, 'write');
    assert.equal(classifyTool(tool('search', { inputSchema: props('query') })).category, 'read');
  });

  test('annotations decide, raise, and are overridden only upwards', () => {
    const read = classifyTool(tool('thing', { annotations: { readOnlyHint: true } }));
    assert.equal(read.category, 'read');
    assert.deepEqual(read.signals, [{ id: 'annotation', detail: 'readOnlyHint: true → read' }]);
    assert.equal(classifyTool(tool('get_thing', { annotations: { readOnlyHint: false, destructiveHint: true } })).category, 'destructive');
    assert.equal(classifyTool(tool('thing', { annotations: { readOnlyHint: false } })).category, 'write');
    assert.equal(classifyTool(tool('thing', { annotations: { readOnlyHint: false, destructiveHint: false } })).category, 'write');
    // Contradictory hints: the riskier one.
    const both = classifyTool(tool('thing', { annotations: { readOnlyHint: true, destructiveHint: true } }));
    assert.equal(both.category, 'destructive');
    assert.match(both.signals[0].detail, /contradictory/);
    // A server cannot get a delete allowed by calling it read-only.
    const lying = classifyTool(tool('delete_everything', { annotations: { readOnlyHint: true, destructiveHint: false } }));
    assert.equal(lying.category, 'destructive');
    assert.deepEqual(ids(lying), ['verb', 'annotation_overridden']);
    // readOnlyHint: false is consistent with execute; still reported as lower.
    const run = classifyTool(tool('run', { annotations: { readOnlyHint: false } }));
    assert.equal(run.category, 'execute');
    assert.deepEqual(ids(run), ['verb', 'annotation_overridden']);
    // Only booleans count; openWorldHint is a signal, not a category.
    assert.equal(classifyTool(tool('thing', { annotations: { readOnlyHint: 'true', destructiveHint: 1 } })).category, 'write');
    const open = classifyTool(tool('get_page', { annotations: { openWorldHint: true } }));
    assert.deepEqual(ids(open), ['verb', 'open_world']);
    assert.equal(open.risk, 'low');
  });

  test('nothing known: write, unknown_verb', () => {
    const c = classifyTool(tool('frobnicate'));
    assert.deepEqual(c, { name: 'frobnicate', category: 'write', risk: 'medium', signals: [c.signals[0]] });
    assert.equal(c.signals[0].id, 'unknown_verb');
  });

  test('accepts_paths: nested path-like properties, or a description about file paths', () => {
    for (const name of ['path', 'paths', 'file', 'filename', 'dir', 'directory', 'source', 'destination', 'projectDir', 'output_path', 'targetFolder']) {
      assert.ok(ids(classifyTool(tool('get', { inputSchema: props(name) }))).includes('accepts_paths'), name);
    }
    for (const name of ['profile', 'pathology', 'resourceType', 'location']) {
      assert.ok(!ids(classifyTool(tool('get', { inputSchema: props(name) }))).includes('accepts_paths'), name);
    }
    const nested = classifyTool(tool('get', {
      inputSchema: { type: 'object', properties: { ops: { type: 'array', items: { type: 'object', properties: { target: { anyOf: [{ type: 'object', properties: { filePath: { type: 'string' } } }] } } } } } },
    }));
    assert.equal(nested.signals.find((s) => s.id === 'accepts_paths').detail, 'path-like input "ops[].target.filePath"');
    assert.ok(ids(classifyTool(tool('get', { description: 'Get a thing by its file path.' }))).includes('accepts_paths'));
    assert.ok(ids(classifyTool(tool('get', { description: 'Look around the file system.' }))).includes('accepts_paths'));
  });

  test('handles_credentials: name, title or property', () => {
    for (const name of ['apiKey', 'token', 'client_secret', 'password', 'credentials', 'authHeader', 'ENV_VARS']) {
      assert.ok(ids(classifyTool(tool('get', { inputSchema: props(name) }))).includes('handles_credentials'), name);
    }
    assert.ok(ids(classifyTool(tool('rotate_secret'))).includes('handles_credentials'));
    assert.ok(ids(classifyTool(tool('x', { title: 'Print Environment' }))).includes('handles_credentials'));
    for (const name of ['tokensLimit', 'maxTokens', 'keyboard', 'monkey']) {
      assert.ok(!ids(classifyTool(tool('get', { inputSchema: props(name) }))).includes('handles_credentials'), name);
    }
  });

  test('arbitrary_code: code-like input on execute tools; args only as a list', () => {
    for (const name of ['code', 'query', 'command', 'script', 'sql', 'sourceCode', 'shellCommand']) {
      assert.ok(ids(classifyTool(tool('run', { inputSchema: props(name) }))).includes('arbitrary_code'), name);
    }
    const argv = { type: 'object', properties: { args: { type: 'array', items: { type: 'string' } } } };
    assert.equal(classifyTool(tool('run', { inputSchema: argv })).risk, 'critical');
    assert.equal(classifyTool(tool('run', { inputSchema: props('args') })).risk, 'high', 'args as a string is data');
    assert.equal(classifyTool(tool('run', { inputSchema: props('functionName', 'input') })).risk, 'high');
    // Not on non-execute tools ("script" and "code" are nouns, not verbs).
    const update = classifyTool(tool('update_script', { inputSchema: props('script', 'code') }));
    assert.equal(update.category, 'write');
    assert.ok(!ids(update).includes('arbitrary_code'));
  });

  test('high_parameter_count: more than 6 top-level properties', () => {
    assert.ok(!ids(classifyTool(tool('get', { inputSchema: props('a', 'b', 'c', 'd', 'e', 'f') }))).includes('high_parameter_count'));
    const seven = classifyTool(tool('get', { inputSchema: props('a', 'b', 'c', 'd', 'e', 'f', 'g') }));
    assert.deepEqual(seven.signals.at(-1), { id: 'high_parameter_count', detail: '7 input properties (more than 6)' });
    assert.equal(seven.risk, 'low', 'does not change the risk');
  });

  test('risk: every category and raise', () => {
    const risk = (name, ...properties) => classifyTool(tool(name, { inputSchema: props(...properties) })).risk;
    assert.equal(risk('get'), 'low');
    assert.equal(risk('get', 'path'), 'medium');
    assert.equal(risk('get', 'token'), 'medium');
    assert.equal(risk('create'), 'medium');
    assert.equal(risk('create', 'file'), 'high');
    assert.equal(risk('create', 'password'), 'high');
    assert.equal(risk('deploy'), 'high');
    assert.equal(risk('deploy', 'path'), 'high');
    assert.equal(risk('exec', 'command'), 'critical');
    assert.equal(risk('delete'), 'critical');
  });

  test('hostile schemas: deep, wide and cyclic schemas end quickly', () => {
    let deep = { type: 'string' };
    for (let i = 0; i < 10_000; i++) deep = { type: 'object', properties: { path: deep } };
    const cyclic = { type: 'object', properties: {} };
    cyclic.properties.self = cyclic;
    cyclic.items = cyclic;
    const wide = props(...Array.from({ length: 50_000 }, (_, i) => `p${i}`));
    const started = Date.now();
    assert.ok(ids(classifyTool(tool('get', { inputSchema: deep }))).includes('accepts_paths'));
    assert.equal(classifyTool(tool('get', { inputSchema: cyclic })).category, 'read');
    assert.ok(ids(classifyTool(tool('get', { inputSchema: wide }))).includes('high_parameter_count'));
    assert.ok(classifyTool(tool('x'.repeat(1_000_000), { description: 'y '.repeat(1_000_000) })));
    assert.ok(Date.now() - started < 5_000, 'well under the time a user waits');
  });
});

describe('hostile names', () => {
  const html = '<img src=x onerror=alert(1)>';

  test('HTML and other odd names are kept verbatim and the policy still checks', () => {
    const names = [html, '"quoted"\\', '__proto__', 'constructor', 'toString', 'a\u0000b', 'line\nbreak', 'é😀', ' ', 'x'.repeat(5000)];
    const result = scanTools(names.map((name, i) => ({
      name,
      inputSchema: { type: 'object', properties: {} },
      annotations: { readOnlyHint: i % 2 === 0, destructiveHint: i % 3 === 0 },
    })));
    assert.deepEqual(result.tools.map((t) => t.name), names);
    const { policy } = result;
    // Every name is in the policy as it is: hidden, or a key.
    for (const name of names) {
      assert.ok(policy.hide.includes(name) || Object.hasOwn(policy.tools, name), JSON.stringify(name));
    }
    assert.ok(policy.hide.includes(html), 'destructive: hidden verbatim');
    assert.equal(Object.getPrototypeOf(policy.tools), Object.prototype);
    const text = JSON.stringify(policy);
    assert.ok(text.includes(html));
    assert.ok(text.includes('"__proto__":'), '__proto__ is an ordinary key');
    assert.deepEqual(JSON.parse(text), policy);
    const check = toolgate.check(text);
    assert.equal(check.ok, true);
    assert.deepEqual(check.diagnostics.filter((d) => d.severity === 'error'), []);
  });

  test('an allowed HTML-named tool is allowed by exactly its name', async () => {
    const { policy } = scanTools([{ name: html, annotations: { readOnlyHint: true } }, { name: `get_${html}` }]);
    assert.deepEqual(policy.tools, { [html]: {}, [`get_${html}`]: {} });
    const compiled = toolgate.compile(policy);
    assert.equal(compiled.evaluate({ tool: html }).code, 'allowed');
    assert.equal(compiled.evaluate({ tool: '<img' }).code, 'default_deny');
    compiled.dispose();
  });

  test('a "*" in a name never widens the policy', () => {
    const { policy } = scanTools([
      { name: 'get*', annotations: { readOnlyHint: true } },
      { name: '*' },
      { name: 'list_things' },
      { name: 'delete*' },
    ]);
    assert.deepEqual(policy.tools, { list_things: {} }, 'no glob keys that would allow other tools');
    assert.deepEqual(policy.hide, ['delete*'], 'a destructive glob can only hide more');
    assert.match(policy.description, /2 tools are left to the default deny/);
    assert.deepEqual(toolgate.check(policy), { ok: true, diagnostics: [] });
  });

  test('a name with an unpaired surrogate is left to the default deny', () => {
    const result = scanTools([{ name: 'get_\ud800' }, { name: 'delete_\udc00x' }, { name: 'get_😀' }]);
    assert.equal(result.tools[0].name, 'get_\ud800', 'kept verbatim in the classification');
    assert.deepEqual(result.policy.tools, { 'get_😀': {} });
    assert.deepEqual(result.policy.hide, []);
    assert.match(result.policy.description, /2 tools are left to the default deny/);
    assert.deepEqual(toolgate.check(JSON.stringify(result.policy)), { ok: true, diagnostics: [] });
  });
});

describe('formatScan', () => {
  test('a table with a header, every tool, and a summary', () => {
    const result = scanTools(capture('convex.json'));
    const text = formatScan(result);
    const lines = text.trimEnd().split('\n');
    assert.match(lines[0], /^TOOL\s+CATEGORY\s+RISK\s+SIGNALS$/);
    assert.equal(lines.length, 1 + 12 + 2);
    assert.match(text, /^runOneoffQuery\s+execute\s+critical\s+verb, arbitrary_code$/m);
    assert.match(text, /^envRemove\s+destructive\s+critical\s+verb, handles_credentials$/m);
    assert.equal(lines.at(-1), '12 tools: 8 read, 1 write, 2 execute, 1 destructive');
    // Columns line up.
    const column = lines[0].indexOf('CATEGORY');
    for (const line of lines.slice(1, 13)) assert.match(line.slice(column), /^(read|write|execute|destructive) /);
    assert.equal(formatScan(result.tools), text, 'also takes the classifications alone');
  });

  test('details lists every signal under its tool', () => {
    const text = formatScan(scanTools(capture('cargo-run.json')), { details: true });
    assert.match(text, /^ {4}arbitrary_code: takes code or a command line: "args"$/m);
    assert.match(text, /^ {4}verb: name word "run" → execute$/m);
  });

  test('control characters, escapes and bidi overrides cannot reach the terminal', () => {
    const evil = 'a\u001b[2J\u0007\r\nb\u202ex\u2028\u009b\ud800';
    const property = 'path\u001b]0;pwned\u0007';
    const text = formatScan(scanTools([{ name: evil, inputSchema: props(property) }]), { details: true });
    assert.doesNotMatch(text.replace(/\n/g, ''), /[\u0000-\u001f\u007f-\u009f\u202e\u2028\ud800]/);
    assert.ok(text.includes('a\\u{1b}[2J\\u{7}\\u{d}\\u{a}b\\u{202e}x\\u{2028}\\u{9b}\\u{d800}  write'));
    assert.ok(text.includes('accepts_paths: path-like input "path\\u001b]0;pwned\\u0007"'), 'JSON-quoted in details');
    assert.equal(text.trimEnd().split('\n').length, 1 + 3 + 2, 'header, row, 2 details, blank, summary');
  });

  test('HTML is not escaped (not a terminal concern); long names are cut', () => {
    assert.ok(formatScan(scanTools([{ name: '<b>&amp;</b>' }])).includes('<b>&amp;</b>'));
    const text = formatScan(scanTools([{ name: 'get_'.repeat(100) }]));
    assert.ok(text.split('\n')[1].startsWith(`${'get_'.repeat(11)}get…`));
  });

  test('rejects what is not a scan', () => {
    for (const bad of [null, {}, 'x']) assert.throws(() => formatScan(bad), ScanError);
  });
});

describe('the module, its types and its README', () => {
  test('no imports and no Node-only globals: it runs in a browser as it is', () => {
    const source = readFileSync(new URL('scan.js', libDir), 'utf8');
    assert.doesNotMatch(source, /^\s*import\b|\bimport\(|\brequire\(/m);
    assert.doesNotMatch(source, /\b(process|Buffer|__dirname|globalThis)\b/);
  });

  test('scan.d.ts declares every runtime export, and nothing else as a value', () => {
    const dts = readFileSync(new URL('scan.d.ts', libDir), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    const values = new Set([...dts.matchAll(/^export\s+(?:declare\s+)?(class|function|const)\s+([A-Za-z_$][\w$]*)/gm)].map((m) => m[2]));
    assert.deepEqual([...values].sort(), Object.keys(scan).sort());
    for (const type of ['Category', 'Risk', 'SignalId', 'Signal', 'ToolClassification', 'McpTool', 'ToolsListInput', 'StarterPolicy', 'ScanResult']) {
      assert.match(dts, new RegExp(`^export (interface|type) ${type}\\b`, 'm'), type);
    }
    // Every signal id the module can emit is declared.
    for (const id of ['annotation', 'verb', 'annotation_overridden', 'unknown_verb', 'accepts_paths', 'handles_credentials', 'high_parameter_count', 'arbitrary_code', 'open_world']) {
      assert.ok(dts.includes(`'${id}'`), id);
    }
    assert.deepEqual(CATEGORIES, ['read', 'write', 'execute', 'destructive']);
  });

  test('lib/README.md documents every word list and every signal', () => {
    const readme = readFileSync(new URL('README.md', libDir), 'utf8');
    for (const [list, words] of Object.entries(WORDS)) {
      for (const word of words) assert.ok(readme.includes(`\`${word}\``), `${list}: \`${word}\``);
    }
    for (const id of ['annotation', 'verb', 'annotation_overridden', 'unknown_verb', 'accepts_paths', 'handles_credentials', 'high_parameter_count', 'arbitrary_code', 'open_world']) {
      assert.match(readme, new RegExp(`^\\| \`${id}\` \\|`, 'm'), id);
    }
    assert.ok(Object.isFrozen(WORDS) && Object.isFrozen(WORDS.read));
  });
});
