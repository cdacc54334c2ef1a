# syntax=docker/dockerfile:1
#
# The `ha` profile's PostgreSQL nodes and etcd (docker/compose.yaml), from
# Debian 12's packages: PostgreSQL 15 managed by Patroni (with python3-etcd
# for the etcd v3 DCS) and etcd-server, the same packages scripts/ha-cluster.sh
# installs. Build from the repository root:
#
#   docker build -f docker/patroni.Dockerfile -t tocsin-patroni .
#
# `patroni /etc/patroni.yml` runs a node (docker/patroni.yml; each service
# sets its name and addresses through PATRONI_* variables); `etcd …` runs
# the DCS.

ARG RUNTIME_IMAGE=debian:bookworm-slim
FROM ${RUNTIME_IMAGE}
# Patroni creates the cluster: no default 15/main cluster at install.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/patroni.conf \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        postgresql-15 postgresql-client-15 patroni python3-etcd etcd-server curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/patroni /var/lib/postgresql/etcd /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 700 /var/lib/postgresql/patroni /var/lib/postgresql/etcd

COPY docker/patroni.yml /etc/patroni.yml

# Patroni and PostgreSQL as `postgres`; etcd runs as the same user. The data
# directories exist here so that compose's named volumes start with this
# owner and mode.
USER postgres
WORKDIR /var/lib/postgresql
EXPOSE 5432 8008 2379 2380

# Only meaningful for a Patroni node; the etcd service sets its own.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8008/health"]

CMD ["patroni", "/etc/patroni.yml"]
