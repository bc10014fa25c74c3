"""Alibaba's official clients, driven the way their samples drive them, one case per process.

Why this exists: the suite measures each client's own CPU seconds and peak RSS with `os.wait4`, so each
run of an official client is a process of its own: `python bench/clients.py CASE SERVER_JSON ARGS...`.
It prints one JSON line, `{"files": N, "bytes": B, "ids": [...]}`, and exits non-zero with a message on
stderr when the client failed. The clients are not modified; each upload gets its own CreateUploadVideo
(aliyun-python-sdk-vod) and STS credential, as in production.

Cases:
  oss2-large FILE THREADS            oss2.resumable_upload(bucket, key, file, num_threads=THREADS)
  ossv2-large FILE [PARALLEL PART]   alibabacloud-oss-v2 uploader().upload_file (defaults, or PARALLEL x PART bytes)
  loop-voduploadsdk DIR [POOL]       AliyunVodUploader.uploadLocalVideo per file (POOL threads, default 1)
  loop-oss2 DIR [POOL]               CreateUploadVideo + oss2 put_object per file
  loop-ossv2 DIR [POOL]              CreateUploadVideo + alibabacloud-oss-v2 put_object_from_file per file
  web-voduploadsdk URL               AliyunVodUploader.uploadWebVideo (downloads to a temp file, then uploads)

The network never leaves loopback: `socket.getaddrinfo` refuses every other name, except voduploadsdk's
hard-coded ReportUploadProgress host, which goes to the server's VOD port (as in compat/conftest.py).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import io
import json
import os
import socket
import sys
import tempfile
from pathlib import Path

REPORT_HOST = ("vod.cn-shanghai.aliyuncs.com", 80)
LOOPBACK = {"127.0.0.1", "localhost", "::1", "", None}
_real_getaddrinfo = socket.getaddrinfo


def stay_on_loopback(server: dict) -> None:
    host, port = server["vod"].rsplit(":", 1)

    def guarded(name, port_, *args, **kwargs):
        text = name.decode() if isinstance(name, bytes) else name
        try:
            number = int(port_) if port_ not in (None, "http") else 80
        except (TypeError, ValueError):
            number = -1
        if (str(text).lower(), number) == REPORT_HOST:
            return _real_getaddrinfo(host, int(port), *args, **kwargs)
        if text not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"bench: refusing to resolve {text!r}")
        return _real_getaddrinfo(name, port_, *args, **kwargs)

    socket.getaddrinfo = guarded


def decode(value: str) -> dict:
    """UploadAddress / UploadAuth: Base64 of UTF-8 JSON."""
    return json.loads(base64.b64decode(value, validate=True).decode("utf-8"))


def vod_client(server: dict):
    from aliyunsdkcore.client import AcsClient

    client = AcsClient(server["key_id"], server["key_secret"], server["region"], timeout=30, connect_timeout=5)
    client.add_endpoint(server["region"], "vod", server["vod"])
    return client


def create_upload_video(client, path: Path) -> tuple[str, dict, dict]:
    from aliyunsdkvod.request.v20170321.CreateUploadVideoRequest import CreateUploadVideoRequest

    request = CreateUploadVideoRequest()
    request.set_Title(path.name)
    request.set_FileName(str(path))
    created = json.loads(client.do_action_with_exception(request).decode("utf-8"))
    return created["VideoId"], decode(created["UploadAddress"]), decode(created["UploadAuth"])


def oss2_bucket(address: dict, auth: dict):
    import oss2

    return oss2.Bucket(
        oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"]),
        address["Endpoint"],
        address["Bucket"],
    )


def ossv2_client(server: dict, auth: dict, parallel: int | None = None, part: int | None = None):
    import alibabacloud_oss_v2 as oss

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"]
    )
    cfg.region = server["region"]
    cfg.endpoint = f"http://{server['oss']}"
    return oss.Client(cfg)


# --------------------------------------------------------------------------------------------------
# One large file


def oss2_large(server: dict, path: Path, threads: int) -> list[str]:
    import oss2

    video_id, address, auth = create_upload_video(vod_client(server), path)
    with tempfile.TemporaryDirectory() as records:
        oss2.resumable_upload(
            oss2_bucket(address, auth), address["FileName"], str(path),
            store=oss2.ResumableStore(root=records), num_threads=threads,
        )  # fmt: skip
    return [video_id]


def ossv2_large(server: dict, path: Path, parallel: int | None, part: int | None) -> list[str]:
    import alibabacloud_oss_v2 as oss

    video_id, address, auth = create_upload_video(vod_client(server), path)
    options = {}
    if parallel:
        options["parallel_num"] = parallel
    if part:
        options["part_size"] = part
    uploader = ossv2_client(server, auth).uploader(**options)
    uploader.upload_file(
        oss.PutObjectRequest(bucket=address["Bucket"], key=address["FileName"]), filepath=str(path)
    )
    return [video_id]


# --------------------------------------------------------------------------------------------------
# Many small files: one function per file, run in a loop or a pool


def per_file_voduploadsdk(server: dict):
    from voduploadsdk.AliyunVodUploader import AliyunVodUploader
    from voduploadsdk.UploadVideoRequest import UploadVideoRequest

    def make():
        uploader = AliyunVodUploader(server["key_id"], server["key_secret"])
        uploader.setApiRegion(server["region"])
        # The uploader has no endpoint setting; its AcsClient gets the server as its `vod` endpoint.
        uploader._AliyunVodUploader__vodClient.add_endpoint(server["region"], "vod", server["vod"])
        return uploader

    shared = make()

    def upload(path: Path, uploader=None) -> str:
        info = (uploader or shared).uploadLocalVideo(UploadVideoRequest(str(path)))
        if not (info and info.get("VideoId")):
            raise RuntimeError(f"uploadLocalVideo({path.name}) returned {info!r}")
        return info["VideoId"]

    return upload, make


def per_file_oss2(server: dict):
    client = vod_client(server)

    def upload(path: Path, _=None) -> str:
        video_id, address, auth = create_upload_video(client, path)
        with open(path, "rb") as source:
            put = oss2_bucket(address, auth).put_object(address["FileName"], source)
        if put.status != 200:
            raise RuntimeError(f"put_object({path.name}) answered {put.status}")
        return video_id

    return upload, None


def per_file_ossv2(server: dict):
    import alibabacloud_oss_v2 as oss

    client = vod_client(server)

    def upload(path: Path, _=None) -> str:
        video_id, address, auth = create_upload_video(client, path)
        ossv2_client(server, auth).put_object_from_file(
            oss.PutObjectRequest(bucket=address["Bucket"], key=address["FileName"]), str(path)
        )
        return video_id

    return upload, None


def many(server: dict, folder: Path, kind: str, pool: int) -> list[str]:
    upload, make = {
        "voduploadsdk": per_file_voduploadsdk,
        "oss2": per_file_oss2,
        "ossv2": per_file_ossv2,
    }[kind](server)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if pool <= 1:
        return [upload(path) for path in files]
    # voduploadsdk's uploader keeps per-upload state in itself: one per thread, as a pool user would.
    local = __import__("threading").local()

    def in_thread(path: Path) -> str:
        if make is not None and not hasattr(local, "uploader"):
            local.uploader = make()
        return upload(path, getattr(local, "uploader", None))

    with concurrent.futures.ThreadPoolExecutor(pool) as executor:
        return list(executor.map(in_thread, files))


# --------------------------------------------------------------------------------------------------


def web_voduploadsdk(server: dict, url: str) -> list[str]:
    import voduploadsdk.AliyunVodUtils as utils
    from voduploadsdk.UploadVideoRequest import UploadVideoRequest

    # uploadWebVideo downloads into `<site-packages>/dlfiles/`, but the library's mkDir creates only the
    # parent of the folder it is given, so in a fresh venv the download fails ("Download File Error")
    # until something else (its uploadLocalM3u8) has made that folder. Make it as the library names it.
    site = os.path.dirname(os.path.dirname(os.path.realpath(utils.__file__)))
    os.makedirs(os.path.join(site, "dlfiles"), exist_ok=True)

    _, make = per_file_voduploadsdk(server)
    video_id = make().uploadWebVideo(UploadVideoRequest(url))
    if not video_id:
        raise RuntimeError(f"uploadWebVideo({url}) returned {video_id!r}")
    return [video_id]


def main(argv: list[str]) -> int:
    case, server, rest = argv[0], json.loads(argv[1]), argv[2:]
    stay_on_loopback(server)
    # voduploadsdk prints log lines on stdout; the JSON line must stand alone there.
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):
        if case == "oss2-large":
            ids = oss2_large(server, Path(rest[0]), int(rest[1]))
        elif case == "ossv2-large":
            parallel = int(rest[1]) if len(rest) > 1 else None
            part = int(rest[2]) if len(rest) > 2 else None
            ids = ossv2_large(server, Path(rest[0]), parallel, part)
        elif case.startswith("loop-"):
            ids = many(server, Path(rest[0]), case.removeprefix("loop-"), int(rest[1]) if len(rest) > 1 else 1)
        elif case == "web-voduploadsdk":
            with tempfile.TemporaryDirectory() as folder:
                os.chdir(folder)  # where its downloader puts the temporary copy
                ids = web_voduploadsdk(server, rest[0])
        else:
            raise SystemExit(f"unknown case {case!r}")
    print(json.dumps({"ids": ids, "files": len(ids)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
