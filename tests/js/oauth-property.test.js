// Properties of access-token verification (worker/oauth.js), over many
// generated tokens, against a real issuer's keys served over HTTP:
//  - a token changed anywhere is never taken, unless its decoded bytes are
//    the signed ones (base64url's spare bits);
//  - for signed claim sets drawn at random (iss, aud, exp, nbf, sub, scope),
//    a grant is given exactly when a plain reading of the rules says so.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { checkOAuthConfig, createOAuth } from '../../worker/oauth.js';
import { startKeyIssuer } from './oauth-helpers.js';
import { random } from './seeded-random.js';

const RESOURCE = 'http://127.0.0.1:9/mcp';
const SKEW = 30;

let issuer;
let oauth;
before(async () => {
  issuer = await startKeyIssuer();
  oauth = createOAuth(checkOAuthConfig({ issuers: [issuer.issuer], resource: RESOURCE, scopes: ['mcp:tools'] }, ['default']));
});
after(() => issuer?.stop());

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const decoded = (token) => token.split('.').map((part) => Buffer.from(part, 'base64url').toString('hex')).join('.');

test('a token changed anywhere is refused (unless it decodes to the same bytes)', async () => {
  const good = await issuer.sign({ sub: 'ann', aud: RESOURCE, scope: 'mcp:tools' });
  assert.ok((await oauth.authenticate(good, 'default')).grant);
  const next = random(14);
  for (let i = 0; i < 400; i += 1) {
    const at = Math.floor(next() * good.length);
    if (good[at] === '.') continue;
    let replacement = ALPHABET[Math.floor(next() * ALPHABET.length)];
    if (replacement === good[at]) replacement = replacement === 'A' ? 'B' : 'A';
    const changed = `${good.slice(0, at)}${replacement}${good.slice(at + 1)}`;
    const answer = await oauth.authenticate(changed, 'default');
    if (decoded(changed) === decoded(good)) continue; // the same signed bytes
    assert.ok(!answer.grant, `case ${i}: position ${at} changed to ${replacement} was taken`);
    assert.equal(answer.status, 401, `case ${i}`);
  }
});

test('random claim sets: a grant exactly when iss, aud, exp, nbf and scope are right', async () => {
  const next = random(2026);
  const pick = (list) => list[Math.floor(next() * list.length)];
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < 150; i += 1) {
    const claims = {
      iss: pick([issuer.issuer, issuer.issuer, `${issuer.issuer}/`, 'http://127.0.0.1:1']),
      aud: pick([RESOURCE, RESOURCE, [RESOURCE, 'other'], 'http://127.0.0.1:9/mcp/x', 'http://127.0.0.1:9', undefined]),
      exp: pick([now + 600, now + 600, now - 600, now - 5, undefined, 'soon']),
      nbf: pick([undefined, undefined, now - 60, now + 5, now + 600]),
      sub: pick(['ann', 'ben', undefined, 42]),
      scope: pick(['mcp:tools', 'mcp:tools other', 'other', undefined]),
    };
    // An undefined claim is left out of the token (JSON has no undefined).
    const token = await issuer.sign(claims);
    const answer = await oauth.authenticate(token, 'default');
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    const valid = claims.iss === issuer.issuer
      && audiences.includes(RESOURCE)
      && typeof claims.exp === 'number' && claims.exp + SKEW > now
      && (claims.nbf === undefined || claims.nbf - SKEW <= now)
      && claims.sub !== undefined;
    const scoped = typeof claims.scope === 'string' && claims.scope.split(' ').includes('mcp:tools');
    const expected = !valid ? 401 : scoped ? 'grant' : 403;
    const got = answer.grant ? 'grant' : answer.status;
    assert.equal(got, expected, `case ${i}: ${JSON.stringify(claims)} -> ${JSON.stringify(answer)}`);
    if (answer.grant) assert.equal(answer.grant.id, String(claims.sub));
  }
});

test('a burst of first requests makes one discovery and one JWKS fetch', async () => {
  const fresh = await startKeyIssuer();
  try {
    let discoveries = 0;
    const counting = (url, init) => {
      if (String(url).includes('/.well-known/')) discoveries += 1;
      return fetch(url, init);
    };
    const burst = createOAuth(checkOAuthConfig({ issuers: [fresh.issuer], resource: RESOURCE }, ['default']), { fetch: counting });
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => fresh.sign({ sub: `s${i}`, aud: RESOURCE, scope: 'mcp:tools' })));
    const answers = await Promise.all(tokens.map((token) => burst.authenticate(token, 'default')));
    assert.ok(answers.every((a) => a.grant), JSON.stringify(answers.find((a) => !a.grant)));
    assert.equal(discoveries, 1);
    assert.equal(fresh.jwksFetches, 1);
  } finally {
    await fresh.stop();
  }
});
