//! The `--json` output of real uploads against a real `vodup serve`, held line by line to the schema in
//! `docs/upload-json.schema.json` (issue 13, "One vocabulary in `--json`"): a multipart video, an image,
//! an attached subtitle, an M3U8 with its segments, a batch with a success, a skipped file (the same
//! batch run again) and a failure, and a single upload of a missing file. The schema forbids any key it
//! does not name, so a field renamed in the code and not in the schema fails here.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde_json::Value;
use vodup_testkit::TestServer;
use vodup_testkit::fixtures::{make_srt, write_random_file};

use super::support::{Outcome, read_back, run, run_ok, upload};

fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/upload-json.schema.json");
    let text = std::fs::read_to_string(path).expect("docs/upload-json.schema.json");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).expect("the schema is a valid draft 2020-12 schema")
}

/// Every key of `value`, at any depth.
fn keys(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                into.push(key.clone());
                keys(inner, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys(item, into)),
        _ => {}
    }
}

/// Checks every line of a run: valid against the schema, PascalCase keys only, and once a file's media
/// is named, every later line of that file names the same media. Returns the line types seen.
fn check(validator: &jsonschema::Validator, what: &str, outcome: &Outcome) -> BTreeSet<String> {
    assert!(!outcome.events.is_empty(), "{what}: no JSON line; stderr: {}", outcome.stderr);
    let mut seen = BTreeSet::new();
    let mut media_of: HashMap<String, (String, String)> = HashMap::new();
    for line in &outcome.events {
        let errors: Vec<String> = validator
            .iter_errors(line)
            .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: a line does not match the schema:\n{line}\n{}",
            errors.join("\n")
        );
        let mut all = Vec::new();
        keys(line, &mut all);
        for key in all {
            assert!(
                key.starts_with(|c: char| c.is_ascii_uppercase()) && !key.contains('_'),
                "{what}: key {key:?} is not PascalCase in {line}"
            );
        }
        seen.insert(line["Event"].as_str().unwrap().to_owned());
        let Some(file) = line["File"].as_str() else { continue };
        let id = ["VideoId", "ImageId", "MediaId"].iter().find_map(|k| line[*k].as_str().map(|v| (*k, v)));
        match (media_of.get(file), id) {
            (Some((field, known)), Some((now_field, now))) => {
                assert_eq!(
                    (field.as_str(), known.as_str()),
                    (now_field, now),
                    "{what}: one media per file: {line}"
                );
            }
            (Some((field, known)), None) => {
                panic!("{what}: {file}'s {field} {known} was named, and this later line lacks it: {line}")
            }
            (None, Some((field, id))) => {
                media_of.insert(file.to_owned(), (field.to_owned(), id.to_owned()));
            }
            (None, None) => {}
        }
    }
    seen
}

/// An HLS playlist written by hand (the SDK never looks inside segments) with three segments of
/// different sizes in `seg/`; returns the playlist path and the segments' total bytes.
fn write_playlist(dir: &Path) -> (std::path::PathBuf, u64) {
    std::fs::create_dir_all(dir.join("seg")).unwrap();
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    let mut total = 0;
    for (i, size) in [150_000u64, 90_001, 120_017].into_iter().enumerate() {
        write_random_file(&dir.join(format!("seg/{i:03}.ts")), size, 300 + i as u64).unwrap();
        text.push_str(&format!("#EXTINF:2.0,\nseg/{i:03}.ts\n"));
        total += size;
    }
    text.push_str("#EXT-X-ENDLIST\n");
    let playlist = dir.join("index.m3u8");
    std::fs::write(&playlist, text).unwrap();
    (playlist, total)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_json_line_of_real_uploads_matches_the_schema() {
    let validator = schema();
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut seen = BTreeSet::new();

    // A video in three parts.
    let video = dir.path().join("clip.mp4");
    write_random_file(&video, (2 << 20) + 12_345, 31).unwrap();
    let mut command = upload(&server, dir.path(), "video", video.to_str().unwrap());
    command.args(["--part-size", "1M"]);
    let outcome = run_ok(command).await;
    seen.extend(check(&validator, "video", &outcome));
    let result = outcome.result();
    assert_eq!((result["Status"].as_str(), result["Parts"].as_u64()), (Some("done"), Some(3)), "{result}");
    assert!(result["VideoId"].is_string() && result["RequestId"].is_string(), "{result}");
    assert_eq!(outcome.named("part_sent").len(), 3);
    assert_eq!(result["File"], video.to_str().unwrap());

    // An image (the service does not look inside it) and a subtitle.
    let image = dir.path().join("cover.png");
    write_random_file(&image, 40_000, 32).unwrap();
    let mut command = upload(&server, dir.path(), "image", image.to_str().unwrap());
    command.args(["--image-type", "cover"]);
    let outcome = run_ok(command).await;
    seen.extend(check(&validator, "image", &outcome));
    assert_eq!(outcome.result()["MediaType"], "image");
    assert!(outcome.result()["ImageId"].is_string(), "{}", outcome.result());
    let subtitle = dir.path().join("captions.srt");
    make_srt(&subtitle).unwrap();
    let mut command = upload(&server, dir.path(), "attached", subtitle.to_str().unwrap());
    command.args(["--business-type", "subtitle"]);
    let outcome = run_ok(command).await;
    seen.extend(check(&validator, "attached", &outcome));
    assert_eq!(outcome.result()["MediaType"], "attached");
    assert!(outcome.result()["MediaId"].is_string(), "{}", outcome.result());

    // An M3U8: the result counts the playlist and its segments, as its `started` line announced.
    let (playlist, segment_bytes) = write_playlist(&dir.path().join("hls"));
    let outcome = run_ok(upload(&server, dir.path(), "m3u8", playlist.to_str().unwrap())).await;
    seen.extend(check(&validator, "m3u8", &outcome));
    let result = outcome.result();
    let own = &result["Playlist"];
    let (crc, len) = read_back(&server, own["Key"].as_str().unwrap()).await;
    assert_eq!(
        (own["Size"].as_u64(), own["Crc64"].as_str()),
        (Some(len), Some(crc.to_string().as_str())),
        "{own}"
    );
    assert_eq!(result["Size"].as_u64(), Some(len + segment_bytes), "playlist + segments: {result}");
    assert_eq!((result["Parts"].as_u64(), result["Segments"].as_u64()), (Some(4), Some(3)), "{result}");
    assert_eq!(result["Key"], own["Key"]);
    let started = outcome.named("started")[0];
    assert_eq!(
        (&started["Size"], &started["Parts"]),
        (&result["Size"], &result["Parts"]),
        "start and end agree"
    );
    assert_eq!(outcome.named("completed")[0]["Size"], result["Size"]);

    // A batch: a video and the playlist uploaded, a missing file failing; run again, the two are skipped.
    let fresh = dir.path().join("fresh.mp4");
    write_random_file(&fresh, 300_000, 33).unwrap();
    let missing = dir.path().join("missing.mp4");
    let batch = || {
        let mut command = upload(&server, dir.path(), "video", fresh.to_str().unwrap());
        command.arg(&playlist).arg(&missing);
        command
    };
    let first = run(batch()).await;
    assert_eq!(first.code, Some(9), "one file failed: {}", first.stderr);
    seen.extend(check(&validator, "batch", &first));
    let second = run(batch()).await;
    assert_eq!(second.code, Some(9), "{}", second.stderr);
    seen.extend(check(&validator, "batch re-run", &second));
    let statuses = |outcome: &Outcome| -> Vec<(String, String)> {
        let mut found: Vec<_> = outcome
            .events
            .iter()
            .filter(|l| l["Event"] == "result" || l["Event"] == "error")
            .map(|l| (l["File"].as_str().unwrap().to_owned(), l["Status"].as_str().unwrap().to_owned()))
            .collect();
        found.sort();
        found
    };
    let absolute = |p: &Path| std::path::absolute(p).unwrap().to_string_lossy().into_owned();
    let expect = |status: &str| {
        let mut expected = vec![
            (absolute(&fresh), status.to_owned()),
            (absolute(&playlist), status.to_owned()),
            (absolute(&missing), "failed".to_owned()),
        ];
        expected.sort();
        expected
    };
    assert_eq!(statuses(&first), expect("done"));
    assert_eq!(statuses(&second), expect("skipped"));
    for (outcome, status) in [(&first, "done"), (&second, "skipped")] {
        for line in outcome.events.iter().filter(|l| l["Status"] == status) {
            assert!(line["VideoId"].is_string() && line["MediaType"] == "video", "{line}");
        }
        let summary = outcome.events.last().unwrap();
        assert_eq!(summary["Event"], "summary");
        assert_eq!(summary["Failures"][0]["File"], absolute(&missing).as_str(), "{summary}");
    }
    let done_ids: BTreeSet<&str> = first
        .events
        .iter()
        .filter(|l| l["Status"] == "done")
        .map(|l| l["VideoId"].as_str().unwrap())
        .collect();
    let skipped_ids: BTreeSet<&str> = second
        .events
        .iter()
        .filter(|l| l["Status"] == "skipped")
        .map(|l| l["VideoId"].as_str().unwrap())
        .collect();
    assert_eq!(done_ids, skipped_ids, "a skipped file names the video the first run made");
    let batch_playlist =
        first.events.iter().find(|l| l["File"] == absolute(&playlist).as_str() && l["Event"] == "result");
    assert_eq!(
        batch_playlist.unwrap()["Size"],
        result["Size"],
        "a batch reports an M3U8 as a single upload does"
    );

    // A single upload of a missing file: its error line carries the exit code the process ends with.
    let gone = dir.path().join("gone.mp4");
    let failed = run(upload(&server, dir.path(), "video", gone.to_str().unwrap())).await;
    seen.extend(check(&validator, "missing file", &failed));
    let error = failed.events.last().unwrap();
    assert_eq!(error["Event"], "error", "{error}");
    assert_eq!(error["ExitCode"].as_i64(), failed.code.map(i64::from), "{error}");
    assert_eq!(error["File"], gone.to_str().unwrap());

    // The runs above produced every line type they can; a smaller set means this test lost coverage.
    let expected = [
        "completed",
        "created",
        "error",
        "failed",
        "part_sent",
        "result",
        "segment_sent",
        "started",
        "summary",
    ];
    for name in expected {
        assert!(seen.contains(name), "no {name} line was produced; seen {seen:?}");
    }
}

/// A run killed after its playlist was put (before the checkpoint was removed) leaves the video whole;
/// the re-run finds it so and reports the same figures an uninterrupted upload does, from the checkpoint.
#[tokio::test(flavor = "multi_thread")]
async fn an_m3u8_found_whole_after_a_kill_reports_the_whole_upload() {
    let validator = schema();
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (playlist, segment_bytes) = write_playlist(&dir.path().join("hls"));
    let mut killed = upload(&server, dir.path(), "m3u8", playlist.to_str().unwrap());
    killed.env("VODUP_FAULT", "upload-committed");
    let killed = run(killed).await;
    assert_eq!(killed.code, None, "killed at the fault point: {}", killed.stderr);
    let video_id = killed.named("created")[0]["VideoId"].as_str().unwrap().to_owned();

    let outcome = run_ok(upload(&server, dir.path(), "m3u8", playlist.to_str().unwrap())).await;
    check(&validator, "m3u8 found whole", &outcome);
    assert!(outcome.named("segment_sent").is_empty(), "nothing sent again: {:?}", outcome.events);
    let result = outcome.result();
    assert_eq!(result["VideoId"], video_id.as_str(), "{result}");
    let own = &result["Playlist"];
    let (crc, len) = read_back(&server, own["Key"].as_str().unwrap()).await;
    assert_eq!(
        (own["Size"].as_u64(), own["Crc64"].as_str()),
        (Some(len), Some(crc.to_string().as_str())),
        "{own}"
    );
    assert_eq!(result["Size"].as_u64(), Some(len + segment_bytes), "playlist + segments: {result}");
    assert_eq!((result["Parts"].as_u64(), result["Segments"].as_u64()), (Some(4), Some(3)), "{result}");
    assert_eq!(result["ResumedParts"], result["Parts"], "all of it was done by the killed run: {result}");
}
