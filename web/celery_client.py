"""The web process's Celery client: it only sends tasks by name, never runs one."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from worker import redis_transport


def build_celery_client(broker_url: str | None = None) -> Celery:
    """A Celery client on the platform's Redis transport and celeryconfig (or `broker_url`)."""
    redis_transport.install()  # one Redis client per channel, not per publish
    client = Celery("admarket-web")
    client.config_from_object("celeryconfig")
    if broker_url is not None:
        client.conf.broker_url = broker_url
    return client


@lru_cache(maxsize=1)
def celery_client() -> Celery:
    """This process's one Celery client: the dispatcher, the deep health check and the CLI."""
    return build_celery_client()
