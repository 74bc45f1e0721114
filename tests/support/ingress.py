"""A real ingress process for tests (`relay ingress` on a free loopback port), the sources it
serves, and a plain HTTP client that sends providers' callbacks to it."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from tests.support.harness import CONFIG, Relay
from worker.dev.callbacks import BUILDERS, Callback, Message
from worker.dev.local_redis import free_port
from worker.dev.processes import start_group

SECRETS = {
    "TW_TOKEN": "twilio-auth-token-0123456789abcdef",
    "WA_SECRET": "meta-app-secret-0123456789abcdef",
    "WA_VERIFY": "verify-me",
    "VG_SECRET": "vonage-signature-secret-0123456789",
    "IB_TOKEN": "infobip-token-0123",
    "SMPP_TOKEN": "smpp-token-0123",
    "RELAY_INGRESS_TOKEN": "ingress-token-0123",
}
SOURCES = """
[sources.tw]
kind = "twilio"
auth_token = "${{TW_TOKEN}}"
target = "sf"

[sources.wa]
kind = "whatsapp"
app_secret = "${{WA_SECRET}}"
verify_token = "${{WA_VERIFY}}"
target = "md"
targets = ["sf"]

[sources.vg]
kind = "vonage"
signature_secret = "${{VG_SECRET}}"

[sources.ib]
kind = "infobip"
token = "${{IB_TOKEN}}"
target = "md"

[sources.smpp]
kind = "smpp_dlr"
token = "${{SMPP_TOKEN}}"
target = "sf"

[sources.hasty]
kind = "smpp_dlr"
token = "${{SMPP_TOKEN}}"
target = "sf"
correlation_wait = 1.5
"""
INGRESS_CONFIG = CONFIG + SOURCES
# Which secret signs each source's callbacks.
SIGNING = {
    "tw": "TW_TOKEN",
    "wa": "WA_SECRET",
    "vg": "VG_SECRET",
    "ib": "IB_TOKEN",
    "smpp": "SMPP_TOKEN",
    "hasty": "SMPP_TOKEN",
}
KINDS = {
    "tw": "twilio",
    "wa": "whatsapp",
    "vg": "vonage",
    "ib": "infobip",
    "smpp": "smpp_dlr",
    "hasty": "smpp_dlr",
}
SF_CHANNEL = "72a6a4ec-acbc-44f6-b2b9-e444248ca843"
SF_CONVERSATION = "c0a8e9f2-0000-4000-8000-00000000c0de"


class Ingress:
    """`relay ingress` in its own process group, with the relay's environment."""

    def __init__(self, relay: Relay, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "worker.ops.cli.main", "ingress", "--port", str(self.port)]
        self.log = relay.tmp / f"ingress-{self.port}.log"
        self.process: subprocess.Popen[bytes] = start_group(
            argv, self.log, {**relay.env, **SECRETS, **env}
        )
        relay.workers.append(self.process)  # stopped with the workers
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.get("/healthz")[0] in (200, 503):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the ingress did not start: {self.log.read_text()}")

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        parts = urlsplit(url if url.startswith("http") else self.url + url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def get(self, path: str) -> tuple[int, bytes]:
        return self.request("GET", path)

    def send(self, callback: Callback) -> tuple[int, bytes]:
        return self.request(callback.method, callback.url, callback.headers, callback.body)

    def callback(self, source: str, *messages: Message) -> Callback:
        """The source's provider's callback reporting `messages`, correctly signed."""
        url = f"{self.url}/v1/receipts/{source}"
        return BUILDERS[KINDS[source]](url, SECRETS[SIGNING[source]], list(messages))

    def post(self, source: str, *messages: Message) -> tuple[int, Any]:
        status, body = self.send(self.callback(source, *messages))
        return status, json.loads(body) if body.startswith(b"{") else body

    def correlate(
        self, *records: dict[str, Any], token: str = SECRETS["RELAY_INGRESS_TOKEN"]
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, body = self.request(
            "POST", "/v1/correlations", headers, json.dumps(list(records)).encode()
        )
        return status, json.loads(body) if body.startswith(b"{") else body


def sf_reference(*mids: str, conversation: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"target": "sf", "message_ids": list(mids), "channel": SF_CHANNEL}
    if conversation:
        ref["conversation_id"] = SF_CONVERSATION
    return ref


def md_reference(*mids: str) -> dict[str, Any]:
    return {"target": "md", "message_ids": list(mids), "channel": "page-1"}
