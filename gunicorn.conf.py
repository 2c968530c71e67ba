"""Gunicorn settings for the web process (Flask + Flask-SocketIO), read from the environment."""

import os
from pathlib import Path

from dotenv import load_dotenv

# Read .env like the app does, so PORT and ASYNC_MODE there pick the bind and worker class too.
load_dotenv(Path(__file__).with_name(".env"), override=False)

# Platforms like Heroku hand each web dyno its port in $PORT.
bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"

# Socket.IO sessions live in one process's memory and gunicorn's balancing is not sticky, so a
# client's polling requests could land on a worker that does not know its session; scale out with
# more single-worker processes behind nginx, sticky per session (deploy/nginx, make run-scaled);
# the Redis message queue joins them.
workers = 1

# Greenlet workers keep thousands of idle websockets open in one process. The plain gevent worker
# is the right one for Flask-SocketIO 5.x: without gevent-websocket installed, python-engineio
# serves websockets through simple-websocket on gunicorn's raw socket, while the old
# geventwebsocket.gunicorn.workers.GeventWebSocketWorker needs that unmaintained package.
# "threading" (tests only) maps to gthread, which spends one real thread per open websocket.
_WORKER_CLASSES = {"eventlet": "eventlet", "gevent": "gevent", "threading": "gthread"}
_async_mode = os.environ.get("ASYNC_MODE", "eventlet").strip().lower() or "eventlet"
if _async_mode not in _WORKER_CLASSES:
    raise RuntimeError(
        f"ASYNC_MODE={_async_mode!r} is not supported; use one of: {', '.join(_WORKER_CLASSES)}"
    )
worker_class = _WORKER_CLASSES[_async_mode]
threads = 100 if worker_class == "gthread" else 1

# gevent records, for every greenlet it spawns, the spawning greenlet and a copy of the spawning
# stack (debugging aids for gevent.util.format_run_info). Each websocket spawns three (engine.io's
# writer and pinger, simple-websocket's reader), ~5 KB per idle connection in B1, plus the CPU to
# capture them. The worker inherits this environment; set the variable to override.
if _async_mode == "gevent":
    os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")

# Each open websocket holds one greenlet connection, so this caps concurrent clients per process,
# and a process at the cap accepts nothing else, /health and the API included. gunicorn's default,
# 1000, is what held B1 to 1,000 sockets (docs/BENCHMARKS.md); 20000 leaves room above the
# 10,000-socket target for API calls. Override this or anything else via GUNICORN_CMD_ARGS.
worker_connections = 20000


def _raise_open_files_limit(wanted: int) -> None:
    """Lift the soft open-files limit towards the hard one: each socket is a file descriptor."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# Many hosts start processes with a soft limit of 1024 and a far higher hard one; the worker
# inherits what the master sets here. A few dozen descriptors beyond the sockets: logs, Redis, DB.
_raise_open_files_limit(worker_connections + 1024)

# Monkey-patching must happen in the worker before the app imports redis or database drivers,
# which preloading in the unpatched master would break.
preload_app = False

# Async workers heartbeat from their event loop, so a long-lived websocket does not trip this;
# it only catches a loop blocked by non-cooperative code.
timeout = 60

# Heroku sends SIGKILL 30 s after SIGTERM; finish in-flight requests and close sockets before it.
graceful_timeout = 25

# Idle keep-alive shorter than typical proxy idle timeouts avoids races on reused connections.
keepalive = 5

# Twelve-factor logging: everything to stdout/stderr, the platform collects it.
accesslog = "-"
# The request id (web/request_ids.py) ends each line, to find the app's lines of that request.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" req=%({x-request-id}o)s'
errorlog = "-"
loglevel = "info"

# Gunicorn 25's control socket defaults to one fixed path per user, so several web processes on
# one machine would unlink each other's; nothing here uses gunicornc.
control_socket_disable = True


def post_worker_init(worker: object) -> None:
    """Tune the garbage collector, start the message-queue listener, open the database pool."""
    # Here, not at import: the worker has patched for its async mode and loaded the app, whose
    # start-up objects are frozen. Full collections of the sockets' heap stalled every socket for
    # 150-350 ms at a time, eventlet's B3 p99 (docs/BENCHMARKS.md, issue 15).
    from core.db import warm_pool
    from core.settings import get_settings
    from web.extensions import socketio
    from web.gc_tuning import tune
    from web.socketio_manager import start_listener

    tune(worker.wsgi)  # type: ignore[attr-defined]
    # Subscribed from the start, not from the first socket: deep health counts every process.
    start_listener(socketio.server)
    # Connections for the calls admitted at once, before the first burst asks for them.
    warm_pool(get_settings().MAX_CONCURRENT_REQUESTS)
