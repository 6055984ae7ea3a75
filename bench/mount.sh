#!/usr/bin/env bash
# bench/mount.sh: browsing a snapshot through FUSE, cairn mount vs restic mount, on one
# repository.
#
#   bash bench/mount.sh [--order restic-first|cairn-first] [TREE]
#
# TREE (default: the Linux 6.1 source tree at /work/linux/linux-source-6.1) is backed up
# once by restic into a fresh local repository (kept for later runs of the same TREE). Then each tool
# in turn mounts it (a fresh mount, so neither sees the other's caches; the repository's
# files are in the page cache for both) and, with wall times:
#   walk: find MNT/snapshots/latest/ -printf '%s %m\n' > /dev/null   (metadata only)
#   read: tar -C MNT/snapshots/latest/ -cf - . | wc -c                  (every file's bytes;
#         tar into a pipe, because GNU tar skips reading files when it writes to /dev/null)
# and the mount process's peak RSS (VmHWM from /proc/PID/status, read just before it is
# unmounted). The tar byte counts of both tools must agree. Benchmarks print numbers; they
# are not tests.
#
# Environment: BENCH_DIR (default bench/work), CAIRN_BIN (default target/release/cairn,
# built if missing), RESTIC_BIN (default restic from PATH).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
ORDER=restic-first
TREE=/work/linux/linux-source-6.1
while [[ $# -gt 0 ]]; do
    case $1 in
        --order) ORDER=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) TREE=$1; shift ;;
    esac
done
W=${BENCH_DIR:-$ROOT/bench/work}
CAIRN=${CAIRN_BIN:-$ROOT/target/release/cairn}
RESTIC=${RESTIC_BIN:-restic}
[[ -x $CAIRN ]] || cargo build --release -p cairn-cli >&2
[[ -d $TREE ]] || { echo "mount: no tree at $TREE" >&2; exit 1; }
M=$W/mount
mkdir -p "$W/logs"
export RESTIC_PASSWORD=bench
if [[ ! -f $M/repo/config || ! -f $M/tree-path || $(cat "$M/tree-path") != "$TREE" ]]; then
    rm -rf "$M"; mkdir -p "$M"
    echo "mount: backing up $TREE" >&2
    "$RESTIC" -r "$M/repo" init >/dev/null
    "$RESTIC" -r "$M/repo" --no-cache backup -q "$TREE" >"$W/logs/mount-backup.out"
    echo "$TREE" >"$M/tree-path"
fi

now() { date +%s.%N; }
secs() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

measure() { # TOOL NAME -> "walk_s read_s rss_kib bytes" on stdout
    local tool=$1 name=$2 mnt=$M/mnt-$2
    mkdir -p "$mnt"
    sync
    "$tool" -r "$M/repo" --no-cache mount "$mnt" >"$W/logs/mount-$name.out" 2>"$W/logs/mount-$name.err" &
    local pid=$!
    for _ in $(seq 600); do
        [[ -e $mnt/snapshots/latest/ ]] && break
        sleep 0.1
    done
    [[ -e $mnt/snapshots/latest/ ]] || { echo "mount: $name did not mount" >&2; kill "$pid"; exit 1; }
    local t0 t1 t2 bytes rss
    t0=$(now)
    find "$mnt/snapshots/latest/" -printf '%s %m\n' >/dev/null
    t1=$(now)
    bytes=$(tar -C "$mnt/snapshots/latest/" -cf - . | wc -c)
    t2=$(now)
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill -INT "$pid"
    wait "$pid" || true
    mountpoint -q "$mnt" && umount "$mnt"
    echo "$(secs "$t0" "$t1") $(secs "$t1" "$t2") $rss $bytes"
}

if [[ $ORDER == cairn-first ]]; then
    c=$(measure "$CAIRN" cairn); r=$(measure "$RESTIC" restic)
else
    r=$(measure "$RESTIC" restic); c=$(measure "$CAIRN" cairn)
fi
read -r rw rr rrss rb <<<"$r"
read -r cw cr crss cb <<<"$c"
files=$(find "$TREE" -type f | wc -l)
echo "## mount — $(date -u '+%F %T') UTC"
echo
echo "$TREE: $files files; tar stream $rb bytes (restic) / $cb bytes (cairn); restic $("$RESTIC" version | cut -d' ' -f2); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$rw" "$cw" "$rr" "$cr" "$rrss" "$crss" "$rb" <<'PY'
import sys
rw, cw, rr, cr, rrss, crss, rb = map(float, sys.argv[1:])
print("| step | restic s | cairn s | cairn/restic | restic MiB/s | cairn MiB/s |")
print("|---|---:|---:|---:|---:|---:|")
print(f"| metadata walk (find -printf) | {rw:.2f} | {cw:.2f} | {cw/rw:.2f} | | |")
print(f"| read every file (tar) | {rr:.2f} | {cr:.2f} | {cr/rr:.2f} | {rb/rr/2**20:.1f} | {rb/cr/2**20:.1f} |")
print()
print(f"Peak RSS of the mount process: restic {rrss/1024:.1f} MiB, cairn {crss/1024:.1f} MiB ({crss/rrss:.2f}).")
print(f"Targets: read throughput >= 2x restic's: {'met' if rr/cr >= 2 else 'NOT met'} ({rr/cr:.2f}x); "
      f"walk <= 0.5x: {'met' if cw/rw <= 0.5 else 'NOT met'}; RSS <= restic's: {'met' if crss <= rrss else 'NOT met'}.")
PY
[[ $rb == "$cb" ]] || echo "WARNING: the tar streams differ in size"
