#!/usr/bin/env bash
# bench/maintenance.sh: prune and check --read-data, cairn vs restic, on the same repository.
#
#   bash bench/maintenance.sh [--size-mb N] [--rounds R]
#
# Builds one repository with restic: a make-corpus tree (default 512 MiB) backed up, then
# R times (default 3) mutated by 5% and backed up again; then `forget --keep-last 1`, so that
# a good part of the data is unused. Two byte-identical copies are made; restic prunes one
# and cairn the other (same options: the defaults, --max-unused 5%), each timed with
# /usr/bin/time; then each runs `check --read-data` on its pruned copy. The order alternates
# between the two steps. Benchmarks print numbers; they are not tests.
#
# Environment: CAIRN_SHARED, BENCH_DIR (default bench/work), CAIRN_BIN, RESTIC_BIN as in
# bench.sh. Output: a markdown table on stdout; logs in $BENCH_DIR/logs/maint-*.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZE_MB=512
ROUNDS=3
while [[ $# -gt 0 ]]; do
    case $1 in
        --size-mb) SIZE_MB=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SHARED=${CAIRN_SHARED:-$ROOT/../shared}
W=${BENCH_DIR:-$ROOT/bench/work}
CAIRN=${CAIRN_BIN:-$ROOT/target/release/cairn}
RESTIC=${RESTIC_BIN:-restic}
[[ -x $CAIRN ]] || cargo build --release -p cairn-cli >&2
mkdir -p "$W/logs"
M=$W/maint
rm -rf "$M"; mkdir -p "$M"
export RESTIC_PASSWORD=bench
say() { echo "maintenance: $*" >&2; }

say "corpus ${SIZE_MB} MiB and $ROUNDS mutations"
python3 "$SHARED/corpus/make-corpus" create "$M/tree" --size-mb "$SIZE_MB" --seed 7 >"$W/logs/maint-corpus.log" 2>&1
"$RESTIC" -r "$M/base" init >/dev/null
"$RESTIC" -r "$M/base" --no-cache backup -q "$M/tree" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
    python3 "$SHARED/corpus/make-corpus" mutate "$M/tree" --percent 5 --seed "$((10 + r))" >>"$W/logs/maint-corpus.log" 2>&1
    "$RESTIC" -r "$M/base" --no-cache backup -q "$M/tree" >/dev/null
done
"$RESTIC" -r "$M/base" --no-cache forget -q --keep-last 1 >/dev/null
cp -a "$M/base" "$M/restic"
cp -a "$M/base" "$M/cairn"
blobs=$("$RESTIC" -r "$M/base" --no-cache list blobs 2>/dev/null | wc -l)
size=$(du -sb "$M/base" | cut -f1)

# run NAME TOOL REPO ARGS... -> "seconds rss_kib"
run() {
    local name=$1 tool=$2 repo=$3; shift 3
    sync
    /usr/bin/time -f '%e %M' -o "$M/$name.time" "$tool" -r "$repo" --no-cache "$@" \
        >"$W/logs/maint-$name.out" 2>"$W/logs/maint-$name.err" || {
        say "$name failed, see $W/logs/maint-$name.err"; echo "FAIL FAIL"; return; }
    cat "$M/$name.time"
}

say "prune"
p_r=$(run prune-restic "$RESTIC" "$M/restic" prune)
p_c=$(run prune-cairn "$CAIRN" "$M/cairn" prune)
say "check --read-data"
c_c=$(run check-cairn "$CAIRN" "$M/cairn" check --read-data)
c_r=$(run check-restic "$RESTIC" "$M/restic" check --read-data)
# Each tool's pruned repository must pass the other tool's check too.
"$RESTIC" -r "$M/cairn" --no-cache check >/dev/null 2>&1 && x1=OK || x1=FAILED
"$CAIRN" -r "$M/restic" --no-cache check >/dev/null 2>&1 && x2=OK || x2=FAILED

ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('%.2f' % (float(b)/float(a)) if a not in ('FAIL','0') and b!='FAIL' else '-')" "$1" "$2"; }
row() {
    local op=$1 r=$2 c=$3
    set -- $r; local rt=$1 rm=$2
    set -- $c; local ct=$1 cm=$2
    printf '| %s | %s | %s | %s | %.1f | %.1f | %s |\n' "$op" "$rt" "$ct" "$(ratio "$rt" "$ct")" \
        "$(python3 -c "print($rm/1024)")" "$(python3 -c "print($cm/1024)")" "$(ratio "$rm" "$cm")"
}
echo "## prune and check --read-data — $(date -u '+%F %T') UTC"
echo
echo "Repository: $blobs blobs, $((size / 1048576)) MiB, made by restic ($("$RESTIC" version | head -1)); cairn $("$CAIRN" version | head -1)"
echo
echo "| operation | restic s | cairn s | cairn/restic | restic RSS MiB | cairn RSS MiB | RSS ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row "prune (defaults)" "$p_r" "$p_c"
row "check --read-data (after prune)" "$c_r" "$c_c"
echo
echo "restic check of cairn's pruned repository: $x1; cairn check of restic's: $x2"
