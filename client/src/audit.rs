//! Offline verification of audit log files (format version 1 of
//! `docs/design/audit.md`): the per-line hash, the `seq`/`prev_hash` chain across
//! rotated files, and the Ed25519-signed checkpoints. This module owns the rules and
//! the classification of a break; `coffer audit verify` (in `cli/audit.rs`) owns the
//! wording of its output.
//!
//! Lines are streamed, so memory use is bounded by the longest line, not the file size.
//! Nothing here ever returns or formats the contents of an entry: a failure names a
//! sequence number, a file and a line number only.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::signature::{UnparsedPublicKey, ED25519};
use serde_json::{Map, Value};

/// `prev_hash` of the entry with `seq` 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What every line ends with before the hash hex; the hash is always the last member so
/// it can be cut off without re-serialising the JSON.
const HASH_PREFIX: &[u8] = b",\"hash\":\"";
const HASH_HEX_LEN: usize = 64;
/// `,"hash":"` + 64 hex + `"}`.
const SUFFIX_LEN: usize = HASH_PREFIX.len() + HASH_HEX_LEN + 2;
/// Raw Ed25519 public key length.
const PUBLIC_KEY_LEN: usize = 32;

/// The bytes a checkpoint signature covers.
pub fn checkpoint_message(seq: u64, hash: &str) -> String {
    format!("coffer-audit-checkpoint:v1:{seq}:{hash}")
}

/// A raw Ed25519 public key that checkpoint signatures are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckpointKey([u8; PUBLIC_KEY_LEN]);

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointKey({})", BASE64.encode(self.0))
    }
}

impl CheckpointKey {
    /// The key as served by `GET /v1/sys/audit-checkpoint-key`: 32 bytes, standard base64.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| "the public key is not valid standard base64".to_string())?;
        Self::from_bytes(&bytes)
    }

    /// A raw 32-byte key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        <[u8; PUBLIC_KEY_LEN]>::try_from(bytes)
            .map(CheckpointKey)
            .map_err(|_| {
                format!(
                    "the public key must be {PUBLIC_KEY_LEN} bytes (an Ed25519 key), not {}",
                    bytes.len()
                )
            })
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Accept any first entry as the start of the chain (older rotated files are gone)
    /// instead of requiring `seq` 1.
    pub partial: bool,
    /// Check every checkpoint's signature against this key.
    pub public_key: Option<CheckpointKey>,
}

/// A chain that checked out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked (checkpoints included).
    pub entries: u64,
    /// `seq` of the first entry, if there was one.
    pub first_seq: Option<u64>,
    /// `seq` of the last entry, if there was one.
    pub last_seq: Option<u64>,
    /// Files read (empty ones included).
    pub files: usize,
    /// Checkpoint entries seen; each one matched the chain.
    pub checkpoints: u64,
    /// Whether their signatures were checked (a public key was given).
    pub signatures_checked: bool,
}

/// Why the chain is broken at [`ChainBreak::seq`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The last line has no `\n`.
    Incomplete,
    /// The hash does not match the line, or the line is not a well-formed entry.
    Modified,
    /// A later entry came first, and the expected one appears further on.
    Reordered,
    /// A later entry came first, and the expected one never appears.
    Missing,
    /// An earlier `seq` came again, or `prev_hash` is not the previous entry's hash.
    InsertedOrReplaced,
    /// A checkpoint attests something other than the entry before it.
    CheckpointMismatch,
    /// A checkpoint's signature does not verify with the given key.
    CheckpointSignatureInvalid,
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The `seq` the chain expected there. `None` only when `partial` is set and the
    /// very first entry is already unusable, so no sequence number is known yet.
    pub seq: Option<u64>,
    pub kind: BreakKind,
    /// The file as it was named to the verifier.
    pub file: String,
    /// 1-based line number within that file.
    pub line: u64,
}

impl fmt::Display for ChainBreak {
    /// `entry 12 was modified (audit.log line 12)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = match self.seq {
            Some(n) => format!("entry {n}"),
            None => "the first entry".to_string(),
        };
        match self.kind {
            BreakKind::Incomplete if self.seq.is_none() => {
                write!(f, "{entry} is incomplete (file truncated)")?
            }
            BreakKind::Incomplete => write!(f, "{entry} incomplete (file truncated)")?,
            BreakKind::Modified => write!(f, "{entry} was modified")?,
            BreakKind::Reordered => write!(f, "{entry} was reordered")?,
            BreakKind::Missing => write!(f, "{entry} is missing")?,
            BreakKind::InsertedOrReplaced => write!(f, "{entry} was inserted or replaced")?,
            BreakKind::CheckpointMismatch => {
                write!(f, "{entry}: checkpoint does not match the chain")?
            }
            BreakKind::CheckpointSignatureInvalid => {
                write!(f, "{entry}: checkpoint signature invalid")?
            }
        }
        write!(f, " ({} line {})", self.file, self.line)
    }
}

/// Why verification did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    /// A file could not be opened or read: nothing is known about the chain.
    Read { path: String, error: String },
    /// The chain is broken.
    Broken(ChainBreak),
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::Read { path, error } => write!(f, "cannot read {path}: {error}"),
            VerifyFailure::Broken(b) => b.fmt(f),
        }
    }
}

/// Verify `paths`, read in this order, as one chain.
///
/// Every file is opened before any is checked, so an unreadable file is reported as
/// such rather than hidden behind a break found earlier.
pub fn verify_files(
    paths: &[PathBuf],
    opts: &VerifyOptions,
) -> Result<VerifyReport, VerifyFailure> {
    let mut names = Vec::with_capacity(paths.len());
    let mut readers = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path.display().to_string();
        let file = File::open(path)
            .and_then(|f| {
                if f.metadata()?.is_dir() {
                    Err(std::io::Error::other("is a directory"))
                } else {
                    Ok(f)
                }
            })
            .map_err(|e| VerifyFailure::Read {
                path: name.clone(),
                error: e.to_string(),
            })?;
        names.push(name);
        readers.push(BufReader::new(file));
    }
    let lines = FileLines {
        names: names.clone(),
        readers,
        index: 0,
        line_no: 0,
    };
    verify_lines(lines, &names, opts)
}

/// Verify in-memory files (name, contents), in this order, as one chain.
pub fn verify_bytes(
    files: &[(&str, &[u8])],
    opts: &VerifyOptions,
) -> Result<VerifyReport, VerifyFailure> {
    let names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    let lines = files.iter().enumerate().flat_map(|(file, (_, bytes))| {
        bytes
            .split_inclusive(|b| *b == b'\n')
            .zip(1u64..)
            .map(move |(line, line_no)| {
                Ok(RawLine {
                    file,
                    line_no,
                    bytes: line.to_vec(),
                })
            })
    });
    verify_lines(lines, &names, opts)
}

/// One line as read, with its `\n` if it had one.
struct RawLine {
    file: usize,
    line_no: u64,
    bytes: Vec<u8>,
}

/// Lines of several files in turn.
struct FileLines {
    names: Vec<String>,
    readers: Vec<BufReader<File>>,
    index: usize,
    line_no: u64,
}

impl Iterator for FileLines {
    type Item = Result<RawLine, VerifyFailure>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let reader = self.readers.get_mut(self.index)?;
            let mut bytes = Vec::new();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => {
                    self.index += 1;
                    self.line_no = 0;
                }
                Ok(_) => {
                    self.line_no += 1;
                    return Some(Ok(RawLine {
                        file: self.index,
                        line_no: self.line_no,
                        bytes,
                    }));
                }
                Err(e) => {
                    let path = self.names.get(self.index).cloned().unwrap_or_default();
                    self.index = self.readers.len();
                    return Some(Err(VerifyFailure::Read {
                        path,
                        error: e.to_string(),
                    }));
                }
            }
        }
    }
}

/// The last entry accepted into the chain.
struct Head {
    seq: u64,
    hash: String,
}

/// The parts of a line the chain rules look at.
struct Entry {
    seq: u64,
    prev_hash: String,
    hash: String,
    checkpoint: Option<Checkpoint>,
}

/// `checkpoint` of a `type: checkpoint` entry; members that are absent or of the wrong
/// type are `None` and make the checkpoint fail rather than the line.
struct Checkpoint {
    seq: Option<u64>,
    hash: Option<String>,
    signature: Option<String>,
}

/// A line that is not a hashed entry.
enum LineError {
    Incomplete,
    Modified,
}

fn verify_lines<I>(
    mut lines: I,
    names: &[String],
    opts: &VerifyOptions,
) -> Result<VerifyReport, VerifyFailure>
where
    I: Iterator<Item = Result<RawLine, VerifyFailure>>,
{
    let mut report = VerifyReport {
        files: names.len(),
        signatures_checked: opts.public_key.is_some(),
        ..VerifyReport::default()
    };
    let mut head = (!opts.partial).then(|| Head {
        seq: 0,
        hash: GENESIS_HASH.to_string(),
    });
    while let Some(line) = lines.next() {
        let line = line?;
        let expected = head.as_ref().map(|h| h.seq.saturating_add(1));
        let at = |seq: Option<u64>, kind: BreakKind| {
            VerifyFailure::Broken(ChainBreak {
                seq,
                kind,
                file: names.get(line.file).cloned().unwrap_or_default(),
                line: line.line_no,
            })
        };
        let entry = match parse_line(&line.bytes) {
            Ok(entry) => entry,
            Err(LineError::Incomplete) => return Err(at(expected, BreakKind::Incomplete)),
            Err(LineError::Modified) => return Err(at(expected, BreakKind::Modified)),
        };
        match (&head, expected) {
            (Some(prev), Some(n)) => {
                if entry.seq > n {
                    let kind = if seq_appears(&mut lines, n)? {
                        BreakKind::Reordered
                    } else {
                        BreakKind::Missing
                    };
                    return Err(at(Some(n), kind));
                }
                if entry.seq < n || entry.prev_hash != prev.hash {
                    return Err(at(Some(n), BreakKind::InsertedOrReplaced));
                }
            }
            // The `--partial` anchor: nothing before it to compare with, but `seq` 0 never
            // exists and `seq` 1 has a fixed `prev_hash`.
            _ => {
                if entry.seq == 0 {
                    return Err(at(None, BreakKind::InsertedOrReplaced));
                }
                if entry.seq == 1 && entry.prev_hash != GENESIS_HASH {
                    return Err(at(Some(1), BreakKind::InsertedOrReplaced));
                }
            }
        }
        if let Some(cp) = &entry.checkpoint {
            check_checkpoint(&entry, cp, opts).map_err(|kind| at(Some(entry.seq), kind))?;
            report.checkpoints += 1;
        }
        report.entries += 1;
        report.first_seq.get_or_insert(entry.seq);
        report.last_seq = Some(entry.seq);
        head = Some(Head {
            seq: entry.seq,
            hash: entry.hash,
        });
    }
    Ok(report)
}

/// Whether any remaining line (in this file or the next ones) carries `seq`. Only the
/// `seq` is read: the point is to tell a move from a deletion, not to validate.
fn seq_appears<I>(lines: &mut I, seq: u64) -> Result<bool, VerifyFailure>
where
    I: Iterator<Item = Result<RawLine, VerifyFailure>>,
{
    for line in lines {
        let line = line?;
        let text = line.bytes.strip_suffix(b"\n").unwrap_or(&line.bytes);
        let found = serde_json::from_slice::<Map<String, Value>>(text)
            .ok()
            .and_then(|obj| obj.get("seq").and_then(Value::as_u64))
            == Some(seq);
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Check one line's own integrity: the `\n`, the trailing hash member, the hash of `B`,
/// and that `B` is an entry with `seq` and `prev_hash`.
fn parse_line(bytes: &[u8]) -> Result<Entry, LineError> {
    let line = bytes.strip_suffix(b"\n").ok_or(LineError::Incomplete)?;
    // At least `{` must come before the suffix.
    if line.len() <= SUFFIX_LEN {
        return Err(LineError::Modified);
    }
    let (front, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let hash = suffix
        .strip_prefix(HASH_PREFIX)
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .filter(|hex| is_hash_hex(hex))
        .ok_or(LineError::Modified)?;
    let mut body = Vec::with_capacity(front.len() + 1);
    body.extend_from_slice(front);
    body.push(b'}');
    let computed = hex_lower(digest(&SHA256, &body).as_ref());
    if computed.as_bytes() != hash {
        return Err(LineError::Modified);
    }
    let obj: Map<String, Value> = serde_json::from_slice(&body).map_err(|_| LineError::Modified)?;
    let seq = obj
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or(LineError::Modified)?;
    let prev_hash = obj
        .get("prev_hash")
        .and_then(Value::as_str)
        .filter(|h| is_hash_hex(h.as_bytes()))
        .ok_or(LineError::Modified)?
        .to_string();
    let checkpoint = (obj.get("type").and_then(Value::as_str) == Some("checkpoint")).then(|| {
        let cp = obj.get("checkpoint");
        let field = |name: &str| cp.and_then(|c| c.get(name));
        Checkpoint {
            seq: field("seq").and_then(Value::as_u64),
            hash: field("hash").and_then(Value::as_str).map(str::to_string),
            signature: field("signature")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    });
    Ok(Entry {
        seq,
        prev_hash,
        hash: computed,
        checkpoint,
    })
}

/// A checkpoint attests the entry just before it, and with a key its signature must
/// verify over exactly that head.
fn check_checkpoint(entry: &Entry, cp: &Checkpoint, opts: &VerifyOptions) -> Result<(), BreakKind> {
    let (Some(cp_seq), Some(cp_hash)) = (cp.seq, cp.hash.as_deref()) else {
        return Err(BreakKind::CheckpointMismatch);
    };
    if Some(cp_seq) != entry.seq.checked_sub(1) || cp_hash != entry.prev_hash {
        return Err(BreakKind::CheckpointMismatch);
    }
    if let Some(key) = &opts.public_key {
        let signature = cp
            .signature
            .as_deref()
            .and_then(|s| BASE64.decode(s).ok())
            .ok_or(BreakKind::CheckpointSignatureInvalid)?;
        let message = checkpoint_message(cp_seq, cp_hash);
        if !key.verifies(message.as_bytes(), &signature) {
            return Err(BreakKind::CheckpointSignatureInvalid);
        }
    }
    Ok(())
}

fn is_hash_hex(hex: &[u8]) -> bool {
    hex.len() == HASH_HEX_LEN && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    /// Writes entries the way the design note says the server does.
    struct TestWriter {
        seq: u64,
        head: String,
        key: Ed25519KeyPair,
    }

    fn new_key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    impl TestWriter {
        fn new() -> Self {
            TestWriter {
                seq: 0,
                head: GENESIS_HASH.to_string(),
                key: new_key(),
            }
        }

        fn public_key(&self) -> CheckpointKey {
            CheckpointKey::from_bytes(self.key.public_key().as_ref()).unwrap()
        }

        /// `fields` is the JSON object's members before `seq`, without braces.
        fn line(&mut self, fields: &str) -> Vec<u8> {
            self.seq += 1;
            let body = format!(
                "{{{fields},\"seq\":{},\"prev_hash\":\"{}\"}}",
                self.seq, self.head
            );
            let hash = hex_lower(digest(&SHA256, body.as_bytes()).as_ref());
            let line = format!("{},\"hash\":\"{hash}\"}}\n", &body[..body.len() - 1]);
            self.head = hash;
            line.into_bytes()
        }

        fn entry(&mut self) -> Vec<u8> {
            let n = self.seq + 1;
            let kind = if n % 2 == 1 { "request" } else { "response" };
            self.line(&format!(
                "\"type\":\"{kind}\",\"time\":\"2025-01-01T00:00:00.000000000Z\",\
                 \"request\":{{\"path\":\"secret/data/app{n}\",\"data\":{{\"k\":\"hmac-sha256:ab\"}}}}"
            ))
        }

        fn checkpoint_with(&mut self, signature: &str) -> Vec<u8> {
            let (seq, head) = (self.seq, self.head.clone());
            self.line(&format!(
                "\"type\":\"checkpoint\",\"time\":\"2025-01-01T00:05:00Z\",\
                 \"checkpoint\":{{\"seq\":{seq},\"hash\":\"{head}\",\"signature\":\"{signature}\"}}"
            ))
        }

        fn checkpoint(&mut self) -> Vec<u8> {
            let msg = checkpoint_message(self.seq, &self.head);
            let sig = BASE64.encode(self.key.sign(msg.as_bytes()).as_ref());
            self.checkpoint_with(&sig)
        }
    }

    /// Lines 1..=n (index 0 is seq 1).
    fn chain(n: usize) -> Vec<Vec<u8>> {
        let mut w = TestWriter::new();
        (0..n).map(|_| w.entry()).collect()
    }

    fn one(lines: &[Vec<u8>], opts: &VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
        let bytes = lines.concat();
        verify_bytes(&[("audit.log", &bytes)], opts)
    }

    fn broken(r: Result<VerifyReport, VerifyFailure>) -> ChainBreak {
        match r {
            Err(VerifyFailure::Broken(b)) => b,
            other => panic!("expected a break, got {other:?}"),
        }
    }

    fn brk(seq: u64, kind: BreakKind, file: &str, line: u64) -> ChainBreak {
        ChainBreak {
            seq: Some(seq),
            kind,
            file: file.to_string(),
            line,
        }
    }

    #[test]
    fn good_chain_passes() {
        let r = one(&chain(10), &VerifyOptions::default()).unwrap();
        assert_eq!(
            r,
            VerifyReport {
                entries: 10,
                first_seq: Some(1),
                last_seq: Some(10),
                files: 1,
                checkpoints: 0,
                signatures_checked: false,
            }
        );
    }

    #[test]
    fn empty_file_is_an_empty_chain() {
        let r = verify_bytes(&[("audit.log", b"")], &VerifyOptions::default()).unwrap();
        assert_eq!(r.entries, 0);
        assert_eq!(r.first_seq, None);
        assert_eq!(r.files, 1);
    }

    #[test]
    fn edited_byte_is_modified() {
        let mut lines = chain(10);
        let pos = lines[4].iter().position(|b| *b == b'p').unwrap();
        lines[4][pos] = b'q';
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())),
            brk(5, BreakKind::Modified, "audit.log", 5)
        );
    }

    #[test]
    fn edited_hash_or_garbage_is_modified() {
        let mut lines = chain(5);
        let len = lines[2].len();
        lines[2][len - 4] = b'A'; // upper-case hex breaks the suffix rule
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())).kind,
            BreakKind::Modified
        );
        let mut lines = chain(5);
        lines[2] = b"not json\n".to_vec();
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())),
            brk(3, BreakKind::Modified, "audit.log", 3)
        );
    }

    #[test]
    fn correctly_hashed_line_without_seq_is_modified() {
        let body = format!("{{\"type\":\"request\",\"prev_hash\":\"{GENESIS_HASH}\"}}");
        let hash = hex_lower(digest(&SHA256, body.as_bytes()).as_ref());
        let line = format!("{},\"hash\":\"{hash}\"}}\n", &body[..body.len() - 1]);
        assert_eq!(
            broken(one(&[line.into_bytes()], &VerifyOptions::default())),
            brk(1, BreakKind::Modified, "audit.log", 1)
        );
    }

    #[test]
    fn deleted_line_is_missing() {
        let mut lines = chain(10);
        lines.remove(6);
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())),
            brk(7, BreakKind::Missing, "audit.log", 7)
        );
    }

    #[test]
    fn swapped_lines_are_reordered() {
        let mut lines = chain(10);
        lines.swap(3, 4);
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())),
            brk(4, BreakKind::Reordered, "audit.log", 4)
        );
    }

    #[test]
    fn duplicated_line_is_inserted() {
        let mut lines = chain(10);
        let dup = lines[5].clone();
        lines.insert(6, dup);
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())),
            brk(7, BreakKind::InsertedOrReplaced, "audit.log", 7)
        );
    }

    #[test]
    fn replaced_line_from_another_chain_is_inserted_or_replaced() {
        let mut lines = chain(10);
        // A different entry 4, correctly hashed, on the same entry 3.
        let mut w = TestWriter::new();
        for _ in 0..3 {
            w.entry();
        }
        lines[3] = w.line("\"type\":\"request\",\"time\":\"2025-01-01T00:00:01Z\"");
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())),
            brk(5, BreakKind::InsertedOrReplaced, "audit.log", 5)
        );
        // Entry 4 taken from a chain with another history.
        let mut lines = chain(10);
        let mut w = TestWriter::new();
        w.line("\"type\":\"request\",\"time\":\"2025-01-01T00:00:01Z\"");
        for _ in 0..3 {
            lines[3] = w.entry();
        }
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())),
            brk(4, BreakKind::InsertedOrReplaced, "audit.log", 4)
        );
    }

    #[test]
    fn truncated_file_is_incomplete() {
        let lines = chain(10);
        let mut bytes = lines.concat();
        bytes.truncate(bytes.len() - lines[9].len() / 2);
        let r = verify_bytes(&[("audit.log", &bytes)], &VerifyOptions::default());
        assert_eq!(broken(r), brk(10, BreakKind::Incomplete, "audit.log", 10));
        // Only the `\n` gone.
        let mut bytes = lines.concat();
        bytes.pop();
        let r = verify_bytes(&[("audit.log", &bytes)], &VerifyOptions::default());
        assert_eq!(broken(r), brk(10, BreakKind::Incomplete, "audit.log", 10));
    }

    #[test]
    fn chain_continues_across_files() {
        let lines = chain(12);
        let (a, b) = (lines[..7].concat(), lines[7..].concat());
        let files: [(&str, &[u8]); 3] =
            [("audit.log.1", &a), ("empty.log", b""), ("audit.log", &b)];
        let r = verify_bytes(&files, &VerifyOptions::default()).unwrap();
        assert_eq!((r.entries, r.files, r.last_seq), (12, 3, Some(12)));
        // The wrong order is caught.
        let files: [(&str, &[u8]); 2] = [("audit.log", &b), ("audit.log.1", &a)];
        assert_eq!(
            broken(verify_bytes(&files, &VerifyOptions::default())),
            brk(1, BreakKind::Reordered, "audit.log", 1)
        );
    }

    #[test]
    fn gap_between_files_is_missing() {
        let lines = chain(12);
        let (a, b) = (lines[..7].concat(), lines[8..].concat());
        let files: [(&str, &[u8]); 2] = [("audit.log.1", &a), ("audit.log", &b)];
        assert_eq!(
            broken(verify_bytes(&files, &VerifyOptions::default())),
            brk(8, BreakKind::Missing, "audit.log", 1)
        );
    }

    #[test]
    fn partial_accepts_a_later_start() {
        let lines = chain(20);
        let tail = &lines[9..];
        let partial = VerifyOptions {
            partial: true,
            ..VerifyOptions::default()
        };
        let r = one(tail, &partial).unwrap();
        assert_eq!(
            (r.entries, r.first_seq, r.last_seq),
            (11, Some(10), Some(20))
        );
        assert_eq!(
            broken(one(tail, &VerifyOptions::default())),
            brk(1, BreakKind::Missing, "audit.log", 1)
        );
        // The chain after the anchor is still checked.
        let mut tail = tail.to_vec();
        tail.remove(3);
        assert_eq!(
            broken(one(&tail, &partial)),
            brk(13, BreakKind::Missing, "audit.log", 4)
        );
        // An unusable anchor has no expected seq.
        let mut bad = lines[9..].to_vec();
        bad[0][5] ^= 1;
        let b = broken(one(&bad, &partial));
        assert_eq!((b.seq, b.kind), (None, BreakKind::Modified));
        assert_eq!(
            b.to_string(),
            "the first entry was modified (audit.log line 1)"
        );
    }

    fn signed_chain(w: &mut TestWriter) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for _ in 0..5 {
            lines.push(w.entry());
        }
        lines.push(w.checkpoint());
        for _ in 0..3 {
            lines.push(w.entry());
        }
        lines.push(w.checkpoint());
        lines
    }

    #[test]
    fn signed_checkpoints_verify() {
        let mut w = TestWriter::new();
        let lines = signed_chain(&mut w);
        let opts = VerifyOptions {
            partial: false,
            public_key: Some(w.public_key()),
        };
        let r = one(&lines, &opts).unwrap();
        assert_eq!(
            (r.entries, r.checkpoints, r.signatures_checked),
            (10, 2, true)
        );
        // Without a key the checkpoints are still matched against the chain.
        let r = one(&lines, &VerifyOptions::default()).unwrap();
        assert_eq!((r.checkpoints, r.signatures_checked), (2, false));
    }

    #[test]
    fn wrong_public_key_fails() {
        let mut w = TestWriter::new();
        let lines = signed_chain(&mut w);
        let other = TestWriter::new();
        let opts = VerifyOptions {
            partial: false,
            public_key: Some(other.public_key()),
        };
        assert_eq!(
            broken(one(&lines, &opts)),
            brk(6, BreakKind::CheckpointSignatureInvalid, "audit.log", 6)
        );
    }

    /// The `hash` member of a line the test writer made.
    fn hash_of(line: &[u8]) -> String {
        String::from_utf8(line[line.len() - 67..line.len() - 3].to_vec()).unwrap()
    }

    #[test]
    fn tampered_signature_fails() {
        for signature in [None, Some("not base64!"), Some("")] {
            let mut w = TestWriter::new();
            let mut lines: Vec<Vec<u8>> = (0..4).map(|_| w.entry()).collect();
            let signature = signature.map(str::to_string).unwrap_or_else(|| {
                let msg = checkpoint_message(w.seq, &w.head);
                let mut sig = w.key.sign(msg.as_bytes()).as_ref().to_vec();
                sig[10] ^= 0x01;
                BASE64.encode(&sig)
            });
            // The line is hashed correctly, so only the signature can tell.
            lines.push(w.checkpoint_with(&signature));
            let opts = VerifyOptions {
                partial: false,
                public_key: Some(w.public_key()),
            };
            assert_eq!(
                broken(one(&lines, &opts)),
                brk(5, BreakKind::CheckpointSignatureInvalid, "audit.log", 5),
                "{signature}"
            );
        }
    }

    #[test]
    fn rewritten_chain_cannot_carry_signatures() {
        // An attacker rebuilds the whole chain with fresh hashes and their own key.
        let mut real = TestWriter::new();
        let _ = signed_chain(&mut real);
        let mut forged = TestWriter::new();
        let lines = signed_chain(&mut forged);
        assert!(one(&lines, &VerifyOptions::default()).is_ok());
        let opts = VerifyOptions {
            partial: false,
            public_key: Some(real.public_key()),
        };
        assert_eq!(
            broken(one(&lines, &opts)).kind,
            BreakKind::CheckpointSignatureInvalid
        );
    }

    #[test]
    fn checkpoint_for_another_head_is_a_mismatch() {
        let mut w = TestWriter::new();
        let mut lines: Vec<Vec<u8>> = (0..4).map(|_| w.entry()).collect();
        // Validly signed, but over seq 3 while the entry before it is seq 4.
        let stale_hash = hash_of(&lines[2]);
        let msg = checkpoint_message(3, &stale_hash);
        let sig = BASE64.encode(w.key.sign(msg.as_bytes()).as_ref());
        lines.push(w.line(&format!(
            "\"type\":\"checkpoint\",\"checkpoint\":{{\"seq\":3,\"hash\":\"{stale_hash}\",\"signature\":\"{sig}\"}}"
        )));
        let opts = VerifyOptions {
            partial: false,
            public_key: Some(w.public_key()),
        };
        assert_eq!(
            broken(one(&lines, &opts)),
            brk(5, BreakKind::CheckpointMismatch, "audit.log", 5)
        );
        // Members missing.
        let mut w = TestWriter::new();
        let mut lines: Vec<Vec<u8>> = (0..2).map(|_| w.entry()).collect();
        lines.push(w.line("\"type\":\"checkpoint\",\"checkpoint\":{\"seq\":2}"));
        assert_eq!(
            broken(one(&lines, &VerifyOptions::default())),
            brk(3, BreakKind::CheckpointMismatch, "audit.log", 3)
        );
    }

    #[test]
    fn public_key_parsing() {
        let w = TestWriter::new();
        let b64 = BASE64.encode(w.key.public_key().as_ref());
        assert_eq!(CheckpointKey::from_base64(&b64).unwrap(), w.public_key());
        assert!(CheckpointKey::from_base64("%%%").is_err());
        let short = CheckpointKey::from_base64(&BASE64.encode([1u8; 16])).unwrap_err();
        assert!(short.contains("32 bytes"), "{short}");
    }

    #[test]
    fn files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let lines = chain(6);
        let (a, b) = (dir.path().join("audit.log.1"), dir.path().join("audit.log"));
        std::fs::write(&a, lines[..2].concat()).unwrap();
        std::fs::write(&b, lines[2..].concat()).unwrap();
        let r = verify_files(&[a.clone(), b.clone()], &VerifyOptions::default()).unwrap();
        assert_eq!((r.entries, r.files), (6, 2));
        let gone = dir.path().join("nope.log");
        match verify_files(&[a, gone, b], &VerifyOptions::default()) {
            Err(VerifyFailure::Read { path, .. }) => assert!(path.ends_with("nope.log")),
            other => panic!("expected a read error, got {other:?}"),
        }
        assert!(matches!(
            verify_files(&[dir.path().to_path_buf()], &VerifyOptions::default()),
            Err(VerifyFailure::Read { .. })
        ));
    }

    #[test]
    fn failures_never_show_entry_contents() {
        let mut lines = chain(4);
        lines[1] = b"{\"client_token\":\"hvs.SECRET\"}\n".to_vec();
        let shown = broken(one(&lines, &VerifyOptions::default())).to_string();
        assert_eq!(shown, "entry 2 was modified (audit.log line 2)");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_single_byte_edit_is_caught(
            n in 1usize..12,
            line_pick in any::<prop::sample::Index>(),
            byte_pick in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut lines = chain(n);
            let k = line_pick.index(n);
            let i = byte_pick.index(lines[k].len());
            lines[k][i] ^= flip;
            let b = broken(one(&lines, &VerifyOptions::default()));
            // Whether it breaks the hash, the suffix or the `\n`, it is caught right there.
            prop_assert_eq!(b.seq, Some(k as u64 + 1));
        }

        #[test]
        fn any_split_into_files_passes(n in 1usize..15, cuts in prop::collection::vec(0usize..15, 0..4)) {
            let lines = chain(n);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(n)).collect();
            cuts.push(0);
            cuts.push(n);
            cuts.sort_unstable();
            let parts: Vec<Vec<u8>> = cuts.windows(2).map(|w| lines[w[0]..w[1]].concat()).collect();
            let names: Vec<String> = (0..parts.len()).map(|i| format!("f{i}")).collect();
            let files: Vec<(&str, &[u8])> = names.iter().map(String::as_str).zip(parts.iter().map(Vec::as_slice)).collect();
            let r = verify_bytes(&files, &VerifyOptions::default()).unwrap();
            prop_assert_eq!(r.entries, n as u64);
            prop_assert_eq!(r.files, parts.len());
        }

        #[test]
        fn deleting_any_line_but_the_last_is_caught(n in 2usize..12, pick in any::<prop::sample::Index>()) {
            let mut lines = chain(n);
            let k = pick.index(n - 1);
            lines.remove(k);
            let b = broken(one(&lines, &VerifyOptions::default()));
            prop_assert_eq!(b.seq, Some(k as u64 + 1));
            prop_assert_eq!(b.kind, BreakKind::Missing);
        }
    }
}
