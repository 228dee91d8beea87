// MCP session ids bound to the grant that opened them.
//
// The upstream server hands out an Mcp-Session-Id and keeps state under it:
// its event stream (GET), subscriptions, requests it is waiting on. Every
// request through toolgate is authenticated on its own token, but the server
// cannot tell grants apart, so a grant that learned another's session id
// could read that session's stream. MCP's security best practices ask a proxy
// to bind session ids to the user: toolgate gives the client
//
//   <upstream session id>.<MAC>
//
// where MAC is HMAC-SHA-256(key, grant id, server name, upstream id), base64url,
// first 22 characters (132 bits). A request whose id does not verify for its
// own grant and server is answered 404, "Session not found" (what the spec
// says a client must take as a cue to start a new session), and nothing goes
// upstream. Stateless: every instance that shares the key accepts the ids of
// the others, so a load balancer needs no sticky sessions.

const MAC_LENGTH = 22;
const encoder = new TextEncoder();

function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** HMAC-SHA-256 through WebCrypto (Workers, browsers, Node): (key, text) => Promise<base64url>. */
export function webCryptoHmac() {
  const keys = new Map();
  return async (secret, text) => {
    let key = keys.get(secret);
    if (!key) {
      key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      keys.set(secret, key);
    }
    return base64url(new Uint8Array(await crypto.subtle.sign('HMAC', await key, encoder.encode(text))));
  };
}

// Equal strings, in time that does not depend on where they differ.
function sameText(a, b) {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * Binds session ids with `key` (a secret string). `hmac(key, text)` gives the
 * base64url HMAC-SHA-256 of text (sync or async); WebCrypto's by default.
 */
export class SessionBinding {
  #key;
  #hmac;

  constructor({ key, hmac = webCryptoHmac() }) {
    if (typeof key !== 'string' || key.length < 16) throw new TypeError('the session key must be a string of at least 16 characters');
    this.#key = key;
    this.#hmac = hmac;
  }

  async #mac(grant, server, upstreamId) {
    // Lengths first: no choice of ids makes two different triples one text.
    const text = `${grant.length}:${grant}\n${server.length}:${server}\n${upstreamId}`;
    return (await this.#hmac(this.#key, text)).slice(0, MAC_LENGTH);
  }

  /** The id the client gets for the server's `upstreamId`. */
  async wrap(upstreamId, { grant, server }) {
    return `${upstreamId}.${await this.#mac(grant, server, upstreamId)}`;
  }

  /** The server's id inside a client's `clientId`, or null when it was not made for this grant and server. */
  async unwrap(clientId, { grant, server }) {
    const dot = clientId.lastIndexOf('.');
    if (dot <= 0) return null;
    const upstreamId = clientId.slice(0, dot);
    const mac = clientId.slice(dot + 1);
    if (mac.length !== MAC_LENGTH) return null;
    return sameText(mac, await this.#mac(grant, server, upstreamId)) ? upstreamId : null;
  }
}
