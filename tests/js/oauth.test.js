// toolgate serve as an OAuth 2.1 resource server (#14), end to end:
// a real authorization server (oidc-provider), the official MCP SDK client
// running its own OAuth flow (401 -> protected resource metadata -> AS
// metadata -> dynamic registration -> authorize with PKCE -> token ->
// tools/list, tools/call), and tokens made here with jose for every refusal.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { SignJWT } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

import { repoRoot } from './cli-helpers.js';
import { collectOutput, connectClient, echoResults, freePort, startFakeUpstream, postRaw, sha256, slidingRateLimit, startEverything, tempFile, waitFor } from './proxy-helpers.js';
import { driveLogin, machineToken, sdkOAuthProvider, startKeyIssuer, startOidcProvider } from './oauth-helpers.js';
import { checkOAuthConfig, createOAuth } from '../../worker/oauth.js';
import { serversFrom } from '../../lib/cli/serve.js';
import { createHandler } from '../../worker/handler.js';
import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';

const TOOLGATE = `${repoRoot}bin/toolgate.js`;
const ADMIN = 'admin-token-for-oauth-tests';
const BOT = 'static-bot-token-0123456789';
const POLICY = {
  version: '1',
  default: 'deny',
  tools: {
    echo: slidingRateLimit(2, 'hour'),
    // A custom claim decides.
    'get-sum': { require: [{ conditions: [{ path: 'grant.team', op: 'eq', value: 'payments' }], on_deny: 'payments only' }] },
    // A scope decides.
    'get-annotated-message': { require: [{ conditions: [{ path: 'grant.scope', op: 'contains', value: 'refunds:write' }], on_deny: 'needs refunds:write' }] },
    'get-tiny-image': { action: 'require_approval' },
  },
};

let everything;
let oidc;
let keys;
let downIssuer;
let child;
let base;
let mcp;
let resource;

const tools = (id) => ({ jsonrpc: '2.0', id, method: 'tools/list' });
// A request the server answers 200 without a session: what a raw POST can prove got through.
const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
/** tools/call through the SDK client with a static bearer token. */
async function callWith(token, name, args) {
  const client = await connectClient(mcp, token);
  try {
    return await client.callTool({ name, arguments: args });
  } finally {
    await client.close();
  }
}
const call = (name, args = {}, id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

before(async () => {
  everything = await startEverything();
  oidc = await startOidcProvider({ teams: { alice: 'payments', bob: 'support' } });
  keys = await startKeyIssuer();
  downIssuer = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  mcp = `${base}/mcp`;
  resource = mcp;
  const config = await tempFile('oauth-config.json', {
    servers: { default: { upstream: everything.url, policy: await tempFile('oauth-policy.json', POLICY) } },
    // The bot has a policy of its own, more permissive than the server's (get-sum for anyone).
    grants: await tempFile('oauth-grants.json', { grants: [{
      id: 'release-bot', token_sha256: sha256(BOT), attributes: { kind: 'bot' },
      policy: await tempFile('oauth-bot-policy.json', { version: '1', default: 'deny', tools: { echo: {}, 'get-sum': {} } }),
    }] }),
    oauth: {
      issuers: [oidc.issuer, keys.issuer, downIssuer],
      resource,
      scopes: ['mcp:tools'],
      admin: { claim: 'groups', values: ['toolgate-admins'] },
      jwks_refetch_seconds: 1,
    },
  });
  child = spawn(process.execPath, [TOOLGATE, 'serve', '--config', config, '--port', String(port)], {
    cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOOLGATE_ADMIN_TOKEN: ADMIN },
  });
  await collectOutput(child.stderr).until(/is listening on \S+\n[\s\S]*oauth: /, 'toolgate serve listening with OAuth');
});

after(async () => {
  if (child && child.exitCode === null) {
    child.kill();
    await once(child, 'exit');
  }
  await oidc?.stop();
  await keys?.stop();
  await everything?.stop();
});

/** The official SDK client, through its own OAuth flow as `login`; returns the connected client. */
async function oauthClient(login, clientInformation) {
  const provider = sdkOAuthProvider({ client: clientInformation });
  const first = new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider });
  const client = new Client({ name: 'oauth-test', version: '1.0.0' });
  await assert.rejects(client.connect(first), UnauthorizedError);
  assert.ok(provider.store.authorizationUrl, 'the SDK was sent to the authorization endpoint');
  const authorize = new URL(provider.store.authorizationUrl);
  assert.equal(authorize.origin, oidc.issuer);
  assert.equal(authorize.searchParams.get('resource'), resource, 'RFC 8707 resource indicator from the protected resource metadata');
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  const redirect = await driveLogin(authorize, login);
  const code = redirect.searchParams.get('code');
  assert.ok(code, `the login ended with a code: ${redirect}`);
  await first.finishAuth(code);
  const connected = new Client({ name: 'oauth-test', version: '1.0.0' });
  await connected.connect(new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider }));
  return { client: connected, provider };
}

const text = (result) => result.content.map((c) => c.text).join('');

describe('toolgate serve as an OAuth resource server', () => {
  test('RFC 9728 metadata, root and path form', async () => {
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const response = await fetch(`${base}${path}`);
      assert.equal(response.status, 200, path);
      const metadata = await response.json();
      assert.equal(metadata.resource, resource);
      assert.deepEqual(metadata.authorization_servers, [oidc.issuer, keys.issuer, downIssuer]);
      assert.deepEqual(metadata.scopes_supported, ['mcp:tools']);
      assert.deepEqual(metadata.bearer_methods_supported, ['header']);
    }
    assert.equal((await fetch(`${base}/.well-known/oauth-protected-resource/mcp/nothing`)).status, 404);
  });

  test('401 without a token names the metadata and the scope', async () => {
    const answer = await postRaw(mcp, tools(1));
    assert.equal(answer.status, 401);
    const challenge = answer.headers.get('www-authenticate');
    assert.match(challenge, /^Bearer /);
    assert.match(challenge, new RegExp(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`));
    assert.match(challenge, /scope="mcp:tools"/);
  });

  let alice;
  let bob;
  test('the MCP SDK client runs the whole OAuth flow with oidc-provider; tools/list and tools/call go through', async () => {
    alice = await oauthClient('alice');
    const token = alice.provider.store.tokens.access_token;
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.aud, resource, 'the token was minted for this resource');
    assert.equal(claims.sub, 'alice');
    const listed = await alice.client.listTools();
    assert.ok(listed.tools.some((t) => t.name === 'echo'));
    assert.equal(text(await alice.client.callTool({ name: 'echo', arguments: { message: 'hi' } })), 'Echo: hi');
  });

  test('two users of one client have separate counts; a custom claim decides as written', async () => {
    // bob uses the client alice's flow registered: same client_id, other subject.
    bob = await oauthClient('bob', alice.provider.store.client);
    assert.equal(alice.provider.store.client.client_id, bob.provider.store.client.client_id);
    assert.equal(text(await alice.client.callTool({ name: 'echo', arguments: { message: '2' } })), 'Echo: 2');
    const third = await alice.client.callTool({ name: 'echo', arguments: { message: '3' } });
    assert.equal(third.isError, true);
    assert.match(text(third), /Rate limit exceeded/);
    assert.equal(text(await bob.client.callTool({ name: 'echo', arguments: { message: 'bob' } })), 'Echo: bob', 'bob has his own count');
    // team is a claim oidc-provider adds: payments for alice, support for bob.
    assert.equal((await alice.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).isError, undefined);
    const denied = await bob.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
    assert.equal(denied.isError, true);
    assert.match(text(denied), /payments only/);
    await alice.client.close();
    await bob.client.close();
  });

  test('static-token grants keep working beside OAuth; a token whose sub is a static grant\'s id does not get its policy', async () => {
    assert.equal(text(await callWith(BOT, 'echo', { message: 'bot' })), 'Echo: bot');
    assert.equal((await callWith(BOT, 'get-sum', { a: 1, b: 2 })).isError, undefined, 'the bot\'s own policy allows get-sum');
    const impostor = await keys.sign({ sub: 'release-bot', aud: resource, scope: 'mcp:tools' });
    const denied = await callWith(impostor, 'get-sum', { a: 1, b: 2 });
    assert.equal(denied.isError, true, 'the server\'s policy applies: team payments only');
    assert.match(text(denied), /payments only/);
  });

  test('a policy on grant.scope decides as written (scope string and scp array)', async () => {
    const writer = await keys.sign({ sub: 'carol', aud: resource, scope: 'mcp:tools refunds:write' });
    const reader = await keys.sign({ sub: 'dave', aud: resource, scope: 'mcp:tools' });
    const scp = await keys.sign({ sub: 'erin', aud: resource, scp: ['mcp:tools', 'refunds:write'] });
    for (const [token, allowed] of [[writer, true], [reader, false], [scp, true]]) {
      const result = await callWith(token, 'get-annotated-message', { messageType: 'success' });
      assert.equal(result.isError === true, !allowed, JSON.stringify(result));
      if (!allowed) assert.match(text(result), /needs refunds:write/);
    }
  });

  test('refused tokens: each is 401 invalid_token and nothing is forwarded', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = await keys.sign({ sub: 'mallory', aud: resource, scope: 'mcp:tools' });
    const [h, p, s] = good.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url')), sub: 'admin' })).toString('base64url')}.${s}`;
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
    // HS256 keyed with the issuer's public key, as published: the classic confusion.
    const hs256 = await new SignJWT({ sub: 'mallory', aud: resource, scope: 'mcp:tools', iss: keys.issuer, exp: now + 600 })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(JSON.stringify(keys.keys[0].publicJwk)));
    const stranger = await keys.newKey('unpublished');
    const cases = {
      expired: await keys.sign({ sub: 'm', aud: resource, scope: 'mcp:tools', iat: now - 7200, exp: now - 3600 }),
      'not yet valid': await keys.sign({ sub: 'm', aud: resource, scope: 'mcp:tools', nbf: now + 3600 }),
      'wrong issuer': await keys.sign({ sub: 'm', aud: resource, scope: 'mcp:tools', iss: 'http://127.0.0.1:1' }),
      'wrong audience': await keys.sign({ sub: 'm', aud: 'http://127.0.0.1:1/mcp', scope: 'mcp:tools' }),
      'no exp': await keys.sign({ sub: 'm', aud: resource, scope: 'mcp:tools', exp: undefined }),
      'alg none': none,
      'HS256 with the public key': hs256,
      'unknown kid': await keys.sign({ sub: 'm', aud: resource, scope: 'mcp:tools' }, { key: stranger }),
      'tampered payload': tampered,
      'not a token': 'garbage',
      'an algorithm name outside ASCII (quoted in the answer)': await keys.sign({ sub: 'm', aud: resource, scope: 'mcp:tools' }, { header: { alg: 'ES256\u2603' } }).catch(() => `${Buffer.from(JSON.stringify({ alg: 'ES256\u2603', kid: 'k1' })).toString('base64url')}.${p}.${s}`),
      'an empty sub': await keys.sign({ sub: '', aud: resource, scope: 'mcp:tools' }),
    };
    for (const [why, token] of Object.entries(cases)) {
      const answer = await postRaw(mcp, call('echo', { message: why }), { token });
      assert.equal(answer.status, 401, `${why}: ${answer.text}`);
      assert.match(answer.headers.get('www-authenticate'), /error="invalid_token"/, why);
      assert.match(answer.headers.get('www-authenticate'), /resource_metadata="/, why);
    }
    // The good one passes, so the refusals above are the claims', not the setup's.
    assert.equal((await postRaw(mcp, initialize, { token: good })).status, 200);
  });

  test('a token in the query string is refused, even beside a header', async () => {
    const token = await keys.sign({ sub: 'q', aud: resource, scope: 'mcp:tools' });
    assert.equal((await postRaw(`${mcp}?access_token=${token}`, tools(1))).status, 401);
    const both = await postRaw(`${mcp}?access_token=${token}`, tools(1), { token });
    assert.equal(both.status, 401);
    assert.match(both.headers.get('www-authenticate'), /error="invalid_request"/);
  });

  test('missing scope: 403 insufficient_scope naming the scope', async () => {
    const token = await keys.sign({ sub: 'm', aud: resource, scope: 'other' });
    const answer = await postRaw(mcp, tools(1), { token });
    assert.equal(answer.status, 403);
    assert.match(answer.headers.get('www-authenticate'), /error="insufficient_scope"/);
    assert.match(answer.headers.get('www-authenticate'), /scope="mcp:tools"/);
  });

  test('JWKS rotation is picked up without a restart', async () => {
    const next = await keys.rotate();
    const token = await keys.sign({ sub: 'rotated', aud: resource, scope: 'mcp:tools' }, { key: next });
    // The kid is new: it is fetched again once the refetch interval (1 s here) allows.
    await waitFor(async () => (await postRaw(mcp, initialize, { token })).status === 200, 'the rotated key accepted', { interval: 200 });
  });

  test('an issuer that is down fails closed with 503', async () => {
    const unreachable = await new SignJWT({ sub: 'm', aud: resource, scope: 'mcp:tools', iss: downIssuer, exp: Math.floor(Date.now() / 1000) + 600 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(keys.keys[0].privateKey);
    const answer = await postRaw(mcp, call('echo', { message: 'down' }), { token: unreachable });
    assert.equal(answer.status, 503);
    assert.match(answer.text, /could not be reached/);
  });

  test('admins from identity: a token with the configured claim may use the approvals API', async () => {
    const admin = await keys.sign({ sub: 'olivia', aud: resource, scope: 'mcp:tools', groups: ['toolgate-admins'] });
    const user = await keys.sign({ sub: 'peter', aud: resource, scope: 'mcp:tools', groups: ['staff'] });
    const elsewhere = await keys.sign({ sub: 'olivia', aud: 'http://127.0.0.1:1/mcp', groups: ['toolgate-admins'] });
    const get = (token) => fetch(`${base}/approvals/pending`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await get(admin)).status, 200);
    assert.equal((await get(ADMIN)).status, 200);
    assert.equal((await get(user)).status, 401);
    assert.equal((await get(elsewhere)).status, 401, 'a token for another resource is no admin here');
  });
});

describe('toolgate serve --oauth-issuer --resource (flags only, no grants file)', () => {
  let flags;
  let flagsMcp;
  before(async () => {
    const port = await freePort();
    flagsMcp = `http://localhost:${port}/mcp`;
    flags = spawn(process.execPath, [TOOLGATE, 'serve', '--policy', await tempFile('oauth-flags-policy.json', POLICY), '--upstream', everything.url,
      '--oauth-issuer', keys.issuer, '--resource', flagsMcp, '--port', String(port)], {
      cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOOLGATE_ADMIN_TOKEN: ADMIN },
    });
    await collectOutput(flags.stderr).until(/is listening on \S+\n[\s\S]*oauth: /, 'toolgate serve (flags) listening with OAuth');
  });
  after(async () => {
    if (flags && flags.exitCode === null) {
      flags.kill();
      await once(flags, 'exit');
    }
  });

  test('metadata, challenge, no anonymous loopback grant, limits per sub', async () => {
    const metadata = await (await fetch(`${new URL(flagsMcp).origin}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.equal(metadata.resource, flagsMcp);
    assert.deepEqual(metadata.authorization_servers, [keys.issuer]);
    const challenge = await postRaw(flagsMcp, initialize);
    assert.equal(challenge.status, 401, 'with OAuth, a loopback client without a token is no anonymous grant');
    assert.match(challenge.headers.get('www-authenticate'), /resource_metadata="http:\/\/localhost:\d+\/\.well-known\/oauth-protected-resource\/mcp"/);
    const client = async (sub) => connectClient(flagsMcp, await keys.sign({ sub, aud: flagsMcp, scope: 'mcp:tools' }));
    const [ann, ben] = [await client('ann'), await client('ben')];
    for (const n of [1, 2]) assert.equal(text(await ann.callTool({ name: 'echo', arguments: { message: String(n) } })), `Echo: ${n}`);
    assert.match(text(await ann.callTool({ name: 'echo', arguments: { message: '3' } })), /Rate limit exceeded/);
    assert.equal(text(await ben.callTool({ name: 'echo', arguments: { message: 'b' } })), 'Echo: b');
    await ann.close();
    await ben.close();
    const elsewhere = await keys.sign({ sub: 'ann', aud: mcp, scope: 'mcp:tools' });
    assert.equal((await postRaw(flagsMcp, initialize, { token: elsewhere })).status, 401, 'a token for the other proxy is refused here');
  });
});

describe('toolgate serve --resource on a host other than loopback', () => {
  test('the resource\'s host is a Host it answers to; another host still gets 403', async () => {
    const port = await freePort();
    const resourceUri = `http://mcp.test:${port}/mcp`;
    const server = spawn(process.execPath, [TOOLGATE, 'serve', '--policy', await tempFile('oauth-host-policy.json', POLICY), '--upstream', everything.url,
      '--oauth-issuer', keys.issuer, '--resource', resourceUri, '--port', String(port)], {
      cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TOOLGATE_ADMIN_TOKEN: ADMIN },
    });
    try {
      await collectOutput(server.stderr).until(/is listening on \S+\n[\s\S]*oauth: /, 'toolgate serve (mcp.test) listening');
      const token = await keys.sign({ sub: 'h', aud: resourceUri, scope: 'mcp:tools' });
      // fetch sets Host from the URL; node:http sends the one given.
      const post = (host) => new Promise((resolve, reject) => {
        const request = httpRequest({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: {
          host, 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`,
        } }, (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode));
        });
        request.on('error', reject);
        request.end(JSON.stringify(initialize));
      });
      assert.equal(await post(`mcp.test:${port}`), 200);
      assert.equal(await post(`evil.test:${port}`), 403);
    } finally {
      server.kill();
      await once(server, 'exit');
    }
  });
});

describe('the handler with OAuth', () => {
  test('the client\'s access token never goes upstream; configured upstream credentials do', async () => {
    const upstream = await startFakeUpstream((req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(echoResults(body)));
    });
    try {
      const toolgate = await loadToolgate();
      const handler = createHandler({
        servers: { default: { upstream: upstream.url, headers: { authorization: 'Bearer upstream-secret' }, policy: toolgate.compile({ version: '1', default: 'deny', tools: { echo: {} } }) } },
        counters: new MemoryCounterStore(),
        oauth: createOAuth(checkOAuthConfig({ issuers: [keys.issuer], resource: 'http://127.0.0.1:9/mcp' }, ['default'])),
        log: () => {},
      });
      const token = await keys.sign({ sub: 'u', aud: 'http://127.0.0.1:9/mcp' });
      const response = await handler.fetch(new Request('http://127.0.0.1:9/mcp', {
        method: 'POST', body: JSON.stringify(call('echo', { message: 'x' })),
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
      }));
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(upstream.requests.length, 1);
      const sent = JSON.stringify(upstream.requests[0]);
      assert.ok(!sent.includes(token) && !sent.includes(token.split('.')[2]), 'the access token went upstream');
      assert.equal(upstream.requests[0].headers.authorization, 'Bearer upstream-secret');
    } finally {
      await upstream.stop();
    }
  });
});

describe('oauth.js on its own', () => {
  test('two servers: a token for one is refused on the other', async () => {
    const oauth = createOAuth(checkOAuthConfig({ issuers: [keys.issuer], resource: 'http://127.0.0.1:9/mcp' }, ['shop', 'docs']));
    const shop = await keys.sign({ sub: 's', aud: 'http://127.0.0.1:9/mcp/shop' });
    assert.ok((await oauth.authenticate(shop, 'shop')).grant);
    assert.equal((await oauth.authenticate(shop, 'docs')).status, 401);
  });

  test('a resource given as an origin: metadata at the root and at /mcp; aud with or without the slash', async () => {
    const oauth = createOAuth(checkOAuthConfig({ issuers: [keys.issuer], resource: 'http://127.0.0.1:9' }, ['default']));
    assert.equal(oauth.metadata('/.well-known/oauth-protected-resource').resource, 'http://127.0.0.1:9');
    assert.equal(oauth.metadata('/.well-known/oauth-protected-resource/mcp').resource, 'http://127.0.0.1:9');
    for (const aud of ['http://127.0.0.1:9', 'http://127.0.0.1:9/', ['x', 'http://127.0.0.1:9']]) {
      assert.ok((await oauth.authenticate(await keys.sign({ sub: 's', aud }), 'default')).grant, JSON.stringify(aud));
    }
    assert.equal((await oauth.authenticate(await keys.sign({ sub: 's', aud: 'http://127.0.0.1:9/other' }), 'default')).status, 401);
  });

  test('opaque tokens through oidc-provider\'s RFC 7662 introspection; the grant from client_id', async () => {
    const opaque = 'http://127.0.0.1:9/opaque';
    const oauth = createOAuth(checkOAuthConfig({
      issuers: [{ issuer: oidc.issuer, introspection: { client_id: 'toolgate', client_secret: 'introspection-secret' } }],
      resource: opaque, grant_claim: 'client_id', scopes: ['mcp:tools'],
    }, ['default']));
    const token = await machineToken(oidc.issuer, opaque);
    assert.doesNotMatch(token, /\./, 'an opaque token');
    const answer = await oauth.authenticate(token, 'default');
    assert.ok(answer.grant, JSON.stringify(answer));
    assert.equal(answer.grant.id, 'machine');
    assert.deepEqual(answer.grant.attributes.scope, ['mcp:tools']);
    // Minted for another resource: active, but not for this one.
    const other = await machineToken(oidc.issuer, 'http://127.0.0.1:8/opaque');
    const refused = await oauth.authenticate(other, 'default');
    assert.equal(refused.status, 401);
    assert.match(refused.description, /aud/);
    assert.equal((await oauth.authenticate('not-a-token-the-issuer-made', 'default')).status, 401);
    // Without introspection configured, an opaque token is refused outright.
    const jwtOnly = createOAuth(checkOAuthConfig({ issuers: [oidc.issuer], resource: opaque }, ['default']));
    assert.equal((await jwtOnly.authenticate(token, 'default')).status, 401);
  });

  test('made-up kids re-fetch the JWKS at a bounded rate', async () => {
    const issuer = await startKeyIssuer();
    try {
      const oauth = createOAuth(checkOAuthConfig({ issuers: [issuer.issuer], resource: 'http://127.0.0.1:9/mcp' }, ['default']));
      const good = await issuer.sign({ sub: 'a', aud: 'http://127.0.0.1:9/mcp' });
      assert.ok((await oauth.authenticate(good, 'default')).grant);
      const before = issuer.jwksFetches;
      for (let i = 0; i < 50; i += 1) {
        const key = await issuer.newKey(`made-up-${i}`);
        const answer = await oauth.authenticate(await issuer.sign({ sub: 'a', aud: 'http://127.0.0.1:9/mcp' }, { key }), 'default');
        assert.equal(answer.status, 401);
      }
      assert.ok(issuer.jwksFetches - before <= 1, `${issuer.jwksFetches - before} fetches for 50 made-up kids`);
    } finally {
      await issuer.stop();
    }
  });

  test('a configured JWKS URL is used without discovery', async () => {
    const issuerWithoutDiscovery = `${keys.issuer}/no-discovery`;
    const oauth = createOAuth(checkOAuthConfig({ issuers: [{ issuer: issuerWithoutDiscovery, jwks_uri: `${keys.issuer}/jwks` }], resource: 'http://127.0.0.1:9/mcp' }, ['default']));
    const token = await keys.sign({ iss: issuerWithoutDiscovery, sub: 'j', aud: 'http://127.0.0.1:9/mcp' });
    assert.equal((await oauth.authenticate(token, 'default')).grant?.id, 'j');
    // The same issuer without jwks_uri has no discovery document: 503, fail closed.
    const lost = createOAuth(checkOAuthConfig({ issuers: [issuerWithoutDiscovery], resource: 'http://127.0.0.1:9/mcp' }, ['default']));
    assert.equal((await lost.authenticate(token, 'default')).status, 503);
  });

  test('--config: "oauth" with per-server resource and scopes; flags over the file', async () => {
    const policy = await tempFile('oauth-per-server-policy.json', POLICY);
    const config = await tempFile('oauth-per-server.json', {
      servers: {
        shop: { upstream: 'http://127.0.0.1:1/mcp', policy, oauth: { scopes: ['shop:tools'] } },
        docs: { upstream: 'http://127.0.0.1:2/mcp', policy, oauth: { resource: 'https://docs.example/mcp' } },
        misc: { upstream: 'http://127.0.0.1:3/mcp', policy },
      },
      oauth: { issuers: ['https://as.example'], resource: 'https://mcp.example/mcp', scopes: ['mcp:tools'] },
    });
    const { oauth } = await serversFrom({ config });
    const checked = checkOAuthConfig(oauth, ['shop', 'docs', 'misc']);
    assert.deepEqual(checked.servers.shop, { ...checked.servers.shop, resource: 'https://mcp.example/mcp/shop', scopes: ['shop:tools'] });
    assert.deepEqual(checked.servers.docs, { ...checked.servers.docs, resource: 'https://docs.example/mcp', scopes: ['mcp:tools'] });
    assert.equal(checked.servers.misc.resource, 'https://mcp.example/mcp/misc');
    const metadata = createOAuth(checked).metadata('/.well-known/oauth-protected-resource/mcp/shop');
    assert.deepEqual([metadata.resource, metadata.scopes_supported], ['https://mcp.example/mcp/shop', ['mcp:tools', 'shop:tools']]);
    const flagged = await serversFrom({ config, 'oauth-issuer': ['https://other.example'], 'oauth-jwks-url': 'https://other.example/keys', 'oauth-grant-claim': 'azp' });
    assert.deepEqual(flagged.oauth.issuers, [{ issuer: 'https://other.example', jwks_uri: 'https://other.example/keys' }]);
    assert.equal(flagged.oauth.grant_claim, 'azp');
    await assert.rejects(serversFrom({ policy, upstream: 'http://127.0.0.1:1/mcp', 'oauth-issuer': ['https://as.example'] }), /--resource/);
    await assert.rejects(serversFrom({ policy, upstream: 'http://127.0.0.1:1/mcp', resource: 'https://mcp.example/mcp' }), /needs --oauth-issuer/);
    await assert.rejects(serversFrom({ policy, upstream: 'http://127.0.0.1:1/mcp', 'oauth-issuer': ['https://as.example'], 'public-url': 'https://p.example', 'oauth-admin': ['groups'] }), /CLAIM=VALUE/);
  });

  test('configuration: HMAC and none are refused; a sub equal to a static grant id does not get its policy', () => {
    for (const alg of ['HS256', 'none']) {
      assert.throws(() => checkOAuthConfig({ issuers: [{ issuer: 'https://as.example', algorithms: [alg] }], resource: 'https://r.example/mcp' }, ['default']), /not allowed/);
    }
    assert.throws(() => checkOAuthConfig({ issuers: ['https://as.example'] }, ['default']), /resource/);
  });
});
