//! The multipart engine: N workers take parts from the [`Feed`], send each with its CRC-64 computed
//! beforehand, compare it with the `x-oss-hash-crc64ecma` OSS computed on arrival (a mismatch resends
//! the part), record the acknowledged part in the checkpoint, and reuse their buffer for the next part.
//! Memory is one part buffer per worker. The first error stops every worker and leaves the checkpoint
//! as it was after the last acknowledged part.
//!
//! Retries: network faults and retryable service errors back off with jitter for as long as the
//! client's [`RetryPolicy`] budget lasts; expired credentials are refreshed once for all workers (the
//! [`Session`] generation) and the part is resent at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::try_join_all;
use tokio_util::sync::CancellationToken;
use vodup_proto::crc64;

use super::Outcome;
use super::checkpoint::{self, Checkpoint, CheckpointFile, Committing, DonePart};
use super::fault::{self, UploadPoint};
use super::feed::{Feed, PartJob};
use super::progress::{Event, Reporter};
use super::session::Session;
use super::slots::PartSlots;
use crate::error::{Error, ErrorKind, Result, Retry};
use crate::oss::PutAnswer;
use crate::oss::body::part_body;
use crate::rate::RateLimiter;
use crate::retry::{self, Backoff, RetryNotice, RetryPolicy};

/// How often a part whose CRC-64 came back wrong is sent in all before giving up.
pub const CRC_ATTEMPTS: u32 = 3;

/// What every send needs besides the bytes.
#[derive(Debug, Clone)]
pub(crate) struct SendContext {
    pub(crate) session: Arc<Session>,
    pub(crate) key: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) limiter: Option<Arc<RateLimiter>>,
    pub(crate) reporter: Reporter,
    pub(crate) cancel: CancellationToken,
    /// Part slots shared with other uploads (a batch); `None` gives each upload its own pool.
    pub(crate) slots: Option<Arc<PartSlots>>,
}

/// A checkpoint being kept up to date.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) file: Option<CheckpointFile>,
    pub(crate) state: Checkpoint,
}

impl Recorder {
    /// Writes the state to the checkpoint file, if there is one. fsync takes milliseconds, so it runs on
    /// the blocking pool; the caller holds the recorder's lock, so saves stay in order.
    pub(crate) async fn save(&mut self) -> Result<()> {
        if let Some(file) = &self.file {
            // Encoded here, so only the bytes (not a copy of the state) go to the blocking pool.
            let bytes = checkpoint::encode(&self.state)?;
            let path = file.path().to_owned();
            tokio::task::spawn_blocking(move || checkpoint::write_atomically(&path, &bytes))
                .await
                .map_err(|e| Error::new(ErrorKind::Io, "save checkpoint", e.to_string()))??;
        }
        Ok(())
    }
}

impl SendContext {
    /// Sends one part (or one whole object with `part_number` None) until it is acknowledged with the
    /// right CRC-64, retrying what may be retried.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        upload: Option<(&str, u32)>,
        data: &Bytes,
        crc: u64,
        content_type: &str,
    ) -> Result<PutAnswer> {
        let part_number = upload.map(|(_, n)| n);
        let len = data.len() as u64;
        let mut backoff = Backoff::new(self.retry);
        let mut crc_failures = 0;
        let mut refreshed_for = None;
        loop {
            if self.cancel.is_cancelled() {
                return Err(cancelled());
            }
            let credentials = self.session.credentials().await?;
            let body = part_body(data.clone(), self.limiter.clone(), self.reporter.bytes_callback());
            let oss = &self.session.oss;
            let sent = match upload {
                Some((upload_id, n)) => {
                    tokio::select! {
                        r = oss.upload_part(&credentials, &self.key, upload_id, n, body, len) => r,
                        () = self.cancel.cancelled() => return Err(cancelled()),
                    }
                }
                None => {
                    tokio::select! {
                        r = oss.put_object(&credentials, &self.key, body, len, content_type) => r,
                        () = self.cancel.cancelled() => return Err(cancelled()),
                    }
                }
            };
            let (failure, delay) = match sent {
                Ok(answer) => {
                    match answer.crc64 {
                        Some(server) if server != crc => {
                            crc_failures += 1;
                            let error = Error::new(
                            ErrorKind::ChecksumMismatch,
                            operation,
                            format!("sent CRC-64 {crc}, OSS computed {server}: the bytes were damaged on the way"),
                        )
                        .with_request_id(answer.request_id)
                        .with_object(oss.object_name(&self.key));
                            let error = match part_number {
                                Some(n) => error.with_part(n),
                                None => error,
                            };
                            if crc_failures >= CRC_ATTEMPTS {
                                return Err(error.with_retry(Retry::Exhausted { attempts: crc_failures }).with_hint(
                                "something between here and OSS corrupts data (proxy, NIC, memory); the checkpoint is kept, re-run to resume",
                            ));
                            }
                            // Damaged bytes are resent at once: the service is up, the path is not.
                            (error, std::time::Duration::ZERO)
                        }
                        _ => return Ok(answer),
                    }
                }
                Err(error) if error.kind() == ErrorKind::CredentialsExpired && self.session.can_refresh() => {
                    if refreshed_for == Some(credentials.generation) {
                        return Err(error);
                    }
                    refreshed_for = Some(credentials.generation);
                    self.session.refresh_after(credentials.generation).await?;
                    continue;
                }
                Err(error) if error.is_retryable() => match backoff.next_delay() {
                    Some(delay) => (error, delay),
                    None => return Err(backoff.give_up(error)),
                },
                Err(error) => return Err(error),
            };
            let notice = RetryNotice {
                operation,
                part_number,
                attempt: backoff.failures() + crc_failures,
                error: failure,
                delay,
                budget_left: backoff.left(),
                wasted_bytes: len,
            };
            retry::log(&notice);
            self.reporter.emit(Event::retried(&notice));
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.cancel.cancelled() => return Err(cancelled()),
            }
        }
    }
}

impl SendContext {
    /// CompleteMultipartUpload with `parts` in order, retried like a part (credentials refreshed once).
    async fn complete(&self, upload_id: &str, parts: &[(u32, String)]) -> Result<PutAnswer> {
        let mut backoff = Backoff::new(self.retry);
        let mut refreshed = false;
        loop {
            let credentials = self.session.credentials().await?;
            let error = match self.session.oss.complete(&credentials, &self.key, upload_id, parts).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if error.kind() == ErrorKind::CredentialsExpired && !refreshed {
                refreshed = true;
                self.session.refresh_after(credentials.generation).await?;
                continue;
            }
            if !error.is_retryable() {
                return Err(error);
            }
            let Some(delay) = backoff.next_delay() else { return Err(backoff.give_up(error)) };
            let notice = RetryNotice {
                operation: "CompleteMultipartUpload",
                part_number: None,
                attempt: backoff.failures(),
                error,
                delay,
                budget_left: backoff.left(),
                wasted_bytes: 0,
            };
            retry::log(&notice);
            self.reporter.emit(Event::retried(&notice));
            tokio::time::sleep(delay).await;
        }
    }
}

/// Completes a multipart upload whose `parts` are all sent: checks they are 1..=n and add up to `size`
/// when known, completes, and compares the CRC-64 OSS reports for the object with the one the parts
/// combine to. With a `recorder`, the object's figures are recorded before the Complete
/// ([`Checkpoint::committing`]), so a run killed after it finds the media whole.
pub(crate) async fn finish(
    context: &SendContext,
    upload_id: &str,
    parts: &[DonePart],
    size: Option<u64>,
    resumed_parts: u32,
    recorder: Option<&tokio::sync::Mutex<Recorder>>,
) -> Result<Outcome> {
    check_contiguous(parts, size)?;
    let crc = combined_crc(parts);
    let total = parts.iter().map(|p| p.size).sum();
    let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    if let Some(recorder) = recorder {
        let mut recorder = recorder.lock().await;
        recorder.state.committing = Some(Committing { size: total, crc64: crc, parts: count });
        recorder.save().await?;
        fault::hit(UploadPoint::Committing);
    }
    let list: Vec<(u32, String)> = parts.iter().map(|p| (p.number, p.etag.clone())).collect();
    let answer = context.complete(upload_id, &list).await?;
    if recorder.is_some() {
        fault::hit(UploadPoint::Committed);
    }
    if let Some(server) = answer.crc64
        && server != crc
    {
        return Err(Error::new(
            ErrorKind::ChecksumMismatch,
            "CompleteMultipartUpload",
            format!("the parts combine to CRC-64 {crc} but OSS reports {server} for the object"),
        )
        .with_request_id(answer.request_id)
        .with_object(context.session.oss.object_name(&context.key))
        .with_hint(
            "the object OSS assembled is not the bytes sent; delete the media and upload the file again",
        ));
    }
    Ok(Outcome { size: total, crc64: crc, parts: count, resumed_parts })
}

/// Parts must be 1..=n without gaps, and add up to the known size.
fn check_contiguous(parts: &[DonePart], size: Option<u64>) -> Result<()> {
    let gap = parts.iter().enumerate().find(|(i, p)| p.number as usize != i + 1);
    if let Some((_, part)) = gap {
        return Err(Error::new(
            ErrorKind::Service,
            "CompleteMultipartUpload",
            format!("part {} has no predecessor", part.number),
        ));
    }
    let total: u64 = parts.iter().map(|p| p.size).sum();
    if let Some(size) = size
        && total != size
    {
        return Err(Error::new(
            ErrorKind::SourceChanged,
            "CompleteMultipartUpload",
            format!("the parts add up to {total} bytes but the source has {size}"),
        )
        .with_hint("the source changed while it was being uploaded; re-run once it stays unchanged"));
    }
    Ok(())
}

pub(crate) fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "upload", "cancelled").with_hint("re-run the same command to resume")
}

/// Runs the parts of one multipart upload; returns every part (earlier runs' included) in order.
pub(crate) async fn run(
    context: &SendContext,
    upload_id: &str,
    feed: &Feed,
    first: Option<PartJob>,
    parallel: usize,
    recorder: &tokio::sync::Mutex<Recorder>,
) -> Result<Vec<DonePart>> {
    let first = std::sync::Mutex::new(first);
    let slots = context.slots.clone().unwrap_or_else(|| PartSlots::new(parallel));
    let worker = |_: usize| async {
        loop {
            if context.cancel.is_cancelled() {
                return Err(cancelled());
            }
            // A part is read only into a slot's buffer, so memory is the pool's, whoever shares it.
            let mut slot = tokio::select! {
                slot = slots.acquire() => slot,
                () = context.cancel.cancelled() => return Err(cancelled()),
            };
            let pending = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            let job = match pending {
                Some(job) => job,
                None => {
                    let mut buffer = Some(slot.take_buffer());
                    let next = feed.next(&mut buffer).await;
                    if let Some(buffer) = buffer {
                        slot.keep_buffer(buffer);
                    }
                    match next? {
                        Some(job) => job,
                        None => return Ok::<(), Error>(()),
                    }
                }
            };
            let answer =
                context.send("UploadPart", Some((upload_id, job.number)), &job.data, job.crc64, "").await?;
            fault::hit(UploadPoint::PartSent);
            let size = job.data.len() as u64;
            {
                let mut recorder = recorder.lock().await;
                recorder.state.parts.push(DonePart {
                    number: job.number,
                    size,
                    etag: answer.etag,
                    crc64: job.crc64,
                });
                recorder.save().await?;
            }
            fault::hit(UploadPoint::PartRecorded);
            context.reporter.emit(Event::PartSent {
                part_number: job.number,
                size,
                crc64: job.crc64.to_string(),
            });
            // The request has dropped its handles by now, so the buffer is ours again.
            if let Ok(buffer) = job.data.try_into_mut() {
                slot.keep_buffer(buffer);
            }
        }
    };
    try_join_all((0..parallel.max(1)).map(worker)).await?;
    let recorder = recorder.lock().await;
    let parts: BTreeMap<u32, DonePart> = recorder.state.parts.iter().map(|p| (p.number, p.clone())).collect();
    Ok(parts.into_values().collect())
}

/// The CRC-64 of the whole object from its parts' CRCs, in order.
fn combined_crc(parts: &[DonePart]) -> u64 {
    parts.iter().fold(0, |crc, part| crc64::combine(crc, part.crc64, part.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_crcs_combine_into_the_object_crc() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let parts: Vec<DonePart> = data
            .chunks(300)
            .enumerate()
            .map(|(i, c)| DonePart {
                number: i as u32 + 1,
                size: c.len() as u64,
                etag: String::new(),
                crc64: crc64::checksum(c),
            })
            .collect();
        assert_eq!(combined_crc(&parts), crc64::checksum(&data));
    }
}
