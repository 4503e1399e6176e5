#!/bin/sh
# What the official image's entrypoint does that our compose file relies on: on an
# empty data directory, create the cluster with POSTGRES_USER / POSTGRES_PASSWORD and
# the database POSTGRES_DB, accepting password logins from the network.
set -eu
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    pwfile="$(mktemp)"
    printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    # Set up on a private socket, so that healthchecks do not see this temporary server.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
    if [ "${POSTGRES_DB:-$user}" != postgres ]; then
        createdb -h /tmp --username="$user" "${POSTGRES_DB:-$user}"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres-entrypoint: initialised $PGDATA"
fi
exec "$@"
