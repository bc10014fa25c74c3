//! How the service names its bucket and objects in URLs: the bucket, the public OSS endpoint, the region,
//! and the addressing style clients use with them (vod-api.md §4, oss-api.md §1).

use vodup_proto::encoding::percent_encode_path;

/// How the service names its bucket and objects in URLs (vod-api.md §4, oss-api.md §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The bucket.
    pub bucket: String,
    /// `http(s)://host[:port]` of the OSS plane as clients reach it.
    pub endpoint: String,
    /// The region.
    pub region: String,
}

impl Site {
    /// The host (and port) part of the endpoint.
    pub fn endpoint_host(&self) -> &str {
        self.endpoint.split_once("://").map_or(self.endpoint.as_str(), |(_, host)| host)
    }

    fn scheme(&self) -> &str {
        self.endpoint.split_once("://").map_or("http", |(scheme, _)| scheme)
    }

    /// Whether the endpoint is an IP literal or `localhost`, which the clients address path-style.
    pub fn is_path_style(&self) -> bool {
        let host = self.endpoint_host();
        let name = if host.starts_with('[') {
            return true;
        } else {
            host.rsplit_once(':').map_or(host, |(name, _)| name)
        };
        name == "localhost" || name.parse::<std::net::IpAddr>().is_ok()
    }

    /// `StorageLocation`: the bucket's host, as in real VOD (`outin-….oss-cn-shanghai.aliyuncs.com`).
    pub fn storage_location(&self) -> String {
        format!("{}.{}", self.bucket, self.endpoint_host())
    }

    /// The plain URL of an object: path style for an IP endpoint, virtual-host style for a DNS name.
    pub fn object_url(&self, key: &str) -> String {
        let key = percent_encode_path(key);
        if self.is_path_style() {
            format!("{}/{}/{key}", self.endpoint, self.bucket)
        } else {
            format!("{}://{}.{}/{key}", self.scheme(), self.bucket, self.endpoint_host())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(endpoint: &str) -> Site {
        Site { bucket: "outin-b".into(), endpoint: endpoint.into(), region: "cn-shanghai".into() }
    }

    #[test]
    fn ip_endpoints_are_path_style() {
        let s = site("http://127.0.0.1:9000");
        assert!(s.is_path_style());
        assert_eq!(s.object_url("sv/a b/c.mp4"), "http://127.0.0.1:9000/outin-b/sv/a%20b/c.mp4");
        assert_eq!(s.storage_location(), "outin-b.127.0.0.1:9000");
        assert!(site("http://localhost:9000").is_path_style());
        assert!(site("http://[::1]:9000").is_path_style());
    }

    #[test]
    fn dns_endpoints_are_virtual_host_style() {
        let s = site("https://oss.example.com");
        assert!(!s.is_path_style());
        assert_eq!(s.object_url("image/x.png"), "https://outin-b.oss.example.com/image/x.png");
        assert_eq!(s.storage_location(), "outin-b.oss.example.com");
    }
}
