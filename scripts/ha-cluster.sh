#!/usr/bin/env bash
# Tocsin's highly-available topology on this machine, without Docker: the
# services of docker/compose.yaml's `ha` profile, on 127.0.0.1 —
#   etcd (one member) as Patroni's DCS; three PostgreSQL nodes managed by
#   Patroni (patroni-1…3, each with its own PostgreSQL and REST API port,
#   data under the work directory, configuration derived from
#   docker/patroni.yml); then the Tocsin tier exactly as scripts/cluster.sh
#   runs it (that script does): `tocsin migrate` once, 2 × `tocsin serve`,
#   2 × `tocsin worker`, nginx in front, with
#     DATABASE_URL       postgresql://postgres@127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/tocsin
#                        ?target_session_attrs=read-write&connect_timeout=2
#     DATABASE_READ_URL  the same with target_session_attrs=prefer-standby
#                        (this binary ignores it; a later one reads from it).
# It waits until Patroni has a leader and a synchronous standby (and all
# three nodes run); Patroni's post_bootstrap creates the database.
# An etcd that exits is started again at once; a Patroni node that exits is
# started again once another node holds the leader key (or after 3 × ttl
# when none does), so that a killed primary fails over and then rejoins as a
# standby (pg_rewind) instead of taking its own lock back. The Tocsin tier
# restarts its processes as scripts/cluster.sh does. Trust authentication on
# 127.0.0.1 only: a throw-away cluster.
#
#   scripts/ha-cluster.sh [OPTIONS]                      in the foreground: prints the URLs and an admin key
#   scripts/ha-cluster.sh --background --env-file FILE [OPTIONS]
#                                                        returns once every service is ready; FILE (shell
#                                                        syntax) holds scripts/cluster.sh's variables (URL, KEY,
#                                                        DATABASE_URL, CLUSTER_DIR…) and HA_* (HA_DIR,
#                                                        HA_REST_URLS, HA_PATRONICTL_CONFIG…)
#   scripts/ha-cluster.sh --stop FILE                    stops a cluster started with --background
#   scripts/ha-cluster.sh --print-topology               the services, commands and variables (for check_topology.py)
#
# Options:
#   --env NAME=VALUE       a Tocsin variable for every tocsin process (repeatable; see scripts/cluster.sh)
#   --port N               nginx's port (default: a free one)
#   --dir DIR              work directory (default: a new /tmp/tocsin-ha.*, removed at stop)
#   --keep                 keep the work directory (logs, data) at stop
#   --nginx-snippet FILE   extra directives included in nginx's server block
#   --no-restart           leave exited processes (Patroni, etcd, Tocsin, nginx) stopped
#   --ttl S --loop-wait S --retry-timeout S
#                          Patroni's timing (default: docker/patroni.yml's, below)
#   --env-file FILE        also write the environment file in the foreground
#
# patronictl: `patronictl -c WORKDIR/patronictl.yaml list` (printed at start;
# HA_PATRONICTL_CONFIG in the environment file).
#
# Patroni's settings (bootstrap.dcs in docker/patroni.yml), short for tests:
#   ttl 10           the leader key's lifetime: a primary whose Patroni dies
#                    is replaced once its key expires, at most 10 s after its
#                    last renewal; a failover thus takes ≈ 10–12 s.
#   loop_wait 1      Patroni's loop: the leader renews its key every second
#                    and a standby sees an expired key within a second (cheap
#                    on loopback).
#   retry_timeout 4  etcd and PostgreSQL calls are retried for 4 s before the
#                    leader gives up and demotes itself: rides out a stall on
#                    a loaded 2-core machine.
#                    Patroni requires loop_wait + 2 × retry_timeout <= ttl
#                    (1 + 8 <= 10): a leader that cannot renew its key must
#                    have demoted itself before the key expires and another
#                    node is promoted, or there would be two primaries.
#                    Patroni's documentation of releases after Debian 12's
#                    3.0.2 gives minimums (ttl 20, retry_timeout 3) that newer
#                    releases may enforce; 3.0.2 takes these values as they
#                    are, and scripts/failover.sh prints what Patroni reports.
#   synchronous_mode true (synchronous_node_count 1): a commit is
#                    acknowledged once it is also on the synchronous standby,
#                    and only that standby may be promoted: a failover loses
#                    no acknowledged commit. (Not strict: a primary left
#                    without any standby goes on alone.)
#   maximum_lag_on_failover 1 MiB; use_pg_rewind with wal_log_hints (a failed
#                    primary rejoins as a standby); use_slots (replication
#                    slots keep the WAL each standby still needs).
#
# TOCSIN_BIN=/path/to/tocsin uses that binary; otherwise a release binary is
# built in .build-deploy (scripts/cluster.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF="$ROOT/scripts/ha-cluster.sh"
source "$ROOT/scripts/lib/common.sh"
source "$ROOT/scripts/lib/cluster.sh"
source "$ROOT/scripts/lib/ha.sh"

# ---- The topology ---------------------------------------------------------
# scripts/check_topology.py compares this with docker/compose.yaml's `ha`
# profile. The Tocsin tier is scripts/cluster.sh's, with the multi-host
# DATABASE_URL instead of its own PostgreSQL, and DATABASE_READ_URL.
PATRONI_NODES=3
HA_PASS_ENV=(DATABASE_READ_URL)
PATRONI_SOURCE="$ROOT/docker/patroni.yml"
HA_PACKAGES=(etcd-server patroni python3-etcd postgresql nginx curl python3)

print_topology() {
    local line
    echo "etcd command=etcd replicas=1"
    echo "patroni command=patroni replicas=$PATRONI_NODES"
    bash "$ROOT/scripts/cluster.sh" --print-topology | while read -r line; do
        case "$line" in
            "postgres "*) ;;
            *" env="*)
                local env=${line##* env=}
                # shellcheck disable=SC2086 # split the comma list on purpose
                echo "${line% env=*} env=$(printf '%s\n' ${env//,/ } "${HA_PASS_ENV[@]}" | sort -u | paste -sd, -)"
                ;;
            *) echo "$line" ;;
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
RESTART=1
STOP_FILE=""
TIMING=()
CLUSTER_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --print-topology) print_topology; exit 0 ;;
        --background) MODE=background ;;
        --supervise) MODE=supervise ;;
        --stop) STOP_FILE=${2:?--stop needs a FILE}; MODE=stop; shift ;;
        --env-file) ENV_FILE=${2:?--env-file needs a FILE}; shift ;;
        --env) CLUSTER_ARGS+=(--env "${2:?--env needs NAME=VALUE}"); shift ;;
        --port) CLUSTER_ARGS+=(--port "${2:?--port needs a number}"); shift ;;
        --nginx-snippet)
            snippet=${2:?--nginx-snippet needs a FILE}
            CLUSTER_ARGS+=(--nginx-snippet "$(cd "$(dirname "$snippet")" && pwd)/$(basename "$snippet")")
            shift ;;
        --dir) DIR=${2:?--dir needs a directory}; shift ;;
        --own-dir) OWN_DIR=1 ;;
        --keep) KEEP=1 ;;
        --no-restart) RESTART=0 ;;
        --ttl|--loop-wait|--retry-timeout)
            [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "error: $1 needs whole seconds" >&2; exit 2; }
            TIMING+=("$1" "$2"); shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -z "$ENV_FILE" ] || ENV_FILE=$(mkdir -p "$(dirname "$ENV_FILE")" && cd "$(dirname "$ENV_FILE")" && echo "$(pwd)/$(basename "$ENV_FILE")")

# ha_stop_nodes DIR — stops what the HA supervisor of DIR left behind: the
# Tocsin tier, the Patroni nodes (SIGTERM: Patroni stops its PostgreSQL),
# stray postmasters, etcd.
ha_stop_nodes() {
    local dir=$1 f pid pids=()
    if [ -e "$dir/tocsin.env" ]; then "$ROOT/scripts/cluster.sh" --stop "$dir/tocsin.env" || true; fi
    for f in "$dir"/pids/patroni-*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    for pid in "${pids[@]+"${pids[@]}"}"; do cluster_stop_pid "$pid" 30; done
    for f in "$dir"/patroni-*/data/postmaster.pid; do
        [ -e "$f" ] || continue
        pid=$(head -n 1 "$f")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            as_pg "$(pg_bindir)/pg_ctl" -D "$(dirname "$f")" -m immediate -w -t 20 stop >/dev/null 2>&1 || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ -e "$dir/pids/etcd.pid" ]; then cluster_stop_pid "$(cat "$dir/pids/etcd.pid")" 10; fi
}

# ---- --stop ---------------------------------------------------------------
if [ "$MODE" = stop ]; then
    [ -e "$STOP_FILE" ] || { echo "no cluster environment file $STOP_FILE: nothing to stop" >&2; exit 0; }
    # shellcheck disable=SC1090
    source "$STOP_FILE"
    if kill -0 "$HA_PID" 2>/dev/null; then
        kill -TERM "$HA_PID"
        for _ in $(seq 1 1200); do
            kill -0 "$HA_PID" 2>/dev/null || exit 0
            sleep 0.1
        done
        echo "warning: the HA supervisor $HA_PID did not stop within 120 s; killing it and stopping what is left" >&2
        kill -KILL "$HA_PID" 2>/dev/null || true
    fi
    ha_stop_nodes "$HA_DIR"
    rm -f "$STOP_FILE"
    exit 0
fi

# ---- Preparation (foreground and background) -------------------------------
if [ "$MODE" != supervise ]; then
    ensure_packages "${HA_PACKAGES[@]}"
    TOCSIN_BIN=$(cluster_tocsin_binary)
    export TOCSIN_BIN
    if [ -z "$DIR" ]; then
        DIR=$(mktemp -d /tmp/tocsin-ha.XXXXXX)
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
    args+=("${TIMING[@]+"${TIMING[@]}"}" "${CLUSTER_ARGS[@]+"${CLUSTER_ARGS[@]}"}")
    setsid nohup bash "$SELF" "${args[@]}" </dev/null >"$DIR/ha-cluster.log" 2>&1 &
    child=$!
    for _ in $(seq 1 3000); do
        if [ -s "$ENV_FILE" ]; then
            # shellcheck disable=SC1090
            source "$ENV_FILE"
            cluster_log "HA cluster ready: $URL (work directory $DIR; stop: scripts/ha-cluster.sh --stop $ENV_FILE)"
            exit 0
        fi
        if ! kill -0 "$child" 2>/dev/null; then
            tail -n 30 "$DIR/ha-cluster.log" >&2
            cluster_die "the HA cluster failed to start (log above: $DIR/ha-cluster.log)"
        fi
        sleep 0.1
    done
    kill -TERM "$child" 2>/dev/null || true
    cluster_die "the HA cluster was not ready within 300 s (see $DIR/ha-cluster.log)"
fi

# ---- Supervision (foreground, or the background child) ---------------------
declare -A PID=() STARTED=() EXITED=()
NODES=()
STOPPING=0
WROTE_ENV=0
READY=0
HA_DIR=$DIR

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    STOPPING=1
    cluster_log "stopping the HA cluster"
    ha_stop_nodes "$DIR"
    wait 2>/dev/null || true
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
PG_BIN=$(pg_bindir)

# Distinct free ports: etcd's client and peer ports, then per node
# PostgreSQL and REST.
PORTS=()
while [ ${#PORTS[@]} -lt $((2 + 2 * PATRONI_NODES)) ]; do
    p=$(free_port)
    if ! printf '%s\n' "${PORTS[@]+"${PORTS[@]}"}" | grep -qx "$p"; then PORTS+=("$p"); fi
done
ETCD_PORT=${PORTS[0]}
ETCD_PEER_PORT=${PORTS[1]}
PG_PORTS=()
REST_PORTS=()
REST_URLS=()
for i in $(seq 1 "$PATRONI_NODES"); do
    NODES+=("patroni-$i")
    PG_PORTS+=("${PORTS[$((2 * i))]}")
    REST_PORTS+=("${PORTS[$((2 * i + 1))]}")
    REST_URLS+=("http://127.0.0.1:${PORTS[$((2 * i + 1))]}")
done
HA_REST_URLS="${REST_URLS[*]}"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"

launch() {
    local name=$1
    case "$name" in
        etcd)
            etcd --name etcd-1 --data-dir "$DIR/etcd" \
                --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
                --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
                --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
                --initial-cluster "etcd-1=http://127.0.0.1:$ETCD_PEER_PORT" \
                --initial-cluster-state new --initial-cluster-token tocsin-ha \
                --logger zap --log-outputs stderr >>"$DIR/logs/etcd.log" 2>&1 &
            ;;
        patroni-*)
            # exec'd, not forked (setpriv rather than runuser): the pid is Patroni's.
            local user=()
            if [ "$(id -u)" = 0 ]; then user=(setpriv --reuid=postgres --regid=postgres --init-groups --); fi
            env -i PATH="/usr/bin:/bin:/usr/sbin:/sbin" HOME="$DIR/$name" LANG=C.UTF-8 \
                "${user[@]+"${user[@]}"}" patroni "$DIR/$name/patroni.yml" >>"$DIR/logs/$name.log" 2>&1 &
            ;;
    esac
    PID[$name]=$!
    STARTED[$name]=$SECONDS
    EXITED[$name]=""
    echo "${PID[$name]}" >"$DIR/pids/$name.pid"
}

# ---- etcd ---------------------------------------------------------------------
cluster_log "starting etcd on $ETCD_URL"
launch etcd
for i in $(seq 1 300); do
    if curl -fsS --max-time 1 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'; then break; fi
    kill -0 "${PID[etcd]}" 2>/dev/null || { tail -n 20 "$DIR/logs/etcd.log" >&2; cluster_die "etcd exited"; }
    [ "$i" = 300 ] && cluster_die "etcd was not healthy within 30 s (see $DIR/logs/etcd.log)"
    sleep 0.1
done

# ---- Patroni ----------------------------------------------------------------------
python3 "$ROOT/scripts/lib/patroni_config.py" ctl "$PATRONI_SOURCE" "$DIR/patronictl.yaml" --etcd "127.0.0.1:$ETCD_PORT"
for i in $(seq 1 "$PATRONI_NODES"); do
    node="patroni-$i"
    mkdir -p "$DIR/$node"
    python3 "$ROOT/scripts/lib/patroni_config.py" node "$PATRONI_SOURCE" "$DIR/$node/patroni.yml" \
        --name "$node" --dir "$DIR/$node" --pg-port "${PG_PORTS[$((i - 1))]}" --rest-port "${REST_PORTS[$((i - 1))]}" \
        --etcd "127.0.0.1:$ETCD_PORT" --bin-dir "$PG_BIN" "${TIMING[@]+"${TIMING[@]}"}" \
        || cluster_die "cannot write $DIR/$node/patroni.yml"
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$DIR/$node"; fi
    chmod 700 "$DIR/$node"
done
cluster_log "starting ${NODES[*]} (PostgreSQL on :${PG_PORTS[*]}, REST on :${REST_PORTS[*]})"
for node in "${NODES[@]}"; do launch "$node"; done
# One node bootstraps (initdb, post_bootstrap creates the database), the
# others clone it with pg_basebackup.
if ! ha_state wait --timeout 180 --members "$PATRONI_NODES" --sync >"$DIR/leader" 2>"$DIR/wait.err"; then
    cat "$DIR/wait.err" >&2
    for node in "${NODES[@]}"; do tail -n 15 "$DIR/logs/$node.log" >&2; done
    cluster_die "Patroni did not elect a leader with a synchronous standby within 180 s (logs: $DIR/logs)"
fi
cluster_log "Patroni: leader $(cat "$DIR/leader"), synchronous standby $(ha_state sync | paste -sd, -)"

hosts=$(for p in "${PG_PORTS[@]}"; do printf '127.0.0.1:%s\n' "$p"; done | paste -sd, -)
DATABASE_URL="postgresql://postgres@$hosts/tocsin?target_session_attrs=read-write&connect_timeout=2"
DATABASE_READ_URL="postgresql://postgres@$hosts/tocsin?target_session_attrs=prefer-standby&connect_timeout=2"
for i in $(seq 1 100); do
    "$PG_BIN/psql" -X -q -tA "$DATABASE_URL" -c "SELECT 1" >/dev/null 2>"$DIR/psql.err" && break
    [ "$i" = 100 ] && { cat "$DIR/psql.err" >&2; cluster_die "the database tocsin is not reachable read-write: $DATABASE_URL"; }
    sleep 0.2
done

# ---- The Tocsin tier: scripts/cluster.sh on the multi-host URL -------------------
cluster_log "starting the Tocsin tier (scripts/cluster.sh) on $DATABASE_URL"
tier_args=(--background --env-file "$DIR/tocsin.env" --dir "$DIR/tocsin" --env "DATABASE_READ_URL=$DATABASE_READ_URL")
[ "$RESTART" = 0 ] && tier_args+=(--no-restart)
DATABASE_URL=$DATABASE_URL "$ROOT/scripts/cluster.sh" "${tier_args[@]}" "${CLUSTER_ARGS[@]+"${CLUSTER_ARGS[@]}"}" \
    || cluster_die "the Tocsin tier did not start (see $DIR/tocsin/cluster.log)"
cluster_load "$DIR/tocsin.env"
TIER_PID=$CLUSTER_PID

SETTINGS=$(ha_state config)
setting() { echo "$SETTINGS" | sed -n "s/^$1=//p"; }

write_env() {
    local file=$1 tmp="$1.tmp.$$" name
    {
        cat "$DIR/tocsin.env"
        printf '%s=%q\n' DATABASE_URL "$DATABASE_URL" DATABASE_READ_URL "$DATABASE_READ_URL" \
            HA_PID "$$" HA_DIR "$DIR" HA_TIER_ENV "$DIR/tocsin.env" HA_ETCD_URL "$ETCD_URL" \
            HA_NODES "${NODES[*]}" HA_PG_PORTS "${PG_PORTS[*]}" HA_REST_PORTS "${REST_PORTS[*]}" \
            HA_REST_URLS "$HA_REST_URLS" HA_PATRONICTL_CONFIG "$DIR/patronictl.yaml" \
            HA_LOG_DIR "$DIR/logs" HA_TTL "$(setting ttl)" HA_LOOP_WAIT "$(setting loop_wait)" \
            HA_RETRY_TIMEOUT "$(setting retry_timeout)" HA_SYNCHRONOUS_MODE "$(setting synchronous_mode)"
        for name in etcd "${NODES[@]}"; do
            printf 'PID_%s=%q\n' "$(echo "$name" | tr 'a-z-' 'A-Z_')" "${PID[$name]}"
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
    echo "Tocsin HA cluster: $URL/monitoring"
    echo "  nginx      $URL → serve ×2, worker ×2"
    i=0
    for port in $CLUSTER_API_PORTS; do
        i=$((i + 1))
        echo "  api-$i      http://127.0.0.1:$port"
    done
    for i in $(seq 1 "$PATRONI_NODES"); do
        echo "  patroni-$i  PostgreSQL 127.0.0.1:${PG_PORTS[$((i - 1))]}, Patroni REST ${REST_URLS[$((i - 1))]}"
    done
    echo "  etcd       $ETCD_URL"
    echo "Admin key:  $KEY"
    echo "Database:   $DATABASE_URL"
    echo "Reads:      $DATABASE_READ_URL"
    echo "patronictl: patronictl -c $DIR/patronictl.yaml list"
    echo "Patroni:    ttl $(setting ttl), loop_wait $(setting loop_wait), retry_timeout $(setting retry_timeout), synchronous_mode $(setting synchronous_mode)"
    echo "Logs:       $DIR/logs (Patroni, PostgreSQL, etcd), $DIR/tocsin/logs (Tocsin, nginx)"
    echo "Ctrl-C stops everything."
    echo
    ha_state show | sed 's/^/  /'
else
    cluster_log "ready: $URL; patronictl -c $DIR/patronictl.yaml list"
fi

# ---- Supervision loop --------------------------------------------------------
# etcd restarts at once. A Patroni node restarts once another node holds the
# leader key (or after 3 × ttl without a leader): restarted at once, a killed
# primary would find its own key still valid and take it back, and no
# failover would happen.
TTL=$(setting ttl)
while true; do
    if ! kill -0 "$TIER_PID" 2>/dev/null; then
        cluster_log "the Tocsin tier's supervisor ($TIER_PID) exited; stopping"
        exit 1
    fi
    for name in etcd "${NODES[@]}"; do
        pid=${PID[$name]}
        leader=""
        [ "$pid" = 0 ] && continue
        kill -0 "$pid" 2>/dev/null && continue
        if [ -z "${EXITED[$name]}" ]; then
            status=0
            wait "$pid" 2>/dev/null || status=$?
            [ "$STOPPING" = 1 ] && break 2
            EXITED[$name]=$SECONDS
            echo "$(date +%s.%N) $name $pid $status" >>"$DIR/exits.log"
            cluster_log "$name (pid $pid) exited with status $status"
            if [ "$RESTART" = 0 ]; then PID[$name]=0; continue; fi
        fi
        if [ "$name" != etcd ]; then
            leader=$(ha_state leader 2>/dev/null || true)
            if [ -z "$leader" ] || [ "$leader" = "$name" ]; then
                [ $((SECONDS - EXITED[$name])) -lt $((3 * TTL)) ] && continue
                cluster_log "$name: no other leader after $((3 * TTL)) s; restarting it anyway"
            fi
        elif [ $((SECONDS - STARTED[$name])) -lt 2 ]; then
            sleep 1
        fi
        launch "$name"
        echo "$(date +%s.%N) $name ${PID[$name]} restarted" >>"$DIR/exits.log"
        cluster_log "$name restarted as pid ${PID[$name]}${leader:+ (leader: $leader)}"
        if [ "$WROTE_ENV" = 1 ]; then write_env "$ENV_FILE"; fi
    done
    sleep 0.25 &
    wait $! 2>/dev/null || true
done
