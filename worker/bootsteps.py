"""What runs inside every worker beside the tasks: the inbox feeder and its lanes, the retry
pump, the heartbeat and the metrics server (a Celery bootstep), and the start-up check."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from celery import bootsteps
from celery.signals import task_prerun, worker_init

from tasks.envelope import Envelope
from worker.delivery.settlement import summarize, worst
from worker.intake.feeder import Feeder
from worker.intake.inflight import RENEWALS, recover_orphans
from worker.intake.publish import Publisher
from worker.observe import logs
from worker.observe.labels import bundle_label, event_key, task_name
from worker.observe.metrics import start_metrics_server
from worker.observe.secrets import process_secrets
from worker.observe.sentry import init_sentry
from worker.observe.taskevents import TaskEvents, set_current
from worker.ops.gauges import StateCollector
from worker.settings import get_settings
from worker.stores.connection import get_redis
from worker.stores.liveness import Heartbeat
from worker.stores.pump import RetryPump, spare_open_circuits
from worker.stores.retries import RetrySchedule
from worker.stores.waiting import WaitingPump

HEARTBEAT = Heartbeat()
T = TypeVar("T")
lane_log = logging.getLogger("relay.lane")


class RelayStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Runs the retry pump, the waiting room's pump, the inbox feeder and the metrics server
    inside every worker."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.pump: RetryPump | None = None
        self.feeder: Feeder | None = None
        self.waiting: WaitingPump | None = None

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
        self.waiting = WaitingPump(interval=settings.retry_poll_interval)
        self.waiting.start()
        client = get_redis(raw=True)  # producers' items may not be UTF-8
        # Beside the start, not before it: the one SCAN for lanes missing from the set (an
        # older release's) reads the whole keyspace, which may hold millions of keys.
        threading.Thread(target=_recover_all, args=(client,), daemon=True).start()
        # One feeder per process: the pid tells apart the processes of one host name.
        owner = f"{worker.hostname}:{os.getpid()}"
        events = TaskEvents(
            lambda: getattr(worker.consumer, "event_dispatcher", None),
            own=_early_dispatcher(worker) if settings.task_events else None,
        )
        set_current(events)
        deliver = LaneDelivery(events)
        self.feeder = Feeder(client, deliver, owner, settings.lanes, settings.bundle_size)
        _quiet_collector()
        self.feeder.start()

    def stop(self, worker: Any) -> None:
        # Reverse order of start: the lanes finish what they hold (a task's budget plus a
        # request's timeout at most; their lease is renewed meanwhile, and for as long as one
        # still works), then the answers they read are recorded.
        from worker.delivery.runtime import get_pipeline
        from worker.delivery.settle import STOPPING

        settings = get_settings()
        if self.feeder is not None:
            self.feeder.stop(settings.task_budget + 15)
        STOPPING.set()
        get_pipeline().book.drain(settings.visibility_timeout)
        for thread in (self.pump, self.waiting):
            if thread is not None:
                thread.stop()
        HEARTBEAT.stop()


def _early_dispatcher(worker: Any) -> Callable[[], Any]:
    """A task event dispatcher of the worker's own name, for bundles delivered before its
    consumer (and the consumer's dispatcher) started: with task events on from the start, the
    first bundles a worker takes (what waited in the inbox) reach Flower too. One connection,
    made only if such a bundle comes."""
    return lambda: worker.app.events.Dispatcher(
        worker.app.connection_for_write(), hostname=worker.hostname, enabled=True
    )


def _recover_all(client: redis.Redis) -> None:
    """Lanes missing from the set (an older release's) too, found by a SCAN: each is taken
    back once its lease was seen gone on two looks a renewal apart."""
    confirm = get_settings().visibility_timeout / RENEWALS
    try:
        for _ in range(2):
            recover_orphans(client, scan=True, confirm=confirm)
            time.sleep(confirm + 0.5)
    except redis.RedisError as exc:  # the feeder looks again (at the set) every second
        logging.getLogger("relay.inbox").warning(
            "inbox: could not look for stopped workers' lanes (%s)", exc
        )


def _quiet_collector() -> None:
    """Keep the garbage collector's pauses out of deliveries: what start-up built (Celery, the
    pipeline, the config) is frozen out of every later collection, and the young generation
    is collected less often. A full collection of a worker's heap took tens of ms, which was
    the 99th percentile of push-to-post at low rates."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


class LaneDelivery:
    """What a lane does with a bundle: the pipeline, told to Flower and to the heartbeat as a
    task of the same name a Celery message would have run."""

    def __init__(self, events: TaskEvents) -> None:
        self.events = events

    def __call__(self, envelopes: list[Envelope], settled: set[str]) -> None:
        from worker.delivery.runtime import ends, run_local

        HEARTBEAT.task_received()
        name = task_name(len(envelopes))
        task_id = self._told(lambda: self._started(name, envelopes))
        began = time.monotonic()
        outcomes = run_local(envelopes, settled)
        self._told(lambda: self.events.finished(task_id, ends(envelopes, outcomes), began))
        # As Celery logs a task's end: the state (a dead letter outranks a retry) and summary;
        # at INFO only when something was parked or dead-lettered, as for attempts (at
        # moderate rates a bundle is an event or two, and its line cost a tenth of its CPU).
        level = logging.DEBUG if worst(outcomes) == "done" else logging.INFO
        if lane_log.isEnabledFor(level):
            keys = [event_key(e.event) for e in envelopes] if task_id else None
            verdict = summarize(outcomes, task_id is not None, keys)
            lane_log.log(level, "%s in a lane: %s: %.300s", name, verdict.state, verdict.summary)

    def _started(self, name: str, envelopes: list[Envelope]) -> str | None:
        if self.events.on() is None:
            return None
        label = bundle_label([(e.event, e.attempts + 1) for e in envelopes])
        return self.events.started(name, label)

    @staticmethod
    def _told(tell: Callable[[], T]) -> T | None:
        """What Flower is told is best effort: a broker that cannot take a task event must
        not turn a bundle that was settled into one that failed."""
        try:
            return tell()
        except Exception as exc:
            lane_log.warning("could not send a task event (%s)", type(exc).__name__)
            return None


def _task_received(**_: Any) -> None:
    HEARTBEAT.task_received()


def _check_config(**_: Any) -> None:
    """Refuse to start on a bad configuration, listing every problem, before any event."""
    from worker.config import ConfigError
    from worker.delivery.runtime import get_pipeline

    settings = get_settings()
    logs.configure(settings.log_format, settings.log_level)
    try:
        pipeline = get_pipeline()
    except ConfigError as exc:
        print(f"relay worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    init_sentry(settings.sentry_dsn, process_secrets(settings, pipeline.config))


def connect_signals() -> None:
    """Hook the heartbeat and the configuration check to the worker's signals."""
    task_prerun.connect(_task_received, weak=False)
    worker_init.connect(_check_config, weak=False)
