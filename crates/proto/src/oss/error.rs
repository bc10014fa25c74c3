//! OSS error codes with their HTTP statuses and default messages, and the `<Error>` body
//! (oss-api.md §6.7, §7).
//!
//! HEAD responses carry no body, so the same XML goes Base64-encoded into `x-oss-err`; both official
//! clients decode it from there.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($($variant:ident = ($status:literal, $message:literal),)+) => {
        /// An OSS error code vodup sends or recognizes. The wire spelling is the variant name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OssErrorCode {
            $(
                #[doc = concat!("HTTP ", stringify!($status), ": ", $message)]
                $variant,
            )+
        }

        impl OssErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [OssErrorCode] = &[$(OssErrorCode::$variant),+];

            /// The `<Code>` on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(OssErrorCode::$variant => stringify!($variant),)+
                }
            }

            /// The HTTP status this code is sent with.
            pub fn http_status(self) -> u16 {
                match self {
                    $(OssErrorCode::$variant => $status,)+
                }
            }

            /// The message OSS sends with this code.
            pub fn default_message(self) -> &'static str {
                match self {
                    $(OssErrorCode::$variant => $message,)+
                }
            }

            /// The code for a wire string, if vodup knows it.
            pub fn from_wire(code: &str) -> Option<Self> {
                match code {
                    $(stringify!($variant) => Some(OssErrorCode::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

codes! {
    AccessDenied = (403, "You have no right to access this object because of bucket acl."),
    InvalidAccessKeyId = (403, "The OSS Access Key Id you provided does not exist in our records."),
    SignatureDoesNotMatch = (403, "The request signature we calculated does not match the signature you provided. Check your key and signing method."),
    SecurityTokenExpired = (403, "The security token you provided has expired."),
    InvalidSecurityToken = (403, "The security token you provided is invalid."),
    RequestTimeTooSkewed = (403, "The difference between the request time and the current time is too large."),
    NoSuchBucket = (404, "The specified bucket does not exist."),
    NoSuchKey = (404, "The specified key does not exist."),
    NoSuchUpload = (404, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."),
    InvalidPart = (400, "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag."),
    InvalidPartOrder = (400, "The list of parts was not in ascending order. The parts list must be specified in order by part number."),
    EntityTooSmall = (400, "Your proposed upload is smaller than the minimum allowed size."),
    EntityTooLarge = (400, "Your proposed upload exceeds the maximum allowed size."),
    InvalidArgument = (400, "An argument is invalid."),
    InvalidDigest = (400, "The Content-MD5 you specified did not match what we received."),
    MalformedXML = (400, "The XML you provided was not well-formed or did not validate against our published schema."),
    InvalidObjectName = (400, "The specified object name is invalid."),
    InvalidBucketName = (400, "The specified bucket is not valid."),
    InvalidRequest = (400, "The request is invalid."),
    IncompleteBody = (400, "You did not provide the number of bytes specified by the Content-Length HTTP header."),
    RequestTimeout = (400, "Your socket connection to the server was not read from or written to within the timeout period."),
    MissingContentLength = (411, "You must provide the Content-Length HTTP header."),
    MethodNotAllowed = (405, "The specified method is not allowed against this resource."),
    FileAlreadyExists = (409, "The object you specified already exists and can not be overwritten."),
    PreconditionFailed = (412, "At least one of the pre-conditions you specified did not hold."),
    InvalidRange = (416, "The requested range cannot be satisfied."),
    NotImplemented = (501, "A header or operation you provided implies functionality that is not implemented."),
    InternalError = (500, "We encountered an internal error. Please try again."),
    ServiceUnavailable = (503, "The service is unavailable. Please try again."),
    // vodup's own code (OSS has none): the service's storage is full. Not retryable, unlike the other
    // 503: retrying only adds load until an operator frees space.
    InsufficientStorage = (503, "The service's storage is full; nothing was stored. Ask the service's operator to free or add storage, then retry."),
}

impl OssErrorCode {
    /// Whether a client may retry: server faults, and clock skew once the clock is re-read
    /// (alibabacloud-oss-v2's retryer does the same).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::InternalError
                | Self::ServiceUnavailable
                | Self::RequestTimeout
                | Self::RequestTimeTooSkewed
        )
    }
}

impl fmt::Display for OssErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `<Error>` body. `Code` stays a string so that codes vodup does not know still reach the caller.
/// The optional elements are the ones OSS adds for particular errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Error")]
pub struct OssError {
    /// The error code (see [`OssErrorCode`]).
    #[serde(rename = "Code")]
    pub code: String,
    /// A human-readable message.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// The request id, also in `x-oss-request-id`.
    #[serde(rename = "RequestId", default)]
    pub request_id: String,
    /// The host that answered.
    #[serde(rename = "HostId", default)]
    pub host_id: String,
    /// The bucket, for bucket errors.
    #[serde(rename = "BucketName", default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// The key, for `NoSuchKey` and key errors.
    #[serde(rename = "Key", default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The upload id, for `NoSuchUpload`.
    #[serde(rename = "UploadId", default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// The part number, for `InvalidPart`.
    #[serde(rename = "PartNumber", default, skip_serializing_if = "Option::is_none")]
    pub part_number: Option<String>,
    /// The ETag, for `InvalidPart`.
    #[serde(rename = "ETag", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The argument at fault, for `InvalidArgument`.
    #[serde(rename = "ArgumentName", default, skip_serializing_if = "Option::is_none")]
    pub argument_name: Option<String>,
    /// Its value.
    #[serde(rename = "ArgumentValue", default, skip_serializing_if = "Option::is_none")]
    pub argument_value: Option<String>,
    /// For `SignatureDoesNotMatch`: the AccessKeyId used.
    #[serde(rename = "OSSAccessKeyId", default, skip_serializing_if = "Option::is_none")]
    pub oss_access_key_id: Option<String>,
    /// For `SignatureDoesNotMatch`: the signature as sent.
    #[serde(rename = "SignatureProvided", default, skip_serializing_if = "Option::is_none")]
    pub signature_provided: Option<String>,
    /// For `SignatureDoesNotMatch`: what the server signed.
    #[serde(rename = "StringToSign", default, skip_serializing_if = "Option::is_none")]
    pub string_to_sign: Option<String>,
    /// For `SignatureDoesNotMatch`: the same, as space-separated hex bytes.
    #[serde(rename = "StringToSignBytes", default, skip_serializing_if = "Option::is_none")]
    pub string_to_sign_bytes: Option<String>,
    /// The EC code, e.g. `0042-00000002`.
    #[serde(rename = "EC", default, skip_serializing_if = "Option::is_none")]
    pub ec: Option<String>,
}

impl OssError {
    /// An error with the code's default message.
    pub fn new(code: OssErrorCode, request_id: impl Into<String>, host_id: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: code.default_message().to_owned(),
            request_id: request_id.into(),
            host_id: host_id.into(),
            ..Self::default()
        }
    }

    /// Replaces the message.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Fills in the `SignatureDoesNotMatch` details. Each echoed value is cut at [`ECHO_LIMIT`] bytes (on a
    /// character boundary, marked with `...`): the string to sign holds the request's query, and its bytes
    /// in hex are three times as long, so echoing a long query whole would turn a request into an answer
    /// four times its size. A real signature's string to sign is far shorter, and is shown whole.
    #[must_use]
    pub fn with_string_to_sign(mut self, string_to_sign: &str, provided: &str, access_key_id: &str) -> Self {
        let shown = echoed(string_to_sign);
        self.string_to_sign_bytes =
            Some(shown.bytes().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "));
        self.string_to_sign = Some(shown);
        self.signature_provided = Some(echoed(provided));
        self.oss_access_key_id = Some(echoed(access_key_id));
        self
    }

    /// The known code, if any.
    pub fn known_code(&self) -> Option<OssErrorCode> {
        OssErrorCode::from_wire(&self.code)
    }

    /// The XML body, with declaration.
    pub fn to_xml(&self) -> String {
        super::xml::to_xml(self)
    }

    /// The `x-oss-err` header value for HEAD responses: Base64 of the XML body.
    pub fn to_header(&self) -> String {
        crate::mac::base64_encode(self.to_xml().as_bytes())
    }

    /// Parses an `<Error>` body.
    pub fn from_xml(text: &str) -> Result<Self, super::xml::XmlError> {
        super::xml::from_xml(text)
    }
}

/// The most bytes of a request's value an error answer echoes ([`OssError::with_string_to_sign`]).
pub const ECHO_LIMIT: usize = 2048;

/// `value`, or its first [`ECHO_LIMIT`] bytes (cut on a character boundary) followed by `...`.
fn echoed(value: &str) -> String {
    if value.len() <= ECHO_LIMIT {
        return value.to_owned();
    }
    let mut end = ECHO_LIMIT;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_with_error_statuses() {
        for code in OssErrorCode::ALL {
            assert_eq!(OssErrorCode::from_wire(code.as_str()), Some(*code));
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
        assert_eq!(OssErrorCode::MalformedXML.as_str(), "MalformedXML");
        assert_eq!(OssErrorCode::NoSuchUpload.http_status(), 404);
        assert_eq!(OssErrorCode::SecurityTokenExpired.http_status(), 403);
        assert_eq!(OssErrorCode::MissingContentLength.http_status(), 411);
    }

    #[test]
    fn error_xml_matches_the_spec_shape() {
        let mut error = OssError::new(
            OssErrorCode::NoSuchUpload,
            "5F09E53B25D95C3235741737",
            "vodbkt.oss-cn-shanghai.aliyuncs.com",
        );
        error.upload_id = Some("0004B9895DBBB6EC98E36".into());
        error.ec = Some("0042-00000002".into());
        assert_eq!(
            error.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.</Message><RequestId>5F09E53B25D95C3235741737</RequestId><HostId>vodbkt.oss-cn-shanghai.aliyuncs.com</HostId><UploadId>0004B9895DBBB6EC98E36</UploadId><EC>0042-00000002</EC></Error>"
        );
        assert_eq!(OssError::from_xml(&error.to_xml()).unwrap(), error);
    }

    #[test]
    fn head_errors_travel_base64_encoded() {
        let error = OssError::new(OssErrorCode::NoSuchKey, "r", "h");
        let decoded = crate::mac::base64_decode_strict(&error.to_header()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), error.to_xml());
    }

    #[test]
    fn long_signature_details_are_cut_so_an_answer_stays_near_its_request() {
        // A query of 20,000 bytes (the fuzz found one of about 7,000) in the string to sign, a long
        // multi-byte signature: each echoed value stops at the limit, on a character boundary.
        let long_query = format!("GET\n\n\n0\n/b/k?uploads={}", "%2F".repeat(6_000));
        let provided = "签".repeat(1_000);
        let error = OssError::new(OssErrorCode::SignatureDoesNotMatch, "r", "h").with_string_to_sign(
            &long_query,
            &provided,
            "ak",
        );
        let shown = error.string_to_sign.as_deref().unwrap();
        assert_eq!(shown, format!("{}...", &long_query[..ECHO_LIMIT]));
        assert_eq!(error.string_to_sign_bytes.as_deref().unwrap().len(), (ECHO_LIMIT + 3) * 3 - 1);
        let signature = error.signature_provided.as_deref().unwrap();
        assert!(signature.len() <= ECHO_LIMIT + 3 && signature.ends_with("..."), "{}", signature.len());
        assert!(provided.starts_with(signature.trim_end_matches("...")));
        assert!(error.to_xml().len() < 5 * ECHO_LIMIT + 1024, "{}", error.to_xml().len());
    }

    #[test]
    fn signature_details_list_bytes_in_hex() {
        let error = OssError::new(OssErrorCode::SignatureDoesNotMatch, "r", "h")
            .with_string_to_sign("PUT\n", "sig", "ak");
        assert_eq!(error.string_to_sign_bytes.as_deref(), Some("50 55 54 0a"));
        assert!(error.to_xml().contains("<StringToSign>PUT\n</StringToSign>"));
    }
}
