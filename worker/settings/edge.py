"""The ingress's bounds at its edge (what a caller on the internet may cost it): body caps,
the read deadline, header size, requests, body bytes and connections at once, keep-alive.
Fields of `worker.settings.Settings` (its base class), declared like every other setting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.settings.spec import setting


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """The ingress's edge bounds (see each field's `setting`)."""

    ingress_max_form_bytes: int = setting(
        "RELAY_INGRESS_MAX_FORM_BYTES",
        64 << 10,
        "int",
        "Cap on a one-message callback's body (Twilio, Vonage, SMPP); larger: 413, judged from "
        "Content-Length before reading (RELAY_INGRESS_MAX_BYTES caps the JSON batches).",
        minimum=1024,
        maximum=64 << 20,
        unit=" bytes",
    )
    ingress_max_form_fields: int = setting(
        "RELAY_INGRESS_MAX_FORM_FIELDS",
        256,
        "int",
        "Fields a form body may have (counted before it is parsed); a Twilio form past it is "
        "refused (401: its signature cannot be checked), another kind's kept as unreadable.",
        minimum=16,
        maximum=100_000,
    )
    ingress_read_timeout: float = setting(
        "RELAY_INGRESS_READ_TIMEOUT",
        10.0,
        "float",
        "Seconds a request has to arrive whole, headers and body, from its first byte (on a "
        "new connection, from its opening); past it 408 and the connection is closed.",
        minimum=0.5,
        maximum=600,
        unit=" s",
    )
    ingress_max_header_bytes: int = setting(
        "RELAY_INGRESS_MAX_HEADER_BYTES",
        32 << 10,
        "int",
        "Bytes a request's line and headers may take; past it 431 and the connection is closed.",
        minimum=1024,
        maximum=1 << 20,
        unit=" bytes",
    )
    ingress_max_in_progress: int = setting(
        "RELAY_INGRESS_MAX_IN_PROGRESS",
        128,
        "int",
        "Callbacks and registrations one ingress process serves at once; past it 503 at once "
        "(`/healthz` and `/metrics` are not counted).",
        minimum=1,
        maximum=100_000,
    )
    ingress_body_budget: int = setting(
        "RELAY_INGRESS_BODY_BUDGET",
        16 << 20,
        "int",
        "Body bytes one ingress process reads at once, as requests announce them (a body "
        "without Content-Length counts as its cap); a request that does not fit: 503 at once. "
        "At least RELAY_INGRESS_MAX_BYTES.",
        minimum=1024,
        maximum=4 << 30,
        unit=" bytes",
    )
    ingress_max_connections: int = setting(
        "RELAY_INGRESS_MAX_CONNECTIONS",
        1000,
        "int",
        "Open connections one ingress process serves; past it every request is answered 503 "
        "(uvicorn's `--limit-concurrency`, which wins when given; `relay ingress` passes this).",
        minimum=1,
        maximum=1_000_000,
    )
    ingress_keep_alive: int = setting(
        "RELAY_INGRESS_KEEP_ALIVE",
        75,
        "int",
        "Seconds `relay ingress` keeps an idle connection open (uvicorn's `--timeout-keep-alive`"
        "): longer than a proxy's upstream keep-alive, so a proxy never reuses a closed one.",
        minimum=1,
        maximum=3600,
        unit=" s",
    )


def edge_problems(settings: Any) -> list[str]:
    """What cannot work together among the ingress's bounds."""
    if settings.ingress_body_budget < settings.ingress_max_bytes:
        return [
            f"RELAY_INGRESS_BODY_BUDGET ({settings.ingress_body_budget}) must be at least "
            f"RELAY_INGRESS_MAX_BYTES ({settings.ingress_max_bytes}): one largest body must fit"
        ]
    return []
