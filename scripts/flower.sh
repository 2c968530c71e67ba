#!/bin/sh
# Start Flower behind basic auth. An open Flower (no login) only outside production, when
# ALLOW_OPEN_FLOWER=true, and then on loopback only. Workers send task events only when asked
# (celeryconfig.py): --enable_events has Flower ask every worker it sees, so tasks are visible
# while it runs; the tasks it keeps in memory are bounded.
# Equivalent to: celery -A worker.celery_app flower --port=${FLOWER_PORT:-5555} --basic-auth=${FLOWER_BASIC_AUTH}
set -eu

port="${FLOWER_PORT:-5555}"
# Flower keeps this many tasks in memory, dropping the oldest (its own default is 100,000).
max_tasks="${FLOWER_MAX_TASKS:-10000}"
set -- --port="$port" --max_tasks="$max_tasks" --enable_events=true

if [ -n "${FLOWER_BASIC_AUTH:-}" ]; then
    exec celery -A worker.celery_app flower "$@" --basic-auth="$FLOWER_BASIC_AUTH"
fi

case "${ALLOW_OPEN_FLOWER:-false}" in
    true | TRUE | True | 1 | yes)
        if [ "${APP_ENV:-development}" = "production" ]; then
            echo "flower: refusing to start: APP_ENV=production needs FLOWER_BASIC_AUTH (ALLOW_OPEN_FLOWER is for development)." >&2
            exit 64
        fi
        # Flower also reads FLOWER_* variables itself, and an empty FLOWER_BASIC_AUTH would turn
        # into an impossible login, so drop it; an open dashboard listens on loopback only.
        unset FLOWER_BASIC_AUTH
        echo "flower: FLOWER_BASIC_AUTH is not set; starting WITHOUT authentication on 127.0.0.1:$port (ALLOW_OPEN_FLOWER=true)" >&2
        exec celery -A worker.celery_app flower "$@" --address=127.0.0.1
        ;;
    *)
        echo "flower: refusing to start: FLOWER_BASIC_AUTH is not set (expected user:password[,user2:password2])." >&2
        echo "flower: set FLOWER_BASIC_AUTH, or ALLOW_OPEN_FLOWER=true for an unauthenticated local-only dashboard." >&2
        exit 64
        ;;
esac
