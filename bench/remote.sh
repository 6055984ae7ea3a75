#!/usr/bin/env bash
# bench/remote.sh: backup and restore through real servers on loopback, cairn beside restic,
# in one run on the same data.
#
#   bash bench/remote.sh [--size-mb N] [--seed S] [TARGET...]
#
# TARGETs: local rest s3 sftp (default: local rest s3). `rest` is `rclone serve restic`,
# `s3` is Garage, `sftp` is a private OpenSSH sshd — the same servers the tests start
# (crates/cairn-testsupport, through its `serve` example). For each target and each tool
# (restic, cairn; the order alternates) it inits a fresh repository, times the initial
# backup of a make-corpus tree, then a full restore of it, and checks the restore with
# `diff -r`. Both tools get a fresh --cache-dir per target. Restores go to $RESTORE_DIR
# (default /dev/shm/cairn-bench, memory) so that disk writeback noise does not drown the
# network's cost. Wall time and peak RSS come
# from /usr/bin/time. The table goes to stdout; logs to $BENCH_DIR/logs-remote/.
#
# Environment: CAIRN_SHARED (default ../shared), BENCH_DIR (default bench/work),
# CAIRN_BIN (default target/release/cairn), RESTIC_BIN (default restic on PATH).
set -euo pipefail
export LC_ALL=C

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
SHARED=${CAIRN_SHARED:-$ROOT/../shared}
W=${BENCH_DIR:-$ROOT/bench/work}
CAIRN=${CAIRN_BIN:-$ROOT/target/release/cairn}
RESTIC=${RESTIC_BIN:-$(command -v restic)}
SERVE=$ROOT/target/release/examples/serve
SIZE_MB=512
SEED=1
# Restores go to memory by default: on this kind of VM, disk writeback of a fresh 512 MiB
# tree swings restore times by a factor of five and hides what the network costs.
RESTORE_DIR=${RESTORE_DIR:-/dev/shm/cairn-bench}
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(local rest s3)

(cd "$ROOT" && cargo build --release -q -p cairn-cli && cargo build --release -q -p cairn-testsupport --example serve)
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p "$W" "$W/logs-remote" "$RESTORE_DIR"
LOGS=$W/logs-remote
SRC=$W/corpus-remote-$SIZE_MB-$SEED
if [ ! -d "$SRC" ]; then
  echo "== making a $SIZE_MB MiB corpus" >&2
  python3 "$SHARED/corpus/make-corpus" create "$SRC" --size-mb "$SIZE_MB" --seed "$SEED" >/dev/null
fi
tar cf - "$SRC" 2>/dev/null | cat >/dev/null   # warm the page cache for both tools

export RESTIC_PASSWORD=bench CAIRN_TEST_KDF=fast
RESULTS=()
flip=0

# run_tool TOOL TARGET REPO OPTS...
run_tool() {
  local tool=$1 target=$2 repo=$3; shift 3
  local bin=$CAIRN; [ "$tool" = restic ] && bin=$RESTIC
  local cache=$W/cache-$tool-$target; rm -rf "$cache"
  local out=$RESTORE_DIR/restore-$tool-$target; rm -rf "$out"
  local tag=$tool-$target
  "$bin" -r "$repo" --cache-dir "$cache" "$@" init >"$LOGS/$tag-init.log" 2>&1
  # Earlier steps' dirty pages and deletions must not be written back during a timed step.
  sync; sleep 1
  /usr/bin/time -f '%e %M' -o "$LOGS/$tag-backup.time" \
    "$bin" -r "$repo" --cache-dir "$cache" "$@" backup -q "$SRC" >"$LOGS/$tag-backup.log" 2>&1
  sync; sleep 1
  /usr/bin/time -f '%e %M' -o "$LOGS/$tag-restore.time" \
    "$bin" -r "$repo" --cache-dir "$cache" "$@" restore latest --target "$out" >"$LOGS/$tag-restore.log" 2>&1
  local ok=OK
  # Fifos cannot be compared by content; diff names them even when both sides are fifos.
  diff -r --no-dereference "$SRC" "$out$SRC" 2>&1 | grep -v 'is a fifo while file .* is a fifo$' >"$LOGS/$tag-diff.log" || true
  [ -s "$LOGS/$tag-diff.log" ] && ok=MISMATCH
  rm -rf "$out" "$cache"
  sync
  RESULTS+=("$target $tool $(cat "$LOGS/$tag-backup.time") $(cat "$LOGS/$tag-restore.time") $ok")
  echo "   $target $tool: backup $(cut -d' ' -f1 "$LOGS/$tag-backup.time") s, restore $(cut -d' ' -f1 "$LOGS/$tag-restore.time") s, $ok" >&2
}

for target in "${TARGETS[@]}"; do
  echo "== $target" >&2
  opts=()
  if [ "$target" = local ]; then
    base=$W/repos-remote; rm -rf "$base"; mkdir -p "$base"
    LOCATION_BASE=$base
  else
    coproc SERVER { "$SERVE" "$target"; }
    LOCATION_BASE=""
    while read -r line <&"${SERVER[0]}"; do
      [ "$line" = READY ] && break
      eval "$line"
    done
    [ -n "$LOCATION_BASE" ] || { echo "server $target did not start" >&2; exit 1; }
    [ "$target" = sftp ] && opts=(-o "sftp.command=$SFTP_COMMAND")
  fi
  tools=(restic cairn); [ $flip = 1 ] && tools=(cairn restic); flip=$((1 - flip))
  for tool in "${tools[@]}"; do
    run_tool "$tool" "$target" "$LOCATION_BASE/$tool-$RANDOM" "${opts[@]}"
  done
  if [ "$target" != local ]; then
    eval "exec ${SERVER[1]}>&-"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  [ "$target" = local ] && rm -rf "$W/repos-remote"
done

echo
echo "Backup and restore of a $SIZE_MB MiB make-corpus tree (seed $SEED), $(nproc) CPUs, $(date -u +%F)"
echo
echo "| target | tool | backup s | backup RSS MiB | restore s | restore RSS MiB | restore |"
echo "|---|---|---|---|---|---|---|"
for r in "${RESULTS[@]}"; do
  set -- $r
  printf '| %s | %s | %s | %d | %s | %d | %s |\n' "$1" "$2" "$3" $(($4 / 1024)) "$5" $(($6 / 1024)) "$7"
done
echo
# Ratios the issue asks for: cairn remote / cairn local, and cairn / restic on each server.
for target in "${TARGETS[@]}"; do
  [ "$target" = local ] && continue
  for f in 3:backup 5:restore; do
    n=${f%%:*}; what=${f#*:}
    c=$(for r in "${RESULTS[@]}"; do set -- $r; [ "$1 $2" = "$target cairn" ] && eval "echo \${$n}"; done)
    rs=$(for r in "${RESULTS[@]}"; do set -- $r; [ "$1 $2" = "$target restic" ] && eval "echo \${$n}"; done)
    l=$(for r in "${RESULTS[@]}"; do set -- $r; [ "$1 $2" = "local cairn" ] && eval "echo \${$n}"; done)
    line="$target $what: cairn/restic $(echo "scale=2; $c / $rs" | bc)×"
    [ -n "$l" ] && line="$line, cairn $target/cairn local $(echo "scale=2; $c / $l" | bc)×"
    echo "- $line"
  done
done
