// A local SAML 2.0 identity provider standing in for a real one in tests. It
// runs `saml-idp` (1.2.1, with samlp 8 via package.json `overrides`) in this
// process, with two adjustments made from outside the package:
//   - the Assertion's <Audience> is the Issuer of the AuthnRequest being
//     answered (saml-idp itself always uses its one configured audience), so a
//     single IdP serves every tenant's SP entity id; the Response also goes to
//     the request's AssertionConsumerServiceURL and answers its ID
//     (InResponseTo), which saml-idp does on its own;
//   - assertion signing can be switched off (saml-idp always signs it).
// A signing key and self-signed certificate are made at start-up with openssl
// (in a temporary directory removed at exit) unless SAML_IDP_CERT and
// SAML_IDP_KEY name existing PEM files.
//
// The login page is saml-idp's own: GET /saml/sso?SAMLRequest=… (HTTP-Redirect)
// or POST /saml/sso (HTTP-POST) shows a form (#userName is the NameID,
// #email, #firstName, #lastName, …); "Sign in" posts it to /signin, which
// answers with a page that auto-posts SAMLResponse and RelayState to the ACS.
// Metadata: GET /metadata.
//
// Environment:
//   SAML_IDP_PORT            required; the port to listen on (127.0.0.1 only)
//   SAML_IDP_ISSUER          optional; the IdP entity id, defaults to
//                            http://127.0.0.1:${SAML_IDP_PORT}/metadata
//   SAML_IDP_CERT, SAML_IDP_KEY
//                            optional, both or neither; PEM file paths
//   SAML_SP_ACS_URL          optional; ACS URL for responses to requests that
//                            carry none (and for IdP-initiated sign-in)
//   SAML_SP_AUDIENCE         optional; audience for responses to requests that
//                            carry no Issuer (and for IdP-initiated sign-in)
//   SAML_IDP_SIGN_RESPONSE   optional; "false" leaves the Response unsigned
//   SAML_IDP_SIGN_ASSERTION  optional; "false" leaves the Assertion unsigned
//   SAML_IDP_CONFIG          optional; saml-idp attribute config file (default
//                            its own config.js: user profile + attributes)
//
// Prints `saml-idp listening on http://127.0.0.1:PORT` once it accepts
// connections. Stops on SIGTERM or SIGINT.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';

function fail(message) {
  console.error(`saml-idp: ${message}`);
  process.exit(2);
}

function flag(name) {
  const value = (process.env[name] ?? '').trim().toLowerCase();
  return !['false', 'no', 'off', '0'].includes(value);
}

const port = Number.parseInt(process.env.SAML_IDP_PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail('SAML_IDP_PORT must be set to a TCP port number');
}
const origin = `http://127.0.0.1:${port}`;
const issuer = process.env.SAML_IDP_ISSUER || `${origin}/metadata`;
const signAssertion = flag('SAML_IDP_SIGN_ASSERTION');

let cert = process.env.SAML_IDP_CERT;
let key = process.env.SAML_IDP_KEY;
if (Boolean(cert) !== Boolean(key)) fail('set both SAML_IDP_CERT and SAML_IDP_KEY, or neither');
if (cert) {
  for (const file of [cert, key]) if (!existsSync(file)) fail(`no such file: ${file}`);
} else {
  // saml-idp reads these files as they are; a PKCS#8 key file is fine
  // (only a key given inline as text must be "BEGIN RSA PRIVATE KEY").
  const tempDir = mkdtempSync(join(tmpdir(), 'saml-idp-'));
  process.on('exit', () => rmSync(tempDir, { recursive: true, force: true }));
  cert = join(tempDir, 'idp-cert.pem');
  key = join(tempDir, 'idp-key.pem');
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '365',
      '-subj', '/CN=Tessera test SAML IdP', '-keyout', key, '-out', cert,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    fail(`openssl could not make a signing certificate: ${error.stderr || error.message}`);
  }
}

const require = createRequire(import.meta.url);
const idpRequire = createRequire(require.resolve('saml-idp'));
const { runServer } = idpRequire('saml-idp');
const samlp = idpRequire('samlp'); // the instance saml-idp's app.js calls

// saml-idp calls samlp.auth(options) on every sign-in, with
// req.authnRequest = { id, issuer, acsUrl, relayState, … } taken from the
// form's hidden `_authnRequest` field. Answer the request's Issuer.
const samlpAuth = samlp.auth;
samlp.auth = (options) => (req, res, next) => samlpAuth({
  ...options,
  audience: req.authnRequest?.issuer || options.audience,
  signAssertion,
})(req, res, next);

// saml-idp lets $PORT and $HOST override its port and host options.
delete process.env.PORT;
delete process.env.HOST;

// runServer() keeps its http.Server to itself: catch it as it is made.
const createServer = http.createServer;
let server;
http.createServer = (...args) => (server = createServer(...args));
try {
  runServer({
    host: '127.0.0.1',
    port,
    issuer,
    cert,
    key,
    acsUrl: process.env.SAML_SP_ACS_URL || `${origin}/no-acs-url-configured`,
    audience: process.env.SAML_SP_AUDIENCE || 'urn:tessera:test:no-audience-configured',
    signResponse: flag('SAML_IDP_SIGN_RESPONSE'),
    ...(process.env.SAML_IDP_CONFIG ? { configFile: process.env.SAML_IDP_CONFIG } : {}),
  });
} finally {
  http.createServer = createServer;
}
if (!server) fail('saml-idp did not start an HTTP server');

server.on('error', (error) => {
  console.error(`saml-idp: ${error.message}`);
  process.exit(1);
});
server.once('listening', () => {
  console.log(`saml-idp listening on ${origin}`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
