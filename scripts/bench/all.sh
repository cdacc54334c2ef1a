#!/usr/bin/env bash
# Every benchmark, one table: figure, measured, reference, ratio, target,
# met/missed — with the machine's load average before and after.
#
#   scripts/bench/all.sh            the full runs (about 30 minutes on 2 CPUs)
#   scripts/bench/all.sh --quick    smaller data and shorter runs (about 10
#                                   minutes): a smoke run, not figures to report
#
# The release binary is built once (.build-bench, statically linked with
# the Swift runtime, as it is deployed) and handed to each script
# as TOCSIN_BIN. Each script writes its figures (scripts/bench/figures.sh)
# to a file this one prints at the end; their own reports and progress go to
# stderr and are kept in the log directory printed on the first line.
# Exits non-zero when a benchmark fails to run, never on a missed target.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/scripts/lib/common.sh"

quick=0
case "${1:-}" in
    "") ;;
    --quick) quick=1 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

LOGS=$(mktemp -d /tmp/tocsin-bench-all.XXXXXX)
FIGURES="$LOGS/figures.tsv"
: >"$FIGURES"
echo "[all] logs in $LOGS" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

ensure_packages "${BUILD_PACKAGES[@]}" curl python3
ensure_swift
echo "[all] building the release binary (.build-bench)" >&2
(cd "$ROOT" && swift build -c release --product tocsin --static-swift-stdlib --scratch-path .build-bench) >"$LOGS/build.log" 2>&1 \
    || { tail -n 40 "$LOGS/build.log" >&2; echo "[all] error: the release build failed" >&2; exit 1; }
TOCSIN_BIN="$ROOT/.build-bench/release/tocsin"
export TOCSIN_BIN TOCSIN_BENCH_FIGURES="$FIGURES"

# run NAME COMMAND... — one benchmark; its report and progress to the log
# (and stderr), a failure stops the whole run.
run() {
    local name=$1; shift
    echo "[all] $name: $* (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
    if ! "$@" > >(tee "$LOGS/$name.txt" >&2) 2>"$LOGS/$name.progress"; then
        tail -n 30 "$LOGS/$name.progress" >&2
        echo "[all] error: $name failed (logs in $LOGS)" >&2
        exit 1
    fi
}

if [ "$quick" = 1 ]; then
    run ingest env TOCSIN_BENCH_BIG_EVENTS=1000000 "$ROOT/scripts/bench/ingest.sh" 200000
    run api "$ROOT/scripts/bench/api.sh" 10
    run evaluate env TOCSIN_BENCH_BIG_EVENTS=1000000 TOCSIN_BENCH_RULES=2000 TOCSIN_BENCH_ROUNDS=5 \
        "$ROOT/scripts/bench/evaluate.sh"
    run latency "$ROOT/scripts/bench/latency.sh" 10
else
    run ingest "$ROOT/scripts/bench/ingest.sh"
    run api "$ROOT/scripts/bench/api.sh"
    run evaluate "$ROOT/scripts/bench/evaluate.sh"
    run latency "$ROOT/scripts/bench/latency.sh"
fi

echo
echo "Tocsin benchmarks ($(nproc) CPUs; $([ "$quick" = 1 ] && echo "quick run, smaller data; " || true)load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after)"
python3 - "$FIGURES" <<'PYTHON'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
header = ["figure", "measured", "reference", "ratio", "target", "met"]
rows = [(r + ["-"] * 6)[:6] for r in rows]
widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
def line(cells):
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
print(line(header))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for r in rows:
    print(line(r))
met = sum(r[5] == "met" for r in rows)
missed = sum(r[5] == "missed" for r in rows)
print(f"\n{met} targets met, {missed} missed, {len(rows) - met - missed} figures without a target")
PYTHON
