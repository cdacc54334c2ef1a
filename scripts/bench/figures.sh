# shellcheck shell=bash
# bench_figure — one figure of a benchmark for scripts/bench/all.sh's table.
# Sourced by every scripts/bench/*.sh. When TOCSIN_BENCH_FIGURES names a
# file, each call appends one tab-separated line to it:
#
#   bench_figure FIGURE MEASURED REFERENCE RATIO TARGET VERDICT
#
# FIGURE what was measured ("summary, 24 h over 10 M events, median");
# MEASURED with its unit ("8.4 ms"); REFERENCE what it is compared with in
# the same run ("psql COPY 108767/s"), or "-"; RATIO measured / reference,
# or "-"; TARGET the bar ("ratio >= 0.9"); VERDICT "met", "missed"
# or "-" (a figure without a bar). Without TOCSIN_BENCH_FIGURES it does
# nothing, so a benchmark run on its own prints only its own report.
bench_figure() {
    [ -n "${TOCSIN_BENCH_FIGURES:-}" ] || return 0
    local field line=""
    for field in "$@"; do
        line+="${field//$'\t'/ }"$'\t'
    done
    printf '%s\n' "${line%$'\t'}" >>"$TOCSIN_BENCH_FIGURES"
}

# bench_met 1|0 — "met" or "missed", for bench_figure's VERDICT.
bench_met() { if [ "$1" = 1 ]; then echo met; else echo missed; fi; }
