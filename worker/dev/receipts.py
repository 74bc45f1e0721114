"""`relay dev`'s providers: a source of each kind in the dev configuration, and sample signed
callbacks sent to the ingress (a Twilio failure for Salesforce, a WhatsApp batch with a read,
and a Vonage, Infobip and SMPP receipt)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from worker.dev.callbacks import BUILDERS, Callback, Message

DEV_SOURCES = """
[sources.twilio-dev]
kind = "twilio"
auth_token = "${{RELAY_DEV_TWILIO_TOKEN}}"
target = "sf-sandbox"

[sources.whatsapp-dev]
kind = "whatsapp"
app_secret = "${{RELAY_DEV_WHATSAPP_SECRET}}"
verify_token = "${{RELAY_DEV_WHATSAPP_VERIFY}}"
targets = ["medallia-sandbox", "sf-sandbox"]

[sources.vonage-dev]
kind = "vonage"
signature_secret = "${{RELAY_DEV_VONAGE_SECRET}}"
targets = ["sf-sandbox"]

[sources.infobip-dev]
kind = "infobip"
token = "${{RELAY_DEV_SOURCE_TOKEN}}"
target = "medallia-sandbox"

[sources.smpp-dev]
kind = "smpp_dlr"
token = "${{RELAY_DEV_SOURCE_TOKEN}}"
target = "sf-sandbox"
"""
DEV_SECRETS = {
    "RELAY_DEV_TWILIO_TOKEN": "dev-twilio-auth-token-0123456789ab",
    "RELAY_DEV_WHATSAPP_SECRET": "dev-meta-app-secret-0123456789abc",
    "RELAY_DEV_WHATSAPP_VERIFY": "dev-verify-token",
    "RELAY_DEV_VONAGE_SECRET": "dev-vonage-signature-secret-012345",
    "RELAY_DEV_SOURCE_TOKEN": "dev-source-token",
    "RELAY_INGRESS_TOKEN": "dev-ingress-token",
}
SF_CHANNEL = "72a6a4ec-acbc-44f6-b2b9-e444248ca843"
SF_CONVERSATION = "c0a8e9f2-0000-4000-8000-00000000c0de"
SF_REF = {"target": "sf-sandbox", "channel": SF_CHANNEL, "conversation_id": SF_CONVERSATION}
MD_REF = {"target": "medallia-sandbox", "channel": "page-1"}


def _ref(base: dict[str, str], mid: str) -> dict[str, Any]:
    return {**base, "message_ids": [mid]}


# (source, secret's variable, messages); each message becomes one canonical event.
SAMPLES: tuple[tuple[str, str, list[Message]], ...] = (
    (
        "twilio-dev",
        "RELAY_DEV_TWILIO_TOKEN",
        [
            Message(
                "SMdev0001", "undelivered", error_code="30003", reference=_ref(SF_REF, "rx-tw-1")
            )
        ],
    ),
    (
        "whatsapp-dev",
        "RELAY_DEV_WHATSAPP_SECRET",
        [
            Message("wamid.dev1", "delivered", reference=_ref(MD_REF, "rx-wa-1")),
            Message("wamid.dev2", "read", reference=_ref(SF_REF, "rx-wa-2")),
        ],
    ),
    (
        "vonage-dev",
        "RELAY_DEV_VONAGE_SECRET",
        [Message("aaaa-dev-1", "delivered", reference=_ref(SF_REF, "rx-vg-1"))],
    ),
    (
        "infobip-dev",
        "RELAY_DEV_SOURCE_TOKEN",
        [Message("ib-dev-1", "DELIVERED_TO_HANDSET", reference=_ref(MD_REF, "rx-ib-1"))],
    ),
    ("smpp-dev", "RELAY_DEV_SOURCE_TOKEN", [Message("smpp-dev-1", "REJECTD", error_code="088")]),
)
# The SMPP gateway echoes nothing: its message needs a record, registered as a sender would.
RECORDS = [{"source": "smpp-dev", "provider_message_id": "smpp-dev-1", **_ref(SF_REF, "rx-smpp-1")}]
KINDS = {
    "twilio-dev": "twilio",
    "whatsapp-dev": "whatsapp",
    "vonage-dev": "vonage",
    "infobip-dev": "infobip",
    "smpp-dev": "smpp_dlr",
}


def send(callback: Callback) -> tuple[int, bytes]:
    """Send one callback; the status and body of the answer."""
    parts = urlsplit(callback.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(callback.method, path, callback.body, callback.headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def play_samples(ingress_url: str, secrets: dict[str, str]) -> int:
    """Register the records, send every sample callback, print each answer; return how many
    events the receipts make."""
    headers = {"Authorization": f"Bearer {secrets['RELAY_INGRESS_TOKEN']}"}
    body = json.dumps(RECORDS).encode()
    status, answer = send(Callback("POST", f"{ingress_url}/v1/correlations", headers, body))
    print(f"relay dev: POST /v1/correlations -> {status} {answer.decode()[:80]}")
    events = 0
    for source, secret, messages in SAMPLES:
        url = f"{ingress_url}/v1/receipts/{source}"
        status, answer = send(BUILDERS[KINDS[source]](url, secrets[secret], messages))
        print(f"relay dev: {KINDS[source]} callback -> {status} {answer.decode()[:80]}")
        events += len(messages) if status == 200 else 0
    return events
