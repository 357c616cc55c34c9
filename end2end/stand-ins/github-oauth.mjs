// A local stand-in for GitHub's OAuth apps ("Sign in with GitHub"), laid out
// like a GitHub Enterprise Server so Tessera only needs its `server_url`:
//
//   GET  /login/oauth/authorize     a sign-in form for the person (no session:
//                                   every visit asks again). The query carries
//                                   client_id, redirect_uri, scope, state and
//                                   code_challenge (+ _method=S256).
//   POST /login/oauth/authorize     the form, posted back to the same URL with
//                                   the same query. "Cancel" redirects with
//                                   error=access_denied; otherwise with a code.
//   POST /login/oauth/access_token  form or JSON body: client_id, client_secret,
//                                   code, redirect_uri, code_verifier. Like
//                                   GitHub, errors come back as 200 with an
//                                   `error` field; JSON when Accept asks for it.
//   GET  /api/v3/user               {id, login, name, email} of the token's person
//   GET  /api/v3/user/emails        [{email, primary, verified, visibility}]
//                                   (needs the user:email scope)
//   POST /_stand-in/clients         {"redirect_uris": [...]} -> 201
//                                   {"client_id", "client_secret"} (tests
//                                   register their own client)
//
// Strict where GitHub is strict, so a client bug shows up in tests: the
// redirect_uri must be one registered for the client, codes are single-use and
// live 10 minutes, PKCE (S256) is required and the verifier must meet the
// challenge, client credentials go in the body, API calls need a
// User-Agent and a bearer (or `token`) Authorization header.
//
// The form's fields: email (the primary address), email_verified (checkbox),
// secondary_email (optional; always verified), name, login (defaults to the
// email's local part) and sub (the numeric id; defaults to one derived from
// the login, so the same login is the same person every time).
//
// Environment:
//   GITHUB_PORT     required; the port to listen on (127.0.0.1 only)
//   GITHUB_CLIENTS  optional; JSON array of static clients
//                   [{ "client_id", "client_secret", "redirect_uris": [...] }]
//
// Prints `github stand-in listening on http://127.0.0.1:<port>` once it
// accepts connections. Stops cleanly on SIGTERM or SIGINT.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import process from 'node:process';

function fail(message) {
  console.error(`github stand-in: ${message}`);
  process.exit(2);
}

const port = Number.parseInt(process.env.GITHUB_PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail('GITHUB_PORT must be set to a TCP port number');
}

// client_id -> { secret, redirectUris }
const clients = new Map();
if (process.env.GITHUB_CLIENTS) {
  let list;
  try {
    list = JSON.parse(process.env.GITHUB_CLIENTS);
  } catch (error) {
    fail(`GITHUB_CLIENTS is not valid JSON: ${error.message}`);
  }
  if (!Array.isArray(list)) fail('GITHUB_CLIENTS must be a JSON array');
  for (const c of list) {
    if (typeof c?.client_id !== 'string' || typeof c?.client_secret !== 'string' || !Array.isArray(c?.redirect_uris)) {
      fail('each of GITHUB_CLIENTS needs client_id, client_secret and redirect_uris');
    }
    clients.set(c.client_id, { secret: c.client_secret, redirectUris: c.redirect_uris.map(String) });
  }
}

const CODE_LIFETIME_MS = 10 * 60 * 1000;
// code -> { clientId, redirectUri, challenge, scopes, userId, expires }
const codes = new Map();
// access token -> { userId, scopes }
const tokens = new Map();
// numeric id -> { id, login, name, emails: [{ email, primary, verified }] }
const users = new Map();

const token = (prefix, bytes = 20) => `${prefix}${randomBytes(bytes).toString('hex')}`;

function sameSecret(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

// A stable id for a login, in GitHub's range of small positive integers.
function idFor(login) {
  return createHash('sha256').update(login.toLowerCase()).digest().readUInt32BE(0) % 90_000_000 + 1_000_000;
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

const sendJson = (res, status, value) => send(res, status, `${JSON.stringify(value)}\n`, 'application/json; charset=utf-8');

function redirect(res, target) {
  res.statusCode = 302;
  res.setHeader('Location', target);
  res.setHeader('Cache-Control', 'no-store');
  res.end();
}

async function readBody(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readParams(req) {
  const body = await readBody(req);
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    const value = body ? JSON.parse(body) : {};
    return new Map(Object.entries(value).map(([k, v]) => [k, String(v)]));
  }
  return new Map(new URLSearchParams(body));
}

function errorPage(res, status, message) {
  send(res, status, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>GitHub stand-in</title></head>
<body><h1>GitHub stand-in</h1><p role="alert">${escapeHtml(message)}</p></body></html>\n`);
}

// Checks an authorize request's query; returns its parts, or sends an error page.
function authorizeRequest(url, res) {
  const q = url.searchParams;
  const client = clients.get(q.get('client_id') ?? '');
  if (!client) {
    errorPage(res, 404, 'No OAuth app has that client_id.');
    return null;
  }
  const redirectUri = q.get('redirect_uri') ?? client.redirectUris[0];
  if (!client.redirectUris.includes(redirectUri)) {
    errorPage(res, 400, 'The redirect_uri is not associated with this application.');
    return null;
  }
  // Stricter than GitHub, which still accepts requests without PKCE: a client that stopped
  // sending it should fail its tests.
  if (!q.get('code_challenge') || q.get('code_challenge_method') !== 'S256') {
    errorPage(res, 400, 'This stand-in requires PKCE: code_challenge with code_challenge_method=S256.');
    return null;
  }
  const scopes = (q.get('scope') ?? '').split(/[\s,]+/).filter(Boolean);
  return { clientId: q.get('client_id'), redirectUri, state: q.get('state'), challenge: q.get('code_challenge'), scopes };
}

function backTo(request, params) {
  const target = new URL(request.redirectUri);
  for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
  if (request.state !== null) target.searchParams.set('state', request.state);
  return target.toString();
}

function signInPage(request, action, { error } = {}) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in to GitHub stand-in</title></head>
<body>
<h1>Sign in to GitHub stand-in</h1>
<p>to continue to ${escapeHtml(request.clientId)}, which asks for: ${escapeHtml(request.scopes.join(', ') || 'public data')}</p>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
  <p><label for="email">Email</label> <input id="email" name="email" type="email" required autofocus></p>
  <p><input id="email_verified" name="email_verified" type="checkbox" value="true" checked> <label for="email_verified">Email verified</label></p>
  <p><label for="secondary_email">Another verified email (optional)</label> <input id="secondary_email" name="secondary_email" type="email"></p>
  <p><label for="name">Name</label> <input id="name" name="name" type="text"></p>
  <p><label for="login">Username (optional)</label> <input id="login" name="login" type="text"></p>
  <p><label for="sub">Numeric id (optional)</label> <input id="sub" name="sub" type="text" inputmode="numeric"></p>
  <p><button type="submit" name="decision" value="authorize">Authorize</button>
     <button type="submit" name="decision" value="cancel" formnovalidate>Cancel</button></p>
</form>
</body>
</html>
`;
}

async function authorize(req, res, url) {
  const request = authorizeRequest(url, res);
  if (!request) return;
  const action = `${url.pathname}${url.search}`;
  if (req.method === 'GET') return send(res, 200, signInPage(request, action));

  const form = await readParams(req);
  if (form.get('decision') === 'cancel') {
    return redirect(res, backTo(request, {
      error: 'access_denied',
      error_description: 'The user has denied your application access.',
    }));
  }
  const email = (form.get('email') ?? '').trim();
  if (!email.includes('@')) return send(res, 400, signInPage(request, action, { error: 'Enter an email address.' }));
  const login = (form.get('login') ?? '').trim() || email.split('@')[0].replace(/[^A-Za-z0-9-]/g, '-');
  const sub = (form.get('sub') ?? '').trim();
  if (sub && !/^[1-9][0-9]{0,15}$/.test(sub)) return send(res, 400, signInPage(request, action, { error: 'The id must be a number.' }));
  const id = sub ? Number(sub) : idFor(login);
  const verified = form.has('email_verified') && !['', 'false', 'off', '0'].includes(form.get('email_verified'));
  const emails = [{ email, primary: true, verified }];
  const secondary = (form.get('secondary_email') ?? '').trim();
  if (secondary) emails.push({ email: secondary, primary: false, verified: true });
  users.set(id, { id, login, name: (form.get('name') ?? '').trim() || null, emails });

  const code = token('', 10);
  codes.set(code, { ...request, userId: id, expires: Date.now() + CODE_LIFETIME_MS });
  return redirect(res, backTo(request, { code }));
}

async function accessToken(req, res) {
  const wantsJson = (req.headers.accept ?? '').includes('json');
  const answer = (value) => (wantsJson
    ? sendJson(res, 200, value)
    : send(res, 200, new URLSearchParams(value).toString(), 'application/x-www-form-urlencoded'));
  const problem = (error, description) => answer({ error, error_description: description });

  let params;
  try {
    params = await readParams(req);
  } catch {
    return sendJson(res, 400, { message: 'Problems parsing the request body' });
  }
  const client = clients.get(params.get('client_id') ?? '');
  if (!client || !sameSecret(params.get('client_secret') ?? '', client.secret)) {
    return problem('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
  }
  const code = params.get('code') ?? '';
  const grant = codes.get(code);
  // Single use, whatever happens next.
  codes.delete(code);
  if (!grant || grant.clientId !== params.get('client_id') || grant.expires < Date.now()) {
    return problem('bad_verification_code', 'The code passed is incorrect or expired.');
  }
  if (params.has('redirect_uri') && params.get('redirect_uri') !== grant.redirectUri) {
    return problem('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
  }
  if (grant.challenge) {
    const verifier = params.get('code_verifier') ?? '';
    const computed = createHash('sha256').update(verifier).digest('base64url');
    if (!verifier || !sameSecret(computed, grant.challenge)) {
      return problem('bad_verification_code', 'The code_verifier does not match the code_challenge.');
    }
  }
  const issued = token('gho_');
  tokens.set(issued, { userId: grant.userId, scopes: grant.scopes });
  return answer({ access_token: issued, token_type: 'bearer', scope: grant.scopes.join(',') });
}

function api(req, res, path) {
  if (!req.headers['user-agent']) {
    return sendJson(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.' });
  }
  const match = /^(?:bearer|token)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  const grant = match && tokens.get(match[1]);
  const user = grant && users.get(grant.userId);
  if (!user) return sendJson(res, 401, { message: 'Bad credentials' });
  if (path === '/user') {
    const primary = user.emails.find((e) => e.primary);
    return sendJson(res, 200, { login: user.login, id: user.id, type: 'User', name: user.name, email: primary?.email ?? null });
  }
  if (path === '/user/emails') {
    if (!grant.scopes.includes('user:email') && !grant.scopes.includes('user')) {
      return sendJson(res, 404, { message: 'Not Found' });
    }
    return sendJson(res, 200, user.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })));
  }
  return sendJson(res, 404, { message: 'Not Found' });
}

async function registerClient(req, res) {
  let params;
  try {
    params = JSON.parse((await readBody(req)) || '{}');
  } catch {
    return sendJson(res, 400, { error: 'body must be JSON' });
  }
  if (!Array.isArray(params.redirect_uris) || params.redirect_uris.length === 0) {
    return sendJson(res, 400, { error: 'redirect_uris must be a non-empty array' });
  }
  const clientId = token('Iv1.', 8);
  const clientSecret = token('', 20);
  clients.set(clientId, { secret: clientSecret, redirectUris: params.redirect_uris.map(String) });
  return sendJson(res, 201, { client_id: clientId, client_secret: clientSecret });
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /login/oauth/authorize' || route === 'POST /login/oauth/authorize') return await authorize(req, res, url);
    if (route === 'POST /login/oauth/access_token') return await accessToken(req, res);
    if (req.method === 'GET' && url.pathname.startsWith('/api/v3/')) return api(req, res, url.pathname.slice('/api/v3'.length));
    if (route === 'POST /_stand-in/clients') return await registerClient(req, res);
    return sendJson(res, 404, { message: 'Not Found' });
  } catch (error) {
    console.error('github stand-in:', error);
    if (!res.headersSent) sendJson(res, 500, { message: 'stand-in error' });
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`github stand-in listening on http://127.0.0.1:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
