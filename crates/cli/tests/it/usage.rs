//! What `vodup upload KIND` prints when the SOURCE is missing: only what is required, and where the
//! AccessKey comes from instead, even with keys and endpoint set in the environment (clap used to list
//! every flag with a set variable as if required, inviting the secret onto the command line). See issue 13.

use std::process::Command;

#[test]
fn usage_without_a_source_names_only_what_is_required_and_the_environment() {
    let secret = "usage-test-secret-3f9a";
    for (kind, required) in
        [("video", ""), ("image", ""), ("m3u8", ""), ("attached", " --business-type <BUSINESS_TYPE>")]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_vodup"))
            .args(["upload", kind])
            .env("VODUP_ENDPOINT", "http://127.0.0.1:1")
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIusagetest")
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
            .env("ALIBABA_CLOUD_SECURITY_TOKEN", "usage-test-token")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "a usage error");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let usage = format!("Usage: vodup upload {kind}{required} [OPTIONS] <SOURCE>...\n");
        assert!(stderr.contains(&usage), "{kind}: {stderr}");
        assert!(
            stderr.contains(&format!("vodup upload {kind}{required} [OPTIONS] --from-list <FILE>")),
            "{stderr}"
        );
        for variable in ["ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "VODUP_ENDPOINT"] {
            assert!(stderr.contains(variable), "{kind}: the usage names {variable}: {stderr}");
        }
        for flag in ["--endpoint", "--access-key-id", "--access-key-secret", "--security-token"] {
            assert!(!stderr.contains(flag), "{kind}: the usage shows {flag} as if required: {stderr}");
        }
        assert!(!stderr.contains(secret) && !stderr.contains("LTAIusagetest"), "{stderr}");
    }
}
