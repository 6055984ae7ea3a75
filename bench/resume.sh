#!/usr/bin/env bash
# bench/resume.sh: how much a backup killed part-way costs: a full backup's wall time vs.
# the re-run after a backup killed (SIGKILL) at a fraction of that time, on the same data.
#
#   bash bench/resume.sh [--size-mb N] [--seed S] [--at "0.3 0.7 0.9"] [--by data|position|time]
#                        [--no-checkpoints]
#
# On a make-corpus tree (default 1024 MiB, seed 1) this times a full backup into a fresh local
# repository, then for each fraction F of --at (default 0.7): a fresh repository, a backup
# killed at F and the re-run, timed. --by data (the default) kills once the repository's data
# directory holds F x what the full backup stored: "killed at 70%" then means 70% of the work,
# wherever in the tree (and inside which file) that lands: on a tree whose small files come
# last, 70% of the bytes is well under 70% of the time. --by position kills at the point the
# full backup had reached after F x its wall time, found by the bytes of packs it had stored
# then (sampled every 50 ms during the full backup), so the kill lands at the same place in the
# tree whatever the machine's load. --by time kills after F x the full
# backup's wall time, which on a busy machine lands anywhere between 45% and 70% of the work. The re-run finds what the
# killed run stored two ways: files its checkpoints (every 10 s) recorded are not read again
# (the resume log), and packs it stored after the last checkpoint are adopted (no upload
# twice). --no-checkpoints disables the checkpoints of the killed run (CAIRN_CHECKPOINT_SECS),
# the worst case: the kill lands before the first one, only adoption helps.
# Prints, per fraction: the re-run's time, its ratio to the full backup (target <= 0.4),
# packs adopted and files resumed. Benchmarks print numbers; they are not tests.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZE_MB=1024
SEED=1
AT="0.7"
NOCKPT=0
BY=data
while [[ $# -gt 0 ]]; do
    case $1 in
        --size-mb) SIZE_MB=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --at) AT=$2; shift 2 ;;
        --no-checkpoints) NOCKPT=1; shift ;;
        --by) BY=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SHARED=${CAIRN_SHARED:-$ROOT/../shared}
W=${BENCH_DIR:-$ROOT/bench/work}
CAIRN_SRC=${CAIRN_BIN:-$ROOT/target/release/cairn}
[[ -x $CAIRN_SRC ]] || cargo build --release -p cairn-cli >&2
mkdir -p "$W/logs"
W=$(cd "$W" && pwd -P)
# Others may rebuild the binary meanwhile: every step measures the same copy.
cp -f "$CAIRN_SRC" "$W/cairn-resume.bin"
CAIRN=$W/cairn-resume.bin
R=$W/resume
CORPUS=$W/corpus-$SIZE_MB-$SEED
unset RESTIC_REPOSITORY RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_CACHE_DIR \
      CAIRN_TEST_KDF CAIRN_CHECKPOINT_SECS
export RESTIC_PASSWORD=cairn-bench-password

rmtree() { [[ -e $1 ]] && chmod -R u+rwX "$1" 2>/dev/null; rm -rf "$1"; }
if [[ ! -d $CORPUS ]]; then
    echo "resume: creating a $SIZE_MB MiB corpus (seed $SEED)" >&2
    python3 "$SHARED/corpus/make-corpus" create "$CORPUS" --size-mb "$SIZE_MB" --seed "$SEED" >&2
fi
rmtree "$R"; mkdir -p "$R"
# Warm the page cache, so that the first timed run does not pay for cold reads alone.
find "$CORPUS" -type f -print0 | xargs -0 cat >/dev/null

fresh() { # DIR: a new repository there, with its own cache
    rmtree "$1"
    "$CAIRN" -r "$1/repo" init >/dev/null
    # The killed run starts as the full backup did, with no earlier run's writeback pending,
    # so that "killed at 70% of the time" means about 70% of the work.
    sync
}
timed_backup() { # DIR NAME -> seconds; the summary line goes to $R/NAME.json
    local t0 t1
    # Both timed runs start with nothing waiting to be written back: the killed run leaves
    # hundreds of MiB of dirty pages whose writeback would otherwise slow the re-run's fsyncs
    # (a re-run rarely starts within milliseconds of a crash).
    sync
    t0=$(date +%s.%N)
    "$CAIRN" -r "$1/repo" --cache-dir "$1/cache" backup --json "$CORPUS" \
        >"$R/$2.out" 2>"$W/logs/resume-$2.err" || { echo "resume: $2 failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    grep '"message_type":"summary"' "$R/$2.out" >"$R/$2.json"
    python3 -c "print('%.2f' % ($t1 - $t0))"
}
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))" "$@"; }

echo "resume: full backup" >&2
fresh "$R/full"
FULL=$(timed_backup "$R/full" full)
SAMPLED=""
if [[ $BY = position ]]; then
    # A second full backup, watched, for where the backup stands at each moment; the ratio's
    # denominator stays the unwatched run above.
    echo "resume: full backup again, sampling its progress" >&2
    fresh "$R/sampled"
    ( # "time bytes" of the stored packs; one du per sample and bash's own clock, so cheap
        echo "$EPOCHREALTIME 0"
        while :; do
            b=$(du -sb "$R/sampled/repo/data" 2>/dev/null)
            echo "$EPOCHREALTIME ${b%%[[:space:]]*}"
            sleep 0.05
        done
    ) >"$R/full-curve.txt" &
    SAMPLER=$!
    SAMPLED=$(timed_backup "$R/sampled" sampled)
    kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
    rmtree "$R/sampled"
fi
FULL_DATA=$(du -sb "$R/full/repo/data" | cut -f1)
echo "resume: full backup took $FULL s, stored $FULL_DATA bytes of packs" >&2

echo "## Resume after a killed backup — $(date -u '+%F %T') UTC"
echo
echo "Corpus $SIZE_MB MiB (seed $SEED), local repository, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg);" \
     "killed run's checkpoints: $([[ $NOCKPT = 1 ]] && echo off || echo every 10 s);" \
     "killed by $(case $BY in data) echo "share of the full backup's pack bytes stored" ;; position) echo "the point the full backup had reached at that share of its wall time (by pack bytes stored then)" ;; *) echo "share of the full backup's wall time" ;; esac)"
echo
echo "Full backup: $FULL s${SAMPLED:+ (the sampled one: $SAMPLED s)}"
echo
echo "| killed at | killed after s | share of packs stored | re-run s | re-run / full | packs adopted | MiB adopted | files resumed |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for f in $AT; do
    D=$R/kill-$f
    fresh "$D"
    env_ckpt=()
    [[ $NOCKPT = 1 ]] && env_ckpt=(CAIRN_CHECKPOINT_SECS=100000)
    t0=$(date +%s.%N)
    env "${env_ckpt[@]}" "$CAIRN" -r "$D/repo" --cache-dir "$D/cache" backup -q "$CORPUS" \
        >/dev/null 2>"$W/logs/resume-killed-$f.err" &
    pid=$!
    if [[ $BY = data || $BY = position ]]; then
        if [[ $BY = data ]]; then
            goal=$(python3 -c "print(int($f * $FULL_DATA))")
        else
            # Bytes stored at F x the sampled backup's time (the sampler starts just
            # before it, after fresh's sync, so the clocks agree to a few ms).
            goal=$(python3 - "$R/full-curve.txt" "$f" "$SAMPLED" <<'PY'
import sys
at = float(sys.argv[2]) * float(sys.argv[3])
best, t0 = 0, None
for line in open(sys.argv[1]):
    t, b = line.split()
    t0 = float(t) if t0 is None else t0
    if float(t) - t0 <= at and b.isdigit():
        best = int(b)
print(best)
PY
)
        fi
        echo "resume: backup killed once $goal bytes of packs are stored" >&2
        while kill -0 "$pid" 2>/dev/null; do
            have=$(du -sb "$D/repo/data" 2>/dev/null | cut -f1)
            [[ ${have:-0} -ge $goal ]] && break
            sleep 0.02
        done
    else
        delay=$(python3 -c "print('%.2f' % ($f * $FULL))")
        echo "resume: backup killed after $delay s" >&2
        sleep "$delay"
    fi
    note=""
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; else note=" (finished first)"; fi
    wait "$pid" 2>/dev/null || true
    delay=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $t0))")
    # Complete packs only: a pack being written when the kill came is a dot-file.
    kept=$(find "$D/repo/data" -type f ! -name '.*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    left=$(python3 -c "print('%.0f%%' % (100.0 * $kept / $FULL_DATA))")
    RERUN=$(timed_backup "$D" "rerun-$f")
    ratio=$(python3 -c "print('%.2f' % ($RERUN / $FULL))")
    adopted=$(field "$R/rerun-$f.json" packs_adopted)
    mib=$(python3 -c "print('%.0f' % ($(field "$R/rerun-$f.json" data_adopted_packed) / 1048576))")
    resumed=$(field "$R/rerun-$f.json" files_resumed)
    echo "| $f$note | $delay | $left | $RERUN | $ratio | $adopted | $mib | $resumed |"
    rmtree "$D"
done
rmtree "$R/full"
