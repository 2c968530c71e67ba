#!/bin/sh
# Start Flower behind basic auth; run it open only when ALLOW_OPEN_FLOWER=true (local development).
# Equivalent to: celery -A worker.celery_app flower --port=${FLOWER_PORT:-5555} --basic-auth=${FLOWER_BASIC_AUTH}
set -eu

port="${FLOWER_PORT:-5555}"

if [ -n "${FLOWER_BASIC_AUTH:-}" ]; then
    exec celery -A worker.celery_app flower --port="$port" --basic-auth="$FLOWER_BASIC_AUTH"
fi

case "${ALLOW_OPEN_FLOWER:-false}" in
    true | TRUE | True | 1 | yes)
        # Flower also reads FLOWER_* variables itself, and an empty FLOWER_BASIC_AUTH would turn
        # into an impossible login, so drop it; an open dashboard listens on loopback only.
        unset FLOWER_BASIC_AUTH
        echo "flower: FLOWER_BASIC_AUTH is not set; starting WITHOUT authentication on 127.0.0.1:$port (ALLOW_OPEN_FLOWER=true)" >&2
        exec celery -A worker.celery_app flower --port="$port" --address=127.0.0.1
        ;;
    *)
        echo "flower: refusing to start: FLOWER_BASIC_AUTH is not set (expected user:password[,user2:password2])." >&2
        echo "flower: set FLOWER_BASIC_AUTH, or ALLOW_OPEN_FLOWER=true for an unauthenticated local-only dashboard." >&2
        exit 64
        ;;
esac
