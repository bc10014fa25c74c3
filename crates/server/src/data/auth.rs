//! Who is calling the data plane, and may they do this: the check order of vod-api.md §12.1 for OSS
//! requests (credential present → key known → key active → token MAC → token expiry → time → signature),
//! then the object name, then scope and permission. A claimed payload digest is refused first, as OSS
//! does, since no key could make it acceptable.
//!
//! Nothing here reads the database per request: long-lived keys come from a short-lived cache, STS
//! credentials are self-describing, and revocation comes from the in-memory revocation set.

use std::time::Duration;

use vodup_proto::oss::authorization::{security_token, unsupported_payload_hash};
use vodup_proto::oss::header::{UNSIGNED_PAYLOAD, X_OSS_CONTENT_SHA256};
use vodup_proto::oss::validity::{self, TimePolicy};
use vodup_proto::oss::{OssCredential, OssErrorCode, OssRequest};
use vodup_proto::{Secret, SignatureError};

use super::endpoint::Endpoint;
use super::error::OssApiError;
use crate::presign::PRESIGN_KEY_ID;
use crate::state::AppState;
use crate::sts::{StsClaims, is_sts_id};

/// How far a header-signed request's date may be from the server's clock, and a V4 URL's date ahead of it.
pub const MAX_SKEW: Duration = validity::CLOCK_SKEW;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A long-lived AccessKey: may do everything.
    Key {
        /// Its id.
        id: String,
    },
    /// An upload credential, with what it grants.
    Sts(StsClaims),
    /// A URL presigned by the service itself: may read the one key it signed.
    Presign,
}

/// Authenticates a request.
pub async fn authenticate(
    state: &AppState,
    request: &OssRequest<'_>,
    request_id: &str,
) -> Result<Principal, OssApiError> {
    let credential = OssCredential::from_request(request).map_err(|e| {
        OssApiError::with_message(
            OssErrorCode::AccessDenied,
            format!("The request carries a malformed credential: {e}."),
        )
    })?;
    let Some(access_key_id) = credential.access_key_id() else {
        return Err(OssApiError::with_message(
            OssErrorCode::AccessDenied,
            "AccessDenied: anonymous access is not allowed; sign the request.",
        ));
    };
    // Like OSS, before the key matters: no key makes a claimed payload digest acceptable.
    check_payload_hash(request)?;
    let invalid_key = || {
        let mut error = OssApiError::new(OssErrorCode::InvalidAccessKeyId);
        error.body.oss_access_key_id = Some(access_key_id.to_owned());
        error
    };
    let needs_revocations = || {
        if state.revocations.is_current() {
            Ok(())
        } else {
            Err(OssApiError::with_message(
                OssErrorCode::ServiceUnavailable,
                "The revocation list is stale; try again shortly.",
            ))
        }
    };

    let (principal, secret): (Principal, Secret) = if access_key_id == PRESIGN_KEY_ID {
        if !credential.is_presigned() {
            return Err(OssApiError::with_message(OssErrorCode::AccessDenied, "This key only signs URLs."));
        }
        (Principal::Presign, state.presigner.secret().clone())
    } else if is_sts_id(access_key_id) {
        let token = security_token(request).ok_or_else(|| {
            OssApiError::with_message(
                OssErrorCode::InvalidSecurityToken,
                "An STS AccessKeyId needs its x-oss-security-token.",
            )
        })?;
        let claims = state
            .sts
            .verify(access_key_id, token)
            .map_err(|e| OssApiError::with_message(OssErrorCode::InvalidSecurityToken, e.to_string()))?;
        needs_revocations()?;
        if state.revocations.is_key_revoked(&claims.issuing_key_id) {
            return Err(invalid_key());
        }
        if claims.is_expired(state.now()) {
            return Err(OssApiError::new(OssErrorCode::SecurityTokenExpired));
        }
        let secret = state.sts.secret_for(access_key_id);
        (Principal::Sts(claims), secret)
    } else {
        let record = state
            .keys
            .get(state.meta.as_ref(), access_key_id)
            .await
            .map_err(|e| OssApiError::internal(request_id, &e))?
            .ok_or_else(invalid_key)?;
        needs_revocations()?;
        if record.revoked_at.is_some() || state.revocations.is_key_revoked(access_key_id) {
            return Err(invalid_key());
        }
        (Principal::Key { id: access_key_id.to_owned() }, record.secret)
    };

    check_time(state, &credential, request)?;
    if let Some(region) = credential.region()
        && region != state.site.region
    {
        return Err(OssApiError::invalid_argument(
            format!("The request is signed for region {region}; this service is {}.", state.site.region),
            "x-oss-credential",
            region,
        ));
    }
    credential.verify(request, &secret).map_err(|e| match e {
        SignatureError::Mismatch { string_to_sign } => {
            let provided = match &credential {
                OssCredential::V1Header { signature, .. }
                | OssCredential::V1Presign { signature, .. }
                | OssCredential::V4Header { signature, .. }
                | OssCredential::V4Presign { signature, .. } => signature.as_str(),
                OssCredential::Anonymous => "",
            };
            let mut error = OssApiError::new(OssErrorCode::SignatureDoesNotMatch);
            let body = std::mem::take(&mut *error.body);
            *error.body = body.with_string_to_sign(&string_to_sign, provided, access_key_id);
            error
        }
        other => OssApiError::with_message(
            OssErrorCode::AccessDenied,
            format!("The request signature is malformed: {other}."),
        ),
    })?;
    Ok(principal)
}

/// The time rules of [`validity`] with this service's limits; a refusal carries OSS's EC number.
fn check_time(
    state: &AppState,
    credential: &OssCredential,
    request: &OssRequest<'_>,
) -> Result<(), OssApiError> {
    let policy =
        TimePolicy { max_skew: MAX_SKEW, max_v1_presign_lifetime: state.settings.max_v1_presign_lifetime };
    validity::check(credential, request, state.now(), &policy).map_err(|e| {
        let mut error = OssApiError::with_message(e.refusal.code(), format!("{}.", e.refusal));
        error.body.ec = e.ec.map(str::to_owned);
        error
    })
}

/// Refuses an `x-oss-content-sha256` other than `UNSIGNED-PAYLOAD`, as OSS does (400 `InvalidArgument`,
/// EC 0002-00000214): the body is not hashed here, so a claimed digest would otherwise go unchecked.
fn check_payload_hash(request: &OssRequest<'_>) -> Result<(), OssApiError> {
    match unsupported_payload_hash(request) {
        None => Ok(()),
        Some(claimed) => {
            let mut error = OssApiError::invalid_argument(
                format!(
                    "The x-oss-content-sha256 only supports {UNSIGNED_PAYLOAD}; this service does not verify payload digests, so it refuses a request that claims one."
                ),
                X_OSS_CONTENT_SHA256,
                &claimed,
            );
            error.body.ec = Some("0002-00000214".to_owned());
            Err(error)
        }
    }
}

/// Validates an object key: 1-1023 bytes, no leading `/` or `\`, and (a vodup rule, vod-api.md §12.1) no
/// `..` segment, so scope checks are plain prefix checks.
pub fn check_object_name(key: &str) -> Result<(), OssApiError> {
    let bad = |why: &str| {
        Err(OssApiError::with_message(
            OssErrorCode::InvalidObjectName,
            format!("The specified object name is invalid: {why}."),
        ))
    };
    if key.is_empty() || key.len() > 1023 {
        return bad("it must be 1 to 1023 bytes");
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return bad("it must not start with / or \\");
    }
    if key.split(['/', '\\']).any(|segment| segment == "..") {
        return bad("it must not contain a .. segment");
    }
    if key.contains('\0') {
        return bad("it must not contain NUL");
    }
    Ok(())
}

/// May `principal` do `endpoint` on `key`?
pub fn authorize(
    state: &AppState,
    principal: &Principal,
    endpoint: &Endpoint,
    bucket: &str,
    key: Option<&str>,
) -> Result<(), OssApiError> {
    let denied = |why: &str| {
        Err(OssApiError::with_message(OssErrorCode::AccessDenied, format!("AccessDenied: {why}.")))
    };
    match principal {
        Principal::Key { .. } => Ok(()),
        Principal::Presign if endpoint.allowed_for_presign() => Ok(()),
        Principal::Presign => denied("a presigned URL only reads its object"),
        Principal::Sts(claims) => {
            if !endpoint.allowed_for_sts() {
                return denied("an upload credential cannot read object data, delete, or list the bucket");
            }
            if !key.is_some_and(|key| claims.allows(bucket, key)) {
                return denied("the object is outside this upload credential's scope");
            }
            if state.revocations.is_media_deleted(&claims.media_id) {
                return denied("the media this credential was issued for has been deleted");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_that_climb_or_start_absolute_are_invalid() {
        for bad in ["", "/a", "\\a", "..", "a/../b", "a/..", "../x", "a\\..\\b", "a\0b"] {
            assert!(check_object_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_object_name(&"k".repeat(1024)).is_err());
        for good in ["a", "sv/a/b.mp4", "a..b", ".../x", "a/./b", "空 格+%.mp4", &"k".repeat(1023)] {
            assert!(check_object_name(good).is_ok(), "{good:?}");
        }
    }
}
