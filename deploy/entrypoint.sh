#!/bin/sh
# Entrypoint of the privategptpp image (api and ui): refuses to start when the container's
# ports are published beyond loopback without an API key, then runs the given command.
#
# Inside the container the servers listen on 0.0.0.0, so only the address docker publishes
# the ports on tells whether other machines can reach them. docker-compose.yml passes that
# address as PGPT_BIND (the same value it uses in `ports:`). Unset counts as exposed: a plain
# `docker run -p 8000:8000` publishes on every interface of the host.
set -eu

MIN_KEY_LENGTH=16

is_loopback() {
    case "$1" in
        127.*.*.* | ::1 | "[::1]" | localhost) return 0 ;;
        *) return 1 ;;
    esac
}

refuse() {
    echo "privategptpp: refusing to start: $1" >&2
    echo "privategptpp: uploaded documents would be readable by anyone who reaches this port." >&2
    echo "privategptpp: either set PGPT_API_KEY to a random secret of at least $MIN_KEY_LENGTH" \
        "characters (for example: openssl rand -hex 32), or publish on loopback only" \
        "(PGPT_BIND=127.0.0.1) behind a TLS reverse proxy; see docs/deploy.md." >&2
    exit 78 # EX_CONFIG
}

bind="${PGPT_BIND:-}"
key="${PGPT_API_KEY:-}"

if ! is_loopback "$bind"; then
    if [ -z "$bind" ]; then
        where="PGPT_BIND is not set, so the publish address is unknown (docker run -p 8000:8000 publishes on all interfaces; with -p 127.0.0.1:8000:8000 also pass -e PGPT_BIND=127.0.0.1)"
    else
        where="the ports are published on PGPT_BIND=$bind, which is not loopback"
    fi
    if [ -z "$key" ]; then
        refuse "$where, and PGPT_API_KEY is not set."
    fi
    if [ "${#key}" -lt "$MIN_KEY_LENGTH" ]; then
        refuse "$where, and PGPT_API_KEY is shorter than $MIN_KEY_LENGTH characters."
    fi
fi

exec "$@"
