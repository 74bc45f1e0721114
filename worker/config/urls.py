"""The URLs the relay calls (targets' `base_url`, token endpoints' `token_url` and
`login_url`), checked at start-up: they carry credentials and events, so https is required
outside loopback unless the target says `allow_http = true`."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def http_url_problems(value: str, where: str, allow_http: bool = False) -> list[str]:
    """What is wrong with an http(s) URL the relay will call: no scheme or host, credentials
    in it (they belong in `auth`, as ${ENV} secrets), spaces and control characters, or plain
    http to a host outside loopback (unless the target says `allow_http = true`)."""
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError:  # e.g. a port that is not a number
        return [f"{where}: not a URL"]
    if parts.scheme not in ("http", "https") or not host:
        return [f"{where}: must be an http(s) URL with a host, got {value!r}"]
    if parts.username is not None or parts.password is not None:
        return [f"{where}: must not carry credentials (user:password@); put them in auth"]
    if any(c.isspace() or not c.isprintable() for c in value):
        return [f"{where}: must not contain spaces or control characters"]
    if parts.scheme == "http" and not allow_http and not is_loopback(host):
        target = ".".join(where.split(".")[:2])
        return [
            f"{where}: http:// sends the credentials and the events in clear text to {host}; "
            f"use https://, or set allow_http = true in [{target}] (a sandbox on a private "
            "network; loopback addresses need nothing)"
        ]
    return []


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
