"""Token providers: they add authentication to a translated request, and keep tokens cached."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

import jwt

from tasks.outbound import OutboundRequest
from worker.config import AuthConfig
from worker.delivery.transport import send
from worker.observe.secrets import KNOWN

# A token is renewed this long before it expires, so no request goes out with a dying token.
_EXPIRY_MARGIN = 60.0


class AuthError(Exception):
    """Credentials could not be obtained; the delivery is retried later."""


class Authenticator(Protocol):
    """Adds authentication headers to one request."""

    refreshable: bool
    """Whether a 401 may be cured by fetching a new token (then the request is sent once
    more with it); a fixed credential cannot be."""

    def headers(self, request: OutboundRequest, deadline: float | None = None) -> dict[str, str]:
        """The headers; `deadline` (time.monotonic()) bounds any wait for a token."""
        ...

    def invalidate(self) -> None:
        """Forget a cached token (the target answered 401)."""


class StaticBearer:
    """A fixed bearer token from the configuration."""

    refreshable = False

    def __init__(self, params: Mapping[str, str]) -> None:
        self._value = f"Bearer {params['token']}"

    def headers(self, request: OutboundRequest, deadline: float | None = None) -> dict[str, str]:
        return {"Authorization": self._value}

    def invalidate(self) -> None:
        pass


class CachedToken:
    """A bearer token from a token endpoint, kept until shortly before it expires or until a
    401 says it is no good. Subclasses say how to fetch one (`_fetch`: token and lifetime)."""

    refreshable = True

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._fetch_timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def headers(self, request: OutboundRequest, deadline: float | None = None) -> dict[str, str]:
        # One thread fetches while the others wait, but never past their task's deadline.
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._lock.acquire(timeout=wait):
            raise AuthError("another request is fetching a token and took too long")
        try:
            if self._token is None or time.time() >= self._expires:
                self._fetch_timeout = (
                    self._timeout if wait < 0 else max(0.1, min(self._timeout, wait))
                )
                self._token, lifetime = self._fetch()
                self._expires = time.time() + max(0.0, lifetime - _EXPIRY_MARGIN)
            return {"Authorization": f"Bearer {self._token}"}
        finally:
            self._lock.release()

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[str, float]:
        raise NotImplementedError

    def _post_form(
        self, url: str, form: dict[str, str], auth: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """POST a token request through the transport, under one total deadline (the fetch
        timeout, at most what the caller's task has left); the answer's JSON object, or
        AuthError saying what failed (never quoting a secret the endpoint echoed)."""
        body = urlencode(form).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        credentials: dict[str, str] = {}
        if auth is not None:
            pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            credentials["Authorization"] = f"Basic {pair}"
        request = OutboundRequest("token", "token", "POST", url, headers, body, ())
        answer = send(request, credentials, self._fetch_timeout, redact=False)
        # What the endpoint may echo: the client secret (plain or in the Basic header), the
        # signed assertion.
        sent = [form.get("assertion", ""), auth[1] if auth else "", *credentials.values()]
        if answer.status is None:
            raise AuthError(f"token endpoint unreachable: {answer.network_error}")
        if answer.status != 200:
            text = KNOWN.redact(answer.body[:200].decode("utf-8", "replace"), sent)
            raise AuthError(f"token endpoint answered HTTP {answer.status}: {text}")
        try:
            document = json.loads(answer.body)
        except ValueError:
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("access_token"), str):
            raise AuthError("token endpoint answered without an access_token")
        KNOWN.remember(document["access_token"])
        return document


class ClientCredentials(CachedToken):
    """OAuth 2.0 client credentials (HTTP Basic client id/secret), cached for `expires_in`."""

    def __init__(self, params: Mapping[str, str], timeout: float = 10.0) -> None:
        super().__init__(timeout)
        self._params = params

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if "scope" in self._params:
            form["scope"] = self._params["scope"]
        client = (self._params["client_id"], self._params["client_secret"])
        document = self._post_form(self._params["token_url"], form, client)
        try:
            return document["access_token"], float(document.get("expires_in", 3600))
        except (TypeError, ValueError):
            raise AuthError("token endpoint answered an expires_in that is not a number") from None


class JwtBearer(CachedToken):
    """Salesforce's OAuth 2.0 JWT bearer flow: an RS256 assertion (iss = consumer key, sub =
    user, aud = login host) traded at {login_url}/services/oauth2/token for an access token.

    Salesforce does not say how long the token lives, so it is kept for `TOKEN_LIFETIME` and
    fetched again at once after a 401."""

    TOKEN_LIFETIME = 1800.0
    GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    def __init__(self, params: Mapping[str, str], timeout: float = 10.0) -> None:
        super().__init__(timeout)
        self._params = params
        # A PEM key kept in one environment line often has its newlines written as "\\n".
        key = params["private_key"]
        self._key = key.replace("\\n", "\n") if "\n" not in key else key
        self._login_url = params.get("login_url", "https://login.salesforce.com").rstrip("/")

    def assertion(self, now: float | None = None) -> str:
        """The signed JWT the token endpoint expects (valid for three minutes)."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self._params["consumer_key"],
            "sub": self._params["username"],
            "aud": self._login_url,
            "exp": issued + 180,
        }
        try:
            return jwt.encode(claims, self._key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(f"cannot sign the JWT assertion: {type(exc).__name__}") from None

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": self.GRANT, "assertion": self.assertion()}
        document = self._post_form(f"{self._login_url}/services/oauth2/token", form)
        # Kept for the whole lifetime: the margin is for tokens whose end is known.
        return document["access_token"], self.TOKEN_LIFETIME + _EXPIRY_MARGIN


class HubSignature:
    """`X-Hub-Signature: sha1=<HMAC-SHA1 of the raw body>`, as some Medallia channels expect."""

    refreshable = False

    def __init__(self, params: Mapping[str, str]) -> None:
        self._secret = params["secret"].encode()

    def headers(self, request: OutboundRequest, deadline: float | None = None) -> dict[str, str]:
        digest = hmac.new(self._secret, request.body, hashlib.sha1).hexdigest()
        return {"X-Hub-Signature": f"sha1={digest}"}

    def invalidate(self) -> None:
        pass


AUTHENTICATORS: dict[str, Callable[[Mapping[str, str]], Authenticator]] = {
    "bearer": StaticBearer,
    "client_credentials": ClientCredentials,
    "hub_signature": HubSignature,
    "jwt_bearer": JwtBearer,
}


def make_authenticator(auth: AuthConfig) -> Authenticator:
    """The provider for a target's `auth` table (already checked by the config loader)."""
    return AUTHENTICATORS[auth.type](auth.params)
