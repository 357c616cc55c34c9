// A tiny authoritative DNS server standing in for the real DNS in tests, so
// Tessera can check that an organization owns an email domain through a TXT
// record such as `_tessera-challenge.acme.test TXT "tessera-verification=…"`.
// It wraps `dns2` and answers from an in-memory table that tests fill in over
// a small HTTP control API.
//
// DNS (UDP and TCP, 127.0.0.1:$DNS_PORT), authoritative (AA) for every name:
//   - TXT (or ANY) for a known name: its TXT values, one record each, TTL $DNS_TTL;
//   - any other type for a known name, or any type for a name that only has
//     known names below it: NOERROR with no answers (NODATA);
//   - anything else: NXDOMAIN.
//   Negative answers carry a made-up SOA (minimum 0) in the authority section
//   so resolvers know the answer is authoritative and do not cache it.
//   Names are matched case-insensitively, with or without the trailing dot.
//   Values longer than 255 bytes are split into several character-strings.
//
// HTTP control API (127.0.0.1:$DNS_HTTP_PORT), names as in DNS (URL-encoded):
//   PUT    /records/<name>  body {"txt": ["v1", "v2"]} (or {"txt": "v1"})
//                           sets the name's TXT values           -> 204
//   DELETE /records/<name>  removes the name (fine if absent)    -> 204
//   GET    /records/<name>  -> 200 {"txt": [...]}, or 404
//   GET    /records         -> 200 {"records": {"<name>": {"txt": [...]}}}
//   DELETE /records         removes every name                   -> 204
//   Errors are JSON: {"error": "..."} with 400/404/405/413.
//
// Environment:
//   DNS_PORT       required; UDP and TCP port for DNS
//   DNS_HTTP_PORT  required; TCP port for the control API
//   DNS_TTL        optional; TTL in seconds of the TXT answers (default 5)
//   DNS_LOG        optional; set to 1 to log every query to stderr
//
// Prints `dns stand-in listening on udp 127.0.0.1:<DNS_PORT>, http
// 127.0.0.1:<DNS_HTTP_PORT>` once everything accepts queries (the HTTP port is
// opened last, so waiting for it is enough). Stops cleanly on SIGTERM or SIGINT.

import { createServer as createHttpServer } from 'node:http';
import process from 'node:process';

import { createServer as createDnsServer, Packet } from 'dns2';

function fail(message) {
  console.error(`dns stand-in: ${message}`);
  process.exit(2);
}

function portFrom(variable) {
  const port = Number.parseInt(process.env[variable] ?? '', 10);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    fail(`${variable} must be set to a port number`);
  }
  return port;
}

const dnsPort = portFrom('DNS_PORT');
const httpPort = portFrom('DNS_HTTP_PORT');
const ttl = process.env.DNS_TTL ? Number.parseInt(process.env.DNS_TTL, 10) : 5;
if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0x7fffffff) {
  fail('DNS_TTL must be a number of seconds');
}
const logQueries = process.env.DNS_LOG === '1';
const host = '127.0.0.1';

// name (lower case, no trailing dot) -> array of TXT values (strings)
const records = new Map();

// Lower case, without the trailing dot. Returns null if the name cannot be a
// DNS name (empty labels, a label over 63 bytes, over 253 bytes in all).
function normalize(name) {
  const trimmed = String(name).trim().toLowerCase().replace(/\.$/, '');
  if (trimmed === '' || Buffer.byteLength(trimmed) > 253) return null;
  const labels = trimmed.split('.');
  if (labels.some((label) => label === '' || Buffer.byteLength(label) > 63)) return null;
  // dns2 writes names a character per byte, so keep to one-byte characters.
  if (!/^[\x21-\x7e]+$/.test(trimmed)) return null;
  return trimmed;
}

// A name exists if it has records or some name below it does.
function nameExists(name) {
  if (records.has(name)) return true;
  const suffix = `.${name}`;
  for (const known of records.keys()) {
    if (known.endsWith(suffix)) return true;
  }
  return false;
}

// RFC 1035 §3.3: a character-string holds at most 255 bytes.
function characterStrings(value) {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length === 0) return [bytes];
  const chunks = [];
  for (let offset = 0; offset < bytes.length; offset += 255) {
    chunks.push(bytes.subarray(offset, offset + 255));
  }
  return chunks;
}

// The made-up zone a negative answer's SOA belongs to: the last two labels.
function zoneOf(name) {
  return name.split('.').slice(-2).join('.');
}

function soaFor(name) {
  const zone = zoneOf(name);
  return {
    name: zone,
    type: Packet.TYPE.SOA,
    class: Packet.CLASS.IN,
    ttl: 0,
    primary: `ns.${zone}`,
    admin: `hostmaster.${zone}`,
    serial: 1,
    refresh: 3600,
    retry: 600,
    expiration: 86400,
    minimum: 0,
  };
}

function answer(request, send, client) {
  const response = Packet.createResponseFromRequest(request);
  response.header.aa = 1;
  response.header.ra = 0;
  response.header.cd = request.header.cd ?? 0;

  // RFC 6891 §7: answer an EDNS query with an OPT record of our own.
  const askedEdns = request.additionals.some((record) => record && record.type === Packet.TYPE.EDNS);
  if (askedEdns) response.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: 1232 }));

  const question = request.questions[0];
  const name = question ? normalize(question.name) : null;
  const log = (outcome) => {
    if (logQueries) {
      console.error(`dns stand-in: ${client?.address ?? '?'} ${question?.type ?? '-'} ${question?.name ?? '-'} -> ${outcome}`);
    }
  };

  if (request.header.opcode !== 0) {
    response.header.rcode = Packet.RCODE.NOTIMP;
    log('NOTIMP');
  } else if (request.questions.length !== 1) {
    response.header.rcode = Packet.RCODE.FORMERR;
    log('FORMERR');
  } else if (question.class !== Packet.CLASS.IN && question.class !== Packet.CLASS.ANY) {
    response.header.rcode = Packet.RCODE.REFUSED;
    log('REFUSED');
  } else if (name === null || !nameExists(name)) {
    response.header.rcode = Packet.RCODE.NXDOMAIN;
    response.authorities.push(soaFor(name ?? 'invalid'));
    log('NXDOMAIN');
  } else if (records.has(name) && (question.type === Packet.TYPE.TXT || question.type === Packet.TYPE.ANY)) {
    for (const value of records.get(name)) {
      response.answers.push({
        name: question.name,
        type: Packet.TYPE.TXT,
        class: Packet.CLASS.IN,
        ttl,
        data: characterStrings(value),
      });
    }
    log(`${response.answers.length} TXT`);
  } else {
    response.authorities.push(soaFor(name));
    log('NODATA');
  }

  Promise.resolve(send(response)).catch((error) => {
    console.error(`dns stand-in: could not send an answer: ${error.message}`);
  });
}

const dns = createDnsServer({ udp: true, tcp: true, handle: answer });
dns.on('requestError', (error) => {
  if (logQueries) console.error(`dns stand-in: unreadable query: ${error.message}`);
});
dns.on('error', (error, transport) => {
  console.error(`dns stand-in: ${transport ?? 'dns'}: ${error.message}`);
  process.exit(1);
});

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendEmpty(res) {
  res.writeHead(204);
  res.end();
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 64 * 1024) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(Object.assign(new Error('body is not JSON'), { status: 400 }));
      }
    });
    req.on('error', reject);
  });
}

function listAll() {
  const out = {};
  for (const [name, txt] of [...records.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    out[name] = { txt };
  }
  return out;
}

async function control(req, res) {
  const path = new URL(req.url ?? '/', `http://${host}`).pathname.replace(/\/+$/, '');

  if (path === '/records') {
    if (req.method === 'GET') return sendJson(res, 200, { records: listAll() });
    if (req.method === 'DELETE') {
      records.clear();
      return sendEmpty(res);
    }
    return sendJson(res, 405, { error: 'use GET or DELETE' });
  }

  if (!path.startsWith('/records/')) return sendJson(res, 404, { error: 'no such endpoint' });
  let raw;
  try {
    raw = decodeURIComponent(path.slice('/records/'.length));
  } catch {
    return sendJson(res, 400, { error: 'name is not URL-encoded properly' });
  }
  const name = normalize(raw);
  if (name === null) return sendJson(res, 400, { error: `not a usable DNS name: ${raw}` });

  switch (req.method) {
    case 'PUT': {
      const body = await readJson(req);
      let txt = body?.txt;
      if (typeof txt === 'string') txt = [txt];
      if (!Array.isArray(txt) || !txt.every((value) => typeof value === 'string')) {
        return sendJson(res, 400, { error: 'body must be {"txt": ["value", ...]}' });
      }
      if (txt.some((value) => Buffer.byteLength(value) > 4000)) {
        return sendJson(res, 400, { error: 'TXT values are limited to 4000 bytes here' });
      }
      records.set(name, [...txt]);
      return sendEmpty(res);
    }
    case 'DELETE':
      records.delete(name);
      return sendEmpty(res);
    case 'GET':
      if (!records.has(name)) return sendJson(res, 404, { error: `no records for ${name}` });
      return sendJson(res, 200, { txt: records.get(name) });
    default:
      return sendJson(res, 405, { error: 'use PUT, GET or DELETE' });
  }
}

const http = createHttpServer((req, res) => {
  control(req, res).catch((error) => {
    if (!res.headersSent) sendJson(res, error.status ?? 500, { error: error.message });
    else res.destroy();
  });
});
http.on('error', (error) => {
  console.error(`dns stand-in: http: ${error.message}`);
  process.exit(1);
});

// Open TCP connections would keep the server from closing; drop them on stop.
const tcpConnections = new Set();
dns.servers.tcp.on('connection', (socket) => {
  tcpConnections.add(socket);
  socket.on('close', () => tcpConnections.delete(socket));
});

let ready = false;
let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  if (!ready) process.exit(0); // nothing is open yet
  setTimeout(() => process.exit(0), 2000).unref();
  http.close();
  http.closeAllConnections();
  for (const socket of tcpConnections) socket.destroy();
  dns.close().then(() => process.exit(0));
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

await dns.listen({
  udp: { port: dnsPort, address: host },
  tcp: { port: dnsPort, address: host },
});
await new Promise((resolve) => http.listen(httpPort, host, resolve));
ready = true;
console.log(`dns stand-in listening on udp ${host}:${dnsPort}, http ${host}:${httpPort}`);
