# shellcheck shell=bash
# Shared by scripts/ha-cluster.sh and scripts/failover.sh: the Patroni
# cluster's state through its members' REST APIs, and its processes.
# Source it after scripts/lib/common.sh and scripts/lib/cluster.sh, and
# after loading an environment file written by scripts/ha-cluster.sh
# (HA_DIR, HA_REST_URLS…); it defines functions only.

HA_LIB=${HA_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

# ha_state COMMAND [ARGS...] — scripts/lib/patroni_state.py COMMAND on the
# cluster's REST APIs (show, leader, sync, wait…, config).
ha_state() {
    local command=$1
    shift
    # shellcheck disable=SC2086
    python3 "$HA_LIB/patroni_state.py" "$command" $HA_REST_URLS "$@"
}

# ha_pid NAME — the current pid of etcd or a Patroni node (patroni-1…), as
# the HA supervisor last started it.
ha_pid() {
    cat "$HA_DIR/pids/$1.pid" 2>/dev/null
}

# ha_postmaster NAME — the pid of the node's postmaster (first line of its
# postmaster.pid), when it runs.
ha_postmaster() {
    local pid
    pid=$(head -n 1 "$HA_DIR/$1/data/postmaster.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# ha_node_port NAME — the node's PostgreSQL port.
ha_node_port() {
    local i=${1##*-}
    echo "$HA_PG_PORTS" | cut -d' ' -f"$i"
}

# ha_patronictl ARGS... — patronictl on this cluster.
ha_patronictl() {
    patronictl -c "$HA_PATRONICTL_CONFIG" "$@"
}
