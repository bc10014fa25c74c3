//! A request as lists of query pairs and headers, built valid and signed, then mutated in one place.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::select;
use vodup_proto::oss::OssRequest;

use crate::values::{Edit, broken, edit};

/// Header and parameter names the parsers look for, to add or replace.
const NAMES: &[&str] = &[
    "authorization",
    "date",
    "x-oss-date",
    "x-oss-content-sha256",
    "x-oss-security-token",
    "security-token",
    "content-type",
    "content-md5",
    "OSSAccessKeyId",
    "Expires",
    "Signature",
    "x-oss-signature-version",
    "x-oss-credential",
    "x-oss-expires",
    "x-oss-signature",
    "x-oss-additional-headers",
    "partNumber",
    "uploadId",
    "Timestamp",
    "SignatureNonce",
    "AccessKeyId",
    "x-acs-date",
    "x-acs-content-sha256",
    "x-acs-signature-nonce",
];

#[derive(Debug, Clone)]
pub enum Mutation {
    None,
    SetQuery(usize, String),
    SetHeader(usize, String),
    EditQuery(usize, Edit),
    EditHeader(usize, Edit),
    AddQuery(&'static str, String),
    AddHeader(&'static str, String),
    RemoveQuery(usize),
    RemoveHeader(usize),
    DuplicateQuery(usize),
    DuplicateHeader(usize),
    Key(String),
    Method(String),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::None),
        3 => (any::<usize>(), broken()).prop_map(|(i, v)| Mutation::SetQuery(i, v)),
        3 => (any::<usize>(), broken()).prop_map(|(i, v)| Mutation::SetHeader(i, v)),
        2 => (any::<usize>(), edit()).prop_map(|(i, e)| Mutation::EditQuery(i, e)),
        2 => (any::<usize>(), edit()).prop_map(|(i, e)| Mutation::EditHeader(i, e)),
        2 => (select(NAMES), broken()).prop_map(|(n, v)| Mutation::AddQuery(n, v)),
        2 => (select(NAMES), broken()).prop_map(|(n, v)| Mutation::AddHeader(n, v)),
        1 => any::<usize>().prop_map(Mutation::RemoveQuery),
        1 => any::<usize>().prop_map(Mutation::RemoveHeader),
        1 => any::<usize>().prop_map(Mutation::DuplicateQuery),
        1 => any::<usize>().prop_map(Mutation::DuplicateHeader),
        1 => broken().prop_map(Mutation::Key),
        1 => "[A-Z]{0,8}".prop_map(Mutation::Method),
    ]
}

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub bucket: String,
    pub key: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn mutate(mut self, mutation: &Mutation) -> Self {
        fn at<T>(list: &[T], i: usize) -> Option<usize> {
            (!list.is_empty()).then(|| i % list.len())
        }
        match mutation {
            Mutation::None => {}
            Mutation::SetQuery(i, v) => {
                if let Some(i) = at(&self.query, *i) {
                    self.query[i].1.clone_from(v);
                }
            }
            Mutation::SetHeader(i, v) => {
                if let Some(i) = at(&self.headers, *i) {
                    self.headers[i].1.clone_from(v);
                }
            }
            Mutation::EditQuery(i, e) => {
                if let Some(i) = at(&self.query, *i) {
                    self.query[i].1 = e.apply(&self.query[i].1);
                }
            }
            Mutation::EditHeader(i, e) => {
                if let Some(i) = at(&self.headers, *i) {
                    self.headers[i].1 = e.apply(&self.headers[i].1);
                }
            }
            Mutation::AddQuery(n, v) => self.query.push(((*n).to_owned(), v.clone())),
            Mutation::AddHeader(n, v) => self.headers.push((n.to_ascii_lowercase(), v.clone())),
            Mutation::RemoveQuery(i) => {
                if let Some(i) = at(&self.query, *i) {
                    self.query.remove(i);
                }
            }
            Mutation::RemoveHeader(i) => {
                if let Some(i) = at(&self.headers, *i) {
                    self.headers.remove(i);
                }
            }
            Mutation::DuplicateQuery(i) => {
                if let Some(i) = at(&self.query, *i) {
                    self.query.push(self.query[i].clone());
                }
            }
            Mutation::DuplicateHeader(i) => {
                if let Some(i) = at(&self.headers, *i) {
                    self.headers.push(self.headers[i].clone());
                }
            }
            Mutation::Key(k) => self.key.clone_from(k),
            Mutation::Method(m) => self.method.clone_from(m),
        }
        self
    }

    /// The headers as a server receives them: a value with bytes HTTP cannot carry loses those bytes
    /// (hyper would refuse the request outright; the rest still reaches the parsers).
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else { continue };
            let bytes: Vec<u8> = value.bytes().filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)).collect();
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                map.append(name, value);
            }
        }
        map
    }

    pub fn oss<'a>(&'a self, headers: &'a HeaderMap) -> OssRequest<'a> {
        OssRequest {
            method: &self.method,
            bucket: Some(&self.bucket),
            key: Some(&self.key),
            query: &self.query,
            headers,
        }
    }

    pub fn input_len(&self) -> usize {
        let pairs =
            |list: &[(String, String)]| list.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>();
        self.method.len()
            + self.bucket.len()
            + self.key.len()
            + pairs(&self.query)
            + pairs(&self.headers)
            + self.body.len()
    }
}
