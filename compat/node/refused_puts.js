'use strict';
// Refused uploads with ali-oss `put`: each try must come back as what the server said (HTTP status and
// OSS code), not as a broken connection. ali-oss's credential refresh and any application's error
// handling depend on reading `SecurityTokenExpired` and friends; a server that answers and closes with the
// body unread makes Node report `write EPIPE` instead.
//
// Job: {region, sizes: [bytes…], tries: N, cases: [{name, address, auth, object}…]}. Try i of each size
// uses case i % cases.length. Result: {results: [{size, try, case, status, code, name, message, stray}…]},
// `stray` being errors no request caught (see below).

const { run, ossClient, failure } = require('./common');

// A broken pipe can also surface on a socket nobody listens on (the agent's), which would kill the
// process; record it instead, so the test sees it beside the try it interrupted.
const stray = [];
process.on('uncaughtException', error => stray.push(failure(error)));

run(async ({ region, sizes, tries, cases }) => {
  const results = [];
  for (const size of sizes) {
    // Incompressible is not needed here: the server refuses before it stores a byte.
    const body = Buffer.alloc(size, 0x61);
    for (let i = 0; i < tries; i++) {
      const which = cases[i % cases.length];
      const client = ossClient(which.address, which.auth, { region });
      let outcome;
      try {
        const ok = await client.put(which.object, body);
        outcome = { status: ok.res.status, code: null, name: 'accepted', message: '' };
      } catch (error) {
        outcome = failure(error);
      }
      results.push({ size, try: i, case: which.name, ...outcome, stray: stray.splice(0) });
    }
  }
  return { results };
});
