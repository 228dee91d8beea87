// Tool pins in the Workers entry, inside workerd (Miniflare): the rug-pull
// SDK server (./fixtures/rug-pull-server.js) behind worker/workers.js with
// the PINS binding, the official SDK client as the agent. The changed tool
// leaves the list and its calls never reach the server; the unchanged one
// keeps working; new PINS (re-pinned) restore the changed tool.
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { Miniflare } from 'miniflare';

import { repoRoot, runCli } from './cli-helpers.js';
import { sha256, waitFor } from './proxy-helpers.js';
import { moduleGraph } from './workerd-modules.js';
import { startRugPullServer } from './fixtures/rug-pull-server.js';

const TOKEN = 'pins-workerd-token';
const POLICY = { version: '1', default: 'deny', tools: { add: {}, get_weather: {} } };
const text = (result) => result.content.map((c) => c.text).join('');
const names = (list) => list.tools.map((t) => t.name).sort();

// As tests/js/proxy-workerd.test.js: every module listed, eventsource-parser beside worker/sse.js.
async function workerOptions(bindings) {
  const modules = await moduleGraph('worker/workers.js');
  return {
    modulesRoot: repoRoot,
    modules,
    compatibilityDate: '2025-01-01',
    bindings,
    durableObjects: {
      COUNTERS: { className: 'ToolgateCounters', useSQLite: true },
      APPROVALS: { className: 'ToolgateApprovals', useSQLite: true },
    },
    host: '127.0.0.1',
    port: 0,
  };
}

test('Workers entry with PINS: a rug pull mid-session is blocked in workerd; new PINS restore the tool', async (t) => {
  const upstream = await startRugPullServer({ json: false, changeAfterLists: 2 });
  t.after(() => upstream.stop());
  const pinsPath = path.join(await mkdtemp(path.join(tmpdir(), 'toolgate-pins-workerd-')), 'pins.json');
  const pin = async (args) => {
    const result = await runCli(['pin', upstream.url, '--out', pinsPath, ...args]);
    assert.equal(result.code, 0, result.stderr);
    return readFile(pinsPath, 'utf8');
  };
  const bindings = {
    UPSTREAM_URL: upstream.url,
    POLICY: JSON.stringify(POLICY),
    GRANTS: JSON.stringify({ grants: [{ id: 'agent', token_sha256: sha256(TOKEN) }] }),
    ADMIN_TOKEN: 'pins-workerd-admin',
    PINS: await pin([]),
  };
  const mf = new Miniflare(await workerOptions(bindings));
  t.after(() => mf.dispose());
  const url = new URL('/mcp', await mf.ready);

  const client = new Client({ name: 'pins-workerd-agent', version: '1.0.0' });
  let listChanged = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    listChanged += 1;
  });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));
  t.after(() => client.close());
  await waitFor(() => upstream.streams >= 1, 'the event stream opened');
  assert.deepEqual(names(await client.listTools()), ['add', 'get_weather']);
  await waitFor(() => listChanged >= 1, 'list_changed at the agent');

  const denied = await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
  assert.equal(denied.isError, true);
  assert.equal(denied._meta['dev.toolgate/decision'].code, 'tool_changed');
  assert.match(denied._meta['dev.toolgate/decision'].message, /fields: description, inputSchema/);
  assert.equal(text(await client.callTool({ name: 'get_weather', arguments: { city: 'Oslo' } })), 'sunny in Oslo');
  assert.deepEqual(names(await client.listTools()), ['get_weather']);
  assert.equal(upstream.ran('add'), 0);
  assert.equal(upstream.ran('get_weather'), 1);

  // Re-pinned: the Worker gets the new PINS (a new deployment of its bindings).
  await mf.setOptions(await workerOptions({ ...bindings, PINS: await pin(['--force']) }));
  await waitFor(async () => names(await client.listTools()).includes('add'), 'add listed again with the new PINS');
  assert.equal(text(await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })), '5');
  assert.equal(upstream.ran('add'), 1);

  // A PINS binding that does not check serves nothing, and says why.
  const broken = JSON.parse(bindings.PINS);
  broken.servers.default.tools.add.sha256 = '0'.repeat(64);
  await mf.setOptions(await workerOptions({ ...bindings, PINS: JSON.stringify(broken) }));
  const response = await fetch(new URL('/mcp', await mf.ready), { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
  assert.equal(response.status, 500);
  assert.match((await response.json()).error, /PINS: server "default", tool "add": "sha256" is not the hash/);
});
