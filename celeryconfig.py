"""Every Celery setting of the platform, read by the worker, beat, flower and the web's client."""

from __future__ import annotations

from datetime import timedelta

from kombu import Queue

from core.settings import get_settings
from worker.schedules import job_entries

_settings = get_settings()

broker_url = _settings.redis_url
broker_connection_retry_on_startup = True
# Fail fast when Redis is down: the web tier must answer, and the sweeper re-sends later.
broker_transport_options = {
    "visibility_timeout": 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
task_publish_retry_policy = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}

# JSON only: pickle from the broker would run whatever anyone with Redis access sent.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"
task_ignore_result = True
result_backend = None

# A task is acknowledged after it ran, and a worker killed mid-task puts it back.
task_acks_late = True
task_reject_on_worker_lost = True
# Tasks are short (one emit, one HTTP call), so a few prefetched each keeps workers busy.
worker_prefetch_multiplier = 4
worker_cancel_long_running_tasks_on_connection_loss = True
task_soft_time_limit = 120
task_time_limit = 180

imports = (
    "tasks.notifications",
    "tasks.email",
    "tasks.maintenance",
    "tasks.health",
    "tasks.broadcasts",
    "tasks.auth",
    "tasks.messengers",
)

timezone = "UTC"
enable_utc = True

QUEUES = ("realtime", "email", "messengers", "maintenance")
task_queues = tuple(Queue(name, routing_key=name) for name in QUEUES)
task_default_queue = "realtime"
task_routes = {
    "notifications.deliver_live": {"queue": "realtime"},
    "notifications.deliver_email": {"queue": "email"},
    # Telegram and VK: paced by their providers' limits, so never in front of emails or pushes.
    "notifications.deliver_telegram": {"queue": "messengers"},
    "notifications.deliver_vk": {"queue": "messengers"},
    "messengers.*": {"queue": "messengers"},
    "email.*": {"queue": "email"},
    "auth.*": {"queue": "email"},
    "notifications.sweep": {"queue": "maintenance"},
    "maintenance.*": {"queue": "maintenance"},
    # Bulk work beside the housekeeping, never in front of the live pushes.
    "broadcasts.*": {"queue": "maintenance"},
}

# Flower shows tasks only when workers send events.
# Task events cost every task several publishes (half the worker's main process under load,
# docs/BENCHMARKS.md, B4), so they are off until someone watches: Flower, started with
# --enable_events (scripts/flower.sh), turns them on in every worker it sees. Tasks then show
# from `received` on; the web tier's `task-sent` events stay off for the same reason.
worker_send_task_events = False
task_send_sent_event = False

# The one retry policy for transient errors: exponential backoff with jitter, bounded.
TASK_RETRY_POLICY = {
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}

beat_schedule: dict[str, dict[str, object]] = {}
if _settings.ENABLE_BACKGROUND_TASKS:
    beat_schedule["notifications.sweep"] = {
        "task": "notifications.sweep",
        "schedule": timedelta(seconds=_settings.SWEEP_INTERVAL_SECONDS),
        # A sweep that could not start before the next one is useless: let it expire.
        "options": {"expires": _settings.SWEEP_INTERVAL_SECONDS},
    }
    # The scheduled jobs (worker/schedules.py): crontabs in UTC, or JOB_INTERVALS' overrides.
    beat_schedule.update(job_entries(_settings))
