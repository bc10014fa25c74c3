'use strict';
// ali-oss's own credential refresh against an upload credential that expires. In ali-oss 6.23.0 (Node)
// `refreshSTSToken` is called before a request once `refreshSTSTokenInterval` has passed since the last
// refresh (lib/common/utils/setSTSToken.js); it does not react to an error by itself. So: a credential
// that lives shorter than the interval expires, the application's put is refused with a readable
// `SecurityTokenExpired`, and its retry after the interval goes out with credentials refreshed through
// RefreshUploadVideo and succeeds.
//
// Job: {vod, region, lifetimeMs, intervalMs, size, refusedTries}. Result: the refused tries, the retry, and
// the AccessKeyIds the refreshes returned.

const { run, decode, ossClient, vodClient, failure, sleep } = require('./common');

const POST = { method: 'POST' };

run(async ({ vod, region, lifetimeMs, intervalMs, size, refusedTries }) => {
  const api = vodClient(vod);
  const created = await api.request('CreateUploadVideo', { Title: 'refresh', FileName: 'refresh.mp4' }, POST);
  const issued = Date.now();
  const address = decode(created.UploadAddress);
  const auth = decode(created.UploadAuth);
  const refreshes = [];
  const client = ossClient(address, auth, {
    region,
    refreshSTSTokenInterval: intervalMs,
    refreshSTSToken: async () => {
      const answer = await api.request('RefreshUploadVideo', { VideoId: created.VideoId }, POST);
      const fresh = decode(answer.UploadAuth);
      refreshes.push(fresh.AccessKeyId);
      return {
        accessKeyId: fresh.AccessKeyId,
        accessKeySecret: fresh.AccessKeySecret,
        stsToken: fresh.SecurityToken
      };
    }
  });
  const body = Buffer.alloc(size, 0x62);

  // After the credential's expiry (the one UploadAuth announces: whole seconds, never before the
  // lifetime is up), before ali-oss's interval: refused, and the code must be readable.
  const expiresAt = Date.parse(auth.ExpireUTCTime);
  if (!(expiresAt >= issued + lifetimeMs - 1000)) {
    throw new Error(`ExpireUTCTime ${auth.ExpireUTCTime} is not about ${lifetimeMs} ms after the create`);
  }
  await sleep(Math.max(0, expiresAt + 300 - Date.now()));
  const refused = [];
  for (let i = 0; i < refusedTries; i++) {
    try {
      const ok = await client.put(address.FileName, body);
      refused.push({ status: ok.res.status, code: null, name: 'accepted', message: '' });
    } catch (error) {
      refused.push(failure(error));
    }
  }
  const refusedAfterMs = Date.now() - issued;

  // The application retries once ali-oss will refresh (its clock starts when the client is built).
  await sleep(Math.max(0, issued + intervalMs + 300 - Date.now()));
  const retried = await client.put(address.FileName, body);
  return {
    videoId: created.VideoId,
    firstKeyId: auth.AccessKeyId,
    refused,
    refusedAfterMs,
    refreshes,
    retry: { status: retried.res.status, crc64: retried.res.headers['x-oss-hash-crc64ecma'] || null }
  };
});
