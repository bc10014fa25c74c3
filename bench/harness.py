"""What every benchmark case stands on: a real `vodup serve` on loopback, and commands measured as the
kernel accounts them.

Why this exists: the suite compares clients that run as separate processes (the vodup CLI, Python
scripts over Alibaba's clients), so wall time alone would hide where the CPU goes. Each measured command
is one child process; `os.wait4` gives its own CPU seconds and peak RSS, and the server's CPU seconds and
peak RSS over the same interval come from `/proc/PID` (the peak reset through `clear_refs` first). Nothing
here asserts anything about timing.
"""

from __future__ import annotations

import json
import os
import queue
import urllib.request
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30
MIB = 1 << 20
# Settings the harness passes as flags; an ambient copy must not leak into the server or the CLI.
SCRUBBED_PREFIXES = ("VODUP_", "ALIBABA_CLOUD_", "AWS_")
PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "no_proxy")


def clean_env(**extra: str) -> dict:
    """The environment without vodup, Alibaba Cloud, AWS or proxy settings, plus `extra`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES) and k not in PROXY_ENV
    }
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------------
# Processes as the kernel accounts them


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (`/proc/PID/stat` fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_peak_rss(pid: int) -> int:
    """Peak resident set (VmHWM) of a live process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss(pid: int) -> None:
    """Starts a new peak for VmHWM (Linux `clear_refs` value 5); the peak so far is forgotten."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Run:
    """One measured child process."""

    wall: float
    cpu: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict]:
        out = []
        for line in self.stdout.splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    def failure(self) -> str | None:
        """None when it exited 0, else the first useful line of what it said."""
        if self.returncode == 0:
            return None
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return f"exit {self.returncode}: {text[-1] if text else '(nothing printed)'}"[:400]


def measure(command: list[str], env: dict, timeout: float, cwd: Path | None = None) -> Run:
    """Runs `command` to its end; its wall time, CPU seconds and peak RSS as the kernel counted them."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    out: dict[str, bytes] = {}

    def drain(name: str, stream) -> None:
        out[name] = stream.read()

    readers = [
        threading.Thread(target=drain, args=("stdout", process.stdout), daemon=True),
        threading.Thread(target=drain, args=("stderr", process.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.002)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(timeout=5)
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss=usage.ru_maxrss * 1024,
        returncode=process.returncode if time.perf_counter() <= deadline else -9,
        stdout=out.get("stdout", b"").decode(errors="replace"),
        stderr=out.get("stderr", b"").decode(errors="replace"),
    )


# --------------------------------------------------------------------------------------------------
# The server


@dataclass
class Server:
    """A `vodup serve` child process on ports the OS picked, with a long-lived AccessKey."""

    process: subprocess.Popen
    data_dir: Path
    log_path: Path
    vod: str
    oss: str
    region: str
    key_id: str
    key_secret: str

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def peak_rss(self) -> int:
        return process_peak_rss(self.process.pid)

    def reset_peak(self) -> None:
        reset_peak_rss(self.process.pid)

    def description(self) -> dict:
        """What a client script needs to reach it (passed as JSON on its command line)."""
        return {
            "vod": self.vod,
            "oss": self.oss,
            "region": self.region,
            "key_id": self.key_id,
            "key_secret": self.key_secret,
        }

    def metric(self, sample: str) -> float:
        """One sample of `/metrics` (name with labels exactly as the server writes them), 0 when absent."""
        with urllib.request.urlopen(f"http://{self.vod}/metrics", timeout=10) as response:
            text = response.read().decode()
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        return 0.0

    def delete_videos(self, ids: list[str]) -> None:
        """DeleteVideo for `ids` (20 at a time, as the API takes them), signed by the key."""
        from aliyunsdkcore.client import AcsClient
        from aliyunsdkcore.request import CommonRequest

        client = AcsClient(self.key_id, self.key_secret, self.region, timeout=30)
        for start in range(0, len(ids), 20):
            request = CommonRequest(domain=self.vod, version="2017-03-21", action_name="DeleteVideo")
            request.set_protocol_type("http")
            request.set_method("POST")
            request.add_query_param("VideoIds", ",".join(ids[start : start + 20]))
            client.do_action_with_exception(request)

    def collect(self, timeout: float = 60.0) -> None:
        """Waits until the collector has removed every blob nothing references (the bench's own
        `[sweeper]` settings make that a second or two), so one round's garbage costs the next nothing."""
        deadline = time.monotonic() + timeout
        while self.metric('vodup_blobs{state="garbage"}') > 0:
            if time.monotonic() > deadline:
                raise SystemExit("the collector left garbage for a minute: is the server stuck?")
            time.sleep(0.2)

    def stop(self) -> str:
        """SIGTERM, then SIGKILL; how it ended."""
        if self.process.poll() is not None:
            return f"had already exited ({self.process.returncode})"
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
            return f"stopped (exit {self.process.returncode})"
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return "killed after ignoring SIGTERM"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def start_server(
    binary: Path, folder: Path, extra_args: list[str] | None = None, extra_env: dict | None = None
) -> Server:
    """`vodup serve --data FOLDER/data` on loopback (plus `extra_args`, and `extra_env` such as the keys of
    an S3 store), waiting for its ready line, plus a key."""
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = folder / "server.log"
    # Deleted media's bytes go within a second or two, so a long run does not fill the disk; the rest is
    # the defaults.
    config = folder / "vodup.toml"
    config.write_text("[sweeper]\nblob_grace_secs = 1\ncollect_interval_ms = 500\n")
    env = clean_env(VODUP_LOG="warn", **(extra_env or {}))
    key = subprocess.run(
        [str(binary), "keys", "create", "--json", "--data", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    if key.returncode != 0:
        raise SystemExit(f"vodup keys create failed ({key.returncode}): {key.stderr}")
    created = json.loads(key.stdout)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "serve", "--config", str(config), "--data", str(data_dir), "--listen", "127.0.0.1:0",
             "--oss-listen", "127.0.0.1:0", *(extra_args or [])],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
        )  # fmt: skip
    lines: queue.Queue = queue.Queue()

    def drain() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        line = lines.get(timeout=READY_TIMEOUT_S)
        ready = json.loads(line) if line else {}
    except (queue.Empty, ValueError):
        ready = {}
    if ready.get("event") != "listening":
        process.kill()
        raise SystemExit(f"vodup serve did not start; its log:\n{log_path.read_text(errors='replace')[-3000:]}")
    return Server(
        process, data_dir, log_path, ready["vod"], ready["oss"], ready["region"],
        created["AccessKeyId"], created["AccessKeySecret"],
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Figures


@dataclass
class Sample:
    """One measured upload (or batch): its wall time and what it cost on each side."""

    wall: float
    nbytes: int
    client_cpu: float
    client_rss: int
    server_cpu: float
    server_rss: int
    files: int = 1


@dataclass
class Series:
    """The samples of one row of a table, over the rounds."""

    name: str
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None
    # False for a client that does not go through the measured server (a direct S3 writer).
    via_server: bool = True

    def values(self, what) -> list[float]:
        return [what(s) for s in self.samples]

    def spread(self, what) -> tuple[float, float, float] | None:
        values = self.values(what)
        if not values:
            return None
        return min(values), statistics.median(values), max(values)


def mb_per_s(sample: Sample) -> float:
    return sample.nbytes / 1e6 / sample.wall


def files_per_s(sample: Sample) -> float:
    return sample.files / sample.wall


def server_cpu_per_gib(sample: Sample) -> float:
    return sample.server_cpu / (sample.nbytes / GIB)


def client_cpu_per_gib(sample: Sample) -> float:
    return sample.client_cpu / (sample.nbytes / GIB)
