"""What runs inside every worker beside the tasks: the inbox bundler, the retry pump, the
heartbeat and the metrics server (a Celery bootstep), and the start-up configuration check."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import redis
from celery import bootsteps
from celery.signals import task_prerun, worker_init

from worker.intake.bundler import Bundler, recover_orphans
from worker.intake.publish import Publisher
from worker.observe import logs
from worker.observe.metrics import start_metrics_server
from worker.observe.sentry import init_sentry
from worker.ops.gauges import StateCollector
from worker.settings import get_settings
from worker.stores.connection import get_redis
from worker.stores.liveness import Heartbeat
from worker.stores.pump import RetryPump, spare_open_circuits
from worker.stores.retries import RetrySchedule

HEARTBEAT = Heartbeat()


class RelayStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs the retry pump, the inbox bundler and the metrics server inside every worker."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.pump: RetryPump | None = None
        self.bundler: Bundler | None = None

    def start(self, worker: Any) -> None:
        settings = get_settings()
        publisher = Publisher(worker.app, settings.bundle_size)
        start_metrics_server(settings.metrics_port, StateCollector())
        HEARTBEAT.name = worker.hostname
        HEARTBEAT.start()
        self.pump = RetryPump(
            RetrySchedule(),
            publisher.publish,
            settings.retry_poll_interval,
            settings.retry_lease,
            hold=spare_open_circuits(),
        )
        self.pump.start()
        # Without silent retries: a move from the inbox that ran but whose answer was lost
        # (Redis restarting or failing over) must surface, so that the bundler publishes what
        # its inflight list holds; a blind repeat would take other items and its DEL would
        # then drop the first ones.
        client = get_redis(retry=False)
        try:
            recover_orphans(client)
        except redis.RedisError as exc:  # the bundler looks again every few seconds
            logging.getLogger("relay.inbox").warning(
                "inbox: could not recover stopped bundlers' events yet (%s)", exc
            )
        # One bundler per process: the pid tells apart the processes of one host name.
        owner = f"{worker.hostname}:{os.getpid()}"
        self.bundler = Bundler(
            client, publisher.publish_new, owner, settings.bundle_size, settings.linger
        )
        self.bundler.start()

    def stop(self, worker: Any) -> None:
        # Reverse order of start; the bundler's last round publishes before the lease goes.
        if self.bundler is not None:
            self.bundler.stop()
        if self.pump is not None:
            self.pump.stop()
        HEARTBEAT.stop()


def _task_received(**_: Any) -> None:
    HEARTBEAT.task_received()


def _check_config(**_: Any) -> None:
    """Refuse to start on a bad configuration, listing every problem, before any event."""
    from worker.config import ConfigError
    from worker.delivery.runtime import get_pipeline

    settings = get_settings()
    logs.configure(settings.log_format)
    try:
        pipeline = get_pipeline()
    except ConfigError as exc:
        print(f"relay worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    init_sentry(settings.sentry_dsn, pipeline.config.secrets)


def connect_signals() -> None:
    """Hook the heartbeat and the configuration check to the worker's signals."""
    task_prerun.connect(_task_received, weak=False)
    worker_init.connect(_check_config, weak=False)
