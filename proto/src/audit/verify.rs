//! Verifying a stream of lines as one chain: the per-line hash, the
//! `seq`/`prev_hash` links across files, the checkpoints, and the classification of
//! the first break. Lines are taken one at a time from an iterator, so memory use is
//! bounded by the longest line. A failure names a sequence number, a file and a line
//! number only, never the contents of an entry.

use std::fmt;

use super::chain::{parse_line, peek_seq, Head, LineError, GENESIS_HASH};
use super::checkpoint::CheckpointKey;

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
    /// The very first entry is an intact entry `first_seq` > 1 and `seq` 1 never
    /// appears: the older entries are not in the files given, as after a rotation
    /// whose older files were deleted. Not evidence of tampering by itself;
    /// `partial` verifies from there.
    StartsLater {
        /// `seq` of the first entry found
        first_seq: u64,
    },
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
    /// what went wrong
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
            BreakKind::StartsLater { first_seq } => write!(
                f,
                "the chain starts at entry {first_seq}, not 1: the older entries are not in these files"
            )?,
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
    Read {
        /// the file as named to the verifier
        path: String,
        /// the reader's error
        error: String,
    },
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

/// One line as read, with its `\n` if it had one.
#[derive(Debug, Clone)]
pub struct RawLine {
    /// Index of its file in the names given to [`verify_lines`].
    pub file: usize,
    /// 1-based line number within that file.
    pub line_no: u64,
    /// The bytes, `\n` included when present.
    pub bytes: Vec<u8>,
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

/// Verify `lines`, taken from the files `names` in turn, as one chain; stops at the
/// first break or read error.
pub fn verify_lines<I>(
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
    let mut head = (!opts.partial).then(Head::genesis);
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
                    } else if report.entries == 0 {
                        BreakKind::StartsLater {
                            first_seq: entry.seq,
                        }
                    } else {
                        BreakKind::Missing
                    };
                    return Err(at(Some(n), kind));
                }
                if entry.seq < n || entry.prev_hash != prev.hash {
                    return Err(at(Some(n), BreakKind::InsertedOrReplaced));
                }
            }
            // The `partial` anchor: nothing before it to compare with, but `seq` 0 never
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
        if let Some(claim) = &entry.checkpoint {
            claim
                .check(entry.seq, &entry.prev_hash, opts.public_key.as_ref())
                .map_err(|kind| at(Some(entry.seq), kind))?;
            report.checkpoints += 1;
        }
        report.entries += 1;
        report.first_seq.get_or_insert(entry.seq);
        report.last_seq = Some(entry.seq);
        head = Some(entry.head());
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
        if peek_seq(&line?.bytes) == Some(seq) {
            return Ok(true);
        }
    }
    Ok(false)
}
