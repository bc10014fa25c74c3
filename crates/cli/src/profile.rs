//! Credentials from the aliyun CLI's profiles, as Alibaba Cloud users already keep them: `--profile NAME`
//! (or `ALIBABA_CLOUD_PROFILE`) reads `~/.aliyun/config.json` (another file with
//! `ALIBABA_CLOUD_CONFIG_FILE`); without a name, its `current` profile is the last resort after flags and
//! environment variables. Profiles in `AK` and `StsToken` mode hold keys; the other modes (RAM role,
//! ECS role…) need a credential exchange we do not make, and are refused with a message saying so.

use std::path::PathBuf;

use serde::Deserialize;
use vodup_sdk::{Credentials, Error, ErrorKind};

/// A profile's credentials and region.
#[derive(Debug)]
pub struct Profile {
    /// The keys.
    pub credentials: Credentials,
    /// `region_id`, when set.
    pub region: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: Vec<ProfileEntry>,
}

#[derive(Debug, Deserialize)]
struct ProfileEntry {
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
    #[serde(default)]
    region_id: String,
}

/// The config file's path.
fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ALIBABA_CLOUD_CONFIG_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".aliyun/config.json"))
}

fn no_keys() -> Error {
    Error::new(ErrorKind::PermissionDenied, "read credentials", "no AccessKey given").with_hint(
        "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or give --profile NAME of \
         ~/.aliyun/config.json",
    )
}

/// The profile `name`, or the file's current one when `name` is `None` (no file then means no keys).
pub fn load(name: Option<&str>) -> Result<Profile, Error> {
    let path = config_path().ok_or_else(no_keys)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name.is_none() => return Err(no_keys()),
        Err(e) => {
            return Err(Error::new(ErrorKind::InvalidInput, "read profile", format!("cannot read: {e}"))
                .with_path(&path)
                .with_hint("create it with `aliyun configure`, or give keys in the environment"));
        }
    };
    parse(&text, name).map_err(|e| e.with_path(&path))
}

fn parse(text: &str, name: Option<&str>) -> Result<Profile, Error> {
    let invalid = |message: String, hint: &str| {
        Error::new(ErrorKind::InvalidInput, "read profile", message).with_hint(hint.to_owned())
    };
    let config: ConfigFile = serde_json::from_str(text)
        .map_err(|e| invalid(format!("not an aliyun CLI config.json: {e}"), "fix the file or pass keys"))?;
    let wanted = name.unwrap_or(&config.current);
    let names: Vec<&str> = config.profiles.iter().map(|p| p.name.as_str()).collect();
    let profile = config.profiles.iter().find(|p| p.name == wanted).ok_or_else(|| {
        invalid(
            format!("no profile named {wanted:?} (profiles: {})", names.join(", ")),
            "give --profile NAME",
        )
    })?;
    let credentials = match profile.mode.as_str() {
        "AK" | "" => Credentials::new(profile.access_key_id.trim(), profile.access_key_secret.trim()),
        "StsToken" => Credentials::new(profile.access_key_id.trim(), profile.access_key_secret.trim())
            .with_security_token(profile.sts_token.trim()),
        other => {
            return Err(invalid(
                format!("profile {wanted:?} is in mode {other}, which vodup cannot use"),
                "use a profile in AK or StsToken mode, or give keys in the environment",
            ));
        }
    };
    if profile.access_key_id.trim().is_empty() || profile.access_key_secret.trim().is_empty() {
        return Err(invalid(
            format!("profile {wanted:?} has no access_key_id or access_key_secret"),
            "fill them in",
        ));
    }
    let region = Some(profile.region_id.trim().to_owned()).filter(|r| !r.is_empty());
    Ok(Profile { credentials, region })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
        "current": "work",
        "profiles": [
            {"name": "default", "mode": "AK", "access_key_id": "LTAIdefault", "access_key_secret": "s1",
             "region_id": "cn-hangzhou", "output_format": "json", "language": "en"},
            {"name": "work", "mode": "StsToken", "access_key_id": "STS.id", "access_key_secret": "s2",
             "sts_token": "token", "region_id": ""},
            {"name": "role", "mode": "RamRoleArn", "access_key_id": "a", "access_key_secret": "b"}
        ],
        "meta_path": ""
    }"#;

    #[test]
    fn profiles_by_name_or_current() {
        let named = parse(CONFIG, Some("default")).unwrap();
        assert_eq!(named.credentials.access_key_id, "LTAIdefault");
        assert_eq!(named.region.as_deref(), Some("cn-hangzhou"));
        let current = parse(CONFIG, None).unwrap();
        assert_eq!(current.credentials.access_key_id, "STS.id");
        assert_eq!(
            current.credentials.security_token.as_ref().map(|t| t.expose().to_owned()).as_deref(),
            Some("token")
        );
        assert_eq!(current.region, None);
    }

    #[test]
    fn unknown_names_and_modes_are_refused_clearly() {
        let missing = parse(CONFIG, Some("nope")).unwrap_err().to_string();
        assert!(missing.contains("default, work, role"), "{missing}");
        let role = parse(CONFIG, Some("role")).unwrap_err().to_string();
        assert!(role.contains("RamRoleArn"), "{role}");
    }
}
