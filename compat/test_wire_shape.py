"""Our upload CLI sends requests shaped like the official clients', so it works against the real cloud.

The other compat tests run the official clients against `vodup serve`. This file checks the other
direction. `vodup upload video` talks to `wire_recorder`, an HTTPS stand-in for `vod.cn-shanghai.aliyuncs.com`
and `<bucket>.oss-cn-shanghai.aliyuncs.com`. It reaches it through `VODUP_RESOLVE`, and it trusts a throwaway
CA through `VODUP_CA_FILE`. The recorder keeps every request, and the checks then run on those records:

- VOD (vod-api.md §2.2): each request's ACS3-HMAC-SHA256 Authorization is recomputed by
  alibabacloud-tea-openapi's own `get_authorization`. SignedHeaders must cover what tea signs. The host must
  be `vod.cn-shanghai.aliyuncs.com`, and the params must be RFC 3986-encoded in the query.
- OSS (oss-api.md §1, §2, §6.3): each request's V4 Authorization is recomputed by alibabacloud-oss-v2's
  SignerV4 with the STS secret the recorder issued. The request must be virtual-host style and carry the
  issued token, `x-oss-date`, `Date` and `x-oss-content-sha256: UNSIGNED-PAYLOAD`.
- Shape (oss-api.md §8, §9.2): alibabacloud-oss-v2's Uploader uploads the same file with the same
  credential, part size and parallelism, against the same recorder. Per operation, the method, decoded
  path and decoded query (upload id normalised) must be equal as multisets. Initiate must come first and
  Complete last. Headers are printed side by side for the record, not compared.
- Result: the `--json` result line names the issued VideoId, and its Crc64 is the file's CRC-64/XZ. The
  recorder holds the file byte for byte.

`test_official_clients_pass_the_recorders_checks` runs the same checks on tea and v2 themselves. It keeps
the checker honest, and it runs even when the CLI is missing.
"""

from __future__ import annotations

import collections
import datetime
import email.utils
import hashlib
import json
import os
import random
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote_plus

import alibabacloud_oss_v2 as oss
import pytest
from conftest import absent, vodup_bin
from wire_recorder import (
    OSS_HOST, REGION, VOD_HOST, Exchange, IssuedUpload, Recorder, crc64, make_certificates,
)  # fmt: skip
from wire_signatures import ACS3, OSS_V4, acs3_authorization, oss_v4_authorization, parse_authorization

KIB = 1024
PART_SIZE = 100 * KIB
PARALLEL = 2
CLI_TIMEOUT_S = 120
CLOCK_SKEW = datetime.timedelta(minutes=15)  # what both services tolerate (vod-api.md §1, oss-api.md §6.7)
# tea-openapi signs every header it sets. Two of them describe its own credential chain and are not
# required by the service: x-acs-credentials-provider, and x-acs-accesskey-id with STS. Our CLI must sign the
# rest (vod-api.md §2.2), plus x-acs-security-token when it has a token.
TEA_ONLY_HINTS = {"x-acs-credentials-provider", "x-acs-accesskey-id"}
ACS3_MUST_SIGN = {
    "host", "x-acs-version", "x-acs-action", "user-agent", "x-acs-date", "x-acs-signature-nonce", "accept",
    "x-acs-content-sha256",
}  # fmt: skip
UNRESERVED = re.compile(r"^(?:[A-Za-z0-9\-_.~]|%[0-9A-F]{2})*$")


# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def wire_certificates(tmp_path_factory):
    """One throwaway CA and server certificate per test session (openssl CLI)."""
    return make_certificates(tmp_path_factory.mktemp("wire-certs"))


@pytest.fixture
def recorder(request, wire_certificates):
    """A fresh recorder on 127.0.0.1:0; a failing test shows every request it received."""
    instance = Recorder(wire_certificates).start()
    request.node.failure_sections = [("requests the recorder received", instance.dump)]
    yield instance
    instance.stop()
    assert not instance.internal_errors, "the recorder failed:\n" + "\n".join(instance.internal_errors)


@pytest.fixture
def official_clients(recorder, wire_certificates, redirect_host, monkeypatch):
    """tea and alibabacloud-oss-v2 in this process, reaching the recorder by the real names over TLS."""
    for host in (VOD_HOST, f"{recorder.bucket}.{OSS_HOST}", OSS_HOST):
        redirect_host(host, 443, recorder.address)
    # v2 sends with requests and verify=True, so requests takes the bundle from the environment.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(wire_certificates.ca))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return OfficialClients(wire_certificates.ca)


@pytest.fixture
def vodup_upload():
    """The `vodup` binary, if it has the `upload` subcommand (skipped loudly otherwise)."""
    binary = vodup_bin()
    probe = subprocess.run(
        [str(binary), "upload", "video", "--help"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        absent(f"{binary} has no `upload video` subcommand yet: {probe.stderr.strip()[:300]}")
    return binary


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# --------------------------------------------------------------------------------------------------
# The official clients, for reference runs


class OfficialClients:
    """tea and alibabacloud-oss-v2 set up to reach the recorder (see the `official_clients` fixture)."""

    def __init__(self, ca: Path):
        self.ca = ca

    def tea_call(self, action: str, params: dict, ak: str, secret: str, token: str | None = None) -> dict:
        """One alibabacloud_vod20170321 call (default ACS3) to https://vod.cn-shanghai.aliyuncs.com."""
        from alibabacloud_tea_openapi.utils_models import Config
        from alibabacloud_vod20170321 import models
        from alibabacloud_vod20170321.client import Client

        config = Config(
            access_key_id=ak, access_key_secret=secret, security_token=token, endpoint=VOD_HOST,
            region_id=REGION, ca=str(self.ca), read_timeout=10000, connect_timeout=5000,
        )  # fmt: skip
        client = Client(config)
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
        request = getattr(models, f"{action}Request")().from_map(params)
        return getattr(client, snake)(request).body.to_map()

    def v2_upload(self, issued: IssuedUpload, source: Path) -> oss.UploadResult:
        """alibabacloud-oss-v2's Uploader with the issued STS credential, as our CLI is asked to upload."""
        auth = issued.auth
        cfg = oss.config.load_default()
        cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
            auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"]
        )
        cfg.region = auth["Region"]
        cfg.endpoint = issued.address["Endpoint"]
        cfg.retry_max_attempts = 1  # a retry would hide a refused request
        uploader = oss.Client(cfg).uploader(part_size=PART_SIZE, parallel_num=PARALLEL)
        return uploader.upload_file(
            oss.PutObjectRequest(bucket=issued.bucket, key=issued.key), filepath=str(source)
        )


# --------------------------------------------------------------------------------------------------
# Running the CLI


@dataclass
class CliRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def result_line(self) -> dict:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"no --json output\n{self}"
        try:
            events = [json.loads(line) for line in lines]
        except ValueError as error:
            raise AssertionError(f"a --json line is not JSON ({error})\n{self}") from None
        assert events[-1].get("Event") == "result", f"the last line is not the result event\n{self}"
        return events[-1]

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode}\n--- stdout\n{self.stdout[-6000:]}"
            f"\n--- stderr\n{self.stderr[-6000:]}"
        )


def run_cli(binary: Path, source: Path, recorder: Recorder, ca: Path, tmp: Path, credentials: dict) -> CliRun:
    """`vodup upload video SOURCE --region cn-shanghai --json ...`; the real names resolve to the recorder."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    ambient = ("ALIBABA_CLOUD_", "ALIYUN_", "VODUP_")
    proxies = {"https_proxy", "http_proxy", "all_proxy", "no_proxy"}
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(ambient) and name.lower() not in proxies
    }
    env.update(credentials)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        VODUP_CA_FILE=str(ca),
        VODUP_RESOLVE=",".join(
            f"{host}={recorder.address}" for host in (VOD_HOST, f"{recorder.bucket}.{OSS_HOST}", OSS_HOST)
        ),
    )
    args = [
        str(binary), "upload", "video", str(source), "--region", REGION, "--json",
        "--part-size", f"{PART_SIZE // KIB}K", "--parallel", str(PARALLEL), "--no-resume",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env, cwd=tmp,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as timeout:  # subprocess.run has killed it
        pytest.fail(
            f"vodup upload did not finish within {CLI_TIMEOUT_S} s (killed)\nstdout: {timeout.stdout!r}"
            f"\nstderr: {timeout.stderr!r}\n{recorder.dump()}",
            pytrace=False,
        )
    return CliRun(args, done.returncode, done.stdout, done.stderr)


# --------------------------------------------------------------------------------------------------
# Checks on single requests


def _within_skew(moment: datetime.datetime, what: str, exchange: Exchange) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs(now - moment) < CLOCK_SKEW, f"{what} is {moment}, now is {now}\n{exchange.describe()}"


def _rfc3986_query(exchange: Exchange) -> None:
    """Every name and value is percent-encoded RFC 3986 style: unreserved kept, `%XX` upper-case, no `+`."""
    for item in filter(None, exchange.raw_query.split("&")):
        for part in item.split("=", 1):
            assert UNRESERVED.match(part), (
                f"query item {item!r} is not RFC 3986-encoded (the service reads {part!r} as"
                f" {unquote_plus(part)!r}, which RFC 3986 writes {quote(unquote_plus(part), safe='~')!r})\n"
                f"{exchange.describe()}"
            )


def _utc(text: str, layout: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, layout).replace(tzinfo=datetime.timezone.utc)


def vod_checks(
    exchange: Exchange, ak: str, secret: str, token: str | None, nonces: set, rfc3986: bool = True
) -> list:
    """The checks of one VOD request, as (title, check) pairs: shaped like tea's ACS3 call, and tea's own
    signer agrees with its Authorization. Our CLI encodes the query RFC 3986 style (its contract); tea
    itself sends a space as `+` (rfc3986=False), which VOD accepts too: it decodes the query with form
    rules (vod-api.md §1)."""
    where = exchange.describe()

    def headers():
        assert exchange.host == VOD_HOST, f"Host is {exchange.host!r}, expected {VOD_HOST!r}\n{where}"
        assert (exchange.method, exchange.raw_path) == ("POST", "/"), f"not POST /\n{where}"
        assert exchange.header("x-acs-version") == "2017-03-21", f"x-acs-version\n{where}"
        assert exchange.header("x-acs-action") in ("CreateUploadVideo", "RefreshUploadVideo"), where
        assert exchange.header("accept") == "application/json", f"accept\n{where}"
        assert exchange.header("user-agent"), f"no user-agent\n{where}"
        date = exchange.header("x-acs-date") or ""
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", date), f"x-acs-date {date!r}\n{where}"
        _within_skew(_utc(date, "%Y-%m-%dT%H:%M:%SZ"), "x-acs-date", exchange)
        nonce = exchange.header("x-acs-signature-nonce")
        assert nonce and nonce not in nonces, f"x-acs-signature-nonce missing or reused\n{where}"
        nonces.add(nonce)
        body_hash = hashlib.sha256(exchange.body).hexdigest()
        content_hash = exchange.header("x-acs-content-sha256")
        assert content_hash == body_hash, f"x-acs-content-sha256 is not SHA-256(body)\n{where}"
        sent_token = exchange.header("x-acs-security-token")
        assert sent_token == token, f"x-acs-security-token is {sent_token!r}, expected {token!r}\n{where}"

    def query():
        params = {name for name, _ in exchange.form_pairs()}
        assert not {"Action", "Version", "Signature", "AccessKeyId", "SignatureNonce"} & params, (
            f"ACS3 carries only the API params in the query\n{where}"
        )
        if rfc3986:
            _rfc3986_query(exchange)

    def signed_headers():
        fields = parse_authorization(exchange.header("authorization"), ACS3)
        assert fields.get("Credential") == ak, f"Credential is not the AccessKeyId {ak}\n{where}"
        signed = set(fields.get("SignedHeaders", "").split(";"))
        must = ACS3_MUST_SIGN | ({"x-acs-security-token"} if token else set())
        assert must <= signed, f"SignedHeaders lacks {sorted(must - signed)}\n{where}"
        unsigned = {name for name in exchange.header_names if name.startswith("x-acs-")} - signed
        assert not unsigned, f"x-acs-* headers sent unsigned (tea signs all): {sorted(unsigned)}\n{where}"

    def signature():
        sent = exchange.header("authorization")
        expected = acs3_authorization(exchange, ak, secret)
        assert sent == expected, (
            f"ACS3 Authorization differs from tea-openapi's\n sent:     {sent}\n"
            f" tea says: {expected}\n{where}"
        )

    return [
        ("headers", headers), ("query", query), ("SignedHeaders", signed_headers), ("signature", signature),
    ]  # fmt: skip


def oss_checks(exchange: Exchange, issued: IssuedUpload):
    """The checks of one OSS request, as (title, check) pairs: virtual-host style, v2's headers, and v2's
    SignerV4 agrees with its Authorization."""
    where = exchange.describe()
    auth = issued.auth

    def address():
        assert exchange.host == f"{issued.bucket}.{OSS_HOST}", f"not virtual-host style\n{where}"
        assert exchange.path == "/" + issued.key, f"path is not /<key>\n{where}"
        raw = "/" + quote(issued.key, safe="/~")
        assert exchange.raw_path == raw, f"key not encoded like v2 (`/` literal)\n{where}"
        _rfc3986_query(exchange)

    def headers():
        assert exchange.header("x-oss-content-sha256") == "UNSIGNED-PAYLOAD", f"x-oss-content-sha256\n{where}"
        token = exchange.header("x-oss-security-token")
        assert token == auth["SecurityToken"], f"x-oss-security-token is not the issued token\n{where}"
        x_oss_date = exchange.header("x-oss-date") or ""
        assert re.fullmatch(r"\d{8}T\d{6}Z", x_oss_date), f"x-oss-date {x_oss_date!r}\n{where}"
        moment = _utc(x_oss_date, "%Y%m%dT%H%M%SZ")
        _within_skew(moment, "x-oss-date", exchange)
        date = exchange.header("date")
        assert date, f"no Date header (v2 always sends one)\n{where}"
        assert email.utils.parsedate_to_datetime(date) == moment, f"Date and x-oss-date disagree\n{where}"
        if exchange.method in ("PUT", "POST") and not exchange.chunked:
            assert exchange.header("content-length") == str(len(exchange.body)), f"Content-Length\n{where}"

    def signature():
        sent = exchange.header("authorization")
        fields = parse_authorization(sent, OSS_V4)
        x_oss_date = exchange.header("x-oss-date") or ""
        scope = f"{auth['AccessKeyId']}/{x_oss_date[:8]}/{auth['Region']}/oss/aliyun_v4_request"
        assert fields.get("Credential") == scope, f"Credential should be {scope}\n{where}"
        expected = oss_v4_authorization(
            exchange, issued.bucket, issued.key, auth["AccessKeyId"], auth["AccessKeySecret"],
            auth["SecurityToken"], auth["Region"],
        )  # fmt: skip
        assert parse_authorization(expected, OSS_V4) == fields, (
            f"V4 Authorization differs from alibabacloud-oss-v2's\n sent:    {sent}\n"
            f" v2 says: {expected}\n{where}"
        )

    return [("address", address), ("headers", headers), ("signature", signature)]


def check_vod_request(*args, **kwargs) -> None:
    for _, check in vod_checks(*args, **kwargs):
        check()


def check_oss_request(*args) -> None:
    for _, check in oss_checks(*args):
        check()


# --------------------------------------------------------------------------------------------------
# Checks on whole uploads


def shape(exchange: Exchange) -> tuple:
    """What must match v2: operation, method, decoded path, decoded query with the upload id normalised."""
    pairs = exchange.query_pairs()
    query = tuple(sorted((name, "<UploadId>" if name == "uploadId" else value) for name, value in pairs))
    return (exchange.operation, exchange.method, exchange.path, query)


def check_upload_sequence(oss_exchanges: list[Exchange], data: bytes, issued: IssuedUpload, who: str) -> None:
    """Multipart: Initiate first, parts of PART_SIZE with bodies that rebuild the file, Complete last,
    listing every part in order with the ETags the recorder returned. Small files: one PutObject."""
    operations = [exchange.operation for exchange in oss_exchanges]
    listing = "\n".join(exchange.request_line() for exchange in oss_exchanges)
    if len(data) < PART_SIZE:
        assert operations == ["PutObject"], f"{who}: expected one PutObject:\n{listing}"
        assert oss_exchanges[0].body == data
        return
    count = -(-len(data) // PART_SIZE)
    expected = ["InitiateMultipartUpload"] + ["UploadPart"] * count + ["CompleteMultipartUpload"]
    assert operations[0] == expected[0] and operations[-1] == expected[-1], (
        f"{who}: Initiate must come first and Complete last:\n{listing}"
    )
    assert sorted(operations) == sorted(expected), f"{who}: expected {count} parts:\n{listing}"
    uploads = [e for e in oss_exchanges if e.operation == "UploadPart"]
    parts = {int(dict(e.query_pairs())["partNumber"]): e for e in uploads}
    assert sorted(parts) == list(range(1, count + 1)), f"{who}: part numbers {sorted(parts)}"
    for number, exchange in parts.items():
        expected = data[(number - 1) * PART_SIZE : number * PART_SIZE]
        assert exchange.body == expected, f"{who}: part {number} is not bytes {(number - 1) * PART_SIZE}.."
        assert exchange.status == 200, exchange.describe()
    complete = oss_exchanges[-1]
    listed = [
        (int(part.findtext("PartNumber")), part.findtext("ETag"))
        for part in ET.fromstring(complete.body).iter("Part")
    ]
    returned = [(number, parts[number].response_header("ETag")) for number in sorted(parts)]
    assert listed == returned, f"{who}: Complete lists {listed}, UploadPart returned {returned}"
    assert complete.status == 200, complete.describe()


def compare_with_v2(ours: list[Exchange], theirs: list[Exchange]) -> None:
    """Per operation, the multiset of (method, decoded path, decoded query) must be v2's; every operation
    that differs is reported."""
    problems = []
    for operation in sorted({e.operation for e in ours} | {e.operation for e in theirs}):
        mine = collections.Counter(shape(e) for e in ours if e.operation == operation)
        v2 = collections.Counter(shape(e) for e in theirs if e.operation == operation)
        if mine != v2:
            lines = lambda exchanges: "\n".join(  # noqa: E731
                f"    {e.request_line()}" for e in exchanges if e.operation == operation
            )
            problems.append(
                f"{operation}: our request lines differ from alibabacloud-oss-v2's\n"
                f"  only ours: {sorted((mine - v2).elements())}\n"
                f"  only v2:   {sorted((v2 - mine).elements())}\n"
                f"  ours:\n{lines(ours)}\n  v2:\n{lines(theirs)}"
            )
    assert not problems, "\n".join(problems)


def shape_report(ours: list[Exchange], theirs: list[Exchange]) -> str:
    """Per operation: the request line and header names of ours and v2's (printed, for the record)."""
    out = []
    for label, exchanges in (("ours", ours), ("alibabacloud-oss-v2", theirs)):
        seen = set()
        for exchange in exchanges:
            if exchange.operation in seen:
                continue
            seen.add(exchange.operation)
            names = ", ".join(name for name, _ in exchange.headers)
            out.append(f"{label:>20} {exchange.operation}: {exchange.request_line()}")
            out.append(f"{'':>21}headers: {names}")
    return "\n".join(out)


class Findings:
    """Collects failed checks, so that one run of the CLI reports every mismatch, not only the first."""

    def __init__(self):
        self.problems: list[str] = []
        self._seen: set[tuple[str, str]] = set()

    def check(self, title: str, check, *args) -> bool:
        try:
            check(*args)
            return True
        except AssertionError as error:
            message = str(error)
            first_line = message.splitlines()[0] if message else ""
            if (title, first_line) not in self._seen:  # the same problem on every part is reported once
                self._seen.add((title, first_line))
                self.problems.append(f"[{title}] {message}")
            return False

    def assert_none(self) -> None:
        assert not self.problems, f"{len(self.problems)} check(s) failed:\n\n" + "\n\n".join(self.problems)


def check_cli_upload(
    binary: Path, source: Path, recorder: Recorder, clients: OfficialClients, tmp: Path, token: str | None
) -> None:
    data = source.read_bytes()
    ak, secret = "LTAI5t" + os.urandom(9).hex(), os.urandom(15).hex()
    credentials = {"ALIBABA_CLOUD_ACCESS_KEY_ID": ak, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}
    if token:
        credentials["ALIBABA_CLOUD_SECURITY_TOKEN"] = token
    findings = Findings()

    start = recorder.mark()
    run = run_cli(binary, source, recorder, clients.ca, tmp, credentials)
    ours = recorder.since(start)
    vod = [e for e in ours if e.service == "vod"]
    oss_ours = [e for e in ours if e.service == "oss"]

    def exits_zero():
        assert run.returncode == 0, f"vodup upload failed\n{run}"

    findings.check("exit status", exits_zero)

    # VOD: tea's signer agrees; the call is CreateUploadVideo with the file's name and size.
    nonces: set = set()
    for exchange in vod:
        for title, check in vod_checks(exchange, ak, secret, token, nonces):
            findings.check(f"VOD {exchange.operation} {title}", check)
    create = [e for e in vod if e.operation == "CreateUploadVideo" and e.status == 200]
    if len(create) != 1:
        findings.problems.append(f"expected one CreateUploadVideo, got:\n{recorder.dump(vod)}")
        findings.assert_none()
    params = dict(create[0].form_pairs())

    def create_params():
        assert {"Title", "FileName", "FileSize"} <= set(params), create[0].describe()
        assert params["FileSize"] == str(len(data)), create[0].describe()
        assert params["FileName"].endswith(".mp4"), create[0].describe()

    findings.check("CreateUploadVideo params", create_params)
    issued = recorder.issued[-1]

    # OSS: v2's signer agrees with each request, and together they rebuild the file.
    for exchange in oss_ours:
        for title, check in oss_checks(exchange, issued):
            findings.check(f"OSS {exchange.operation} {title}", check)
    findings.check("upload sequence", check_upload_sequence, oss_ours, data, issued, "vodup")

    def stored():
        assert recorder.objects.get((issued.bucket, issued.key)) == data, "the object is not the file"

    findings.check("stored object", stored)

    def result_line():
        result = run.result_line()
        assert result.get("VideoId") == issued.video_id, f"VideoId is not the issued one\n{run}"
        answered = {json.loads(e.response_body)["RequestId"] for e in vod}
        assert result.get("RequestId") in answered, f"RequestId is not one VOD answered ({answered})\n{run}"
        assert str(result.get("Crc64")) == str(crc64(data)), f"Crc64 is not the file's ({crc64(data)})\n{run}"

    if run.returncode == 0:
        findings.check("--json result", result_line)

    # Reference: tea makes the same call (SignedHeaders must cover tea's, less its credential-chain hints).
    start = recorder.mark()
    clients.tea_call("CreateUploadVideo", params, ak, secret, token)
    (tea_create,) = recorder.since(start)

    def signs_what_tea_signs():
        tea = set(parse_authorization(tea_create.header("authorization"), ACS3)["SignedHeaders"].split(";"))
        cli = set(parse_authorization(create[0].header("authorization"), ACS3)["SignedHeaders"].split(";"))
        missing = sorted(tea - TEA_ONLY_HINTS - cli)
        assert not missing, f"tea also signs {missing}\n{tea_create.describe()}"

    findings.check("SignedHeaders vs tea", signs_what_tea_signs)

    # Reference: v2's Uploader with the same file, credential, part size and parallelism.
    start = recorder.mark()
    result_v2 = clients.v2_upload(issued, source)
    theirs = recorder.since(start)
    assert int(result_v2.hash_crc64) == crc64(data)
    check_upload_sequence(theirs, data, issued, "alibabacloud-oss-v2")
    print(f"\nvodup VOD: {create[0].request_line()}\n{shape_report(oss_ours, theirs)}")
    findings.check("request lines vs alibabacloud-oss-v2", compare_with_v2, oss_ours, theirs)
    findings.assert_none()


# --------------------------------------------------------------------------------------------------
# Tests


def test_official_clients_pass_the_recorders_checks(recorder, official_clients, tmp_path):
    """tea (ACS3, with and without STS) and v2's Uploader (multipart and PutObject) against the recorder:
    every check used on our CLI accepts them, and v2's own CRC-64 checks accept the recorder's answers."""
    ak, secret = "LTAI5tReference0001", "referenceSecret0123456789abcdef"
    nonces: set = set()
    start = recorder.mark()
    params = {"Title": "wire shape 测试 *~+&=", "FileName": "a b+c.mp4", "FileSize": "358400"}
    created = official_clients.tea_call("CreateUploadVideo", params, ak, secret)
    refresh_params = {"VideoId": created["VideoId"]}
    official_clients.tea_call("RefreshUploadVideo", refresh_params, "STS.ref", secret, "tok+/=")
    first, refresh = recorder.since(start)
    check_vod_request(first, ak, secret, None, nonces, rfc3986=False)
    check_vod_request(refresh, "STS.ref", secret, "tok+/=", nonces, rfc3986=False)
    assert created["VideoId"] == recorder.issued[0].video_id

    issued = recorder.issued[-1]
    for size, seed in ((350 * KIB, 1), (50 * KIB, 2)):
        source = tmp_path / f"reference-{size}.mp4"
        source.write_bytes(random_bytes(size, seed))
        start = recorder.mark()
        result = official_clients.v2_upload(issued, source)
        exchanges = recorder.since(start)
        assert int(result.hash_crc64) == crc64(source.read_bytes())
        for exchange in exchanges:
            check_oss_request(exchange, issued)
        check_upload_sequence(exchanges, source.read_bytes(), issued, "alibabacloud-oss-v2")
        assert recorder.objects[(issued.bucket, issued.key)] == source.read_bytes()

    # A tampered request fails the checks, so a pass means something.
    tampered = exchanges[0]
    assert tampered.operation == "PutObject" and tampered.header("content-type") == "video/mp4"
    tampered.headers = [(k, "video/mp5" if k.lower() == "content-type" else v) for k, v in tampered.headers]
    with pytest.raises(AssertionError, match="differs from alibabacloud-oss-v2's"):
        check_oss_request(tampered, issued)
    first.target = first.target.replace("FileSize=358400", "FileSize=358401")
    with pytest.raises(AssertionError, match="differs from tea-openapi's"):
        check_vod_request(first, ak, secret, None, set(), rfc3986=False)


def test_cli_multipart_upload_is_shaped_like_the_official_clients(
    vodup_upload, recorder, official_clients, tmp_path
):
    """350 KiB with 100 KiB parts: Initiate, 4 UploadParts over 2 connections, Complete; no STS token."""
    source = tmp_path / "wire shape 测试.mp4"
    source.write_bytes(random_bytes(350 * KIB, seed=3))
    check_cli_upload(vodup_upload, source, recorder, official_clients, tmp_path, token=None)


def test_cli_put_object_upload_is_shaped_like_the_official_clients(
    vodup_upload, recorder, official_clients, tmp_path
):
    """50 KiB: one PutObject; the VOD call is made with an STS token (x-acs-security-token is signed)."""
    source = tmp_path / "small.mp4"
    source.write_bytes(random_bytes(50 * KIB, seed=4))
    token = "CAIS" + os.urandom(48).hex() + "+/=="
    check_cli_upload(vodup_upload, source, recorder, official_clients, tmp_path, token=token)
