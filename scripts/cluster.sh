#!/usr/bin/env bash
# Tocsin's production topology on this machine, without Docker: the same
# services as docker/compose.yaml, on 127.0.0.1 —
#   PostgreSQL (a throw-away cluster in the work directory, or DATABASE_URL
#   when it is set), `tocsin migrate` once, 2 × `tocsin serve` and
#   2 × `tocsin worker` on free ports, and nginx in front of the API
#   instances with a configuration derived from docker/nginx.conf.
# A tocsin process or nginx that exits is started again (compose's
# `restart: unless-stopped`). Everything stops on Ctrl-C, SIGTERM or exit.
#
#   scripts/cluster.sh [OPTIONS]                         in the foreground: prints the URL and an admin key
#   scripts/cluster.sh --background --env-file FILE [OPTIONS]
#                                                        returns once every service is ready; FILE (shell
#                                                        syntax) holds URL, KEY, DATABASE_URL, CLUSTER_PID…
#   scripts/cluster.sh --stop FILE                       stops a cluster started with --background
#   scripts/cluster.sh --print-topology                  the services, commands and variables (for check_topology.py)
#
# Options:
#   --env NAME=VALUE       a Tocsin variable for every tocsin process (repeatable), e.g.
#                          --env ALERT_CHECK_INTERVAL=2 --env SLACK_WEBHOOK_URL=http://127.0.0.1:9000/slack
#                          (the variables of the caller's environment are passed on too; --env wins;
#                          DATABASE_READ_URL, which a later Tocsin reads, is passed on the same way)
#   --port N               nginx's port (default: a free one)
#   --dir DIR              work directory (default: a new /tmp/tocsin-cluster.*, removed at stop)
#   --keep                 keep the work directory (logs, database) at stop
#   --nginx-snippet FILE   extra directives included in nginx's server block
#   --no-restart           leave exited processes stopped
#   --env-file FILE        also write the environment file in the foreground
#
# TOCSIN_BIN=/path/to/tocsin uses that binary (e.g. .build/debug/tocsin);
# otherwise a release binary is built in .build-deploy.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF="$ROOT/scripts/cluster.sh"
source "$ROOT/scripts/lib/common.sh"
source "$ROOT/scripts/lib/cluster.sh"

# ---- The topology ---------------------------------------------------------
# scripts/check_topology.py compares this with docker/compose.yaml: keep
# them in step. NAME:COMMAND:REPLICAS in start order; COMMAND is a tocsin
# subcommand, or postgres / nginx.
TOPOLOGY=(
    "postgres:postgres:1"
    "migrate:migrate:1"
    "api:serve:2"
    "worker:worker:2"
    "nginx:nginx:1"
)
# The Tocsin variables of every tocsin process (compose: x-tocsin-env)…
TOCSIN_ENV=(
    DATABASE_URL LOG_LEVEL LOG_FORMAT DB_POOL_SIZE MAX_BODY_SIZE METRICS_RETENTION_DAYS
    ALERT_RULES_FILE ALERT_CHECK_INTERVAL WORKER_CONCURRENCY SLACK_WEBHOOK_URL NOTIFY_CONFIG PUBLIC_URL
    NOTIFY_MAX_ATTEMPTS NOTIFY_RETRY_BASE_SECONDS NOTIFY_TIMEOUT_SECONDS NOTIFY_LEASE_SECONDS NOTIFY_CONCURRENCY SESSION_TTL
)
# …and those of `serve` only.
SERVE_ENV=(HOST PORT)
# Variables passed on to every tocsin process when set (--env, or the
# caller's environment) but not part of the topology that check_topology.py
# compares with compose's default services. scripts/ha-cluster.sh sets
# DATABASE_READ_URL (the standbys); scripts/bench/api.sh sets RATE_LIMITS
# (unlimited, since it measures throughput with one key).
PASS_ENV=(DATABASE_READ_URL RATE_LIMITS)

topology_field() { # NAME FIELD(2=command, 3=replicas)
    local entry
    for entry in "${TOPOLOGY[@]}"; do
        [ "${entry%%:*}" = "$1" ] && { echo "$entry" | cut -d: -f"$2"; return 0; }
    done
    return 1
}

print_topology() {
    local entry name command replicas names
    for entry in "${TOPOLOGY[@]}"; do
        IFS=: read -r name command replicas <<<"$entry"
        case "$command" in
            postgres) echo "$name command=postgres replicas=$replicas" ;;
            nginx) echo "$name command=nginx replicas=$replicas upstream=$(topology_field api 2)" ;;
            *)
                names=("${TOCSIN_ENV[@]}")
                [ "$command" = serve ] && names+=("${SERVE_ENV[@]}")
                echo "$name command=$command replicas=$replicas env=$(printf '%s\n' "${names[@]}" | sort | paste -sd, -)"
                ;;
        esac
    done
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

# ---- Arguments ------------------------------------------------------------
MODE=foreground
ENV_FILE=""
DIR=""
OWN_DIR=0
KEEP=0
NGINX_PORT=""
SNIPPET=""
RESTART=1
EXTRA_ENV=()
STOP_FILE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --print-topology) print_topology; exit 0 ;;
        --background) MODE=background ;;
        --supervise) MODE=supervise ;;
        --stop) STOP_FILE=${2:?--stop needs a FILE}; MODE=stop; shift ;;
        --env-file) ENV_FILE=${2:?--env-file needs a FILE}; shift ;;
        --env) EXTRA_ENV+=("${2:?--env needs NAME=VALUE}"); shift ;;
        --port) NGINX_PORT=${2:?--port needs a number}; shift ;;
        --dir) DIR=${2:?--dir needs a directory}; shift ;;
        --own-dir) OWN_DIR=1 ;;
        --keep) KEEP=1 ;;
        --nginx-snippet) SNIPPET=${2:?--nginx-snippet needs a FILE}; shift ;;
        --no-restart) RESTART=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

for kv in "${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}"; do
    name=${kv%%=*}
    [ "$name" != "$kv" ] || { echo "error: --env takes NAME=VALUE, got '$kv'" >&2; exit 2; }
    if ! printf '%s\n' "${TOCSIN_ENV[@]}" "${PASS_ENV[@]}" | grep -qx "$name"; then
        echo "error: --env $name: not one of the cluster's variables (${TOCSIN_ENV[*]} ${PASS_ENV[*]});" \
             "add it to TOCSIN_ENV here and to x-tocsin-env in docker/compose.yaml" >&2
        exit 2
    fi
done
[ -z "$SNIPPET" ] || SNIPPET=$(cd "$(dirname "$SNIPPET")" && echo "$(pwd)/$(basename "$SNIPPET")")
[ -z "$ENV_FILE" ] || ENV_FILE=$(mkdir -p "$(dirname "$ENV_FILE")" && cd "$(dirname "$ENV_FILE")" && echo "$(pwd)/$(basename "$ENV_FILE")")

# ---- --stop ---------------------------------------------------------------
if [ "$MODE" = stop ]; then
    [ -e "$STOP_FILE" ] || { echo "no cluster environment file $STOP_FILE: nothing to stop" >&2; exit 0; }
    # shellcheck disable=SC1090
    source "$STOP_FILE"
    if kill -0 "$CLUSTER_PID" 2>/dev/null; then
        kill -TERM "$CLUSTER_PID"
        for _ in $(seq 1 600); do
            kill -0 "$CLUSTER_PID" 2>/dev/null || exit 0
            sleep 0.1
        done
        echo "warning: the cluster supervisor $CLUSTER_PID did not stop within 60 s; killing what is left" >&2
        kill -KILL "$CLUSTER_PID" 2>/dev/null || true
    fi
    # The supervisor is gone (or was killed): stop what it left behind.
    for f in "$CLUSTER_DIR"/pids/*.pid; do
        if [ -e "$f" ]; then cluster_stop_pid "$(cat "$f")" 15; fi
    done
    if [ -n "${CLUSTER_PG_DIR:-}" ] && [ -d "$CLUSTER_PG_DIR/data" ]; then pg_stop "$CLUSTER_PG_DIR"; fi
    rm -f "$STOP_FILE"
    exit 0
fi

# ---- Preparation (foreground and background) -------------------------------
if [ "$MODE" != supervise ]; then
    ensure_packages nginx postgresql curl python3
    TOCSIN_BIN=$(cluster_tocsin_binary)
    export TOCSIN_BIN
    if [ -z "$DIR" ]; then
        DIR=$(mktemp -d /tmp/tocsin-cluster.XXXXXX)
        OWN_DIR=1
    fi
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    chmod 755 "$DIR"
fi

if [ "$MODE" = background ]; then
    [ -n "$ENV_FILE" ] || { echo "error: --background needs --env-file FILE" >&2; exit 2; }
    rm -f "$ENV_FILE"
    args=(--supervise --dir "$DIR" --env-file "$ENV_FILE")
    [ "$OWN_DIR" = 1 ] && args+=(--own-dir)
    [ "$KEEP" = 1 ] && args+=(--keep)
    [ "$RESTART" = 0 ] && args+=(--no-restart)
    [ -n "$NGINX_PORT" ] && args+=(--port "$NGINX_PORT")
    [ -n "$SNIPPET" ] && args+=(--nginx-snippet "$SNIPPET")
    for kv in "${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}"; do args+=(--env "$kv"); done
    setsid nohup bash "$SELF" "${args[@]}" </dev/null >"$DIR/cluster.log" 2>&1 &
    child=$!
    for _ in $(seq 1 1800); do
        if [ -s "$ENV_FILE" ]; then
            # shellcheck disable=SC1090
            source "$ENV_FILE"
            cluster_log "cluster ready: $URL (work directory $DIR; stop: scripts/cluster.sh --stop $ENV_FILE)"
            exit 0
        fi
        if ! kill -0 "$child" 2>/dev/null; then
            tail -n 30 "$DIR/cluster.log" >&2
            cluster_die "the cluster failed to start (log above: $DIR/cluster.log)"
        fi
        sleep 0.1
    done
    kill -TERM "$child" 2>/dev/null || true
    cluster_die "the cluster was not ready within 180 s (see $DIR/cluster.log)"
fi

# ---- Supervision (foreground, or the background child) ---------------------
declare -A PID=() CMD=() PORTOF=() STARTED=()
ORDER=()
PG_DIR=""
PG_PORT=""
STOPPING=0
WROTE_ENV=0
READY=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    STOPPING=1
    cluster_log "stopping the cluster"
    local name pids=()
    # nginx first (no new requests), then the tocsin processes together.
    if [ -n "${PID[nginx]:-}" ]; then cluster_stop_pid "${PID[nginx]}" 10; fi
    for name in "${ORDER[@]+"${ORDER[@]}"}"; do
        [ "$name" = nginx ] && continue
        kill -TERM "${PID[$name]}" 2>/dev/null && pids+=("${PID[$name]}")
    done
    for name in "${pids[@]+"${pids[@]}"}"; do cluster_stop_pid "$name" 15; done
    wait 2>/dev/null || true
    if [ -n "$PG_DIR" ]; then pg_stop "$PG_DIR"; fi
    if [ "$WROTE_ENV" = 1 ] && [ -n "$ENV_FILE" ]; then rm -f "$ENV_FILE"; fi
    if [ "$OWN_DIR" = 1 ] && [ "$KEEP" = 0 ] && [ "$READY" = 1 ]; then
        rm -rf "$DIR"
    else
        cluster_log "work directory kept: $DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

mkdir -p "$DIR/logs" "$DIR/pids"
: >"$DIR/exits.log"
cluster_install_tocsin "$TOCSIN_BIN" "$DIR"
TOCSIN="$DIR/bin/tocsin"
[ -n "$NGINX_PORT" ] || NGINX_PORT=$(free_port)

# The variables' values: defaults, then the caller's environment, then --env.
declare -A VALUE=(
    [LOG_LEVEL]=info
    [LOG_FORMAT]=text
    [MAX_BODY_SIZE]=10485760
    [ALERT_RULES_FILE]="$DIR/rules/default.yaml"
    [PUBLIC_URL]="http://127.0.0.1:$NGINX_PORT"
)
for name in "${TOCSIN_ENV[@]}" "${PASS_ENV[@]}"; do
    if [ -n "${!name:-}" ]; then VALUE[$name]=${!name}; fi
done
for kv in "${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}"; do VALUE[${kv%%=*}]=${kv#*=}; done

if [ -z "${VALUE[DATABASE_URL]:-}" ]; then
    PG_DIR="$DIR/pg"
    cluster_log "starting PostgreSQL in $PG_DIR"
    pg_init "$PG_DIR"
    PG_PORT=$(free_port)
    pg_start "$PG_DIR" "$PG_PORT"
    "$(pg_bindir)/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres tocsin
    VALUE[DATABASE_URL]="postgresql://postgres@127.0.0.1:$PG_PORT/tocsin"
fi
export DATABASE_URL=${VALUE[DATABASE_URL]}

# tocsin_env COMMAND — the environment of a tocsin process: exactly the
# declared variables (like a container's), plus PATH and HOME.
tocsin_env() {
    local command=$1 name
    ENVARGS=("PATH=$PATH" "HOME=${HOME:-/tmp}")
    for name in "${TOCSIN_ENV[@]}" "${PASS_ENV[@]}"; do
        if [ -n "${VALUE[$name]:-}" ]; then ENVARGS+=("$name=${VALUE[$name]}"); fi
    done
}

launch() {
    local name=$1
    if [ "$name" = nginx ]; then
        nginx -e "$DIR/logs/nginx-error.log" -c "$DIR/nginx.conf" >>"$DIR/logs/nginx.log" 2>&1 &
    else
        tocsin_env "${CMD[$name]}"
        if [ "${CMD[$name]}" = serve ]; then ENVARGS+=("HOST=127.0.0.1" "PORT=${PORTOF[$name]}"); fi
        env -i "${ENVARGS[@]}" "$TOCSIN" "${CMD[$name]}" >>"$DIR/logs/$name.log" 2>&1 &
    fi
    PID[$name]=$!
    STARTED[$name]=$SECONDS
    echo "${PID[$name]}" >"$DIR/pids/$name.pid"
}

cluster_log "migrating"
tocsin_env migrate
env -i "${ENVARGS[@]}" "$TOCSIN" migrate --apply-config >>"$DIR/logs/migrate.log" 2>&1 \
    || { tail -n 20 "$DIR/logs/migrate.log" >&2; cluster_die "tocsin migrate failed"; }
KEY=$(env -i "${ENVARGS[@]}" LOG_LEVEL=warning "$TOCSIN" keys create --scope admin --name "cluster-$(date +%Y%m%d%H%M%S)-$$" \
      2>>"$DIR/logs/migrate.log" | tail -n 1)
[ -n "$KEY" ] || cluster_die "tocsin keys create printed no key (see $DIR/logs/migrate.log)"

API_PORTS=()
for i in $(seq 1 "$(topology_field api 3)"); do
    name="api-$i"
    CMD[$name]=serve
    PORTOF[$name]=$(free_port)
    API_PORTS+=("${PORTOF[$name]}")
    ORDER+=("$name")
done
for i in $(seq 1 "$(topology_field worker 3)"); do
    CMD["worker-$i"]=worker
    ORDER+=("worker-$i")
done
cluster_log "starting ${ORDER[*]}"
for name in "${ORDER[@]}"; do launch "$name"; done
for name in "${ORDER[@]}"; do
    [ "${CMD[$name]}" = serve ] || continue
    cluster_wait_http "http://127.0.0.1:${PORTOF[$name]}/readyz" 60 "${PID[$name]}" \
        || { tail -n 20 "$DIR/logs/$name.log" >&2; cluster_die "$name did not become ready"; }
done

cluster_nginx_config "$ROOT/docker/nginx.conf" "$DIR/nginx.conf" "$DIR" "$NGINX_PORT" "$SNIPPET" "${API_PORTS[@]}"
nginx -t -e "$DIR/logs/nginx-error.log" -c "$DIR/nginx.conf" >"$DIR/logs/nginx-test.log" 2>&1 \
    || { cat "$DIR/logs/nginx-test.log" >&2; cluster_die "the generated nginx configuration is invalid: $DIR/nginx.conf"; }
ORDER+=(nginx)
launch nginx
URL="http://127.0.0.1:$NGINX_PORT"
cluster_wait_http "$URL/nginx-health" 30 "${PID[nginx]}" \
    || { cat "$DIR/logs/nginx-error.log" >&2; cluster_die "nginx did not start"; }
cluster_wait_http "$URL/readyz" 30 || cluster_die "the API is not ready through nginx"

# The workers are ready once both have registered.
workers=$(topology_field worker 3)
worker_pids=$(for name in "${ORDER[@]}"; do if [ "${CMD[$name]:-}" = worker ]; then echo "${PID[$name]}"; fi; done | paste -sd, -)
for i in $(seq 1 600); do
    n=$(cluster_sql "SELECT count(*) FROM workers WHERE stopped_at IS NULL AND pid IN ($worker_pids)" 2>/dev/null || echo 0)
    if [ "$n" -ge "$workers" ]; then break; fi
    for name in "${ORDER[@]}"; do
        if [ "${CMD[$name]:-}" = worker ] && ! kill -0 "${PID[$name]}" 2>/dev/null; then
            tail -n 20 "$DIR/logs/$name.log" >&2
            cluster_die "$name exited during start-up"
        fi
    done
    if [ "$i" = 600 ]; then cluster_die "the workers did not register within 60 s"; fi
    sleep 0.1
done

write_env() {
    local file=$1 tmp="$1.tmp.$$" name
    {
        printf '%s=%q\n' URL "$URL" KEY "$KEY" DATABASE_URL "${VALUE[DATABASE_URL]}" \
            CLUSTER_PID "$$" CLUSTER_DIR "$DIR" CLUSTER_URL "$URL" CLUSTER_KEY "$KEY" \
            CLUSTER_NGINX_PORT "$NGINX_PORT" CLUSTER_API_PORTS "${API_PORTS[*]}" \
            CLUSTER_PG_DIR "$PG_DIR" CLUSTER_PG_PORT "$PG_PORT" CLUSTER_TOCSIN "$TOCSIN" \
            CLUSTER_LOG_DIR "$DIR/logs" CLUSTER_PROCESSES "${ORDER[*]}"
        for name in "${ORDER[@]}"; do
            printf 'PID_%s=%q\n' "$(echo "$name" | tr 'a-z-' 'A-Z_')" "${PID[$name]}"
        done
        for name in "${TOCSIN_ENV[@]}" "${PASS_ENV[@]}"; do
            if [ -n "${VALUE[$name]:-}" ]; then printf 'TOCSIN_ENV_%s=%q\n' "$name" "${VALUE[$name]}"; fi
        done
    } >"$tmp"
    mv "$tmp" "$file"
}

READY=1
if [ -n "$ENV_FILE" ]; then
    write_env "$ENV_FILE"
    WROTE_ENV=1
fi

if [ "$MODE" = foreground ]; then
    echo
    echo "Tocsin cluster: $URL/monitoring"
    echo "  nginx :$NGINX_PORT → serve ×${#API_PORTS[@]} (:${API_PORTS[*]}), worker ×$workers"
    echo "Admin key:      $KEY"
    echo "Database:       ${VALUE[DATABASE_URL]}"
    echo "Logs:           $DIR/logs"
    echo "Ctrl-C stops everything."
    echo
else
    cluster_log "ready: $URL"
fi

# ---- Supervision loop: restart what exits ----------------------------------
while true; do
    for name in "${ORDER[@]}"; do
        pid=${PID[$name]}
        [ "$pid" = 0 ] && continue
        kill -0 "$pid" 2>/dev/null && continue
        status=0
        wait "$pid" 2>/dev/null || status=$?
        [ "$STOPPING" = 1 ] && break 2
        echo "$(date +%s.%N) $name $pid $status" >>"$DIR/exits.log"
        if [ "$RESTART" = 0 ]; then
            cluster_log "$name (pid $pid) exited with status $status; not restarting (--no-restart)"
            PID[$name]=0
            continue
        fi
        # Back off when it died right after starting (e.g. the database is down).
        if [ $((SECONDS - STARTED[$name])) -lt 2 ]; then sleep 1; fi
        launch "$name"
        cluster_log "$name (pid $pid) exited with status $status; restarted as pid ${PID[$name]}"
    done
    sleep 0.25 &
    wait $! 2>/dev/null || true
done
