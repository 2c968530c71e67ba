"""`/health?deep=1`: every moving part proven by a round trip, plus unsafe-setting warnings."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import socketio as socketio_pkg
from sqlalchemy import text

from core import probes
from core.db import get_engine
from core.rooms import SOCKETIO_CHANNEL
from core.safety import review
from core.settings import Settings, get_settings
from web.celery_client import celery_client
from web.extensions import socketio
from web.socketio_manager import PROBE_ROOM_PREFIX, start_listener

CANARY_TASK = "health.canary"
QUEUES = ("realtime", "email", "messengers", "maintenance")
LISTENER_TIMEOUT = 2.0


def _timed(check: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """Run one check: ok with its duration and details, or fail with the error."""
    began = time.monotonic()
    try:
        details = check() or {}
        status = details.pop("status", "ok")
    except Exception as exc:
        details, status = {"error": f"{type(exc).__name__}: {exc}"[:300]}, "fail"
    return {"status": status, "ms": round((time.monotonic() - began) * 1000, 1), **details}


def _database() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def _redis() -> dict[str, Any]:
    client = probes.client()
    client.ping()
    # Every web process's listener subscribes to this channel: the count is the web tier's size.
    listeners = dict(client.pubsub_numsub(SOCKETIO_CHANNEL)).get(SOCKETIO_CHANNEL.encode(), 0)
    return {"socketio_listeners": int(listeners)}


def _message_queue() -> dict[str, Any]:
    """Publish a probe on the Socket.IO channel and wait for this process's listener to read it.

    Published as a worker publishes (another host id, straight to Redis): the manager's own
    emit() hands a message to this process at once and its listener skips it when it comes
    back, so a probe sent that way proved nothing about the subscription.
    """
    manager = start_listener(socketio.server)
    room = f"{PROBE_ROOM_PREFIX}{uuid.uuid4().hex}"
    heard = manager.probes[room] = threading.Event()
    deadline = time.monotonic() + LISTENER_TIMEOUT
    try:
        # Again every 0.2 s: a listener started just now subscribes a moment later, and a
        # message published before that reaches nobody.
        while not heard.is_set():
            if time.monotonic() >= deadline:
                return {"status": "fail", "error": f"listener silent for {LISTENER_TIMEOUT:g} s"}
            _probe_publisher().emit("probe", {}, namespace="/", room=room)
            heard.wait(min(0.2, max(0.0, deadline - time.monotonic())))
    finally:
        manager.probes.pop(room, None)
    return {}


@lru_cache(maxsize=1)
def _probe_publisher() -> socketio_pkg.RedisManager:
    """A write-only manager, like a worker's, whose messages this process's listener reads."""
    return socketio_pkg.RedisManager(
        get_settings().redis_url, channel=SOCKETIO_CHANNEL, write_only=True
    )


def _send_canaries(timeout: float) -> dict[str, str]:
    """One canary task per queue, expiring when the check gives up; returns token per queue."""
    tokens = {}
    for queue in QUEUES:
        token = uuid.uuid4().hex
        celery_client().send_task(
            CANARY_TASK, args=[token, queue], queue=queue, expires=timeout, retry=False
        )
        tokens[queue] = token
    return tokens


def _await_canaries(tokens: dict[str, str], sent_at: float, timeout: float) -> dict[str, Any]:
    """Each queue's answer: which worker ran the canary and how long the round trip took."""
    results: dict[str, Any] = {}
    waiting = dict(tokens)
    while waiting and time.monotonic() - sent_at < timeout:
        for queue, token in list(waiting.items()):
            answer = probes.read_canary(token)
            if answer:
                ms = round((time.monotonic() - sent_at) * 1000, 1)
                results[queue] = {"status": "ok", "ms": ms, "worker": answer.get("worker")}
                del waiting[queue]
        time.sleep(0.02)
    for queue in waiting:
        results[queue] = {"status": "fail", "error": f"no worker answered in {timeout:g} s"}
    return results


def _beat(settings: Settings) -> dict[str, Any]:
    """How long ago beat last sent a scheduled task; stale after three sweep intervals."""
    if not settings.ENABLE_BACKGROUND_TASKS:
        return {"status": "disabled", "detail": "ENABLE_BACKGROUND_TASKS=false"}
    last = probes.last_beat_tick()
    if last is None:
        return {"status": "fail", "error": "beat has never ticked (is it running?)"}
    age = time.time() - last
    limit = max(3 * settings.SWEEP_INTERVAL_SECONDS, 60.0)
    status = "ok" if age <= limit else "fail"
    return {"status": status, "last_tick_seconds_ago": round(age, 1), "stale_after": limit}


def _messenger(channel: str, token: str | None) -> dict[str, Any]:
    """A messenger's token as its last sends found it: a refused token keeps deliveries pending."""
    if not token:
        return {"status": "disabled", "detail": "no token: messages go to the local outbox"}
    failure = probes.provider_failure(channel)
    if failure is None:
        return {"status": "ok"}
    return {"status": "fail", "error": f"the token was refused: {failure['error']}"}


def deep_report(settings: Settings) -> tuple[dict[str, Any], bool]:
    """Every check's result and the unsafe settings; True when every check passed."""
    timeout = settings.HEALTH_CANARY_TIMEOUT_SECONDS
    checks: dict[str, Any] = {}
    # Canaries first: workers run them while this process checks everything else.
    sent_at = time.monotonic()
    canaries = _timed(lambda: {"tokens": _send_canaries(timeout)})
    checks["database"] = _timed(_database)
    # The listener first: once it has read the probe, the Redis check counts its subscription.
    checks["message_queue"] = _timed(_message_queue)
    checks["redis"] = _timed(_redis)
    checks["beat"] = _timed(lambda: _beat(settings))
    checks["telegram"] = _timed(lambda: _messenger("telegram", settings.TELEGRAM_BOT_TOKEN))
    checks["vk"] = _timed(lambda: _messenger("vk", settings.VK_COMMUNITY_TOKEN))
    if canaries["status"] == "ok":
        checks["workers"] = _await_canaries(canaries["tokens"], sent_at, timeout)
    else:
        checks["workers"] = {q: {"status": "fail", "error": canaries["error"]} for q in QUEUES}
    flat = [c for name, c in checks.items() if name != "workers"] + list(checks["workers"].values())
    healthy = all(c["status"] in ("ok", "disabled") for c in flat)
    report = {"checks": checks, "warnings": [f.as_text() for f in review(settings)]}
    return report, healthy
