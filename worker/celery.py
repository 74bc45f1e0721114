"""The Celery app (`celery -A worker worker`): broker settings chosen for at-least-once delivery."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import redis
from celery import Celery, bootsteps
from celery.signals import task_prerun, worker_init

from worker.settings import get_settings
from worker.stores.connection import get_redis
from worker.stores.liveness import Heartbeat

settings = get_settings()

app = Celery("relay", broker=settings.redis_url, include=["tasks.deliver"])
app.conf.update(
    # kombu's Redis transport, made to survive losing Redis (see worker.broker).
    broker_transport="worker.broker:Transport",
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    task_default_queue=settings.queue,
    # At least once: a message is acknowledged only after it was settled, and a killed worker's
    # messages return to the queue (celery #1628).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # A dead letter is a task failure that was handled: ack it. (Redis trouble is a Reject
    # with requeue, never a plain failure; see tasks.deliver.)
    task_acks_on_failure_or_timeout=True,
    # The threads pool cannot cancel a running task (Celery raises NotImplementedError in the
    # middle of its reconnect); a late-acked task that outlives a reconnect is simply
    # redelivered, and the idempotency claim stops it being posted twice.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    # Deliveries wait on HTTP, not CPU: threads, and a few messages reserved per thread.
    worker_pool="threads",
    worker_concurrency=settings.concurrency,
    worker_prefetch_multiplier=settings.prefetch,
    broker_transport_options={
        "visibility_timeout": settings.visibility_timeout,
        # Look for a dead worker's unacked messages every ~10 s (kombu's default is ~100 s).
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 2,
        # A worker killed mid-sweep holds the sweep's lock until it expires (kombu: 300 s).
        "unacked_mutex_expire": 30,
    },
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    # Workers send task events so Flower sees every task without extra flags. Producers do not
    # send "task-sent" events: that would double the cost of every publish.
    worker_send_task_events=True,
    task_send_sent_event=False,
    worker_hijack_root_logger=False,
)


class RelayStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs the retry pump, the inbox bundler and the metrics server inside every worker."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.pump: Any = None
        self.bundler: Any = None

    def start(self, worker: Any) -> None:
        from worker.intake.inbox import Bundler, recover_orphans
        from worker.intake.publish import publish_bundle, publish_envelopes
        from worker.observe.metrics import start_metrics_server
        from worker.stores.pump import RetryPump, spare_open_circuits
        from worker.stores.retries import RetrySchedule

        start_metrics_server(settings.metrics_port)
        HEARTBEAT.name = worker.hostname
        HEARTBEAT.start()
        self.pump = RetryPump(
            RetrySchedule(),
            publish_envelopes,
            settings.retry_poll_interval,
            settings.retry_lease,
            hold=spare_open_circuits(),
        )
        self.pump.start()
        client = get_redis()
        try:
            recover_orphans(client)
        except redis.RedisError as exc:  # the bundler looks again every few seconds
            logging.getLogger("relay.inbox").warning(
                "inbox: could not recover stopped bundlers' events yet (%s)", exc
            )
        # One bundler per process: the pid tells apart the processes of one host name.
        self.bundler = Bundler(
            client,
            publish_bundle,
            f"{worker.hostname}:{os.getpid()}",
            settings.batch_size,
            settings.linger,
        )
        self.bundler.start()

    def stop(self, worker: Any) -> None:
        # Reverse order of start; the bundler's last round publishes before the lease goes.
        if self.bundler is not None:
            self.bundler.stop()
        if self.pump is not None:
            self.pump.stop()
        HEARTBEAT.stop()


app.steps["worker"].add(RelayStep)
HEARTBEAT = Heartbeat()


@task_prerun.connect  # type: ignore[untyped-decorator]
def _task_received(**_: Any) -> None:
    HEARTBEAT.task_received()


@worker_init.connect  # type: ignore[untyped-decorator]
def _check_config(**_: Any) -> None:
    """Refuse to start on a bad configuration, listing every problem, before any event."""
    from worker.config import ConfigError
    from worker.delivery.runtime import get_relay
    from worker.observe import logs
    from worker.observe.sentry import init_sentry

    logs.configure(settings.log_format)
    try:
        relay = get_relay()
    except ConfigError as exc:
        print(f"relay worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    init_sentry(settings.sentry_dsn, relay.config.secrets)
