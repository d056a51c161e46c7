//! A `file` audit device: one writer task owns the file and the chain head.
//! It takes whatever entries are waiting, links them into the chain, writes
//! them and calls `fdatasync` once, and only then acknowledges them. A failed
//! write is cut back off the file and leaves the head where it was. Blocking
//! file calls run on the blocking pool, so a stuck disk stalls this device only;
//! callers stop waiting after the write timeout and the device reports itself
//! unhealthy while a write is overdue.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_proto::audit::checkpoint::checkpoint_entry;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::chain::{self, Head};
use super::checkpoint::Signer;
use crate::barrier::Barrier;
use crate::clock::Clock;

/// Most entries linked and synced together.
const MAX_BATCH: usize = 512;
/// How often a moved head is saved to the database.
const HEAD_SAVE_EVERY: Duration = Duration::from_secs(1);
/// Bytes read from the end of a file to find its last entry.
const TAIL_BYTES: u64 = 1 << 20;

/// Tells a caller whether its entry is durable.
type Ack = oneshot::Sender<Result<(), String>>;

/// Work for the writer.
pub(super) enum Job {
    /// Link, write, sync; answer when durable (or failed).
    Entry(Map<String, Value>, oneshot::Sender<Result<(), String>>),
    /// Close the file so the next write opens the path again (logrotate).
    Reopen,
    /// Write a signed checkpoint if entries came since the last one.
    Checkpoint,
    /// Checkpoint, save the head and stop.
    Stop(oneshot::Sender<()>),
}

/// What `sys/health`, `sys/audit` and metrics say about a device.
#[derive(Debug)]
pub struct Health {
    busy_since: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    timeout: Duration,
}

impl Health {
    pub(super) fn new(timeout: Duration) -> Health {
        Health {
            busy_since: Mutex::new(None),
            last_error: Mutex::new(None),
            timeout,
        }
    }

    /// Healthy: the last write worked and none is overdue.
    pub fn healthy(&self) -> bool {
        self.error().is_none()
    }

    /// Why the device is unhealthy.
    pub fn error(&self) -> Option<String> {
        let overdue =
            crate::sync::lock(&self.busy_since).is_some_and(|since| since.elapsed() > self.timeout);
        if overdue {
            return Some("a write has not finished within the write timeout".into());
        }
        crate::sync::lock(&self.last_error).clone()
    }

    /// An entry was not accepted in time (the writer is stuck or its queue is
    /// full). Marked by the waiting side, so the device shows unhealthy before
    /// the refused request is answered; the next successful write clears it.
    pub(super) fn missed_deadline(&self) {
        crate::sync::lock(&self.last_error)
            .get_or_insert_with(|| "an entry was not accepted within the write timeout".into());
    }

    /// The device could not even be set up (its file did not open at unseal).
    pub(super) fn failed(&self, error: String) {
        self.set_result(Some(error));
    }

    fn set_busy(&self, busy: bool) {
        *crate::sync::lock(&self.busy_since) = busy.then(Instant::now);
    }

    fn set_result(&self, error: Option<String>) {
        *crate::sync::lock(&self.last_error) = error;
    }
}

/// The file and how to open it.
pub(super) struct Sink {
    path: PathBuf,
    mode: u32,
    file: Option<std::fs::File>,
}

impl Sink {
    pub(super) fn new(path: PathBuf, mode: u32) -> Sink {
        Sink {
            path,
            mode,
            file: None,
        }
    }

    /// Opens (creating with `mode`) if not open yet.
    pub(super) fn open(&mut self) -> std::io::Result<&mut std::fs::File> {
        if self.file.is_none() {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, self.mode);
            self.file = Some(options.open(&self.path)?);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("audit file not open"))
    }

    /// The head recorded by the file's last complete entry.
    pub(super) fn tail_head(&mut self) -> std::io::Result<Option<Head>> {
        let len = self.open()?.metadata()?.len();
        if len == 0 {
            return Ok(None);
        }
        let mut file = std::fs::File::open(&self.path)?;
        let start = len.saturating_sub(TAIL_BYTES);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.take(TAIL_BYTES).read_to_end(&mut tail)?;
        Ok(chain::head_of_tail(&tail))
    }

    /// Appends `bytes` and syncs; on failure cuts the file back and closes it.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let file = self.open()?;
        let before = file.metadata().map(|m| m.len()).ok();
        let result = file.write_all(bytes).and_then(|()| match file.sync_data() {
            // A pipe to a log shipper cannot be synced; the reader has the bytes.
            Err(e)
                if e.kind() == std::io::ErrorKind::InvalidInput
                    && file.metadata().is_ok_and(|m| !m.is_file()) =>
            {
                Ok(())
            }
            other => other,
        });
        if result.is_err() {
            // Never leave half a line: the chain must stay parseable.
            if let Some(len) = before {
                let _ = file.set_len(len);
            }
            self.file = None;
        }
        result
    }
}

/// Everything the writer task owns.
pub(super) struct Writer {
    pub(super) device: String,
    pub(super) sink: Option<Sink>,
    pub(super) head: Head,
    pub(super) barrier: Arc<Barrier>,
    pub(super) signer: Arc<Signer>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) health: Arc<Health>,
    pub(super) checkpoint_every: Duration,
    pub(super) metrics: Arc<crate::metrics::Metrics>,
    /// seq of the last checkpoint entry (nothing new since, nothing to sign)
    pub(super) checkpointed: u64,
    saved: u64,
    last_save: Instant,
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        device: String,
        sink: Sink,
        head: Head,
        barrier: Arc<Barrier>,
        signer: Arc<Signer>,
        clock: Arc<dyn Clock>,
        health: Arc<Health>,
        checkpoint_every: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Writer {
        Writer {
            device,
            sink: Some(sink),
            saved: head.seq,
            checkpointed: head.seq,
            head,
            barrier,
            signer,
            clock,
            health,
            checkpoint_every,
            metrics,
            last_save: Instant::now(),
        }
    }

    /// Storage key of this device's chain head.
    pub(super) fn head_key(device: &str) -> String {
        format!("core/audit-chain/{device}")
    }

    /// Serves jobs until stopped or every sender is gone.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut save_tick = tokio::time::interval(HEAD_SAVE_EVERY);
        let mut checkpoint_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + self.checkpoint_every,
            self.checkpoint_every,
        );
        loop {
            tokio::select! {
                job = rx.recv() => match job {
                    None => {
                        self.finish().await;
                        return;
                    }
                    Some(Job::Entry(entry, done)) => {
                        let mut batch = vec![(entry, Some(done))];
                        let mut next = None;
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(Job::Entry(e, d)) => batch.push((e, Some(d))),
                                Ok(other) => {
                                    next = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        let _ = self.write(batch).await;
                        if let Some(job) = next {
                            if self.control(job).await {
                                return;
                            }
                        }
                    }
                    Some(job) => {
                        if self.control(job).await {
                            return;
                        }
                    }
                },
                _ = save_tick.tick() => self.save_head(false).await,
                _ = checkpoint_tick.tick() => self.checkpoint().await,
            }
        }
    }

    /// Handles a non-entry job; true when the writer must stop.
    async fn control(&mut self, job: Job) -> bool {
        match job {
            Job::Entry(e, d) => {
                let _ = self.write(vec![(e, Some(d))]).await;
                false
            }
            Job::Reopen => {
                if let Some(sink) = self.sink.as_mut() {
                    sink.file = None;
                }
                false
            }
            Job::Checkpoint => {
                self.checkpoint().await;
                false
            }
            Job::Stop(done) => {
                self.finish().await;
                let _ = done.send(());
                true
            }
        }
    }

    async fn finish(&mut self) {
        self.checkpoint().await;
        self.save_head(true).await;
    }

    /// Writes a signed checkpoint of the head, if anything came since the last.
    pub(super) async fn checkpoint(&mut self) {
        if self.head.seq == self.checkpointed {
            return;
        }
        let _ = self.write_checkpoint().await;
    }

    /// The test write of a device being enabled: a signed checkpoint of where
    /// its chain starts, through the same write and sync as every entry, so a
    /// target that opens but cannot be written (a full disk, `/dev/full`) or
    /// synced is found before the device is trusted with requests.
    pub(super) async fn probe(&mut self) -> Result<(), String> {
        self.write_checkpoint().await
    }

    async fn write_checkpoint(&mut self) -> Result<(), String> {
        let entry = checkpoint_entry(
            self.clock.now().rfc3339(),
            &self.head,
            self.signer.sign(&self.head),
        );
        self.write(vec![(entry, None)]).await?;
        self.checkpointed = self.head.seq;
        Ok(())
    }

    /// Links and writes a batch; `Ok` when it is durable.
    async fn write(&mut self, batch: Vec<(Map<String, Value>, Option<Ack>)>) -> Result<(), String> {
        let mut head = self.head.clone();
        let mut bytes = Vec::new();
        let mut waiters = Vec::with_capacity(batch.len());
        for (entry, done) in batch {
            match chain::link(entry, &head) {
                Ok((line, next)) => {
                    bytes.extend_from_slice(&line);
                    head = next;
                    waiters.push(done);
                }
                Err(_) => {
                    if let Some(done) = done {
                        let _ = done.send(Err("entry could not be encoded".into()));
                    }
                }
            }
        }
        if waiters.is_empty() {
            return Err("entry could not be encoded".into());
        }
        let Some(mut sink) = self.sink.take() else {
            return Err("the audit file is not available".into());
        };
        self.health.set_busy(true);
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = sink.append(&bytes);
            (sink, result)
        })
        .await;
        self.health.set_busy(false);
        let result = match outcome {
            Ok((sink, result)) => {
                self.sink = Some(sink);
                result.map_err(|e| e.to_string())
            }
            Err(_) => Err("the audit writer failed".to_owned()),
        };
        let labels = vec![("device", self.device.clone())];
        match &result {
            Ok(()) => {
                tracing::trace!(device = %self.device, head = head.seq, entries = waiters.len(), "audit batch synced");
                self.head = head;
                self.health.set_result(None);
                self.metrics.observe(
                    "coffer_audit_write_duration_seconds",
                    labels,
                    started.elapsed().as_secs_f64(),
                );
            }
            Err(e) => {
                tracing::error!(device = %self.device, error = %e, "audit device failed to write");
                self.health.set_result(Some(e.clone()));
                self.metrics
                    .inc("coffer_audit_write_failures_total", labels);
            }
        }
        for done in waiters.into_iter().flatten() {
            let _ = done.send(result.clone());
        }
        if result.is_ok() {
            self.save_head(false).await;
        }
        result
    }

    /// Saves the head to the database, at most once a second unless `now`.
    async fn save_head(&mut self, now: bool) {
        if self.saved == self.head.seq || (!now && self.last_save.elapsed() < HEAD_SAVE_EVERY) {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(&self.head) else {
            return;
        };
        match self
            .barrier
            .put(&Self::head_key(&self.device), &bytes)
            .await
        {
            Ok(()) => {
                self.saved = self.head.seq;
                self.last_save = Instant::now();
            }
            Err(e) => {
                tracing::warn!(device = %self.device, error = %e, "could not save the audit chain head; will retry")
            }
        }
    }
}
