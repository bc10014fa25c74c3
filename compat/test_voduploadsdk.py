"""voduploadsdk 1.0.2 (`AliyunVodUploader`), as installed, uploading real media to `vodup serve`.

The library is not modified. Two things are pointed at the service from outside it:
- its API client (an aliyun-python-sdk-core AcsClient, which has no endpoint setting in the uploader) gets
  the service as the `vod` endpoint of its region through `AcsClient.add_endpoint`;
- its ReportUploadProgress POST goes to the hard-coded `http://vod.cn-shanghai.aliyuncs.com/` (port 80,
  1 s timeout, and the whole upload fails if it fails, vod-api.md §5.13), so that name and port are
  redirected to the service's VOD port inside this test process only (conftest `redirect_host`).

After each upload the service's own API (through aliyun-python-sdk-vod) must say `Normal`, and the bytes
read back through the URL it hands out must be the source file's.
"""

from __future__ import annotations

import math
import re
import time
import urllib.parse

import pytest
from aliyunsdkvod.request.v20170321.GetAttachedMediaInfoRequest import GetAttachedMediaInfoRequest
from aliyunsdkvod.request.v20170321.GetImageInfoRequest import GetImageInfoRequest
from aliyunsdkvod.request.v20170321.GetUploadDetailsRequest import GetUploadDetailsRequest
from voduploadsdk.AliyunVodUploader import AliyunVodUploader
from voduploadsdk.UploadAttachedMediaRequest import UploadAttachedMediaRequest
from voduploadsdk.UploadImageRequest import UploadImageRequest
from voduploadsdk.UploadVideoRequest import UploadVideoRequest

MIB = 1024 * 1024
REPORT_HOST = "vod.cn-shanghai.aliyuncs.com"  # hard-coded in voduploadsdk's _VodResumableUploader


def make_uploader(server, redirect_host) -> AliyunVodUploader:
    redirect_host(REPORT_HOST, 80, server.vod)
    up = AliyunVodUploader(server.ak, server.secret)
    up.setApiRegion(server.region)
    up._AliyunVodUploader__vodClient.add_endpoint(server.region, "vod", server.vod)
    return up


@pytest.fixture
def uploader(vodup, redirect_host):
    return make_uploader(vodup, redirect_host)


def spy_upload_info(monkeypatch, up) -> list[dict]:
    """Records what CreateUploadVideo gave the uploader (its decoded UploadAddress included), unchanged."""
    seen: list[dict] = []
    create = up._AliyunVodUploader__createUploadVideo

    def spy(request):
        info = create(request)
        seen.append(info)
        return info

    monkeypatch.setattr(up, "_AliyunVodUploader__createUploadVideo", spy)
    return seen


def upload_details(server, video_id: str) -> dict:
    request = GetUploadDetailsRequest()
    request.set_MediaIds(video_id)
    answer = server.core_call(request)
    assert answer["NonExistMediaIds"] == [] and answer["ForbiddenMediaIds"] == []
    (detail,) = answer["UploadDetails"]
    assert detail["MediaId"] == video_id
    return detail


def test_local_video_over_10_mib_goes_multipart_and_reports_progress(vodup, uploader, media, monkeypatch):
    source = media.mp4("big.mp4", seconds=2, size="640x360", noise=True)
    size = source.stat().st_size
    parts = math.ceil(size / (10 * MIB))
    assert parts >= 3, f"the test video must span 3 of voduploadsdk's 10 MiB parts, got {size} bytes"
    seen = spy_upload_info(monkeypatch, uploader)

    # uploadProgressCallback (the SDK's documented hook, still called) runs after each part and before that
    # part's ReportUploadProgress, so GetUploadDetails then shows the report sent after the previous part.
    progress, mid_upload = [], []
    printed = uploader.uploadProgressCallback

    def on_progress(done, total):
        printed(done, total)
        if progress:
            expected, deadline = progress[-1], time.monotonic() + 5
            detail = upload_details(vodup, seen[0]["VideoId"])
            while detail.get("UploadSize") != expected and time.monotonic() < deadline:
                time.sleep(0.02)
                detail = upload_details(vodup, seen[0]["VideoId"])
            mid_upload.append(detail)
        progress.append(done)

    monkeypatch.setattr(uploader, "uploadProgressCallback", on_progress)

    info = uploader.uploadLocalVideo(UploadVideoRequest(str(source), "compat multipart video"))

    video_id = info["VideoId"]
    assert [i["VideoId"] for i in seen] == [video_id]
    assert progress == [min(n * 10 * MIB, size) for n in range(1, parts + 1)]
    assert len(mid_upload) == parts - 1
    for done, detail in zip(progress[:-1], mid_upload, strict=True):
        # The latest report, as vod-api.md §5.13/§5.20 store it: Source, DeviceModel, peer IP, doneBytes.
        assert (detail["Status"], detail["UploadStatus"]) == ("Uploading", "Uploading")
        assert (detail["UploadSource"], detail["DeviceModel"], detail["UploadIP"]) == (
            "PythonSDK",
            "Server",
            "127.0.0.1",
        )
        assert detail["UploadSize"] == done
        assert detail["FileSize"] == size
        assert abs(detail["UploadRatio"] - done / size) < 1e-6

    key = info["UploadAddress"]["FileName"]
    video = vodup.wait_video_status(video_id)
    assert video["Size"] == size
    assert video["Title"] == "compat multipart video"
    head = vodup.oss_bucket().head_object(key)
    assert head.object_type == "Multipart"
    assert head.content_length == size

    mezzanine = vodup.mezzanine(video_id)
    assert mezzanine["Status"] == "Normal"
    assert mezzanine["Size"] == size
    assert vodup.fetch(mezzanine["FileURL"]) == source.read_bytes()

    detail = upload_details(vodup, video_id)
    assert (detail["Status"], detail["UploadStatus"]) == ("Normal", "UploadSucc")
    assert detail["FileSize"] == size
    assert (detail["UploadSource"], detail["DeviceModel"], detail["UploadIP"]) == (
        "PythonSDK",
        "Server",
        "127.0.0.1",
    )
    # Once the object is complete the stored size wins over the advisory reports.
    assert detail["UploadSize"] == size
    assert detail["UploadRatio"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", detail["CompletionTime"])


def test_local_video_under_10_mib_is_one_put(vodup, uploader, media):
    source = media.mp4("small.mp4", seconds=2)
    info = uploader.uploadLocalVideo(UploadVideoRequest(str(source)))
    video = vodup.wait_video_status(info["VideoId"])
    # Title defaults to the file's basename (vod-api.md §8).
    assert video["Title"] == "small.mp4"
    assert vodup.oss_bucket().head_object(info["UploadAddress"]["FileName"]).object_type == "Normal"
    assert vodup.fetch(vodup.mezzanine(info["VideoId"])["FileURL"]) == source.read_bytes()


def test_image(vodup, uploader, media):
    source = media.image("cover.jpg")

    image_id, image_url = uploader.uploadImage(UploadImageRequest(str(source), "compat image"))

    assert image_id and image_url
    request = GetImageInfoRequest()
    request.set_ImageId(image_id)
    request.set_OutputType("oss")
    info = vodup.core_call(request)["ImageInfo"]
    assert info["ImageId"] == image_id
    assert info["Status"] == "Normal"
    assert info["Title"] == "compat image"
    assert info["ImageType"] == "default"
    assert info["Mezzanine"]["FileSize"] == str(source.stat().st_size)
    assert vodup.fetch(info["URL"]) == source.read_bytes()


def test_watermark_attached_media(vodup, uploader, media):
    source = media.image("watermark.png", size="160x90")

    result = uploader.uploadAttachedMedia(
        UploadAttachedMediaRequest(str(source), "watermark", "compat watermark")
    )

    media_id = result["MediaId"]
    assert result["MediaURL"] and result["FileURL"]
    request = GetAttachedMediaInfoRequest()
    request.set_MediaIds(media_id)
    request.set_OutputType("oss")
    answer = vodup.core_call(request)
    assert answer["NonExistMediaIds"] == []
    (item,) = answer["AttachedMediaList"]
    assert item["MediaId"] == media_id
    assert item["Status"] == "Normal"
    assert item["Type"] == "watermark"
    assert item["Title"] == "compat watermark"
    assert vodup.fetch(item["URL"]) == source.read_bytes()


def test_local_m3u8_with_segments(vodup, uploader, media, monkeypatch):
    playlist, segments = media.hls(seconds=6)
    assert len(segments) == 3
    seen = spy_upload_info(monkeypatch, uploader)

    video_id = uploader.uploadLocalM3u8(UploadVideoRequest(str(playlist), "compat hls"))

    (info,) = seen
    assert info["VideoId"] == video_id
    address = info["UploadAddress"]
    assert address["FileName"].endswith(".m3u8")
    assert address["FileName"].startswith(address["ObjectPrefix"])
    video = vodup.wait_video_status(video_id)
    assert video["Title"] == "compat hls"

    # The playlist object is voduploadsdk's rewrite: URI lines reduced to their basename, blank lines dropped.
    rewritten = "".join(
        (
            line.strip()
            if line.strip().startswith("#")
            else urllib.parse.unquote(line.strip().rsplit("/", 1)[-1])
        )
        + "\n"
        for line in playlist.read_text().splitlines()
        if line.strip()
    ).encode()
    mezzanine = vodup.mezzanine(video_id)
    assert mezzanine["Status"] == "Normal"
    assert vodup.fetch(mezzanine["FileURL"]) == rewritten

    # Each segment sits at ObjectPrefix + basename; read it back over the OSS plane with the AccessKey.
    bucket = vodup.oss_bucket()
    for segment in segments:
        stored = bucket.get_object(address["ObjectPrefix"] + segment.name).read()
        assert stored == segment.read_bytes(), segment.name


def test_finished_m3u8_is_refreshed_and_its_playlist_overwritten(vodup, uploader, media, tmp_path):
    """RefreshUploadVideo on a `Normal` M3U8 video (Alibaba's reference: it also overwrites a source, the
    VideoId staying the same): voduploadsdk's own refresh reads the finished video's upload address back,
    and its own upload path overwrites the playlist; the old playlist is what readers get until then."""
    playlist, segments = media.hls(seconds=4)
    video_id = uploader.uploadLocalM3u8(UploadVideoRequest(str(playlist), "compat hls refresh"))
    first = vodup.wait_video_status(video_id)
    old_bytes = vodup.fetch(vodup.mezzanine(video_id)["FileURL"])

    info = uploader._AliyunVodUploader__refresh_upload_video(video_id)
    assert info["VideoId"] == video_id
    address = info["UploadAddress"]
    assert address["FileName"].endswith(".m3u8") and address["FileName"].startswith(address["ObjectPrefix"])
    assert vodup.video_info(video_id)["Status"] == "Normal", "a refresh alone changes nothing"
    assert vodup.fetch(vodup.mezzanine(video_id)["FileURL"]) == old_bytes

    replacement = tmp_path / "replacement.m3u8"
    replacement.write_bytes(old_bytes + b"#EXT-X-ENDLIST\n# replaced\n")
    uploader._AliyunVodUploader__uploadOssObjectWithRetry(str(replacement), address["FileName"], info, None)

    video = vodup.wait_video_status(video_id)
    assert int(video["Size"]) == len(replacement.read_bytes()) != int(first["Size"])
    assert vodup.fetch(vodup.mezzanine(video_id)["FileURL"]) == replacement.read_bytes()
    bucket = vodup.oss_bucket()
    for segment in segments:
        assert bucket.get_object(address["ObjectPrefix"] + segment.name).read() == segment.read_bytes()


def test_expired_credential_is_refreshed_and_the_upload_retried(
    start_vodup, redirect_host, media, monkeypatch
):
    """OSS answers SecurityTokenExpired; voduploadsdk calls RefreshUploadVideo and uploads again (§8)."""
    server = start_vodup("--credential-lifetime", "2")
    up = make_uploader(server, redirect_host)
    source = media.mp4("late.mp4", seconds=1)
    refreshed = []
    refresh = up._AliyunVodUploader__refresh_upload_video
    monkeypatch.setattr(
        up,
        "_AliyunVodUploader__refresh_upload_video",
        lambda video_id: refreshed.append(video_id) or refresh(video_id),
    )

    # The start callback runs after CreateUploadVideo and before the upload: let the credential expire.
    info = up.uploadLocalVideo(
        UploadVideoRequest(str(source)), startUploadCallback=lambda upload_id, info: time.sleep(3.5)
    )

    assert refreshed == [info["VideoId"]]
    server.wait_video_status(info["VideoId"])
    assert server.fetch(server.mezzanine(info["VideoId"])["FileURL"]) == source.read_bytes()
