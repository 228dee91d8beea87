// The Workers entry as an OAuth resource server, in workerd (Miniflare): the
// OAUTH_ISSUERS / OAUTH_RESOURCE bindings, oidc-provider as the authorization
// server, and the MCP SDK client running its own OAuth flow through it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Miniflare } from 'miniflare';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

import { repoRoot } from './cli-helpers.js';
import { freePort, postRaw, startEverything } from './proxy-helpers.js';
import { driveLogin, sdkOAuthProvider, startKeyIssuer, startOidcProvider } from './oauth-helpers.js';
import { moduleGraph } from './workerd-modules.js';

const POLICY = { version: '1', default: 'deny', tools: { echo: {}, 'get-sum': { require: [{ path: 'grant.team', op: 'eq', value: 'payments' }] } } };

let everything;
let oidc;
let keys;
let mf;
let mcp;

before(async () => {
  everything = await startEverything();
  oidc = await startOidcProvider({ teams: { alice: 'payments' } });
  keys = await startKeyIssuer();
  const port = await freePort();
  mcp = `http://127.0.0.1:${port}/mcp`;
  const modules = await moduleGraph('worker/workers.js');
  mf = new Miniflare({
    modulesRoot: repoRoot,
    modules,
    compatibilityDate: '2025-01-01',
    bindings: {
      UPSTREAM_URL: everything.url,
      POLICY: JSON.stringify(POLICY),
      ADMIN_TOKEN: 'workerd-oauth-admin-token',
      OAUTH_ISSUERS: `${oidc.issuer} ${keys.issuer}`,
      OAUTH_RESOURCE: mcp,
      OAUTH: JSON.stringify({ scopes: ['mcp:tools'], admin: { claim: 'groups', values: ['toolgate-admins'] } }),
    },
    durableObjects: {
      COUNTERS: { className: 'ToolgateCounters', useSQLite: true },
      APPROVALS: { className: 'ToolgateApprovals', useSQLite: true },
    },
    host: '127.0.0.1',
    port,
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  await oidc?.stop();
  await keys?.stop();
  await everything?.stop();
});

test('workerd: metadata, challenge, refusals', async () => {
  const metadata = await (await fetch(`${new URL(mcp).origin}/.well-known/oauth-protected-resource/mcp`)).json();
  assert.equal(metadata.resource, mcp);
  assert.deepEqual(metadata.authorization_servers, [oidc.issuer, keys.issuer]);
  const challenge = await postRaw(mcp, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
  assert.equal(challenge.status, 401);
  assert.match(challenge.headers.get('www-authenticate'), /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/);
  const elsewhere = await keys.sign({ sub: 'm', aud: 'http://127.0.0.1:1/mcp', scope: 'mcp:tools' });
  assert.equal((await postRaw(mcp, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { token: elsewhere })).status, 401);
  const noScope = await keys.sign({ sub: 'm', aud: mcp, scope: 'other' });
  assert.equal((await postRaw(mcp, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { token: noScope })).status, 403);
});

test('workerd: admins from identity on the approvals API', async () => {
  const pending = (token) => fetch(`${new URL(mcp).origin}/approvals/pending`, { headers: { authorization: `Bearer ${token}` } });
  const admin = await pending(await keys.sign({ sub: 'o', aud: mcp, groups: ['toolgate-admins'] }));
  assert.equal(admin.status, 200);
  await admin.arrayBuffer();
  const user = await pending(await keys.sign({ sub: 'p', aud: mcp, groups: ['staff'] }));
  assert.equal(user.status, 401);
  await user.arrayBuffer();
});

test('workerd: the MCP SDK client runs the OAuth flow with oidc-provider and calls tools', async () => {
  const provider = sdkOAuthProvider();
  const first = new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider });
  await assert.rejects(new Client({ name: 'w', version: '1' }).connect(first), UnauthorizedError);
  const redirect = await driveLogin(provider.store.authorizationUrl, 'alice');
  await first.finishAuth(redirect.searchParams.get('code'));
  const client = new Client({ name: 'w', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider }));
  assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
  const echoed = await client.callTool({ name: 'echo', arguments: { message: 'from workerd' } });
  assert.equal(echoed.content[0].text, 'Echo: from workerd');
  const sum = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
  assert.equal(sum.isError, undefined, 'alice is in payments (a claim oidc-provider adds)');
  await client.close();
});

test('workerd: the OAUTH_RESOURCE host is one the Worker answers to without PUBLIC_URL; others get 403', async () => {
  const other = new Miniflare({
    modulesRoot: repoRoot,
    modules: await moduleGraph('worker/workers.js'),
    compatibilityDate: '2025-01-01',
    bindings: { UPSTREAM_URL: everything.url, POLICY: JSON.stringify(POLICY), ADMIN_TOKEN: 'workerd-oauth-admin-token', OAUTH_ISSUERS: keys.issuer, OAUTH_RESOURCE: 'https://mcp.test/mcp' },
    durableObjects: { COUNTERS: { className: 'ToolgateCounters', useSQLite: true }, APPROVALS: { className: 'ToolgateApprovals', useSQLite: true } },
  });
  try {
    const ok = await other.dispatchFetch('https://mcp.test/.well-known/oauth-protected-resource/mcp');
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).resource, 'https://mcp.test/mcp');
    const refused = await other.dispatchFetch('https://evil.test/.well-known/oauth-protected-resource/mcp');
    assert.equal(refused.status, 403);
    await refused.arrayBuffer();
  } finally {
    await other.dispose();
  }
});
