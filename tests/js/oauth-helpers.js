// Authorization servers for the OAuth tests:
//  - startOidcProvider(): a real OAuth 2.1 / OpenID Provider (oidc-provider from
//    npm: discovery, JWKS, dynamic client registration, authorization code +
//    PKCE, JWT access tokens for a resource indicator, RFC 8707), with its
//    development login/consent pages, which driveLogin() fills in as a browser
//    would (cookies, forms, redirects);
//  - startKeyIssuer(): a small issuer made here with jose (RFC 8414 discovery
//    and a JWKS), whose tokens a test signs as it likes: expired, for another
//    audience, with a key the issuer does not publish, and so on; its keys can
//    be rotated and it can be stopped.
//  - sdkOAuthProvider(): the MCP SDK client's OAuthClientProvider, in memory.
import { once } from 'node:events';
import { createServer } from 'node:http';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import Provider, { errors as oidcErrors } from 'oidc-provider';

async function listen(handler) {
  let current = handler;
  const server = createServer((req, res) => current(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    url: `http://127.0.0.1:${server.address().port}`,
    set: (next) => { current = next; },
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/**
 * oidc-provider on a free port. Access tokens are JWTs (RS256) with `aud` the
 * requested resource (any http://127.0.0.1 or localhost URL; opaque for one whose
 * path ends in /opaque), the scopes asked for, and the custom claim `team` from
 * `teams` (account id -> team). Static clients: `toolgate` (secret
 * `introspection-secret`, for RFC 7662) and `machine` (secret `machine-secret`,
 * client_credentials).
 */
export async function startOidcProvider({ teams = {} } = {}) {
  const http = await listen((req, res) => res.end());
  const issuer = http.url;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'oidc-1', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    jwks: { keys: [jwk] },
    cookies: { keys: ['toolgate-test-cookie-key-0123456789'] },
    scopes: ['openid', 'offline_access', 'mcp:tools', 'refunds:write'],
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    // toolgate's own credentials for introspection, and a machine client.
    clients: [
      { client_id: 'toolgate', client_secret: 'introspection-secret', grant_types: [], response_types: [], redirect_uris: [] },
      { client_id: 'machine', client_secret: 'machine-secret', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    ],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      registration: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf?.[0],
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (!/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(resource)) throw new oidcErrors.InvalidTarget();
          // A resource whose path ends in /opaque gets opaque tokens (for introspection).
          const format = resource.endsWith('/opaque') ? 'opaque' : 'jwt';
          return { scope: 'mcp:tools refunds:write', audience: resource, accessTokenTTL: 600, accessTokenFormat: format, ...(format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}) };
        },
      },
    },
    extraTokenClaims: (ctx, token) => (token.accountId ? { team: teams[token.accountId] ?? 'none' } : undefined),
    pkce: { required: () => true },
  });
  http.set(provider.callback());
  return { issuer, provider, stop: () => http.stop() };
}

/**
 * Follows an authorization URL through oidc-provider's development login and
 * consent pages as `login`, as a browser would, and returns the URL it ends
 * at (the client's redirect_uri with ?code=...).
 */
export async function driveLogin(authorizationUrl, login) {
  const cookies = new Map();
  const keep = (response) => {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  };
  const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  let url = String(authorizationUrl);
  let method = 'GET';
  let body;
  for (let step = 0; step < 20; step += 1) {
    const response = await fetch(url, {
      method, body, redirect: 'manual',
      headers: { cookie: cookieHeader(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    });
    keep(response);
    if (response.status >= 300 && response.status < 400) {
      const next = new URL(response.headers.get('location'), url);
      await response.body?.cancel();
      if (!next.href.startsWith(new URL(authorizationUrl).origin)) return next;
      url = next.href;
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`the authorization server answered ${response.status}: ${html.slice(0, 500)}`);
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
    if (!form) throw new Error(`no form on the authorization server's page: ${html.slice(0, 500)}`);
    const prompt = /name="prompt" value="([^"]+)"/.exec(form[2])?.[1];
    url = new URL(form[1].replace(/&amp;/g, '&'), url).href;
    method = 'POST';
    body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt }).toString();
  }
  throw new Error('the login did not end at the redirect URI');
}

/** The MCP SDK's OAuthClientProvider, in memory; `onRedirect(url)` is told where to send the user. */
export function sdkOAuthProvider({ redirectUrl = 'http://localhost:9/callback', onRedirect, client } = {}) {
  // Not `state`: the SDK calls a provider's state() for the OAuth state parameter.
  const store = { client, tokens: undefined, verifier: undefined, authorizationUrl: undefined };
  return {
    store,
    get redirectUrl() {
      return redirectUrl;
    },
    get clientMetadata() {
      return { client_name: 'toolgate oauth test', redirect_uris: [redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
    },
    clientInformation: () => store.client,
    saveClientInformation: (info) => { store.client = info; },
    tokens: () => store.tokens,
    saveTokens: (tokens) => { store.tokens = tokens; },
    redirectToAuthorization: (url) => {
      store.authorizationUrl = url;
      onRedirect?.(url);
    },
    saveCodeVerifier: (verifier) => { store.verifier = verifier; },
    codeVerifier: () => store.verifier,
  };
}

/**
 * An issuer made with jose: RFC 8414 metadata and a JWKS at /jwks. `sign(claims,
 * {key, header})` mints a token; `rotate()` publishes a new key (returned)
 * beside the old; `stop()` takes it off the network.
 */
export async function startKeyIssuer() {
  const keys = [await newKey('k1')];
  let jwksFetches = 0;
  const http = await listen(async (req, res) => {
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/oauth-authorization-server') return send(200, { issuer: http.url, jwks_uri: `${http.url}/jwks`, token_endpoint: `${http.url}/token`, response_types_supported: ['code'] });
    if (req.url === '/jwks') {
      jwksFetches += 1;
      return send(200, { keys: keys.map((k) => k.publicJwk) });
    }
    return send(404, { error: 'not_found' });
  });
  return {
    issuer: http.url,
    keys,
    get jwksFetches() {
      return jwksFetches;
    },
    newKey,
    async rotate() {
      const key = await newKey(`k${keys.length + 1}`);
      keys.push(key);
      return key;
    },
    /** A token: iat now, exp in 10 minutes, iss this issuer, unless claims say otherwise. */
    async sign(claims, { key = keys[0], header = {} } = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: http.url, iat: now, exp: now + 600, ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt', ...header })
        .sign(key.privateKey);
    },
    stop: () => http.stop(),
  };
}

async function newKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, publicKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** A client_credentials access token for `resource` from oidc-provider's `machine` client. */
export async function machineToken(issuer, resource, scope = 'mcp:tools') {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('machine:machine-secret').toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }).toString(),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`token endpoint: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}
