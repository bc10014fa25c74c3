"""Recomputes the signature of a recorded request with the official signers, for `test_wire_shape.py`.

Why it exists: a request our CLI sent is only as good as the official signer's verdict on it. These
functions feed what `wire_recorder` received (method, raw path and query, the received header values) into
the pinned libraries' own signing code and return the Authorization header that code produces, so the test
compares it with the one that was sent. Nothing here reimplements a signature; the Rust code is never used.

- VOD ACS3-HMAC-SHA256: alibabacloud-tea-openapi's `Utils.get_authorization`, the function its `do_request`
  calls (vod-api.md §2.2). It signs the headers it is given, so it gets exactly the ones the request's
  `SignedHeaders` names, with their received values.
- OSS V4: alibabacloud-oss-v2's `SignerV4.sign` on an `HttpRequest` rebuilt from the record, at the time of
  the received `x-oss-date`, with the credential VOD issued (oss-api.md §6.3). The signer sets `x-oss-date`,
  `Date`, `x-oss-security-token` and `x-oss-content-sha256` itself; the test checks the received values of
  those separately.
"""

from __future__ import annotations

import datetime
import hashlib
from types import SimpleNamespace
from wire_recorder import Exchange

ACS3 = "ACS3-HMAC-SHA256"
OSS_V4 = "OSS4-HMAC-SHA256"


def parse_authorization(value: str, scheme: str) -> dict[str, str]:
    """`SCHEME k=v,k=v` → {k: v}; fields are split on `,` and trimmed (oss-api.md §6.3)."""
    found, _, fields = (value or "").partition(" ")
    if found != scheme:
        raise AssertionError(f"Authorization scheme is {found!r}, expected {scheme!r}: {value!r}")
    parsed = {}
    for item in fields.split(","):
        name, _, field_value = item.strip().partition("=")
        parsed[name] = field_value
    return parsed


def acs3_authorization(exchange: Exchange, access_key_id: str, secret: str) -> str:
    """The Authorization tea-openapi computes for this request (headers as named by its SignedHeaders)."""
    from alibabacloud_tea_openapi.utils import Utils

    signed = parse_authorization(exchange.header("authorization"), ACS3)["SignedHeaders"].split(";")
    headers = {}
    for name in signed:
        value = exchange.header(name)
        if value is None:
            raise AssertionError(f"SignedHeaders names {name!r}, which was not sent:\n{exchange.describe()}")
        headers[name] = value
    query = exchange.form_pairs()
    names = [name for name, _ in query]
    assert len(names) == len(set(names)), f"a query parameter is repeated: {names}"
    request = SimpleNamespace(
        method=exchange.method, pathname=exchange.path, query=dict(query), headers=headers
    )
    payload = hashlib.sha256(exchange.body).hexdigest()
    return Utils.get_authorization(request, ACS3, payload, access_key_id, secret)


def oss_v4_authorization(
    exchange: Exchange, bucket: str, key: str, access_key_id: str, secret: str, token: str | None, region: str
) -> str:
    """The Authorization alibabacloud-oss-v2's SignerV4 computes for this request."""
    from alibabacloud_oss_v2.credentials import StaticCredentialsProvider
    from alibabacloud_oss_v2.signer.v4 import SignerV4
    from alibabacloud_oss_v2.types import HttpRequest, SigningContext

    x_oss_date = exchange.header("x-oss-date")
    if not x_oss_date:
        raise AssertionError(f"no x-oss-date header:\n{exchange.describe()}")
    signing_time = datetime.datetime.strptime(x_oss_date, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    fields = parse_authorization(exchange.header("authorization"), OSS_V4)
    additional = fields.get("AdditionalHeaders")
    request = HttpRequest(
        exchange.method, f"https://{exchange.host}{exchange.target}", headers=dict(exchange.headers)
    )
    context = SigningContext(
        product="oss",
        region=region,
        bucket=bucket,
        key=key,
        request=request,
        credentials=StaticCredentialsProvider(access_key_id, secret, token).get_credentials(),
        signing_time=signing_time,
        additional_headers=set(additional.split(";")) if additional else None,
    )
    SignerV4().sign(context)
    return request.headers["Authorization"]
