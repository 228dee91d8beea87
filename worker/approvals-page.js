// The approvals page: calls waiting for a human, each with what exactly would
// run (tool, grant, arguments) and approve/deny buttons. The page itself is
// static and public; everything it shows or changes goes through the admin
// API with the admin token in an Authorization header (never a cookie, so
// other sites cannot make the browser approve anything).

export const approvalsPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>toolgate · approvals</title>
<link rel="stylesheet" href="/approvals/page.css">
<script type="module" src="/approvals/page.js"></script>
</head>
<body>
<header>
  <h1>toolgate approvals</h1>
  <form id="login">
    <label>Admin token <input id="token" type="password" autocomplete="current-password" required></label>
    <button type="submit">Show waiting calls</button>
  </form>
</header>
<main>
  <p id="status" role="status">Enter the admin token to see calls waiting for approval.</p>
  <table id="approvals" hidden>
    <thead><tr><th>Requested</th><th>Grant</th><th>Server</th><th>Tool</th><th>Arguments</th><th>Approval id</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
</main>
</body>
</html>
`;

export const approvalsStyle = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f7f8fa; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; justify-content: space-between; padding: .75rem 1.25rem; background: #1d2330; color: #fff; }
h1 { font-size: 1.1rem; margin: 0; }
header input { margin: 0 .5rem; }
main { padding: 1.25rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; vertical-align: top; padding: .5rem .6rem; border-bottom: 1px solid #e3e6eb; }
pre { margin: 0; max-width: 40rem; max-height: 16rem; overflow: auto; white-space: pre-wrap; word-break: break-word; font-size: 13px; }
code { font-size: 12px; }
tr.highlight { outline: 2px solid #3865d6; }
button { cursor: pointer; }
button.approve { background: #1f7a3f; color: #fff; border: 0; padding: .35rem .8rem; border-radius: 4px; }
button.reject { background: #fff; color: #a2262e; border: 1px solid #a2262e; padding: .35rem .8rem; border-radius: 4px; margin-left: .4rem; }
#status.error { color: #a2262e; }
`;

export const approvalsScript = `
const tokenInput = document.getElementById('token');
const status = document.getElementById('status');
const table = document.getElementById('approvals');
const body = table.querySelector('tbody');
tokenInput.value = sessionStorage.getItem('toolgate-admin-token') ?? '';

function say(text, isError = false) {
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

async function api(method, path) {
  const response = await fetch(path, { method, headers: { authorization: 'Bearer ' + tokenInput.value } });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error ?? ('HTTP ' + response.status));
  return answer;
}

function cell(row, content) {
  const td = row.insertCell();
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  return td;
}

async function refresh() {
  let list;
  try {
    ({ approvals: list } = await api('GET', '/approvals/pending'));
  } catch (error) {
    table.hidden = true;
    return say(error.message, true);
  }
  sessionStorage.setItem('toolgate-admin-token', tokenInput.value);
  body.replaceChildren();
  for (const request of list) {
    const row = body.insertRow();
    row.id = request.id;
    if (location.hash === '#' + request.id) row.className = 'highlight';
    cell(row, new Date(request.requested_at).toLocaleString());
    cell(row, request.grant);
    cell(row, request.server);
    cell(row, request.tool);
    const pre = document.createElement('pre');
    pre.textContent = JSON.stringify(request.arguments, null, 2);
    cell(row, pre);
    const code = document.createElement('code');
    code.textContent = request.id.slice(0, 12) + '…';
    code.title = request.id;
    cell(row, code);
    const approve = document.createElement('button');
    approve.className = 'approve';
    approve.textContent = 'Approve';
    approve.onclick = () => decide('POST', request, 'Approved');
    const reject = document.createElement('button');
    reject.className = 'reject';
    reject.textContent = 'Deny';
    reject.onclick = () => decide('DELETE', request, 'Denied');
    const actions = cell(row, approve);
    actions.append(reject);
  }
  table.hidden = list.length === 0;
  say(list.length === 0 ? 'No calls are waiting for approval.' : list.length + ' call' + (list.length === 1 ? ' is' : 's are') + ' waiting.');
}

async function decide(method, request, done) {
  let outcome;
  try {
    await api(method, '/approvals/' + request.id);
    outcome = [done + ': ' + request.tool + ' for ' + request.grant + '.', false];
  } catch (error) {
    outcome = [error.message, true];
  }
  await refresh();
  say(...outcome);
}

document.getElementById('login').addEventListener('submit', (event) => {
  event.preventDefault();
  refresh();
});
if (tokenInput.value) refresh();
setInterval(() => { if (tokenInput.value && !document.hidden) refresh(); }, 5000);
`;
