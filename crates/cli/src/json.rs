//! The `--json` vocabulary of `vodup upload`, decided once for single uploads and batches alike: the SDK's
//! events, results and errors (Rust names) become JSON lines in VOD's own style, a contract for scripts
//! that `docs/upload-json.schema.json` writes down and the tests hold every line of real runs to.
//!
//! The rules: every key is PascalCase, the line type included (`"Event": "started"`; values stay lower
//! snake_case); the service's identifiers keep the names VOD gives them (`VideoId` for videos and M3U8
//! playlists, `ImageId`, `MediaId` for attached media, `RequestId`), and once a line of a file has named
//! its media, every later line of that file names it too, with its `MediaType`; no key has two meanings
//! (`MediaType` is the media's type, `ErrorKind` an error's); every line about a source names it in
//! `File`; CRC-64 values are decimal strings, since JSON numbers lose precision above 2^53.
//!
//! This module only builds and writes lines; when to write them is the reporters' business
//! (`output.rs` for one upload, `batch/output.rs` for a batch).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

use serde::ser::{Serialize, SerializeMap as _, Serializer};
use serde_json::{Value, json};
use vodup_sdk::Error;
use vodup_sdk::batch::BatchSummary;
use vodup_sdk::upload::UploadResult;
use vodup_sdk::upload::progress::Event;
use vodup_sdk::vod::MediaKind;

use crate::exit;

/// One JSON line, its keys in the order they were set (`Event` first, then `File`, the media, the rest),
/// so a person reading the output finds the same key in the same place on every line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line(Vec<(String, Value)>);

impl Line {
    /// A line of type `event` (`started`, `result`, `error`, `summary`…).
    fn new(event: &str) -> Self {
        Self(vec![("Event".to_owned(), json!(event))])
    }

    /// Sets `key`, replacing an earlier value.
    fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => self.0.push((key.to_owned(), value)),
        }
        self
    }

    /// The line as a JSON value (for tests and for nesting).
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.iter().cloned().collect())
    }
}

impl Serialize for Line {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Builds the lines of one upload or one batch, remembering each file's media once a line names it, and
/// writes them whole to stdout.
#[derive(Debug)]
pub struct JsonLines {
    /// The media type every file of this command becomes.
    kind: MediaKind,
    /// Each file's media id, from the first event that names it.
    media: Mutex<HashMap<String, String>>,
    /// Held while a line is written: lines from concurrent uploads never interleave.
    stdout: Mutex<()>,
}

impl JsonLines {
    /// Lines for uploads that create media of type `kind`.
    pub fn new(kind: MediaKind) -> Self {
        Self { kind, media: Mutex::new(HashMap::new()), stdout: Mutex::new(()) }
    }

    /// Writes `line` to stdout as one line.
    pub fn write(&self, line: &Line) {
        let _guard = self.stdout.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = std::io::stdout().lock();
        // A closed pipe is the reader's choice; nothing to report.
        if serde_json::to_writer(&mut out, line).is_ok() {
            let _ = writeln!(out);
        }
        let _ = out.flush();
    }

    /// The line of an upload event of `file`; None for byte counts, which come many times a second and
    /// say nothing `PartSent` does not.
    pub fn event(&self, file: &str, event: &Event) -> Option<Line> {
        if let Event::Created { media_id, .. }
        | Event::Started { media_id, .. }
        | Event::Completed { media_id, .. } = event
        {
            self.media
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(file.to_owned(), media_id.clone());
        }
        let mut line = self.head(&event_name(event)?, Some(file));
        match event {
            Event::Started {
                kind: _,
                media_id: _,
                bucket,
                key,
                size,
                multipart,
                part_size,
                parts,
                parallel,
                resumed_parts,
                resumed_bytes,
            } => {
                line.set("Bucket", bucket.as_str())
                    .set("Key", key.as_str())
                    .set("Size", *size)
                    .set("Multipart", *multipart)
                    .set("PartSize", *part_size)
                    .set("Parts", *parts)
                    .set("Parallel", *parallel)
                    .set("ResumedParts", *resumed_parts)
                    .set("ResumedBytes", *resumed_bytes);
            }
            Event::PartSent { part_number, size, crc64 } => {
                line.set("PartNumber", *part_number).set("Size", *size).set("Crc64", crc64.as_str());
            }
            Event::SegmentSent { name, size } => {
                line.set("Name", name.as_str()).set("Size", *size);
            }
            Event::CredentialsRefreshed { expires_at } => {
                line.set("ExpiresAt", expires_at.clone());
            }
            Event::Retried {
                operation,
                part_number,
                attempt,
                kind,
                reason,
                cause,
                delay_ms,
                budget_left_ms,
                wasted_bytes,
            } => {
                line.set("Operation", operation.as_str())
                    .set("PartNumber", *part_number)
                    .set("Attempt", *attempt)
                    .set("ErrorKind", kind.as_str())
                    .set("Reason", reason.as_str())
                    .set("Cause", cause.as_str())
                    .set("DelayMs", *delay_ms)
                    .set("BudgetLeftMs", *budget_left_ms)
                    .set("WastedBytes", *wasted_bytes);
            }
            Event::Notice { message } => {
                line.set("Message", message.as_str());
            }
            Event::Completed { media_id: _, size, crc64 } => {
                line.set("Size", *size).set("Crc64", crc64.as_str());
            }
            Event::Failed { kind, error } => {
                line.set("ErrorKind", kind.as_str()).set("Message", error.as_str());
            }
            Event::Created { .. } | Event::BytesSent { .. } => {}
            // An event this CLI does not know yet: its fields in the same casing (the schema test
            // then fails until the vocabulary and the schema name it).
            other => {
                if let Ok(Value::Object(fields)) = serde_json::to_value(other) {
                    for (key, value) in fields.into_iter().filter(|(key, _)| key != "event") {
                        line.set(&pascal_case(&key), value);
                    }
                }
            }
        }
        Some(line)
    }

    /// The `result` line of a file this run uploaded.
    pub fn done(&self, file: &str, result: &UploadResult, cleaned: &[String]) -> Line {
        let mut line = self.last("result", Some(file));
        line.set("MediaType", result.kind.as_str())
            .set(result.kind.id_field(), result.media_id.as_str())
            .set("Status", "done")
            .set("RequestId", result.request_id.as_str())
            .set("Bucket", result.bucket.as_str())
            .set("Key", result.key.as_str())
            .set("Size", result.size)
            .set("Crc64", result.crc64.to_string())
            .set("Parts", result.parts)
            .set("ResumedParts", result.resumed_parts)
            .set("Segments", result.segments);
        if let Some(playlist) = &result.playlist {
            line.set(
                "Playlist",
                json!({
                    "Key": playlist.key,
                    "Size": playlist.size,
                    "Crc64": playlist.crc64.to_string(),
                }),
            );
        }
        if let Some(url) = &result.media_url {
            line.set("MediaURL", url.as_str());
        }
        if let Some(url) = &result.file_url {
            line.set("FileURL", url.as_str());
        }
        line.set("Cleaned", cleaned);
        line
    }

    /// The `result` line of a batch file an earlier run finished.
    pub fn skipped(&self, file: &str, media_id: &str, cleaned: &[String]) -> Line {
        let mut line = self.last("result", Some(file));
        line.set("MediaType", self.kind.as_str())
            .set(self.kind.id_field(), media_id)
            .set("Status", "skipped")
            .set("Cleaned", cleaned);
        line
    }

    /// The `error` line of a failed upload (`file`), or of a batch that could not run (no file).
    pub fn failed(&self, file: Option<&str>, error: &Error, exit_code: u8, cleaned: &[String]) -> Line {
        let mut line = self.last("error", file);
        line.set("Status", "failed");
        error_fields(&mut line, error, exit_code);
        line.set("Cleaned", cleaned);
        line
    }

    /// The last line of a batch.
    pub fn summary(&self, summary: &BatchSummary) -> Line {
        let failures: Vec<Value> = summary
            .outcomes
            .iter()
            .filter_map(|outcome| {
                let error = outcome.error.as_ref()?;
                let mut entry = Line(vec![("File".to_owned(), json!(outcome.file))]);
                error_fields(&mut entry, error, exit::of(error.kind()));
                Some(entry.to_value())
            })
            .collect();
        let cleaned: Vec<&String> = summary.outcomes.iter().flat_map(|o| &o.cleaned).collect();
        let mut line = Line::new("summary");
        line.set("Files", summary.outcomes.len())
            .set("Done", summary.done)
            .set("Skipped", summary.skipped)
            .set("Failed", summary.failed)
            .set("Cleaned", json!(cleaned))
            .set("Failures", failures);
        line
    }

    /// [`head`](Self::head) of a file's last line: the file's media is forgotten after it.
    fn last(&self, event: &str, file: Option<&str>) -> Line {
        let line = self.head(event, file);
        if let Some(file) = file {
            self.media.lock().unwrap_or_else(PoisonError::into_inner).remove(file);
        }
        line
    }

    /// `Event`, then `File` and the file's media when known.
    fn head(&self, event: &str, file: Option<&str>) -> Line {
        let mut line = Line::new(event);
        if let Some(file) = file {
            line.set("File", file);
            if let Some(id) = self.media.lock().unwrap_or_else(PoisonError::into_inner).get(file) {
                line.set("MediaType", self.kind.as_str()).set(self.kind.id_field(), id.as_str());
            }
        }
        line
    }
}

/// What every error says, wherever it appears: its kind, message, next step and exit code, and the
/// service's RequestId when a request got that far.
fn error_fields(line: &mut Line, error: &Error, exit_code: u8) {
    line.set("ErrorKind", error.kind().as_str())
        .set("Message", error.to_string())
        .set("Hint", error.hint())
        .set("ExitCode", exit_code);
    if let Some(id) = error.request_id() {
        line.set("RequestId", id);
    }
}

/// The `Event` value of an upload event; None for the ones not written.
fn event_name(event: &Event) -> Option<Cow<'static, str>> {
    Some(Cow::Borrowed(match event {
        Event::BytesSent { .. } => return None,
        Event::Created { .. } => "created",
        Event::Started { .. } => "started",
        Event::PartSent { .. } => "part_sent",
        Event::SegmentSent { .. } => "segment_sent",
        Event::CredentialsRefreshed { .. } => "credentials_refreshed",
        Event::Retried { .. } => "retried",
        Event::Notice { .. } => "notice",
        Event::Completed { .. } => "completed",
        Event::Failed { .. } => "failed",
        // Unknown to this CLI: the SDK's own name, as its serde tag writes it.
        other => {
            let value = serde_json::to_value(other).ok()?;
            return value.get("event").and_then(Value::as_str).map(|name| Cow::Owned(name.to_owned()));
        }
    }))
}

/// `resumed_bytes` → `ResumedBytes`.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use vodup_sdk::ErrorKind;
    use vodup_sdk::batch::{FileOutcome, FileStatus};
    use vodup_sdk::upload::ObjectFigures;

    use super::*;

    fn schema() -> jsonschema::Validator {
        let text = include_str!("../../../docs/upload-json.schema.json");
        let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
        jsonschema::draft202012::new(&schema).expect("the schema is a valid draft 2020-12 schema")
    }

    fn errors(validator: &jsonschema::Validator, line: &Line) -> Vec<String> {
        let value = line.to_value();
        validator.iter_errors(&value).map(|e| format!("{}: {e}", e.instance_path())).collect()
    }

    fn result(playlist: bool) -> UploadResult {
        UploadResult {
            kind: MediaKind::Video,
            media_id: "v1".into(),
            request_id: "r1".into(),
            bucket: "b".into(),
            key: "sv/v1/index.m3u8".into(),
            size: 1000,
            crc64: u64::MAX,
            parts: 4,
            resumed_parts: 0,
            media_url: None,
            file_url: Some("http://oss/sv/v1/index.m3u8".into()),
            segments: if playlist { 3 } else { 0 },
            playlist: playlist.then(|| ObjectFigures { key: "sv/v1/index.m3u8".into(), size: 97, crc64: 7 }),
        }
    }

    /// Every event the SDK has, every result, error and summary shape: each line matches the schema, so
    /// a line type the real-run tests cannot provoke (a retry, a refresh) is held to it too.
    #[test]
    fn every_line_type_matches_the_schema() {
        let validator = schema();
        let lines = JsonLines::new(MediaKind::Video);
        let events = [
            Event::Notice { message: "before the media exists".into() },
            Event::Created { kind: MediaKind::Video, media_id: "v1".into() },
            Event::Started {
                kind: MediaKind::Video,
                media_id: "v1".into(),
                bucket: "b".into(),
                key: "k".into(),
                size: None,
                multipart: true,
                part_size: 8 << 20,
                parts: None,
                parallel: 4,
                resumed_parts: 0,
                resumed_bytes: 0,
            },
            Event::PartSent { part_number: 1, size: 10, crc64: "18446744073709551615".into() },
            Event::SegmentSent { name: "000.ts".into(), size: 10 },
            Event::CredentialsRefreshed { expires_at: None },
            Event::CredentialsRefreshed { expires_at: Some("2030-01-01T00:00:00Z".into()) },
            Event::Retried {
                operation: "UploadPart".into(),
                part_number: Some(2),
                attempt: 1,
                kind: "network".into(),
                reason: "timed out".into(),
                cause: "timed out".into(),
                delay_ms: 200,
                budget_left_ms: 59_000,
                wasted_bytes: 5,
            },
            Event::Retried {
                operation: "CreateUploadVideo".into(),
                part_number: None,
                attempt: 2,
                kind: "service".into(),
                reason: "503".into(),
                cause: "ServiceUnavailable".into(),
                delay_ms: 400,
                budget_left_ms: 58_000,
                wasted_bytes: 0,
            },
            Event::Notice { message: "m".into() },
            Event::Completed { media_id: "v1".into(), size: 10, crc64: "0".into() },
            Event::Failed { kind: "network".into(), error: "down".into() },
        ];
        assert!(lines.event("f", &Event::BytesSent { bytes: 1 }).is_none(), "byte counts are not written");
        let error = Error::new(ErrorKind::Network, "UploadPart", "down").with_request_id("r9");
        let mut all: Vec<Line> = events.iter().filter_map(|e| lines.event("f", e)).collect();
        all.push(lines.done("f", &result(false), &[]));
        all.push(lines.done("f", &result(true), &["v0".to_owned()]));
        all.push(lines.skipped("f", "v1", &[]));
        all.push(lines.failed(Some("f"), &error, 5, &[]));
        all.push(lines.failed(None, &Error::invalid_input("no file"), 3, &[]));
        let summary = BatchSummary {
            done: 0,
            skipped: 0,
            failed: 1,
            outcomes: vec![FileOutcome {
                file: "f".into(),
                status: FileStatus::Failed,
                media_id: None,
                result: None,
                error: Some(error),
                cleaned: vec!["v0".into()],
            }],
        };
        all.push(lines.summary(&summary));
        for line in &all {
            assert_eq!(errors(&validator, line), Vec::<String>::new(), "{}", line.to_value());
        }
        // Once the media is named, every line of the file names it (the first notice came before).
        assert!(all[0].to_value().get("VideoId").is_none());
        assert!(all[1..events.len()].iter().all(|l| l.to_value()["VideoId"] == "v1"), "{all:?}");
    }

    #[test]
    fn a_renamed_or_missing_field_fails_the_schema() {
        let validator = schema();
        let lines = JsonLines::new(MediaKind::Image);
        let good = lines.done("f", &UploadResult { kind: MediaKind::Image, ..result(false) }, &[]);
        assert!(errors(&validator, &good).is_empty(), "{:?}", errors(&validator, &good));
        let mut renamed = good.clone();
        renamed.0.iter_mut().filter(|(k, _)| k == "Size").for_each(|(k, _)| *k = "size".into());
        assert!(!errors(&validator, &renamed).is_empty(), "a snake_case key is refused");
        let mut wrong_id = good.clone();
        wrong_id.0.iter_mut().filter(|(k, _)| k == "ImageId").for_each(|(k, _)| *k = "VideoId".into());
        assert!(!errors(&validator, &wrong_id).is_empty(), "an image's id is its ImageId");
        let mut number = good;
        number.set("Crc64", u64::MAX);
        assert!(!errors(&validator, &number).is_empty(), "a CRC-64 is a decimal string");
    }

    #[test]
    fn lines_start_with_their_type_and_keep_key_order() {
        let lines = JsonLines::new(MediaKind::Attached);
        let line = lines.skipped("a.srt", "m1", &[]);
        let text = serde_json::to_string(&line).unwrap();
        assert!(
            text.starts_with(r#"{"Event":"result","File":"a.srt","MediaType":"attached","MediaId":"m1""#),
            "{text}"
        );
        assert_eq!(pascal_case("resumed_bytes"), "ResumedBytes");
    }
}
