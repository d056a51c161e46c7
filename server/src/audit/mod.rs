//! Audit devices and the broker that feeds them. The core hands every
//! authenticated or login request to [`AuditBroker::log_request`] before it acts
//! and to [`AuditBroker::log_response`] before it answers; either fails unless
//! at least one enabled device has durably accepted the entry. The device
//! table (with each device's HMAC salt) lives behind the barrier at `core/audit`.
//!
//! A device enabled through the API is confined: its file lies inside
//! `audit_file_directory` (the parent resolved, `..` and symlinks included),
//! its mode lets only the owner write, and it must take a first entry (a
//! signed checkpoint, written and synced) before the enable succeeds, so a
//! target that opens but cannot be written never joins the table.

pub mod chain;
pub mod checkpoint;
pub mod entry;
mod file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

pub use entry::{AuthInfo, Record, RequestInfo, ResponseInfo};
pub use file::Health;

use crate::barrier::{Barrier, BarrierError};
use crate::clock::Clock;
use crate::crypto::HmacKey;
use crate::metrics::Metrics;
use chain::Head;
use checkpoint::Signer;
use entry::Hasher;
use file::{Job, Sink, Writer};

const TABLE_PATH: &str = "core/audit";
/// Entries a device may have waiting before callers are turned away.
const QUEUE_DEPTH: usize = 4096;
const OPTIONS: [&str; 5] = ["file_path", "log_raw", "hmac_accessor", "format", "mode"];

/// Why auditing failed or a device could not be managed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// No enabled device accepted the entry.
    #[error("no audit device accepted the entry")]
    NotAccepted,
    /// Bad parameters for enable/disable/hash.
    #[error("{0}")]
    Invalid(String),
    /// The device table or a key could not be read or written.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// The device table does not decode.
    #[error("the audit table is corrupt")]
    Corrupt,
    /// Key generation or loading failed.
    #[error("audit key error")]
    Crypto,
}

/// Where API-created audit files may live unless the configuration says otherwise.
pub const DEFAULT_FILE_DIRECTORY: &str = "/var/log/coffer";

/// Modes an API-created audit file may be created with: the server alone
/// writes it; a log shipper's group may read it.
const ALLOWED_MODES: [u32; 2] = [0o600, 0o640];

/// Timeouts, intervals and where files may be written.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// longest a request waits for a device to accept an entry
    pub write_timeout: Duration,
    /// how often a signed checkpoint is written (if entries came)
    pub checkpoint_interval: Duration,
    /// the directory API-created file devices must write inside
    pub file_directory: PathBuf,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            write_timeout: Duration::from_secs(2),
            checkpoint_interval: Duration::from_secs(300),
            file_directory: PathBuf::from(DEFAULT_FILE_DIRECTORY),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TableV1 {
    version: u32,
    devices: Vec<DeviceEntryV1>,
}

#[derive(Clone, Serialize, Deserialize)]
struct DeviceEntryV1 {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    description: String,
    options: BTreeMap<String, String>,
    local: bool,
    /// hex HMAC key
    salt: String,
}

/// An enabled device.
struct Device {
    entry: DeviceEntryV1,
    key: HmacKey,
    raw: bool,
    hash_accessor: bool,
    tx: mpsc::Sender<Job>,
    health: Arc<Health>,
}

impl Device {
    fn hasher(&self) -> Hasher<'_> {
        Hasher::new(&self.key, self.raw, self.hash_accessor)
    }
}

/// The audit devices of an unsealed node.
pub struct AuditBroker {
    barrier: Arc<Barrier>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: AuditSettings,
    signer: Arc<Signer>,
    devices: RwLock<BTreeMap<String, Arc<Device>>>,
    /// Serialises enable/disable.
    changes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AuditBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditBroker").finish_non_exhaustive()
    }
}

impl AuditBroker {
    /// Loads the device table and starts a writer per device. A device whose
    /// file cannot be opened starts unhealthy rather than failing the unseal.
    pub async fn open(
        barrier: Arc<Barrier>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: AuditSettings,
    ) -> Result<AuditBroker, AuditError> {
        let signer = Arc::new(Signer::load_or_create(&barrier).await?);
        let broker = AuditBroker {
            barrier,
            clock,
            metrics,
            settings,
            signer,
            devices: RwLock::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
        };
        for entry in broker.load_table().await? {
            let path = entry.path.clone();
            match broker.start(entry, false).await {
                Ok(device) => {
                    crate::sync::write(&broker.devices).insert(path, device);
                }
                Err(e) => {
                    tracing::error!(device = %path, error = %e, "audit device could not start")
                }
            }
        }
        Ok(broker)
    }

    async fn load_table(&self) -> Result<Vec<DeviceEntryV1>, AuditError> {
        match self.barrier.get(TABLE_PATH).await? {
            None => Ok(Vec::new()),
            Some(bytes) => {
                let t: TableV1 = serde_json::from_slice(&bytes).map_err(|_| AuditError::Corrupt)?;
                Ok(t.devices)
            }
        }
    }

    async fn save_table(&self, devices: Vec<DeviceEntryV1>) -> Result<(), AuditError> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(&TableV1 {
                version: 1,
                devices,
            })
            .map_err(|_| AuditError::Corrupt)?,
        );
        self.barrier.put(TABLE_PATH, &bytes).await?;
        Ok(())
    }

    fn snapshot(&self) -> Vec<Arc<Device>> {
        // A poisoned table must not read as "no devices": that would let
        // requests through unaudited.
        crate::sync::read(&self.devices).values().cloned().collect()
    }

    /// Opens the file, finds where its chain stands and spawns the writer.
    /// `strict` (enable): a file that cannot be opened, or that does not take
    /// a first entry (a signed checkpoint of where its chain starts, written
    /// and synced), is an error; otherwise (unseal) the device starts
    /// unhealthy, so a root or sudo token can still remove it.
    async fn start(&self, entry: DeviceEntryV1, strict: bool) -> Result<Arc<Device>, AuditError> {
        let opts = parse_options(&entry.options)?;
        let key = HmacKey::new(&Zeroizing::new(
            hex::decode(&entry.salt).map_err(|_| AuditError::Corrupt)?,
        ));
        let mut sink = Sink::new(opts.file_path.clone().into(), opts.mode);
        let timeout = self.settings.write_timeout;
        let opened = tokio::time::timeout(
            timeout,
            tokio::task::spawn_blocking(move || {
                let head = sink.tail_head();
                (sink, head)
            }),
        )
        .await;
        let (sink, file_head, open_error) = match opened {
            Ok(Ok((sink, Ok(head)))) => (sink, head, None),
            Ok(Ok((sink, Err(e)))) => (sink, None, Some(e.to_string())),
            Ok(Err(_)) => (
                Sink::new(opts.file_path.clone().into(), opts.mode),
                None,
                Some("the audit writer failed".into()),
            ),
            Err(_) => (
                Sink::new(opts.file_path.clone().into(), opts.mode),
                None,
                Some("opening the file timed out".into()),
            ),
        };
        if let Some(e) = &open_error {
            if strict {
                return Err(AuditError::Invalid(format!(
                    "sanity check failed; unable to open \"{}\" for writing: {e}",
                    opts.file_path
                )));
            }
        }
        let stored_head = match self.barrier.get(&Writer::head_key(&entry.path)).await? {
            Some(bytes) => serde_json::from_slice::<Head>(&bytes).ok(),
            None => None,
        };
        let head = Head::genesis()
            .furthest(stored_head.unwrap_or_else(Head::genesis))
            .furthest(file_head.unwrap_or_else(Head::genesis));
        let health = Arc::new(Health::new(timeout));
        if let Some(e) = open_error {
            tracing::error!(device = %entry.path, error = %e, "audit file cannot be opened");
            health.failed(e);
        }
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let mut writer = Writer::new(
            entry.path.clone(),
            sink,
            head,
            self.barrier.clone(),
            self.signer.clone(),
            self.clock.clone(),
            health.clone(),
            self.settings.checkpoint_interval,
            self.metrics.clone(),
        );
        if strict {
            let probe = match tokio::time::timeout(timeout, writer.probe()).await {
                Ok(result) => result,
                Err(_) => Err("the write did not finish within audit_write_timeout".into()),
            };
            if let Err(e) = probe {
                return Err(AuditError::Invalid(format!(
                    "audit file \"{}\" cannot be written and synced: {e}; nothing was enabled",
                    opts.file_path
                )));
            }
        }
        tokio::spawn(writer.run(rx));
        Ok(Arc::new(Device {
            entry,
            key,
            raw: opts.log_raw,
            hash_accessor: opts.hmac_accessor,
            tx,
            health,
        }))
    }

    /// `sys/audit`: the enabled devices in Vault's shape, plus health.
    pub fn list(&self) -> Value {
        let map: Map<String, Value> = self
            .snapshot()
            .iter()
            .map(|d| {
                (
                    d.entry.path.clone(),
                    json!({
                        "type": d.entry.kind,
                        "description": d.entry.description,
                        "options": d.entry.options,
                        "local": d.entry.local,
                        "path": d.entry.path,
                        "healthy": d.health.healthy(),
                        "error": d.health.error(),
                    }),
                )
            })
            .collect();
        Value::Object(map)
    }

    /// The files the enabled devices write, for readers of this node's own
    /// record (a break-glass report).
    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.snapshot()
            .iter()
            .filter_map(|d| d.entry.options.get("file_path").map(PathBuf::from))
            .collect()
    }

    /// Health of each device by path, for `sys/health` and metrics.
    pub fn health(&self) -> Vec<(String, bool)> {
        self.snapshot()
            .iter()
            .map(|d| (d.entry.path.clone(), d.health.healthy()))
            .collect()
    }

    /// `PUT sys/audit/<path>`.
    pub async fn enable(
        &self,
        path: &str,
        kind: &str,
        description: String,
        options: BTreeMap<String, String>,
        local: bool,
    ) -> Result<(), AuditError> {
        let path = normalize_path(path)?;
        if kind != "file" {
            return Err(AuditError::Invalid(format!(
                "unknown backend type: \"{kind}\" (Coffer has \"file\")"
            )));
        }
        let mut options = options;
        let opts = parse_options(&options)?;
        if !ALLOWED_MODES.contains(&opts.mode) {
            return Err(AuditError::Invalid(format!(
                "mode {:04o} is not allowed: an audit file is written by the server alone; use 0600 (the default) or 0640 (group may read)",
                opts.mode
            )));
        }
        let confined = confine(&opts.file_path, &self.settings.file_directory).await?;
        options.insert("file_path".into(), confined);
        let _guard = self.changes.lock().await;
        if crate::sync::read(&self.devices).contains_key(&path) {
            return Err(AuditError::Invalid(format!(
                "path already in use: \"{path}\""
            )));
        }
        let salt = crate::crypto::random_array::<32>().map_err(|_| AuditError::Crypto)?;
        let entry = DeviceEntryV1 {
            path: path.clone(),
            kind: kind.to_owned(),
            description,
            options,
            local,
            salt: hex::encode(salt.as_slice()),
        };
        let device = self.start(entry.clone(), true).await?;
        let mut table = self.load_table().await?;
        table.push(entry);
        if let Err(e) = self.save_table(table).await {
            let (done, _) = oneshot::channel();
            let _ = device.tx.try_send(Job::Stop(done));
            return Err(e);
        }
        crate::sync::write(&self.devices).insert(path, device);
        Ok(())
    }

    /// `DELETE sys/audit/<path>`: writes a last checkpoint and forgets the
    /// device, its salt and its stored head. Disabling a path that is not
    /// enabled succeeds, as in Vault.
    pub async fn disable(&self, path: &str) -> Result<(), AuditError> {
        let path = normalize_path(path)?;
        let _guard = self.changes.lock().await;
        let table: Vec<DeviceEntryV1> = self
            .load_table()
            .await?
            .into_iter()
            .filter(|e| e.path != path)
            .collect();
        self.save_table(table).await?;
        let removed = crate::sync::write(&self.devices).remove(&path);
        if let Some(device) = removed {
            stop(&device, self.settings.write_timeout).await;
        }
        self.barrier.delete(&Writer::head_key(&path)).await?;
        Ok(())
    }

    /// `sys/audit-hash/<path>`: the value an entry would show for `input`.
    pub fn hash(&self, path: &str, input: &str) -> Result<String, AuditError> {
        let path = normalize_path(path)?;
        let device = crate::sync::read(&self.devices)
            .get(&path)
            .cloned()
            .ok_or_else(|| AuditError::Invalid(format!("unknown audit backend \"{path}\"")))?;
        Ok(Hasher {
            raw: false,
            ..device.hasher()
        }
        .hash(input))
    }

    /// The checkpoint public key (standard base64).
    pub fn checkpoint_public_key(&self) -> String {
        self.signer.public_key()
    }

    /// Asks every writer to close and reopen its file (SIGHUP).
    pub fn reopen(&self) {
        for d in self.snapshot() {
            let _ = d.tx.try_send(Job::Reopen);
        }
    }

    /// Asks every writer to write a checkpoint now.
    pub fn checkpoint_now(&self) {
        for d in self.snapshot() {
            let _ = d.tx.try_send(Job::Checkpoint);
        }
    }

    /// Stops every writer after a last checkpoint and head save (seal, shutdown).
    pub async fn shutdown(&self) {
        let devices: Vec<Arc<Device>> = std::mem::take(&mut *crate::sync::write(&self.devices))
            .into_values()
            .collect();
        for d in devices {
            stop(&d, self.settings.write_timeout).await;
        }
    }

    /// Writes the request entry. `error` is set for denied requests.
    pub async fn log_request(
        &self,
        record: &Record,
        error: Option<&str>,
    ) -> Result<(), AuditError> {
        let time = self.clock.now().rfc3339();
        self.submit(|h| h.request_entry(record, &time, error)).await
    }

    /// Writes the response entry.
    pub async fn log_response(
        &self,
        record: &Record,
        response: Option<&ResponseInfo>,
        error: Option<&str>,
    ) -> Result<(), AuditError> {
        let time = self.clock.now().rfc3339();
        self.submit(|h| h.response_entry(record, &time, response, error))
            .await
    }

    /// Hands one entry (rendered per device) to every device and returns once
    /// one of them has it durably; fails when none does within the timeout.
    async fn submit(
        &self,
        render: impl Fn(&Hasher<'_>) -> Map<String, Value>,
    ) -> Result<(), AuditError> {
        let devices = self.snapshot();
        if devices.is_empty() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.settings.write_timeout;
        let (results, mut outcomes) = mpsc::channel(devices.len());
        for device in devices {
            let (done, ack) = oneshot::channel();
            let label = vec![("device", device.entry.path.clone())];
            if device
                .tx
                .try_send(Job::Entry(render(&device.hasher()), done))
                .is_err()
            {
                device.health.missed_deadline();
                self.metrics.inc("coffer_audit_write_failures_total", label);
                continue;
            }
            let results = results.clone();
            let metrics = self.metrics.clone();
            let health = device.health.clone();
            // Each wait runs on its own, so one slow device neither delays the
            // answer once another has the entry nor escapes the failure count.
            tokio::spawn(async move {
                let outcome = tokio::time::timeout_at(deadline, ack).await;
                if outcome.is_err() {
                    health.missed_deadline();
                }
                let accepted = matches!(outcome, Ok(Ok(Ok(()))));
                if !accepted {
                    metrics.inc("coffer_audit_write_failures_total", label);
                }
                let _ = results.send(accepted).await;
            });
        }
        drop(results);
        while let Some(accepted) = outcomes.recv().await {
            if accepted {
                return Ok(());
            }
        }
        Err(AuditError::NotAccepted)
    }
}

async fn stop(device: &Device, timeout: Duration) {
    let (done, finished) = oneshot::channel();
    let started = Instant::now();
    if tokio::time::timeout(timeout, device.tx.send(Job::Stop(done)))
        .await
        .is_ok()
    {
        let left = timeout.saturating_sub(started.elapsed());
        if tokio::time::timeout(left, finished).await.is_err() {
            tracing::warn!(device = %device.entry.path, "audit device did not stop in time");
        }
    }
}

/// Parsed device options.
struct FileOptions {
    file_path: String,
    log_raw: bool,
    hmac_accessor: bool,
    mode: u32,
}

fn parse_options(options: &BTreeMap<String, String>) -> Result<FileOptions, AuditError> {
    if let Some(unknown) = options.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
        return Err(AuditError::Invalid(format!(
            "unknown option \"{unknown}\" for a file audit device (known: {})",
            OPTIONS.join(", ")
        )));
    }
    let file_path = options
        .get("file_path")
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AuditError::Invalid("file_path is required".into()))?;
    if matches!(file_path.as_str(), "stdout" | "discard") {
        return Err(AuditError::Invalid(format!(
            "file_path \"{file_path}\" is not supported: audit entries must reach a file that can be synced"
        )));
    }
    let flag = |name: &str, default: bool| -> Result<bool, AuditError> {
        match options.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(_) => Err(AuditError::Invalid(format!("{name} must be true or false"))),
        }
    };
    if let Some(format) = options.get("format") {
        if format != "json" {
            return Err(AuditError::Invalid(format!(
                "format \"{format}\" is not supported (Coffer writes \"json\")"
            )));
        }
    }
    let mode = match options.get("mode") {
        None => 0o600,
        Some(m) => u32::from_str_radix(m.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o777 && *m != 0)
            .ok_or_else(|| {
                AuditError::Invalid("mode must be an octal file mode such as 0600".into())
            })?,
    };
    Ok(FileOptions {
        file_path,
        log_raw: flag("log_raw", false)?,
        hmac_accessor: flag("hmac_accessor", true)?,
        mode,
    })
}

/// The file an API-created device may write: `file_path` with its parent
/// resolved (`..` and symlinks), which must lie inside `directory` (resolved
/// too). The file itself may not exist yet; an API caller cannot make links,
/// so only the directories on the way can redirect it.
async fn confine(file_path: &str, directory: &Path) -> Result<String, AuditError> {
    // Debug quoting: a control character in the path comes back escaped.
    let refuse = |why: &str| {
        AuditError::Invalid(format!(
            "file_path {file_path:?} {why}: API-created audit files must be inside audit_file_directory ({:?})",
            directory.display()
        ))
    };
    if file_path.chars().any(char::is_control) {
        return Err(refuse("contains a control character"));
    }
    let path = Path::new(file_path);
    if !path.is_absolute() {
        return Err(refuse("is not an absolute path"));
    }
    let last = file_path.rsplit('/').next().unwrap_or_default();
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(refuse("does not name a file"));
    };
    if last.is_empty() || last == "." || last == ".." {
        return Err(refuse("does not name a file"));
    }
    let resolve = |p: PathBuf| async move {
        tokio::time::timeout(Duration::from_secs(5), tokio::fs::canonicalize(p))
            .await
            .ok()
            .and_then(Result::ok)
    };
    let Some(root) = resolve(directory.to_path_buf()).await else {
        return Err(AuditError::Invalid(format!(
            "audit_file_directory \"{}\" does not exist or cannot be resolved; create it for the server's user or set audit_file_directory in the configuration",
            directory.display()
        )));
    };
    let Some(parent) = resolve(parent.to_path_buf()).await else {
        return Err(refuse("is in a directory that does not exist"));
    };
    if !parent.starts_with(&root) {
        return Err(refuse("is outside the audit directory"));
    }
    parent
        .join(name)
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| refuse("does not resolve to a UTF-8 path"))
}

/// The table key of a device path from a request. Refused, never trimmed, when
/// not canonical (the core canonicalised the request path before authorising
/// it): the device changed is the one the policy decided on.
fn normalize_path(path: &str) -> Result<String, AuditError> {
    let p = path.strip_suffix('/').unwrap_or(path);
    if p.is_empty()
        || p.chars().any(char::is_control)
        || p.split('/')
            .any(|s| s.is_empty() || s == "." || s == ".." || s.trim() != s)
    {
        return Err(AuditError::Invalid(format!(
            "invalid audit device path \"{}\"",
            path.escape_debug()
        )));
    }
    Ok(format!("{p}/"))
}

#[cfg(test)]
mod tests;
