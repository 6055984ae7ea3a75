#!/usr/bin/env bash
# bench/serve.sh: restic backing up and restoring the same data through `cairn serve` and
# through rest-server 0.13, side by side in one run, fresh repositories.
#
#   bash bench/serve.sh [--size-mb N] [--seed S] [--src DIR] [--rounds N]
#
# The data is a make-corpus tree (512 MiB by default) or --src DIR (e.g.
# /work/linux/linux-source-6.1). For each server (the order alternates between rounds) it
# starts the server on a free loopback port with a fresh data directory (--no-auth), runs
# `restic init`, times the initial backup and a full restore (to $RESTORE_DIR, memory by
# default), checks the restore with `diff -r`, and reads the server's CPU time (user +
# system, after the backup and at the end) and peak RSS (VmHWM) from /proc before stopping
# it. The server's CPU time is the number to trust on a busy machine: wall times move with
# whatever else runs, what the server itself spends does not. The table goes to stdout; logs to $BENCH_DIR/logs-serve/.
#
# Environment: CAIRN_SHARED (default ../shared), BENCH_DIR (default bench/work), CAIRN_BIN
# (default target/release/cairn), RESTIC_BIN (default restic 0.18 from .ci/trixie-tools, else
# restic on PATH), REST_SERVER_BIN (default /opt/rest-server/usr/bin/restic-rest-server).
set -euo pipefail
export LC_ALL=C

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
SHARED=${CAIRN_SHARED:-$ROOT/../shared}
W=${BENCH_DIR:-$ROOT/bench/work}
CAIRN=${CAIRN_BIN:-$ROOT/target/release/cairn}
RESTIC=${RESTIC_BIN:-/opt/restic-0.18/usr/bin/restic}
[ -x "$RESTIC" ] || RESTIC=$(command -v restic)
REST_SERVER=${REST_SERVER_BIN:-/opt/rest-server/usr/bin/restic-rest-server}
RESTORE_DIR=${RESTORE_DIR:-/dev/shm/cairn-bench-serve}
SIZE_MB=512
SEED=1
SRC=""
ROUNDS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --src) SRC=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

(cd "$ROOT" && cargo build --release -q -p cairn-cli)
mkdir -p "$W" "$W/logs-serve" "$RESTORE_DIR"
LOGS=$W/logs-serve
if [ -z "$SRC" ]; then
  SRC=$W/corpus-serve-$SIZE_MB-$SEED
  if [ ! -d "$SRC" ]; then
    echo "== making a $SIZE_MB MiB corpus" >&2
    python3 "$SHARED/corpus/make-corpus" create "$SRC" --size-mb "$SIZE_MB" --seed "$SEED" >/dev/null
  fi
fi
SRC=$(cd "$SRC" && pwd)
tar cf - "$SRC" 2>/dev/null | cat >/dev/null   # warm the page cache for both runs

export RESTIC_PASSWORD=bench
RESULTS=()

cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run_server NAME: one fresh server, backup + restore through it.
run_server() {
  local name=$1 round=$2
  local data=$W/serve-data-$name; rm -rf "$data"; mkdir -p "$data"
  local port; port=$(free_port)
  local tag=$name-$round
  if [ "$name" = cairn ]; then
    "$CAIRN" serve --path "$data" --listen "127.0.0.1:$port" --no-auth >"$LOGS/$tag-server.log" 2>&1 &
  else
    "$REST_SERVER" --path "$data" --listen "127.0.0.1:$port" --no-auth >"$LOGS/$tag-server.log" 2>&1 &
  fi
  local pid=$!
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  local repo=rest:http://127.0.0.1:$port/
  local cache=$W/cache-serve-$name; rm -rf "$cache"
  local out=$RESTORE_DIR/restore-$name; rm -rf "$out"
  "$RESTIC" -r "$repo" --cache-dir "$cache" init >"$LOGS/$tag-init.log" 2>&1
  sync; sleep 1
  /usr/bin/time -f '%e' -o "$LOGS/$tag-backup.time" \
    "$RESTIC" -r "$repo" --cache-dir "$cache" backup -q "$SRC" >"$LOGS/$tag-backup.log" 2>&1
  local hwm_backup; hwm_backup=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  local cpu_backup; cpu_backup=$(cpu_s "$pid")
  sync; sleep 1
  /usr/bin/time -f '%e' -o "$LOGS/$tag-restore.time" \
    "$RESTIC" -r "$repo" --cache-dir "$cache" --no-cache restore latest --target "$out" >"$LOGS/$tag-restore.log" 2>&1
  local hwm; hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  local cpu; cpu=$(cpu_s "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local ok=OK
  diff -r --no-dereference "$SRC" "$out$SRC" 2>&1 | grep -v 'is a fifo while file .* is a fifo$' >"$LOGS/$tag-diff.log" || true
  [ -s "$LOGS/$tag-diff.log" ] && ok=MISMATCH
  local size; size=$(du -sm "$data" | cut -f1)
  rm -rf "$out" "$cache" "$data"
  sync
  RESULTS+=("$name $(cat "$LOGS/$tag-backup.time") $cpu_backup $hwm_backup $(cat "$LOGS/$tag-restore.time") $cpu $hwm $size $ok")
  echo "   $name: backup $(cat "$LOGS/$tag-backup.time") s, restore $(cat "$LOGS/$tag-restore.time") s, server CPU $cpu s, server peak RSS $((hwm / 1024)) MiB, $ok" >&2
}

for round in $(seq "$ROUNDS"); do
  servers=(rest-server cairn); [ $((round % 2)) = 0 ] && servers=(cairn rest-server)
  for s in "${servers[@]}"; do
    echo "== round $round: $s" >&2
    run_server "$s" "$round"
  done
done

echo
echo "restic $("$RESTIC" version | cut -d' ' -f2) backing up $SRC ($(du -sh "$SRC" | cut -f1)) through each server, $(nproc) CPUs, $(date -u +%F)"
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | backup s | server CPU s (backup) | server RSS after backup MiB | restore s | server CPU s (total) | server peak RSS MiB | repo MiB | restore |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for r in "${RESULTS[@]}"; do
  set -- $r
  printf '| %s | %s | %s | %d | %s | %s | %d | %s | %s |\n' "$1" "$2" "$3" $(($4 / 1024)) "$5" "$6" $(($7 / 1024)) "$8" "$9"
done
