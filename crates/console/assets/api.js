// The console's calls: its session (the CSRF token lives in memory only), and the data calls, which the
// server runs through the same operation chain as the CloudTrail API.
export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

let session = null;
let onSignedOut = () => {};

export function currentSession() { return session; }

// The session's CSRF token: from the session answer, or (before it arrives) from the opentrail_csrf cookie the
// sign-in set, so a page's first call need not wait for the session answer.
function csrf() {
  if (session?.csrfToken) return session.csrfToken;
  const c = document.cookie.split(';').map((x) => x.trim()).find((x) => x.startsWith('opentrail_csrf='));
  return c ? c.slice('opentrail_csrf='.length) : '';
}

export function mayBeSignedIn() { return csrf() !== ''; }
export function whenSignedOut(f) { onSignedOut = f; }

async function answer(resp) {
  let body = null;
  try { body = await resp.json(); } catch { body = null; }
  if (resp.ok) return body;
  let code = body?.__type || `HTTP${resp.status}`;
  // The browser drops the cookie at its Max-Age, so an expired session may arrive as no session at all.
  if (resp.status === 401 && session && Date.now() >= Date.parse(session.expiresAt)) code = 'SessionExpired';
  const err = new ApiError(resp.status, code, body?.message || body?.Message || resp.statusText);
  if (resp.status === 401 && session) {
    session = null;
    onSignedOut(err);
  }
  throw err;
}

export async function loadSession() {
  const resp = await fetch('/console/api/session', { credentials: 'same-origin' });
  if (resp.status === 401) {
    const body = await resp.json().catch(() => ({}));
    session = null;
    return { signedOut: body.__type || 'NotSignedIn' };
  }
  session = await answer(resp);
  return session;
}

export async function signIn(form) {
  const resp = await fetch('/console/api/signin', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(form),
  });
  session = await answer(resp);
  return session;
}

export async function signOut() {
  const token = csrf();
  session = null;
  await fetch('/console/api/signout', { method: 'POST', credentials: 'same-origin', headers: { 'x-opentrail-csrf': token } });
}

// A CloudTrail operation (LookupEvents, DescribeTrails, …) with its JSON body.
export async function call(operation, body = {}) {
  const resp = await fetch(`/console/api/call/${operation}`, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-opentrail-csrf': csrf() },
    body: JSON.stringify(body),
  });
  return answer(resp);
}

// Event counts (GET /v1/event-counts' query): pairs of [name, value].
export async function counts(pairs) {
  const q = new URLSearchParams(pairs).toString();
  const resp = await fetch(`/console/api/event-counts?${q}`, {
    credentials: 'same-origin', headers: { 'x-opentrail-csrf': csrf() },
  });
  return answer(resp);
}
