"""A recording HTTPS stand-in for the Alibaba Cloud VOD and OSS endpoints, for `test_wire_shape.py`.

Why it exists: the compat suite's other tests prove that the official clients work against `vodup serve`.
This module proves the other direction: that our upload CLI sends requests shaped like the official clients'
ones, so that it works against the real cloud. A client that is pointed at `vod.cn-shanghai.aliyuncs.com` and
`<bucket>.oss-cn-shanghai.aliyuncs.com` (by DNS override) reaches this server over real TLS, with a
certificate for those names from a throwaway CA made per test by the `openssl` CLI.

What it owns: the TLS listener on 127.0.0.1:0, a record of every request exactly as received (method, raw
request target, headers in order and case, body, whether it was chunked), and realistic answers:
- VOD (`Host: vod.*`): CreateUploadVideo and RefreshUploadVideo with Base64-JSON UploadAddress/UploadAuth
  (vod-api.md §4, §10.3); any other action is a JSON error.
- OSS (any other host; virtual-host or path style): PutObject, InitiateMultipartUpload, UploadPart,
  CompleteMultipartUpload, ListParts and AbortMultipartUpload with the ETag, `x-oss-hash-crc64ecma` and XML
  bodies OSS sends (oss-api.md §3, §5); anything else is an OSS XML error. As OSS does, a Content-MD5 that
  does not match the body is refused (`InvalidDigest`), and Complete checks the listed parts and ETags.

What it does not do: check signatures. The answers never depend on them, so that a wrong signature shows up
as a precise mismatch in the test (recomputed with the official signers) rather than as a bare 403.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import http.server
import itertools
import json
import secrets
import socket
import ssl
import subprocess
import threading
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote

import crcmod

REGION = "cn-shanghai"
VOD_HOST = f"vod.{REGION}.aliyuncs.com"
OSS_HOST = f"oss-{REGION}.aliyuncs.com"
OSS_ENDPOINT = f"https://{OSS_HOST}"
# The names the server certificate covers (a wildcard for the virtual-host bucket names).
CERT_NAMES = (VOD_HOST, f"*.{OSS_HOST}", OSS_HOST)
CONNECTION_TIMEOUT_S = 30.0

# CRC-64/ECMA-182 in the XZ variant, as OSS reports it in x-oss-hash-crc64ecma (oss2's crcmod parameters).
_crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


def crc64(data: bytes) -> int:
    return _crc64(data)


# --------------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class Certificates:
    ca: Path  # PEM of the throwaway root (what VODUP_CA_FILE / REQUESTS_CA_BUNDLE get)
    cert: Path  # server certificate, SANs = CERT_NAMES
    key: Path


def make_certificates(folder: Path, names=CERT_NAMES) -> Certificates:
    """A P-256 root CA and a server certificate for `names`, made with the openssl CLI in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        result = subprocess.run(["openssl", *args], cwd=folder, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr}")

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/O=vodup compat/CN=vodup wire-shape throwaway CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    (folder / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
        f"subjectAltName={','.join('DNS:' + name for name in names)}\n"
    )
    openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={names[0]}")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", str(secrets.randbits(63)), "-days", "2", "-sha256",
        "-extfile", "server.ext", "-out", "server.pem",
    )  # fmt: skip
    return Certificates(ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key")


# --------------------------------------------------------------------------------------------------
# What was received


@dataclass
class Exchange:
    """One request as received, and the answer it got."""

    seq: int
    connection: int  # per TLS connection; equal numbers mean keep-alive reuse
    method: str
    target: str  # the raw request target: path and query exactly as sent
    headers: list[tuple[str, str]]  # in order, with the sender's case
    body: bytes
    chunked: bool
    service: str = ""  # "vod" or "oss"
    operation: str = ""  # CreateUploadVideo, PutObject, UploadPart, ... or "Unknown"
    status: int = 0
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""

    @property
    def raw_path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def raw_query(self) -> str:
        return self.target.partition("?")[2]

    @property
    def path(self) -> str:
        """The path, percent-decoded."""
        return unquote(self.raw_path)

    def query_pairs(self) -> list[tuple[str, str]]:
        """(name, value) pairs, percent-decoded; `+` is kept (OSS clients never send it for a space)."""
        if not self.raw_query:
            return []
        pairs = []
        for item in self.raw_query.split("&"):
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
        return pairs

    def form_pairs(self) -> list[tuple[str, str]]:
        """(name, value) pairs decoded with form rules, as VOD does (tea sends a space as `+`)."""
        return parse_qsl(self.raw_query, keep_blank_values=True)

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        """The one value of a header, None if absent; a repeated header is an error."""
        values = self.header_values(name)
        if len(values) > 1:
            raise AssertionError(f"header {name} sent {len(values)} times: {values}\n{self.describe()}")
        return values[0] if values else None

    @property
    def header_names(self) -> list[str]:
        return [key.lower() for key, _ in self.headers]

    @property
    def host(self) -> str:
        return (self.header("host") or "").lower()

    def response_header(self, name: str) -> str | None:
        values = [value for key, value in self.response_headers if key.lower() == name.lower()]
        return values[0] if values else None

    def request_line(self) -> str:
        return f"{self.method} {self.target}"

    def describe(self, body_limit: int = 600) -> str:
        title = f"[{self.service} {self.operation}] {self.request_line()}"
        lines = [f"#{self.seq} conn {self.connection} {title}"]
        lines += [f"    {key}: {value}" for key, value in self.headers]
        if self.chunked:
            lines.append("    (body was sent chunked)")
        if self.body:
            shown = self.body[:body_limit]
            text = shown.decode("utf-8", "replace") if _printable(shown) else f"<{len(self.body)} bytes>"
            lines.append(f"    body ({len(self.body)} bytes): {text}")
        lines.append(f"  -> {self.status}")
        lines += [f"    {key}: {value}" for key, value in self.response_headers]
        if self.response_body and (self.status >= 300 or self.service == "vod"):
            lines.append(f"    {self.response_body[:body_limit].decode('utf-8', 'replace')}")
        return "\n".join(lines)


def _printable(data: bytes) -> bool:
    try:
        return data.decode("utf-8").isprintable() or b"<" in data[:2]
    except UnicodeDecodeError:
        return False


@dataclass
class IssuedUpload:
    """An UploadAddress/UploadAuth pair this recorder handed out (decoded)."""

    video_id: str
    address: dict
    auth: dict

    @property
    def bucket(self) -> str:
        return self.address["Bucket"]

    @property
    def key(self) -> str:
        return self.address["FileName"]


@dataclass
class _Upload:
    bucket: str
    key: str
    parts: dict[int, bytes] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# The server


class Recorder:
    """The recording server. `start()` binds 127.0.0.1:0; `stop()` closes it; `exchanges` is the log."""

    def __init__(self, certificates: Certificates):
        self.certificates = certificates
        # One bucket per recorder, as VOD uses one per account and region; known before the first call, so
        # a client's DNS override can name it.
        self.bucket = f"outin-{secrets.token_hex(16)}"
        self.exchanges: list[Exchange] = []
        self.issued: list[IssuedUpload] = []
        self.internal_errors: list[str] = []  # tracebacks from the handlers (a test fails on any)
        self.tls_errors: list[str] = []  # failed handshakes (an untrusted CA shows up here)
        self.objects: dict[tuple[str, str], bytes] = {}
        self.uploads: dict[str, _Upload] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._connections = itertools.count(1)
        # Open client connections, closed by stop(): clients pool keep-alive connections per host name
        # process-wide (tea does), and must not reach a stopped recorder's handler through them.
        self._open: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "Recorder":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificates.cert, self.certificates.key)
        context.set_alpn_protocols(["http/1.1"])
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.recorder = self
        self._server.tls = context
        self._thread = threading.Thread(target=self._server.serve_forever, name="wire-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ---- the log -----------------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the log; `since(mark)` returns what arrived after it."""
        with self._lock:
            return len(self.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        """The exchanges after `mark`, in arrival order (the log itself is in completion order)."""
        with self._lock:
            return sorted(self.exchanges[mark:], key=lambda exchange: exchange.seq)

    def dump(self, exchanges: list[Exchange] | None = None) -> str:
        chosen = self.exchanges if exchanges is None else exchanges
        text = "\n".join(exchange.describe() for exchange in chosen) or "(no requests)"
        if self.tls_errors:
            text += "\nTLS handshake failures:\n" + "\n".join(self.tls_errors)
        if self.internal_errors:
            text += "\nrecorder internal errors:\n" + "\n".join(self.internal_errors)
        return text

    def issued_for(self, access_key_id: str) -> IssuedUpload | None:
        with self._lock:
            for issued in self.issued:
                if issued.auth["AccessKeyId"] == access_key_id:
                    return issued
        return None

    # ---- VOD ---------------------------------------------------------------------------------

    def issue(self, file_name: str, video_id: str | None = None) -> IssuedUpload:
        """A new upload credential (and, without video_id, a new video and object key)."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        with self._lock:
            previous = next((i for i in self.issued if i.video_id == video_id), None) if video_id else None
        if previous is not None:
            address = dict(previous.address)
        else:
            video_id = secrets.token_hex(16)
            extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else "mp4"
            stem = f"{secrets.token_hex(4)}-{int(now.timestamp() * 1000):x}"
            address = {
                "Endpoint": OSS_ENDPOINT,
                "Bucket": self.bucket,
                "FileName": f"sv/{stem}/{stem}.{extension}",
            }
        token_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
        auth = {  # the key order of real answers (vod-api.md §4)
            "SecurityToken": "CAIS" + "".join(secrets.choice(token_chars) for _ in range(300)) + "==",
            "AccessKeyId": "STS.NU" + secrets.token_hex(12),
            "ExpireUTCTime": (now + datetime.timedelta(seconds=3600)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "AccessKeySecret": base64.b64encode(secrets.token_bytes(30)).decode().replace("/", "x"),
            "Expiration": "3600",
            "Region": REGION,
        }
        issued = IssuedUpload(video_id=video_id, address=address, auth=auth)
        with self._lock:
            self.issued.append(issued)
        return issued

    def _vod(self, exchange: Exchange):
        params = dict(exchange.form_pairs())
        action = exchange.header("x-acs-action") or params.get("Action", "")
        exchange.operation = action or "Unknown"
        request_id = _vod_request_id()
        if action == "CreateUploadVideo":
            issued = self.issue(params.get("FileName", "video.mp4"))
        elif action == "RefreshUploadVideo":
            known = {i.video_id for i in self.issued}
            if params.get("VideoId") not in known:
                return _vod_error(request_id, 404, "InvalidVideo.NotFound", "The video does not exist.")
            issued = self.issue("", video_id=params["VideoId"])
        else:
            return _vod_error(
                request_id, 404, "InvalidAction.NotFound", f"Specified api is not found ({action!r})."
            )
        answer = {
            "RequestId": request_id,
            "VideoId": issued.video_id,
            "UploadAddress": _b64_json(issued.address),
            "UploadAuth": _b64_json(issued.auth),
        }
        return _json_response(200, request_id, answer)

    # ---- OSS ---------------------------------------------------------------------------------

    def _oss(self, exchange: Exchange):
        host = exchange.host.split(":")[0]
        path = exchange.path
        if host.endswith("." + OSS_HOST):
            bucket, key = host[: -len(OSS_HOST) - 1], path[1:]
        else:  # path style
            bucket, _, key = path[1:].partition("/")
        params = dict(exchange.query_pairs())
        method = exchange.method
        with self._lock:
            known_buckets = {issued.bucket for issued in self.issued}
        if bucket not in known_buckets:
            return _oss_error(404, "NoSuchBucket", "The specified bucket does not exist.", bucket=bucket)
        encoding = params.get("encoding-type")
        content_md5 = exchange.header("content-md5")
        if content_md5 is not None and content_md5 != _md5_base64(exchange.body):
            return _oss_error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        if method == "PUT" and "partNumber" in params and "uploadId" in params:
            exchange.operation = "UploadPart"
            return self._upload_part(exchange, bucket, key, params)
        if method == "PUT" and not params:
            exchange.operation = "PutObject"
            with self._lock:
                self.objects[(bucket, key)] = exchange.body
            return _object_written(exchange.body)
        if method == "POST" and "uploads" in params and "uploadId" not in params:
            exchange.operation = "InitiateMultipartUpload"
            upload_id = secrets.token_hex(16).upper()
            with self._lock:
                self.uploads[upload_id] = _Upload(bucket, key)
            body = _xml(
                "InitiateMultipartUploadResult",
                [("Bucket", bucket), ("Key", _key_out(key, encoding)), ("UploadId", upload_id)]
                + ([("EncodingType", encoding)] if encoding else []),
            )
            return 200, [("Content-Type", "application/xml")], body
        if method == "POST" and "uploadId" in params:
            exchange.operation = "CompleteMultipartUpload"
            return self._complete(exchange, bucket, key, params, encoding)
        if method == "GET" and "uploadId" in params:
            exchange.operation = "ListParts"
            return self._list_parts(bucket, key, params, encoding)
        if method == "DELETE" and "uploadId" in params:
            exchange.operation = "AbortMultipartUpload"
            with self._lock:
                upload = self.uploads.pop(params["uploadId"], None)
            if upload is None:
                return _no_such_upload(params["uploadId"])
            return 204, [], b""
        exchange.operation = "Unknown"
        return _oss_error(405, "MethodNotAllowed", f"{method} {exchange.target} is not on the upload path.")

    def _upload(self, bucket: str, key: str, upload_id: str) -> _Upload | None:
        upload = self.uploads.get(upload_id)
        if upload is None or (upload.bucket, upload.key) != (bucket, key):
            return None
        return upload

    def _upload_part(self, exchange: Exchange, bucket: str, key: str, params: dict):
        try:
            number = int(params["partNumber"])
        except ValueError:
            number = 0
        if not 1 <= number <= 10000:
            return _oss_error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000.")
        with self._lock:
            upload = self._upload(bucket, key, params["uploadId"])
            if upload is not None:
                upload.parts[number] = exchange.body
        if upload is None:
            return _no_such_upload(params["uploadId"])
        return _object_written(exchange.body)

    def _complete(self, exchange: Exchange, bucket: str, key: str, params: dict, encoding: str | None):
        upload_id = params["uploadId"]
        try:
            root = ET.fromstring(exchange.body)
            listed = [
                (int(part.findtext("PartNumber")), (part.findtext("ETag") or "").strip())
                for part in root.iter("Part")
            ]
        except (ET.ParseError, TypeError, ValueError):
            return _oss_error(400, "MalformedXML", "The XML you provided was not well-formed.")
        with self._lock:
            upload = self._upload(bucket, key, upload_id)
            if upload is None:
                return _no_such_upload(upload_id)
            numbers = [number for number, _ in listed]
            if not listed or numbers != sorted(set(numbers)):
                return _oss_error(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
            for number, etag in listed:
                body = upload.parts.get(number)
                if body is None or etag.strip('"').upper() != _md5_hex(body):
                    return _oss_error(400, "InvalidPart", f"Part {number} was not found or its ETag differs.")
            data = b"".join(upload.parts[number] for number in numbers)
            digest = hashlib.md5(b"".join(hashlib.md5(upload.parts[n]).digest() for n in numbers))
            del self.uploads[upload_id]
            self.objects[(bucket, key)] = data
        etag = f'"{digest.hexdigest().upper()}-{len(numbers)}"'
        body = _xml(
            "CompleteMultipartUploadResult",
            ([("EncodingType", encoding)] if encoding else [])
            + [
                ("Location", f"{OSS_ENDPOINT.replace('://', '://' + bucket + '.')}/{quote(key)}"),
                ("Bucket", bucket),
                ("Key", _key_out(key, encoding)),
                ("ETag", etag),
            ],
        )
        headers = [
            ("Content-Type", "application/xml"),
            ("ETag", etag),
            ("x-oss-hash-crc64ecma", str(crc64(data))),
        ]
        return 200, headers, body

    def _list_parts(self, bucket: str, key: str, params: dict, encoding: str | None):
        with self._lock:
            upload = self._upload(bucket, key, params["uploadId"])
            parts = dict(upload.parts) if upload else None
        if parts is None:
            return _no_such_upload(params["uploadId"])
        marker = int(params.get("part-number-marker") or 0)
        limit = int(params.get("max-parts") or 1000)
        after = [number for number in sorted(parts) if number > marker]
        page, truncated = after[:limit], len(after) > limit
        modified = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        children = ([("EncodingType", encoding)] if encoding else []) + [
            ("Bucket", bucket),
            ("Key", _key_out(key, encoding)),
            ("UploadId", params["uploadId"]),
            ("PartNumberMarker", str(marker)),
            ("NextPartNumberMarker", str(page[-1] if page else marker)),
            ("MaxParts", str(limit)),
            ("IsTruncated", "true" if truncated else "false"),
        ]
        for number in page:
            body = parts[number]
            children.append(
                (
                    "Part",
                    [
                        ("PartNumber", str(number)),
                        ("LastModified", modified),
                        ("ETag", f'"{_md5_hex(body)}"'),
                        ("HashCrc64ecma", str(crc64(body))),
                        ("Size", str(len(body))),
                    ],
                )
            )
        return 200, [("Content-Type", "application/xml")], _xml("ListPartsResult", children)

    # ---- dispatch ----------------------------------------------------------------------------

    def handle(self, exchange: Exchange):
        """(status, headers, body) for one request; every answer gets the common headers."""
        exchange.service = "vod" if exchange.host.split(":")[0].startswith("vod.") else "oss"
        try:
            status, headers, body = self._vod(exchange) if exchange.service == "vod" else self._oss(exchange)
        except Exception:  # a recorder bug: answer 500 and make the test fail with the traceback
            failure = f"#{exchange.seq} {exchange.request_line()}\n{traceback.format_exc()}"
            self.internal_errors.append(failure)
            status, headers, body = _oss_error(500, "InternalError", "recorder failure (see the test log)")
        common = [("Date", email.utils.formatdate(usegmt=True)), ("Content-Length", str(len(body)))]
        if exchange.service == "oss":
            common += [("Server", "AliyunOSS"), ("x-oss-request-id", secrets.token_hex(12).upper())]
        return status, common + headers, body


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


def _md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _object_written(body: bytes):
    """The answer to PutObject and UploadPart: ETag = quoted upper-case MD5, CRC-64 and Content-MD5."""
    return (
        200,
        [
            ("ETag", f'"{_md5_hex(body)}"'),
            ("Content-MD5", _md5_base64(body)),
            ("x-oss-hash-crc64ecma", str(crc64(body))),
        ],
        b"",
    )


def _key_out(key: str, encoding: str | None) -> str:
    return quote(key, safe="") if encoding == "url" else key


def _xml(root: str, children) -> bytes:
    def build(parent, items):
        for name, value in items:
            element = ET.SubElement(parent, name)
            if isinstance(value, list):
                build(element, value)
            else:
                element.text = value

    element = ET.Element(root)
    build(element, children)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="utf-8")


def _oss_error(status: int, code: str, message: str, **extra):
    request_id = secrets.token_hex(12).upper()
    children = [("Code", code), ("Message", message), ("RequestId", request_id), ("HostId", OSS_HOST)]
    children += [(name[:1].upper() + name[1:], value) for name, value in extra.items()]
    body = _xml("Error", children)
    return status, [("Content-Type", "application/xml"), ("x-oss-ec", "0000-00000000")], body


def _no_such_upload(upload_id: str):
    return _oss_error(404, "NoSuchUpload", "The specified upload does not exist.", uploadId=upload_id)


def _vod_request_id() -> str:
    raw = secrets.token_hex(16).upper()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _b64_json(value: dict) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def _json_response(status: int, request_id: str, answer: dict):
    headers = [("Content-Type", "application/json;charset=utf-8"), ("x-acs-request-id", request_id)]
    return status, headers, json.dumps(answer).encode()


def _vod_error(request_id: str, status: int, code: str, message: str):
    answer = {"RequestId": request_id, "HostId": VOD_HOST, "Code": code, "Message": message}
    return _json_response(status, request_id, answer)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    recorder: Recorder
    tls: ssl.SSLContext


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as both clients expect
    timeout = CONNECTION_TIMEOUT_S
    server: _Server

    def setup(self):
        # TLS per connection, in the connection's own thread (a slow handshake blocks nobody else).
        self.connection_id = next(self.server.recorder._connections)
        raw = self.request
        raw.settimeout(self.timeout)
        try:
            self.request = self.server.tls.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.server.recorder.tls_errors.append(f"connection {self.connection_id}: {error!r}")
            raw.close()
            self.request = None
        if self.request is None:
            self.rfile = self.wfile = None
            return
        with self.server.recorder._lock:
            self.server.recorder._open.add(self.request)
        super().setup()

    def handle(self):
        if self.request is not None:
            super().handle()

    def finish(self):
        if self.request is not None:
            with self.server.recorder._lock:
                self.server.recorder._open.discard(self.request)
            try:
                super().finish()
            except OSError:
                pass

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _read_body(self) -> tuple[bytes, bool]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks), True
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(length) if length else b""), False

    def _serve(self):
        recorder = self.server.recorder
        body, chunked = self._read_body()
        exchange = Exchange(
            seq=next(recorder._seq),
            connection=self.connection_id,
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            chunked=chunked,
        )
        status, headers, answer = recorder.handle(exchange)
        exchange.status, exchange.response_headers, exchange.response_body = status, headers, answer
        with recorder._lock:
            recorder.exchanges.append(exchange)
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)
        self.wfile.flush()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve
