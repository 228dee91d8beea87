// The approval routes: the page (public, static) and the admin API behind the
// admin token. Served by the proxy's handler and, for the stdio wrapper, by a
// small loopback server of their own.
//
//   GET    /approvals            the page
//   GET    /approvals/pending    waiting requests (JSON)
//   GET    /approvals/<id>       one waiting request
//   POST   /approvals/<id>       approve
//   DELETE /approvals/<id>       deny
import { approvalsPage, approvalsScript, approvalsStyle } from './approvals-page.js';
import { bearerToken, tokenMatches } from './grants.js';
import { json } from './responses.js';

const APPROVAL_ID = /^[0-9a-f]{64}$/;

const PAGE_HEADERS = {
  // The page is static; its script and style are served beside it. Framing is
  // refused so approve buttons cannot be clickjacked.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};
const asset = (text, type) => new Response(text, { status: 200, headers: { 'content-type': type, ...PAGE_HEADERS } });
const html = (text) => asset(text, 'text/html; charset=utf-8');

/**
 * @param {{approvals?: import('../wasm/index.js').ApprovalStore, adminTokenSha256?: string,
 *   clock?: () => number, log?: (level: string, message: string, fields?: object) => void,
 *   isAdmin?: (request: Request) => Promise<boolean>}} options
 *   isAdmin: admits a request the admin token does not (an OAuth access token whose claims
 *   the configuration names as admin: ./oauth.js).
 * @returns {(request: Request, path: string) => Promise<Response>} path: the URL path without a trailing slash
 */
export function createApprovalRoutes({ approvals, adminTokenSha256, clock = Date.now, log = () => {}, isAdmin }) {
  return async function approvalRoutes(request, path) {
    if (request.method === 'GET' && path === '/approvals') return html(approvalsPage);
    if (request.method === 'GET' && path === '/approvals/page.js') return asset(approvalsScript, 'text/javascript; charset=utf-8');
    if (request.method === 'GET' && path === '/approvals/page.css') return asset(approvalsStyle, 'text/css; charset=utf-8');
    if (!approvals?.list || !adminTokenSha256) {
      return json(403, { error: 'Approvals are off: start toolgate with an admin token (and an approval store) to use them.' });
    }
    if (!(await tokenMatches(bearerToken(request), adminTokenSha256)) && !(await isAdmin?.(request))) {
      return json(401, { error: 'Unauthorized: send the admin token as "Authorization: Bearer <token>".' }, { 'www-authenticate': 'Bearer realm="toolgate-admin"' });
    }
    const now = clock();
    if (request.method === 'GET' && path === '/approvals/pending') return json(200, { approvals: await approvals.list(now) });
    const id = path.slice('/approvals/'.length);
    if (!APPROVAL_ID.test(id)) return json(404, { error: 'An approval id is 64 lowercase hex digits.' });
    if (request.method === 'GET') {
      const waiting = await approvals.get(id, now);
      return waiting ? json(200, waiting) : json(404, { error: `No request ${id} is waiting.` });
    }
    if (request.method === 'POST') {
      if (!(await approvals.get(id, now))) return json(404, { error: `No request ${id} is waiting (unknown, decided or expired).` });
      await approvals.approve(id, now);
      log('info', 'approved', { approval_id: id });
      return json(200, { approved: id });
    }
    if (request.method === 'DELETE') {
      if (!(await approvals.reject(id, now))) return json(404, { error: `No request ${id} is waiting (unknown, decided or expired).` });
      log('info', 'rejected', { approval_id: id });
      return json(200, { rejected: id });
    }
    return json(405, { error: `${request.method} is not used here.` }, { allow: 'GET, POST, DELETE' });
  };
}
