"""Alibaba's official Node.js clients against `vodup serve`: ali-oss 6.23.0 and @alicloud/pop-core 1.8.0.

The clients are pinned in `compat/node/package.json` and its committed `package-lock.json`, installed by
`scripts/node` (`npm ci`) into the home cache, outside the clone. Each test runs one small script of
`compat/node/` with `node`: the job goes in as JSON on stdin, the result comes back as one JSON line on
stdout, and the checks happen here, against the server's own API and oss2 with the long-lived AccessKey.

ali-oss addresses an IP endpoint virtual-host style (Host: `<bucket>.oss-<region>.aliyuncs.com`), signs
V1 by default and V4 with `authorizationV4`, and sends a whole `put` body before it reads the answer, so
a refusal the server sends without reading the body reaches it as `write EPIPE` (infra.md §3b).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, absent
from oss2.utils import Crc64

NODE_DIR = REPO_ROOT / "compat" / "node"
KIB = 1024
MIB = 1024 * KIB
NODE_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The folder of the pinned clients: `VODUP_NODE_MODULES` (set by scripts/test), else scripts/node."""
    if not shutil.which("node"):
        absent("node is not installed (apt-get install -y --no-install-recommends nodejs npm)")
    configured = os.environ.get("VODUP_NODE_MODULES")
    if configured:
        folder = Path(configured)
    else:
        if not shutil.which("npm"):
            absent("npm is not installed, so scripts/node cannot install the pinned Node.js clients")
        made = subprocess.run(
            [str(REPO_ROOT / "scripts" / "node")], capture_output=True, text=True, timeout=300
        )
        if made.returncode != 0:
            absent(f"scripts/node could not install the pinned Node.js clients: {made.stderr[-2000:]}")
        folder = Path(made.stdout.strip()) / "node_modules"
    if not (folder / "ali-oss").is_dir() or not (folder / "@alicloud" / "pop-core").is_dir():
        absent(f"{folder} does not hold ali-oss and @alicloud/pop-core (run scripts/node)")
    return folder


@pytest.fixture
def node(node_modules, request):
    """node(script, job) runs compat/node/<script> with `job` as JSON on stdin; returns its JSON result."""
    logs: list[str] = []
    request.node.failure_sections = [("node stderr", lambda: "\n".join(logs)[-6000:])]

    def run(script: str, job: dict) -> dict:
        env = {**os.environ, "NODE_PATH": str(node_modules)}
        done = subprocess.run(
            ["node", str(NODE_DIR / script)],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT_S,
            env=env,
        )
        logs.append(f"--- node {script} (exit {done.returncode})\n{done.stderr}")
        assert done.returncode == 0, f"node {script} failed ({done.returncode}):\n{done.stderr[-4000:]}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


def crc64(data: bytes) -> str:
    c = Crc64()
    c.update(data)
    return str(c.crc)


def vod_job(server) -> dict:
    return {"endpoint": f"http://{server.vod}", "ak": server.ak, "secret": server.secret}


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_ali_oss_put_and_resumed_multipart_upload(vodup, node, random_file, v4):
    """`put`, and `multipartUpload` cancelled after 2 of 5 parts and resumed from its checkpoint."""
    small = random_file("small.mp4", 300 * KIB + 7, seed=3)
    large = random_file("large.mp4", 4 * 100 * KIB + 4321, seed=4)
    for_put = vodup.create_upload_video("small.mp4")
    for_parts = vodup.create_upload_video("large.mp4")

    result = node(
        "oss_upload.js",
        {
            "region": vodup.region,
            "v4": v4,
            "put": {
                "address": for_put["UploadAddress"],
                "auth": for_put["UploadAuth"],
                "file": str(small),
            },
            "multipart": {
                "address": for_parts["UploadAddress"],
                "auth": for_parts["UploadAuth"],
                "file": str(large),
                "partSize": 100 * KIB,
            },
        },
    )

    assert result["put"]["status"] == 200
    assert result["put"]["crc64"] == crc64(small.read_bytes())
    assert result["cancelled"] and result["cancelled"]["name"] == "cancel", result
    assert result["partsBefore"] == 2 and result["listedParts"] == [1, 2], result
    assert result["totalParts"] == 5
    assert result["resumedParts"] == 3, "the resume must send only the 3 missing parts"
    assert result["complete"]["status"] == 200
    for created, source in ((for_put, small), (for_parts, large)):
        vodup.wait_video_status(created["VideoId"])
        stored = vodup.oss_bucket().get_object(created["UploadAddress"]["FileName"])
        assert stored.read() == source.read_bytes()


def test_ali_oss_refused_puts_report_status_and_code(start_vodup, node):
    """Refused puts of 300 KiB, 2 MiB and 20 MiB, 10 tries each, cycling through three reasons: every try
    must report the 403 and its OSS code (and no error may escape onto a socket nobody listens on).
    Before the server drained refused bodies, ali-oss reported `write EPIPE` or `socket hang up` (status
    -1, no OSS code) for about 3 of 10 tries at 300 KiB and 2 MiB, and 6-7 of 10 at 20 MiB."""
    server = start_vodup()
    mine = server.create_upload_video("mine.mp4")
    other = server.create_upload_video("other.mp4")
    expiring = start_vodup("--credential-lifetime", "1")
    expired = expiring.create_upload_video("late.mp4")
    wrong_secret = {**mine["UploadAuth"], "AccessKeySecret": "not-the-secret"}
    cases = [
        {
            "name": "SignatureDoesNotMatch",
            "address": mine["UploadAddress"],
            "auth": wrong_secret,
            "object": mine["UploadAddress"]["FileName"],
        },
        {
            "name": "AccessDenied",  # this credential is scoped to another object
            "address": mine["UploadAddress"],
            "auth": mine["UploadAuth"],
            "object": other["UploadAddress"]["FileName"],
        },
        {
            "name": "SecurityTokenExpired",
            "address": expired["UploadAddress"],
            "auth": expired["UploadAuth"],
            "object": expired["UploadAddress"]["FileName"],
        },
    ]
    # The one-second credential has expired once the whole second its UploadAuth announces has passed.
    expires = datetime.datetime.strptime(expired["UploadAuth"]["ExpireUTCTime"], "%Y-%m-%dT%H:%M:%SZ")
    time.sleep(max(0.0, expires.replace(tzinfo=datetime.timezone.utc).timestamp() + 0.3 - time.time()))

    sizes = [300 * KIB, 2 * MIB, 20 * MIB]
    result = node(
        "refused_puts.js", {"region": server.region, "sizes": sizes, "tries": 10, "cases": cases}
    )

    results = result["results"]
    assert len(results) == 30
    unreadable = [r for r in results if (r["status"], r["code"]) != (403, r["case"]) or r["stray"]]
    summary = {
        f"{size // KIB} KiB": f"{sum(r['size'] == size for r in unreadable)}/10 unreadable"
        for size in sizes
    }
    seen = sorted({f"{r['case']}: {r['status']} {r['code']} {r['message'][:40]!r}" for r in unreadable})
    assert not unreadable, f"refusals not read as 403 + their code: {summary}; seen: {seen}"


def test_pop_core_upload_actions_and_full_upload(vodup, node, random_file):
    """Every upload action through pop-core, then the uploads with the decoded address and credential.
    The service does not read media, so pseudo-random files stand in for them."""
    video = random_file("clip.mp4", 1 * MIB + 123, seed=5)
    image = random_file("cover.jpg", 20 * KIB, seed=6)
    watermark = random_file("mark.png", 3 * KIB, seed=7)

    result = node(
        "vod_upload.js",
        {
            "vod": vod_job(vodup),
            "region": vodup.region,
            "video": str(video),
            "image": str(image),
            "attached": str(watermark),
        },
    )

    created = result["createUploadVideo"]
    video_id = created["VideoId"]
    assert created["RequestId"] and created["UploadAddress"]["Bucket"] == vodup.bucket
    assert created["UploadAddress"]["Endpoint"] == vodup.oss_endpoint
    assert created["UploadAuth"]["SecurityToken"]
    refreshed = result["refreshUploadVideo"]
    assert refreshed["VideoId"] == video_id
    assert refreshed["UploadAddress"]["FileName"] == created["UploadAddress"]["FileName"]
    assert refreshed["UploadAuth"]["AccessKeyId"] != created["UploadAuth"]["AccessKeyId"]
    assert result["videoUpload"]["status"] == 200
    info = result["getVideoInfo"]["Video"]
    assert info["VideoId"] == video_id and info["Status"] == "Normal" and info["Title"] == "pop-core video"
    assert info["Size"] == video.stat().st_size
    stored = vodup.oss_bucket().get_object(created["UploadAddress"]["FileName"]).read()
    assert stored == video.read_bytes()

    for answer, upload, source, id_field in (
        ("createUploadImage", "imageUpload", image, "ImageId"),
        ("createUploadAttachedMedia", "attachedUpload", watermark, "MediaId"),
    ):
        created = result[answer]
        assert created[id_field] and created["UploadAuth"]["SecurityToken"], created
        assert result[upload]["status"] == 200
        stored = vodup.oss_bucket().get_object(created["UploadAddress"]["FileName"]).read()
        assert stored == source.read_bytes()


def test_ali_oss_sts_refresh_recovers_from_an_expired_credential(start_vodup, node):
    """A 1 s credential, ali-oss refreshing every 5 s: three puts of 20 MiB after expiry each read
    SecurityTokenExpired (the refusal must be drained to be readable: before, most of them were
    `write EPIPE`); the retry after the interval refreshes through RefreshUploadVideo and succeeds."""
    server = start_vodup("--credential-lifetime", "1")
    size = 20 * MIB

    result = node(
        "sts_refresh.js",
        {
            "vod": vod_job(server),
            "region": server.region,
            "lifetimeMs": 1000,
            # The credential expires on a whole second, up to 2 s after the create: the three refused
            # tries must end before ali-oss refreshes.
            "intervalMs": 5000,
            "size": size,
            "refusedTries": 3,
        },
    )

    seen = [(r["status"], r["code"]) for r in result["refused"]]
    assert seen == [(403, "SecurityTokenExpired")] * 3, result["refused"]
    assert result["refusedAfterMs"] < 5000, "the refused tries ran past ali-oss's refresh interval"
    assert len(result["refreshes"]) == 1 and result["refreshes"][0] != result["firstKeyId"], result
    assert result["retry"]["status"] == 200
    assert result["retry"]["crc64"] == crc64(b"b" * size)
    video = server.wait_video_status(result["videoId"])
    assert video["Size"] == size
