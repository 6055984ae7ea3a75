#!/usr/bin/env bash
# bench/million.sh: peak memory (and time) of backup, check and prune on a repository of
# N blobs (default 1,000,000), cairn vs restic.
#
#   bash bench/million.sh [--blobs N]
#
# The repository is synthetic (crates/cairn-core/examples/synth_repo.rs): N tiny files, one
# data blob each, 1,000 per directory, in two snapshots (all files; nine tenths). restic reads
# it like any other. Each tool gets its own byte-identical copy and runs, in turn:
#   backup of a small directory (the crates/ sources) — the index dominates memory;
#   check (structure, no --read-data);
#   forget of the full snapshot, then prune (a tenth of the blobs become unused).
# Benchmarks print numbers; they are not tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=1000000
while [[ $# -gt 0 ]]; do
    case $1 in
        --blobs) N=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
W=${BENCH_DIR:-$ROOT/bench/work}
CAIRN=${CAIRN_BIN:-$ROOT/target/release/cairn}
RESTIC=${RESTIC_BIN:-restic}
cargo build --release -p cairn-cli -p cairn-core --example synth_repo >&2
mkdir -p "$W/logs"
M=$W/million
rm -rf "$M"; mkdir -p "$M"
export RESTIC_PASSWORD=bench
echo "million: writing a synthetic repository of $N data blobs" >&2
"$ROOT/target/release/examples/synth_repo" "$M/base" "$N" bench >"$M/snapshots"
full=$(head -1 "$M/snapshots")
cp -a "$M/base" "$M/restic"
cp -a "$M/base" "$M/cairn"

run() { # NAME TOOL REPO ARGS... -> "seconds rss_kib"
    local name=$1 tool=$2 repo=$3; shift 3
    sync
    if /usr/bin/time -f '%e %M' -o "$M/$name.time" "$tool" -r "$repo" --no-cache "$@" \
        >"$W/logs/million-$name.out" 2>"$W/logs/million-$name.err"; then
        cat "$M/$name.time"
    else
        echo "million: $name failed, see $W/logs/million-$name.err" >&2
        echo "FAIL FAIL"
    fi
}
row() {
    python3 - "$@" <<'PY'
import sys
op, r, c = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def ratio(a, b):
    try: return "%.2f" % (float(b) / float(a))
    except Exception: return "-"
def mib(k):
    try: return "%.1f" % (float(k) / 1024)
    except Exception: return "-"
print(f"| {op} | {r[0]} | {c[0]} | {ratio(r[0], c[0])} | {mib(r[1])} | {mib(c[1])} | {ratio(r[1], c[1])} |")
PY
}
echo "million: backup" >&2
b_r=$(run backup-restic "$RESTIC" "$M/restic" backup -q "$ROOT/crates")
b_c=$(run backup-cairn "$CAIRN" "$M/cairn" backup -q "$ROOT/crates")
echo "million: check" >&2
c_c=$(run check-cairn "$CAIRN" "$M/cairn" check)
c_r=$(run check-restic "$RESTIC" "$M/restic" check)
echo "million: forget + prune" >&2
"$RESTIC" -r "$M/restic" --no-cache forget -q "$full" >/dev/null
"$CAIRN" -r "$M/cairn" --no-cache forget -q "$full" >/dev/null
p_r=$(run prune-restic "$RESTIC" "$M/restic" prune)
p_c=$(run prune-cairn "$CAIRN" "$M/cairn" prune)
"$RESTIC" -r "$M/cairn" --no-cache check >/dev/null 2>&1 && x=OK || x=FAILED

echo "## $N blobs — $(date -u '+%F %T') UTC"
echo
echo "Synthetic repository: $N data blobs, $(du -sm "$M/base" | cut -f1) MiB; restic $("$RESTIC" version | cut -d' ' -f2); $(nproc) CPUs"
echo
echo "| operation | restic s | cairn s | cairn/restic | restic RSS MiB | cairn RSS MiB | RSS ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row "backup (small dir)" "$b_r" "$b_c"
row "check" "$c_r" "$c_c"
row "prune" "$p_r" "$p_c"
echo
echo "restic check of cairn's pruned repository: $x"
