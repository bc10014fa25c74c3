#!/usr/bin/env python3
"""Differential test vectors made by the official Alibaba Cloud Python clients.

Why this exists: vodup's Rust code signs and verifies VOD RPC requests (signature v1 HMAC-SHA1 and
ACS3-HMAC-SHA256) and OSS requests (V1 and V4, Authorization header and presigned URL), and computes
CRC-64/XZ with combine. The rules were written down in prose (shared/specs/vod-api.md, oss-api.md); this
program produces ground truth from the pinned official libraries (compat/requirements.txt) so that a Rust
test can check byte-for-byte agreement on thousands of random cases.

What it does: for each scheme it draws random requests within what the clients accept, and lets each
client's own code build and sign them. The HTTP transport (requests' Session.send, in the copy vendored by
aliyun-python-sdk-core too) is replaced by a function that records the prepared request and aborts, so
nothing is sent; presigned URLs are returned by the clients themselves. The library's own string to sign,
canonical request and signature are captured by wrapping the internal functions that return them. Every
case is checked for internal consistency, then printed as one JSON object per line on stdout.

Determinism: all random choices come from random.Random seeded with "<seed>/<scheme>", and the libraries'
clock, nonces and platform strings (which end up in the signed User-Agent) are patched, so the output
depends only on --seed and --count, not on the machine or the time of day.

Usage: "$(scripts/venv)"/bin/python compat/differential/gen_vectors.py --seed 1 --count 500 [--schemes a,b]
"""

import argparse
import base64
import calendar
import datetime
import hashlib
import hmac
import importlib.metadata
import inspect
import json
import os
import platform
import random
import string
import sys
import time
import traceback
import types
from urllib.parse import parse_qsl, urlsplit

# The clients put platform details in User-Agent (signed by ACS3, recorded everywhere). oss2 computes its
# User-Agent at import time, so this must run before the clients are imported.
for _name, _value in (('system', 'Linux'), ('release', '6.1.0'), ('machine', 'x86_64'),
                      ('python_version', '3.11.7')):
    setattr(platform, _name, lambda _value=_value: _value)

try:
    import crcmod
    import oss2
    import oss2.auth
    import oss2.utils
    import requests
    import aliyunsdkcore.vendored.requests as core_requests
    from aliyunsdkcore.auth.algorithm import sha_hmac1
    from aliyunsdkcore.auth.credentials import StsTokenCredential
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import RpcRequest
    from aliyunsdkcore.utils import parameter_helper
    from alibabacloud_tea_openapi import utils as tea_utils
    from alibabacloud_tea_openapi.client import Client as TeaClient
    from alibabacloud_tea_openapi.utils_models import Config as TeaConfig, OpenApiRequest, Params as TeaParams
    from darabonba.core import DaraCore
    from darabonba.runtime import RuntimeOptions
    import alibabacloud_oss_v2 as ossv2
    from alibabacloud_oss_v2 import presigner as v2_presigner
    from alibabacloud_oss_v2.crc import Crc64 as V2Crc64
    from alibabacloud_oss_v2.signer import v1 as v2_signer_v1, v4 as v2_signer_v4
    from alibabacloud_oss_v2.types import OperationInput
except ImportError as error:
    sys.exit(f'gen_vectors: cannot import the pinned Alibaba clients ({error}); '
             'run with the interpreter of the venv printed by scripts/venv')

# aliyun-python-sdk-core prefers these environment credentials over the ones it is given.
os.environ.pop('ALIYUN_ACCESS_KEY_ID', None)
os.environ.pop('ALIYUN_ACCESS_KEY_SECRET', None)


def _client_name(distribution, note=''):
    return f'{distribution}/{importlib.metadata.version(distribution)}{note}'


CORE = _client_name('aliyun-python-sdk-core')
TEA = _client_name('alibabacloud-tea-openapi')
TEA_V1 = _client_name('alibabacloud-tea-openapi', " signature_algorithm='v2'")
OSS2 = _client_name('oss2')
OSS_V2 = _client_name('alibabacloud-oss-v2')
# alibabacloud-oss-v2 never copies Config.additional_headers into the SigningContext; these cases set the
# context field themselves before SignerV4 runs.
OSS_V2_ADDITIONAL = _client_name('alibabacloud-oss-v2', ' +SigningContext.additional_headers')
CRCMOD = 'crcmod'

# Shared transports (their send is intercepted, see _install_interceptors).
OSS2_SESSION = oss2.Session()
V2_HTTP_CLIENT = ossv2.transport.RequestsHttpClient()


class VectorError(Exception):
    """A case whose recorded fields disagree with each other."""


# ---------------------------------------------------------------------------------------------------------
# Interception: clock, nonces, transport and the libraries' internal signing results.

class _Case:
    """State of the case being generated, read by the patched clock and nonce functions."""
    now = 0.0
    rng = random.Random(0)
    additional_headers = None


CASE = _Case()
CAPTURED = {}


class _FrozenDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.datetime.fromtimestamp(CASE.now, tz)

    @classmethod
    def utcnow(cls):
        return datetime.datetime.fromtimestamp(CASE.now, datetime.timezone.utc).replace(tzinfo=None)


class _RequestCaptured(BaseException):
    """Raised instead of sending; a BaseException so that no client retries or wraps it."""


def _capture_send(session, prepared_request, **kwargs):
    CAPTURED['http'] = prepared_request
    raise _RequestCaptured()


def _nonce():
    return '%032x' % CASE.rng.getrandbits(128)


def _record_result(owner, name, slot):
    """Wrap owner.name so that each call stores its return value in CAPTURED[slot]."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        CAPTURED[slot] = result
        return result

    is_static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    setattr(owner, name, staticmethod(wrapper) if is_static else wrapper)


def _record_argument(owner, name, slot, position):
    """Wrap owner.name so that each call stores its positional argument `position` in CAPTURED[slot]."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        CAPTURED[slot] = args[position]
        return original(*args, **kwargs)

    is_static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    setattr(owner, name, staticmethod(wrapper) if is_static else wrapper)


def _sign_with_case_additional_headers(original):
    def sign(self, signing_ctx):
        if CASE.additional_headers is not None:
            signing_ctx.additional_headers = CASE.additional_headers
        return original(self, signing_ctx)
    return sign


def _install_interceptors():
    real_gmtime = time.gmtime
    time.time = lambda: CASE.now
    time.gmtime = lambda secs=None: real_gmtime(CASE.now if secs is None else secs)
    v2_datetime = types.SimpleNamespace(datetime=_FrozenDatetime, timezone=datetime.timezone,
                                        timedelta=datetime.timedelta)
    oss2.auth.datetime = _FrozenDatetime
    tea_utils.datetime = _FrozenDatetime
    v2_signer_v1.datetime = v2_datetime
    v2_signer_v4.datetime = v2_datetime
    v2_presigner.datetime = v2_datetime

    parameter_helper.get_uuid = _nonce
    tea_utils.Utils.get_nonce = staticmethod(_nonce)

    requests.Session.send = _capture_send
    core_requests.Session.send = _capture_send
    # tea builds a TLS-configured session per host:port (slow); one plain session does, as nothing is sent.
    tea_session = requests.Session()
    DaraCore._get_session = staticmethod(lambda **options: tea_session)

    # aliyun-python-sdk-core keeps its string to sign on the request (request.string_to_sign).
    _record_result(sha_hmac1, 'get_sign_string', 'signature')
    # tea: both signature paths call utils.hmac.new(key, string_to_sign, ...); the ACS3 canonical request is
    # the last input of Utils.hash and the ACS3 signature the last output of Utils.hex_encode.
    tea_utils.hmac = types.SimpleNamespace(new=hmac.new)
    _record_argument(tea_utils.hmac, 'new', 'string_to_sign', 1)
    _record_result(tea_utils.Utils, 'get_rpcsignature', 'signature')
    _record_argument(tea_utils.Utils, 'hash', 'canonical_request', 0)
    _record_result(tea_utils.Utils, 'hex_encode', 'signature_hex')

    _record_result(oss2.auth.ProviderAuth, '_ProviderAuth__get_bytes_to_sign', 'string_to_sign')
    _record_result(oss2.auth.ProviderAuth, '_ProviderAuth__make_signature', 'signature')
    _record_result(oss2.auth.ProviderAuthV4, '_ProviderAuthV4__get_canonical_request_bytes', 'canonical_request')
    _record_result(oss2.auth.ProviderAuthV4, '_ProviderAuthV4__get_string_to_sign_bytes', 'string_to_sign')
    _record_result(oss2.auth.ProviderAuthV4, '_ProviderAuthV4__make_signature', 'signature')

    _record_result(v2_signer_v1.SignerV1, '_calc_string_to_sign', 'string_to_sign')
    _record_result(v2_signer_v1.SignerV1, '_calc_signature', 'signature')
    _record_result(v2_signer_v4.SignerV4, '_calc_canonical_request', 'canonical_request')
    _record_result(v2_signer_v4.SignerV4, '_calc_string_to_sign', 'string_to_sign')
    _record_result(v2_signer_v4.SignerV4, '_calc_signature', 'signature')
    v2_signer_v4.SignerV4.sign = _sign_with_case_additional_headers(v2_signer_v4.SignerV4.sign)


T_MIN = calendar.timegm((2020, 1, 1, 0, 0, 0))
T_MAX = calendar.timegm((2035, 12, 31, 23, 59, 59))


def _begin_case(rng):
    """Start a case: fresh captures, and a signing time drawn between 2020 and 2035."""
    CAPTURED.clear()
    CASE.rng = rng
    CASE.additional_headers = None
    CASE.now = rng.randint(T_MIN, T_MAX) + rng.randrange(1_000_000) / 1_000_000
    return int(CASE.now)


def _send(call):
    """Run a client call whose transport is intercepted; return the prepared request it tried to send."""
    try:
        call()
    except _RequestCaptured:
        return CAPTURED['http']
    raise VectorError('the client returned without sending a request')


def _captured(slot):
    value = CAPTURED.get(slot)
    if value is None:
        raise VectorError(f'the library did not produce {slot}')
    return value.decode('utf-8') if isinstance(value, bytes) else value


def _as_text(value):
    if value is None:
        return ''
    return value.decode('utf-8') if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------------------------------------
# Random inputs.

ALNUM = string.ascii_letters + string.digits
UNICODE_RUNS = ('测试视频上传标题中文字幕', 'éèàüöñçøåßÉÅ', '🎬😀🚀🎵', 'Ωжд한글')
PUNCTUATION = "-_.,;:!@$()[]{}'\"<>|^`\\"
QUERY_SPECIALS = ' /+*~&=%?'
KEY_SPECIALS = ' +*~%=&?#'
HEADER_VALUE_CHARS = ALNUM + " -_.,;:/+=()@!*'\"?&%#~"

VOD_REGIONS = ('cn-shanghai', 'cn-hangzhou', 'cn-beijing', 'ap-southeast-1', 'eu-central-1', 'us-west-1')
VOD_ACTIONS = ('CreateUploadVideo', 'RefreshUploadVideo', 'CreateUploadImage', 'CreateUploadAttachedMedia',
               'UploadMediaByURL', 'GetURLUploadInfos', 'GetVideoInfo', 'GetVideoInfos', 'GetPlayInfo',
               'GetMezzanineInfo', 'DeleteVideo', 'UpdateVideoInfo', 'GetUploadDetails', 'GetImageInfo')
VOD_PARAM_NAMES = ('Title', 'FileName', 'FileSize', 'Description', 'CoverURL', 'CateId', 'Tags',
                   'TemplateGroupId', 'UserData', 'StorageLocation', 'AppId', 'WorkflowId', 'VideoId',
                   'VideoIds', 'ImageType', 'ImageExt', 'BusinessType', 'MediaExt', 'UploadURLs',
                   'UploadMetadatas', 'PageNo', 'PageSize')
# Names the RPC signers set themselves.
RPC_COMMON_PARAMS = frozenset(('Action', 'Version', 'Format', 'AccessKeyId', 'SignatureMethod', 'SignatureVersion',
                               'SignatureNonce', 'SignatureType', 'Timestamp', 'Signature', 'RegionId',
                               'SecurityToken'))

OSS_REGIONS = ('cn-hangzhou', 'cn-shanghai', 'ap-southeast-1', 'eu-central-1', 'us-west-1')
OSS_METHODS = ('PUT', 'POST', 'GET', 'HEAD', 'DELETE')
CONTENT_TYPES = ('video/mp4', 'application/octet-stream', 'image/jpeg', 'text/plain; charset=utf-8',
                 'application/xml')


def _text(rng, max_len, specials=QUERY_SPECIALS, min_len=0):
    """Random text mixing ASCII, the given specials, punctuation and (multi-byte) Unicode."""
    chars = []
    for _ in range(rng.randint(min_len, max_len)):
        roll = rng.random()
        if roll < 0.55:
            chars.append(rng.choice(ALNUM))
        elif roll < 0.75:
            chars.append(rng.choice(specials))
        elif roll < 0.85:
            chars.append(rng.choice(PUNCTUATION))
        else:
            chars.append(rng.choice(rng.choice(UNICODE_RUNS)))
    return ''.join(chars)


def _word(rng, alphabet, min_len, max_len):
    return ''.join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))


def _credentials(rng, sts):
    """(AccessKeyId, AccessKeySecret, SecurityToken or None)."""
    if sts:
        token = 'CAIS' + _word(rng, ALNUM + '/+=', 16, 400)
        return 'STS.' + _word(rng, ALNUM, 16, 28), _word(rng, ALNUM, 30, 44), token
    return 'LTAI' + _word(rng, ALNUM, 16, 24), _word(rng, ALNUM, 30, 30), None


def _header_value(rng):
    """Printable ASCII with inner spaces; none at the ends (HTTP strips them)."""
    value = _word(rng, HEADER_VALUE_CHARS, 1, 40).strip()
    return value or rng.choice(ALNUM)


def _vod_value(rng):
    roll = rng.random()
    if roll < 0.1:
        return ''
    if roll < 0.2:
        return str(rng.randint(0, 10 ** 12))
    if roll < 0.3:
        return json.dumps({'MessageCallback': {'CallbackURL': 'http://cb.example.com/cb?a=1&b=2'},
                           'Extend': {_text(rng, 8, min_len=1): _text(rng, 16)}},
                          ensure_ascii=rng.random() < 0.5)
    return _text(rng, 40)


def _vod_params(rng):
    params = {}
    for _ in range(rng.randint(0, 7)):
        if rng.random() < 0.6:
            name = rng.choice(VOD_PARAM_NAMES)
        else:
            name = _word(rng, ALNUM + '.', 1, 16)
        if name not in RPC_COMMON_PARAMS:
            params[name] = _vod_value(rng)
    return params


def _split_off_body(rng, params):
    """Move a random non-empty part of params (if any) into a form body."""
    if not params:
        return {}
    names = rng.sample(sorted(params), rng.randint(1, len(params)))
    return {name: params.pop(name) for name in names}


def _vod_endpoint(rng, region):
    return rng.choice((f'vod.{region}.aliyuncs.com', 'vod.cn-shanghai.aliyuncs.com',
                       f'127.0.0.1:{rng.randint(1024, 65535)}'))


def _bucket_name(rng):
    length = rng.choice((rng.randint(3, 12), rng.randint(3, 63)))
    inner = _word(rng, string.ascii_lowercase + string.digits + '-', length - 2, length - 2)
    edge = string.ascii_lowercase + string.digits
    return rng.choice(edge) + inner + rng.choice(edge)


def _key_is_accepted(key):
    """Keys every client sends unchanged: oss2 refuses a leading '?' (and blank keys), and requests drops
    '.' and '..' path segments from alibabacloud-oss-v2 URLs, which keep '/' literal."""
    segments = key.split('/')
    return (key.strip() != '' and not key.startswith(('/', '?'))
            and '.' not in segments and '..' not in segments)


def _object_key(rng):
    """1-200 UTF-8 bytes with Unicode, spaces, several '/' levels and URL-special characters."""
    target = rng.choice((rng.randint(1, 16), rng.randint(1, 64), rng.randint(1, 200)))
    while True:
        chars, size = [], 0
        while size < target:
            char = '/' if rng.random() < 0.1 else _text(rng, 1, KEY_SPECIALS, min_len=1)
            if size + len(char.encode()) > 200:
                char = rng.choice(ALNUM)
            chars.append(char)
            size += len(char.encode())
        key = ''.join(chars)
        if _key_is_accepted(key):
            return key


def _oss_endpoint(rng, region):
    if rng.random() < 0.6:
        return f'http://127.0.0.1:{rng.randint(1024, 65535)}'
    return f'{rng.choice(("http", "https"))}://oss-{region}.aliyuncs.com'


def _oss_host(endpoint, bucket):
    """Host header value for path style (IP endpoint) or virtual-host style (DNS endpoint)."""
    netloc = urlsplit(endpoint).netloc
    return netloc if netloc.startswith('127.') else f'{bucket}.{netloc}'


OSS_PARAM_CHOICES = (
    # signed V1 sub-resources
    lambda rng: ('uploads', ''),
    lambda rng: ('uploadId', _word(rng, '0123456789ABCDEF', 32, 32)),
    lambda rng: ('partNumber', str(rng.randint(1, 10000))),
    lambda rng: ('acl', ''),
    lambda rng: ('tagging', ''),
    lambda rng: ('sequential', ''),
    lambda rng: ('objectMeta', ''),
    lambda rng: ('versionId', 'CAEQ' + _word(rng, ALNUM + '+/=', 8, 40)),
    lambda rng: ('response-content-type', rng.choice(CONTENT_TYPES)),
    lambda rng: ('response-content-disposition', f'attachment; filename="{_text(rng, 20, KEY_SPECIALS)}"'),
    lambda rng: ('response-cache-control', rng.choice(('no-cache', 'max-age=3600'))),
    lambda rng: ('x-oss-process', f'image/resize,w_{rng.randint(1, 4096)}/quality,q_{rng.randint(1, 100)}'),
    # not signed in V1
    lambda rng: ('encoding-type', 'url'),
    lambda rng: ('max-parts', str(rng.randint(1, 1000))),
    lambda rng: ('part-number-marker', rng.choice(('', str(rng.randint(0, 10000))))),
    lambda rng: ('prefix', _text(rng, 20, KEY_SPECIALS)),
    lambda rng: ('delimiter', '/'),
    lambda rng: ('key-marker', _text(rng, 20, KEY_SPECIALS)),
    lambda rng: ('max-uploads', str(rng.randint(1, 1000))),
    lambda rng: ('upload-id-marker', _word(rng, '0123456789ABCDEF', 32, 32)),
)


def _oss_params(rng, v4):
    params = {}
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4))):
        name, value = rng.choice(OSS_PARAM_CHOICES)(rng)
        params[name] = value
    if v4 and rng.random() < 0.3:
        for _ in range(rng.randint(1, 3)):
            params[_text(rng, 12, QUERY_SPECIALS + '#', min_len=1)] = _text(rng, 20, QUERY_SPECIALS + '#')
    return params


def _put_header(headers, name, value):
    """Add a header unless one with the same name in another case is already there."""
    if name.lower() not in {existing.lower() for existing in headers}:
        headers[name] = value


def _oss_signed_headers(rng):
    """Headers the OSS signers cover by default: Content-Type, Content-MD5 and x-oss-*."""
    headers = {}
    if rng.random() < 0.4:
        _put_header(headers, rng.choice(('Content-Type', 'content-type')), rng.choice(CONTENT_TYPES))
    if rng.random() < 0.25:
        _put_header(headers, rng.choice(('Content-MD5', 'content-md5')),
                    base64.b64encode(rng.randbytes(16)).decode())
    for _ in range(rng.choice((0, 0, 1, 2, 3))):
        prefix = rng.choice(('x-oss-meta-', 'X-Oss-Meta-', 'X-OSS-META-'))
        _put_header(headers, prefix + _word(rng, ALNUM + '-', 1, 16), _header_value(rng))
    if rng.random() < 0.2:
        _put_header(headers, 'x-oss-storage-class', rng.choice(('Standard', 'IA', 'Archive', 'ColdArchive')))
    if rng.random() < 0.2:
        _put_header(headers, 'x-oss-forbid-overwrite', rng.choice(('true', 'false')))
    if rng.random() < 0.2:
        _put_header(headers, 'x-oss-object-acl', rng.choice(('private', 'public-read', 'default')))
    return headers


def _oss_other_headers(rng, headers):
    """Headers no OSS signer covers unless named in AdditionalHeaders."""
    if rng.random() < 0.3:
        _put_header(headers, rng.choice(('Cache-Control', 'cache-control')),
                    rng.choice(('no-cache', 'max-age=3600', 'private, max-age=0')))
    if rng.random() < 0.15:
        _put_header(headers, 'Content-Disposition', f'attachment; filename="{_word(rng, ALNUM, 1, 12)}.mp4"')


def _additional_header_names(rng, headers, host, allow_user_agent):
    """Names for V4 AdditionalHeaders: present non-default headers (sometimes an explicit Host), plus names
    the signers must drop (default-signed ones, absent ones), in random case and order."""
    if rng.random() < 0.5:
        _put_header(headers, 'Host', host)
    present = [name for name in headers if not name.lower().startswith('x-oss-')
               and name.lower() not in ('content-type', 'content-md5')]
    if allow_user_agent:
        present.append('User-Agent')
    names = [name for name in present if rng.random() < 0.8]
    if rng.random() < 0.3:
        names.append(rng.choice(('content-type', 'x-oss-meta-a', 'X-Oss-Date')))
    if rng.random() < 0.3:
        names.append('x-absent-header')
    names = [rng.choice((name, name.lower(), name.upper())) for name in names]
    rng.shuffle(names)
    return names


# ---------------------------------------------------------------------------------------------------------
# Consistency checks (the recorded fields must agree with each other).

def _hmac(key, message, digest):
    return hmac.new(key.encode(), message.encode(), digest).digest()


def _expect(condition, what):
    if not condition:
        raise VectorError(what)


def _header(headers, name):
    values = [value for key, value in headers if key.lower() == name]
    _expect(len(values) == 1, f'expected one {name} header, got {values}')
    return values[0]


def _check_v4_chain(case, secret, date, region):
    _expect(case['string_to_sign'].split('\n')[-1]
            == hashlib.sha256(case['canonical_request'].encode()).hexdigest(),
            'string to sign does not hash the canonical request')
    key = ('aliyun_v4' + secret).encode()
    for part in (date, region, 'oss', 'aliyun_v4_request'):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    _expect(hmac.new(key, case['string_to_sign'].encode(), hashlib.sha256).hexdigest() == case['signature'],
            'signature is not HMAC-SHA256(signing key, string to sign)')


def _check_oss_header(case, secret):
    authorization = _header(case['headers'], 'authorization')
    if case['region'] is None:
        _expect(authorization == f"OSS {case['access_key_id']}:{case['signature']}", 'Authorization mismatch')
        _expect(base64.b64encode(_hmac(secret, case['string_to_sign'], hashlib.sha1)).decode()
                == case['signature'], 'signature is not HMAC-SHA1(secret, string to sign)')
        return
    scheme, _, fields = authorization.partition(' ')
    fields = dict(field.strip().split('=', 1) for field in fields.split(','))
    _expect(scheme == 'OSS4-HMAC-SHA256' and fields['Signature'] == case['signature'], 'Authorization mismatch')
    date = _header(case['headers'], 'x-oss-date')
    _expect(date == time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(case['time'])), 'x-oss-date is not the time')
    _expect(fields['Credential'] == f"{case['access_key_id']}/{date[:8]}/{case['region']}/oss/aliyun_v4_request",
            'Credential mismatch')
    _check_v4_chain(case, secret, date[:8], case['region'])


def _check_oss_presign(case, secret):
    query = dict(parse_qsl(urlsplit(case['url']).query, keep_blank_values=True))
    if case['region'] is None:
        _expect(query['Signature'] == case['signature'] and query['OSSAccessKeyId'] == case['access_key_id'],
                'URL signature mismatch')
        _expect(base64.b64encode(_hmac(secret, case['string_to_sign'], hashlib.sha1)).decode()
                == case['signature'], 'signature is not HMAC-SHA1(secret, string to sign)')
        return
    date = query['x-oss-date']
    _expect(query['x-oss-signature'] == case['signature'], 'URL signature mismatch')
    _expect(date == time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(case['time'])), 'x-oss-date is not the time')
    _expect(query['x-oss-credential'] == f"{case['access_key_id']}/{date[:8]}/{case['region']}/oss/aliyun_v4_request",
            'x-oss-credential mismatch')
    _check_v4_chain(case, secret, date[:8], case['region'])


# ---------------------------------------------------------------------------------------------------------
# Schemes. Each function makes one case from rng and returns its JSON fields (without scheme and id).

def gen_vod_v1(rng):
    """RPC signature v1 (HMAC-SHA1) from aliyun-python-sdk-core, or tea-openapi in signature_algorithm='v2'."""
    _begin_case(rng)
    access_key_id, secret, token = _credentials(rng, rng.random() < 0.4)
    method = rng.choice(('GET', 'POST'))
    action = rng.choice(VOD_ACTIONS)
    params = _vod_params(rng)
    body = _split_off_body(rng, params) if method == 'POST' and rng.random() < 0.35 else {}
    region = rng.choice(VOD_REGIONS)
    endpoint = _vod_endpoint(rng, region)
    if rng.random() < 0.7:
        client_name = CORE
        if token:
            client = AcsClient(region_id=region, credential=StsTokenCredential(access_key_id, secret, token))
        else:
            client = AcsClient(access_key_id, secret, region)
        request = RpcRequest('vod', '2017-03-21', action, 'vod')
        request.set_method(method)
        request.set_endpoint(endpoint)
        for name, value in params.items():
            request.add_query_param(name, value)
        for name, value in body.items():
            request.add_body_params(name, value)
        sent = _send(lambda: client.do_action_with_exception(request))
        string_to_sign = request.string_to_sign
    else:
        client_name = TEA_V1
        client = TeaClient(TeaConfig(access_key_id=access_key_id, access_key_secret=secret, security_token=token,
                                     endpoint=endpoint, protocol=rng.choice(('http', 'https')),
                                     signature_algorithm='v2'))
        api = TeaParams(action=action, version='2017-03-21', protocol='HTTPS', pathname='/', method=method,
                        auth_type='AK', style='RPC', req_body_type='formData', body_type='json')
        sent = _send(lambda: client.call_api(api, OpenApiRequest(query=params, body=body or None),
                                             RuntimeOptions()))
        string_to_sign = _captured('string_to_sign')
    case = {
        'client': client_name, 'secret': secret, 'access_key_id': access_key_id,
        'method': sent.method, 'query': urlsplit(sent.url).query, 'body': _as_text(sent.body),
        'string_to_sign': string_to_sign, 'signature': _captured('signature'),
    }
    sent_params = dict(parse_qsl(case['query'], keep_blank_values=True))
    _expect(sent_params['Signature'] == case['signature'], 'Signature query parameter mismatch')
    _expect(base64.b64encode(_hmac(secret + '&', string_to_sign, hashlib.sha1)).decode() == case['signature'],
            'signature is not HMAC-SHA1(secret&, string to sign)')
    return case


def gen_vod_acs3(rng):
    """ACS3-HMAC-SHA256 from alibabacloud-tea-openapi's default signing path (Client.call_api -> do_request)."""
    _begin_case(rng)
    access_key_id, secret, token = _credentials(rng, rng.random() < 0.4)
    method = rng.choice(('GET', 'POST'))
    params = _vod_params(rng)
    body, body_type = {}, 'formData'
    if method == 'POST' and rng.random() < 0.4:
        body_type = rng.choice(('formData', 'json'))
        body = _split_off_body(rng, params) or {'Title': _text(rng, 20)}
        if body_type == 'json' and rng.random() < 0.3:
            body['UploadMetadatas'] = [{'SourceURL': f'http://example.com/{_text(rng, 10)}', 'Title': _text(rng, 10)}]
    extra_headers = {}
    if rng.random() < 0.25:
        for _ in range(rng.randint(1, 2)):
            name = rng.choice(('x-acs-trace-id', 'X-Request-Tag', 'x-Custom-Header'))
            extra_headers[name] = _header_value(rng)
    endpoint = _vod_endpoint(rng, rng.choice(VOD_REGIONS))
    client = TeaClient(TeaConfig(access_key_id=access_key_id, access_key_secret=secret, security_token=token,
                                 endpoint=endpoint, protocol=rng.choice(('http', 'https'))))
    api = TeaParams(action=rng.choice(VOD_ACTIONS), version='2017-03-21', protocol='HTTPS', pathname='/',
                    method=method, auth_type='AK', style='RPC', req_body_type=body_type, body_type='json')
    request = OpenApiRequest(query=params, body=body or None, headers=extra_headers or None)
    sent = _send(lambda: client.call_api(api, request, RuntimeOptions()))
    url = urlsplit(sent.url)
    case = {
        'client': TEA, 'secret': secret, 'access_key_id': access_key_id,
        'method': sent.method, 'path': url.path, 'query': url.query,
        'headers': [[name, value] for name, value in sent.headers.items()], 'body': _as_text(sent.body),
        'canonical_request': _captured('canonical_request'), 'string_to_sign': _captured('string_to_sign'),
        'signature': _captured('signature_hex'),
    }
    authorization = _header(case['headers'], 'authorization')
    _expect(authorization.startswith(f'ACS3-HMAC-SHA256 Credential={access_key_id},')
            and authorization.endswith(f",Signature={case['signature']}"), 'Authorization mismatch')
    _expect(case['string_to_sign'] == 'ACS3-HMAC-SHA256\n'
            + hashlib.sha256(case['canonical_request'].encode()).hexdigest(),
            'string to sign does not hash the canonical request')
    _expect(hmac.new(secret.encode(), case['string_to_sign'].encode(), hashlib.sha256).hexdigest()
            == case['signature'], 'signature is not HMAC-SHA256(secret, string to sign)')
    return case


def _oss2_auth(access_key_id, secret, token, v4):
    if token:
        return oss2.StsAuth(access_key_id, secret, token, auth_version='v4' if v4 else 'v1')
    return oss2.AuthV4(access_key_id, secret) if v4 else oss2.Auth(access_key_id, secret)


def _v2_client(access_key_id, secret, token, v4, region, endpoint):
    return ossv2.Client(ossv2.Config(
        region=region, endpoint=endpoint, signature_version='v4' if v4 else 'v1', http_client=V2_HTTP_CLIENT,
        credentials_provider=ossv2.credentials.StaticCredentialsProvider(access_key_id, secret, token)))


def _oss_header_case(rng, v4):
    """One request signed in the Authorization header by oss2 (Bucket internals) or alibabacloud-oss-v2
    (Client.invoke_operation)."""
    signing_time = _begin_case(rng)
    access_key_id, secret, token = _credentials(rng, rng.random() < 2 / 3)
    region = rng.choice(OSS_REGIONS)
    endpoint = _oss_endpoint(rng, region)
    bucket_name = _bucket_name(rng)
    key = None if rng.random() < 0.12 else _object_key(rng)
    method = rng.choice(OSS_METHODS)
    params = _oss_params(rng, v4)
    headers = _oss_signed_headers(rng)
    _oss_other_headers(rng, headers)
    if rng.random() < 0.5:
        client_name = OSS2
        if rng.random() < 0.1:
            _put_header(headers, 'User-Agent', f'vodup-differential/{rng.randint(1, 9)}.0')
        bucket = oss2.Bucket(_oss2_auth(access_key_id, secret, token, v4), endpoint, bucket_name,
                             session=OSS2_SESSION, region=region)
        if key is None:
            sent = _send(lambda: bucket._Bucket__do_bucket(method, params=params, headers=headers))
        else:
            sent = _send(lambda: bucket._Bucket__do_object(method, key, params=params, headers=headers))
    else:
        client_name = OSS_V2
        if v4 and rng.random() < 0.35:
            client_name = OSS_V2_ADDITIONAL
            CASE.additional_headers = _additional_header_names(rng, headers, _oss_host(endpoint, bucket_name),
                                                               allow_user_agent=True)
        client = _v2_client(access_key_id, secret, token, v4, region, endpoint)
        operation = OperationInput(op_name='DifferentialVector', method=method, bucket=bucket_name, key=key,
                                   headers=dict(headers), parameters=dict(params))
        sent = _send(lambda: client.invoke_operation(operation))
    url = urlsplit(sent.url)
    case = {
        'client': client_name, 'secret': secret, 'access_key_id': access_key_id,
        'method': sent.method, 'host': url.netloc, 'path': url.path, 'query': url.query,
        'bucket': bucket_name, 'key': key,
        'headers': [[name, value] for name, value in sent.headers.items()],
        'region': region if v4 else None, 'string_to_sign': _captured('string_to_sign'),
        'canonical_request': _captured('canonical_request') if v4 else None,
        'signature': _captured('signature'), 'time': signing_time,
    }
    _expect(url.netloc == _oss_host(endpoint, bucket_name), 'unexpected host')
    _check_oss_header(case, secret)
    return case


def _oss_presign_case(rng, v4):
    """One presigned URL from oss2 (Bucket.sign_url) or alibabacloud-oss-v2 (what Client.presign does:
    invoke_operation with the presigner's query-auth options, then its result conversion)."""
    signing_time = _begin_case(rng)
    access_key_id, secret, token = _credentials(rng, rng.random() < 2 / 3)
    region = rng.choice(OSS_REGIONS)
    endpoint = _oss_endpoint(rng, region)
    bucket_name = _bucket_name(rng)
    key = _object_key(rng)
    method = rng.choice(OSS_METHODS)
    params = _oss_params(rng, v4)
    headers = _oss_signed_headers(rng)
    if v4:
        _oss_other_headers(rng, headers)
    expires = rng.choice((60, 900, 3600, 86400, 604800, rng.randint(1, 604800)))
    host = _oss_host(endpoint, bucket_name)
    if rng.random() < 0.5:
        client_name = OSS2
        bucket = oss2.Bucket(_oss2_auth(access_key_id, secret, token, v4), endpoint, bucket_name,
                             session=OSS2_SESSION, region=region)
        options = {'slash_safe': rng.random() < 0.5}
        # StsAuth._sign_url takes no additional headers (TypeError), so only AuthV4 gets them.
        if v4 and not token and rng.random() < 0.5:
            options['additional_headers'] = _additional_header_names(rng, headers, host, allow_user_agent=False)
        url = bucket.sign_url(method, key, expires, headers=dict(headers), params=dict(params), **options)
    else:
        client_name = OSS_V2
        if v4 and rng.random() < 0.35:
            client_name = OSS_V2_ADDITIONAL
            CASE.additional_headers = _additional_header_names(rng, headers, host, allow_user_agent=False)
        client = _v2_client(access_key_id, secret, token, v4, region, endpoint)
        expiration = datetime.datetime.fromtimestamp(CASE.now + expires, datetime.timezone.utc)
        operation = OperationInput(op_name='DifferentialVector', method=method, bucket=bucket_name, key=key,
                                   headers=dict(headers), parameters=dict(params),
                                   op_metadata={'expiration_time': expiration})
        output = client.invoke_operation(operation, **v2_presigner._presign_kwargs)
        url = v2_presigner._deserialize_output(client._client, output).url
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    additional = query.get('x-oss-additional-headers', '').split(';')
    must_send = [[name, value] for name, value in headers.items()
                 if name.lower().startswith('x-oss-') or name.lower() in ('content-type', 'content-md5')
                 or (v4 and name.lower() in additional)]
    case = {
        'client': client_name, 'secret': secret, 'access_key_id': access_key_id,
        'method': method, 'url': url, 'bucket': bucket_name, 'key': key, 'headers': must_send,
        'region': region if v4 else None, 'string_to_sign': _captured('string_to_sign'),
        'canonical_request': _captured('canonical_request') if v4 else None,
        'signature': _captured('signature'), 'time': signing_time,
        'expires': signing_time + int(query['x-oss-expires']) if v4 else int(query['Expires']),
    }
    _expect(urlsplit(url).netloc == host, 'unexpected host')
    _expect(case['expires'] == signing_time + expires, 'expiry is not signing time + expires')
    _check_oss_presign(case, secret)
    return case


def gen_oss_v1_header(rng):
    return _oss_header_case(rng, v4=False)


def gen_oss_v4_header(rng):
    return _oss_header_case(rng, v4=True)


def gen_oss_v1_presign(rng):
    return _oss_presign_case(rng, v4=False)


def gen_oss_v4_presign(rng):
    return _oss_presign_case(rng, v4=True)


CRC_BOUNDARY_SIZES = (0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 511, 512, 1023,
                      1024, 4095, 4096, 4097, 8191, 8192, 16384, 65535, 65536, 65537, 70000)


def gen_crc64(rng):
    """CRC-64/XZ from oss2's crcmod parameters, and alibabacloud-oss-v2's combine of a random split."""
    roll = rng.random()
    if roll < 0.4:
        size = rng.choice(CRC_BOUNDARY_SIZES)
    elif roll < 0.7:
        size = rng.randint(0, 64)
    else:
        size = rng.randint(0, 70000)
    data = bytes(size) if rng.random() < 0.05 else rng.randbytes(size)
    split = rng.randint(0, size)
    crc = _oss2_crc64(data)
    combined = V2Crc64.combine(_oss2_crc64(data[:split]), _oss2_crc64(data[split:]), size - split)
    reference = V2Crc64(0)
    reference.update(data)
    _expect(combined == crc == reference.sum64(), 'crcmod, v2 Crc64 and v2 combine disagree')
    return {
        'client': CRCMOD, 'secret': '', 'access_key_id': '',
        'data_b64': base64.b64encode(data).decode(), 'crc': str(crc), 'split': split, 'combined': str(combined),
    }


def _oss2_crc64(data):
    crc = oss2.utils.Crc64()
    crc.update(data)
    return crc.crc


SCHEMES = {
    'vod_v1': gen_vod_v1,
    'vod_acs3': gen_vod_acs3,
    'oss_v1_header': gen_oss_v1_header,
    'oss_v4_header': gen_oss_v4_header,
    'oss_v1_presign': gen_oss_v1_presign,
    'oss_v4_presign': gen_oss_v4_presign,
    'crc64': gen_crc64,
}

def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seed', required=True, help='seed; the output depends only on it and --count')
    parser.add_argument('--count', type=int, default=500, help='cases per scheme (default 500)')
    parser.add_argument('--schemes', default=','.join(SCHEMES),
                        help=f'comma-separated subset of {",".join(SCHEMES)} (default: all)')
    args = parser.parse_args(argv)
    args.schemes = [name.strip() for name in args.schemes.split(',') if name.strip()]
    unknown = [name for name in args.schemes if name not in SCHEMES]
    if unknown:
        parser.error(f'unknown scheme(s): {", ".join(unknown)}')
    if args.count < 0:
        parser.error('--count must be >= 0')
    return args


def main(argv=None):
    args = _parse_args(argv)
    _install_interceptors()
    lines = []
    for scheme in args.schemes:
        rng = random.Random(f'{args.seed}/{scheme}')
        for case_id in range(args.count):
            try:
                case = SCHEMES[scheme](rng)
            except (Exception, _RequestCaptured) as error:
                traceback.print_exc()
                sys.exit(f'gen_vectors: internal error in {scheme} case {case_id}: {error!r}')
            lines.append(json.dumps({'scheme': scheme, 'id': case_id, **case}, ensure_ascii=False))
    out = sys.stdout.buffer
    for line in lines:
        out.write(line.encode('utf-8') + b'\n')
    out.flush()


if __name__ == '__main__':
    main()
