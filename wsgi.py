"""Entry point for gunicorn and the Flask CLI: green database drivers first, then the app."""

from __future__ import annotations

from core.settings import get_settings


def _green_psycopg() -> None:
    """Make psycopg2 yield to other greenlets when the server has monkey-patched sockets.

    gunicorn's eventlet and gevent workers patch the standard library before loading this
    module; psycopg2 is a C extension they cannot patch, so psycogreen hooks it in.
    """
    mode = get_settings().ASYNC_MODE
    if mode == "eventlet":
        import eventlet.patcher

        if eventlet.patcher.is_monkey_patched("socket"):
            from psycogreen.eventlet import patch_psycopg

            patch_psycopg()
    elif mode == "gevent":
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            from psycogreen.gevent import patch_psycopg

            patch_psycopg()


_green_psycopg()

from web import create_app  # noqa: E402

app = create_app()
