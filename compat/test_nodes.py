"""Two `vodup serve` nodes on one PostgreSQL database and one Garage bucket, behind the testkit's
per-request round-robin balancer: what only several nodes can show. Collected only with
VODUP_TEST_BACKEND=remote (conftest.py); the rest of the suite runs against the same two nodes then.

One multipart upload by oss2 with one thread (one keep-alive connection) has its parts split across
both nodes, and Initiate, ListParts and Complete are answered by whichever node the balancer picks; the
STS credential one node minted verifies on the other; a VOD request replayed to the other node is refused
(nonces are shared), and a revoked key is refused by both.
"""

from __future__ import annotations

import oss2
import pytest
from oss2.utils import Crc64

from conftest import BACKEND

MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(BACKEND != "remote", reason="needs VODUP_TEST_BACKEND=remote")


def crc64(data: bytes) -> int:
    crc = Crc64()
    crc.update(data)
    return crc.crc


def test_parts_of_one_upload_land_on_both_nodes(vodup, random_file, tmp_path):
    assert len(vodup.node_vods) == 2
    source = random_file("split.mp4", 8 * MIB + 4321, seed=11)
    created = vodup.create_upload_video(str(source))
    key = created["UploadAddress"]["FileName"]
    assert created["UploadAddress"]["Endpoint"] == vodup.oss_endpoint, "clients are sent to the balancer"
    bucket = vodup.sts_bucket(created["UploadAuth"], created["UploadAddress"])
    before = vodup.node_requests("oss", "UploadPart")

    result = oss2.resumable_upload(
        bucket, key, str(source), store=oss2.ResumableStore(root=str(tmp_path), dir="ck"),
        multipart_threshold=MIB, part_size=MIB, num_threads=1,
    )  # fmt: skip

    after = vodup.node_requests("oss", "UploadPart")
    per_node = [a - b for a, b in zip(after, before)]
    assert sum(per_node) == 9 and min(per_node) >= 3, f"UploadPart per node: {per_node}"
    data = source.read_bytes()
    assert result.crc == crc64(data)
    # Any node lists the parts of an upload whose parts went to both (the long-lived key may write any key).
    owner = vodup.oss_bucket()
    upload_id = owner.init_multipart_upload(key + ".listed").upload_id
    for n in (1, 2, 3, 4):
        owner.upload_part(key + ".listed", upload_id, n, bytes([n]) * (100 * 1024))
    for _ in range(4):
        listed = owner.list_parts(key + ".listed", upload_id)
        assert [p.part_number for p in listed.parts] == [1, 2, 3, 4]
    owner.abort_multipart_upload(key + ".listed", upload_id)

    video = vodup.wait_video_status(created["VideoId"])
    assert video["Size"] == len(data)
    assert vodup.oss_bucket().head_object(key).server_crc == crc64(data)
    for _ in range(2):  # through both nodes
        assert vodup.fetch(vodup.mezzanine(created["VideoId"])["FileURL"]) == data


def signed_rpc_url(vod: str, ak: str, secret: str, params: dict) -> str:
    """A GET URL signed with RPC signature v1 (HMAC-SHA1, vod-api.md §2), one fresh SignatureNonce."""
    import base64
    import hashlib
    import hmac
    import uuid
    from datetime import datetime, timezone
    from urllib.parse import quote

    def enc(value) -> str:
        return quote(str(value), safe="-_.~")

    query = {
        "Format": "JSON", "Version": "2017-03-21", "AccessKeyId": ak, "SignatureMethod": "HMAC-SHA1",
        "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex, **params,
    }  # fmt: skip
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(query.items()))
    digest = hmac.new(f"{secret}&".encode(), f"GET&%2F&{enc(canonical)}".encode(), hashlib.sha1).digest()
    return f"http://{vod}/?{canonical}&Signature={enc(base64.b64encode(digest).decode())}"


def test_a_replayed_call_is_refused_by_the_other_node(vodup):
    import requests

    created = vodup.create_upload_video("replay.mp4")
    params = {"Action": "GetVideoInfo", "VideoId": created["VideoId"]}
    for first, second in ((0, 1), (1, 0)):
        url = signed_rpc_url(vodup.node_vods[first], vodup.ak, vodup.secret, params)
        answered = requests.get(url, timeout=10)
        assert answered.status_code == 200, answered.text
        replayed = requests.get(url.replace(vodup.node_vods[first], vodup.node_vods[second]), timeout=10)
        assert replayed.status_code == 400 and "SignatureNonceUsed" in replayed.text, replayed.text


def test_a_revoked_key_is_refused_by_both_nodes(vodup):
    import time

    from aliyunsdkcore.acs_exception.exceptions import ServerException

    ak, secret = vodup.create_key()
    client = vodup.core_client(ak, secret)
    created = vodup.create_upload_video("before-revoke.mp4")
    from aliyunsdkvod.request.v20170321.GetVideoInfoRequest import GetVideoInfoRequest

    def get_info():
        request = GetVideoInfoRequest()
        request.set_VideoId(created["VideoId"])
        return vodup.core_call(request, client)

    for _ in range(2):
        assert get_info()["Video"]["VideoId"] == created["VideoId"]
    vodup.revoke_key(ak)
    deadline = time.monotonic() + 15
    refused = 0
    while refused < 4:
        try:
            get_info()
            refused = 0
            assert time.monotonic() < deadline, "a node still accepts the revoked key after 15 s"
            time.sleep(0.2)
        except ServerException as error:
            assert error.error_code in ("InvalidAccessKeyId.Inactive", "InvalidAccessKeyId.NotFound"), error
            refused += 1
