#!/usr/bin/env bash
# Benchmarks for the tenancy layer (run through `cargo xtask bench`).
#
# Starts two private PostgreSQL clusters (regions "eu" and "us") and the release server on
# loopback with the demo data: Acme (pooled, eu), Globex (own schema, eu) and Initech
# (dedicated database, us), each with the same three projects. Then:
#   1. wrk (64 connections) on the same page, /t/<org>/projects, for each of the three, and
#      on the baseline (bench/baseline: a bare axum + sqlx page with the same rows);
#   2. the same for one REST list call (API key) and one server-function call, against the
#      baseline's JSON form of the same rows; the server's memory (RSS) under that load;
#   3. the hydration bundle: the WASM the projects page fetches (gzip and brotli) and its time
#      to interactive in Chromium (bench/tti.mjs);
#   4. pgbench on the page's query with row-level security on (app role, tenant set per
#      transaction) and off (superuser, explicit tenant filter): the RLS overhead ratio;
#   5. the page and the REST call again with 10,000 more pooled organizations and 1,000,000
#      project rows in the shared tables, as a ratio of the first run;
#   6. the time `tessera-server migrate` takes to bring 1,000 tenant schemas up to date;
#   7. jobs/s through the job queue (`tessera-server worker`, 4 workers, probe jobs spread
#      over 100 organizations' lanes) against pgbench running each job's own statement;
#   8. webhook deliveries/s (signed, logged, 4 workers) to a local receiver (the baseline's
#      /hook), against wrk posting the same body to that receiver over 4 connections.
# Bounded: every load runs for DURATION seconds against 127.0.0.1 only. With PROFILE=<file>,
# the pooled page's load is also recorded with `perf record -a` into that file (where the
# machine's time goes: the server, PostgreSQL, wrk).
set -euo pipefail
DURATION=${DURATION:-15}
TENANTS=${TENANTS:-1000}
SCALE_ORGS=${SCALE_ORGS:-10000}
SCALE_ROWS=${SCALE_ROWS:-1000000}
JOBS=${JOBS:-8}
QUEUE_JOBS=${QUEUE_JOBS:-20000}
DELIVERIES=${DELIVERIES:-5000}
SERVER=${TESSERA_SERVER_BIN:?build with cargo xtask bench}
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
WORK=$(mktemp -d /tmp/tessera-bench.XXXX)
chmod 755 "$WORK"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT_EU=$(free_port); PORT_US=$(free_port); HTTPPORT=$(free_port)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$WORK"
cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "${BASELINE_PID:-}" ] && kill "$BASELINE_PID" 2>/dev/null || true
  for c in eu us; do as_pg "$PGBIN/pg_ctl" -D "$WORK/$c" -m fast stop >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
start_cluster() { # name port
  as_pg "$PGBIN/initdb" -D "$WORK/$1" -U postgres -A trust --no-sync >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$WORK/$1" -o "-p $2 -k $WORK/$1 -c listen_addresses=127.0.0.1 -c max_connections=200" -l "$WORK/$1.log" -w start >/dev/null
  "$PGBIN/psql" -q -h 127.0.0.1 -p "$2" -U postgres -d postgres \
    -c "CREATE ROLE tessera_owner LOGIN CREATEDB CREATEROLE; CREATE ROLE tessera_app LOGIN NOSUPERUSER NOBYPASSRLS;" \
    -c "GRANT pg_signal_backend TO tessera_owner;" -c "CREATE DATABASE tessera OWNER tessera_owner;"
  # As production should be (README, Configuration): the app role may not call set_config.
  for db in template1 tessera; do
    "$PGBIN/psql" -q -h 127.0.0.1 -p "$2" -U postgres -d "$db" \
      -c "REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC" \
      -c "GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO tessera_owner"
  done
}
start_cluster eu "$PORT_EU"
start_cluster us "$PORT_US"
psql() { "$PGBIN/psql" -q -h 127.0.0.1 -p "$PORT_EU" -U postgres "$@"; }
app() { echo "postgres://tessera_app@127.0.0.1:$1/tessera"; }
owner() { echo "postgres://tessera_owner@127.0.0.1:$1/tessera"; }
export DATABASE_URL=$(app "$PORT_EU") DATABASE_OWNER_URL=$(owner "$PORT_EU")
export TESSERA_REGIONS="eu=$(app "$PORT_EU"),us=$(app "$PORT_US")"
export TESSERA_REGION_OWNER_URLS="eu=$(owner "$PORT_EU"),us=$(owner "$PORT_US")"
# Request budgets off: the load would otherwise measure how fast 429s come back.
export TESSERA_RATE_LIMIT_PER_ADDRESS=0 TESSERA_RATE_LIMIT_PER_USER=0 TESSERA_RATE_LIMIT_PER_ORGANIZATION=0 TESSERA_RATE_LIMIT_PER_API_KEY=0
TESSERA_WEBHOOK_PRIVATE_HOSTS=1 TESSERA_SEED_DEMO=1 TESSERA_ADDR="127.0.0.1:$HTTPPORT" RUST_LOG=warn "$SERVER" & SERVER_PID=$!
for _ in $(seq 150); do curl -fs "http://127.0.0.1:$HTTPPORT/healthz" >/dev/null && break; sleep 0.2; done
curl -fs -c "$WORK/cookies" -H 'accept: application/json' \
  -d 'email=owner@acme.test&password=tessera-demo' "http://127.0.0.1:$HTTPPORT/api/log_in" >/dev/null
COOKIE=$(awk '$6=="tessera_session"{print "tessera_session="$7}' "$WORK/cookies")

# The baseline (bench/baseline): the same query and rows as a bare axum + sqlx page, on the
# same clusters, as a role row-level security doesn't filter, with no session.
ORGS=""
for slug in acme globex initech; do
  IFS='|' read -r id region database schema <<<"$(psql -d tessera -At -c \
    "SELECT id, region, coalesce(database, 'tessera'), schema_name FROM tenants WHERE slug = '$slug'")"
  port=$PORT_EU; [ "$region" = us ] && port=$PORT_US
  ORGS="$ORGS $slug=postgres://postgres@127.0.0.1:$port/$database|$schema|$id"
done
BASEPORT=$(free_port)
BASELINE_ADDR="127.0.0.1:$BASEPORT" BASELINE_ORGS="$ORGS" "${TESSERA_BASELINE_BIN:?build with cargo xtask bench}" & BASELINE_PID=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$BASEPORT/t/acme/projects" && break; sleep 0.1; done
# A webhook endpoint in each demo organization for section 8, made now, while the sign-in is
# recent enough for it.
for slug in acme globex initech; do
  curl -fs -H "Cookie: $COOKIE" -H 'accept: application/json' \
    -d "slug=$slug&url=http%3A%2F%2F127.0.0.1%3A$BASEPORT%2Fhook&description=bench&event_types%5B%5D=project.created&enabled=on" \
    "http://127.0.0.1:$HTTPPORT/api/create_webhook" >/dev/null
done

load() { # url [wrk options…] -> "rps p99 non2xx"
  local url=$1 out; shift
  out=$(wrk -t2 -c64 -d"${DURATION}s" --latency "$@" "$url")
  echo "$(awk '/Requests\/sec/{print $2}' <<<"$out") $(awk '$1=="99%"{print $2}' <<<"$out") $(awk '/Non-2xx/{print $5}' <<<"$out")"
}
# Runs a command with its output in a file and prints the server's largest resident set
# meanwhile, in MiB.
peak_rss() { # output-file command…
  local out=$1 sampler peak=0 rss; shift
  ( while kill -0 "$SERVER_PID" 2>/dev/null; do ps -o rss= -p "$SERVER_PID"; sleep 0.5; done ) > "$WORK/rss" & sampler=$!
  "$@" > "$out"
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  for rss in $(cat "$WORK/rss"); do [ "$rss" -gt "$peak" ] && peak=$rss; done
  echo $((peak / 1024))
}
row() { # label baseline-load tessera-load
  local base_rps base_p99 base_bad rps p99 bad ratio
  read -r base_rps base_p99 base_bad <<<"$2"
  read -r rps p99 bad <<<"$3"
  ratio=$(python3 -c "print(f'{float($rps)/float($base_rps):.2f}x')")
  printf '%-22s %14s %10s %14s %10s %8s %s\n' "$1" "$base_rps" "$base_p99" "$rps" "$p99" "$ratio" \
    "${base_bad:+baseline non-2xx: $base_bad }${bad:+non-2xx: $bad}"
}

echo "== wrk: GET /t/<org>/projects, 64 connections, ${DURATION}s each, release builds"
echo "   baseline: bare axum + sqlx, same query and rows, no session; Tessera: signed in, SSR"
printf '%-22s %14s %10s %14s %10s %8s\n' "model (org)" "baseline req/s" p99 "Tessera req/s" p99 ratio
for org in acme:pooled globex:schema initech:dedicated; do
  slug=${org%%:*}; model=${org##*:}
  test "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "http://127.0.0.1:$HTTPPORT/t/$slug/projects")" = 200
  base=$(load "http://127.0.0.1:$BASEPORT/t/$slug/projects")
  if [ "$slug" = acme ]; then
    if [ -n "${PROFILE:-}" ]; then
      perf record -a -g -F 199 -o "$PROFILE" -- sleep "$DURATION" 2>/dev/null & PERF_PID=$!
    fi
    PAGE_RSS=$(peak_rss "$WORK/page" load "http://127.0.0.1:$HTTPPORT/t/$slug/projects" -H "Cookie: $COOKIE")
    tessera=$(cat "$WORK/page")
    [ -n "${PERF_PID:-}" ] && wait "$PERF_PID"
  else
    tessera=$(load "http://127.0.0.1:$HTTPPORT/t/$slug/projects" -H "Cookie: $COOKIE")
  fi
  row "$model ($slug)" "$base" "$tessera"
done

echo "== wrk: the same rows as JSON (pooled, acme), 64 connections, ${DURATION}s each"
echo "   baseline: /t/acme/projects.json; REST: GET /api/v1/orgs/acme/projects with an API key;"
echo "   server function: POST /api/list_projects signed in"
KEY=$(curl -fs -H "Cookie: $COOKIE" -H 'accept: application/json' \
  -d 'slug=acme&name=Benchmark&scopes%5B%5D=projects%3Aread&expires_in_days=1' "http://127.0.0.1:$HTTPPORT/api/create_api_key" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$HTTPPORT/api/v1/orgs/acme/projects")" = 200
cat > "$WORK/server_fn.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "slug=acme"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
LUA
test "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" -d slug=acme "http://127.0.0.1:$HTTPPORT/api/list_projects")" = 200
base=$(load "http://127.0.0.1:$BASEPORT/t/acme/projects.json")
printf '%-22s %14s %10s %14s %10s %8s\n' "call" "baseline req/s" p99 "Tessera req/s" p99 ratio
JSON_RSS=$(peak_rss "$WORK/rest" load "http://127.0.0.1:$HTTPPORT/api/v1/orgs/acme/projects" -H "Authorization: Bearer $KEY")
row "REST list (API key)" "$base" "$(cat "$WORK/rest")"
row "server function" "$base" "$(load "http://127.0.0.1:$HTTPPORT/api/list_projects" -H "Cookie: $COOKIE" -s "$WORK/server_fn.lua")"
echo "server memory (RSS, peak): $PAGE_RSS MiB under the page load, $JSON_RSS MiB under the REST load"
kill "$BASELINE_PID"; wait "$BASELINE_PID" 2>/dev/null || true

echo "== the hydration bundle (release), and the projects page's time to interactive in Chromium"
PKG="${LEPTOS_SITE_ROOT:-target/site}/pkg/$(cat "${LEPTOS_SITE_ROOT:-target/site}/pkg/current")"
TTI=$(node bench/tti.mjs "http://127.0.0.1:$HTTPPORT/t/acme/projects" "$COOKIE" 7)
python3 - "$PKG" "$TTI" <<'PY'
import json, os, sys
pkg, tti = sys.argv[1], json.loads(sys.argv[2])
size = lambda name, ext="": os.path.getsize(os.path.join(pkg, name + ext))
kib = lambda n: f"{n / 1024:.0f} KiB"
chunks = [f for f in os.listdir(pkg) if f.endswith(".wasm") and f != "tessera.wasm"]
print(f"main module: {kib(size('tessera.wasm'))} raw, {kib(size('tessera.wasm', '.gz'))} gzip, {kib(size('tessera.wasm', '.br'))} brotli"
      f" (+ {len(chunks)} page chunks, {kib(sum(size(c, '.gz') for c in chunks))} gzip in all)")
fetched = [os.path.basename(w["path"]) for w in tti["wasm"]]
print(f"the projects page fetches {len(fetched)} WASM files: {kib(sum(size(f, '.gz') for f in fetched))} gzip,"
      f" {kib(sum(size(f, '.br') for f in fetched))} brotli (target: <= 250 KB gzip);"
      f" {kib(sum(w['transferred'] for w in tti['wasm']))} went over the wire to Chromium")
print(f"time to interactive (navigation start to hydrated, 7 cold loads): median {tti['median_ms']} ms, worst {tti['worst_ms']} ms (target: <= 300 ms)")
PY

TENANT=$(psql -d tessera -At -c "SELECT id FROM tenants WHERE slug='acme'")
QUERY="SELECT id, name, description, created_by, created_at FROM shared.projects"
cat > "$WORK/rls.sql" <<SQL
BEGIN;
SET LOCAL app.tenant_id = '$TENANT';
$QUERY ORDER BY created_at DESC, id LIMIT 500;
COMMIT;
SQL
# Same statements, so the only difference is the policy: the setting is made but unused.
cat > "$WORK/norls.sql" <<SQL
BEGIN;
SET LOCAL app.tenant_id = '$TENANT';
$QUERY WHERE tenant_id = '$TENANT' ORDER BY created_at DESC, id LIMIT 500;
COMMIT;
SQL
pgb() { "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PORT_EU" -c 8 -j 2 -T "$DURATION" "$@" tessera | awk '/^tps/{print $3}'; }
RLS=$(pgb -U tessera_app -f "$WORK/rls.sql")
NORLS=$(pgb -U postgres -f "$WORK/norls.sql")
echo "== pgbench: the projects query in the shared schema, 8 clients, ${DURATION}s"
echo "with RLS (app role, tenant context):   $RLS tps"
echo "without RLS (superuser, WHERE tenant): $NORLS tps"
python3 -c "print(f'RLS overhead ratio (no-RLS tps / RLS tps): {float($NORLS)/float($RLS):.3f}')"

echo "== scale: the same page and REST call with $SCALE_ORGS more pooled organizations and $SCALE_ROWS project rows in the shared tables"
psql -d tessera -c "INSERT INTO tenants (id, slug, name, model, region, schema_name)
  SELECT gen_random_uuid(), 'scale-' || n, 'Scale ' || n, 'pooled', 'eu', 'shared' FROM generate_series(1, $SCALE_ORGS) n"
psql -d tessera -c "INSERT INTO shared.projects (id, tenant_id, name, description, created_by, created_at)
  SELECT gen_random_uuid(), t.id, 'Project ' || n, 'Filler', gen_random_uuid(), now() - n * interval '1 minute'
    FROM (SELECT id FROM tenants WHERE slug LIKE 'scale-%') t,
         generate_series(1, $SCALE_ROWS / $SCALE_ORGS) n" -c "ANALYZE shared.projects"
echo "   target: within 1.2x of the single-tenant figures (ratio >= 0.83x)"
printf '%-22s %14s %10s %14s %10s %8s\n' "call" "single req/s" p99 "at scale" p99 ratio
row "page (acme)" "$(cat "$WORK/page")" "$(load "http://127.0.0.1:$HTTPPORT/t/acme/projects" -H "Cookie: $COOKIE")"
row "REST list (API key)" "$(cat "$WORK/rest")" "$(load "http://127.0.0.1:$HTTPPORT/api/v1/orgs/acme/projects" -H "Authorization: Bearer $KEY")"

kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
echo "== migrate: $TENANTS tenant schemas registered at version 0, $JOBS at a time"
psql -d tessera -c "INSERT INTO tenants (id, slug, name, model, region, schema_name, schema_version)
  SELECT id, 'bench-' || n, 'Bench ' || n, 'schema', 'eu', 't_' || replace(id::text, '-', ''), 0
    FROM (SELECT gen_random_uuid() AS id, n FROM generate_series(1, $TENANTS) n) s"
START=$(date +%s.%N)
"$SERVER" migrate --jobs "$JOBS" > "$WORK/migrate.out"
END=$(date +%s.%N)
tail -1 "$WORK/migrate.out"
MIGRATED=$(grep -c 'migrated from 0' "$WORK/migrate.out" || true)
python3 -c "print(f'migrated {$MIGRATED} tenant schemas in {$END - $START:.1f} s (target: 1,000 in <= 60 s)')"

echo "== the job queue: $QUEUE_JOBS probe jobs in 100 organizations' lanes, \`tessera-server worker\` with 4 workers"
echo "   baseline: pgbench, 4 clients running each job's own statement (the probe's insert), no queue"
cat > "$WORK/probe.sql" <<SQL
BEGIN;
SET LOCAL app.maintenance = 'jobs';
INSERT INTO job_probes (job_id) VALUES (gen_random_uuid()) ON CONFLICT (job_id) DO UPDATE SET runs = job_probes.runs + 1;
COMMIT;
SQL
BASE_TPS=$("$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PORT_EU" -U tessera_app -c 4 -j 2 -t $((QUEUE_JOBS / 4)) -f "$WORK/probe.sql" tessera | awk '/^tps/{print $3}')
psql -d tessera -c "DELETE FROM job_probes" -c "INSERT INTO jobs (id, kind, version, payload, lane, max_attempts)
  SELECT gen_random_uuid(), 'jobs.probe', 1, '{}', ('00000000-0000-0000-0000-' || lpad((n % 100)::text, 12, '0'))::uuid, 3
    FROM generate_series(1, $QUEUE_JOBS) n" -c "ANALYZE jobs"
START=$(date +%s.%N)
TESSERA_JOB_WORKERS=4 TESSERA_JOB_POLL_MS=50 RUST_LOG=warn "$SERVER" worker & WORKER_PID=$!
while [ "$(psql -d tessera -At -c "SELECT count(*) FROM jobs WHERE kind = 'jobs.probe' AND status <> 'done'")" != 0 ]; do
  kill -0 "$WORKER_PID" || { echo "the worker stopped"; exit 1; }
  sleep 0.2
done
END=$(date +%s.%N)
kill "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null || true
RAN=$(psql -d tessera -At -c "SELECT count(*), max(runs) FROM job_probes")
JOBS_S=$(python3 -c "print($QUEUE_JOBS / ($END - $START))")
python3 -c "
jobs_s = $QUEUE_JOBS / ($END - $START); base = float('$BASE_TPS')
print(f'queue: {jobs_s:.0f} jobs/s with 4 workers; baseline {base:.0f} statements/s; ratio {jobs_s / base:.2f}x')
print('probe rows, most runs of one job: $RAN'.replace('|', ', '))"

echo "== webhooks: $DELIVERIES deliveries to a local receiver (a third each to acme, globex and initech), \`tessera-server worker\` with 4 workers"
echo "   baseline: section 7's probe jobs/s (a job that does nothing but record itself); the receiver's own capacity for context"
BODY=$(python3 -c "import json; print(json.dumps({'id': '00000000-0000-0000-0000-000000000000', 'type': 'project.created', 'api_version': '2026-12-09', 'timestamp': '2026-12-09T10:15:00Z', 'organization_id': '00000000-0000-0000-0000-000000000000', 'data': {'project': {'id': '0193a5c2-7d1e-7a40-9c1b-4f3e2d1c0b9a', 'name': 'Website relaunch', 'description': 'Everything for the March launch', 'created_by': '4d1f0c6e-2b7a-4c39-8e51-0f9a6b3c2d17', 'created_at': '2026-12-09T10:15:00Z', 'updated_at': '2026-12-09T10:15:00Z'}}}))")
PER_ORG=$((DELIVERIES / 3))
for slug in acme globex initech; do
  IFS='|' read -r id region database schema <<<"$(psql -d tessera -At -c \
    "SELECT id, region, coalesce(database, 'tessera'), schema_name FROM tenants WHERE slug = '$slug'")"
  port=$PORT_EU; [ "$region" = us ] && port=$PORT_US
  # Events, deliveries and their jobs, as recording the events would have made them.
  "$PGBIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d "$database" -v body="$BODY" <<SQL
INSERT INTO "$schema".webhook_events (id, tenant_id, type, resource, payload)
  SELECT gen_random_uuid(), '$id', 'project.created', 'project:' || n, :'body' FROM generate_series(1, $PER_ORG) n;
INSERT INTO "$schema".webhook_deliveries (id, tenant_id, event_id, endpoint_id, resource, status, next_attempt_at)
  SELECT gen_random_uuid(), '$id', e.id, p.id, e.resource, 'pending', now()
    FROM "$schema".webhook_events e JOIN "$schema".webhook_endpoints p ON p.tenant_id = e.tenant_id WHERE e.tenant_id = '$id';
SQL
  "$PGBIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d "$database" -At \
    -c "SELECT id FROM \"$schema\".webhook_deliveries WHERE tenant_id = '$id'" > "$WORK/deliveries-$slug"
  psql -d tessera -c "CREATE TEMP TABLE d (id uuid)" -c "\\copy d FROM '$WORK/deliveries-$slug'" \
    -c "INSERT INTO jobs (id, kind, version, payload, lane, max_attempts)
          SELECT gen_random_uuid(), 'webhooks.deliver', 1, jsonb_build_object('delivery_id', id), '$id', 8 FROM d" >/dev/null
done
psql -d tessera -c "ANALYZE jobs"
# The receiver: the baseline's POST /hook (the baseline stopped after section 2).
BASELINE_ADDR="127.0.0.1:$BASEPORT" BASELINE_ORGS="$ORGS" "$TESSERA_BASELINE_BIN" & BASELINE_PID=$!
for _ in $(seq 100); do curl -fs -o /dev/null -X POST "http://127.0.0.1:$BASEPORT/hook" && break; sleep 0.1; done
cat > "$WORK/hook.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = [[$BODY]]
LUA
HOOK_BASE=$(wrk -t2 -c4 -d"${DURATION}s" -s "$WORK/hook.lua" "http://127.0.0.1:$BASEPORT/hook" | awk '/Requests\/sec/{print $2}')
pending() {
  local total=0 n slug id region database schema port
  for slug in acme globex initech; do
    IFS='|' read -r id region database schema <<<"$(psql -d tessera -At -c \
      "SELECT id, region, coalesce(database, 'tessera'), schema_name FROM tenants WHERE slug = '$slug'")"
    port=$PORT_EU; [ "$region" = us ] && port=$PORT_US
    n=$("$PGBIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d "$database" -At -c \
      "SELECT count(*) FROM \"$schema\".webhook_deliveries WHERE tenant_id = '$id' AND status <> 'delivered'")
    total=$((total + n))
  done
  echo "$total"
}
START=$(date +%s.%N)
TESSERA_JOB_WORKERS=4 TESSERA_JOB_POLL_MS=50 TESSERA_WEBHOOK_PRIVATE_HOSTS=1 RUST_LOG=warn "$SERVER" worker & WORKER_PID=$!
while [ "$(pending)" != 0 ]; do
  kill -0 "$WORKER_PID" || { echo "the worker stopped"; exit 1; }
  sleep 0.2
done
END=$(date +%s.%N)
kill "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null || true
python3 -c "
rate = $((PER_ORG * 3)) / ($END - $START); jobs = float('$JOBS_S'); hook = float('$HOOK_BASE')
print(f'webhooks: {rate:.0f} deliveries/s with 4 workers (signed, each attempt logged, two at a time per organization)')
print(f'baseline: {jobs:.0f} probe jobs/s (section 7): ratio {rate / jobs:.2f}x; the receiver alone takes {hook:.0f} posts/s over 4 connections')"
