"""Flower's view of deliveries: task events the relay sends itself.

Celery tells Flower of a task with events (task-received, task-started, then how it ended). A
bundle delivered in a lane has no Celery message, so the worker sends those events itself,
under the task names a message would have (`relay.deliver`, `relay.deliver_batch`); a Celery
task (a retry the pump sent back, a replay) tells its end the same way when Flower watches.
Only while task events are on (RELAY_TASK_EVENTS, or Flower's periodic enable_events): off,
they cost nothing.

How each outcome reads (see `worker.observe.outcomes` for one task per outcome):
- done: task-succeeded (SUCCESS), each event's outcome as the result;
- dead: task-failed (FAILURE), the same as the result and as the exception;
- retry: task-parked, a state of the relay's own (PARKED), with the retry time as its ETA. Not
  Celery's RETRY: a parked retry waits in the relay's Redis schedule and goes back to a worker
  as a new message, so Celery's revoke (the button Flower shows for RETRY and RECEIVED tasks)
  would mark an id nothing will run again, and change nothing. Flower offers no Revoke for a
  state of its own.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from worker.observe.outcomes import EventEnd, Group, groups

_ENDINGS = {"done": "task-succeeded", "retry": "task-parked", "dead": "task-failed"}
_ERRORS = {"retry": "Parked", "dead": "DeadLettered"}


class TaskEvents:
    """Sends task events through the dispatcher `dispatcher()` returns (the worker's; None
    before its consumer started). `own()`, when given, makes one for the time before: with
    task events on from the start, a worker's lanes deliver what waited in the inbox before
    the consumer is connected, and those first bundles are the ones worth seeing."""

    def __init__(self, dispatcher: Callable[[], Any], own: Callable[[], Any] | None = None) -> None:
        self.dispatcher = dispatcher
        self.own = own
        self._own: Any = None
        self._lock = threading.Lock()

    def on(self) -> Any:
        """The dispatcher if task events are on now, else None."""
        sender = self.dispatcher()
        if sender is None:
            sender = self._early()
        if sender is None or not sender.enabled:
            return None
        return sender if not sender.groups or "task" in sender.groups else None

    def _early(self) -> Any:
        if self.own is None:
            return None
        with self._lock:
            if self._own is None:
                self._own = self.own()
            return self._own

    def started(self, name: str, label: str) -> str | None:
        """Announce a delivery; its task id, or None when events are off."""
        sender = self.on()
        if sender is None:
            return None
        return _announce(sender, name, label, None)

    def finished(self, task_id: str | None, ends: list[EventEnd], began: float) -> bool:
        """Tell how task `task_id`'s events ended, a task per outcome (the first keeps the id);
        whether Flower was told (task events on)."""
        sender = self.on() if task_id else None
        if sender is None or task_id is None:
            return False
        runtime = time.monotonic() - began
        for i, group in enumerate(groups(ends)):
            told = task_id if i == 0 else _announce(sender, group.name, group.label, task_id)
            sender.send(_ENDINGS[group.state], **_ending(told, group, runtime))
        return True


def _announce(sender: Any, name: str, label: str, parent: str | None) -> str:
    task_id = str(uuid.uuid4())
    sender.send(
        "task-received",
        uuid=task_id,
        name=name,
        args=label,
        kwargs="{}",
        retries=0,
        root_id=parent or task_id,
        parent_id=parent,
        eta=None,
        expires=None,
    )
    sender.send("task-started", uuid=task_id)  # the dispatcher adds its pid
    return task_id


def _ending(task_id: str, group: Group, runtime: float) -> dict[str, Any]:
    """The fields of an end event. Name and arguments are sent again: Flower keeps an end
    event's fields over the announcement's, so a bundle's own task lists only its events."""
    fields: dict[str, Any] = {
        "uuid": task_id,
        "name": group.name,
        "args": group.label,
        "result": group.outcomes,
        "runtime": runtime,
    }
    if group.state in _ERRORS:
        fields.update(exception=f"{_ERRORS[group.state]}: {group.outcomes}", traceback="")
    if group.due:
        fields["eta"] = datetime.fromtimestamp(group.due, UTC).isoformat(timespec="seconds")
    return fields


_current: list[TaskEvents] = []


def set_current(events: TaskEvents) -> None:
    """The worker's TaskEvents, for the Celery tasks of this process to tell their ends."""
    _current[:] = [events]


def current() -> TaskEvents | None:
    """This process's TaskEvents (None outside a worker)."""
    return _current[0] if _current else None
