// A local OpenID Connect provider standing in for a real identity provider in
// tests. It wraps `oidc-provider` (v9) with:
//   - open dynamic client registration at POST /reg (no initial access token),
//     so every test registers its own confidential client and redirect URI;
//   - a one-page login form instead of the library's dev interactions, with
//     consent granted automatically for everything the client asked for;
//   - accounts made up on the spot from whatever the form was given
//     (sub = the form's `sub`, else the first 32 hex of sha256(lowercased email));
//   - PKCE (S256) required on every authorization request;
//   - ID tokens signed RS256 with a key made at start-up, carrying the granted
//     email/profile claims as well as userinfo does.
// Signing in as a different person in a browser that already has a session
// simply replaces that session (no logout round trip).
//
// Environment:
//   OIDC_PORT     required; the port to listen on (127.0.0.1 only)
//   OIDC_ISSUER   optional; defaults to http://127.0.0.1:${OIDC_PORT}
//                 (origin only, no path)
//   OIDC_CLIENTS  optional; JSON array of static clients
//                 [{ "client_id", "client_secret", "redirect_uris": [...] }]
//
// Prints `oidc-provider listening on <issuer>` once it accepts connections.
// Stops cleanly on SIGTERM or SIGINT.

import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

function fail(message) {
  console.error(`oidc-provider: ${message}`);
  process.exit(2);
}

const port = Number.parseInt(process.env.OIDC_PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail('OIDC_PORT must be set to a TCP port number');
}

const issuer = process.env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
{
  const parsed = URL.parse(issuer);
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol)) {
    fail(`OIDC_ISSUER is not an http(s) URL: ${issuer}`);
  }
  if (parsed.pathname !== '/' || parsed.search || parsed.hash) {
    fail(`OIDC_ISSUER must be an origin without a path: ${issuer}`);
  }
}

let staticClients = [];
if (process.env.OIDC_CLIENTS) {
  try {
    staticClients = JSON.parse(process.env.OIDC_CLIENTS);
  } catch (error) {
    fail(`OIDC_CLIENTS is not valid JSON: ${error.message}`);
  }
  if (!Array.isArray(staticClients)) {
    fail('OIDC_CLIENTS must be a JSON array');
  }
}

// Accounts seen at the login form, keyed by account id (= `sub`).
const accounts = new Map();

function accountIdFor(email, sub) {
  if (sub) return sub;
  const digest = createHash('sha256').update(email.trim().toLowerCase()).digest('hex');
  return digest.slice(0, 32);
}

// A signing key made fresh each run; RS256 is what relying parties accept by default.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'stand-in-rs256', use: 'sig', alg: 'RS256' };

const configuration = {
  clients: staticClients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  scopes: ['openid', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Also put the scope-granted claims in the ID token, not only at userinfo.
  conformIdTokenClaims: false,
  pkce: {
    // Every authorization request must carry an S256 code_challenge.
    required: () => true,
  },
  cookies: {
    keys: ['tessera-stand-in-cookie-key-7f3a9c1e', 'tessera-stand-in-cookie-key-2b8d4e60'],
  },
  jwks: { keys: [signingKey] },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true, initialAccessToken: false },
    userinfo: { enabled: true },
  },
  interactions: {
    url(_ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  async findAccount(_ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: account.email,
          email_verified: account.email_verified,
          name: account.name,
        };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, error) => console.error('oidc-provider server_error:', error));

// Grants everything the interaction asks for, on top of any grant the session
// already holds for this client, and returns the grant's id.
async function grantFor(interaction, accountId) {
  const { params, prompt, grantId: existingGrantId } = interaction;
  let grant;
  if (existingGrantId) grant = await provider.Grant.find(existingGrantId);
  if (grant && (grant.accountId !== accountId || grant.clientId !== params.client_id)) grant = undefined;
  if (!grant) grant = new provider.Grant({ accountId, clientId: params.client_id });

  if (params.scope) grant.addOIDCScope(String(params.scope));
  const details = prompt?.details ?? {};
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  if (details.missingResourceScopes) {
    for (const [resource, scopes] of Object.entries(details.missingResourceScopes)) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
  }
  if (params.claims) {
    try {
      const requested = JSON.parse(params.claims);
      const names = new Set();
      for (const member of ['id_token', 'userinfo']) {
        for (const name of Object.keys(requested?.[member] ?? {})) names.add(name);
      }
      if (names.size) grant.addOIDCClaims([...names]);
    } catch {
      // a malformed claims parameter is the library's to reject
    }
  }
  return grant.save();
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function loginPage(uid, { error, email = '', name = '', sub = '', emailVerified = true } = {}) {
  const action = `/interaction/${encodeURIComponent(uid)}`;
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Test identity provider</title></head>
<body>
<h1>Test identity provider</h1>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
  <p><label for="email">Email</label> <input id="email" name="email" type="email" value="${escapeHtml(email)}" required autofocus></p>
  <p><label for="name">Name</label> <input id="name" name="name" type="text" value="${escapeHtml(name)}"></p>
  <p><input id="email_verified" name="email_verified" type="checkbox" value="true"${emailVerified ? ' checked' : ''}> <label for="email_verified">Email verified</label></p>
  <p><label for="sub">Subject (optional)</label> <input id="sub" name="sub" type="text" value="${escapeHtml(sub)}"></p>
  <p><button type="submit">Sign in</button></p>
</form>
</body>
</html>
`;
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function handleInteraction(req, res, uid) {
  let interaction;
  try {
    interaction = await provider.interactionDetails(req, res);
  } catch (error) {
    send(res, 400, `<!doctype html><title>Test identity provider</title><p>${escapeHtml(error.message)}</p>\n`);
    return;
  }
  if (interaction.uid !== uid) {
    send(res, 400, '<!doctype html><title>Test identity provider</title><p>interaction mismatch</p>\n');
    return;
  }

  const promptName = interaction.prompt?.name;

  // Already signed in, only consent missing: grant it without a page.
  if (promptName === 'consent') {
    const accountId = interaction.session?.accountId;
    const grantId = await grantFor(interaction, accountId);
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }

  if (req.method === 'GET') {
    send(res, 200, loginPage(uid));
    return;
  }

  if (req.method !== 'POST') {
    res.setHeader('Allow', 'GET, POST');
    send(res, 405, 'method not allowed\n', 'text/plain; charset=utf-8');
    return;
  }

  const form = await readForm(req);
  const email = (form.get('email') ?? '').trim();
  const name = (form.get('name') ?? '').trim();
  const sub = (form.get('sub') ?? '').trim();
  const emailVerified = form.has('email_verified')
    && !['', 'false', 'off', '0'].includes(form.get('email_verified'));
  if (!email) {
    send(res, 400, loginPage(uid, { error: 'Email is required.', name, sub, emailVerified }));
    return;
  }

  const accountId = accountIdFor(email, sub);
  accounts.set(accountId, { email, email_verified: emailVerified, name: name || undefined });

  // Signing in as someone else than the browser's current session: drop that
  // session here, so the library does not answer with its auto-submitting
  // logout form (which a cookie-jar HTTP client would have to replay).
  const previous = interaction.session;
  if (previous?.accountId && previous.accountId !== accountId) {
    const session = previous.uid ? await provider.Session.findByUid(previous.uid) : undefined;
    delete interaction.session;
    delete interaction.grantId;
    await interaction.save(Math.max(interaction.exp - Math.floor(Date.now() / 1000), 1));
    if (session) await session.destroy();
  }

  const grantId = await grantFor(interaction, accountId);
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const providerCallback = provider.callback();

const server = createServer((req, res) => {
  const { pathname } = new URL(req.url, 'http://stand-in');
  const match = /^\/interaction\/([^/]+)\/?$/.exec(pathname);
  if (!match) {
    providerCallback(req, res);
    return;
  }
  handleInteraction(req, res, decodeURIComponent(match[1])).catch((error) => {
    console.error('oidc-provider interaction error:', error);
    if (!res.headersSent) send(res, 500, 'interaction failed\n', 'text/plain; charset=utf-8');
    else res.end();
  });
});

server.on('error', (error) => {
  console.error(`oidc-provider: ${error.message}`);
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
