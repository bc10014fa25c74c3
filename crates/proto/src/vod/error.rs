//! VOD error codes with their HTTP statuses, and the JSON error body both official SDKs parse
//! (vod-api.md §3 and §12.1).
//!
//! The body is `{"RequestId","HostId","Code","Message"}`; it must be served as
//! `application/json;charset=utf-8` (tea parses XML only for `text/xml;charset=utf-8`). Alibaba adds
//! `Recommend`, a link to its troubleshooting site; that site knows nothing of a self-hosted service and no
//! official client reads the field, so vodup sends none and only parses it from real VOD.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($($variant:ident = ($wire:literal, $status:literal),)+) => {
        /// A VOD error code vodup sends or recognizes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum VodErrorCode {
            $(
                #[doc = concat!("`", $wire, "` (HTTP ", stringify!($status), ")")]
                $variant,
            )+
        }

        impl VodErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [VodErrorCode] = &[$(VodErrorCode::$variant),+];

            /// The `Code` string on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(VodErrorCode::$variant => $wire,)+
                }
            }

            /// The HTTP status this code is sent with.
            pub fn http_status(self) -> u16 {
                match self {
                    $(VodErrorCode::$variant => $status,)+
                }
            }

            /// The code for a wire string, if vodup knows it.
            pub fn from_wire(code: &str) -> Option<Self> {
                match code {
                    $($wire => Some(VodErrorCode::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

codes! {
    MissingParameter = ("MissingParameter", 400),
    InvalidParameter = ("InvalidParameter", 400),
    SignatureDoesNotMatch = ("SignatureDoesNotMatch", 400),
    IncompleteSignature = ("IncompleteSignature", 400),
    InvalidTimeStampExpired = ("InvalidTimeStamp.Expired", 400),
    SignatureNonceUsed = ("SignatureNonceUsed", 400),
    InvalidAccessKeyIdNotFound = ("InvalidAccessKeyId.NotFound", 404),
    InvalidAccessKeyIdInactive = ("InvalidAccessKeyId.Inactive", 400),
    AccessDenied = ("AccessDenied", 403),
    ForbiddenRam = ("Forbidden.RAM", 403),
    Throttling = ("Throttling", 400),
    InvalidActionNotFound = ("InvalidAction.NotFound", 404),
    InvalidVersion = ("InvalidVersion", 400),
    RequestEntityTooLarge = ("RequestEntityTooLarge", 413),
    InternalError = ("InternalError", 500),
    ServiceUnavailable = ("ServiceUnavailable", 503),
    // vodup's own code, as on the OSS plane: the service's disk is full. Not retryable.
    InsufficientStorage = ("InsufficientStorage", 503),
    InvalidFileNameExtension = ("InvalidFileName.Extension", 400),
    IllegalCharacters = ("IllegalCharacters", 400),
    LengthExceededMax = ("LengthExceededMax", 400),
    TagsExceededMax = ("TagsExceededMax", 400),
    InvalidTemplateGroupIdNotFound = ("InvalidTemplateGroupId.NotFound", 404),
    InvalidStorageNotFound = ("InvalidStorage.NotFound", 404),
    ForbiddenInitFailed = ("Forbidden.InitFailed", 403),
    AddVideoFailed = ("AddVideoFailed", 503),
    InvalidVideoNotFound = ("InvalidVideo.NotFound", 404),
    InvalidVideoDamaged = ("InvalidVideo.Damaged", 400),
    InvalidVideoNoneStream = ("InvalidVideo.NoneStream", 404),
    InvalidImageNotFound = ("InvalidImage.NotFound", 404),
    InvalidFileNotFound = ("InvalidFile.NotFound", 404),
    VideoIdsExceededMax = ("VideoIdsExceededMax", 400),
    VideoListExceededMax = ("VideoListExceededMax", 400),
    DeleteVideoFailed = ("DeleteVideoFailed", 503),
    ForbiddenIllegalStatus = ("Forbidden.IllegalStatus", 403),
    InvalidParameterUploadUrls = ("InvalidParameter.UploadURLs", 400),
}

impl VodErrorCode {
    /// Whether a client may retry the same request: the server-side faults and throttling, as the core
    /// SDK's retry policy treats them.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::InternalError | Self::ServiceUnavailable | Self::Throttling)
    }
}

impl fmt::Display for VodErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON error body. `Code` stays a string so that codes vodup does not know still reach the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VodError {
    /// The request id, also sent as `x-acs-request-id`.
    #[serde(default)]
    pub request_id: String,
    /// The host that answered, e.g. `vod.cn-shanghai.aliyuncs.com`.
    #[serde(default)]
    pub host_id: String,
    /// The error code (see [`VodErrorCode`]).
    pub code: String,
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
    /// Alibaba's troubleshooting link, present in real VOD's errors; vodup's own carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommend: Option<String>,
}

impl VodError {
    /// An error body for `code`.
    pub fn new(
        code: VodErrorCode,
        message: impl Into<String>,
        request_id: impl Into<String>,
        host_id: impl Into<String>,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            host_id: host_id.into(),
            code: code.as_str().to_owned(),
            message: message.into(),
            recommend: None,
        }
    }

    /// The `SignatureDoesNotMatch` message. aliyun-python-sdk-core does `Message.split(':')[1]` and
    /// compares it with its own string to sign, so the server's string to sign must follow the first
    /// colon (vod-api.md §3). The v1 string to sign contains no `:` (it is percent-encoded); an ACS3 one
    /// may, so this rule is for v1 and harmless for ACS3.
    pub fn signature_mismatch_message(string_to_sign: &str) -> String {
        format!(
            "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
        )
    }

    /// The known code, if any.
    pub fn known_code(&self) -> Option<VodErrorCode> {
        VodErrorCode::from_wire(&self.code)
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("VodError always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_have_error_statuses() {
        for code in VodErrorCode::ALL {
            assert_eq!(VodErrorCode::from_wire(code.as_str()), Some(*code));
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
    }

    #[test]
    fn statuses_follow_the_spec_tables() {
        assert_eq!(VodErrorCode::SignatureDoesNotMatch.http_status(), 400);
        assert_eq!(VodErrorCode::InvalidAccessKeyIdNotFound.http_status(), 404);
        assert_eq!(VodErrorCode::InvalidAccessKeyIdInactive.http_status(), 400);
        assert_eq!(VodErrorCode::AccessDenied.http_status(), 403);
        assert_eq!(VodErrorCode::RequestEntityTooLarge.http_status(), 413);
        assert_eq!(VodErrorCode::InvalidVideoNotFound.as_str(), "InvalidVideo.NotFound");
        assert_eq!(VodErrorCode::InvalidTimeStampExpired.as_str(), "InvalidTimeStamp.Expired");
    }

    #[test]
    fn body_matches_the_spec_shape() {
        let body = VodError::new(
            VodErrorCode::InvalidFileNameExtension,
            "The specified FileName's extension is illegal.",
            "1111",
            "vod.cn-shanghai.aliyuncs.com",
        );
        assert_eq!(
            body.to_json(),
            r#"{"RequestId":"1111","HostId":"vod.cn-shanghai.aliyuncs.com","Code":"InvalidFileName.Extension","Message":"The specified FileName's extension is illegal."}"#
        );
        let parsed: VodError = serde_json::from_str(&body.to_json()).unwrap();
        assert_eq!(parsed.known_code(), Some(VodErrorCode::InvalidFileNameExtension));
        let from_alibaba: VodError = serde_json::from_str(
            r#"{"RequestId":"1","HostId":"vod.cn-shanghai.aliyuncs.com","Code":"Forbidden","Message":"m","Recommend":"https://api.aliyun.com/troubleshoot?q=Forbidden"}"#,
        )
        .unwrap();
        assert!(from_alibaba.recommend.is_some(), "real VOD's link still parses");
    }

    #[test]
    fn signature_message_puts_the_string_to_sign_after_the_first_colon() {
        let sts = "POST&%2F&AccessKeyId%3Dtestid";
        let message = VodError::signature_mismatch_message(sts);
        assert_eq!(message.split(':').nth(1), Some(sts));
    }
}
