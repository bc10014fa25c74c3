'use strict';
// What every compat script shares: the job comes as one JSON object on stdin, the result leaves as one
// JSON line on stdout (compat/test_node_clients.py parses it), and the official clients are built the
// way an application builds them from a Create*/Refresh* answer. Nothing here changes the clients.

const OSS = require('ali-oss');
const RPCClient = require('@alicloud/pop-core').RPCClient;

/** Runs `job(config)` with the JSON read from stdin and prints its result; a thrown error exits 1. */
function run(job) {
  const chunks = [];
  process.stdin.on('data', chunk => chunks.push(chunk));
  process.stdin.on('end', () => {
    let config;
    try {
      config = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      process.stderr.write(`the job on stdin is not JSON: ${e.message}\n`);
      process.exit(2);
    }
    job(config).then(
      // Exit once printed: keep-alive sockets of the clients' agents would otherwise hold the process.
      result => process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0)),
      error => {
        process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
        process.exit(1);
      }
    );
  });
}

/** UploadAddress / UploadAuth: standard Base64 of UTF-8 JSON, as VOD returns them. */
function decode(value) {
  return JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
}

/**
 * An ali-oss client for an upload credential. The endpoint is the service's `http://127.0.0.1:P`: ali-oss
 * connects there and names the bucket in Host (virtual-host style). V4 wants the region as `oss-<region>`.
 */
function ossClient(address, auth, { region, v4 = false, ...extra } = {}) {
  return new OSS({
    endpoint: address.Endpoint,
    bucket: address.Bucket,
    region: `oss-${region}`,
    accessKeyId: auth.AccessKeyId,
    accessKeySecret: auth.AccessKeySecret,
    stsToken: auth.SecurityToken,
    authorizationV4: v4,
    secure: false,
    timeout: 60000,
    ...extra
  });
}

/** A pop-core client for the VOD API at `endpoint` (`http://127.0.0.1:P`), signature v1. */
function vodClient({ endpoint, ak, secret }) {
  return new RPCClient({
    accessKeyId: ak,
    accessKeySecret: secret,
    endpoint,
    apiVersion: '2017-03-21',
    opts: { timeout: 10000 }
  });
}

/** What a test needs to know about a failed client call: what the application would see. */
function failure(error) {
  return {
    status: error.status === undefined ? null : error.status,
    code: error.code === undefined ? null : String(error.code),
    name: error.name || null,
    message: String(error.message || error).slice(0, 300),
    requestId: error.requestId || null
  };
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

module.exports = { run, decode, ossClient, vodClient, failure, sleep };
