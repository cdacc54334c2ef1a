# Shared by scripts/*.sh: package installation and throw-away or persistent
# local PostgreSQL clusters. Source it; it defines functions only.

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG... — apt-get installs the Debian packages that are missing.
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="/opt/swift/usr/bin:$PATH"
        else
            echo "error: Swift 6.2 or newer is required: install it from https://www.swift.org/install/linux/ and put swift on PATH" >&2
            exit 1
        fi
    fi
}

# ensure_python_tools — a virtualenv with schemathesis, jsonschema (with
# referencing) and PyYAML for scripts/check_contract.py, and standardwebhooks
# for the webhook signature tests. Prints its
# directory; reuses it while the versions match.
SCHEMATHESIS_VERSION=4.32.5   # OpenAPI 3.1 is supported natively from 4.0 on
JSONSCHEMA_VERSION=4.25.1
STANDARDWEBHOOKS_VERSION=1.1.0   # the specification's reference library, to verify signatures
ensure_python_tools() {
    local venv=${TOCSIN_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tocsin-tools/schemathesis-$SCHEMATHESIS_VERSION-jsonschema-$JSONSCHEMA_VERSION}
    if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ] \
        || ! "$venv/bin/python" -c "import jsonschema, referencing, yaml, standardwebhooks" 2>/dev/null; then
        echo "installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
        command -v python3 >/dev/null || ensure_packages python3
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv" 2>/dev/null || { ensure_packages python3-venv; python3 -m venv "$venv"; }
        "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
            "jsonschema==$JSONSCHEMA_VERSION" PyYAML "standardwebhooks==$STANDARDWEBHOOKS_VERSION" >&2
    fi
    echo "$venv"
}

pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$dir" ]; then
        echo "error: PostgreSQL server binaries not found under /usr/lib/postgresql" >&2
        exit 1
    fi
    echo "$dir"
}

# Runs a command as the OS user that owns clusters: postgres when we are root.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# free_port — prints a TCP port nothing listens on at 127.0.0.1.
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$(( (RANDOM % 20000) + 20000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "error: no free port found" >&2
    return 1
}

# pg_init DIR [fast] — creates a cluster in DIR/data (trust auth on
# 127.0.0.1 only). "fast" turns off durability: for throw-away test clusters.
pg_init() {
    local dir=$1 mode=${2:-}
    local bin; bin=$(pg_bindir)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = ''"
        echo "shared_buffers = 256MB"
        if [ "$mode" = fast ]; then
            # The test suite runs many servers and worker processes at once,
            # each with its pools: it peaks near 300 connections.
            echo "max_connections = 600"
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        else
            echo "max_connections = 300"
        fi
    } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
}

# pg_start DIR PORT — starts the cluster and waits until it accepts connections.
pg_start() {
    local dir=$1 port=$2
    local bin; bin=$(pg_bindir)
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null \
        || { tail -n 20 "$dir/server.log" >&2; return 1; }
}

pg_stop() {
    local dir=$1
    local bin; bin=$(pg_bindir)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

pg_running() {
    local dir=$1
    local bin; bin=$(pg_bindir)
    as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

BUILD_PACKAGES=(pkg-config libpq-dev libcurl4-openssl-dev libssl-dev postgresql)
