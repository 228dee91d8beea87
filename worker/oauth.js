// toolgate as an OAuth 2.1 resource server, as the MCP authorization spec
// asks (2025-06-18, 2025-11-25): Protected Resource Metadata (RFC 9728) for
// every MCP endpoint, the 401/403 challenges, access tokens verified (JWTs
// with the issuer's keys; opaque tokens by RFC 7662 introspection when
// configured), and the grant a verified token stands for.
//
// Web APIs and `jose` only, so the same module runs on Node and in workerd.
//
// What a token must be to be taken (anything else is 401 invalid_token):
//   - in the Authorization header (never the query string or a form body);
//   - a JWT signed with an algorithm of the allow-list (asymmetric only: never
//     `none`, never an HMAC, so a public key can never serve as a shared secret),
//     by a key of its issuer's JWKS (found through RFC 8414 or OpenID discovery,
//     or configured); a `kid` the cached JWKS lacks re-fetches it, at most once
//     per `jwksCooldownMs`;
//   - `iss` exactly a configured issuer; `aud` containing this endpoint's
//     canonical URI (RFC 8707: a token minted for another resource is refused);
//     `exp` required, `exp`/`nbf` within `clockSkewSeconds` (default 30 s);
//   - or, opaque, `active` by the issuer's introspection endpoint with the same
//     `iss`/`aud`/`exp` checks.
// An issuer whose keys or introspection cannot be reached is a 503 (fail closed).
import { grantFromClaims, scopesOf } from './claims.js';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, errors as joseErrors, customFetch } from 'jose';

/** Asymmetric JWS algorithms: the default allow-list and all that can be allowed. */
export const ASYMMETRIC_ALGORITHMS = Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);
const WELL_KNOWN = '/.well-known/oauth-protected-resource';
const DEFAULT_SKEW_SECONDS = 30;
const CACHE_MAX = 10_000;

export class OAuthConfigError extends Error {
  name = 'OAuthConfigError';
}

/** A refusal: an HTTP status, the RFC 6750 error code, what to tell the client. */
class Refusal {
  constructor(status, error, description) {
    this.status = status;
    this.error = error;
    this.description = description;
  }
}

const isHttpUrl = (value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
};

// A resource URI as compared with `aud`: no fragment, no trailing slash.
const canonical = (uri) => {
  const url = new URL(uri);
  url.hash = '';
  return url.href.replace(/\/+$/, '');
};

/**
 * The OAuth part of a proxy's configuration, checked: throws OAuthConfigError.
 * @param {object} config
 * @param {(string | {issuer: string, jwks_uri?: string, algorithms?: string[],
 *   introspection?: {endpoint?: string, client_id: string, client_secret: string}})[]} config.issuers
 * @param {string} config.resource the canonical URI of /mcp; server <name> is `${resource}/<name>`
 * @param {Record<string, {resource?: string, scopes?: string[]}>} [config.servers] per server, where it differs
 * @param {string} [config.grant_claim] the claim that is the grant id (default "sub")
 * @param {string[]} [config.scopes] scopes every token must carry (403 insufficient_scope otherwise)
 * @param {string[]} [config.scopes_supported] advertised besides the required ones
 * @param {number} [config.clock_skew_seconds] tolerance on exp/nbf (default 30)
 * @param {number} [config.jwks_refetch_seconds] a kid the cached JWKS lacks fetches it again at most this often (default 30)
 * @param {{claim: string, values: string[]}} [config.admin] tokens whose claim holds one of the values are admins
 */
export function checkOAuthConfig(config, serverNames) {
  const fail = (message) => {
    throw new OAuthConfigError(`oauth: ${message}`);
  };
  if (config === null || typeof config !== 'object' || Array.isArray(config)) fail('must be an object');
  const known = ['issuers', 'resource', 'servers', 'grant_claim', 'scopes', 'scopes_supported', 'clock_skew_seconds', 'admin', 'algorithms', 'jwks_refetch_seconds'];
  for (const key of Object.keys(config)) if (!known.includes(key)) fail(`unknown field "${key}" (expected ${known.join(', ')})`);
  if (!Array.isArray(config.issuers) || config.issuers.length === 0) fail('"issuers" must name at least one issuer (--oauth-issuer URL)');
  const issuers = config.issuers.map((entry, i) => {
    const issuer = typeof entry === 'string' ? { issuer: entry } : entry;
    if (issuer === null || typeof issuer !== 'object') fail(`issuers[${i}] must be a URL or {"issuer": URL, ...}`);
    for (const key of Object.keys(issuer)) {
      if (!['issuer', 'jwks_uri', 'algorithms', 'introspection'].includes(key)) fail(`issuers[${i}]: unknown field "${key}"`);
    }
    if (!isHttpUrl(issuer.issuer)) fail(`issuers[${i}]: the issuer must be an http(s) URL, not ${JSON.stringify(issuer.issuer)}`);
    if (issuer.jwks_uri !== undefined && !isHttpUrl(issuer.jwks_uri)) fail(`issuers[${i}]: jwks_uri must be an http(s) URL`);
    const algorithms = issuer.algorithms ?? config.algorithms ?? ASYMMETRIC_ALGORITHMS;
    if (!Array.isArray(algorithms) || algorithms.length === 0) fail(`issuers[${i}]: algorithms must be a non-empty list`);
    for (const alg of algorithms) {
      if (!ASYMMETRIC_ALGORITHMS.includes(alg)) fail(`algorithm ${JSON.stringify(alg)} is not allowed: only asymmetric ones (${ASYMMETRIC_ALGORITHMS.join(', ')}); never "none" or an HMAC`);
    }
    const introspection = issuer.introspection;
    if (introspection !== undefined) {
      if (introspection === null || typeof introspection !== 'object') fail(`issuers[${i}].introspection must be an object`);
      if (introspection.endpoint !== undefined && !isHttpUrl(introspection.endpoint)) fail(`issuers[${i}].introspection.endpoint must be an http(s) URL`);
      if (typeof introspection.client_id !== 'string' || typeof introspection.client_secret !== 'string') {
        fail(`issuers[${i}].introspection needs "client_id" and "client_secret" (toolgate's own credentials at the issuer)`);
      }
    }
    return { issuer: issuer.issuer, jwksUri: issuer.jwks_uri, algorithms: [...algorithms], introspection };
  });
  if (new Set(issuers.map((i) => i.issuer)).size !== issuers.length) fail('an issuer is listed twice');
  if (!isHttpUrl(config.resource)) fail('"resource" (--resource, or --public-url) must be the http(s) URL clients use for /mcp');
  const stringList = (value, what) => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((s) => typeof s !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) fail(`${what} must be a list of scope names`);
    return value;
  };
  const scopes = stringList(config.scopes, '"scopes"');
  const grantClaim = config.grant_claim ?? 'sub';
  if (typeof grantClaim !== 'string' || grantClaim === '') fail('"grant_claim" must be a claim name');
  const skew = config.clock_skew_seconds ?? DEFAULT_SKEW_SECONDS;
  if (!Number.isFinite(skew) || skew < 0 || skew > 300) fail('"clock_skew_seconds" must be between 0 and 300');
  const refetch = config.jwks_refetch_seconds ?? 30;
  if (!Number.isFinite(refetch) || refetch < 1 || refetch > 3600) fail('"jwks_refetch_seconds" must be between 1 and 3600');
  let admin = null;
  if (config.admin !== undefined) {
    const a = config.admin;
    if (a === null || typeof a !== 'object' || typeof a.claim !== 'string' || !Array.isArray(a.values) || a.values.length === 0 || a.values.some((v) => typeof v !== 'string')) {
      fail('"admin" must be {"claim": "<claim name>", "values": ["<value>", ...]}');
    }
    admin = { claim: a.claim, values: [...a.values] };
  }
  const base = canonical(config.resource);
  const servers = {};
  for (const name of serverNames) {
    const own = config.servers?.[name] ?? {};
    const resource = own.resource ?? (name === 'default' ? base : `${base}/${encodeURIComponent(name)}`);
    if (!isHttpUrl(resource)) fail(`servers.${name}.resource must be an http(s) URL`);
    // `resource` as configured (what metadata says and clients ask tokens for);
    // `audiences`: what `aud` may hold for it, with or without a trailing slash.
    const plain = canonical(resource);
    servers[name] = {
      resource: resource.replace(/#.*$/, ''), audiences: [...new Set([resource.replace(/#.*$/, ''), plain, `${plain}/`])],
      mcpPath: name === 'default' ? '/mcp' : `/mcp/${name}`,
      scopes: own.scopes === undefined ? scopes : stringList(own.scopes, `servers.${name}.scopes`),
    };
  }
  for (const name of Object.keys(config.servers ?? {})) if (!serverNames.includes(name)) fail(`servers.${name}: no such server is configured`);
  return {
    issuers, servers, grantClaim, skew, admin, jwksRefetchMs: refetch * 1000,
    scopesSupported: [...new Set([...scopes, ...Object.values(servers).flatMap((s) => s.scopes), ...stringList(config.scopes_supported, '"scopes_supported"')])],
  };
}

/** Where a resource's metadata is (RFC 9728 §3.1: the well-known path inserted before the resource's path). */
export function metadataUrlOf(resource) {
  const url = new URL(resource);
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${WELL_KNOWN}${path}`;
}

/**
 * @param {ReturnType<typeof checkOAuthConfig>} config
 * @param {{fetch?: typeof fetch, sha256Hex?: (text: string) => string | Promise<string>, now?: () => number,
 *   jwksCooldownMs?: number, discoveryRetryMs?: number, log?: Function}} [runtime]
 *   fetch: how discovery, JWKS and introspection are fetched (default the global fetch);
 *   sha256Hex: the hash verified tokens are cached under; now: ms since the epoch.
 */
export function createOAuth(config, runtime = {}) {
  const {
    fetch: fetchFn = (...args) => fetch(...args), now = Date.now, jwksCooldownMs = config.jwksRefetchMs ?? 30_000, discoveryRetryMs = 5_000,
    log = () => {},
  } = runtime;
  const sha256Hex = runtime.sha256Hex ?? (async (text) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))), (b) => b.toString(16).padStart(2, '0')).join(''));
  const byIssuer = new Map(config.issuers.map((issuer) => [issuer.issuer, { ...issuer, metadata: null, failedAt: -Infinity, jwks: null }]));
  // Verified tokens by SHA-256 of (resource, token), until exp (or, for
  // introspected tokens, a minute at most: revocation should show).
  const cache = new Map();

  const timed = async (url, init = {}) => {
    const response = await fetchFn(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    return response;
  };

  // RFC 8414 §3.1 first (the well-known path inserted before the issuer's
  // path), then OpenID Connect Discovery (appended). The document's `issuer`
  // must be the configured one (RFC 8414 §3.3).
  // Concurrent first requests share one discovery (a burst of tokens at start-up
  // makes one round of fetches, not one per request).
  function discover(entry) {
    if (entry.metadata) return Promise.resolve(entry.metadata);
    entry.discovering ??= discoverOnce(entry).finally(() => {
      entry.discovering = null;
    });
    return entry.discovering;
  }

  async function discoverOnce(entry) {
    if (now() - entry.failedAt < discoveryRetryMs) throw new Refusal(503, 'temporarily_unavailable', `the authorization server ${entry.issuer} could not be reached a moment ago; try again shortly`);
    const url = new URL(entry.issuer);
    const path = url.pathname.replace(/\/+$/, '');
    // The last: the RFC 8414 path appended, as some servers publish it.
    const candidates = [...new Set([`${url.origin}/.well-known/oauth-authorization-server${path}`, `${url.origin}${path}/.well-known/openid-configuration`, `${url.origin}${path}/.well-known/oauth-authorization-server`])];
    let reason = 'no discovery document';
    for (const candidate of candidates) {
      try {
        const response = await timed(candidate, { headers: { accept: 'application/json' } });
        if (!response.ok) {
          reason = `${candidate} answered ${response.status}`;
          await response.body?.cancel();
          continue;
        }
        const document = await response.json();
        if (document?.issuer !== entry.issuer) {
          reason = `${candidate} names the issuer ${JSON.stringify(document?.issuer)}, not ${JSON.stringify(entry.issuer)}`;
          continue;
        }
        entry.metadata = document;
        return document;
      } catch (error) {
        reason = `${candidate}: ${error?.message ?? error}`;
      }
    }
    entry.failedAt = now();
    log('warn', 'OAuth discovery failed', { issuer: entry.issuer, reason });
    throw new Refusal(503, 'temporarily_unavailable', `the authorization server ${entry.issuer} could not be reached; nothing was forwarded`);
  }

  async function keysOf(entry) {
    if (entry.jwks) return entry.jwks;
    const jwksUri = entry.jwksUri ?? (await discover(entry)).jwks_uri;
    if (!isHttpUrl(jwksUri)) throw new Refusal(503, 'temporarily_unavailable', `the authorization server ${entry.issuer} publishes no jwks_uri`);
    // Another request may have made the key set while discovery ran: one set per issuer.
    if (entry.jwks) return entry.jwks;
    // jose caches the key set, and fetches it again for a kid it lacks at
    // most once per cooldown: an attacker's made-up kids cost one fetch.
    entry.jwks = createRemoteJWKSet(new URL(jwksUri), {
      cooldownDuration: jwksCooldownMs, cacheMaxAge: 10 * 60_000, timeoutDuration: 10_000,
      [customFetch]: (url, init) => fetchFn(url, init),
    });
    return entry.jwks;
  }

  async function verifyJwt(token, server) {
    let claims;
    let header;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      throw new Refusal(401, 'invalid_token', 'the access token is not a well-formed JWT');
    }
    const entry = typeof claims.iss === 'string' && byIssuer.get(claims.iss);
    if (!entry) throw new Refusal(401, 'invalid_token', 'the access token was not issued by an authorization server this resource trusts');
    if (!entry.algorithms.includes(header.alg)) throw new Refusal(401, 'invalid_token', `the access token's algorithm ${JSON.stringify(header.alg)} is not accepted`);
    const jwks = await keysOf(entry);
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: entry.issuer, audience: server.audiences, algorithms: entry.algorithms, clockTolerance: config.skew,
        requiredClaims: ['exp'], currentDate: new Date(now()),
      });
      return payload;
    } catch (error) {
      throw joseRefusal(error, entry);
    }
  }

  function joseRefusal(error, entry) {
    if (error instanceof Refusal) return error;
    if (error instanceof joseErrors.JWTExpired) return new Refusal(401, 'invalid_token', 'the access token has expired');
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      if (error.claim === 'aud') return new Refusal(401, 'invalid_token', 'the access token was not issued for this resource (aud)');
      if (error.claim === 'nbf') return new Refusal(401, 'invalid_token', 'the access token is not valid yet (nbf)');
      return new Refusal(401, 'invalid_token', `the access token's "${error.claim}" claim is not acceptable`);
    }
    if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) {
      return new Refusal(401, 'invalid_token', 'the access token was signed with a key its issuer does not publish');
    }
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new Refusal(401, 'invalid_token', 'the access token\'s signature is not valid');
    if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid || error?.code === 'ERR_JOSE_GENERIC' || error instanceof TypeError) {
      // The key set could not be fetched (or was not a key set): fail closed,
      // and fetch it afresh next time.
      entry.jwks = null;
      entry.metadata = null;
      log('warn', 'the issuer\'s keys could not be fetched', { issuer: entry.issuer, error: error.message });
      return new Refusal(503, 'temporarily_unavailable', `the keys of the authorization server ${entry.issuer} could not be fetched; nothing was forwarded`);
    }
    if (error instanceof joseErrors.JOSEError) return new Refusal(401, 'invalid_token', 'the access token could not be verified');
    throw error;
  }

  async function introspect(token, server) {
    const entries = [...byIssuer.values()].filter((e) => e.introspection);
    if (entries.length === 0) throw new Refusal(401, 'invalid_token', 'the access token is not a JWT, and no introspection endpoint is configured for opaque tokens');
    let lastUnavailable = null;
    for (const entry of entries) {
      let endpoint;
      let answer;
      try {
        endpoint = entry.introspection.endpoint ?? (await discover(entry)).introspection_endpoint;
        if (!isHttpUrl(endpoint)) throw new Refusal(503, 'temporarily_unavailable', `the authorization server ${entry.issuer} publishes no introspection_endpoint`);
        const basic = btoa(`${encodeURIComponent(entry.introspection.client_id)}:${encodeURIComponent(entry.introspection.client_secret)}`);
        const response = await timed(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: `Basic ${basic}` },
          body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        });
        if (!response.ok) throw new Error(`introspection answered ${response.status}`);
        answer = await response.json();
      } catch (error) {
        lastUnavailable = error instanceof Refusal ? error : new Refusal(503, 'temporarily_unavailable', `the introspection endpoint of ${entry.issuer} could not be used; nothing was forwarded`);
        log('warn', 'introspection failed', { issuer: entry.issuer, error: String(error?.description ?? error?.message ?? error) });
        continue;
      }
      if (answer?.active !== true) continue;
      if (answer.iss !== undefined && answer.iss !== entry.issuer) continue;
      const audiences = Array.isArray(answer.aud) ? answer.aud : answer.aud === undefined ? [] : [answer.aud];
      if (!audiences.some((aud) => server.audiences.includes(aud))) {
        throw new Refusal(401, 'invalid_token', 'the access token was not issued for this resource (aud)');
      }
      const seconds = now() / 1000;
      if (typeof answer.exp !== 'number' || answer.exp + config.skew < seconds) throw new Refusal(401, 'invalid_token', 'the access token has expired');
      if (typeof answer.nbf === 'number' && answer.nbf - config.skew > seconds) throw new Refusal(401, 'invalid_token', 'the access token is not valid yet (nbf)');
      return { ...answer, iss: entry.issuer, introspected: true };
    }
    throw lastUnavailable ?? new Refusal(401, 'invalid_token', 'the access token is not active');
  }

  /** The claims of a token verified for `server` (cached); throws a Refusal. */
  async function claimsOf(token, server) {
    const key = await sha256Hex(`${server.resource}\n${token}`);
    const seconds = now() / 1000;
    const hit = cache.get(key);
    if (hit) {
      if (hit.until > seconds && !(typeof hit.claims.nbf === 'number' && hit.claims.nbf - config.skew > seconds)) return hit.claims;
      cache.delete(key);
    }
    const isJwt = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
    const claims = isJwt ? await verifyJwt(token, server) : await introspect(token, server);
    const until = claims.introspected ? Math.min(claims.exp + config.skew, seconds + 60) : claims.exp + config.skew;
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
    cache.set(key, { claims, until });
    return claims;
  }

  /** A grant from verified claims: id from the grant claim, every other claim as an attribute, scope as a list. */
  // The grant of each cached claims object, made once (a cache hit costs a hash and two lookups).
  const grants = new WeakMap();
  function grantOf(claims) {
    const made = grants.get(claims);
    if (made) return made;
    const { introspected, ...plain } = claims;
    const grant = grantFromClaims(plain, config.grantClaim);
    if (!grant) throw new Refusal(401, 'invalid_token', `the access token has no "${config.grantClaim}" claim to name its grant`);
    const frozen = Object.freeze({ id: grant.id, attributes: Object.freeze(grant.attributes), oauth: true });
    grants.set(claims, frozen);
    return frozen;
  }

  const challenge = (serverName, refusal) => {
    const server = config.servers[serverName];
    const parts = [`resource_metadata="${metadataUrlOf(server.resource)}"`];
    if (server.scopes.length > 0) parts.push(`scope="${server.scopes.join(' ')}"`);
    if (refusal?.error && refusal.error !== 'temporarily_unavailable') {
      parts.unshift(`error="${refusal.error}"`);
      // A header value is printable ASCII here (a description may quote a token's header).
      parts.push(`error_description="${refusal.description.replace(/["\\]/g, '').replace(/[^\x20-\x7e]/g, '?')}"`);
    }
    return `Bearer ${parts.join(', ')}`;
  };

  return {
    config,
    servesMetadata: (path) => path === WELL_KNOWN || path.startsWith(`${WELL_KNOWN}/`),

    /** RFC 9728 metadata for a well-known path, or null (then 404). */
    metadata(path) {
      const server = Object.entries(config.servers).find(([, s]) => new URL(metadataUrlOf(s.resource)).pathname === path)
        // The path form of the MCP path it is served at, whatever its resource URI.
        ?? Object.entries(config.servers).find(([, s]) => `${WELL_KNOWN}${s.mcpPath}` === path)
        // The root form: the default server's, or the only server's.
        ?? (path === WELL_KNOWN ? (config.servers.default ? ['default', config.servers.default] : Object.keys(config.servers).length === 1 ? Object.entries(config.servers)[0] : undefined) : undefined);
      if (!server) return null;
      return {
        resource: server[1].resource,
        authorization_servers: config.issuers.map((i) => i.issuer),
        scopes_supported: config.scopesSupported,
        bearer_methods_supported: ['header'],
        resource_name: `toolgate (${server[0]})`,
      };
    },

    /**
     * The grant of a request to server `serverName`: { grant } or
     * { status, headers, error, description } to answer with.
     */
    async authenticate(token, serverName, { queryToken = false } = {}) {
      const server = config.servers[serverName];
      const refuse = (refusal) => ({
        status: refusal.status, error: refusal.error, description: refusal.description,
        headers: refusal.status === 503 ? { 'retry-after': '5' } : { 'www-authenticate': challenge(serverName, refusal) },
      });
      if (queryToken) return refuse(new Refusal(401, 'invalid_request', 'access tokens are taken only in the Authorization header, never in the URL'));
      if (!token) return refuse(new Refusal(401, null, 'this resource needs an OAuth access token: "Authorization: Bearer <token>"'));
      try {
        const claims = await claimsOf(token, server);
        const grant = grantOf(claims);
        const missing = server.scopes.filter((s) => !grant.attributes.scope.includes(s));
        if (missing.length > 0) {
          return {
            status: 403, error: 'insufficient_scope', description: `the access token lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(' ')}`,
            headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="${server.scopes.join(' ')}", resource_metadata="${metadataUrlOf(server.resource)}"` },
          };
        }
        return { grant };
      } catch (error) {
        if (error instanceof Refusal) return refuse(error);
        throw error;
      }
    },

    /** Whether a token makes its bearer an admin (config.admin), for any resource this proxy serves. */
    async isAdmin(token) {
      if (!config.admin || !token) return false;
      for (const server of Object.values(config.servers)) {
        try {
          const claims = await claimsOf(token, server);
          const value = claims[config.admin.claim];
          const values = Array.isArray(value) ? value : typeof value === 'string' ? value.split(' ') : [];
          return values.some((v) => config.admin.values.includes(v));
        } catch {
          // not for this resource; try the next
        }
      }
      return false;
    },
  };
}

export { scopesOf };
