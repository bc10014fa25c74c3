"""The VOD API through Alibaba's two generated Python SDKs, against `vodup serve`.

- aliyun-python-sdk-vod 2.16.32 on aliyun-python-sdk-core 2.16.1 ("core"): signature v1 (HMAC-SHA1),
  params in the query, `Format=JSON`, `RegionId`, empty `SignatureType`.
- alibabacloud_vod20170321 3.12.1 on tea-openapi 0.4.6 ("tea"): its default ACS3-HMAC-SHA256
  ("tea-acs3", no Action/Format params, action in `x-acs-action`), and `signature_algorithm='v2'`
  ("tea-v1", RPC v1 with `Format=json` and `+` for spaces in the URL).

Each client calls every upload-side action it has a method for (vod-api.md §5.1-§5.4, §5.7-§5.10,
§5.14-§5.20) and the answers are checked field by field, JSON types included, because the tea models map
JSON by exact key and the Go/Java clients are stricter than Python about types.
"""

from __future__ import annotations

import datetime
import importlib
import json
import re
import time
import urllib.parse

import oss2
import pytest
import requests
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_vod20170321 import models as tea_models
from aliyunsdkcore.acs_exception.exceptions import ServerException

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"
# Reserved characters, a space, `+` (which tea sends as %2B while it sends spaces as `+`) and non-ASCII.
TRICKY_TITLE = "测试 title+&=*~ %20/'\""
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UPLOAD_AUTH_KEYS = {
    "SecurityToken",
    "AccessKeyId",
    "ExpireUTCTime",
    "AccessKeySecret",
    "Expiration",
    "Region",
}


def snake(name: str) -> str:
    """Wire name → tea model attribute (`VideoIds` → `video_ids`, `ImageURLs` → `image_urls`)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class CoreDriver:
    """aliyun-python-sdk-vod request classes sent by AcsClient; returns the JSON body."""

    name = "core"

    def __init__(self, server, **kwargs):
        self.client = server.core_client(**kwargs)

    def call(self, action: str, **params) -> dict:
        module = importlib.import_module(f"aliyunsdkvod.request.v20170321.{action}Request")
        request = getattr(module, f"{action}Request")()
        for name, value in params.items():
            getattr(request, f"set_{name}")(value)
        return json.loads(self.client.do_action_with_exception(request).decode("utf-8"))


class TeaDriver:
    """alibabacloud_vod20170321 Client methods; checks the response envelope and returns body.to_map()."""

    def __init__(self, server, signature_algorithm=None, **kwargs):
        self.name = "tea-v1" if signature_algorithm == "v2" else "tea-acs3"
        self.client = server.tea_client(signature_algorithm, **kwargs)

    def call(self, action: str, **params) -> dict:
        request = getattr(tea_models, f"{action}Request")(**{snake(k): v for k, v in params.items()})
        response = getattr(self.client, snake(action))(request)
        assert response.status_code == 200
        assert type(response.body) is getattr(tea_models, f"{action}ResponseBody")
        body = response.body.to_map()
        assert body["RequestId"] == response.headers.get("x-acs-request-id")
        return body


@pytest.fixture(params=["core", "tea-acs3", "tea-v1"])
def driver(request, vodup):
    if request.param == "core":
        return CoreDriver(vodup)
    return TeaDriver(vodup, "v2" if request.param == "tea-v1" else None)


def check_upload_auth(auth: dict, region: str, lifetime: int) -> None:
    """UploadAuth as every client decodes it (vod-api.md §4): all six keys, all strings."""
    assert set(auth) == UPLOAD_AUTH_KEYS, auth.keys()
    assert all(isinstance(v, str) and v for v in auth.values()), auth
    assert auth["AccessKeyId"].startswith("STS.")
    assert auth["Expiration"] == str(lifetime)  # a string: Go clients declare it `string`
    assert auth["Region"] == region
    assert TIMESTAMP.match(auth["ExpireUTCTime"]), auth["ExpireUTCTime"]
    expires = datetime.datetime.strptime(auth["ExpireUTCTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC
    )
    assert abs(expires.timestamp() - (time.time() + lifetime)) < 120


def check_video_address(address: dict, server, ext: str) -> None:
    assert address["Endpoint"] == server.oss_endpoint
    assert address["Bucket"] == server.bucket
    match = re.fullmatch(r"sv/([0-9a-f]{8})-([0-9a-f]{11})/\1-\2\." + ext, address["FileName"])
    assert match, address["FileName"]
    issued_ms = int(match.group(2), 16)  # issue time in epoch milliseconds, hex (vod-api.md §4)
    assert abs(issued_ms / 1000 - time.time()) < 120


def put_with_sts(server, created: dict, data: bytes) -> None:
    address, auth = server.decode(created["UploadAddress"]), server.decode(created["UploadAuth"])
    result = server.sts_bucket(auth, address).put_object(address["FileName"], data)
    assert result.status == 200


def fetch_status(url: str) -> int:
    return requests.get(url, timeout=30).status_code


def test_upload_lifecycle_through_every_action(vodup, driver):
    call = driver.call
    data = f"video bytes from {driver.name}".encode() * 1000

    # CreateUploadVideo: FileName may be a full local path with spaces; only its extension matters.
    created = call(
        "CreateUploadVideo",
        Title=TRICKY_TITLE,
        FileName="/data/my clips/a b.MP4",
        FileSize=len(data),
        Description="first",
        Tags="a,b",
    )
    video_id = created["VideoId"]
    assert re.fullmatch(r"[0-9a-f]{32}", video_id)
    address = vodup.decode(created["UploadAddress"])
    check_video_address(address, vodup, "mp4")
    check_upload_auth(vodup.decode(created["UploadAuth"]), vodup.region, 3600)
    assert call("GetVideoInfo", VideoId=video_id)["Video"]["Status"] == "Uploading"

    # RefreshUploadVideo: same address, fresh credential; the fresh one uploads.
    refreshed = call("RefreshUploadVideo", VideoId=video_id)
    assert refreshed["VideoId"] == video_id
    assert vodup.decode(refreshed["UploadAddress"]) == address
    new_auth = vodup.decode(refreshed["UploadAuth"])
    check_upload_auth(new_auth, vodup.region, 3600)
    assert new_auth["AccessKeyId"] != vodup.decode(created["UploadAuth"])["AccessKeyId"]
    put_with_sts(vodup, refreshed, data)

    # GetVideoInfo
    video = vodup.wait_video_status(video_id)
    video = call("GetVideoInfo", VideoId=video_id)["Video"]
    assert video["VideoId"] == video_id
    assert video["Title"] == TRICKY_TITLE
    assert video["Description"] == "first"
    assert video["Tags"] == "a,b"
    assert video["Status"] == "Normal"
    assert type(video["Size"]) is int and video["Size"] == len(data)
    assert TIMESTAMP.match(video["CreationTime"]) and TIMESTAMP.match(video["ModificationTime"])
    assert video["RegionId"] == vodup.region
    assert isinstance(video["Snapshots"]["Snapshot"], list)
    assert None not in video.values()

    # UpdateVideoInfo changes only what it is given.
    answer = call("UpdateVideoInfo", VideoId=video_id, Title="renamed", Tags="x,y")
    assert set(answer) == {"RequestId"}
    video = call("GetVideoInfo", VideoId=video_id)["Video"]
    assert (video["Title"], video["Tags"], video["Description"]) == ("renamed", "x,y", "first")

    # GetVideoInfos: a plain list, Snapshots a plain list, unknown ids listed, not an error.
    infos = call("GetVideoInfos", VideoIds=f"{video_id},{UNKNOWN_ID}")
    assert [v["VideoId"] for v in infos["VideoList"]] == [video_id]
    assert infos["VideoList"][0]["Title"] == "renamed"
    assert type(infos["VideoList"][0]["Size"]) is int
    assert isinstance(infos["VideoList"][0]["Snapshots"], list)
    assert infos["NonExistVideoIds"] == [UNKNOWN_ID]

    # GetVideoList: wrapped as VideoList.Video, with Total.
    listed = call("GetVideoList", Status="Normal", PageNo=1, PageSize=10)
    assert type(listed["Total"]) is int and listed["Total"] == 1
    assert [v["VideoId"] for v in listed["VideoList"]["Video"]] == [video_id]
    assert isinstance(listed["VideoList"]["Video"][0]["Snapshots"]["Snapshot"], list)
    assert call("GetVideoList", Status="Uploading")["Total"] == 0

    # GetMezzanineInfo: a presigned OSS URL that returns the bytes.
    mezzanine = call("GetMezzanineInfo", VideoId=video_id, OutputType="oss", AuthTimeout=600)["Mezzanine"]
    assert mezzanine["VideoId"] == video_id
    assert mezzanine["Status"] == "Normal"
    assert type(mezzanine["Size"]) is int and mezzanine["Size"] == len(data)
    assert vodup.fetch(mezzanine["FileURL"]) == data
    expires = urllib.parse.parse_qs(urllib.parse.urlsplit(mezzanine["FileURL"]).query)["Expires"][0]
    assert (
        abs(int(expires) - (time.time() + 600)) < 120
    )  # AuthTimeout=600 (V1 presign: absolute unix seconds)

    # GetUploadDetails
    details = call("GetUploadDetails", MediaIds=f"{video_id},{UNKNOWN_ID}", MediaType="video")
    (detail,) = details["UploadDetails"]
    assert detail["MediaId"] == video_id
    assert detail["Status"] == "Normal" and detail["UploadStatus"] == "UploadSucc"
    assert type(detail["FileSize"]) is int and detail["FileSize"] == len(data)
    assert type(detail["UploadSize"]) is int and detail["UploadSize"] == len(data)
    assert isinstance(detail["UploadRatio"], (int, float)) and detail["UploadRatio"] == 1
    assert details["NonExistMediaIds"] == [UNKNOWN_ID]

    # An .m3u8 FileName gets an ObjectPrefix: the playlist's "directory", trailing slash included.
    hls = vodup.decode(
        call("CreateUploadVideo", Title="hls", FileName="/data/hls/index.m3u8")["UploadAddress"]
    )
    check_video_address(hls, vodup, "m3u8")
    assert hls["ObjectPrefix"] == hls["FileName"].rsplit("/", 1)[0] + "/"

    # CreateUploadImage → upload → GetImageInfo → DeleteImage
    png = b"\x89PNG\r\n\x1a\n" + b"image" * 100
    image = call("CreateUploadImage", ImageType="default", ImageExt="png", Title="an image")
    image_id = image["ImageId"]
    assert re.fullmatch(r"[0-9a-f]{32}", image_id)
    assert image["ImageURL"] and image["FileURL"]
    image_address = vodup.decode(image["UploadAddress"])
    assert image_address["FileName"].startswith("image/default/") and image_address["FileName"].endswith(
        ".png"
    )
    check_upload_auth(vodup.decode(image["UploadAuth"]), vodup.region, 3600)
    put_with_sts(vodup, image, png)
    info = call("GetImageInfo", ImageId=image_id, OutputType="oss", AuthTimeout=600)["ImageInfo"]
    assert (info["ImageId"], info["Status"], info["ImageType"], info["Title"]) == (
        image_id,
        "Normal",
        "default",
        "an image",
    )
    assert TIMESTAMP.match(info["CreationTime"])
    assert info["Mezzanine"]["FileSize"] == str(len(png))  # a string in this model
    assert vodup.fetch(info["URL"]) == png
    assert set(call("DeleteImage", DeleteImageType="ImageId", ImageIds=image_id)) == {"RequestId"}
    assert fetch_status(info["URL"]) in (403, 404)

    # CreateUploadAttachedMedia → upload → GetAttachedMediaInfo → DeleteAttachedMedia
    attached = call(
        "CreateUploadAttachedMedia", BusinessType="watermark", MediaExt="png", Title="a watermark"
    )
    media_id = attached["MediaId"]
    assert attached["MediaURL"] and attached["FileURL"]
    check_upload_auth(vodup.decode(attached["UploadAuth"]), vodup.region, 3600)
    put_with_sts(vodup, attached, png)
    got = call("GetAttachedMediaInfo", MediaIds=f"{media_id},{UNKNOWN_ID}", OutputType="oss", AuthTimeout=600)
    (item,) = got["AttachedMediaList"]
    assert (item["MediaId"], item["Status"], item["Type"], item["Title"]) == (
        media_id,
        "Normal",
        "watermark",
        "a watermark",
    )
    assert got["NonExistMediaIds"] == [UNKNOWN_ID]
    assert vodup.fetch(item["URL"]) == png
    deleted = call("DeleteAttachedMedia", MediaIds=f"{media_id},{UNKNOWN_ID}")
    assert deleted["NonExistMediaIds"] == [UNKNOWN_ID]
    assert call("GetAttachedMediaInfo", MediaIds=media_id)["NonExistMediaIds"] == [media_id]
    assert fetch_status(item["URL"]) in (403, 404)

    # DeleteVideo: partly-unknown sets are not an error; the video and its object are gone.
    deleted = call("DeleteVideo", VideoIds=f"{video_id},{UNKNOWN_ID}")
    assert deleted["NonExistVideoIds"] == [UNKNOWN_ID]
    assert deleted.get("ForbiddenVideoIds", []) == []
    assert call("GetVideoInfos", VideoIds=video_id)["NonExistVideoIds"] == [video_id]
    assert fetch_status(mezzanine["FileURL"]) in (403, 404)


@pytest.mark.parametrize("signature_algorithm", [None, "v2"], ids=["acs3", "rpc-v1"])
def test_tea_models_parse_every_shape(vodup, signature_algorithm):
    """The generated models iterate lists and unwrap wrappers by exact key; a wrong shape breaks them."""
    m = tea_models
    client = vodup.tea_client(signature_algorithm)
    created = client.create_upload_video(m.CreateUploadVideoRequest(title="t", file_name="v.mp4")).body
    put_with_sts(vodup, created.to_map(), b"0123456789")
    vodup.wait_video_status(created.video_id)

    infos = client.get_video_infos(m.GetVideoInfosRequest(video_ids=f"{created.video_id},{UNKNOWN_ID}")).body
    assert isinstance(infos.video_list, list)
    assert isinstance(infos.video_list[0], m.GetVideoInfosResponseBodyVideoList)
    assert infos.video_list[0].size == 10 and infos.video_list[0].snapshots == []
    assert infos.non_exist_video_ids == [UNKNOWN_ID]

    listed = client.get_video_list(m.GetVideoListRequest()).body
    assert isinstance(listed.video_list, m.GetVideoListResponseBodyVideoList)
    assert isinstance(listed.video_list.video[0], m.GetVideoListResponseBodyVideoListVideo)
    assert listed.video_list.video[0].video_id == created.video_id
    assert listed.total == 1

    info = client.get_video_info(m.GetVideoInfoRequest(video_id=created.video_id)).body
    assert isinstance(info.video, m.GetVideoInfoResponseBodyVideo)
    assert info.video.status == "Normal" and info.video.size == 10

    mezzanine = client.get_mezzanine_info(
        m.GetMezzanineInfoRequest(video_id=created.video_id, output_type="oss")
    ).body
    assert isinstance(mezzanine.mezzanine, m.GetMezzanineInfoResponseBodyMezzanine)
    assert vodup.fetch(mezzanine.mezzanine.file_url) == b"0123456789"

    details = client.get_upload_details(m.GetUploadDetailsRequest(media_ids=created.video_id)).body
    assert isinstance(details.upload_details[0], m.GetUploadDetailsResponseBodyUploadDetails)
    assert details.upload_details[0].upload_status == "UploadSucc"

    attached = client.create_upload_attached_media(
        m.CreateUploadAttachedMediaRequest(business_type="watermark", media_ext="png")
    ).body
    got = client.get_attached_media_info(m.GetAttachedMediaInfoRequest(media_ids=attached.media_id)).body
    assert isinstance(got.attached_media_list[0], m.GetAttachedMediaInfoResponseBodyAttachedMediaList)
    assert got.attached_media_list[0].status == "Uploading"

    image = client.create_upload_image(m.CreateUploadImageRequest(image_type="cover", image_ext="jpg")).body
    got = client.get_image_info(m.GetImageInfoRequest(image_id=image.image_id)).body
    assert isinstance(got.image_info, m.GetImageInfoResponseBodyImageInfo)
    assert (got.image_info.status, got.image_info.image_type) == ("Uploading", "cover")

    deleted = client.delete_video(m.DeleteVideoRequest(video_ids=created.video_id)).body
    assert deleted.non_exist_video_ids == []


# --------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("signature_algorithm", [None, "v2"], ids=["acs3", "rpc-v1"])
def test_tea_errors(vodup, signature_algorithm):
    m = tea_models

    def refused(client, request=None):
        with pytest.raises(ClientException) as caught:
            client.get_video_info(request or m.GetVideoInfoRequest(video_id=UNKNOWN_ID))
        return caught.value

    error = refused(vodup.tea_client(signature_algorithm))
    assert (error.code, error.status_code) == ("InvalidVideo.NotFound", 404)
    assert error.request_id and error.request_id == error.data["RequestId"]

    error = refused(vodup.tea_client(signature_algorithm, secret="not-the-secret"))
    assert (error.code, error.status_code) == ("SignatureDoesNotMatch", 400)

    error = refused(vodup.tea_client(signature_algorithm, ak="LTAInoSuchKeyAnywhere00"))
    assert (error.code, error.status_code) == ("InvalidAccessKeyId.NotFound", 404)

    with pytest.raises(ClientException) as caught:
        vodup.tea_client(signature_algorithm).create_upload_video(
            m.CreateUploadVideoRequest(title="t", file_name="a.exe")
        )
    assert (caught.value.code, caught.value.status_code) == ("InvalidFileName.Extension", 400)


def test_core_errors(vodup):
    from aliyunsdkvod.request.v20170321.CreateUploadVideoRequest import CreateUploadVideoRequest
    from aliyunsdkvod.request.v20170321.GetVideoInfoRequest import GetVideoInfoRequest

    def refused(client, request=None):
        if request is None:
            request = GetVideoInfoRequest()
            request.set_VideoId(UNKNOWN_ID)
        with pytest.raises(ServerException) as caught:
            client.do_action_with_exception(request)
        return caught.value

    error = refused(vodup.core_client())
    assert (error.get_error_code(), error.get_http_status()) == ("InvalidVideo.NotFound", 404)
    assert error.get_request_id()

    # A wrong secret: the server's Message carries ":" + its StringToSign, the SDK finds it equal to its
    # own and re-labels the error InvalidAccessKeySecret (vod-api.md §3). Without the colon it would
    # crash with IndexError instead of raising ServerException.
    error = refused(vodup.core_client(secret="not-the-secret"))
    assert (error.get_error_code(), error.get_http_status()) == ("InvalidAccessKeySecret", 400)
    assert "AccessKeySecret is incorrect" in error.get_error_msg()

    error = refused(vodup.core_client(ak="LTAInoSuchKeyAnywhere00"))
    assert (error.get_error_code(), error.get_http_status()) == ("InvalidAccessKeyId.NotFound", 404)

    request = CreateUploadVideoRequest()
    request.set_Title("t")
    request.set_FileName("a.exe")
    error = refused(vodup.core_client(), request)
    assert (error.get_error_code(), error.get_http_status()) == ("InvalidFileName.Extension", 400)


def test_upload_credential_is_refused_on_the_vod_plane(vodup):
    """An UploadAuth (STS) credential may upload its one object, never call the VOD API (vod-api.md §12)."""
    from aliyunsdkcore.auth.credentials import StsTokenCredential
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkvod.request.v20170321.GetVideoInfoRequest import GetVideoInfoRequest

    created = vodup.create_upload_video()
    auth = created["UploadAuth"]

    client = AcsClient(
        region_id=vodup.region,
        credential=StsTokenCredential(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"]),
    )
    client.add_endpoint(vodup.region, "vod", vodup.vod)
    request = GetVideoInfoRequest()
    request.set_VideoId(created["VideoId"])
    with pytest.raises(ServerException) as caught:
        client.do_action_with_exception(request)
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("AccessDenied", 403)

    from alibabacloud_tea_openapi.utils_models import Config
    from alibabacloud_vod20170321.client import Client

    tea = Client(
        Config(
            access_key_id=auth["AccessKeyId"],
            access_key_secret=auth["AccessKeySecret"],
            security_token=auth["SecurityToken"],
            endpoint=vodup.vod,
            protocol="http",
        )
    )
    with pytest.raises(ClientException) as caught:
        tea.get_video_info(tea_models.GetVideoInfoRequest(video_id=created["VideoId"]))
    assert (caught.value.code, caught.value.status_code) == ("AccessDenied", 403)


def test_credential_lifetime_setting_reaches_upload_auth(start_vodup):
    server = start_vodup("--credential-lifetime", "900")
    created = server.create_upload_video()
    check_upload_auth(created["UploadAuth"], server.region, 900)
    # The credential works for its object and nothing else.
    bucket = server.sts_bucket(created["UploadAuth"], created["UploadAddress"])
    bucket.put_object(created["UploadAddress"]["FileName"], b"x")
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object(created["UploadAddress"]["FileName"] + ".other", b"x")


def test_keys_created_and_revoked_while_running(vodup):
    """`vodup keys` acts at once on the VOD plane (vod-api.md §12.2); both SDKs see the refusal."""
    ak, secret = vodup.create_key()
    core, tea = CoreDriver(vodup, ak=ak, secret=secret), TeaDriver(vodup, ak=ak, secret=secret)
    video_id = core.call("CreateUploadVideo", Title="second key", FileName="k.mp4")["VideoId"]
    assert tea.call("GetVideoInfo", VideoId=video_id)["Video"]["Status"] == "Uploading"

    vodup.revoke_key(ak)

    from aliyunsdkvod.request.v20170321.GetVideoInfoRequest import GetVideoInfoRequest

    request = GetVideoInfoRequest()
    request.set_VideoId(video_id)
    with pytest.raises(ServerException) as caught:
        core.client.do_action_with_exception(request)
    assert caught.value.get_error_code() == "InvalidAccessKeyId.Inactive"
    with pytest.raises(ClientException) as caught:
        tea.client.get_video_info(tea_models.GetVideoInfoRequest(video_id=video_id))
    assert caught.value.code == "InvalidAccessKeyId.Inactive"
    # The first key is untouched and still sees the video.
    assert vodup.video_info(video_id)["Status"] == "Uploading"
