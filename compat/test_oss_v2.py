"""alibabacloud-oss-v2 1.4.1 uploading with `vodup serve`'s STS credentials (oss-api.md §1, §3, §8, §9.2).

v2 signs V4 by default (region required), keeps `/` literal in keys, adds `encoding-type=url` and
Content-MD5 to multipart calls, and its Uploader checks CRC-64 end to end: it combines the part CRCs
(from UploadPart, and on resume from ListParts' `HashCrc64ecma`) and compares the result with Complete's
`x-oss-hash-crc64ecma`, failing with "crc is inconsistent" on a mismatch.
"""

from __future__ import annotations

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_oss_v2.crc import Crc64

MIB = 1024 * 1024


def crc64(data: bytes) -> int:
    c = Crc64(0)
    c.update(data)
    return c.sum64()


def v2_client(server, auth: dict, **settings) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"]
    )
    cfg.region = server.region
    cfg.endpoint = server.oss_endpoint  # an IP endpoint: v2 addresses it path-style by itself
    for name, value in settings.items():
        setattr(cfg, name, value)
    return oss.Client(cfg)


def test_uploader_with_checkpoint(vodup, random_file, tmp_path):
    source = random_file("v2.mp4", 20 * MIB + 777, seed=11)
    created = vodup.create_upload_video(str(source))
    address = created["UploadAddress"]
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    uploader = v2_client(vodup, created["UploadAuth"]).uploader(
        part_size=2 * MIB, parallel_num=3, enable_checkpoint=True, checkpoint_dir=f"{checkpoints}/"
    )

    result = uploader.upload_file(
        oss.PutObjectRequest(bucket=address["Bucket"], key=address["FileName"]), filepath=str(source)
    )

    data = source.read_bytes()
    assert result.status_code == 200
    assert result.upload_id
    assert int(result.hash_crc64) == crc64(data)
    assert list(checkpoints.iterdir()) == [], "v2 removes its checkpoint after success"
    video = vodup.wait_video_status(created["VideoId"])
    assert video["Size"] == len(data)
    assert vodup.oss_bucket().head_object(address["FileName"]).object_type == "Multipart"
    assert vodup.fetch(vodup.mezzanine(created["VideoId"])["FileURL"]) == data


def test_put_object_and_single_part_uploader(vodup, tmp_path):
    created = vodup.create_upload_video("clip.mp4")
    address = created["UploadAddress"]
    client = v2_client(vodup, created["UploadAuth"])
    small = tmp_path / "small.mp4"
    small.write_bytes(b"tiny video " * 300)

    # Smaller than part_size: the Uploader sends one PutObject.
    result = client.uploader().upload_file(
        oss.PutObjectRequest(bucket=address["Bucket"], key=address["FileName"]), filepath=str(small)
    )

    assert int(result.hash_crc64) == crc64(small.read_bytes())
    assert result.etag.strip('"') == __import__("hashlib").md5(small.read_bytes()).hexdigest().upper()
    vodup.wait_video_status(created["VideoId"])
    assert vodup.oss_bucket().get_object(address["FileName"]).read() == small.read_bytes()
    # The credential may HEAD its own key; a HEAD error (no body, x-oss-err header) still parses in v2.
    # Another key is outside the credential's scope: AccessDenied before any existence check (§12.1).
    head = client.head_object(oss.HeadObjectRequest(bucket=address["Bucket"], key=address["FileName"]))
    assert head.content_length == len(small.read_bytes()) and head.object_type == "Normal"
    with pytest.raises(oss.exceptions.OperationError) as caught:
        client.head_object(
            oss.HeadObjectRequest(bucket=address["Bucket"], key=address["FileName"] + ".missing")
        )
    assert (caught.value.unwrap().status_code, caught.value.unwrap().code) == (403, "AccessDenied")


class Interrupted(Exception):
    pass


def test_uploader_resumes_from_checkpoint(vodup, random_file, tmp_path):
    """Interrupted after 3 of 8 parts, then resumed by a new client: only parts 4-8 are sent, the same
    upload completes, and the CRC combined from ListParts' HashCrc64ecma matches Complete's."""
    source = random_file("resume.mp4", 8 * MIB, seed=12)
    data = source.read_bytes()
    created = vodup.create_upload_video(str(source))
    address = created["UploadAddress"]
    request = dict(bucket=address["Bucket"], key=address["FileName"])
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    options = dict(part_size=MIB, enable_checkpoint=True, checkpoint_dir=f"{checkpoints}/")

    def stop_after_three_parts(increment, transferred, total):
        if transferred >= 3 * MIB:
            raise Interrupted

    first = v2_client(vodup, created["UploadAuth"]).uploader(parallel_num=1, **options)
    with pytest.raises(Interrupted):
        first.upload_file(
            oss.PutObjectRequest(progress_fn=stop_after_three_parts, **request), filepath=str(source)
        )
    assert len(list(checkpoints.iterdir())) == 1, "the checkpoint stays after a failure"

    admin = v2_client(
        vodup, {"AccessKeyId": vodup.ak, "AccessKeySecret": vodup.secret, "SecurityToken": None}
    )
    (upload,) = admin.list_multipart_uploads(
        oss.ListMultipartUploadsRequest(bucket=address["Bucket"])
    ).uploads
    assert upload.key == address["FileName"]
    client = v2_client(vodup, created["UploadAuth"])
    parts = client.list_parts(oss.ListPartsRequest(upload_id=upload.upload_id, **request)).parts
    assert [(p.part_number, p.size) for p in parts] == [(n, MIB) for n in (1, 2, 3)]
    assert [int(p.hash_crc64) for p in parts] == [crc64(data[i * MIB : (i + 1) * MIB]) for i in range(3)]
    assert vodup.video_info(created["VideoId"])["Status"] == "Uploading"

    progress = []
    second = client.uploader(parallel_num=3, **options)
    result = second.upload_file(
        oss.PutObjectRequest(progress_fn=lambda inc, done, total: progress.append(done), **request),
        filepath=str(source),
    )

    assert result.upload_id == upload.upload_id
    assert min(progress) == 4 * MIB and max(progress) == 8 * MIB and len(progress) == 5  # parts 4..8 only
    assert int(result.hash_crc64) == crc64(data)  # and the Uploader's combined CRC agreed with it
    assert list(checkpoints.iterdir()) == []
    vodup.wait_video_status(created["VideoId"])
    assert vodup.fetch(vodup.mezzanine(created["VideoId"])["FileURL"]) == data


def test_v1_signing_with_security_token_header(vodup, tmp_path):
    """v2 in V1 mode sends the token as a plain `security-token` header (oss-api.md §6.6)."""
    created = vodup.create_upload_video("v1.mp4")
    address = created["UploadAddress"]
    client = v2_client(vodup, created["UploadAuth"], signature_version="v1")
    data = bytes(range(256)) * 1024 + b"tail"

    result = client.put_object(
        oss.PutObjectRequest(bucket=address["Bucket"], key=address["FileName"], body=data)
    )

    assert int(result.hash_crc64) == crc64(data)
    vodup.wait_video_status(created["VideoId"])


def test_upload_credential_cannot_read_or_write_elsewhere(vodup):
    created = vodup.create_upload_video("scope.mp4")
    address = created["UploadAddress"]
    client = v2_client(vodup, created["UploadAuth"], retry_max_attempts=1)
    client.put_object(oss.PutObjectRequest(bucket=address["Bucket"], key=address["FileName"], body=b"mine"))

    for call in (
        lambda: client.get_object(oss.GetObjectRequest(bucket=address["Bucket"], key=address["FileName"])),
        lambda: client.put_object(
            oss.PutObjectRequest(bucket=address["Bucket"], key="sv/other/key.mp4", body=b"x")
        ),
        lambda: client.delete_object(
            oss.DeleteObjectRequest(bucket=address["Bucket"], key=address["FileName"])
        ),
        lambda: client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=address["Bucket"])),
    ):
        with pytest.raises(oss.exceptions.OperationError) as caught:
            call()
        error = caught.value.unwrap()
        assert isinstance(error, oss.exceptions.ServiceError), error
        assert (error.status_code, error.code) == (403, "AccessDenied")
        assert error.request_id


def test_v4_region_comes_from_upload_auth(start_vodup):
    """V4 signs a region; mobile SDKs take it from UploadAuth.Region, which is the service's --region."""
    server = start_vodup("--region", "eu-central-1")
    created = server.create_upload_video("eu.mp4")
    auth, address = created["UploadAuth"], created["UploadAddress"]
    assert auth["Region"] == server.region == "eu-central-1"

    wrong = v2_client(server, auth, region="cn-shanghai", retry_max_attempts=1)
    with pytest.raises(oss.exceptions.OperationError) as caught:
        wrong.put_object(oss.PutObjectRequest(bucket=address["Bucket"], key=address["FileName"], body=b"x"))
    assert 400 <= caught.value.unwrap().status_code < 500  # refused; the exact code is not specified

    v2_client(server, auth, region=auth["Region"]).put_object(
        oss.PutObjectRequest(bucket=address["Bucket"], key=address["FileName"], body=b"eu")
    )
    server.wait_video_status(created["VideoId"])
