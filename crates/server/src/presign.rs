//! URLs the service presigns for its own objects (GetMezzanineInfo, GetImageInfo,
//! GetAttachedMediaInfo), signed with OSS V1 query signatures by an internal key whose only authority
//! is GetObject/HeadObject of the one key it signed, until the URL expires (vod-api.md §12, Presign).

use std::time::SystemTime;

use http::HeaderMap;
use vodup_proto::Secret;
use vodup_proto::encoding::query_encode;
use vodup_proto::oss::OssRequest;
use vodup_proto::oss::signature_v1::presign_query;
use vodup_proto::timestamp::unix_seconds;

use crate::site::Site;

/// The AccessKeyId of presigned URLs. It is not a key anyone holds: its secret is derived from the
/// server secret, and the data plane gives it read access only.
pub const PRESIGN_KEY_ID: &str = "vodup-presign";

/// Signs GET URLs.
#[derive(Clone)]
pub struct Presigner {
    secret: Secret,
}

impl std::fmt::Debug for Presigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presigner(******)")
    }
}

impl Presigner {
    /// A presigner with the derived secret.
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    /// The secret the data plane verifies presigned URLs with.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// A GET URL for `key`, valid until `expires`.
    pub fn get_url(&self, site: &Site, key: &str, expires: SystemTime) -> String {
        let headers = HeaderMap::new();
        let request = OssRequest {
            method: "GET",
            bucket: Some(&site.bucket),
            key: Some(key),
            query: &[],
            headers: &headers,
        };
        let query = presign_query(&request, PRESIGN_KEY_ID, &self.secret, unix_seconds(expires), None);
        format!("{}?{}", site.object_url(key), query_encode(&query))
    }
}
