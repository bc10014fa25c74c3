"""Fixtures of the compat suite: a real `vodup serve` per test, and the official clients pointed at it.

Every test gets its own server process, data dir, ports (bound as 127.0.0.1:0) and temp dir; nothing is
shared between tests. The server is the built binary (`VODUP_BIN`, else `target/debug/vodup` of this
clone). A test that needs an absent component (the binary, ffmpeg) skips and says why; with
`VODUP_REQUIRE_ALL=1` (set by `.ci/run`) every skip is turned into a failure by the hook at the end.

The network never leaves loopback: `socket.getaddrinfo` is wrapped for the whole test process so that
a non-loopback name is refused, except names a test redirects on purpose (voduploadsdk's hard-coded
ReportUploadProgress host, see `redirect_host`).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIRE_ALL = os.environ.get("VODUP_REQUIRE_ALL") == "1"
# The backend matrix, test-only (never the server's own VODUP_META / VODUP_STORAGE, which take URLs):
# `local` (default) runs one server on SQLite + its data folder; `remote` runs two nodes on a fresh
# PostgreSQL database (VODUP_TEST_POSTGRES_URL) and a fresh prefix of the Garage bucket
# (VODUP_TEST_GARAGE_*), behind the testkit's per-request round-robin balancer (VODUP_ROUND_ROBIN_BIN,
# else target/debug/round_robin), one for the OSS ports and one for the VOD ports, so every client really
# alternates between the nodes.
BACKEND = os.environ.get("VODUP_TEST_BACKEND", "local")
if BACKEND not in ("local", "remote"):
    raise SystemExit(f"VODUP_TEST_BACKEND must be local or remote, not {BACKEND!r}")
REMOTE_NODES = 2
# Tests that only several nodes can run; not even collected on the local backend (a skip would fail CI).
collect_ignore = [] if BACKEND == "remote" else ["test_nodes.py"]
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
# Settings the fixture passes as flags; an ambient VODUP_* copy of them must not leak into the server.
# Other VODUP_* variables (VODUP_LOG, say) pass through.
_FLAG_ENV = (
    "VODUP_DATA",
    "VODUP_LISTEN",
    "VODUP_OSS_LISTEN",
    "VODUP_PUBLIC_OSS_ENDPOINT",
    "VODUP_SERVE_REGION",
    "VODUP_BUCKET",
    "VODUP_CREDENTIAL_LIFETIME",
    "VODUP_CONFIG",
    "VODUP_META",
    "VODUP_STORAGE",
    "VODUP_S3_ENDPOINT",
    "VODUP_S3_REGION",
)
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "", None}


def absent(reason: str) -> None:
    """Skips the current test because a component is missing; a failure under VODUP_REQUIRE_ALL=1."""
    message = f"MISSING COMPONENT: {reason}"
    if REQUIRE_ALL:
        pytest.fail(f"{message} (VODUP_REQUIRE_ALL=1: CI must run every test)", pytrace=False)
    pytest.skip(message)


# --------------------------------------------------------------------------------------------------
# Loopback guard and host redirects


_REDIRECTS: dict[tuple[str, int], tuple[str, int]] = {}
_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    try:
        port_number = int(port) if port not in (None, "http") else 80
    except (TypeError, ValueError):
        port_number = -1
    target = _REDIRECTS.get((str(name).lower(), port_number))
    if target is not None:
        return _real_getaddrinfo(target[0], target[1], *args, **kwargs)
    if name not in LOOPBACK_NAMES:
        raise socket.gaierror(
            socket.EAI_NONAME, f"compat suite: refusing to resolve {name!r}; tests stay on loopback"
        )
    return _real_getaddrinfo(host, port, *args, **kwargs)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Every test: names other than loopback (and explicit redirects) do not resolve."""
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    yield
    _REDIRECTS.clear()


@pytest.fixture
def redirect_host(loopback_only):
    """redirect_host(host, port, "127.0.0.1:P"): `host:port` connects there instead, in this test only."""

    def redirect(host: str, port: int, to: str) -> None:
        to_host, to_port = to.rsplit(":", 1)
        _REDIRECTS[(host.lower(), port)] = (to_host, int(to_port))

    return redirect


# --------------------------------------------------------------------------------------------------
# The server


def vodup_bin() -> Path:
    configured = os.environ.get("VODUP_BIN")
    path = Path(configured) if configured else REPO_ROOT / "target" / "debug" / "vodup"
    if not path.is_absolute():
        path = (REPO_ROOT / path) if not path.exists() else path.resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        absent(
            f"vodup binary not found at {path} (build it with `cargo build --bin vodup`, or set VODUP_BIN)"
        )
    return path


def decode_b64_json(value: str) -> dict:
    return json.loads(base64.b64decode(value, validate=True).decode("utf-8"))


@dataclass
class VodupServer:
    """One running `vodup serve` and what a test needs to talk to it."""

    binary: Path
    data_dir: Path
    tmp: Path
    vod: str  # "127.0.0.1:P1" (tea `endpoint`, core SDK add_endpoint)
    oss: str  # "127.0.0.1:P2"
    oss_endpoint: str  # "http://127.0.0.1:P2" (what UploadAddress.Endpoint says)
    bucket: str
    region: str
    ak: str
    secret: str
    process: subprocess.Popen
    stderr_path: Path
    ready_line: dict = field(default_factory=dict)
    # Where `vodup keys` finds the catalogue: `--data DIR`, or `--meta URL` for the remote backend.
    catalogue_args: list = field(default_factory=list)
    # The remote backend's other nodes and balancers, beside `process` (the first node).
    nodes: list = field(default_factory=list)
    balancers: list = field(default_factory=list)
    # Each node's own VOD address (its /metrics), past the balancer.
    node_vods: list = field(default_factory=list)
    cleanup: list = field(default_factory=list)

    @property
    def vod_url(self) -> str:
        return f"http://{self.vod}/"

    @staticmethod
    def decode(value: str) -> dict:
        """UploadAddress / UploadAuth: standard Base64 of UTF-8 JSON (vod-api.md §4)."""
        return decode_b64_json(value)

    def stderr(self) -> str:
        """The server's log so far (stderr): every node's, on the remote backend."""
        logs = [path for path in (self.stderr_path, *(n.stderr_path for n in self.nodes)) if path.exists()]
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}" if len(logs) > 1 else path.read_text(errors="replace")
            for path in logs
        )

    def processes(self) -> list:
        """Every process this server is made of: the nodes, then the balancers."""
        return [self.process, *(node.process for node in self.nodes), *self.balancers]

    def node_requests(self, plane: str, action: str) -> list[int]:
        """How many `action` requests each node answered (its /metrics), past the balancer."""
        import re

        import requests

        counts = []
        for vod in self.node_vods:
            text = requests.get(f"http://{vod}/metrics", timeout=10).text
            pattern = rf'^vodup_requests_total{{plane="{plane}",action="{action}",code="[^"]*"}} (\d+)$'
            counts.append(sum(int(n) for n in re.findall(pattern, text, re.MULTILINE)))
        return counts

    def create_key(self) -> tuple[str, str]:
        """A second long-lived AccessKey, created while the server runs."""
        return create_key(self.binary, self.catalogue_args)

    def revoke_key(self, access_key_id: str) -> None:
        """`vodup keys revoke`, while the server runs."""
        result = subprocess.run(
            [str(self.binary), "keys", "revoke", *self.catalogue_args, access_key_id],
            capture_output=True,
            text=True,
            timeout=30,
            env=_server_env(),
        )
        assert result.returncode == 0, f"vodup keys revoke failed ({result.returncode}): {result.stderr}"

    # ---- clients -------------------------------------------------------------------------------

    def core_client(self, ak: str | None = None, secret: str | None = None, **kwargs):
        """aliyun-python-sdk-core AcsClient (signature v1) whose `vod` endpoint is this server."""
        from aliyunsdkcore.client import AcsClient

        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("connect_timeout", 5)
        client = AcsClient(ak or self.ak, secret or self.secret, self.region, **kwargs)
        client.add_endpoint(self.region, "vod", self.vod)
        return client

    def core_call(self, request, client=None) -> dict:
        """Sends one aliyunsdkvod request with the core SDK and returns the parsed JSON body."""
        body = (client or self.core_client()).do_action_with_exception(request)
        return json.loads(body.decode("utf-8"))

    def tea_client(
        self, signature_algorithm: str | None = None, ak: str | None = None, secret: str | None = None
    ):
        """alibabacloud_vod20170321 Client over plain HTTP; ACS3 unless signature_algorithm='v2' (RPC v1)."""
        from alibabacloud_tea_openapi.utils_models import Config
        from alibabacloud_vod20170321.client import Client

        config = Config(
            access_key_id=ak or self.ak,
            access_key_secret=secret or self.secret,
            endpoint=self.vod,
            protocol="http",
            region_id=self.region,
            read_timeout=10000,
            connect_timeout=5000,
        )
        if signature_algorithm:
            config.signature_algorithm = signature_algorithm
        return Client(config)

    def oss_bucket(self, **kwargs):
        """oss2 Bucket signed with the long-lived AK (may read everything)."""
        import oss2

        return oss2.Bucket(oss2.Auth(self.ak, self.secret), self.oss_endpoint, self.bucket, **kwargs)

    def sts_bucket(self, upload_auth: dict, upload_address: dict, **kwargs):
        """oss2 Bucket as an upload client builds it from a Create*/Refresh* answer."""
        import oss2

        auth = oss2.StsAuth(
            upload_auth["AccessKeyId"],
            upload_auth["AccessKeySecret"],
            upload_auth["SecurityToken"],
            **kwargs.pop("auth_kwargs", {}),
        )
        return oss2.Bucket(auth, upload_address["Endpoint"], upload_address["Bucket"], **kwargs)

    # ---- common calls --------------------------------------------------------------------------

    def create_upload_video(
        self, file_name: str = "video.mp4", title: str = "compat video", **params
    ) -> dict:
        """CreateUploadVideo through the core SDK; UploadAddress/UploadAuth come back decoded."""
        from aliyunsdkvod.request.v20170321.CreateUploadVideoRequest import CreateUploadVideoRequest

        request = CreateUploadVideoRequest()
        request.set_Title(title)
        request.set_FileName(file_name)
        for name, value in params.items():
            getattr(request, f"set_{name}")(value)
        result = self.core_call(request)
        result["UploadAddress"] = decode_b64_json(result["UploadAddress"])
        result["UploadAuth"] = decode_b64_json(result["UploadAuth"])
        return result

    def video_info(self, video_id: str) -> dict:
        from aliyunsdkvod.request.v20170321.GetVideoInfoRequest import GetVideoInfoRequest

        request = GetVideoInfoRequest()
        request.set_VideoId(video_id)
        return self.core_call(request)["Video"]

    def mezzanine(self, video_id: str) -> dict:
        from aliyunsdkvod.request.v20170321.GetMezzanineInfoRequest import GetMezzanineInfoRequest

        request = GetMezzanineInfoRequest()
        request.set_VideoId(video_id)
        request.set_OutputType("oss")
        return self.core_call(request)["Mezzanine"]

    def wait_video_status(self, video_id: str, status: str = "Normal", timeout: float = 10.0) -> dict:
        """Polls GetVideoInfo until the video has `status` (completion may be recorded asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            video = self.video_info(video_id)
            if video["Status"] == status or time.monotonic() > deadline:
                assert video["Status"] == status, (
                    f"video {video_id} is {video['Status']}, expected {status}\n{self.stderr()[-4000:]}"
                )
                return video
            time.sleep(0.05)

    def fetch(self, url: str) -> bytes:
        """GETs a (presigned) URL the service handed out, with no credentials of our own."""
        import requests

        response = requests.get(url, timeout=30)
        assert response.status_code == 200, f"GET {url} -> {response.status_code}: {response.text[:500]}"
        return response.content


def create_key(binary: Path, catalogue_args: list) -> tuple[str, str]:
    result = subprocess.run(
        [str(binary), "keys", "create", *catalogue_args, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_server_env(),
    )
    assert result.returncode == 0, f"vodup keys create failed ({result.returncode}): {result.stderr}"
    key = json.loads(result.stdout)
    return key["AccessKeyId"], key["AccessKeySecret"]


def _server_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _FLAG_ENV}
    return env


def _launch(command: list, stderr_path: Path, env: dict) -> tuple[subprocess.Popen, dict]:
    """Starts a process that prints one JSON ready line on stdout, and returns it with that line."""
    with open(stderr_path, "wb") as stderr_file:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_file, env=env
        )
    lines: queue.Queue = queue.Queue()

    def read_stdout():
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        line = lines.get(timeout=READY_TIMEOUT_S)
    except queue.Empty:
        line = None
    ready = None
    if line:
        try:
            ready = json.loads(line)
        except ValueError:
            ready = None
    if not ready:
        _stop(process)
        pytest.fail(
            f"{command[0]} {command[1]} did not print its ready line within {READY_TIMEOUT_S} s"
            f" (got {line!r}, exit {process.returncode}); stderr:\n{stderr_path.read_text(errors='replace')}",
            pytrace=False,
        )
    return process, ready


def _serve(binary: Path, args: list, stderr_path: Path, env: dict) -> tuple[subprocess.Popen, dict]:
    listen = ["--listen", "127.0.0.1:0", "--oss-listen", "127.0.0.1:0"]
    process, ready = _launch([str(binary), "serve", *listen, *args], stderr_path, env)
    if ready.get("event") != "listening":
        _stop(process)
        pytest.fail(f"vodup serve printed {ready!r}, not its ready line", pytrace=False)
    return process, ready


def _start(tmp: Path, extra_args: list[str]) -> VodupServer:
    if BACKEND == "remote":
        return _start_remote(tmp, extra_args)
    binary = vodup_bin()
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True)
    catalogue = ["--data", str(data_dir)]
    ak, secret = create_key(binary, catalogue)
    stderr_path = tmp / "server.stderr.log"
    process, ready = _serve(binary, [*catalogue, *extra_args], stderr_path, _server_env())
    return VodupServer(
        binary=binary,
        data_dir=data_dir,
        tmp=tmp,
        vod=ready["vod"],
        oss=ready["oss"],
        oss_endpoint=ready["oss_endpoint"],
        bucket=ready["bucket"],
        region=ready["region"],
        ak=ak,
        secret=secret,
        process=process,
        stderr_path=stderr_path,
        ready_line=ready,
        catalogue_args=catalogue,
        node_vods=[ready["vod"]],
    )


def _round_robin_bin() -> Path:
    configured = os.environ.get("VODUP_ROUND_ROBIN_BIN")
    path = Path(configured) if configured else vodup_bin().parent / "round_robin"
    if not (path.is_file() and os.access(path, os.X_OK)):
        absent(f"the round-robin balancer is not built at {path} (cargo build -p vodup-testkit --bin round_robin)")
    return path


def _remote_settings() -> tuple[str, dict]:
    """The PostgreSQL admin URL and the Garage variables, or the missing component."""
    admin = os.environ.get("VODUP_TEST_POSTGRES_URL")
    if not admin:
        absent("VODUP_TEST_BACKEND=remote needs VODUP_TEST_POSTGRES_URL (scripts/pg-throwaway.sh up)")
    garage = {
        name: os.environ.get(f"VODUP_TEST_GARAGE_{name}")
        for name in ("ENDPOINT", "REGION", "BUCKET", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
    }
    missing = [name for name, value in garage.items() if not value]
    if missing:
        absent(f"VODUP_TEST_BACKEND=remote needs VODUP_TEST_GARAGE_{missing[0]} (scripts/garage-throwaway.sh up)")
    if not shutil.which("psql"):
        absent("psql is not installed (it creates the remote backend's fresh database)")
    return admin, garage


def _wait_healthy(address: str) -> None:
    """Waits until `/healthz` answers 200 through a balancer (it has read its upstreams)."""
    import urllib.request

    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the balancer at {address} never reached a node", pytrace=False)
        time.sleep(0.02)


def _start_remote(tmp: Path, extra_args: list[str]) -> VodupServer:
    """Two nodes on a fresh database and a fresh bucket prefix, behind two round-robin balancers."""
    from urllib.parse import urlsplit, urlunsplit

    admin, garage = _remote_settings()
    binary = vodup_bin()
    balancer_bin = _round_robin_bin()
    tmp.mkdir(parents=True)
    suffix = os.urandom(6).hex()
    database = f"vodup_compat_{suffix}"
    created = subprocess.run(
        ["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", f'CREATE DATABASE "{database}"'],
        capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, f"creating the test database failed: {created.stderr}"
    cleanup = [
        lambda: subprocess.run(
            ["psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
            capture_output=True, timeout=60,
        )
    ]
    meta = urlunsplit(urlsplit(admin)._replace(path=f"/{database}"))
    catalogue = ["--meta", meta]
    storage = [
        "--storage", f"s3://{garage['BUCKET']}/compat-{suffix}",
        "--s3-endpoint", garage["ENDPOINT"],
        "--s3-region", garage["REGION"],
        "--s3-path-style",
    ]
    env = _server_env()
    env["AWS_ACCESS_KEY_ID"] = garage["ACCESS_KEY_ID"]
    env["AWS_SECRET_ACCESS_KEY"] = garage["SECRET_ACCESS_KEY"]
    ak, secret = create_key(binary, catalogue)

    balancers, addresses = [], []
    for plane in ("oss", "vod"):
        process, ready = _launch(
            [str(balancer_bin), "127.0.0.1:0"], tmp / f"balancer-{plane}.log", _server_env()
        )
        balancers.append(process)
        addresses.append(ready["listening"])
    oss_balancer, vod_balancer = addresses
    nodes = []
    for n in range(REMOTE_NODES):
        args = [*catalogue, *storage, "--public-oss-endpoint", f"http://{oss_balancer}", *extra_args]
        nodes.append(_serve(binary, args, tmp / f"node{n}.stderr.log", env))
    for balancer, address, field_name in zip(balancers, addresses, ("oss", "vod")):
        balancer.stdin.write((" ".join(ready[field_name] for _, ready in nodes) + "\n").encode())
        balancer.stdin.flush()
        _wait_healthy(address)
    first_process, first = nodes[0]
    assert all(ready["bucket"] == first["bucket"] for _, ready in nodes), "the nodes disagree on the bucket"
    others = [
        VodupServer(
            binary=binary, data_dir=tmp, tmp=tmp, vod=ready["vod"], oss=ready["oss"],
            oss_endpoint=ready["oss_endpoint"], bucket=ready["bucket"], region=ready["region"], ak=ak,
            secret=secret, process=process, stderr_path=tmp / f"node{n + 1}.stderr.log", ready_line=ready,
        )
        for n, (process, ready) in enumerate(nodes[1:])
    ]
    return VodupServer(
        binary=binary,
        data_dir=tmp,
        tmp=tmp,
        vod=vod_balancer,
        oss=oss_balancer,
        oss_endpoint=f"http://{oss_balancer}",
        bucket=first["bucket"],
        region=first["region"],
        ak=ak,
        secret=secret,
        process=first_process,
        stderr_path=tmp / "node0.stderr.log",
        ready_line=first,
        catalogue_args=catalogue,
        nodes=others,
        balancers=balancers,
        node_vods=[ready["vod"] for _, ready in nodes],
        cleanup=cleanup,
    )


def _stop(process: subprocess.Popen) -> str:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S. Returns how it ended."""
    if process.poll() is not None:
        return "already exited"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
        return "terminated"
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
        return "killed"


@pytest.fixture
def start_vodup(request, tmp_path):
    """Factory: start_vodup(*extra_serve_args) starts one more server, stopped at teardown."""
    servers: list[VodupServer] = []
    request.node.vodup_servers = servers  # a failing test's report shows their logs (hook below)

    def start(*extra_args: str) -> VodupServer:
        server = _start(tmp_path / f"vodup{len(servers)}", list(extra_args))
        servers.append(server)
        return server

    yield start
    problems = []
    for server in servers:
        for process in server.processes():
            died_early = process.poll()
            how = _stop(process)
            code = process.returncode
            name = " ".join(str(arg) for arg in process.args[:2])
            if died_early is not None:
                problems.append(f"{name} exited on its own during the test (exit {died_early})")
            elif how == "killed":
                problems.append(f"{name} ignored SIGTERM for {STOP_TIMEOUT_S} s and was killed")
            elif code != 0:
                problems.append(f"{name} exited {code} after SIGTERM (expected a clean 0)")
        if problems:
            problems.append("stderr:\n" + server.stderr()[-8000:])
        for clean in server.cleanup:
            clean()
    assert not problems, "\n".join(problems)


@pytest.fixture
def vodup(start_vodup) -> VodupServer:
    """A fresh `vodup serve` with default settings."""
    return start_vodup()


# --------------------------------------------------------------------------------------------------
# Media


@pytest.fixture(scope="session")
def ffmpeg_bin() -> str:
    path = shutil.which("ffmpeg")
    if not path:
        absent("ffmpeg is not installed (apt-get install -y --no-install-recommends ffmpeg)")
    return path


class Media:
    """Generates real media files with ffmpeg (infra.md §4) in one folder."""

    def __init__(self, ffmpeg: str, root: Path):
        self.ffmpeg = ffmpeg
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [self.ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"ffmpeg failed: {result.stderr}"

    def mp4(
        self, name: str = "sample.mp4", seconds: float = 2, size: str = "320x240", noise: bool = False
    ) -> Path:
        """H.264 + AAC MP4. noise=True encodes a noisy picture losslessly: about 11.7 MB/s at 640x360."""
        out = self.root / name
        video = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        if noise:
            video = ["-vf", "noise=alls=80:allf=t", "-crf", "0", *video]
        self._run(
            "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            *video, "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart", str(out),
        )  # fmt: skip
        return out

    def image(self, name: str = "cover.jpg", size: str = "320x240") -> Path:
        out = self.root / name
        self._run("-f", "lavfi", "-i", f"testsrc=size={size}", "-frames:v", "1", str(out))
        return out

    def hls(self, folder: str = "hls", seconds: int = 6) -> tuple[Path, list[Path]]:
        """An HLS VOD playlist with 2 s segments; returns (index.m3u8, [segments in playlist order])."""
        out = self.root / folder
        out.mkdir(parents=True, exist_ok=True)
        self._run(
            "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=320x240:rate=25",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25",
            "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k", "-shortest", "-f", "hls", "-hls_time", "2",
            "-hls_list_size", "0", "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(out / "seg_%03d.ts"), str(out / "index.m3u8"),
        )  # fmt: skip
        playlist = out / "index.m3u8"
        segments = [
            out / line for line in playlist.read_text().splitlines() if line and not line.startswith("#")
        ]
        return playlist, segments


@pytest.fixture
def media(ffmpeg_bin, tmp_path) -> Media:
    return Media(ffmpeg_bin, tmp_path / "media")


@pytest.fixture
def random_file(tmp_path):
    """random_file(name, size, seed=0): a file of incompressible pseudo-random bytes in the temp dir."""
    import random

    def make(name: str, size: int, seed: int = 0) -> Path:
        path = tmp_path / name
        rng = random.Random(seed)
        with open(path, "wb") as f:
            remaining = size
            while remaining:
                n = min(remaining, 1 << 20)
                f.write(rng.randbytes(n))
                remaining -= n
        return path

    return make


# --------------------------------------------------------------------------------------------------
# Reports: a failing test shows its servers' logs; VODUP_REQUIRE_ALL=1 makes a skip a failure (xfail is
# not a skip: strict xfail marks known server bugs)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"VODUP_REQUIRE_ALL=1 turns this skipped module into a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for n, server in enumerate(getattr(item, "vodup_servers", [])):
            report.sections.append((f"vodup serve #{n} stderr (last 6000 chars)", server.stderr()[-6000:]))
        # Other fixtures add (title, produce text) pairs, e.g. the wire recorder's request log.
        for title, produce in getattr(item, "failure_sections", []):
            report.sections.append((title, produce()))
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"VODUP_REQUIRE_ALL=1 turns this skip into a failure: {reason}"
