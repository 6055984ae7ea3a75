#!/usr/bin/env bash
# bench/bench.sh: cairn vs restic, side by side, in one run, on the same data.
#
#   bash bench/bench.sh [options] [TREE...]
#
# For every tree (by default a make-corpus tree of 1024 MiB, seed 1; plus every
# TREE given, e.g. /usr) and for each tool (restic, cairn) this:
#   1. inits a fresh local repository (format v2, compression auto, defaults),
#   2. times the initial backup,
#   3. times a second backup of the unchanged tree (restic uses its parent
#      snapshot; cairn may not yet, so that row is informative),
#   4. times a full restore of "latest" into an empty directory,
#   5. checks the restored tree against the source (paths, types, sizes,
#      symlink targets and SHA-256 of every file; then modes, owners, link
#      counts and mtimes) and prints OK / MISMATCH (never fails the run).
# Wall time and peak RSS come from `/usr/bin/time -f '%e %M'`, repository
# size from `du -sb`. One untimed warm-up read of the tree precedes the
# measurements so both tools see a warm page cache (we do not drop caches).
#
# Options:
#   --size-mb N        size of the generated corpus in MiB (default 1024)
#   --seed S           make-corpus seed (default 1)
#   --no-corpus        do not generate/benchmark the corpus (only TREE args)
#   --order O          restic-first (default) | cairn-first | alternate
#                      (alternate flips which tool goes first at every step)
#   --build            run `cargo build --release -p cairn-cli` first
#                      (also done automatically if the binary is missing)
#   --keep             keep repositories and restored trees (for inspection)
#   -h, --help         this text
#
# Environment:
#   CAIRN_SHARED       the shared folder (default: <repo root>/../shared)
#   BENCH_DIR          work directory (default: <repo root>/bench/work, gitignored)
#   CAIRN_BIN          cairn binary (default: <repo root>/target/release/cairn)
#   RESTIC_BIN         restic binary (default: restic from PATH)
#
# The report (markdown) goes to stdout and to $BENCH_DIR/results-<date>.md;
# progress goes to stderr; each command's output is in $BENCH_DIR/logs/.
set -euo pipefail
export LC_ALL=C

# ---------------------------------------------------------------- locations
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(git -C "$SCRIPT_DIR" rev-parse --show-toplevel 2>/dev/null || (cd "$SCRIPT_DIR/.." && pwd))
SHARED=${CAIRN_SHARED:-$ROOT/../shared}
W=${BENCH_DIR:-$ROOT/bench/work}
CAIRN=${CAIRN_BIN:-$ROOT/target/release/cairn}
RESTIC=${RESTIC_BIN:-$(command -v restic || true)}
TIME=/usr/bin/time

SIZE_MB=1024
SEED=1
ORDER=restic-first
DO_CORPUS=1
DO_BUILD=0
KEEP=0
TREES=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --size-mb) SIZE_MB=${2:?--size-mb needs a value}; shift 2 ;;
        --size-mb=*) SIZE_MB=${1#*=}; shift ;;
        --seed) SEED=${2:?--seed needs a value}; shift 2 ;;
        --seed=*) SEED=${1#*=}; shift ;;
        --order) ORDER=${2:?--order needs a value}; shift 2 ;;
        --order=*) ORDER=${1#*=}; shift ;;
        --no-corpus) DO_CORPUS=0; shift ;;
        --build) DO_BUILD=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; TREES+=("$@"); break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) TREES+=("$1"); shift ;;
    esac
done
[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -gt 0 ]] || die "--size-mb wants a positive integer"
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed wants an integer"
case $ORDER in restic-first|cairn-first|alternate) ;; *) die "--order: restic-first | cairn-first | alternate" ;; esac
[[ $DO_CORPUS = 1 || ${#TREES[@]} -gt 0 ]] || die "--no-corpus given and no TREE: nothing to do"

# ---------------------------------------------------------------- prerequisites
if [[ ! -x $TIME ]]; then
    die "$TIME not found; install it with: apt-get install time"
fi
[[ -n $RESTIC && -x $RESTIC ]] || die "restic not found (install restic or set RESTIC_BIN)"
if [[ $DO_BUILD = 1 || ! -x $CAIRN ]]; then
    [[ -n ${CAIRN_BIN:-} && ! -x $CAIRN ]] && die "CAIRN_BIN=$CAIRN is not executable"
    if [[ -z ${CAIRN_BIN:-} ]]; then
        say "building cairn: cargo build --release -p cairn-cli"
        (cd "$ROOT" && cargo build --release -p cairn-cli) >&2 || die "cargo build failed"
    fi
fi
[[ -x $CAIRN ]] || die "cairn binary not found at $CAIRN"
MAKE_CORPUS=$SHARED/corpus/make-corpus
if [[ $DO_CORPUS = 1 ]]; then
    [[ -f $MAKE_CORPUS ]] || die "make-corpus not found at $MAKE_CORPUS (set CAIRN_SHARED)"
    command -v python3 >/dev/null || die "python3 is needed for make-corpus"
fi

# Normalise TREE args to absolute paths (the tools store absolute paths, and
# restore re-creates them under --target).
ABS_TREES=()
for t in ${TREES[@]+"${TREES[@]}"}; do
    [[ -d $t ]] || die "not a directory: $t"
    ABS_TREES+=("$(cd "$t" && pwd -P)")
done

mkdir -p "$W" "$W/logs"
W=$(cd "$W" && pwd -P)
# Others may rebuild target/release/cairn while we run: use a private copy so
# every step of this run measures the same binary.
cp -f "$CAIRN" "$W/cairn.bin"
CAIRN_SRC=$CAIRN
CAIRN=$W/cairn.bin
for t in ${ABS_TREES[@]+"${ABS_TREES[@]}"}; do
    case "$W/" in "$t"/*|"$t/") die "work dir $W lies inside tree $t; set BENCH_DIR elsewhere" ;; esac
done

# A clean, default environment for both tools: a password and nothing else
# that would change their behaviour. (CAIRN_TEST_KDF is deliberately unset so
# cairn pays for the real scrypt KDF, as restic does.)
unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND \
      RESTIC_KEY_HINT RESTIC_COMPRESSION RESTIC_PACK_SIZE RESTIC_READ_CONCURRENCY RESTIC_CACHE_DIR \
      RESTIC_HOST RESTIC_PROGRESS_FPS GOMAXPROCS GOGC CAIRN_TEST_KDF
export RESTIC_PASSWORD=cairn-bench-password

# ---------------------------------------------------------------- helpers
rmtree() {  # rm -rf that also copes with read-only dirs the corpus creates
    local p
    for p in "$@"; do
        [[ -e $p || -L $p ]] || continue
        chmod -R u+rwX "$p" 2>/dev/null || true
        rm -rf "$p"
    done
}

tool_bin() { if [[ $1 = restic ]]; then echo "$RESTIC"; else echo "$CAIRN"; fi; }

# Tool order for step number $1 (0-based).
tools_for_step() {
    case $ORDER in
        restic-first) echo "restic cairn" ;;
        cairn-first) echo "cairn restic" ;;
        alternate) if (( $1 % 2 == 0 )); then echo "restic cairn"; else echo "cairn restic"; fi ;;
    esac
}

declare -A WALL RSS RC REPO_SIZE REPO_SIZE2 VERIFY VERIFY_DETAIL

# run_timed KEY LOG CMD...: time CMD; record WALL[KEY] (s), RSS[KEY] (KiB), RC[KEY].
run_timed() {
    local key=$1 log=$2; shift 2
    local tf; tf=$(mktemp "$W/time.XXXXXX")
    local rc=0
    { echo "+ $*"; echo; } >"$log"
    # Start from a quiet disk: the previous step's dirty pages must not be written back on
    # this step's clock.
    sync
    sleep 1
    "$TIME" -f '%e %M' -o "$tf" "$@" >>"$log" 2>&1 || rc=$?
    local line; line=$(tail -n 1 "$tf")
    rm -f "$tf"
    WALL[$key]=${line% *}
    RSS[$key]=${line#* }
    RC[$key]=$rc
    echo "exit status: $rc, wall: ${WALL[$key]} s, max RSS: ${RSS[$key]} KiB" >>"$log"
    say "  $key: ${WALL[$key]} s, $(( ${RSS[$key]} / 1024 )) MiB RSS, exit $rc"
    # restic (and cairn, which copies its codes) exit 3 when some source files could not be read.
    if [[ $rc != 0 && $rc != 3 ]]; then
        say "  !!! $key FAILED with exit status $rc; see $log"
        tail -n 5 "$log" | sed 's/^/      /' >&2
    fi
    return 0
}

ok_rc() { [[ -n ${RC[$1]:-} && ( ${RC[$1]} = 0 || ${RC[$1]} = 3 ) ]]; }

# manifest DIR OUT: OUT.content (type, path, size/link target, sha256 of files)
# and OUT.meta (path, mode, owner, link count, mtime). NUL-safe: names with
# newlines are turned into \001 so each record stays on one line.
manifest() {
    local dir=$1 out=$2
    find "$dir" \( -type f -printf 'f\t%P\t%s\0' \) -o \( -type l -printf 'l\t%P\t%l\0' \) \
                -o \( -type d -printf 'd\t%P\0' \) -o -printf '%y\t%P\0' \
        | sort -z | tr '\n\0' '\001\n' >"$out.content"
    (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >>"$out.content"
    find "$dir" \( -type f -printf '%P\t%m\t%U:%G\tn%n\t%T@\0' \) \
                -o -printf '%P\t%m\t%U:%G\t-\t%T@\0' \
        | sort -z | tr '\n\0' '\001\n' >"$out.meta"
}

# verify TOOL NAME SRC_MANIFEST RESTORED_DIR
verify() {
    local tool=$1 name=$2 src=$3 dir=$4 out=$W/logs/$name-$tool-restored
    if [[ ! -d $dir ]]; then
        VERIFY[$tool]=MISMATCH
        VERIFY_DETAIL[$tool]="restored tree not found at ${dir#$W/}"
        return 0
    fi
    manifest "$dir" "$out"
    local c m
    c=$(diff "$src.content" "$out.content" | grep -c '^[<>]' || true)
    m=$(diff "$src.meta" "$out.meta" | grep -c '^[<>]' || true)
    diff "$src.content" "$out.content" >"$out.content.diff" || true
    diff "$src.meta" "$out.meta" >"$out.meta.diff" || true
    if [[ $c = 0 && $m = 0 ]]; then
        VERIFY[$tool]=OK
        VERIFY_DETAIL[$tool]="content and metadata identical"
    elif [[ $c = 0 ]]; then
        VERIFY[$tool]=MISMATCH
        VERIFY_DETAIL[$tool]="content identical, metadata differs ($m diff lines: mode/owner/nlink/mtime; see logs/${out##*/}.meta.diff)"
    else
        VERIFY[$tool]=MISMATCH
        VERIFY_DETAIL[$tool]="CONTENT differs ($c diff lines; see logs/${out##*/}.content.diff), metadata $m diff lines"
    fi
    if [[ ${VERIFY[$tool]} != OK ]]; then
        local first
        first=$(cat "$out.content.diff" "$out.meta.diff" | grep -m1 '^<' | cat -v | cut -c3-120 || true)
        [[ -z $first ]] || VERIFY_DETAIL[$tool]+="; first source line not matched: \`$first\`"
        {
            echo
            echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            echo "!!! $tool restore of $name: MISMATCH: ${VERIFY_DETAIL[$tool]}"
            { head -n 6 "$out.content.diff"; head -n 6 "$out.meta.diff"; } | cat -v | cut -c1-200 | sed 's/^/!!!   /'
            echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            echo
        } >&2
    else
        say "  $tool restore of $name: OK"
    fi
}

fmt_s() { if [[ -n ${1:-} ]]; then printf '%.2f' "$1"; else printf 'n/a'; fi; }
fmt_mib() { if [[ -n ${1:-} ]]; then awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; else printf 'n/a'; fi; }
ratio() {  # ratio A B -> A/B with 2 decimals, n/a if unknown or B==0
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN{ if (a=="" || b=="" || b+0==0) print "n/a"; else printf "%.2f", a/b }'
}
cell_s() {  # cell_s KEY: wall seconds, or FAILED(rc)
    local k=$1
    if [[ -z ${RC[$k]:-} ]]; then echo "skipped"
    elif ok_rc "$k"; then fmt_s "${WALL[$k]}"
    else echo "FAILED(${RC[$k]})"; fi
}
cell_rss() { local k=$1; if ok_rc "$k"; then fmt_mib "${RSS[$k]}"; else echo "-"; fi; }
ok_val() { if ok_rc "$1"; then echo "$2"; fi; }

# ---------------------------------------------------------------- machine info
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
mem_total=$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)
restic_version=$("$RESTIC" version 2>/dev/null | head -n1)
cairn_commit=$(git -C "$ROOT" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
cairn_bin_time=$(date -r "$CAIRN_SRC" '+%Y-%m-%d %H:%M:%S' 2>/dev/null || echo '?')
cairn_bin_sha=$(sha256sum "$CAIRN" | cut -c1-12)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
busy_start=$(ps -eo pcpu=,comm= --sort=-pcpu | awk -v me=$$ '$1 >= 10 {printf "%s%s (%s%%)", sep, $2, $1; sep=", "}' | cut -c1-200)
started=$(date '+%Y-%m-%d %H:%M:%S %Z')
stamp=$(date '+%Y%m%d-%H%M%S')
RESULTS=$W/results-$stamp.md

REPORT=$(mktemp "$W/report.XXXXXX")
trap 'rm -f "$REPORT"' EXIT

# ---------------------------------------------------------------- corpus
ensure_corpus() {
    local dir=$W/corpus marker=$W/corpus.marker want
    want="make-corpus size_mb=$SIZE_MB seed=$SEED generator_sha256=$(sha256sum "$MAKE_CORPUS" | cut -d' ' -f1)"
    if [[ -d $dir && -f $marker && $(cat "$marker") = "$want" ]]; then
        say "reusing corpus $dir ($want)"
    else
        say "generating corpus: $SIZE_MB MiB, seed $SEED -> $dir"
        rm -f "$marker"
        rmtree "$dir"
        python3 "$MAKE_CORPUS" create "$dir" --size-mb "$SIZE_MB" --seed "$SEED" >&2
        echo "$want" >"$marker"
    fi
}

# ---------------------------------------------------------------- one tree
STEP=0
bench_tree() {
    local tree=$1 name=$2 label=$3
    local base=$W/run
    rmtree "$base"
    mkdir -p "$base"
    WALL=(); RSS=(); RC=(); REPO_SIZE=(); REPO_SIZE2=(); VERIFY=(); VERIFY_DETAIL=()

    say "=== $label: $tree"
    local nfiles bytes
    nfiles=$(find "$tree" -type f -printf . 2>/dev/null | wc -c)
    bytes=$(du -sb "$tree" 2>/dev/null | cut -f1 || true)
    say "warm-up read of $tree ($nfiles files, $(fmt_mib $(( ${bytes:-0} / 1024 ))) MiB)"
    find "$tree" -type f -print0 2>/dev/null | xargs -0 -r cat >/dev/null 2>&1 || true
    say "source manifest"
    manifest "$tree" "$W/logs/$name-source"

    local tool op t
    # init (untimed)
    for tool in restic cairn; do
        "$(tool_bin $tool)" -r "$base/repo-$tool" --cache-dir "$base/cache-$tool" \
            init --repository-version 2 >"$W/logs/$name-$tool-init.log" 2>&1 \
            || { say "!!! $tool init failed; see $W/logs/$name-$tool-init.log"; RC[$tool:init]=1; }
    done

    local ops="backup backup2 restore"
    # The generated corpus may be changed; a real tree never is.
    [[ $name = corpus ]] && ops+=" backup3"
    for op in $ops; do
        if [[ $op = backup3 ]]; then
            say "mutating 5% of the corpus (make-corpus mutate --percent 5)"
            python3 "$SHARED/corpus/make-corpus" mutate "$tree" --percent 5 --seed 2 >"$W/logs/$name-mutate.log" 2>&1
            rm -f "$W/corpus.marker"   # the next run must build a fresh corpus
            sync
        fi
        for tool in $(tools_for_step $STEP); do
            local bin; bin=$(tool_bin "$tool")
            local common=(-r "$base/repo-$tool" --cache-dir "$base/cache-$tool" --compression auto)
            local log=$W/logs/$name-$tool-$op.log
            case $op in
                backup)
                    [[ -z ${RC[$tool:init]:-} ]] || continue
                    say "$tool: initial backup"
                    run_timed "$tool:$op" "$log" "$bin" "${common[@]}" backup "$tree"
                    REPO_SIZE[$tool]=$(du -sb "$base/repo-$tool" | cut -f1) ;;
                backup3)
                    ok_rc "$tool:backup" || continue
                    say "$tool: backup after changing 5% of the files"
                    run_timed "$tool:$op" "$log" "$bin" "${common[@]}" backup "$tree" ;;
                backup2)
                    ok_rc "$tool:backup" || continue
                    say "$tool: no-change backup"
                    run_timed "$tool:$op" "$log" "$bin" "${common[@]}" backup "$tree"
                    REPO_SIZE2[$tool]=$(du -sb "$base/repo-$tool" | cut -f1) ;;
                restore)
                    ok_rc "$tool:backup" || continue
                    say "$tool: restore"
                    mkdir -p "$base/restore-$tool"
                    run_timed "$tool:$op" "$log" "$bin" "${common[@]}" restore latest --target "$base/restore-$tool"
                    if ok_rc "$tool:$op"; then
                        verify "$tool" "$name" "$W/logs/$name-source" "$base/restore-$tool$tree"
                    else
                        VERIFY[$tool]="MISMATCH"; VERIFY_DETAIL[$tool]="restore failed"
                    fi
                    ;;
            esac
        done
        STEP=$((STEP + 1))
    done
    # Restored trees are removed only now: deleting one right before the other tool's restore
    # would make that restore pay for ext4's recently-deleted-inode scan.
    [[ $KEEP = 1 ]] || { rmtree "$base/restore-restic"; rmtree "$base/restore-cairn"; }

    # ----- report section for this tree
    {
        echo "### $label"
        echo
        echo "\`$tree\`: $nfiles files, $(fmt_mib $(( ${bytes:-0} / 1024 ))) MiB (du -sb)"
        echo
        echo "| operation | restic s | cairn s | ratio (cairn/restic) | restic RSS MiB | cairn RSS MiB | RSS ratio |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        local row
        for op in $ops; do
            case $op in backup) row="initial backup" ;; backup2) row="no-change backup" ;; restore) row="restore" ;; backup3) row="backup after 5% changed" ;; esac
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$row" \
                "$(cell_s "restic:$op")" "$(cell_s "cairn:$op")" \
                "$(ratio "$(ok_val "cairn:$op" "${WALL[cairn:$op]:-}")" "$(ok_val "restic:$op" "${WALL[restic:$op]:-}")")" \
                "$(cell_rss "restic:$op")" "$(cell_rss "cairn:$op")" \
                "$(ratio "$(ok_val "cairn:$op" "${RSS[cairn:$op]:-}")" "$(ok_val "restic:$op" "${RSS[restic:$op]:-}")")"
        done
        echo
        local rs=${REPO_SIZE[restic]:-} cs=${REPO_SIZE[cairn]:-}
        echo "Repository size after initial backup (du -sb): restic $(fmt_mib $(( ${rs:-0} / 1024 ))) MiB ($rs B), cairn $(fmt_mib $(( ${cs:-0} / 1024 ))) MiB ($cs B), ratio (cairn/restic) $(ratio "$cs" "$rs")"
        rs=${REPO_SIZE2[restic]:-}; cs=${REPO_SIZE2[cairn]:-}
        echo "Repository size after no-change backup: restic $(fmt_mib $(( ${rs:-0} / 1024 ))) MiB, cairn $(fmt_mib $(( ${cs:-0} / 1024 ))) MiB"
        echo
        for tool in restic cairn; do
            local v=${VERIFY[$tool]:-not run} d=${VERIFY_DETAIL[$tool]:-}
            if [[ $v = MISMATCH ]]; then v="**!!! MISMATCH !!!**"; fi
            echo "Restore check, $tool: $v${d:+ — $d}"
            echo
        done
        # what each tool said about the no-change backup (parent snapshot used or not)
        local summ=()
        for tool in restic cairn; do
            local l2=$W/logs/$name-$tool-backup2.log
            [[ -f $l2 ]] && ok_rc "$tool:backup2" || continue
            summ+=("$tool: $( { grep -m1 -i 'parent' "$l2" || true; grep -m1 '^Files:' "$l2" || true; } | tr -s ' ' | paste -sd ';' - | sed 's/;/; /g')")
        done
        if [[ ${#summ[@]} -gt 0 ]]; then
            echo "No-change backup: $(printf '%s — ' "${summ[@]}" | sed 's/ — $//')"
            echo
        fi
        local notes=()
        for tool in restic cairn; do
            for op in backup backup2 restore; do
                if [[ ${RC[$tool:$op]:-0} = 3 ]]; then notes+=("$tool $op exited 3 (some source files unreadable)"); fi
            done
        done
        if [[ ${#notes[@]} -gt 0 ]]; then printf 'Note: %s\n\n' "${notes[@]}"; fi
    } >>"$REPORT"

    if [[ $KEEP = 0 ]]; then rmtree "$base"; fi
}

# ---------------------------------------------------------------- run
say "work dir $W; cairn $CAIRN_SRC ($cairn_commit, copied to $CAIRN); $restic_version; order $ORDER"
if [[ $DO_CORPUS = 1 ]]; then
    ensure_corpus
    bench_tree "$W/corpus" "corpus" "make-corpus tree, $SIZE_MB MiB, seed $SEED"
fi
for t in ${ABS_TREES[@]+"${ABS_TREES[@]}"}; do
    n=$(echo "$t" | sed 's#^/##; s#[^A-Za-z0-9._-]#_#g'); n=tree-${n:-root}
    bench_tree "$t" "$n" "real tree $t"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "## cairn vs restic — $started"
    echo
    echo "Machine: $(nproc) CPUs ($cpu_model), $mem_total RAM, kernel $(uname -r); $restic_version; cairn $cairn_commit (binary built $cairn_bin_time, sha256 $cairn_bin_sha); order $ORDER; load average at start $load_start, at end $load_end${busy_start:+; other busy processes at start: $busy_start}"
    echo
    echo "Each tool: fresh local repo (v2, compression auto, cache in the work dir), one untimed warm-up read of the tree first; wall time and peak RSS from \`/usr/bin/time -f '%e %M'\`."
    echo
    cat "$REPORT"
} | tee "$RESULTS"
say "report written to $RESULTS"
