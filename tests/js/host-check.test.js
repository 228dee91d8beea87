// worker/host-check.js (DNS-rebinding protection): the rules on Requests, a
// seeded property test over generated Host and Origin headers, then raw HTTP
// through the two runtimes it runs on: Node (@hono/node-server, which toolgate
// serve uses) and workerd (Miniflare), to see what each hands the check for a
// missing Host, a duplicate one, an absolute-form target or garbage.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';

import { serve } from '@hono/node-server';
import { Miniflare } from 'miniflare';

import { HostCheckConfigError, LOOPBACK_HOSTS, createHostCheck, parseHost, parseOrigin } from '../../worker/host-check.js';
import { repoRoot } from './cli-helpers.js';
import { moduleGraph } from './workerd-modules.js';
import { random as seededRandom } from './seeded-random.js';

/** The check's verdict on one request: 'pass', or the refusal's message. */
async function verdict(check, { host, origin, url = 'http://127.0.0.1:8080/mcp' } = {}) {
  const headers = new Headers();
  if (host !== undefined) headers.set('host', host);
  if (origin !== undefined) headers.set('origin', origin);
  const response = check(new Request(url, { method: 'POST', headers }));
  if (response === null) return 'pass';
  assert.equal(response.status, 403);
  assert.match(response.headers.get('content-type'), /^application\/json/);
  const body = await response.json();
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.id, null);
  assert.equal(body.error.code, -32000);
  assert.match(body.error.message, /^Forbidden: /);
  return body.error.message;
}

describe('Host', () => {
  const check = createHostCheck();

  test('loopback names by default, with any port, in any case, with one trailing dot', async () => {
    assert.deepEqual(check.allowedHosts, ['localhost', '127.0.0.1', '[::1]']);
    for (const host of ['localhost', 'localhost:8080', 'LocalHost:1', 'localhost.', 'localhost.:65535', '127.0.0.1', '127.0.0.1:8080',
      '127.0.0.1.', '[::1]', '[::1]:8080', '[0:0:0:0:0:0:0:1]:80', '[::0001]']) {
      assert.equal(await verdict(check, { host }), 'pass', host);
    }
  });

  test('other names are refused, however close to a loopback name', async () => {
    for (const host of ['evil.example.com', 'evil.example.com:8080', 'localhost.evil.example.com', 'evil-localhost', 'localhostx',
      '127.0.0.2', '127.0.0.1.nip.io', '[::2]', '[::ffff:127.0.0.1]', '0.0.0.0', 'xn--localhost-', 'localhost..', '.localhost']) {
      assert.match(await verdict(check, { host }), /not allowed|Invalid Host/, host);
    }
  });

  test('no Host, several, userinfo, paths, spaces, percent-encoding, bad ports and zone ids are refused as invalid', async () => {
    assert.equal(await verdict(check, {}), 'Forbidden: Missing Host header.');
    for (const host of ['', 'localhost, evil.example.com', 'evil.example.com@localhost', 'user:pw@localhost', 'localhost/mcp',
      'localhost?', 'localhost#x', 'local host', 'local%68ost', 'localhost:', 'localhost:0', 'localhost:65536', 'localhost:+80',
      'localhost:8o', 'localhost:80:80', '[::1', '::1', '[::1]x', '[fe80::1%25eth0]', '[v1.x]', 'localhost\\', 'l\u00f6calhost',
      'a'.repeat(400)]) {
      assert.match(await verdict(check, { host }), /Invalid Host header/, JSON.stringify(host));
    }
  });

  test('the request target\'s host must be allowed too (absolute-form targets)', async () => {
    assert.match(await verdict(check, { host: 'localhost', url: 'http://evil.example.com/mcp' }), /request target's host "evil\.example\.com"/);
    assert.equal(await verdict(check, { host: 'localhost:8080', url: 'http://127.0.0.1:9/mcp' }), 'pass');
  });

  test('allowedHosts replaces the loopback names; publicUrl adds its name', async () => {
    const configured = createHostCheck({ allowedHosts: 'toolgate.example.com, TOOLS.example.org.', publicUrl: 'https://public.example.net:8443/base' });
    assert.deepEqual(configured.allowedHosts, ['toolgate.example.com', 'tools.example.org', 'public.example.net']);
    const url = 'https://toolgate.example.com/mcp';
    for (const host of ['toolgate.example.com', 'toolgate.example.com:443', 'tools.example.org', 'public.example.net:9']) {
      assert.equal(await verdict(configured, { host, url: `https://${host}/mcp` }), 'pass', host);
    }
    assert.match(await verdict(configured, { host: 'localhost', url: 'http://localhost/mcp' }), /not allowed/);
    assert.match(await verdict(configured, { host: 'evil.example.com', url }), /not allowed/);
    // publicUrl alone keeps the loopback names.
    assert.deepEqual(createHostCheck({ publicUrl: 'http://10.0.0.5:8080' }).allowedHosts, [...LOOPBACK_HOSTS, '10.0.0.5']);
    assert.deepEqual(createHostCheck({ allowedHosts: [] }).allowedHosts, [...LOOPBACK_HOSTS]);
    assert.deepEqual(createHostCheck({ allowedHosts: ' ' }).allowedHosts, [...LOOPBACK_HOSTS]);
  });
});

describe('Origin', () => {
  const check = createHostCheck({ allowedOrigins: ['http://localhost:5173/', 'HTTPS://App.Example.com'] });

  test('absent (not a browser) or the request\'s own origin passes, http or https', async () => {
    assert.equal(await verdict(check, { host: 'localhost:8080' }), 'pass');
    for (const [host, origin] of [['localhost:8080', 'http://localhost:8080'], ['localhost:8080', 'https://localhost:8080'],
      ['LOCALHOST:8080', 'http://localhost:8080'], ['localhost', 'http://localhost'], ['localhost', 'https://localhost'],
      ['localhost:80', 'http://localhost'], ['localhost:443', 'https://localhost'], ['[::1]:8080', 'http://[::1]:8080'],
      ['127.0.0.1:8080', 'http://127.0.0.1:8080']]) {
      assert.equal(await verdict(check, { host, origin }), 'pass', `${host} ${origin}`);
    }
  });

  test('a configured origin passes; any other origin, "null" and garbage are refused', async () => {
    assert.deepEqual(check.allowedOrigins, ['http://localhost:5173', 'https://app.example.com']);
    assert.equal(await verdict(check, { host: 'localhost:8080', origin: 'http://localhost:5173' }), 'pass');
    assert.equal(await verdict(check, { host: 'localhost:8080', origin: 'https://app.example.com:443' }), 'pass');
    for (const origin of ['http://evil.example.com', 'http://localhost:9999', 'http://localhost', 'https://localhost:5173',
      'http://127.0.0.1:8080', 'https://app.example.com:8443', 'http://app.example.com']) {
      assert.match(await verdict(check, { host: 'localhost:8080', origin }), /^Forbidden: Origin ".*" is not allowed/, origin);
    }
    for (const origin of ['null', '', 'localhost:8080', 'http://localhost:8080/', 'http://localhost:8080/x', 'file://', 'ftp://localhost:8080',
      'http://user@localhost:8080', 'http://localhost:8080 http://evil.example.com', 'http://local%68ost:8080', 'http://localhost:0']) {
      assert.match(await verdict(check, { host: 'localhost:8080', origin }), /Invalid or opaque Origin/, origin);
    }
  });

  test('the Host check comes first: an allowed Origin does not make a foreign Host pass', async () => {
    assert.match(await verdict(check, { host: 'evil.example.com', origin: 'http://localhost:5173' }), /Host "evil\.example\.com" is not allowed/);
  });

  test('publicUrl\'s origin is allowed', async () => {
    const behind = createHostCheck({ publicUrl: 'https://toolgate.example.com/' });
    assert.equal(await verdict(behind, { host: 'toolgate.example.com', origin: 'https://toolgate.example.com', url: 'http://toolgate.example.com/mcp' }), 'pass');
    assert.match(await verdict(behind, { host: 'toolgate.example.com', origin: 'https://toolgate.example.com:8443', url: 'http://toolgate.example.com/mcp' }), /not allowed/);
  });
});

test('configuration errors name the entry and say what is expected', () => {
  const cases = [
    [{ allowedHosts: 'localhost:8080' }, /allowedHosts: "localhost:8080" has a port/],
    [{ allowedHosts: ['http://toolgate.example.com'] }, /allowedHosts: "http:\/\/toolgate.example.com" is not a host name/],
    [{ allowedHosts: '*.example.com' }, /is not a host name/],
    [{ allowedHosts: [1] }, /allowedHosts must be a list of strings/],
    [{ allowedHosts: { a: 1 } }, /allowedHosts must be a list of strings/],
    [{ allowedOrigins: 'app.example.com' }, /allowedOrigins: "app.example.com" is not an http\(s\) origin/],
    [{ allowedOrigins: 'https://app.example.com/path' }, /is not an http\(s\) origin/],
    [{ allowedOrigins: 'null' }, /is not an http\(s\) origin/],
    [{ publicUrl: 'not a url' }, /publicUrl: "not a url" is not a URL/],
    [{ publicUrl: 'ftp://toolgate.example.com' }, /is not an http\(s\) URL/],
    [{ publicUrl: 'https://user:pw@toolgate.example.com' }, /has credentials in it/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => createHostCheck(options), (error) => error instanceof HostCheckConfigError && message.test(error.message), JSON.stringify(options));
  }
});

test('parseHost and parseOrigin give canonical forms', () => {
  assert.deepEqual(parseHost('LocalHost.:080'), { hostname: 'localhost', port: 80 });
  assert.deepEqual(parseHost('[0::1]'), { hostname: '[::1]', port: undefined });
  assert.deepEqual(parseHost('2130706433'), { hostname: '127.0.0.1', port: undefined });
  assert.equal(parseHost('a@b'), null);
  assert.deepEqual(parseOrigin('HTTPS://Example.COM:443'), { origin: 'https://example.com', scheme: 'https:', hostname: 'example.com', port: 443 });
  assert.equal(parseOrigin('null'), null);
});

// A seeded generator (./seeded-random.js): a failure prints the seed to replay it.
function random(seed) {
  const next = seededRandom(seed);
  return { next, int: (n) => Math.floor(next() * n), pick: (list) => list[Math.floor(next() * list.length)] };
}

describe('property: generated Host and Origin headers', () => {
  const allowed = ['toolgate.example.com', '127.0.0.1', '[::1]', 'localhost'];
  const check = createHostCheck({ allowedHosts: allowed });
  const foreign = ['evil.example.com', 'toolgate.example.com.evil.example', 'evil-toolgate.example.com', 'toolgate.example.co', 'example.com',
    '127.0.0.2', '[::2]', '[::ffff:127.0.0.1]', 'localhost.toolgate.example.com', 'xn--80ak6aa92e.com', 'toolgate-example.com'];
  // Characters outside `name[:port]`; each one inserted makes a Host invalid.
  const hostile = [' ', '\t', '@', '/', '\\', '?', '#', '%', ',', ';', '"', '\'', '<', '*', '!', '$', '&', '(', '+', '=', '~', '\u00e9', '\u00ff', '\u00a0'];
  const SEED = Number(process.env.HOST_CHECK_SEED ?? 0x5eed);
  const RUNS = 4000;

  // A Host built from a name: valid variations keep the verdict, an invalid
  // one turns it into a refusal. Returns { host, valid } (valid: the name
  // allowed and nothing invalid done to it).
  function generateHost(rng) {
    const base = rng.next() < 0.5 ? rng.pick(allowed) : rng.int(4) === 0 ? randomName(rng) : rng.pick(foreign);
    let host = base;
    let valid = allowed.includes(base);
    if (rng.next() < 0.5) host = [...host].map((c) => (rng.next() < 0.5 ? c.toUpperCase() : c)).join('');
    if (!host.startsWith('[') && rng.next() < 0.2) host += '.';
    switch (rng.int(8)) {
      case 0: host += `:${1 + rng.int(65535)}`; break;
      case 1: host += rng.pick([':', ':0', ':65536', ':99999', ':-1', ':+80', ':8o', ':80:80', ' :80']); valid = false; break;
      default: break;
    }
    switch (rng.int(6)) {
      case 0: { // a hostile character anywhere
        const at = rng.int(host.length + 1);
        const before = host;
        host = host.slice(0, at) + rng.pick(hostile) + host.slice(at);
        // Except leading or trailing spaces and tabs, which HTTP (and Headers) trim.
        valid &&= host.replace(/^[ \t]+|[ \t]+$/g, '') === before;
        break;
      }
      case 1: // userinfo
        host = `${rng.pick(['user', 'evil.example.com', 'localhost', 'a:b'])}@${host}`;
        valid = false;
        break;
      case 2: // a second Host, joined as Headers joins duplicates
        host = rng.next() < 0.5 ? `${host}, evil.example.com` : `evil.example.com, ${host}`;
        valid = false;
        break;
      default: break;
    }
    return { host, valid };
  }

  function randomName(rng) {
    const labels = [];
    for (let i = 0, n = 1 + rng.int(4); i < n; i++) {
      let label = '';
      for (let j = 0, m = 1 + rng.int(10); j < m; j++) label += 'abcdefghijklmnopqrstuvwxyz0123456789-'[rng.int(37)];
      labels.push(label);
    }
    return labels.join('.');
  }

  test(`${RUNS} Hosts: never throws, passes exactly the valid forms of allowed names (seed ${SEED})`, async () => {
    const rng = random(SEED);
    let passed = 0;
    let refused = 0;
    for (let i = 0; i < RUNS; i++) {
      const { host, valid } = generateHost(rng);
      const result = await verdict(check, { host, url: 'http://localhost/mcp' });
      const message = `seed ${SEED}, case ${i}: Host ${JSON.stringify(host)}`;
      // Parses are memoised by their text (256 kept, then the memo starts
      // over): asked again, the same Host gets the same verdict.
      assert.equal(await verdict(check, { host, url: 'http://localhost/mcp' }), result, `${message}, asked again`);
      // A random name may be a number that URL parsing reads as an address.
      const arrived = host.replace(/^[ \t]+|[ \t]+$/g, ''); // what Headers keeps
      const expected = valid || (allowed.includes(parseHost(arrived)?.hostname) && /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(arrived));
      assert.equal(result === 'pass', expected, `${message}: ${result}`);
      if (result === 'pass') {
        // Independently of how the check got there: what passed is a bare
        // name[:port] whose name, as a browser reads it, is an allowed one.
        assert.match(arrived, /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?$/, message);
        assert.ok(allowed.includes(new URL(`http://${arrived}/`).hostname.replace(/\.$/, '')), message);
        passed++;
      } else {
        refused++;
      }
    }
    // The generator is balanced enough to test both sides.
    assert.ok(passed > RUNS / 10 && refused > RUNS / 3, `passed ${passed}, refused ${refused}`);
  });

  test(`${RUNS} Origins: passes exactly the request's own origin (either scheme) and never throws (seed ${SEED})`, async () => {
    const rng = random(SEED + 1);
    let passed = 0;
    for (let i = 0; i < RUNS; i++) {
      const name = rng.pick(allowed);
      const port = 1 + rng.int(65535);
      const host = `${name}:${port}`;
      const scheme = rng.pick(['http', 'https', 'HTTP', 'ws', 'file', 'javascript']);
      const { host: originHost, valid: hostValid } = rng.next() < 0.5 ? { host, valid: true } : generateHost(rng);
      const origin = `${scheme}://${originHost}`;
      const result = await verdict(check, { host, origin, url: `http://${host}/mcp` });
      const same = hostValid && ['http', 'https'].includes(scheme.toLowerCase()) && parseHost(originHost)?.hostname === name
        && (parseHost(originHost)?.port ?? { http: 80, https: 443 }[scheme.toLowerCase()]) === port;
      assert.equal(result === 'pass', same, `seed ${SEED + 1}, case ${i}: Host ${host}, Origin ${JSON.stringify(origin)}: ${result}`);
      if (same) passed++;
    }
    assert.ok(passed > RUNS / 5, `passed ${passed}`);
  });
});

/** Sends raw HTTP/1.1 bytes; resolves to { status, body } of the answer. */
function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
    const chunks = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const answer = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1]);
      resolve({ status, body: answer.slice(answer.indexOf('\r\n\r\n') + 4) });
    });
  });
}

// What a socket can send that a Request object cannot: HTTP/1.0 without Host,
// two Host lines, absolute-form targets, bytes outside ASCII. For each, the
// runtime either refuses it itself or the check does; nothing reaches "passed".
function hostileRequests(port) {
  const line = (target, ...headers) => `POST ${target} HTTP/1.1\r\n${headers.map((h) => `${h}\r\n`).join('')}Content-Length: 0\r\nConnection: close\r\n\r\n`;
  return [
    ['HTTP/1.0 without Host', 'POST /mcp HTTP/1.0\r\nContent-Length: 0\r\n\r\n'],
    ['a foreign Host', line('/mcp', 'Host: evil.example.com')],
    ['a foreign Host with the loopback port', line('/mcp', `Host: evil.example.com:${port}`)],
    ['a foreign Origin', line('/mcp', `Host: localhost:${port}`, 'Origin: http://evil.example.com')],
    ['Origin null', line('/mcp', `Host: localhost:${port}`, 'Origin: null')],
    ['two Host lines, loopback first', line('/mcp', `Host: localhost:${port}`, 'Host: evil.example.com')],
    ['two Host lines, loopback second', line('/mcp', 'Host: evil.example.com', `Host: localhost:${port}`)],
    ['an absolute-form target on another host', line('http://evil.example.com/mcp', `Host: localhost:${port}`)],
    ['userinfo in Host', line('/mcp', `Host: evil.example.com@localhost:${port}`)],
    ['a Host with a path', line('/mcp', 'Host: localhost/evil')],
    ['an empty Host', line('/mcp', 'Host: ')],
    ['a Host outside ASCII', line('/mcp', 'Host: l\u00f6calhost')],
    ['a percent-encoded Host', line('/mcp', 'Host: local%68ost')],
  ];
}

describe('through the runtimes, raw HTTP', () => {
  describe('Node (@hono/node-server, as toolgate serve runs)', () => {
    let server;
    let port;
    before(async () => {
      const check = createHostCheck();
      server = serve({ fetch: (request) => check(request) ?? Response.json({ passed: true }), port: 0, hostname: '127.0.0.1' });
      await once(server, 'listening');
      port = server.address().port;
    });
    after(() => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }));

    test('loopback names pass, also as absolute-form targets', async () => {
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST.']) {
        const { status, body } = await rawRequest(port, `POST /mcp HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        assert.equal(status, 200, host);
        assert.match(body, /"passed":true/);
      }
      const absolute = await rawRequest(port, `POST http://127.0.0.1:${port}/mcp HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      assert.equal(absolute.status, 200);
    });

    test('every hostile request is refused (4xx) and none passes', async () => {
      for (const [what, text] of hostileRequests(port)) {
        const { status, body } = await rawRequest(port, text);
        assert.ok(status >= 400 && status < 500, `${what}: ${status} ${body}`);
        assert.doesNotMatch(body, /passed/, what);
      }
    });
  });

  describe('workerd (Miniflare), configured from bindings', () => {
    let mf;
    let port;
    before(async () => {
      mf = new Miniflare({
        modulesRoot: repoRoot,
        modules: await moduleGraph('tests/js/fixtures/host-check-worker.js'),
        compatibilityDate: '2025-01-01',
        bindings: { ALLOWED_HOSTS: 'localhost,127.0.0.1, toolgate.example.com', ALLOWED_ORIGINS: 'https://app.example.com' },
        // workerd logs a stack for each request it refuses itself: expected here.
        handleRuntimeStdio(stdout, stderr) {
          stdout.resume();
          stderr.resume();
        },
      });
      port = Number((await mf.ready).port);
    });
    after(() => mf?.dispose());

    test('the Worker sees the Host the client sent: allowed names pass, the others get 403', async () => {
      for (const host of [`localhost:${port}`, 'toolgate.example.com', '127.0.0.1']) {
        const { status, body } = await rawRequest(port, `POST /mcp HTTP/1.1\r\nHost: ${host}\r\nOrigin: https://app.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        assert.equal(status, 200, `${host}: ${body}`);
        assert.equal(JSON.parse(body).host, host);
      }
      const ipv6 = await rawRequest(port, `POST /mcp HTTP/1.1\r\nHost: [::1]:${port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      assert.equal(ipv6.status, 403, 'the bindings replaced the loopback names, [::1] among them');
    });

    test('every hostile request is refused (4xx or workerd\'s own error) and none passes', async () => {
      for (const [what, text] of hostileRequests(port)) {
        const { status, body } = await rawRequest(port, text);
        // workerd answers some (a second Host, userinfo, absolute-form) with
        // its own 400 or 500 before any Worker runs.
        assert.ok(status >= 400, `${what}: ${status} ${body}`);
        assert.doesNotMatch(body, /passed/, what);
      }
    });
  });
});
