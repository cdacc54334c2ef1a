# shellcheck shell=bash
# Shared by scripts/bench/*.sh: a throw-away PostgreSQL cluster, the release
# build in .build-bench, background Tocsin processes, and small helpers.
# Source it after `set -euo pipefail`; it defines functions and a few
# variables only, and the caller then runs bench_init.
#
# Everything a benchmark starts is recorded (by pid) and stopped on exit,
# also on Ctrl-C; the work directory, with the cluster, is removed.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_SCRIPTS="$BENCH_ROOT/scripts/bench"
# shellcheck source=scripts/lib/common.sh
source "$BENCH_ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/bench/figures.sh
source "$BENCH_ROOT/scripts/bench/figures.sh"

BENCH_DIR=""
BENCH_PIDS=()
BENCH_PG_PORT=""
BENCH_DB=tocsin
BENCH_KEY=""
TOCSIN=""
PGBIN=""

# bench_log MESSAGE... — a progress line on stderr.
bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bench_die() {
    bench_log "error: $*"
    exit 1
}

# bench_init NAME — work directory and cleanup traps.
bench_init() {
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
        bench_log "warning: the load average is $load on $(nproc) CPUs: other work will skew the figures"
    fi
    BENCH_DIR=$(mktemp -d "/tmp/tocsin-bench-$1.XXXXXX")
    chmod 755 "$BENCH_DIR"
    trap bench_cleanup EXIT
    trap 'bench_log "interrupted"; exit 130' INT
    trap 'bench_log "terminated"; exit 143' TERM
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        bench_stop_pid "$pid" quiet
    done
    if [ -n "$BENCH_DIR" ]; then
        if [ -n "${BENCH_KEEP:-}" ]; then
            bench_log "keeping $BENCH_DIR (BENCH_KEEP is set); the cluster is stopped"
        fi
        [ -d "$BENCH_DIR/pg/data" ] && pg_stop "$BENCH_DIR/pg"
        [ -z "${BENCH_KEEP:-}" ] && rm -rf "$BENCH_DIR"
    fi
    exit "$rc"
}

# bench_requirements — the packages and toolchain the benchmarks need.
bench_requirements() {
    ensure_packages "${BUILD_PACKAGES[@]}" curl python3
    ensure_swift
    PGBIN=$(pg_bindir)
}

# bench_build — the release binary in .build-bench (never .build, which is
# the developers'), linked statically with the Swift runtime as
# scripts/lib/cluster.sh and scripts/run.sh build it (the deployed kind, and
# faster under load than the dynamically linked one), or TOCSIN_BIN when it
# is set (scripts/bench/all.sh builds once for every benchmark). Retried when a source file changes during the build.
# The binary, the migrations and the default rules are then copied into the
# work directory, so that edits made to the checkout during the run do not
# reach the benchmark half-way (MIGRATIONS_DIR points at the copy).
bench_build() {
    local log="$BENCH_DIR/build.log" attempt built
    if [ -n "${TOCSIN_BIN:-}" ]; then
        [ -x "$TOCSIN_BIN" ] || bench_die "TOCSIN_BIN=$TOCSIN_BIN is not an executable"
        bench_log "using TOCSIN_BIN=$TOCSIN_BIN (no build)"
        bench_install_binary "$(dirname "$TOCSIN_BIN")"
        return 0
    fi
    for attempt in 1 2 3; do
        bench_log "building the release binary (.build-bench; the first build takes several minutes)"
        if (cd "$BENCH_ROOT" && swift build -c release --product tocsin --static-swift-stdlib --scratch-path .build-bench) >"$log" 2>&1; then
            built="$BENCH_ROOT/.build-bench/release"
            bench_install_binary "$built"
            return 0
        fi
        if grep -q "was modified during the build" "$log" && [ "$attempt" -lt 3 ]; then
            bench_log "a source file changed during the build; building again"
            sleep 5
            continue
        fi
        tail -n 40 "$log" >&2
        bench_die "the release build failed (log above)"
    done
}

# bench_install_binary DIR — copies DIR/tocsin (with its resource bundles),
# the migrations and the default rules into the work directory.
bench_install_binary() {
    mkdir -p "$BENCH_DIR/bin"
    cp "$1/tocsin" "$BENCH_DIR/bin/tocsin"
    # SwiftPM resource bundles are looked up beside the executable.
    find "$1/" -maxdepth 1 -name '*.resources' -exec cp -R {} "$BENCH_DIR/bin/" \;
    cp -R "$BENCH_ROOT/migrations" "$BENCH_DIR/migrations"
    cp "$BENCH_ROOT/rules/default.yaml" "$BENCH_DIR/default-rules.yaml"
    export MIGRATIONS_DIR="$BENCH_DIR/migrations"
    TOCSIN="$BENCH_DIR/bin/tocsin"
}

# bench_postgres [CONF_LINE...] — a throw-away cluster with the default
# durability settings (pg_init without "fast"), a database "tocsin", and
# DATABASE_URL pointing at it. Extra postgresql.conf lines may be given.
# bench_use_db NAME makes the helpers below use another database.
bench_postgres() {
    bench_log "starting a throw-away PostgreSQL cluster in $BENCH_DIR/pg"
    pg_init "$BENCH_DIR/pg"
    if [ $# -gt 0 ]; then
        printf '%s\n' "$@" | as_pg tee -a "$BENCH_DIR/pg/data/postgresql.conf" >/dev/null
    fi
    BENCH_PG_PORT=$(free_port)
    pg_start "$BENCH_DIR/pg" "$BENCH_PG_PORT"
    bench_use_db tocsin
}

# bench_use_db NAME — creates database NAME if needed; BENCH_DB and
# DATABASE_URL name it from now on.
bench_use_db() {
    BENCH_DB=$1
    if [ -z "$("$PGBIN/psql" -X -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'")" ]; then
        "$PGBIN/createdb" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres "$1"
    fi
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$BENCH_PG_PORT/$1"
}

# bench_psql ARGS... — psql on the benchmark database, stopping at the first error.
bench_psql() {
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d "$BENCH_DB" "$@"
}

# bench_sql SQL — runs SQL and prints the result unaligned, tuples only.
bench_sql() {
    bench_psql -tA -c "$1"
}

# bench_schema — migrations, the daily partitions of the retention window,
# and an admin key in BENCH_KEY.
bench_schema() {
    bench_log "migrating database $BENCH_DB"
    LOG_LEVEL=warning "$TOCSIN" migrate >>"$BENCH_DIR/migrate.log" 2>&1 \
        || { cat "$BENCH_DIR/migrate.log" >&2; bench_die "tocsin migrate failed"; }
    bench_sql "SELECT tocsin_ensure_partitions('metric_events', 'occurred_at', (now() AT TIME ZONE 'UTC')::date - 30, (now() AT TIME ZONE 'UTC')::date + 3);
               SELECT tocsin_ensure_partitions('rule_evaluations', 'started_at', (now() AT TIME ZONE 'UTC')::date - 30, (now() AT TIME ZONE 'UTC')::date + 3);" >/dev/null
    BENCH_KEY=$(LOG_LEVEL=warning "$TOCSIN" keys create --scope admin --name "bench-$$" 2>>"$BENCH_DIR/migrate.log" | tail -n 1)
    [ -n "$BENCH_KEY" ] || bench_die "tocsin keys create printed no key"
}

# bench_start NAME ENV=VALUE... -- ARGS... — starts `tocsin ARGS` in the
# background with the extra environment, output in $BENCH_DIR/NAME.log.
# Sets BENCH_LAST_PID.
bench_start() {
    local name=$1; shift
    local env=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do env+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    env LOG_LEVEL=warning LOG_FORMAT=text "${env[@]}" "$TOCSIN" "$@" >"$BENCH_DIR/$name.log" 2>&1 &
    BENCH_LAST_PID=$!
    BENCH_PIDS+=("$BENCH_LAST_PID")
}

# bench_stop_pid PID [quiet] — SIGTERM, then SIGKILL after 15 s.
bench_stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        [ "${2:-}" = quiet ] || bench_log "process $pid did not stop within 15 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    local kept=() p
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    BENCH_PIDS=("${kept[@]+"${kept[@]}"}")
}

# bench_wait_ready PORT PID NAME — waits until GET /readyz answers 200.
bench_wait_ready() {
    local port=$1 pid=$2 name=$3 i
    for i in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$BENCH_DIR/$name.log" >&2
            bench_die "$name exited during start-up (log above)"
        fi
        curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
        sleep 0.1
    done
    bench_die "$name did not become ready within 30 s"
}

# bench_cpu PID... — CPU seconds (user + system) the processes used so far.
bench_cpu() {
    local tck; tck=$(getconf CLK_TCK)
    local pid stat total=0
    for pid in "$@"; do
        # A process (a PostgreSQL backend) may exit while it is read.
        stat=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        [ -n "$stat" ] || continue
        total=$(( total + $(awk '{ print $12 + $13 }' <<<"$stat") ))
    done
    awk -v t="$total" -v h="$tck" 'BEGIN { printf "%.2f", t / h }'
}

# bench_pg_cpu — CPU seconds the cluster used so far: the postmaster, its
# live children, and the children that have exited (reaped by the postmaster).
bench_pg_cpu() {
    local tck pm children reaped live
    sleep 0.5  # a session that just ended is counted once the postmaster has reaped it
    tck=$(getconf CLK_TCK)
    pm=$(head -n 1 "$BENCH_DIR/pg/data/postmaster.pid")
    reaped=$(sed 's/.*) //' "/proc/$pm/stat" | awk '{ print $14 + $15 }')
    children=$(ps --ppid "$pm" -o pid= | tr '\n' ' ')
    # shellcheck disable=SC2086
    live=$(bench_cpu "$pm" $children)
    awk -v l="$live" -v r="$reaped" -v h="$tck" 'BEGIN { printf "%.2f", l + r / h }'
}

# bench_profile_start PID FILE / bench_profile_stop — a perf CPU profile of
# one process (call graphs), when TOCSIN_BENCH_PERF=1 and perf is installed.
BENCH_PERF_PID=""
bench_profile_start() {
    [ "${TOCSIN_BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null 2>&1 || return 0
    perf record -F 499 -g -p "$1" -o "$2" >/dev/null 2>"$2.log" &
    BENCH_PERF_PID=$!
    BENCH_PIDS+=("$BENCH_PERF_PID")
    sleep 0.5
}

# bench_profile_stop FILE REPORT — stops perf and writes the hottest
# functions (self time, demangled) to REPORT.
bench_profile_stop() {
    [ -n "$BENCH_PERF_PID" ] || return 0
    kill -INT "$BENCH_PERF_PID" 2>/dev/null || true
    wait "$BENCH_PERF_PID" 2>/dev/null || true
    local kept=() p
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$BENCH_PERF_PID" ] || kept+=("$p"); done
    BENCH_PIDS=("${kept[@]+"${kept[@]}"}")
    BENCH_PERF_PID=""
    perf report -i "$1" --stdio --no-children --sort dso,symbol --percent-limit 0.7 -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | swift demangle --simplified >"$2" || true
}

# bench_peak_rss PID — VmHWM of a live process, in MiB.
bench_peak_rss() {
    awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

# bench_events_sql N FROM_SQL TO_SQL [PARALLEL] — inserts N generated
# events (the product's mix) with occurred_at spread evenly over
# [FROM_SQL, TO_SQL), in PARALLEL sessions each filling a slice of the range.
bench_events_sql() {
    local n=$1 from=$2 to=$3 parallel=${4:-1} i pids=() rc=0
    for i in $(seq 0 $((parallel - 1))); do
        python3 "$BENCH_SCRIPTS/events.py" sql --count "$n" --from "$from" --to "$to" --slices "$parallel" --slice "$i" \
            | bench_psql >/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    [ "$rc" = 0 ] || bench_die "loading generated events failed"
}

# bench_ratio A B — A / B with 3 decimals, for the tables.
bench_ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.3f}' if b else 'n/a')" "$1" "$2"; }

# bench_check A B OP LIMIT — 1 when A / B OP LIMIT (OP: >= or <=), else 0;
# computed on the unrounded ratio.
bench_check() {
    python3 -c "import sys, operator; a, b, op, limit = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], float(sys.argv[4]); print(int(b != 0 and {'>=': operator.ge, '<=': operator.le}[op](a / b, limit)))" "$1" "$2" "$3" "$4"
}

# bench_row LABEL VALUE [NOTE] — one aligned line of the result table.
bench_row() { printf '  %-44s %14s  %s\n' "$1" "$2" "${3:-}"; }

# bench_load — the 1-minute load average, to judge how quiet the machine was
bench_load() {
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    echo "load average $load"
}

bench_verdict() { if [ "$1" = 1 ]; then echo "target met"; else echo "target missed"; fi; }
