// DNS-rebinding protection: which Host and Origin a request may carry.
//
// A web page can reach a server on loopback through a name it controls (DNS
// rebinding: evil.example resolves to 127.0.0.1 after the page has loaded), and
// the browser then treats the proxy as part of evil.example. Such a request
// still says `Host: evil.example` (and `Origin: http://evil.example`), which is
// what this check refuses, before anything else reads the request. Web-standard
// Request only: the same module runs on Node and in Workers.
//
//   const check = createHostCheck({ allowedHosts, allowedOrigins, publicUrl });
//   const refusal = check(request);   // a 403 Response, or null to go on
//   if (refusal) return refusal;
//
// Options (all optional; each list is an array of strings, or one string of
// entries separated by commas or spaces, as an environment variable or a
// Workers binding holds it):
//
//   allowedHosts    host names the Host header may carry, with any port:
//                   "toolgate.example.com", "127.0.0.1", "[::1]". No scheme, no
//                   port, no wildcard (an entry with one is a configuration
//                   error). Case and one trailing dot do not matter. Without
//                   entries (missing or empty): the loopback names "localhost",
//                   "127.0.0.1" and "[::1]" (LOOPBACK_HOSTS). With entries, only
//                   those (add the loopback names if loopback clients should
//                   still connect).
//   allowedOrigins  origins a browser may call from besides the request's own:
//                   "https://app.example.com", "http://localhost:5173". Scheme
//                   http or https, no path (one trailing "/" is tolerated). The
//                   request's own origin (http or https, the Host header's name
//                   and port) is always allowed, so toolgate's own pages work.
//   publicUrl       this proxy's address as clients see it
//                   ("https://toolgate.example.com/"): its host name is allowed
//                   as a Host (besides allowedHosts, or the loopback names), and
//                   its origin as an Origin.
//
// What is refused (403, the JSON-RPC error body the MCP SDK's own protection
// answers with: {"jsonrpc":"2.0","error":{"code":-32000,"message":...},"id":null}):
//   - no Host header (HTTP/1.0), or more than one (they arrive joined by ", ");
//   - a Host that is not `name[:port]`: userinfo ("a@b"), a path, spaces,
//     percent-encoding, non-ASCII, an empty or out-of-range port, an IPv6
//     literal with a zone or anything but hex digits, colons and dots;
//   - a Host whose name is not allowed;
//   - a request URL whose host name is not allowed: on Node an absolute-form
//     request target ("POST http://evil.example/mcp") becomes the URL, and
//     HTTP says that authority, not the Host header, names the target;
//   - an Origin header that is present and neither the request's own origin
//     nor an allowed one; "null" (sandboxed frames, file: pages) included.
// Names are compared after WHATWG URL host parsing (what a browser does), so
// "LOCALHOST.", "[0:0::1]" and "127.1" are the loopback names they mean; a
// percent-encoded name is refused before it gets there.
import { json } from './responses.js';

/** The Host names allowed when no allowedHosts are configured. */
export const LOOPBACK_HOSTS = Object.freeze(['localhost', '127.0.0.1', '[::1]']);

/** A configuration the check cannot use (the message says which entry and why). */
export class HostCheckConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = 'HostCheckConfigError';
  }
}

const DEFAULT_PORTS = { 'http:': 80, 'https:': 443 };
// name[:port]: a registered name or IPv4 address in the characters DNS names
// use (what browsers send), or an IPv6 literal in brackets without a zone id.
const HOST_SYNTAX = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?$/;
const ORIGIN_SYNTAX = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)$/;
const MAX_HOST_LENGTH = 300; // 253 for a DNS name, with a port and brackets to spare

/**
 * Parses a Host header value (or a URL's host): { hostname, port } with the
 * name in its canonical form ("[::1]", "127.0.0.1", "localhost", lower case,
 * no trailing dot) and port a number or undefined; null when it is not
 * `name[:port]`.
 */
export function parseHost(text) {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_HOST_LENGTH) return null;
  const match = HOST_SYNTAX.exec(text);
  if (!match) return null;
  const hostname = canonicalHostname(match[1]);
  if (hostname === null) return null;
  if (match[2] === undefined) return { hostname, port: undefined };
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { hostname, port } : null;
}

/**
 * An Origin header value as { origin, scheme, hostname, port }, origin being
 * its canonical serialisation (default port left out); null when it is not an
 * http(s) origin (also for "null" and for lists of several).
 */
export function parseOrigin(text) {
  if (typeof text !== 'string' || text.length > MAX_HOST_LENGTH + 10) return null;
  const match = ORIGIN_SYNTAX.exec(text);
  if (!match) return null;
  const scheme = `${match[1].toLowerCase()}:`;
  if (!(scheme in DEFAULT_PORTS)) return null;
  const host = parseHost(match[2]);
  if (!host) return null;
  const port = host.port ?? DEFAULT_PORTS[scheme];
  const origin = `${scheme}//${host.hostname}${port === DEFAULT_PORTS[scheme] ? '' : `:${port}`}`;
  return { origin, scheme, hostname: host.hostname, port };
}

/**
 * The check for these options: `(request) => Response | null`, null meaning the
 * request may go on. The function also carries what it allows, for a startup
 * message: `check.allowedHosts` (canonical names), `check.allowedOrigins`.
 * Throws HostCheckConfigError for an entry it cannot use.
 */
export function createHostCheck({ allowedHosts, allowedOrigins, publicUrl } = {}) {
  const hosts = new Set();
  const configuredHosts = entries(allowedHosts, 'allowedHosts');
  for (const entry of configuredHosts.length > 0 ? configuredHosts : LOOPBACK_HOSTS) hosts.add(hostEntry(entry));
  const origins = new Set();
  for (const entry of entries(allowedOrigins, 'allowedOrigins')) origins.add(originEntry(entry, 'allowedOrigins'));
  if (publicUrl !== undefined && publicUrl !== null && publicUrl !== '') {
    const origin = originEntry(publicUrlOrigin(publicUrl), 'publicUrl');
    origins.add(origin);
    hosts.add(parseOrigin(origin).hostname);
  }

  function check(request) {
    const hostHeader = request.headers.get('host');
    if (hostHeader === null) return refuse('Missing Host header.');
    const host = parseHost(hostHeader);
    if (host === null) return refuse(`Invalid Host header ${quote(hostHeader)}.`);
    if (!hosts.has(host.hostname)) return refuse(`Host ${quote(host.hostname)} is not allowed here (DNS-rebinding protection).`);
    // The URL the runtime made: from an absolute-form request target, it names
    // another host than the Host header; that host must be allowed too.
    const target = targetHostOf(request.url);
    if (target === null) return refuse('Invalid request URL.');
    if (target.host === null || !hosts.has(target.host.hostname)) {
      return refuse(`The request target's host ${quote(target.text)} is not allowed here (DNS-rebinding protection).`);
    }
    const originHeader = request.headers.get('origin');
    if (originHeader === null) return null; // not a browser, or a same-origin GET
    const origin = parseOrigin(originHeader);
    if (origin === null) return refuse(`Invalid or opaque Origin ${quote(originHeader)}.`);
    if (origins.has(origin.origin)) return null;
    // The request's own origin: the name and port it was sent to (behind a TLS
    // terminator the scheme the browser saw is not the request's, so either).
    if (origin.hostname === host.hostname && origin.port === (host.port ?? DEFAULT_PORTS[origin.scheme])) return null;
    return refuse(`Origin ${quote(origin.origin)} is not allowed here (DNS-rebinding protection).`);
  }
  check.allowedHosts = Object.freeze([...hosts]);
  check.allowedOrigins = Object.freeze([...origins]);
  return check;
}

function refuse(message) {
  return json(403, { jsonrpc: '2.0', error: { code: -32000, message: `Forbidden: ${message}` }, id: null });
}

// What a client sent, shortened and in quotes: the body is JSON, so nothing in
// it can break out, but there is no reason to echo kilobytes.
function quote(text) {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

// Memos of the two WHATWG URL parses a check makes, by their input text: a
// proxy sees the same few hosts and URLs on every request, and each parse
// costs a microsecond or more. Both are pure functions of the text; at most
// MEMO_SIZE results for texts of at most MEMO_LENGTH characters are kept
// each (then the memo starts over), so varied or long input costs what it
// did and the memos at most a few hundred kilobytes.
const MEMO_SIZE = 256;
const MEMO_LENGTH = 1024;
function memo(fn) {
  const results = new Map();
  return (text) => {
    let result = results.get(text);
    if (result === undefined) {
      result = fn(text);
      if (text.length > MEMO_LENGTH) return result;
      if (results.size >= MEMO_SIZE) results.clear();
      results.set(text, result);
    }
    return result;
  };
}

// The request URL's host: { text (as URL parsing gives it), host (parseHost
// of it, or null) }, or null when the URL does not parse.
const targetHostOf = memo((url) => {
  let text;
  try {
    text = new URL(url).host;
  } catch {
    return null;
  }
  return Object.freeze({ text, host: parseHost(text) });
});

// A name as WHATWG URL parsing leaves it, without one trailing dot ("a.b."
// names the same host as "a.b"); null when URL parsing refuses it or it is
// empty, starts with a dot or has an empty label.
const canonicalHostname = memo(parseHostname);
function parseHostname(name) {
  let hostname;
  try {
    hostname = new URL(`http://${name}/`).hostname;
  } catch {
    return null;
  }
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  if (hostname === '' || hostname.startsWith('.') || hostname.includes('..')) return null;
  return hostname;
}

function entries(value, what) {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? value.split(/[\s,]+/) : value;
  if (!Array.isArray(list) || list.some((entry) => typeof entry !== 'string')) {
    throw new HostCheckConfigError(`${what} must be a list of strings (or one string of entries separated by commas)`);
  }
  return list.map((entry) => entry.trim()).filter((entry) => entry !== '');
}

function hostEntry(entry) {
  const host = parseHost(entry);
  if (host === null) {
    throw new HostCheckConfigError(`allowedHosts: ${JSON.stringify(entry)} is not a host name (e.g. "toolgate.example.com", "127.0.0.1", "[::1]")`);
  }
  if (host.port !== undefined) {
    throw new HostCheckConfigError(`allowedHosts: ${JSON.stringify(entry)} has a port; entries are names, allowed with any port`);
  }
  return host.hostname;
}

function originEntry(entry, what) {
  const origin = parseOrigin(entry.endsWith('/') ? entry.slice(0, -1) : entry);
  if (origin === null) {
    throw new HostCheckConfigError(`${what}: ${JSON.stringify(entry)} is not an http(s) origin (e.g. "https://app.example.com", "http://localhost:5173")`);
  }
  return origin.origin;
}

function publicUrlOrigin(value) {
  let url;
  try {
    url = new URL(value);
  } catch {
    throw new HostCheckConfigError(`publicUrl: ${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HostCheckConfigError(`publicUrl: ${JSON.stringify(value)} is not an http(s) URL`);
  if (url.username !== '' || url.password !== '') throw new HostCheckConfigError(`publicUrl: ${JSON.stringify(value)} has credentials in it`);
  return url.origin;
}
