'use strict';
// @alicloud/pop-core (the VOD RPC API, signature v1) and ali-oss together, as a Node.js application
// uploads: every upload action, then the files themselves with the decoded UploadAddress/UploadAuth.
//
// Job: {vod: {endpoint, ak, secret}, region, video, image, attached} (local file paths).
// Result: each action's answer (decoded where Base64) and each upload's status.

const { run, decode, ossClient, vodClient, sleep } = require('./common');

const POST = { method: 'POST' };

run(async ({ vod, region, video, image, attached }) => {
  const api = vodClient(vod);
  const result = {};

  const created = await api.request(
    'CreateUploadVideo',
    { Title: 'pop-core video', FileName: 'node-video.mp4', Tags: 'node,compat' },
    POST
  );
  const address = decode(created.UploadAddress);
  result.createUploadVideo = { ...created, UploadAddress: address, UploadAuth: decode(created.UploadAuth) };

  const refreshed = await api.request('RefreshUploadVideo', { VideoId: created.VideoId }, POST);
  const auth = decode(refreshed.UploadAuth);
  result.refreshUploadVideo = {
    ...refreshed,
    UploadAddress: decode(refreshed.UploadAddress),
    UploadAuth: auth
  };

  // The video with the refreshed credential, in parts (ali-oss's smallest part is 100 KiB).
  const videoClient = ossClient(address, auth, { region });
  const videoDone = await videoClient.multipartUpload(address.FileName, video, {
    partSize: 256 * 1024,
    parallel: 2
  });
  result.videoUpload = { status: videoDone.res.status };

  const image_ = await api.request('CreateUploadImage', { ImageType: 'cover', ImageExt: 'jpg' }, POST);
  const imageAddress = decode(image_.UploadAddress);
  const imageAuth = decode(image_.UploadAuth);
  result.createUploadImage = { ...image_, UploadAddress: imageAddress, UploadAuth: imageAuth };
  const imageDone = await ossClient(imageAddress, imageAuth, { region }).put(imageAddress.FileName, image);
  result.imageUpload = { status: imageDone.res.status };

  const media = await api.request(
    'CreateUploadAttachedMedia',
    { BusinessType: 'watermark', MediaExt: 'png' },
    POST
  );
  const mediaAddress = decode(media.UploadAddress);
  result.createUploadAttachedMedia = {
    ...media,
    UploadAddress: mediaAddress,
    UploadAuth: decode(media.UploadAuth)
  };
  const mediaDone = await ossClient(mediaAddress, result.createUploadAttachedMedia.UploadAuth, {
    region
  }).put(mediaAddress.FileName, attached);
  result.attachedUpload = { status: mediaDone.res.status };

  // Completion may be recorded just after Complete answers; poll briefly as an application would.
  let info;
  for (let i = 0; i < 100; i++) {
    info = await api.request('GetVideoInfo', { VideoId: created.VideoId }, POST);
    if (info.Video.Status === 'Normal') break;
    await sleep(50);
  }
  result.getVideoInfo = info;
  return result;
});
