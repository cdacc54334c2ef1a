#!/usr/bin/env bash
# Fuzzes every parser of untrusted or operator input with libFuzzer: the
# targets of Fuzz/ (a package of its own, built here with AddressSanitizer and
# coverage instrumentation), each starting from its committed seed corpus
# Fuzz/Corpus/<target>/ and checking properties of what the parser returns,
# not only that it does not crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]          fuzz each target that long (default 30), two at
#                                                 a time; exit 1 on any crash, printing the input
#   scripts/fuzz.sh --merge [SECONDS_PER_TARGET]  the same, then minimise-and-merge the inputs that
#                                                 found new coverage into Fuzz/Corpus/ (to commit)
#
# The committed corpus is only read: each run fuzzes a copy in a work
# directory (removed after a clean run, kept when something crashed).
#   FUZZ_TARGETS="EventBatchFuzzer CSVFuzzer"  only these targets
#   FUZZ_JOBS=N                                targets fuzzed at once (default 2, at most the cores)
#   FUZZ_WORKDIR=DIR                           work there and keep it (corpora, logs, crashes)
#
# Reproduce a crash: Fuzz/.build/debug/<target> <crash file>
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh
ensure_swift

merge=0
if [ "${1:-}" = --merge ]; then merge=1; shift; fi
seconds=${1:-30}
case "$seconds" in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [--merge] [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

# name, -max_len (bytes: room for the documented limits, small enough to stay
# fast), dictionary in Fuzz/Dictionaries/
all_targets=(
    "EventBatchFuzzer   4096 EventBatchFuzzer.dict"
    "RuleYAMLFuzzer     4096 rules.dict"
    "RuleJSONFuzzer     2048 rules.dict"
    "NotifyConfigFuzzer 4096 NotifyConfigFuzzer.dict"
    "TimeTextFuzzer      128 TimeTextFuzzer.dict"
    "QueryFuzzer        1024 QueryFuzzer.dict"
    "CSVFuzzer          1024 CSVFuzzer.dict"
    "MatcherFuzzer      1024 MatcherFuzzer.dict"
)
targets=()
for spec in "${all_targets[@]}"; do
    read -r name _ <<<"$spec"
    if [ -z "${FUZZ_TARGETS:-}" ] || [[ " $FUZZ_TARGETS " == *" $name "* ]]; then targets+=("$spec"); fi
done
if [ ${#targets[@]} -eq 0 ]; then echo "error: FUZZ_TARGETS names no target of Fuzz/" >&2; exit 2; fi

cores=$(nproc 2>/dev/null || echo 1)
jobs_max=${FUZZ_JOBS:-2}
[ "$jobs_max" -gt "$cores" ] && jobs_max=$cores
[ "$jobs_max" -lt 1 ] && jobs_max=1

if [ -n "${FUZZ_WORKDIR:-}" ]; then
    workdir=$FUZZ_WORKDIR
    keep=1
    mkdir -p "$workdir"
else
    workdir=$(mktemp -d /tmp/tocsin-fuzz.XXXXXX)
    keep=0
fi
started=$(date +%s)

# -sanitize=fuzzer,address for the Swift code (coverage and ASan); SwiftPM's
# --sanitize does the same for the C of Yams and links the executables
# against libFuzzer's main. The gold linker warns once per ASan symbol.
# shellcheck disable=SC2054  # the comma is -sanitize's
build=(swift build -c debug --package-path Fuzz --scratch-path Fuzz/.build
       --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address)
echo "== building Fuzz/ (debug, -sanitize=fuzzer,address)" >&2
if ! "${build[@]}" >"$workdir/build.log" 2>&1; then
    sed '/Cannot export local symbol/d' "$workdir/build.log" | tail -n 40 >&2
    echo "error: building Fuzz/ failed (log: $workdir/build.log)" >&2
    exit 1
fi
bin=$("${build[@]}" --show-bin-path)
built=$(date +%s)
echo "built in $((built - started)) s" >&2

run_target() {
    local name=$1 max_len=$2 dict=$3
    local corpus=$workdir/corpus/$name artifacts=$workdir/artifacts/$name
    mkdir -p "$corpus" "$artifacts"
    cp -R "$root/Fuzz/Corpus/$name/." "$corpus/"
    local status=0
    # The Swift runtime's backtracer would catch the abort before libFuzzer's handler.
    SWIFT_BACKTRACE=enable=no "$bin/$name" "$corpus" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$max_len" -timeout=10 \
        -dict="$root/Fuzz/Dictionaries/$dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
        >"$workdir/$name.log" 2>&1 || status=$?
    echo "$status" >"$workdir/$name.status"
}

echo "== fuzzing ${#targets[@]} target(s), $seconds s each, $jobs_max at a time (work directory $workdir)" >&2
for spec in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    # shellcheck disable=SC2086
    run_target $spec &
done
wait

# final_stat NAME LOG — one of libFuzzer's final stats.
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1 || true; }
# cov LOG first|last — the coverage (edges) of the first or last status line.
cov() {
    { grep -E '^#[0-9]+' "$1" || true; } | { grep -oE 'cov: [0-9]+' || true; } \
        | { if [ "$2" = first ]; then head -n 1; else tail -n 1; fi; } | sed 's/cov: //'
}

failed=0
printf '%-19s %10s %8s %13s %9s %14s  %s\n' target executions execs/s corpus new-units "coverage" result
for spec in "${targets[@]}"; do
    read -r name _ <<<"$spec"
    log=$workdir/$name.log
    status=$(cat "$workdir/$name.status" 2>/dev/null || echo 1)
    execs=$(final_stat number_of_executed_units "$log"); rate=$(final_stat average_exec_per_sec "$log")
    added=$(final_stat new_units_added "$log")
    corpus=$({ grep -oE 'corp: [0-9]+/[0-9.]+[bKMG]*b?' "$log" || true; } | tail -n 1 | sed 's/corp: //')
    first=$(cov "$log" first); last=$(cov "$log" last)
    result=ok
    if [ "$status" != 0 ]; then result="CRASH (exit $status)"; failed=1; fi
    printf '%-19s %10s %8s %13s %9s %14s  %s\n' "$name" "${execs:--}" "${rate:--}" "${corpus:--}" "${added:--}" \
        "${first:--}→${last:--}" "$result"
done

if [ "$failed" = 1 ]; then
    for spec in "${targets[@]}"; do
        read -r name _ <<<"$spec"
        [ "$(cat "$workdir/$name.status" 2>/dev/null || echo 1)" = 0 ] && continue
        echo >&2
        echo "== $name crashed:" >&2
        grep -E 'property violated|ERROR: |SUMMARY: |Test unit written|Base64:' "$workdir/$name.log" | head -n 8 >&2 \
            || tail -n 5 "$workdir/$name.log" >&2
        for input in "$workdir/artifacts/$name"/*; do
            [ -e "$input" ] || continue
            echo "crashing input: $input" >&2
            echo "reproduce:      Fuzz/.build/debug/$name $input" >&2
        done
        echo "log:            $workdir/$name.log" >&2
    done
    echo >&2
    echo "error: a fuzz target crashed; its input, log and corpus are kept in $workdir" >&2
    exit 1
fi

if [ "$merge" = 1 ]; then
    echo "== merging inputs with new coverage into Fuzz/Corpus/" >&2
    for spec in "${targets[@]}"; do
        read -r name max_len _ <<<"$spec"
        before=$(find "$root/Fuzz/Corpus/$name" -type f | wc -l)
        SWIFT_BACKTRACE=enable=no "$bin/$name" -merge=1 -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
            "$root/Fuzz/Corpus/$name" "$workdir/corpus/$name" >"$workdir/$name.merge.log" 2>&1 \
            || { echo "error: merging $name failed (log: $workdir/$name.merge.log)" >&2; exit 1; }
        after=$(find "$root/Fuzz/Corpus/$name" -type f | wc -l)
        echo "$name: $((after - before)) new input(s) in Fuzz/Corpus/$name" >&2
    done
    echo "review and commit them: git status Fuzz/Corpus" >&2
fi

echo "fuzzed in $(($(date +%s) - built)) s; $(($(date +%s) - started)) s in all with the build" >&2
if [ "$keep" = 0 ]; then rm -rf "$workdir"; else echo "work directory kept: $workdir" >&2; fi
