"""Files per second for many small uploads to a local `vodup serve`: our CLI against Alibaba's clients.

Why this exists: `BENCHMARKS.md` measures big uploads (1 GiB, bound by the server's disk and hashing).
A folder of many small clips is bound by something else: one CreateUploadVideo plus one PutObject per
file, so round trips, connection setup and per-file client overhead decide the rate. This script
measures that case for three clients against one and the same server, in one run, side by side:

  vodup         `vodup upload video <folder> --jobs J --json` (the CLI's batch mode, J files at once)
  voduploadsdk  a sequential loop of voduploadsdk's `AliyunVodUploader.uploadLocalVideo`, one per file
  oss2          a sequential loop of aliyun-python-sdk-vod `CreateUploadVideo` + oss2 `put_object`

The two Python loops are plain and sequential on purpose: that is how these clients are used in
Alibaba's samples, and how the compat suite (`compat/conftest.py`, `test_voduploadsdk.py`,
`test_oss2.py`) drives them against `vodup serve`. The clients are not modified.

It is a standalone script, not a pytest test. It needs the pinned venv (`scripts/venv`) and a built
binary; it builds nothing. From the repository root:

    VENV="$(scripts/venv)"
    "$VENV/bin/python" compat/bench_many_files.py                       # 500 files of 256 KiB, all three
    "$VENV/bin/python" compat/bench_many_files.py --files 50 --only voduploadsdk --only oss2
    "$VENV/bin/python" compat/bench_many_files.py --json                # one JSON object on stdout

It prints a Markdown table (tool, files, seconds, files/s, MB/s, files/s as a ratio to the vodup row)
and the command line that reproduces it. Compare the ratios, not absolute figures across runs: the
machine is shared and noisy (see `BENCHMARKS.md`), and a debug binary is much slower than a release one.

If `vodup upload video` exits non-zero (for example before batch mode exists), its row shows the error
and the other tools still run. Everything lives in temp folders that are removed at the end; the
server is stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import json
import os
import queue
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("vodup", "voduploadsdk", "oss2")
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
MB = 1_000_000  # decimal, like the GB/s figures in BENCHMARKS.md
# voduploadsdk posts ReportUploadProgress to this hard-coded host after every video upload, and the
# upload fails if that post fails; it is redirected to the server's VOD port in this process only.
REPORT_HOST = ("vod.cn-shanghai.aliyuncs.com", 80)
# Server settings passed here; an ambient copy must not leak into the server (same list as conftest.py).
SERVER_FLAG_ENV = (
    "VODUP_DATA",
    "VODUP_LISTEN",
    "VODUP_OSS_LISTEN",
    "VODUP_PUBLIC_OSS_ENDPOINT",
    "VODUP_SERVE_REGION",
    "VODUP_BUCKET",
    "VODUP_CREDENTIAL_LIFETIME",
    "VODUP_CONFIG",
)
PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the table (or the JSON object)."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Arguments


def default_vodup() -> Path:
    release = REPO_ROOT / "target" / "release" / "vodup"
    return release if release.exists() else REPO_ROOT / "target" / "debug" / "vodup"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vodup", type=Path, default=None,
                        help="vodup binary (default target/release/vodup if it exists, else target/debug/vodup)")
    parser.add_argument("--files", type=int, default=500, help="number of files (default 500)")
    parser.add_argument("--size", type=int, default=262144, help="bytes per file (default 262144)")
    parser.add_argument("--jobs", type=int, default=8, help="files at once for `vodup upload` (default 8)")
    parser.add_argument("--only", action="append", choices=TOOLS,
                        help="run only this tool; repeatable (default all three)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)  # fmt: skip
    if args.files < 1 or args.size < 1 or args.jobs < 1:
        parser.error("--files, --size and --jobs must be at least 1")
    args.vodup = (args.vodup or default_vodup()).resolve()
    # Keep the fixed order vodup, voduploadsdk, oss2 whatever order --only came in, so runs compare.
    args.only = [tool for tool in TOOLS if tool in (args.only or TOOLS)]
    return args


def reproduce_command(args: argparse.Namespace) -> str:
    """The command line, every setting explicit, to be run from the repository root."""
    in_pinned_venv = Path(sys.prefix).parent.name == "vodup-tools"  # scripts/venv's cache folder
    python = '"$(scripts/venv)/bin/python"' if in_pinned_venv else shlex.quote(sys.executable)
    binary = args.vodup
    with contextlib.suppress(ValueError):
        binary = binary.relative_to(REPO_ROOT)
    rest = [
        "compat/bench_many_files.py", "--vodup", str(binary), "--files", str(args.files),
        "--size", str(args.size), "--jobs", str(args.jobs),
        # All three is the default; spelling that out would only make the line longer.
        *([] if args.only == list(TOOLS) else [part for tool in args.only for part in ("--only", tool)]),
        *(["--json"] if args.json else []),
    ]  # fmt: skip
    return f"{python} {shlex.join(rest)}"


# --------------------------------------------------------------------------------------------------
# Test data


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    """count files of random bytes: incompressible, and unlike each other, as real clips are."""
    width = max(4, len(str(count - 1)))
    paths = []
    for n in range(count):
        path = folder / f"clip-{n:0{width}d}.mp4"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------------
# The server (started the way compat/conftest.py starts it)


@dataclass
class Server:
    process: subprocess.Popen
    data_dir: Path
    stderr_path: Path
    vod: str  # "127.0.0.1:P1"
    oss: str  # "127.0.0.1:P2"
    region: str
    ready_line: dict

    def stderr_tail(self, chars: int = 4000) -> str:
        return self.stderr_path.read_text(errors="replace")[-chars:]


def server_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_FLAG_ENV}
    env.update(extra)
    return env


def start_server(binary: Path, tmp: Path) -> Server:
    """`vodup serve` on ports the OS picks; the ready line on stdout says which."""
    data_dir = tmp / "data"
    data_dir.mkdir()
    stderr_path = tmp / "server.stderr.log"
    env = server_env(VODUP_DATA=str(data_dir), VODUP_LISTEN="127.0.0.1:0", VODUP_OSS_LISTEN="127.0.0.1:0")
    with open(stderr_path, "wb") as stderr_file:
        process = subprocess.Popen(
            [str(binary), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            env=env,
        )
    # A thread keeps draining stdout: a full pipe would block the server mid-benchmark.
    lines: queue.Queue = queue.Queue()

    def drain() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        line = lines.get(timeout=READY_TIMEOUT_S)
    except queue.Empty:
        line = None
    try:
        ready = json.loads(line) if line else None
    except ValueError:
        ready = None
    if not ready or ready.get("event") != "listening":
        stop_server(process)
        raise SystemExit(
            f"vodup serve did not print its ready line within {READY_TIMEOUT_S} s (got {line!r}, exit"
            f" {process.returncode}); stderr:\n{stderr_path.read_text(errors='replace')[-4000:]}"
        )
    return Server(process, data_dir, stderr_path, ready["vod"], ready["oss"], ready["region"], ready)


def stop_server(process: subprocess.Popen) -> str:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S. Returns how it ended."""
    if process.poll() is not None:
        return f"had already exited ({process.returncode})"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
        return f"stopped by SIGTERM (exit {process.returncode})"
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
        return f"ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s and was killed"


def create_key(binary: Path, data_dir: Path) -> tuple[str, str]:
    """A long-lived AccessKey; `keys create` works while the server runs."""
    result = subprocess.run(
        [str(binary), "keys", "create", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=server_env(VODUP_DATA=str(data_dir)),
    )
    if result.returncode != 0:
        raise SystemExit(f"vodup keys create failed ({result.returncode}): {result.stderr}")
    key = json.loads(result.stdout)
    return key["AccessKeyId"], key["AccessKeySecret"]


# --------------------------------------------------------------------------------------------------
# Loopback only: the Python clients get a long-lived AccessKey, and a mistake must never send it
# (or any upload) to the real cloud. Same idea as conftest.py's guard.

_real_getaddrinfo = socket.getaddrinfo
_redirects: dict[tuple[str, int], tuple[str, int]] = {}
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "", None}


def _guarded_getaddrinfo(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    try:
        port_number = int(port) if port not in (None, "http") else 80
    except (TypeError, ValueError):
        port_number = -1
    target = _redirects.get((str(name).lower(), port_number))
    if target is not None:
        return _real_getaddrinfo(target[0], target[1], *args, **kwargs)
    if name not in LOOPBACK_NAMES:
        raise socket.gaierror(socket.EAI_NONAME, f"bench_many_files: refusing to resolve {name!r}")
    return _real_getaddrinfo(host, port, *args, **kwargs)


def stay_on_loopback(server: Server) -> None:
    to_host, to_port = server.vod.rsplit(":", 1)
    _redirects[REPORT_HOST] = (to_host, int(to_port))
    socket.getaddrinfo = _guarded_getaddrinfo
    for name in PROXY_ENV:  # a proxy would turn this into a benchmark of the proxy
        os.environ.pop(name, None)


# --------------------------------------------------------------------------------------------------
# The three uploaders. Each returns a Result; a failure is recorded in it, never raised, so one broken
# tool does not hide the others' figures.


@dataclass
class Result:
    tool: str
    files_expected: int
    files: int = 0
    seconds: float = 0.0
    bytes: int = 0
    error: str | None = None
    detail: dict = field(default_factory=dict)

    @property
    def files_per_s(self) -> float | None:
        return self.files / self.seconds if self.files and self.seconds > 0 else None

    @property
    def mb_per_s(self) -> float | None:
        return self.bytes / MB / self.seconds if self.bytes and self.seconds > 0 else None


def short_error(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " …"


def run_vodup_cli(binary: Path, folder: Path, server: Server, ak: str, secret: str, jobs: int,
                  size: int, expected: int, checkpoint_dir: Path) -> Result:  # fmt: skip
    """One `vodup upload video <folder>` process: its start-up is part of the time, as for a user."""
    result = Result("vodup", expected)
    # Only the credentials come from here: an ambient VODUP_ENDPOINT, VODUP_RESOLVE, security token or
    # checkpoint dir would change what is measured.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VODUP_", "ALIBABA_CLOUD_")) or k == "VODUP_LOG"}  # fmt: skip
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID=ak, ALIBABA_CLOUD_ACCESS_KEY_SECRET=secret)
    command = [
        str(binary), "upload", "video", str(folder), "--jobs", str(jobs),
        "--endpoint", f"http://{server.vod}", "--json", "--checkpoint-dir", str(checkpoint_dir),
    ]  # fmt: skip
    result.detail["command"] = shlex.join(command)
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=120 + 2 * expected)  # fmt: skip
    except subprocess.TimeoutExpired as timeout:
        result.seconds = time.perf_counter() - started
        result.error = f"timed out after {timeout.timeout:.0f} s"
        stdout = timeout.stdout.decode(errors="replace") if isinstance(timeout.stdout, bytes) else ""
        result.files = count_result_lines(stdout)
        result.bytes = result.files * size
        return result
    result.seconds = time.perf_counter() - started
    result.files = count_result_lines(done.stdout)
    result.bytes = result.files * size
    result.detail["exit_code"] = done.returncode
    if done.returncode != 0:
        # Prefer the CLI's own `error` line (--json); else its stderr (e.g. clap refusing a flag).
        errors = [line for line in json_lines(done.stdout) if line.get("Event") == "error"]
        text = json.dumps(errors[0]) if errors else done.stderr or done.stdout
        result.error = f"exit {done.returncode}: {short_error(text)}"
    return result


def json_lines(stdout: str) -> list[dict]:
    parsed = []
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                parsed.append(value)
    return parsed


def count_result_lines(stdout: str) -> int:
    """One `{"Event":"result",…}` line per uploaded file."""
    return sum(1 for line in json_lines(stdout) if line.get("Event") == "result")


def run_voduploadsdk(files: list[Path], server: Server, ak: str, secret: str, size: int) -> Result:
    """AliyunVodUploader pointed at the server the way test_voduploadsdk.py does (make_uploader)."""
    from voduploadsdk.AliyunVodUploader import AliyunVodUploader
    from voduploadsdk.UploadVideoRequest import UploadVideoRequest

    result = Result("voduploadsdk", len(files))
    # The SDK prints two log lines per file to stdout; they go to /dev/null so that neither the
    # terminal's speed nor a --json reader sees them.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        started = time.perf_counter()
        try:
            uploader = AliyunVodUploader(ak, secret)
            uploader.setApiRegion(server.region)
            # The uploader has no endpoint setting; its AcsClient gets the server as its `vod` endpoint.
            uploader._AliyunVodUploader__vodClient.add_endpoint(server.region, "vod", server.vod)
            for path in files:
                info = uploader.uploadLocalVideo(UploadVideoRequest(str(path)))
                if not (info and info.get("VideoId")):
                    raise RuntimeError(f"uploadLocalVideo({path.name}) returned {info!r}")
                result.files += 1
        except Exception as error:  # recorded, not raised: stop this tool, keep the others
            result.error = f"after {result.files} files: {short_error(str(error))}"
        result.seconds = time.perf_counter() - started
    result.bytes = result.files * size
    return result


def run_oss2(files: list[Path], server: Server, ak: str, secret: str, size: int) -> Result:
    """CreateUploadVideo (core SDK) + oss2 put_object with the STS credential, as test_oss2.py does."""
    import oss2
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkvod.request.v20170321.CreateUploadVideoRequest import CreateUploadVideoRequest

    def decode(value: str) -> dict:  # UploadAddress / UploadAuth: Base64 of UTF-8 JSON
        return json.loads(base64.b64decode(value, validate=True).decode("utf-8"))

    result = Result("oss2", len(files))
    started = time.perf_counter()
    try:
        client = AcsClient(ak, secret, server.region, timeout=10, connect_timeout=5)
        client.add_endpoint(server.region, "vod", server.vod)
        for path in files:
            request = CreateUploadVideoRequest()
            request.set_Title(path.name)
            request.set_FileName(str(path))
            created = json.loads(client.do_action_with_exception(request).decode("utf-8"))
            address, auth = decode(created["UploadAddress"]), decode(created["UploadAuth"])
            # A new Bucket per file, because every file gets its own STS credential.
            bucket = oss2.Bucket(
                oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"]),
                address["Endpoint"],
                address["Bucket"],
            )
            with open(path, "rb") as source:
                put = bucket.put_object(address["FileName"], source)
            if put.status != 200:
                raise RuntimeError(f"put_object({path.name}) answered {put.status}")
            result.files += 1
    except Exception as error:  # recorded, not raised: stop this tool, keep the others
        result.error = f"after {result.files} files: {short_error(str(error))}"
    result.seconds = time.perf_counter() - started
    result.bytes = result.files * size
    return result


# --------------------------------------------------------------------------------------------------
# Report


def ratio_to_vodup(result: Result, results: list[Result]) -> str:
    """files/s of this row over files/s of the vodup row (vodup = 1.00)."""
    base = next((r.files_per_s for r in results if r.tool == "vodup"), None)
    if not base or result.files_per_s is None:
        return "n/a"
    return f"{result.files_per_s / base:.2f}"


def fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(results: list[Result], args: argparse.Namespace, meta: dict) -> str:
    lines = [
        f"Many small files through `vodup serve`, {meta['date']}: {args.files} files of {args.size} bytes,"
        f" `--jobs {args.jobs}` for vodup; binary `{meta['binary']}` ({meta['build']} build),"
        f" {meta['cpus']} CPUs.",
        "",
        "| tool | files | seconds | files/s | MB/s | files/s vs vodup |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        files = f"{r.files}/{r.files_expected}"
        lines.append(
            f"| {r.tool} | {files} | {r.seconds:.2f} | {fmt(r.files_per_s, 1)} | {fmt(r.mb_per_s, 2)}"
            f" | {ratio_to_vodup(r, results)} |"
        )
    failed = [r for r in results if r.error]
    if failed:
        lines.append("")
        for r in failed:
            first_line = r.error.splitlines()[0] if r.error else ""
            lines.append(f"- {r.tool} failed: {first_line}")
    lines += ["", f"Command (from the repository root): `{meta['command']}`"]
    return "\n".join(lines)


def as_json(results: list[Result], args: argparse.Namespace, meta: dict) -> str:
    rows = []
    for r in results:
        row = asdict(r)
        row.update(files_per_s=r.files_per_s, mb_per_s=r.mb_per_s, ratio_to_vodup=ratio_to_vodup(r, results))
        rows.append(row)
    settings = {"files": args.files, "size": args.size, "jobs": args.jobs, "only": args.only}
    return json.dumps({**meta, "settings": settings, "results": rows}, indent=2)


# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.vodup.is_file() and os.access(args.vodup, os.X_OK)):
        log(f"vodup binary not found at {args.vodup} (build it with `cargo build --bin vodup`, or pass --vodup)")
        return 2
    meta = {
        "date": datetime.date.today().isoformat(),
        "binary": str(args.vodup),
        "build": args.vodup.parent.name,  # "release" or "debug" for target/<profile>/vodup
        "cpus": os.cpu_count(),
        "command": reproduce_command(args),
    }
    tmp = Path(tempfile.mkdtemp(prefix="vodup-bench-many-files-"))
    server = None
    results: list[Result] = []
    try:
        log(f"writing {args.files} files of {args.size} bytes in {tmp / 'files'}")
        folder = tmp / "files"
        folder.mkdir()
        files = make_files(folder, args.files, args.size)
        server_tmp = tmp / "server"
        server_tmp.mkdir()
        server = start_server(args.vodup, server_tmp)
        ak, secret = create_key(args.vodup, server.data_dir)
        stay_on_loopback(server)
        log(f"vodup serve: VOD {server.vod}, OSS {server.oss}")
        for tool in args.only:
            log(f"{tool}: uploading {args.files} files …")
            if tool == "vodup":
                checkpoints = tmp / "checkpoints"
                checkpoints.mkdir()
                result = run_vodup_cli(args.vodup, folder, server, ak, secret, args.jobs, args.size,
                                       args.files, checkpoints)  # fmt: skip
            elif tool == "voduploadsdk":
                result = run_voduploadsdk(files, server, ak, secret, args.size)
            else:
                result = run_oss2(files, server, ak, secret, args.size)
            outcome = f"failed: {result.error.splitlines()[0]}" if result.error else "ok"
            log(f"{tool}: {result.files} files in {result.seconds:.2f} s ({outcome})")
            results.append(result)
    finally:
        if server is not None:
            how = stop_server(server.process)
            log(f"vodup serve {how}")
            if server.process.returncode != 0:
                log(f"server log (tail):\n{server.stderr_tail()}")
        shutil.rmtree(tmp, ignore_errors=True)
    print(as_json(results, args, meta) if args.json else markdown(results, args, meta))
    # Exit 0 even when a tool failed: the figures of the others are the result, and the failure is shown.
    return 0


if __name__ == "__main__":
    sys.exit(main())
