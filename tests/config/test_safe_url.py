"""What output and logs show of a Redis URL: its addresses, never a password, wherever the URL
carries one (the userinfo, `?password=`, `&password=`, every address of a sentinel:// list)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.settings import safe_url

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://:s3cret@h:6379/0", "redis://***@h:6379/0"),
        ("redis://relay-worker:s3cret@h:6379/0", "redis://relay-worker:***@h:6379/0"),
        ("redis://h:6379/0?password=s3cret", "redis://h:6379/0?password=***"),
        (
            "rediss://h:6380/1?ssl_cert_reqs=required&password=s3cret",
            "rediss://h:6380/1?ssl_cert_reqs=required&password=***",
        ),
        (
            "rediss://u:s3cret@h/0?ssl_ca_certs=/etc/tls/ca.crt&sentinel_password=s3cret2",
            "rediss://u:***@h/0?ssl_ca_certs=/etc/tls/ca.crt&sentinel_password=***",
        ),
        (
            "sentinel://:s3cret@h1:26379/0;sentinel://:s3cret@h2:26379/0?password=s3cret",
            "sentinel://***@h1:26379/0;sentinel://***@h2:26379/0?password=***",
        ),
        ("unix://:s3cret@/run/redis.sock?db=2", "unix://***@/run/redis.sock?db=2"),
        ("redis://h/0?PASSWORD=s3cret&db=1", "redis://h/0?PASSWORD=***&db=1"),
    ],
)
def test_a_url_is_shown_with_its_addresses_and_without_its_passwords(url: str, shown: str) -> None:
    assert safe_url(url) == shown


secrets = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!$&'()*+,;=:@/?#%", min_size=1)
hosts = st.sampled_from(["h", "redis.relay.svc", "10.0.0.7", "[::1]"])
schemes = st.sampled_from(["redis", "rediss", "sentinel", "unix"])
keys = st.sampled_from(["password", "sentinel_password", "Password"])


@given(
    secret=secrets,
    host=hosts,
    scheme=schemes,
    key=keys,
    where=st.sampled_from(["userinfo", "query", "both"]),
    before=st.sampled_from(["", "db=1&", "ssl_cert_reqs=required&"]),
)
def test_no_password_survives_wherever_it_is_written(
    secret: str, host: str, scheme: str, key: str, where: str, before: str
) -> None:
    # given a URL carrying a password (percent-encoded, as a URL must), in either place
    encoded = "Zq9" + quote(secret, safe="")
    userinfo = f"user:{encoded}@" if where in ("userinfo", "both") else ""
    query = f"?{before}{key}={encoded}" if where in ("query", "both") else ""
    url = f"{scheme}://{userinfo}{host}:6379/0{query}"

    # when it is shown, alone or in a sentinel list
    shown = safe_url(url)
    listed = safe_url(f"{url};{url}")

    # then the password is in neither (nor its decoded form), and the host still is
    assert encoded not in shown and encoded not in listed
    assert host in shown
