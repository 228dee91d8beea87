// How a verified access token's claims become a grant: one definition for the
// proxy (./oauth.js) and the playground (web/), which shows a policy author
// exactly what `grant.*` holds for a pasted token. No dependencies: it is
// bundled into the page.

/** A token's scopes as a list: the space-separated `scope` claim, or an `scp` array (or string). */
export function scopesOf(claims) {
  if (typeof claims.scope === 'string') return claims.scope.split(' ').filter(Boolean);
  if (Array.isArray(claims.scope)) return claims.scope.filter((s) => typeof s === 'string');
  if (Array.isArray(claims.scp)) return claims.scp.filter((s) => typeof s === 'string');
  if (typeof claims.scp === 'string') return claims.scp.split(' ').filter(Boolean);
  return [];
}

/**
 * { id, attributes } from claims: the id is the `grantClaim` claim (a string or a
 * number), every other claim is an attribute (`grant.<claim>`), `scope` is the
 * list of scopes. Null when the token has no such claim.
 */
export function grantFromClaims(claims, grantClaim = 'sub') {
  const id = claims?.[grantClaim];
  // An empty or non-finite id would be one grant shared by every such token.
  if (!(typeof id === 'string' && id !== '') && !(typeof id === 'number' && Number.isFinite(id))) return null;
  const attributes = { ...claims };
  delete attributes.id; // grant.id is the grant's id
  attributes.scope = scopesOf(claims);
  return { id: String(id), attributes };
}

/**
 * The claims of a JWT, decoded and NOT verified (for display only), or an
 * Error saying why not.
 */
export function decodeJwtClaims(token) {
  const parts = String(token).trim().replace(/^Bearer\s+/i, '').split('.');
  if (parts.length !== 3) return new Error('a JWT has three parts separated by dots');
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    const claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return new Error('the payload is not a JSON object');
    return claims;
  } catch (error) {
    return new Error(`the payload is not base64url JSON (${error.message})`);
  }
}
