//! One object's OSS session: the client for its bucket and the temporary credentials, refreshed before
//! they expire and after the service says they did, once for all parts in flight (a generation number
//! tells a late part that someone already refreshed). Videos refresh with RefreshUploadVideo; images
//! and attached media cannot be refreshed (the API has no call for it), so their expiry is an error
//! that a re-run resolves with a new address.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;

use super::progress::{Event, Reporter};
use crate::error::{Error, ErrorKind, Result};
use crate::oss::{OssClient, StsCredentials};
use crate::vod::UploadTicket;

/// Gets a fresh ticket for the same object.
pub(crate) type Refresher = Arc<dyn Fn() -> BoxFuture<'static, Result<UploadTicket>> + Send + Sync>;

pub(crate) struct Session {
    pub(crate) oss: OssClient,
    credentials: RwLock<StsCredentials>,
    lifetime: Option<Duration>,
    refresher: Option<Refresher>,
    refresh_lock: tokio::sync::Mutex<()>,
    reporter: Reporter,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("oss", &self.oss).finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        oss: OssClient,
        ticket: &UploadTicket,
        refresher: Option<Refresher>,
        reporter: Reporter,
    ) -> Self {
        Self {
            oss,
            credentials: RwLock::new(StsCredentials::from_auth(&ticket.auth, 0)),
            lifetime: ticket.auth.lifetime(),
            refresher,
            refresh_lock: tokio::sync::Mutex::new(()),
            reporter,
        }
    }

    fn snapshot(&self) -> StsCredentials {
        self.credentials.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// How long before expiry a refresh happens: a fifth of the lifetime, between 1 s and 5 min.
    fn margin(&self) -> Duration {
        self.lifetime.map_or(Duration::from_secs(300), |l| {
            (l / 5).clamp(Duration::from_secs(1), Duration::from_secs(300))
        })
    }

    /// Credentials to sign the next request with, refreshed first if they are about to expire.
    pub(crate) async fn credentials(&self) -> Result<StsCredentials> {
        let current = self.snapshot();
        let expiring = current
            .expires_at
            .is_some_and(|at| at.duration_since(SystemTime::now()).map_or(true, |left| left < self.margin()));
        if expiring && self.refresher.is_some() {
            self.refresh_after(current.generation).await?;
            return Ok(self.snapshot());
        }
        Ok(current)
    }

    /// Replaces the credentials of `generation` with fresh ones, unless another task already did.
    pub(crate) async fn refresh_after(&self, generation: u64) -> Result<()> {
        let Some(refresher) = &self.refresher else {
            return Err(Error::new(
                ErrorKind::CredentialsExpired,
                "refresh credentials",
                "the upload credentials expired and this media type cannot refresh them",
            )
            .with_hint("re-run: a new upload address will be requested"));
        };
        let _guard = self.refresh_lock.lock().await;
        if self.snapshot().generation != generation {
            return Ok(());
        }
        let ticket = refresher().await?;
        let fresh = StsCredentials::from_auth(&ticket.auth, generation + 1);
        let expires_at =
            (!ticket.auth.expire_utc_time.is_empty()).then(|| ticket.auth.expire_utc_time.clone());
        *self.credentials.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        tracing::debug!(?expires_at, "upload credentials refreshed");
        self.reporter.emit(Event::CredentialsRefreshed { expires_at });
        Ok(())
    }

    pub(crate) fn can_refresh(&self) -> bool {
        self.refresher.is_some()
    }
}
