"""Token providers: they add authentication to a translated request, and keep tokens cached."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import requests

from tasks.outbound import OutboundRequest
from worker.config import AuthConfig

# A token is renewed this long before it expires, so no request goes out with a dying token.
_EXPIRY_MARGIN = 60.0


class AuthError(Exception):
    """Credentials could not be obtained; the delivery is retried later."""


class Authenticator(Protocol):
    """Adds authentication headers to one request."""

    def headers(self, request: OutboundRequest) -> dict[str, str]: ...

    def invalidate(self) -> None:
        """Forget a cached token (the target answered 401)."""


class StaticBearer:
    """A fixed bearer token from the configuration."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self._value = f"Bearer {params['token']}"

    def headers(self, request: OutboundRequest) -> dict[str, str]:
        return {"Authorization": self._value}

    def invalidate(self) -> None:
        pass


class ClientCredentials:
    """OAuth 2.0 client credentials (HTTP Basic client id/secret), cached for `expires_in`."""

    def __init__(self, params: Mapping[str, str], timeout: float = 10.0) -> None:
        self._params = params
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def headers(self, request: OutboundRequest) -> dict[str, str]:
        with self._lock:
            if self._token is None or time.time() >= self._expires:
                self._token, lifetime = self._fetch()
                self._expires = time.time() + max(0.0, lifetime - _EXPIRY_MARGIN)
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if "scope" in self._params:
            form["scope"] = self._params["scope"]
        try:
            answer = requests.post(
                self._params["token_url"],
                data=form,
                auth=(self._params["client_id"], self._params["client_secret"]),
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise AuthError(f"token endpoint unreachable: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise AuthError(f"token endpoint answered HTTP {answer.status_code}")
        try:
            document = answer.json()
            return str(document["access_token"]), float(document.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise AuthError("token endpoint answered without an access_token") from None


class HubSignature:
    """`X-Hub-Signature: sha1=<HMAC-SHA1 of the raw body>`, as some Medallia channels expect."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self._secret = params["secret"].encode()

    def headers(self, request: OutboundRequest) -> dict[str, str]:
        digest = hmac.new(self._secret, request.body, hashlib.sha1).hexdigest()
        return {"X-Hub-Signature": f"sha1={digest}"}

    def invalidate(self) -> None:
        pass


AUTHENTICATORS: dict[str, Callable[[Mapping[str, str]], Authenticator]] = {
    "bearer": StaticBearer,
    "client_credentials": ClientCredentials,
    "hub_signature": HubSignature,
}


def make_authenticator(auth: AuthConfig) -> Authenticator:
    """The provider for a target's `auth` table (already checked by the config loader)."""
    return AUTHENTICATORS[auth.type](auth.params)
