// Grants: who an agent is. A grant is a credential an operator hands to one
// agent (or one team's agents); its bearer token selects it, its id scopes
// the rate limits, and its attributes are what policies read as grant.<name>.
//
// Only SHA-256 hashes of tokens are configured and kept: a leaked grants file
// does not leak credentials. Tokens are compared hash to hash over every grant
// in constant time, so response timing does not tell how close a guess was.

const HEX64 = /^[0-9a-f]{64}$/;

export class GrantsError extends Error {
  /** @param {{pointer: string, message: string}[]} problems */
  constructor(source, problems) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n`
      + problems.map((p) => `  ${p.pointer || '/'}: ${p.message}`).join('\n'));
    this.name = 'GrantsError';
    this.problems = problems;
  }
}

/** SHA-256 of a UTF-8 string, as bytes. */
export async function sha256Bytes(text) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

export const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const fromHex = (hex) => Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));

function sameBytes(a, b) {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ (b[i] ?? 0);
  return difference === 0;
}

// `digest` given as a string of its bytes, one character each (latin1, as
// node:crypto writes a digest without making a Buffer), against bytes; in
// constant time like sameBytes.
function sameDigest(digest, b) {
  if (typeof digest !== 'string') return sameBytes(digest, b);
  let difference = digest.length ^ b.length;
  for (let i = 0; i < digest.length; i++) difference |= digest.charCodeAt(i) ^ (b[i] ?? 0);
  return difference === 0;
}

/** The bearer token of a request, or null. */
export function bearerToken(request) {
  const header = request.headers.get('authorization');
  const match = header && /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return match ? match[1] : null;
}

/** A token checked against a configured SHA-256 (constant time). */
export async function tokenMatches(token, sha256Hex) {
  if (typeof token !== 'string' || !HEX64.test(sha256Hex)) return false;
  return sameBytes(await sha256Bytes(token), fromHex(sha256Hex));
}

export class Grants {
  #grants; // [{ id, attributes, policy, policies, hash: Uint8Array }]
  #source;

  /**
   * @param {{grants: {id: string, token_sha256: string, attributes?: object, policy?: string}[]}} document
   * @param {string} [source] where the document came from, for error messages
   */
  constructor(document, source = 'grants') {
    this.#source = source;
    const problems = [];
    const problem = (pointer, message) => problems.push({ pointer, message });
    const list = document?.grants;
    if (document === null || typeof document !== 'object' || Array.isArray(document)) {
      problem('', 'must be an object {"grants": [...]}');
    } else if (!Array.isArray(list)) {
      problem('/grants', 'must be an array of grants');
    } else {
      for (const key of Object.keys(document)) {
        if (key !== 'grants' && key !== '$schema') problem(`/${key}`, `unknown field "${key}" (expected "grants")`);
      }
    }
    const ids = new Set();
    const hashes = new Set();
    this.#grants = [];
    for (const [i, grant] of (Array.isArray(list) ? list : []).entries()) {
      const at = `/grants/${i}`;
      if (grant === null || typeof grant !== 'object' || Array.isArray(grant)) {
        problem(at, 'must be an object {"id", "token_sha256", "attributes"?, "policy"?}');
        continue;
      }
      for (const key of Object.keys(grant)) {
        if (!['id', 'token_sha256', 'attributes', 'policy', 'policies'].includes(key)) problem(`${at}/${key}`, `unknown field "${key}"`);
      }
      if (typeof grant.id !== 'string' || grant.id === '') problem(`${at}/id`, 'must be a non-empty string');
      else if (ids.has(grant.id)) problem(`${at}/id`, `grant id "${grant.id}" is used twice`);
      else ids.add(grant.id);
      const hash = typeof grant.token_sha256 === 'string' ? grant.token_sha256.toLowerCase() : undefined;
      if (!hash || !HEX64.test(hash)) {
        problem(`${at}/token_sha256`, 'must be the SHA-256 of the token as 64 hex digits (printf %s "$TOKEN" | sha256sum)');
      } else if (hashes.has(hash)) {
        problem(`${at}/token_sha256`, 'the same token hash is used by another grant');
      } else {
        hashes.add(hash);
      }
      const attributes = grant.attributes ?? {};
      if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) {
        problem(`${at}/attributes`, 'must be an object');
      } else if ('id' in attributes) {
        problem(`${at}/attributes/id`, '"id" is the grant\'s own id; choose another attribute name');
      }
      if (grant.policy !== undefined && !isPolicySource(grant.policy)) {
        problem(`${at}/policy`, 'must be the path of a policy file');
      }
      const policies = grant.policies;
      if (policies !== undefined) {
        if (grant.policy !== undefined) problem(`${at}/policies`, 'give either "policy" (one server) or "policies" (per server), not both');
        if (policies === null || typeof policies !== 'object' || Array.isArray(policies) || Object.keys(policies).length === 0) {
          problem(`${at}/policies`, 'must be an object {"<server name>": "<policy file>"} naming at least one server');
        } else {
          for (const [server, source] of Object.entries(policies)) {
            if (!isPolicySource(source)) problem(`${at}/policies/${server}`, 'must be the path of a policy file');
          }
        }
      }
      this.#grants.push({ id: grant.id, attributes, policy: grant.policy, policies, hash: hash && HEX64.test(hash) ? fromHex(hash) : new Uint8Array(32) });
    }
    if (problems.length > 0) throw new GrantsError(source, problems);
  }

  get size() {
    return this.#grants.length;
  }

  /** Grants as configured, without their hashes. */
  list() {
    return this.#grants.map(({ id, attributes, policy, policies }) => ({ id, attributes, policy, policies }));
  }

  /**
   * Each grant's own policy sources by server name: `policies` as given, or
   * `policy` for the one server of a single-server configuration. A grant's
   * policy cannot silently apply to every server of several, nor to a server
   * that is not configured: both are problems.
   * @param {string[]} serverNames
   * @returns {Map<string, Map<string, unknown>>} grant id -> server name -> source
   */
  policySources(serverNames) {
    const sources = new Map();
    const problems = [];
    for (const [i, grant] of this.#grants.entries()) {
      let perServer;
      if (grant.policy !== undefined) {
        if (serverNames.length !== 1) {
          problems.push({ pointer: `/grants/${i}/policy`, message: `with several servers (${serverNames.join(', ')}), name the server: "policies": {"<server>": "<policy file>"}` });
          continue;
        }
        perServer = { [serverNames[0]]: grant.policy };
      } else if (grant.policies !== undefined) {
        perServer = grant.policies;
        for (const server of Object.keys(perServer)) {
          if (!serverNames.includes(server)) problems.push({ pointer: `/grants/${i}/policies/${server}`, message: `no server named "${server}" is configured (${serverNames.join(', ')})` });
        }
      } else {
        continue;
      }
      sources.set(grant.id, new Map(Object.entries(perServer)));
    }
    if (problems.length > 0) throw new GrantsError(this.#source, problems);
    return sources;
  }

  /**
   * The grant whose token this is, or null. Every grant is compared.
   * `hash` replaces WebCrypto's SHA-256 (Node passes node:crypto's, which answers at once).
   * Answers at once when `hash` does (no promise per request); a promise otherwise.
   * @param {string | null} token
   * @param {(text: string) => Uint8Array | string | Promise<Uint8Array | string>} [hash] the token's SHA-256:
   *   bytes, or a string of them one character each (latin1)
   * @returns {GrantFound | null | Promise<GrantFound | null>}
   * @typedef {{ id: string, attributes: object }} GrantFound
   */
  find(token, hash = sha256Bytes) {
    if (typeof token !== 'string' || token === '') return null;
    const digest = hash(token);
    if (typeof digest === 'string' || digest instanceof Uint8Array) return this.#match(digest);
    return Promise.resolve(digest).then((bytes) => this.#match(bytes));
  }

  #match(hash) {
    let found = null;
    for (const grant of this.#grants) {
      if (sameDigest(hash, grant.hash) && found === null) found = grant;
    }
    return found && { id: found.id, attributes: found.attributes };
  }
}

// A grant's policy: a file path (Node), or the policy itself inline (an
// object, as Workers bindings give it); the host says which it can load.
const isPolicySource = (value) => (typeof value === 'string' && value !== '') || (value !== null && typeof value === 'object' && !Array.isArray(value));

/** Used when no grants are configured: loopback clients only. */
export const ANONYMOUS_GRANT = Object.freeze({ id: 'anonymous', attributes: Object.freeze({}) });
