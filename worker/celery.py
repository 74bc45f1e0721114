"""The Celery app (`celery -A worker worker`): broker settings chosen for at-least-once delivery.

The relay's own threads (the inbox feeder and its lanes, pumps, heartbeat, metrics) start with
each worker from `worker.bootsteps`; the tasks are found by name in `tasks.deliver`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_init

from worker.bootsteps import RelayStep, connect_signals
from worker.settings import get_settings
from worker.stores.connection import is_sentinel
from worker.stores.reach import probe

settings = get_settings()
sentinel = is_sentinel(settings.redis_url)

app = Celery("relay", broker=settings.redis_url, include=["tasks.deliver"])
app.conf.update(
    # kombu's Redis transport (or its Sentinel form), made to survive losing Redis (see
    # worker.broker).
    broker_transport="worker.broker:SentinelTransport" if sentinel else "worker.broker:Transport",
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
    # redelivered: what it had posted and read the answer of is marked done by then (the
    # answer book writes it before anything else), so the redelivery does not post it again.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    # Deliveries wait on HTTP, not CPU: threads, and a few messages reserved per thread.
    worker_pool="threads",
    worker_concurrency=settings.concurrency,
    worker_prefetch_multiplier=settings.prefetch,
    broker_transport_options={
        # Short, because live workers renew what they hold (worker.broker): a dead worker's
        # messages are taken up within 1.5 times it however long a live one's tasks run.
        "visibility_timeout": settings.visibility_timeout,
        # Look for a dead worker's unacked messages every tenth of it (kombu: every ~100 s).
        "unacked_restore_interval": settings.visibility_timeout / 10,
        "unacked_restore_throttle": 1,
        # A worker killed mid-sweep holds the sweep's lock until it expires (kombu: 300 s).
        "unacked_mutex_expire": 5,
        # Only read by the Sentinel transport (sentinel:// URLs): which master, and the
        # sentinels' own password when they have one.
        **(
            {
                "master_name": settings.sentinel_master,
                "sentinel_kwargs": {"password": settings.sentinel_password},
            }
            if sentinel
            else {}
        ),
    },
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    # Task events cost CPU for every task: off unless asked (RELAY_TASK_EVENTS); Flower turns
    # them on itself (enable_events) when it watches. Producers never send "task-sent" events.
    worker_send_task_events=settings.task_events,
    task_send_sent_event=False,
    worker_hijack_root_logger=False,
)


def _check_redis(**_: Any) -> None:
    """Refuse to start on a Redis that will never take the worker's commands (a wrong or
    missing password, a database it does not have): Celery would try that forever, logging
    "Cannot connect ... Trying again". An outage is waited out, as Celery does."""
    problem = probe(settings.redis_url)
    if problem is None:
        return
    if problem.outage:
        logging.getLogger("relay.worker").warning(
            "%s The worker starts and waits for it.", problem.message
        )
        return
    print(f"relay worker: {problem.message}", file=sys.stderr)
    raise SystemExit(2)


def _check_cells(**_: Any) -> None:
    """Refuse to start with a list of cells this cell's Redis has not served in that order
    (`worker.cells.guard`); a Redis that cannot answer yet is checked by the step above."""
    from worker.cells.cells import get_cells
    from worker.cells.guard import list_problem
    from worker.stores.connection import get_redis

    try:
        problem = list_problem(get_redis(), get_cells())
    except redis.RedisError:
        return
    if problem is not None:
        print(f"relay worker: {problem}", file=sys.stderr)
        raise SystemExit(2)


app.steps["worker"].add(RelayStep)
connect_signals()
worker_init.connect(_check_redis, weak=False)  # after the configuration's check
worker_init.connect(_check_cells, weak=False)
