'use strict';
// ali-oss uploading with the credential of a CreateUploadVideo answer: `put` of one object, then a
// `multipartUpload` of another that is cancelled after two parts and resumed from its checkpoint, as an
// application resumes after a crash. V1 or V4 (`authorizationV4`).
//
// Job: {region, v4, put: {address, auth, file}, multipart: {address, auth, file, partSize}}.
// Result: what each step returned (statuses, CRC-64 headers, part counts), for the test to check.

const { run, ossClient, failure } = require('./common');

run(async ({ region, v4, put, multipart }) => {
  const result = {};

  const putClient = ossClient(put.address, put.auth, { region, v4 });
  const putDone = await putClient.put(put.address.FileName, put.file);
  result.put = {
    status: putDone.res.status,
    crc64: putDone.res.headers['x-oss-hash-crc64ecma'] || null,
    etag: putDone.res.headers.etag || null
  };

  const client = ossClient(multipart.address, multipart.auth, { region, v4 });
  const name = multipart.address.FileName;
  let checkpoint = null;
  let partsBefore = 0;
  let cancelled = null;
  try {
    await client.multipartUpload(name, multipart.file, {
      partSize: multipart.partSize,
      parallel: 1,
      progress: async (p, cpt) => {
        if (cpt) checkpoint = cpt;
        if (cpt && cpt.doneParts.length === 2) {
          partsBefore = cpt.doneParts.length;
          client.cancel();
        }
      }
    });
  } catch (error) {
    cancelled = failure(error);
  }
  result.cancelled = cancelled;
  result.uploadId = checkpoint && checkpoint.uploadId;
  result.partsBefore = partsBefore;

  // What the service holds before the resume. ali-oss quirk: one part is an object, not a list.
  const listed = await client.listParts(name, checkpoint.uploadId);
  const parts = listed.parts === undefined ? [] : [].concat(listed.parts);
  result.listedParts = parts.map(p => Number(p.PartNumber));

  let resumedParts = 0;
  const done = await client.multipartUpload(name, multipart.file, {
    checkpoint,
    parallel: 2,
    partSize: multipart.partSize,
    progress: async (p, cpt, res) => {
      // Called with a part's response after each part sent now (and with 1 at the end, no response).
      if (res && cpt && p < 1) resumedParts += 1;
    }
  });
  result.resumedParts = resumedParts;
  result.totalParts = Math.ceil(checkpoint.fileSize / checkpoint.partSize);
  result.complete = {
    status: done.res.status,
    crc64: done.res.headers['x-oss-hash-crc64ecma'] || null,
    etag: done.etag || done.res.headers.etag || null
  };
  return result;
});
