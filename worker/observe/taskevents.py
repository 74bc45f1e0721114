"""Flower's view of the bundles a worker delivers in its own lanes, without a Celery message.

Celery tells Flower of a task with events (task-received, task-started, then task-succeeded,
task-retried or task-failed). A bundle delivered in a lane sends the same events through the
worker's own event dispatcher, under the same task names, so Flower shows it like any task.
Only while task events are on (RELAY_TASK_EVENTS, or Flower's periodic enable_events): off,
they cost nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

# What Flower shows for each way a bundle ends (the task states of `tasks.deliver`).
_ENDINGS = {"done": "task-succeeded", "retry": "task-retried", "dead": "task-failed"}


class TaskEvents:
    """Sends a bundle's task events through the dispatcher `dispatcher()` returns (the
    worker's; None before its consumer started)."""

    def __init__(self, dispatcher: Callable[[], Any]) -> None:
        self.dispatcher = dispatcher

    def on(self) -> Any:
        """The dispatcher if task events are on now, else None."""
        sender = self.dispatcher()
        if sender is None or not sender.enabled:
            return None
        return sender if not sender.groups or "task" in sender.groups else None

    def started(self, name: str, label: str) -> str | None:
        """Announce a bundle; its task id, or None when events are off."""
        sender = self.on()
        if sender is None:
            return None
        task_id = str(uuid.uuid4())
        sender.send(
            "task-received",
            uuid=task_id,
            name=name,
            args=label,
            kwargs="{}",
            retries=0,
            root_id=task_id,
            parent_id=None,
            eta=None,
            expires=None,
        )
        sender.send("task-started", uuid=task_id)  # the dispatcher adds its pid
        return task_id

    def finished(self, task_id: str | None, state: str, summary: str, began: float) -> None:
        """Tell how the bundle ended: its state (done, retry, dead) and summary."""
        sender = self.on() if task_id else None
        if sender is None:
            return
        ending = _ENDINGS[state]
        fields: dict[str, Any] = {"uuid": task_id}
        if ending == "task-succeeded":
            fields.update(result=repr(summary), runtime=time.monotonic() - began)
        else:
            name = "DeadLettered" if state == "dead" else "Retry"
            fields.update(exception=f"{name}({summary!r})", traceback="")
        sender.send(ending, **fields)
