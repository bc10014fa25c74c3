"""The throughput suite: vodup beside Alibaba's official clients, against one `vodup serve`, in one run.

Why this exists: issue 15 asks how far vodup is ahead of what its users would otherwise use and how close
it is to what two cores allow, with numbers measured side by side. Every case runs its clients
interleaved round by round (the order rotates each round), so a machine that gets busier or quieter
affects every row alike, and the tables give ratios beside the absolute figures (min / median / max over
the rounds), the client's and the server's CPU seconds per GiB and their peak RSS.

Run it with `scripts/bench` (builds the release binaries, finds the pinned venv, then runs this), or:

    "$(scripts/venv)/bin/python" bench/suite.py --vodup target/release/vodup [--quick] [--only CASE]

Cases (`--only` takes these names, repeatable):
  large   one page-cached file (1 GiB) per client: `vodup upload video FILE --no-resume --quiet`, oss2
          resumable_upload with 1 and 4 threads, alibabacloud-oss-v2's Uploader with its defaults and
          with 8 x 8 MiB. Steady state: a warm-up writes 2 GiB to the server first.
  many    500 files of 256 KiB: `vodup upload video DIR --jobs 8` beside a loop over each official
          client, one file after another as Alibaba's samples do; a pool of 8 threads over each, for context.
  web     one file (1 GiB) from a loopback HTTP server: `vodup upload video URL` beside voduploadsdk's
          uploadWebVideo (which downloads to a temporary file first).
  s3      one file (1 GiB) into a 3-node Garage cluster on loopback: `vodup upload video` through a second
          `vodup serve --storage s3://…` beside `s3_put` (the testkit's direct S3 writer, object_store,
          8 MiB parts, 4 in flight) writing the same bytes to the same bucket. The cluster comes from
          VODUP_TEST_GARAGE_* when set, else scripts/garage-throwaway.sh starts one (scripts/garage
          builds Garage once into ~/.cache/vodup-tools).
  control signed CreateUploadVideo beside the liveness route (`GET /healthz`) of one node on SQLite, 64
          clients each (`ingest_bench control`, built beside vodup): calls per second, their ratio, p50/p99.
  memory  `vodup upload video` of 64 MiB, 256 MiB, 1 GiB and 4 GiB files: the client's peak RSS and time
          per GiB against size; then 16 uploads of 64 MiB at once: the server's peak RSS.

`--quick` runs every case once on small inputs and asserts only that every client succeeded: CI runs
it on every change so that the suite cannot rot. It says nothing about speed.

Output: the Markdown report on stdout (and `--out FILE`), `--json FILE` for the raw samples. Progress on
stderr. The suite stops itself: a round that would start after `--budget` seconds is skipped and the
report says so.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    GIB,
    MIB,
    Sample,
    Series,
    Server,
    clean_env,
    client_cpu_per_gib,
    files_per_s,
    mb_per_s,
    measure,
    server_cpu_per_gib,
    start_server,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENTS = Path(__file__).resolve().parent / "clients.py"
FLOOR = Path(__file__).resolve().parent / "floor.py"
CASES = ("large", "many", "web", "control", "memory", "s3")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vodup", type=Path, default=REPO_ROOT / "target" / "release" / "vodup")
    parser.add_argument("--quick", action="store_true", help="small inputs, one round: does it still run?")
    parser.add_argument("--only", action="append", choices=CASES, help="run only this case (repeatable)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per case (default 3)")
    parser.add_argument("--large-mib", type=int, default=1024, help="size of the large file (default 1024)")
    parser.add_argument("--files", type=int, default=500, help="files of the many case (default 500)")
    parser.add_argument("--file-kib", type=int, default=256, help="size of each small file (default 256)")
    parser.add_argument("--budget", type=float, default=19 * 60, help="seconds before rounds stop starting")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.large_mib, args.files, args.file_kib = 1, 24, 12, 64
    args.only = [case for case in CASES if case in (args.only or CASES)]
    args.vodup = args.vodup.resolve()
    return args


# --------------------------------------------------------------------------------------------------
# Measuring one client run against the server


class Bench:
    """The server, the inputs' folder, and how a client process is started and measured."""

    def __init__(self, args: argparse.Namespace, server: Server, tmp: Path):
        self.args, self.server, self.tmp = args, server, tmp
        self.started = time.monotonic()
        self.skipped: list[str] = []
        # Media uploaded since the last clean-up: deleted between rounds, never while one is measured.
        self.uploaded: list[str] = []
        # Commands that stop what a case started (a Garage cluster), run at the end.
        self.stop_later: list[list[str]] = []

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.args.budget

    def vodup(self, *args: str) -> list[str]:
        return [str(self.args.vodup), "upload", "video", *args, "--endpoint", f"http://{self.server.vod}"]

    def vodup_env(self) -> dict:
        return clean_env(
            ALIBABA_CLOUD_ACCESS_KEY_ID=self.server.key_id,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=self.server.key_secret,
        )

    def official(self, case: str, *args: str) -> list[str]:
        return [sys.executable, str(CLIENTS), case, json.dumps(self.server.description()), *args]

    def run(self, series: Series, command: list[str], env: dict, nbytes: int, files: int = 1) -> None:
        """One measured run of `command`, added to `series` (or its error recorded)."""
        if series.error:
            return
        self.server.reset_peak()
        cpu_before = self.server.cpu_seconds()
        run = measure(command, env, timeout=600)
        server_cpu = self.server.cpu_seconds() - cpu_before
        failure = run.failure()
        if failure:
            series.error = failure
            log(f"  {series.name}: FAILED {failure}")
            return
        sample = Sample(
            wall=run.wall, nbytes=nbytes, client_cpu=run.cpu, client_rss=run.peak_rss,
            server_cpu=server_cpu, server_rss=self.server.peak_rss(), files=files,
        )  # fmt: skip
        series.samples.append(sample)
        self.uploaded += [line["VideoId"] for line in run.json_lines() if line.get("Event") == "result"]
        self.uploaded += [id_ for line in run.json_lines() for id_ in line.get("ids", [])]
        log(
            f"  {series.name}: {run.wall:.2f} s, {mb_per_s(sample):.0f} MB/s, client {run.cpu:.2f} CPU-s,"
            f" server {server_cpu:.2f} CPU-s"
        )

    def run_together(self, series: Series, commands: list[list[str]], env: dict, each: int) -> None:
        """All `commands` at once, as one sample: the wall time until the last ends, the server's CPU and
        peak RSS meanwhile, the clients' summed CPU and largest peak RSS."""
        if series.error:
            return
        self.server.reset_peak()
        cpu_before = self.server.cpu_seconds()
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(commands)) as pool:
            runs = list(pool.map(lambda command: measure(command, env, timeout=600), commands))
        wall = time.perf_counter() - started
        server_cpu = self.server.cpu_seconds() - cpu_before
        failures = [f for f in (run.failure() for run in runs) if f]
        if failures:
            series.error = failures[0]
            log(f"  {series.name}: FAILED {failures[0]}")
            return
        sample = Sample(
            wall=wall, nbytes=each * len(commands), client_cpu=sum(run.cpu for run in runs),
            client_rss=max(run.peak_rss for run in runs), server_cpu=server_cpu,
            server_rss=self.server.peak_rss(), files=len(commands),
        )  # fmt: skip
        series.samples.append(sample)
        for run in runs:
            self.uploaded += [line["VideoId"] for line in run.json_lines() if line.get("Event") == "result"]
        log(f"  {series.name}: {wall:.2f} s, server peak RSS {sample.server_rss / MIB:.0f} MiB")

    def rounds(self, rows: list[tuple[Series, callable]], label: str) -> None:
        """Runs every row once per round, the order rotated each round."""
        for n in range(self.args.rounds):
            if self.out_of_time():
                self.skipped.append(f"{label}: rounds {n + 1}-{self.args.rounds} (budget)")
                return
            log(f"{label}: round {n + 1} of {self.args.rounds}")
            shift = n % len(rows)
            for series, go in rows[shift:] + rows[:shift]:
                go(series)
            self.clean_up()

    def clean_up(self) -> None:
        """Deletes what the round uploaded and waits for the collector, outside any measurement."""
        if self.uploaded:
            self.server.delete_videos(self.uploaded)
            self.uploaded = []
        self.server.collect()


def write_file(path: Path, size: int) -> None:
    """Random bytes (incompressible), then read once so the page cache holds them."""
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MIB))
            out.write(chunk)
            left -= len(chunk)
    with open(path, "rb") as source:
        while source.read(8 * MIB):
            pass


# --------------------------------------------------------------------------------------------------
# Cases


def case_large(bench: Bench) -> list[Series]:
    size = bench.args.large_mib * MIB
    path = bench.tmp / "large.mp4"
    write_file(path, size)
    vodup_env = bench.vodup_env()
    upload = bench.vodup(str(path), "--no-resume", "--json")
    # Steady state: at least 2 GiB written to the server before the first measured round.
    warm = Series("warm-up")
    written = 0
    while written < 2 * GIB and not bench.args.quick:
        bench.run(warm, upload, vodup_env, size)
        written += size
        if warm.error:
            raise SystemExit(f"the warm-up upload failed: {warm.error}")
    bench.clean_up()
    rows = [
        (Series("`vodup upload video` (8 MiB parts, 4 in flight)"), lambda s: bench.run(s, upload, vodup_env, size)),
        (Series("oss2 resumable_upload, 1 thread"),
         lambda s: bench.run(s, bench.official("oss2-large", str(path), "1"), clean_env(), size)),
        (Series("oss2 resumable_upload, 4 threads"),
         lambda s: bench.run(s, bench.official("oss2-large", str(path), "4"), clean_env(), size)),
        (Series("alibabacloud-oss-v2 Uploader, defaults"),
         lambda s: bench.run(s, bench.official("ossv2-large", str(path)), clean_env(), size)),
        (Series("alibabacloud-oss-v2 Uploader, 8 in flight x 8 MiB"),
         lambda s: bench.run(s, bench.official("ossv2-large", str(path), "8", str(8 * MIB)), clean_env(), size)),
        # Not an upload: the two copies any client makes (file to process, process to socket), no HTTP, no
        # hashing, to a sink that discards; the floor under the client CPU-s/GiB column.
        (Series("floor: read + send to a discarding socket (bench/floor.py)", via_server=False),
         lambda s: bench.run(s, [sys.executable, str(FLOOR), "send", str(path), str(sink_port)], clean_env(), size)),
    ]  # fmt: skip
    sink = subprocess.Popen([sys.executable, str(FLOOR), "sink"], stdout=subprocess.PIPE, text=True)
    try:
        sink_port = int(sink.stdout.readline())
        bench.rounds(rows, "large")
    finally:
        sink.kill()
        sink.wait()
    path.unlink()
    return [series for series, _ in rows]


def case_many(bench: Bench) -> list[Series]:
    count, size = bench.args.files, bench.args.file_kib * 1024
    folder = bench.tmp / "many"
    folder.mkdir()
    for n in range(count):
        (folder / f"clip-{n:04d}.mp4").write_bytes(os.urandom(size))
    total = count * size
    checkpoints = bench.tmp / "checkpoints"

    def vodup(series: Series) -> None:
        shutil.rmtree(checkpoints, ignore_errors=True)
        checkpoints.mkdir()
        command = bench.vodup(str(folder), "--jobs", "8", "--json", "--checkpoint-dir", str(checkpoints))
        bench.run(series, command, bench.vodup_env(), total, count)

    def official(case: str, pool: int):
        return lambda s: bench.run(s, bench.official(case, str(folder), str(pool)), clean_env(), total, count)

    rows = [(Series("`vodup upload video DIR --jobs 8`"), vodup)]
    for client, label in (("voduploadsdk", "voduploadsdk uploadLocalVideo"), ("oss2", "CreateUploadVideo + oss2 put_object"),
                          ("ossv2", "CreateUploadVideo + oss-v2 put_object_from_file")):  # fmt: skip
        rows.append((Series(f"loop: {label}"), official(f"loop-{client}", 1)))
    for client, label in (("voduploadsdk", "voduploadsdk"), ("oss2", "oss2"), ("ossv2", "oss-v2")):
        rows.append((Series(f"pool of 8 (context): {label}"), official(f"loop-{client}", 8)))
    bench.rounds(rows, "many")
    shutil.rmtree(folder)
    return [series for series, _ in rows]


def case_web(bench: Bench) -> list[Series]:
    size = bench.args.large_mib * MIB
    folder = bench.tmp / "origin"
    folder.mkdir()
    write_file(folder / "remote.mp4", size)
    # A plain origin in its own process (threaded, no ranges), the same for both clients.
    origin = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env(PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    try:
        line = origin.stdout.readline()  # "Serving HTTP on 127.0.0.1 port P (http://127.0.0.1:P/) ..."
        port = int(line.split(" port ")[1].split()[0])
        url = f"http://127.0.0.1:{port}/remote.mp4"
        rows = [
            (Series("`vodup upload video URL` (streamed)"),
             lambda s: bench.run(s, bench.vodup(url, "--no-resume", "--json"), bench.vodup_env(), size)),
            (Series("voduploadsdk uploadWebVideo (temporary file)"),
             lambda s: bench.run(s, bench.official("web-voduploadsdk", url), clean_env(), size)),
        ]  # fmt: skip
        bench.rounds(rows, "web")
    finally:
        origin.terminate()
        origin.wait()
    shutil.rmtree(folder)
    return [series for series, _ in rows]


def case_control(bench: Bench) -> dict:
    """`ingest_bench control --json`: it starts its own node, so nothing here loads the suite's server."""
    tool = bench.args.vodup.parent / "ingest_bench"
    if bench.args.quick:
        shape = ["--clients", "8", "--seconds", "1", "--rounds", "1"]
    else:
        shape = ["--clients", "64", "--seconds", "5", "--rounds", str(bench.args.rounds)]
    run = subprocess.run([str(tool), "control", "--vodup", str(bench.args.vodup), "--json", *shape],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    if run.returncode != 0:
        return {"error": f"ingest_bench control exited {run.returncode}: {run.stderr[-2000:]}"}
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    for route in ("liveness", "create_upload_video"):
        if figures[route]["errors"]:
            figures["error"] = f"{route}: {figures[route]['errors']} failed calls: {figures[route]['first_error']}"
    return figures


def case_memory(bench: Bench) -> list[Series]:
    sizes = [8, 32] if bench.args.quick else [64, 256, 1024, 4096]
    rows = []
    for mib in sizes:
        path = bench.tmp / f"memory-{mib}.mp4"
        write_file(path, mib * MIB)
        command = bench.vodup(str(path), "--no-resume", "--json")
        rows.append((Series(f"`vodup upload video`, {mib} MiB"),
                     lambda s, c=command, n=mib * MIB: bench.run(s, c, bench.vodup_env(), n)))  # fmt: skip
    concurrent = 4 if bench.args.quick else 16
    each = (8 if bench.args.quick else 64) * MIB
    many = []
    for n in range(concurrent):
        path = bench.tmp / f"concurrent-{n}.mp4"
        write_file(path, each)
        many.append(bench.vodup(str(path), "--no-resume", "--json"))
    rows.append((Series(f"{concurrent} x `vodup upload video` of {each // MIB} MiB at once"),
                 lambda s: bench.run_together(s, many, bench.vodup_env(), each)))  # fmt: skip
    bench.rounds(rows, "memory")
    for path in bench.tmp.glob("*.mp4"):
        path.unlink()
    return [series for series, _ in rows]


def garage(bench: Bench) -> dict:
    """The VODUP_TEST_GARAGE_* settings of a running cluster: the environment's, or one started here."""
    names = ("ENDPOINT", "REGION", "BUCKET", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
    if all(os.environ.get(f"VODUP_TEST_GARAGE_{name}") for name in names):
        return {name: os.environ[f"VODUP_TEST_GARAGE_{name}"] for name in names}
    cluster = bench.tmp / "garage"
    binary = subprocess.run([str(REPO_ROOT / "scripts" / "garage")], capture_output=True, text=True)
    if binary.returncode != 0:
        raise SystemExit(f"scripts/garage failed: {binary.stderr[-2000:]}")
    up = subprocess.run([str(REPO_ROOT / "scripts" / "garage-throwaway.sh"), "up", str(cluster)],
                        capture_output=True, text=True, env={**os.environ, "GARAGE": binary.stdout.strip()})  # fmt: skip
    if up.returncode != 0:
        raise SystemExit(f"scripts/garage-throwaway.sh up failed: {up.stderr[-2000:]}")
    bench.stop_later.append([str(REPO_ROOT / "scripts" / "garage-throwaway.sh"), "down", str(cluster)])
    found = dict(line.split("=", 1) for line in up.stdout.splitlines() if line.startswith("VODUP_TEST_GARAGE_"))
    return {name: found[f"VODUP_TEST_GARAGE_{name}"] for name in names}


def case_s3(bench: Bench) -> list[Series]:
    settings = garage(bench)
    prefix = f"bench-{os.getpid()}-{int(time.time())}"
    keys = {"AWS_ACCESS_KEY_ID": settings["ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": settings["SECRET_ACCESS_KEY"]}
    folder = bench.tmp / "server-s3"
    server = start_server(
        bench.args.vodup, folder,
        ["--storage", f"s3://{settings['BUCKET']}/{prefix}/vodup", "--s3-endpoint", settings["ENDPOINT"],
         "--s3-region", settings["REGION"], "--s3-path-style"],
        keys,
    )  # fmt: skip
    size = bench.args.large_mib * MIB
    path = bench.tmp / "s3.mp4"
    write_file(path, size)
    s3_put = bench.args.vodup.parent / "s3_put"
    direct_env = clean_env(S3_BUCKET=settings["BUCKET"], S3_ENDPOINT=settings["ENDPOINT"],
                           S3_REGION=settings["REGION"], **keys)  # fmt: skip
    through = Bench(bench.args, server, bench.tmp)
    counter = iter(range(1_000_000))
    rows = [
        (Series("`vodup upload video` → vodup serve → Garage"),
         lambda s: through.run(s, through.vodup(str(path), "--no-resume", "--json"), through.vodup_env(), size)),
        (Series("`s3_put` → Garage (object_store, 8 MiB x 4)", via_server=False),
         lambda s: through.run(s, [str(s3_put), str(path), f"{prefix}/direct/{next(counter)}"], direct_env, size)),
    ]  # fmt: skip
    try:
        through.rounds(rows, "s3")
    finally:
        bench.skipped += through.skipped
        server.stop()
        path.unlink()
    return [series for series, _ in rows]


# --------------------------------------------------------------------------------------------------
# Report


def spread(series: Series, what, digits: int = 0) -> str:
    values = series.spread(what)
    if values is None:
        return "n/a"
    low, mid, high = values
    return f"{low:.{digits}f} / **{mid:.{digits}f}** / {high:.{digits}f}"


def median(series: Series, what) -> float | None:
    values = series.spread(what)
    return values[1] if values else None


def table(rows: list[Series], rate, unit: str, best_of: list[Series], ratio_label: str) -> list[str]:
    """Rate min/median/max, the ratio of each median to the best official median, CPU and memory."""
    best = max((m for m in (median(s, rate) for s in best_of) if m), default=None)
    lines = [
        f"| client | {unit} min / **median** / max | {ratio_label} | client CPU-s/GiB | server CPU-s/GiB"
        " | client peak RSS | server peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        if s.error:
            lines.append(f"| {s.name} | failed: {s.error} | | | | | |")
            continue
        mid = median(s, rate)
        ratio = f"{mid / best:.2f}x" if mid and best else "n/a"
        client_rss = median(s, lambda x: x.client_rss / MIB)
        server_rss = median(s, lambda x: x.server_rss / MIB)
        server_cpu = f"{median(s, server_cpu_per_gib) or 0:.2f}" if s.via_server else "n/a"
        server_rss_text = f"{server_rss or 0:.0f} MiB" if s.via_server else "n/a"
        lines.append(
            f"| {s.name} | {spread(s, rate, 1 if unit == 'files/s' else 0)} | {ratio}"
            f" | {median(s, client_cpu_per_gib) or 0:.2f} | {server_cpu}"
            f" | {client_rss or 0:.0f} MiB | {server_rss_text} |"
        )
    return lines


def cpu_model() -> str:
    """The CPU's model name and the SIMD it offers (figures differ between instances of one kind)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    simd = [name for name in ("avx2", "avx512f", "avx512vl", "sha_ni", "vpclmulqdq") if name in flags]
    return f"{model} ({', '.join(simd) or 'no AVX2'})"


def report(args: argparse.Namespace, results: dict[str, list[Series]], bench: Bench, command: str) -> str:
    lines = [
        f"Suite run of {datetime.datetime.now().isoformat(timespec='minutes')} on {platform.node()}:"
        f" {os.cpu_count()} CPUs, {cpu_model()}, Linux {platform.release()};"
        f" binary `{args.vodup.relative_to(REPO_ROOT) if args.vodup.is_relative_to(REPO_ROOT) else args.vodup}`;"
        f" {args.rounds} rounds{' (quick: proves it runs, measures nothing)' if args.quick else ''}.",
        "",
        f"Command: `{command}`",
    ]
    if "large" in results:
        rows = results["large"]
        lines += ["", f"### One {args.large_mib} MiB file (steady state: after 2 GiB written)", ""]
        official = [s for s in rows[1:] if not s.name.startswith("floor")]
        lines += table(rows, mb_per_s, "MB/s", official, "vs best official")
    if "many" in results:
        rows = results["many"]
        loops = [s for s in rows if s.name.startswith("loop")]
        lines += ["", f"### {args.files} files of {args.file_kib} KiB", ""]
        lines += table(rows, files_per_s, "files/s", loops, "vs fastest official loop")
    if "web" in results:
        rows = results["web"]
        lines += ["", f"### {args.large_mib} MiB from a loopback HTTP origin", ""]
        lines += table(rows, mb_per_s, "MB/s", rows[1:], "vs uploadWebVideo")
    if "s3" in results:
        rows = results["s3"]
        lines += ["", f"### {args.large_mib} MiB into a 3-node Garage cluster", ""]
        lines += table(rows, mb_per_s, "MB/s", rows[1:], "vs direct S3 writer")
    if "control" in results:
        c = results["control"]
        lines += ["", "### Control plane: one node on SQLite + disk, concurrent clients", ""]
        if "liveness" not in c:
            lines.append(f"failed: {c.get('error')}")
        else:
            lines += [
                f"{c['clients']} clients, {c['seconds']} s per measurement, {c['rounds']} rounds, the routes alternating.",
                "",
                "| route | calls/s min / **median** / max | p50 / p99 | server CPU-s per 1000 calls | failed calls |",
                "|---|---|---|---|---|",
            ]  # fmt: skip
            for name, route in (("`GET /healthz`", "liveness"), ("signed CreateUploadVideo", "create_upload_video")):
                r = c[route]
                rates = sorted(r["rates"])
                lines.append(
                    f"| {name} | {rates[0]:.0f} / **{rates[len(rates) // 2]:.0f}** / {rates[-1]:.0f}"
                    f" | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms | {r['server_cpu_s_per_1000']:.3f} | {r['errors']} |"
                )
            lines += ["", f"CreateUploadVideo / healthz: **{c['ratio']:.2f}**"]
    if "memory" in results:
        rows = results["memory"]
        lines += ["", "### Memory against size (`vodup upload video`, 8 MiB parts, 4 in flight)", ""]
        lines += [
            "| run | client peak RSS min / **median** / max | s per GiB (median) | server peak RSS (median) |",
            "|---|---|---|---|",
        ]
        for s in rows:
            if s.error:
                lines.append(f"| {s.name} | failed: {s.error} | | |")
                continue
            per_gib = median(s, lambda x: x.wall / (x.nbytes / GIB)) or 0
            lines.append(
                f"| {s.name} | {spread(s, lambda x: x.client_rss / MIB)} MiB | {per_gib:.2f}"
                f" | {median(s, lambda x: x.server_rss / MIB) or 0:.0f} MiB |"
            )
    if bench.skipped:
        lines += ["", "Skipped for time: " + "; ".join(bench.skipped)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.access(args.vodup, os.X_OK):
        log(f"no vodup binary at {args.vodup}: build it (`cargo build --release --bin vodup`) or pass --vodup")
        return 2
    command = "scripts/bench " + " ".join(argv if argv is not None else sys.argv[1:])
    tmp = Path(tempfile.mkdtemp(prefix="vodup-bench-"))
    server = start_server(args.vodup, tmp / "server")
    bench = Bench(args, server, tmp)
    results: dict[str, list[Series]] = {}
    try:
        for case in args.only:
            log(f"case {case}")
            run_case = {"large": case_large, "many": case_many, "web": case_web, "control": case_control,
                        "memory": case_memory, "s3": case_s3}[case]  # fmt: skip
            results[case] = run_case(bench)
    finally:
        for stop in bench.stop_later:
            subprocess.run(stop, capture_output=True)
        how = server.stop()
        if server.process.returncode not in (0, None):
            log(f"vodup serve {how}; its log:\n{server.log_tail()}")
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(args, results, bench, command.strip())
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        raw = {case: rows if isinstance(rows, dict) else
               [{"name": s.name, "error": s.error, "samples": [vars(x) for x in s.samples]} for s in rows]
               for case, rows in results.items()}  # fmt: skip
        args.json.write_text(json.dumps(raw, indent=2))
    failed = [s.name for rows in results.values() if not isinstance(rows, dict) for s in rows if s.error or not s.samples]
    failed += [f"{case}: {rows['error']}" for case, rows in results.items() if isinstance(rows, dict) and "error" in rows]
    if failed:
        log(f"failed or not measured: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
