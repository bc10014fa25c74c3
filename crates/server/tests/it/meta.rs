//! The SQLite metadata backend: every conformance check on a fresh database file, then what only a
//! file-backed store can get wrong (its mode, reopening, and two processes sharing it).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use tempfile::TempDir;
use vodup_server::meta::{
    AccessKeyRecord, CredentialRepo, MediaRepo, NewUpload, SqliteMeta, UploadRepo, conformance,
};
use vodup_server::proto::Secret;

/// A store in its own temporary directory; the directory lives as long as the returned guard.
async fn open_temp() -> (TempDir, SqliteMeta) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let meta = SqliteMeta::open(&dir.path().join("meta.db")).await.expect("open a fresh SQLite store");
    (dir, meta)
}

/// Calls `$each!` with the name of every check of the conformance suite, so each backend's tests list
/// them all (`meta_postgres.rs` uses it too).
macro_rules! every_check {
    ($each:ident) => {
        $each!(
            run_all,
            events_commit_with_their_status_change,
            stale_uploads_and_media_are_found_by_age,
            leases_have_one_holder_until_they_expire,
            racing_claims_take_each_event_once,
            racing_takers_get_one_lease,
            keys_round_trip,
            key_revocation,
            settings_are_created_once,
            nonces_are_single_use_while_live,
            revocations_list_revoked_keys_and_recent_deletions,
            media_round_trip,
            media_ids_and_reference_ids_are_unique,
            media_by_reference,
            update_media_changes_only_given_fields,
            delete_media_hides_media_and_aborts_uploads,
            list_videos_filters,
            list_videos_orders_and_pages,
            record_progress_only_for_uploading_videos,
            uploads_round_trip,
            list_open_uploads_orders_filters_and_pages,
            create_upload_checks_the_guard,
            put_and_get_object_round_trip,
            put_replaces_the_version_and_releases_the_old_blob,
            put_object_checks_the_guard,
            parts_are_recorded_replaced_and_released,
            complete_publishes_the_listed_parts,
            complete_refusals_change_nothing,
            complete_and_abort_exclude_each_other,
            delete_object_releases_or_refuses,
            delete_media_releases_objects_and_parts,
            commits_publish_the_media_key_only,
            claim_garbage_respects_cutoff_and_limit,
            claim_orphans_tombstones_unknown_blobs,
            import_legacy_is_idempotent,
        );
    };
}
pub(crate) use every_check;

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let (_dir, meta) = open_temp().await;
            conformance::$check(&meta).await;
        }
    )*};
}

every_check!(conformance_tests);

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat the database file").permissions().mode() & 0o777
}

fn key(id: &str) -> AccessKeyRecord {
    AccessKeyRecord {
        id: id.into(),
        secret: Secret::new(format!("secret of {id}")),
        description: String::new(),
        created_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_000),
        revoked_at: None,
    }
}

#[tokio::test]
async fn database_file_is_created_private() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("meta.db");
    let meta = SqliteMeta::open(&path).await.expect("open a fresh SQLite store");
    assert_eq!(mode(&path), 0o600, "the file holds AccessKeySecrets");

    meta.create_key(&key("LTAI5tPrivateFileKey0001")).await.expect("create a key");
    let wal = dir.path().join("meta.db-wal");
    assert!(wal.exists(), "WAL mode keeps a -wal file next to the database");
    assert_eq!(
        mode(&wal),
        0o600,
        "SQLite gives the -wal file (which holds fresh secrets) the database's mode"
    );
}

#[tokio::test]
async fn existing_database_file_is_narrowed_to_0600() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("meta.db");
    std::fs::write(&path, b"").expect("create an empty file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    SqliteMeta::open(&path).await.expect("open an existing empty file");
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn opening_in_a_missing_directory_says_where() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("absent").join("meta.db");
    let error = SqliteMeta::open(&path).await.expect_err("the parent directory does not exist");
    let message = error.to_string();
    assert!(message.contains("absent/meta.db") && message.contains("0600"), "unhelpful error: {message}");
}

#[tokio::test]
async fn reopening_keeps_the_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("meta.db");
    let record = key("LTAI5tReopenedKey0000001");
    {
        let meta = SqliteMeta::open(&path).await.expect("open a fresh SQLite store");
        meta.create_key(&record).await.expect("create a key");
        let setting = meta.get_or_create_setting("server-secret", "first").await.expect("create a setting");
        assert_eq!(setting, "first");
    }
    for _ in 0..2 {
        let meta = SqliteMeta::open(&path).await.expect("reopen the store (migrations run again)");
        assert_eq!(meta.get_key(&record.id).await.expect("get a key"), Some(record.clone()));
        let setting = meta.get_or_create_setting("server-secret", "second").await.expect("read a setting");
        assert_eq!(setting, "first", "the stored setting survives reopening");
    }
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_writes() {
    // What `vodup keys create` does while the server runs: a second pool on the same file.
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("meta.db");
    let server = SqliteMeta::open(&path).await.expect("open the server's store");
    let cli = SqliteMeta::open(&path).await.expect("open the CLI's store");

    let record = key("LTAI5tSharedFileKey00001");
    cli.create_key(&record).await.expect("create a key through the CLI's store");
    assert_eq!(server.get_key(&record.id).await.expect("get a key"), Some(record.clone()), "visible at once");

    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_100_000);
    assert!(server.revoke_key(&record.id, at).await.expect("revoke through the server's store"));
    let revoked = cli.get_key(&record.id).await.expect("get a key").expect("the key exists");
    assert_eq!(revoked.revoked_at, Some(at));
    assert!(!cli.revoke_key(&record.id, at).await.expect("revoke again through the other store"));

    // Both stores writing at the same time must queue on the lock, not fail with "database is locked".
    let writes = (0..20).map(|n| {
        let store = if n % 2 == 0 { server.clone() } else { cli.clone() };
        tokio::spawn(async move { store.create_key(&key(&format!("LTAI5tConcurrentKey{n:05}"))).await })
    });
    for write in writes.collect::<Vec<_>>() {
        write.await.expect("join a writer").expect("a concurrent write succeeds");
    }
    assert_eq!(server.list_keys().await.expect("list keys").len(), 21);
}

#[tokio::test]
async fn upload_for_unknown_media_is_not_found() {
    let (_dir, meta) = open_temp().await;
    let upload = NewUpload {
        upload_id: "0123456789ABCDEF0123456789ABCDEF".into(),
        bucket: "bucket".into(),
        key: "key".into(),
        media_id: Some("ffffffffffffffffffffffffffffffff".into()),
        content_type: String::new(),
        initiated_at: UNIX_EPOCH,
    };
    let error = meta.create_upload(&upload, None).await.expect_err("the media does not exist");
    assert!(error.is_not_found(), "expected NotFound, got {error:?}");
    assert_eq!(meta.get_media("ffffffffffffffffffffffffffffffff").await.expect("get media"), None);
}
