//! Classifies an OSS request into an [`Endpoint`] from its method, whether it names a key, and its
//! sub-resources, before authentication or any handler runs (Garage `Endpoint::from_request`). Each
//! endpoint says what it needs: a key, an upload id, and which principals may call it.

use vodup_proto::oss::part::parse_part_number;

use super::error::OssApiError;

/// An operation of the upload path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `PUT /{bucket}/{key}`.
    PutObject,
    /// `GET /{bucket}/{key}`.
    GetObject,
    /// `HEAD /{bucket}/{key}`.
    HeadObject,
    /// `DELETE /{bucket}/{key}`.
    DeleteObject,
    /// `POST /{bucket}/{key}?uploads`.
    InitiateMultipartUpload,
    /// `PUT /{bucket}/{key}?partNumber=N&uploadId=ID`.
    UploadPart {
        /// 1..=10000.
        part_number: u32,
        /// The upload.
        upload_id: String,
    },
    /// `POST /{bucket}/{key}?uploadId=ID`.
    CompleteMultipartUpload {
        /// The upload.
        upload_id: String,
    },
    /// `DELETE /{bucket}/{key}?uploadId=ID`.
    AbortMultipartUpload {
        /// The upload.
        upload_id: String,
    },
    /// `GET /{bucket}/{key}?uploadId=ID`.
    ListParts {
        /// The upload.
        upload_id: String,
    },
    /// `GET /{bucket}/?uploads`.
    ListMultipartUploads,
}

impl Endpoint {
    /// Classifies a request. `has_key` says whether the path names an object.
    pub fn classify(method: &str, has_key: bool, query: &[(String, String)]) -> Result<Self, OssApiError> {
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let upload_id = || param("uploadId").map(str::to_owned);
        if !has_key {
            return match (method, param("uploads")) {
                ("GET", Some(_)) => Ok(Self::ListMultipartUploads),
                _ => Err(OssApiError::with_message(
                    vodup_proto::oss::OssErrorCode::NotImplemented,
                    "Only ListMultipartUploads is served at bucket level by this service.",
                )),
            };
        }
        let endpoint = match method {
            "PUT" => match (param("partNumber"), upload_id()) {
                (Some(number), Some(upload_id)) => {
                    let part_number = parse_part_number(number).ok_or_else(|| {
                        OssApiError::invalid_argument(
                            "Part number must be an integer between 1 and 10000, inclusive.",
                            "PartNumber",
                            number,
                        )
                    })?;
                    Self::UploadPart { part_number, upload_id }
                }
                (Some(number), None) => {
                    return Err(OssApiError::invalid_argument(
                        "UploadPart needs an uploadId.",
                        "uploadId",
                        number,
                    ));
                }
                (None, Some(upload_id)) => {
                    return Err(OssApiError::invalid_argument(
                        "Part number must be an integer between 1 and 10000, inclusive.",
                        "PartNumber",
                        &upload_id,
                    ));
                }
                (None, None) => Self::PutObject,
            },
            "POST" => match (param("uploads"), upload_id()) {
                (Some(_), _) => Self::InitiateMultipartUpload,
                (None, Some(upload_id)) => Self::CompleteMultipartUpload { upload_id },
                (None, None) => {
                    return Err(OssApiError::with_message(
                        vodup_proto::oss::OssErrorCode::NotImplemented,
                        "POST needs ?uploads or ?uploadId (AppendObject and PostObject are not served).",
                    ));
                }
            },
            "GET" => match upload_id() {
                Some(upload_id) => Self::ListParts { upload_id },
                None => Self::GetObject,
            },
            "HEAD" => Self::HeadObject,
            "DELETE" => match upload_id() {
                Some(upload_id) => Self::AbortMultipartUpload { upload_id },
                None => Self::DeleteObject,
            },
            _ => return Err(OssApiError::new(vodup_proto::oss::OssErrorCode::MethodNotAllowed)),
        };
        Ok(endpoint)
    }

    /// The action name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::PutObject => "PutObject",
            Self::GetObject => "GetObject",
            Self::HeadObject => "HeadObject",
            Self::DeleteObject => "DeleteObject",
            Self::InitiateMultipartUpload => "InitiateMultipartUpload",
            Self::UploadPart { .. } => "UploadPart",
            Self::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            Self::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            Self::ListParts { .. } => "ListParts",
            Self::ListMultipartUploads => "ListMultipartUploads",
        }
    }

    /// What an in-scope upload credential may do (vod-api.md §12): write its object, read its
    /// attributes; never read its bytes, delete, or list the bucket.
    pub fn allowed_for_sts(&self) -> bool {
        !matches!(self, Self::GetObject | Self::DeleteObject | Self::ListMultipartUploads)
    }

    /// What a service-presigned URL may do: read.
    pub fn allowed_for_presign(&self) -> bool {
        matches!(self, Self::GetObject | Self::HeadObject)
    }

    /// The upload id this endpoint acts on.
    pub fn upload_id(&self) -> Option<&str> {
        match self {
            Self::UploadPart { upload_id, .. }
            | Self::CompleteMultipartUpload { upload_id }
            | Self::AbortMultipartUpload { upload_id }
            | Self::ListParts { upload_id } => Some(upload_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn classifies_the_upload_path() {
        assert_eq!(Endpoint::classify("PUT", true, &[]).unwrap(), Endpoint::PutObject);
        assert_eq!(
            Endpoint::classify("POST", true, &q(&[("uploads", "")])).unwrap(),
            Endpoint::InitiateMultipartUpload
        );
        assert_eq!(
            Endpoint::classify("PUT", true, &q(&[("uploadId", "U"), ("partNumber", "7")])).unwrap(),
            Endpoint::UploadPart { part_number: 7, upload_id: "U".into() }
        );
        assert_eq!(
            Endpoint::classify("POST", true, &q(&[("encoding-type", "url"), ("uploadId", "U")])).unwrap(),
            Endpoint::CompleteMultipartUpload { upload_id: "U".into() }
        );
        assert_eq!(
            Endpoint::classify("DELETE", true, &q(&[("uploadId", "U")])).unwrap().name(),
            "AbortMultipartUpload"
        );
        assert_eq!(Endpoint::classify("GET", true, &q(&[("uploadId", "U")])).unwrap().name(), "ListParts");
        assert_eq!(
            Endpoint::classify("GET", false, &q(&[("uploads", "")])).unwrap(),
            Endpoint::ListMultipartUploads
        );
        assert_eq!(Endpoint::classify("HEAD", true, &[]).unwrap(), Endpoint::HeadObject);
    }

    #[test]
    fn part_numbers_outside_the_range_are_invalid_arguments() {
        for bad in ["0", "10001", "x", ""] {
            let err =
                Endpoint::classify("PUT", true, &q(&[("uploadId", "U"), ("partNumber", bad)])).unwrap_err();
            assert_eq!(err.code, vodup_proto::oss::OssErrorCode::InvalidArgument, "{bad}");
            assert_eq!(err.body.argument_name.as_deref(), Some("PartNumber"));
        }
    }

    #[test]
    fn unknown_operations_are_refused_clearly() {
        assert!(Endpoint::classify("GET", false, &[]).is_err());
        assert!(Endpoint::classify("POST", true, &[]).is_err());
        assert!(Endpoint::classify("PATCH", true, &[]).is_err());
    }
}
