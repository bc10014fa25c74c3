"""oss2 2.19.1 uploading with the STS credentials `vodup serve` hands out (oss-api.md §1, §3, §8, §9.1).

oss2 signs V1 by default and V4 with `auth_version='v4'` plus `region=` on the Bucket; it addresses an
IP endpoint path-style and encodes `/` in keys as `%2F`. CRC-64 checking (`enable_crc`) is on by default:
every PutObject and UploadPart response's `x-oss-hash-crc64ecma` is compared with oss2's own CRC, and a
fresh resumable upload also checks the combined CRC at Complete, so a mismatch fails the upload.
"""

from __future__ import annotations

import hashlib
import json
import time

import oss2
import pytest
from oss2.utils import Crc64

MIB = 1024 * 1024


def crc64(data: bytes) -> int:
    c = Crc64()
    c.update(data)
    return c.crc


def store(tmp_path) -> oss2.ResumableStore:
    """A checkpoint store in the test's temp dir (the default would be ~/.py-oss-upload)."""
    return oss2.ResumableStore(root=str(tmp_path), dir="oss2-checkpoints")


def test_put_object_with_sts_v1(vodup):
    created = vodup.create_upload_video("/home/u/clip.mp4")
    key = created["UploadAddress"]["FileName"]
    bucket = vodup.sts_bucket(created["UploadAuth"], created["UploadAddress"])
    data = b"small video payload " * 500

    result = bucket.put_object(key, data)

    # oss2 already compared the CRC header with its own; check it was there to compare.
    assert result.crc == crc64(data)
    assert result.etag == hashlib.md5(data).hexdigest().upper()
    assert result.headers["x-oss-request-id"]
    video = vodup.wait_video_status(created["VideoId"])
    assert video["Size"] == len(data)
    stored = vodup.oss_bucket().get_object(key)  # a full GET: oss2 checks its CRC too
    assert stored.read() == data
    assert stored.server_crc == crc64(data)
    assert stored.object_type == "Normal"
    assert stored.content_type == "video/mp4"
    # HEAD errors have no body; oss2 decodes the error from the x-oss-err header (oss-api.md §3.8).
    with pytest.raises(oss2.exceptions.NoSuchKey) as caught:
        vodup.oss_bucket().head_object(key + ".missing")
    assert caught.value.status == 404 and caught.value.request_id


def test_resumable_upload_two_threads(vodup, random_file, tmp_path):
    source = random_file("big.mp4", 24 * MIB + 12345, seed=1)
    created = vodup.create_upload_video(str(source))
    key = created["UploadAddress"]["FileName"]
    bucket = vodup.sts_bucket(created["UploadAuth"], created["UploadAddress"])
    progress = []

    result = oss2.resumable_upload(
        bucket, key, str(source), store=store(tmp_path),
        multipart_threshold=MIB, part_size=2 * MIB, num_threads=2,
        progress_callback=lambda done, total: progress.append(done),
    )  # fmt: skip

    data = source.read_bytes()
    assert result.crc == crc64(
        data
    )  # the whole-object CRC Complete returned, checked by oss2 against its parts
    assert max(progress) == len(data)
    assert not any((tmp_path / "oss2-checkpoints").iterdir()), "oss2 deletes its record after success"
    video = vodup.wait_video_status(created["VideoId"])
    assert video["Size"] == len(data)
    head = vodup.oss_bucket().head_object(key)
    assert head.object_type == "Multipart"
    assert head.server_crc == crc64(data)
    assert head.content_type == "video/mp4"  # guessed by oss2 from the key at Initiate (oss-api.md §3.2)
    assert vodup.fetch(vodup.mezzanine(created["VideoId"])["FileURL"]) == data


def test_v4_signing_put_and_resumable(vodup, random_file, tmp_path):
    v4 = {"auth_kwargs": {"auth_version": "v4"}, "region": vodup.region}

    image = vodup.core_call(_create_upload_image())
    address, auth = vodup.decode(image["UploadAddress"]), vodup.decode(image["UploadAuth"])
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    result = vodup.sts_bucket(auth, address, **v4).put_object(address["FileName"], png)
    assert result.crc == crc64(png)

    source = random_file("v4.mp4", 6 * MIB + 1, seed=2)
    created = vodup.create_upload_video(str(source))
    bucket = vodup.sts_bucket(created["UploadAuth"], created["UploadAddress"], **v4)
    result = oss2.resumable_upload(
        bucket,
        created["UploadAddress"]["FileName"],
        str(source),
        store=store(tmp_path),
        multipart_threshold=MIB,
        part_size=MIB,
        num_threads=2,
    )
    assert result.crc == crc64(source.read_bytes())
    vodup.wait_video_status(created["VideoId"])
    assert vodup.fetch(vodup.mezzanine(created["VideoId"])["FileURL"]) == source.read_bytes()

    from aliyunsdkvod.request.v20170321.GetImageInfoRequest import GetImageInfoRequest

    request = GetImageInfoRequest()
    request.set_ImageId(image["ImageId"])
    request.set_OutputType("oss")
    info = vodup.core_call(request)["ImageInfo"]
    assert info["Status"] == "Normal"
    assert vodup.fetch(info["URL"]) == png


def _create_upload_image():
    from aliyunsdkvod.request.v20170321.CreateUploadImageRequest import CreateUploadImageRequest

    request = CreateUploadImageRequest()
    request.set_ImageType("default")
    request.set_ImageExt("png")
    return request


def test_list_parts_and_list_multipart_uploads_parse_in_oss2(vodup):
    """oss2 parses LastModified / Initiated only in OSS's `.000Z` form (its _ISO8601_RE); other
    milliseconds raise ValueError, which would break oss2's resume (its PartIterator)."""
    created = vodup.create_upload_video()
    key = created["UploadAddress"]["FileName"]
    bucket = vodup.oss_bucket()
    upload_id = bucket.init_multipart_upload(key).upload_id
    etags = [bucket.upload_part(key, upload_id, n, bytes([n]) * (100 * 1024)).etag for n in (1, 2, 3)]

    parts = bucket.list_parts(key, upload_id).parts
    assert [(p.part_number, p.etag, p.size) for p in parts] == [
        (n, e, 100 * 1024) for n, e in zip((1, 2, 3), etags, strict=True)
    ]
    assert all(abs(p.last_modified - time.time()) < 120 for p in parts)
    # oss2's resume pages ListParts one part per request; the markers must chain.
    assert [p.part_number for p in oss2.PartIterator(bucket, key, upload_id, max_parts=1)] == [1, 2, 3]
    uploads = bucket.list_multipart_uploads().upload_list
    assert [(u.key, u.upload_id) for u in uploads] == [(key, upload_id)]


class Interrupted(Exception):
    pass


def test_resumable_upload_resumes_from_its_record(vodup, random_file, tmp_path, monkeypatch):
    """oss2 keeps {upload_id, size, mtime} and gets the parts back from ListParts, paged one by one first."""
    source = random_file("resume.mp4", 8 * MIB, seed=3)
    created = vodup.create_upload_video(str(source))
    key = created["UploadAddress"]["FileName"]
    checkpoints = store(tmp_path)

    def stop_after_three_parts(done, total):
        if done >= 3 * MIB:
            raise Interrupted

    bucket = vodup.sts_bucket(created["UploadAuth"], created["UploadAddress"])
    with pytest.raises(Interrupted):
        oss2.resumable_upload(
            bucket,
            key,
            str(source),
            store=checkpoints,
            multipart_threshold=MIB,
            part_size=MIB,
            num_threads=1,
            progress_callback=stop_after_three_parts,
        )
    (record_file,) = (tmp_path / "oss2-checkpoints").iterdir()
    upload_id = json.loads(record_file.read_text())["upload_id"]
    parts = vodup.oss_bucket().list_parts(key, upload_id).parts
    assert [(p.part_number, p.size) for p in parts] == [(1, MIB), (2, MIB), (3, MIB)]
    assert vodup.video_info(created["VideoId"])["Status"] == "Uploading"

    # A new process would build a new Bucket; only the record and the server's parts carry over.
    bucket = vodup.sts_bucket(created["UploadAuth"], created["UploadAddress"])
    sent = []
    upload_part = bucket.upload_part
    monkeypatch.setattr(
        bucket,
        "upload_part",
        lambda k, uid, n, *a, **kw: sent.append((uid, n)) or upload_part(k, uid, n, *a, **kw),
    )
    result = oss2.resumable_upload(
        bucket, key, str(source), store=checkpoints, multipart_threshold=MIB, part_size=MIB, num_threads=1
    )

    assert sent == [(upload_id, n) for n in range(4, 9)]
    assert result.crc == crc64(source.read_bytes())
    vodup.wait_video_status(created["VideoId"])
    assert vodup.oss_bucket().get_object(key).read() == source.read_bytes()


def test_m3u8_credential_covers_its_prefix_only(vodup):
    """Segments go to ObjectPrefix + name before the playlist; only the playlist completes the video."""
    created = vodup.create_upload_video("/media/show/index.m3u8")
    address = created["UploadAddress"]
    prefix = address["ObjectPrefix"]
    bucket = vodup.sts_bucket(created["UploadAuth"], address)

    bucket.put_object(prefix + "seg_000.ts", b"segment 0")
    bucket.put_object(prefix + "sub/seg_001.ts", b"segment 1")
    assert vodup.video_info(created["VideoId"])["Status"] == "Uploading"
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object("sv/elsewhere/seg_000.ts", b"x")
    with pytest.raises(oss2.exceptions.AccessDenied):  # an upload credential cannot read (vod-api.md §12)
        bucket.get_object(prefix + "seg_000.ts")
    assert bucket.head_object(prefix + "seg_000.ts").content_length == len(b"segment 0")

    playlist = b"#EXTM3U\n#EXTINF:2.0,\nseg_000.ts\n#EXTINF:2.0,\nsub/seg_001.ts\n#EXT-X-ENDLIST\n"
    bucket.put_object(address["FileName"], playlist)
    vodup.wait_video_status(created["VideoId"])
    assert vodup.oss_bucket().get_object(prefix + "sub/seg_001.ts").read() == b"segment 1"
    assert vodup.fetch(vodup.mezzanine(created["VideoId"])["FileURL"]) == playlist


def test_expired_credential_is_security_token_expired(start_vodup):
    """The code voduploadsdk compares to decide to refresh (oss-api.md §10, vod-api.md §12.1)."""
    server = start_vodup("--credential-lifetime", "1")
    created = server.create_upload_video()
    time.sleep(2.2)
    bucket = server.sts_bucket(created["UploadAuth"], created["UploadAddress"])
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object(created["UploadAddress"]["FileName"], b"late")
    assert (caught.value.status, caught.value.code) == (403, "SecurityTokenExpired")
