//! Every OSS XML body on the upload path, as serde types over quick-xml (oss-api.md §3):
//! InitiateMultipartUploadResult, CompleteMultipartUpload and its result, ListPartsResult (with the
//! `HashCrc64ecma` that alibabacloud-oss-v2 needs to resume), ListMultipartUploadsResult. The `<Error>`
//! body lives in [`super::error`].
//!
//! With `encoding-type=url` the keys in a response are percent-encoded ([`encode_key`]); the clients
//! decode them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::encoding::percent_encode;

/// An XML body that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("malformed XML: {0}")]
pub struct XmlError(String);

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Serializes `value` with the XML declaration OSS responses start with.
pub fn to_xml<T: Serialize>(value: &T) -> String {
    let body = quick_xml::se::to_string(value).expect("OSS bodies are plain structs of strings and numbers");
    format!("{DECLARATION}{body}")
}

/// Serializes `value` without a declaration, as the official clients send request bodies.
pub fn to_xml_fragment<T: Serialize>(value: &T) -> String {
    quick_xml::se::to_string(value).expect("OSS bodies are plain structs of strings and numbers")
}

/// Parses an XML body.
pub fn from_xml<T: DeserializeOwned>(text: &str) -> Result<T, XmlError> {
    quick_xml::de::from_str(text).map_err(|e| XmlError(e.to_string()))
}

/// The `encoding-type` value that asks for percent-encoded keys.
pub const ENCODING_TYPE_URL: &str = "url";

/// A key as a response writes it: percent-encoded when the request asked for `encoding-type=url`.
pub fn encode_key(key: &str, encoding_type: Option<&str>) -> String {
    if encoding_type == Some(ENCODING_TYPE_URL) { percent_encode(key) } else { key.to_owned() }
}

/// A key as a response carries it, decoded when the response says `EncodingType=url`.
pub fn decode_key(key: &str, encoding_type: Option<&str>) -> String {
    if encoding_type == Some(ENCODING_TYPE_URL) {
        crate::encoding::percent_decode(key).unwrap_or_else(|_| key.to_owned())
    } else {
        key.to_owned()
    }
}

/// The answer to `POST /{bucket}/{key}?uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "InitiateMultipartUploadResult")]
pub struct InitiateMultipartUploadResult {
    /// The bucket.
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// The key (percent-encoded when `encoding_type` is `url`).
    #[serde(rename = "Key")]
    pub key: String,
    /// The new upload id.
    #[serde(rename = "UploadId")]
    pub upload_id: String,
    /// `url` when the request asked for it.
    #[serde(rename = "EncodingType", default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
}

/// One part in a Complete request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletePart {
    /// The part number.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// The part's ETag, quoted as UploadPart returned it.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// The body of `POST /{bucket}/{key}?uploadId=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "CompleteMultipartUpload")]
pub struct CompleteMultipartUpload {
    /// The parts, ascending by number.
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletePart>,
}

/// The answer to Complete. oss2 reads the ETag from the header, v2 from this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "CompleteMultipartUploadResult")]
pub struct CompleteMultipartUploadResult {
    /// `url` when the request asked for it.
    #[serde(rename = "EncodingType", default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// The object's URL.
    #[serde(rename = "Location")]
    pub location: String,
    /// The bucket.
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// The key.
    #[serde(rename = "Key")]
    pub key: String,
    /// The object's ETag, quoted.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// One part in a ListParts answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedPart {
    /// The part number.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// When it was uploaded, `2026-11-25T20:36:49.000Z`.
    #[serde(rename = "LastModified")]
    pub last_modified: String,
    /// Its ETag, quoted.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// Its CRC-64 (v2's Uploader fails its final check without it).
    #[serde(rename = "HashCrc64ecma", default, skip_serializing_if = "Option::is_none")]
    pub hash_crc64ecma: Option<u64>,
    /// Its size in bytes.
    #[serde(rename = "Size")]
    pub size: u64,
}

/// The answer to `GET /{bucket}/{key}?uploadId=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ListPartsResult")]
pub struct ListPartsResult {
    /// `url` when the request asked for it.
    #[serde(rename = "EncodingType", default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// The bucket.
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// The key.
    #[serde(rename = "Key")]
    pub key: String,
    /// The upload id.
    #[serde(rename = "UploadId")]
    pub upload_id: String,
    /// Parts above this number were listed.
    #[serde(rename = "PartNumberMarker", default)]
    pub part_number_marker: u32,
    /// The marker for the next page: the last part number listed.
    #[serde(rename = "NextPartNumberMarker", default)]
    pub next_part_number_marker: u32,
    /// The page size.
    #[serde(rename = "MaxParts", default)]
    pub max_parts: u32,
    /// Whether more parts follow.
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: bool,
    /// The parts, ascending.
    #[serde(rename = "Part", default)]
    pub parts: Vec<ListedPart>,
}

/// One upload in a ListMultipartUploads answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedUpload {
    /// The key.
    #[serde(rename = "Key")]
    pub key: String,
    /// The upload id.
    #[serde(rename = "UploadId")]
    pub upload_id: String,
    /// Always `Standard` here.
    #[serde(rename = "StorageClass", default)]
    pub storage_class: String,
    /// When it was initiated.
    #[serde(rename = "Initiated")]
    pub initiated: String,
}

/// A common prefix in a delimited listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommonPrefix {
    /// The prefix.
    #[serde(rename = "Prefix")]
    pub prefix: String,
}

/// The answer to `GET /{bucket}/?uploads`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ListMultipartUploadsResult")]
pub struct ListMultipartUploadsResult {
    /// `url` when the request asked for it.
    #[serde(rename = "EncodingType", default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// The bucket.
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// The key marker of this page.
    #[serde(rename = "KeyMarker", default)]
    pub key_marker: String,
    /// The upload-id marker of this page.
    #[serde(rename = "UploadIdMarker", default)]
    pub upload_id_marker: String,
    /// The key marker of the next page.
    #[serde(rename = "NextKeyMarker", default)]
    pub next_key_marker: String,
    /// The upload-id marker of the next page.
    #[serde(rename = "NextUploadIdMarker", default)]
    pub next_upload_id_marker: String,
    /// The delimiter asked for.
    #[serde(rename = "Delimiter", default)]
    pub delimiter: String,
    /// The prefix asked for.
    #[serde(rename = "Prefix", default)]
    pub prefix: String,
    /// The page size.
    #[serde(rename = "MaxUploads", default)]
    pub max_uploads: u32,
    /// Whether more uploads follow.
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: bool,
    /// The uploads, by key then upload id.
    #[serde(rename = "Upload", default)]
    pub uploads: Vec<ListedUpload>,
    /// Prefixes rolled up by the delimiter.
    #[serde(rename = "CommonPrefixes", default)]
    pub common_prefixes: Vec<CommonPrefix>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_request_matches_what_the_clients_send() {
        let body = CompleteMultipartUpload {
            parts: vec![
                CompletePart { part_number: 1, etag: "\"302D3A0C8E319EAA95B059B346DE1D1D\"".into() },
                CompletePart { part_number: 2, etag: "\"82136B4240D6CE4EA7D03E51469A393B\"".into() },
            ],
        };
        let text = r#"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"302D3A0C8E319EAA95B059B346DE1D1D"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>"82136B4240D6CE4EA7D03E51469A393B"</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(from_xml::<CompleteMultipartUpload>(text).unwrap(), body);
        let written = to_xml_fragment(&body).replace("&quot;", "\"");
        assert_eq!(written, text);
        assert_eq!(from_xml::<CompleteMultipartUpload>(&to_xml_fragment(&body)).unwrap(), body);
    }

    #[test]
    fn complete_with_whitespace_and_declaration_parses() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload>\n  <Part>\n    <PartNumber>3</PartNumber>\n    <ETag>abc</ETag>\n  </Part>\n</CompleteMultipartUpload>";
        let body: CompleteMultipartUpload = from_xml(text).unwrap();
        assert_eq!(body.parts, vec![CompletePart { part_number: 3, etag: "abc".into() }]);
        assert!(from_xml::<CompleteMultipartUpload>("<CompleteMultipartUpload><Part>").is_err());
        assert!(from_xml::<CompleteMultipartUpload>("<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>").is_err());
    }

    #[test]
    fn list_parts_round_trips_with_crc() {
        let result = ListPartsResult {
            encoding_type: Some("url".into()),
            bucket: "vodbkt".into(),
            key: encode_key("sv/v.mp4", Some("url")),
            upload_id: "0004B9895DBBB6EC98E36F3B5A1C2D3E".into(),
            part_number_marker: 0,
            next_part_number_marker: 1,
            max_parts: 1000,
            is_truncated: false,
            parts: vec![ListedPart {
                part_number: 1,
                last_modified: "2026-11-25T20:36:49.000Z".into(),
                etag: "\"302D3A0C8E319EAA95B059B346DE1D1D\"".into(),
                hash_crc64ecma: Some(12_696_911_168_479_852_064),
                size: 102_400,
            }],
        };
        let xml = to_xml(&result);
        assert!(xml.starts_with(DECLARATION));
        assert!(xml.contains("<Key>sv%2Fv.mp4</Key>"), "{xml}");
        assert!(xml.contains("<HashCrc64ecma>12696911168479852064</HashCrc64ecma>"), "{xml}");
        assert!(xml.contains("<IsTruncated>false</IsTruncated>"), "{xml}");
        let parsed: ListPartsResult = from_xml(&xml).unwrap();
        assert_eq!(parsed, result);
        assert_eq!(decode_key(&parsed.key, parsed.encoding_type.as_deref()), "sv/v.mp4");
    }

    #[test]
    fn initiate_result_parses_the_spec_example() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult>\n  <Bucket>vodbkt</Bucket>\n  <Key>sv%2F1a2b3c%2Fvideo%20file%2B1.mp4</Key>\n  <UploadId>0004B9895DBBB6EC98E36F3B5A1C2D3E</UploadId>\n  <EncodingType>url</EncodingType>\n</InitiateMultipartUploadResult>";
        let parsed: InitiateMultipartUploadResult = from_xml(text).unwrap();
        assert_eq!(parsed.upload_id, "0004B9895DBBB6EC98E36F3B5A1C2D3E");
        assert_eq!(decode_key(&parsed.key, parsed.encoding_type.as_deref()), "sv/1a2b3c/video file+1.mp4");
    }

    #[test]
    fn list_uploads_has_repeated_elements() {
        let result = ListMultipartUploadsResult {
            bucket: "b".into(),
            max_uploads: 1000,
            uploads: vec![
                ListedUpload {
                    key: "a".into(),
                    upload_id: "1".into(),
                    storage_class: "Standard".into(),
                    initiated: "t".into(),
                },
                ListedUpload {
                    key: "b".into(),
                    upload_id: "2".into(),
                    storage_class: "Standard".into(),
                    initiated: "t".into(),
                },
            ],
            common_prefixes: vec![CommonPrefix { prefix: "sv/".into() }],
            ..Default::default()
        };
        let parsed: ListMultipartUploadsResult = from_xml(&to_xml(&result)).unwrap();
        assert_eq!(parsed, result);
    }

    #[test]
    fn text_is_escaped() {
        let result = CompleteMultipartUploadResult {
            encoding_type: None,
            location: "http://h/a&b".into(),
            bucket: "b".into(),
            key: "a<b>&c".into(),
            etag: "\"X-2\"".into(),
        };
        let xml = to_xml(&result);
        assert!(xml.contains("<Key>a&lt;b&gt;&amp;c</Key>"), "{xml}");
        assert_eq!(from_xml::<CompleteMultipartUploadResult>(&xml).unwrap(), result);
    }
}
