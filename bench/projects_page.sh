#!/usr/bin/env bash
# Load test for the tenant-scoped projects page (run through `cargo xtask bench`).
# Starts a private PostgreSQL and the release server on loopback, logs in as the demo owner,
# then: wrk (64 connections) on /t/acme/projects, and pgbench on the page's query with RLS on
# (as the app role, tenant set per transaction) and off (superuser, explicit tenant filter).
# Bounded: every load runs for DURATION seconds against 127.0.0.1 only.
set -euo pipefail
DURATION=${DURATION:-15}
SERVER=${TESSERA_SERVER_BIN:?build with cargo xtask bench}
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
WORK=$(mktemp -d /tmp/tessera-bench.XXXX)
chmod 755 "$WORK"
PGPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
HTTPPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$WORK"
cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres -A trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" -l "$WORK/pg.log" -w start >/dev/null
psql() { "$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"; }
psql -d postgres -c "CREATE ROLE tessera_owner LOGIN CREATEDB CREATEROLE; CREATE ROLE tessera_app LOGIN NOSUPERUSER NOBYPASSRLS;"
psql -d postgres -c "CREATE DATABASE tessera OWNER tessera_owner;"
URL="postgres://tessera_app@127.0.0.1:$PGPORT/tessera"
DATABASE_URL=$URL DATABASE_OWNER_URL="postgres://tessera_owner@127.0.0.1:$PGPORT/tessera" TESSERA_SEED_DEMO=1 \
  TESSERA_ADDR="127.0.0.1:$HTTPPORT" RUST_LOG=warn "$SERVER" & SERVER_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$HTTPPORT/healthz" >/dev/null && break; sleep 0.2; done
curl -fs -c "$WORK/cookies" -H 'accept: application/json' \
  -d 'email=owner@acme.test&password=tessera-demo' "http://127.0.0.1:$HTTPPORT/api/log_in" >/dev/null
COOKIE=$(awk '$6=="tessera_session"{print "tessera_session="$7}' "$WORK/cookies")
test "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "http://127.0.0.1:$HTTPPORT/t/acme/projects")" = 200

echo "== wrk: GET /t/acme/projects, 64 connections, ${DURATION}s (authenticated, SSR)"
wrk -t2 -c64 -d"${DURATION}s" --latency -H "Cookie: $COOKIE" "http://127.0.0.1:$HTTPPORT/t/acme/projects" \
  | grep -E 'Requests/sec|99%|Non-2xx' || true

TENANT=$(psql -d tessera -At -c "SELECT id FROM tenants WHERE slug='acme'")
QUERY="SELECT p.id, p.name, p.description, COALESCE(u.display_name, u.email), p.created_at FROM projects p JOIN users u ON u.id = p.created_by"
cat > "$WORK/rls.sql" <<SQL
BEGIN;
SELECT set_config('app.tenant_id', '$TENANT', true);
$QUERY ORDER BY p.created_at DESC, p.id LIMIT 500;
COMMIT;
SQL
# Same statements, so the only difference is the policy: the setting is made but unused.
cat > "$WORK/norls.sql" <<SQL
BEGIN;
SELECT set_config('app.tenant_id', '$TENANT', true);
$QUERY WHERE p.tenant_id = '$TENANT' ORDER BY p.created_at DESC, p.id LIMIT 500;
COMMIT;
SQL
pgb() { "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PGPORT" -c 8 -j 2 -T "$DURATION" "$@" tessera | awk '/^tps/{print $3}'; }
RLS=$(pgb -U tessera_app -f "$WORK/rls.sql")
NORLS=$(pgb -U postgres -f "$WORK/norls.sql")
echo "== pgbench: projects query, 8 clients, ${DURATION}s"
echo "with RLS (app role, tenant context):   $RLS tps"
echo "without RLS (superuser, WHERE tenant): $NORLS tps"
python3 -c "print(f'RLS overhead ratio (no-RLS tps / RLS tps): {float($NORLS)/float($RLS):.3f}')"
