//! Offline verification of audit log files for `coffer audit verify`. The format, the
//! chain rules and the classification of a break are `coffer_proto::audit`'s (shared
//! with the server's writer); this module only reads the files, streaming them line by
//! line so memory use is bounded by the longest line. `cli/audit.rs` owns the wording
//! of the output.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

pub use coffer_proto::audit::{
    checkpoint_message, verify_bytes, verify_lines, BreakKind, ChainBreak, CheckpointKey, RawLine,
    VerifyFailure, VerifyOptions, VerifyReport, GENESIS_HASH,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_proto::audit::{link, Head};
    use serde_json::{json, Value};

    /// Lines 1..=n as the server links them.
    fn chain(n: usize) -> Vec<Vec<u8>> {
        let mut head = Head::genesis();
        (0..n)
            .map(|i| {
                let Value::Object(entry) = json!({"type": "request", "n": i}) else {
                    unreachable!()
                };
                let (line, next) = link(entry, &head).unwrap();
                head = next;
                line
            })
            .collect()
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
        // The newest file alone: rotated, not tampered with.
        match verify_files(std::slice::from_ref(&b), &VerifyOptions::default()) {
            Err(VerifyFailure::Broken(brk)) => {
                assert_eq!(brk.kind, BreakKind::StartsLater { first_seq: 3 })
            }
            other => panic!("expected a break, got {other:?}"),
        }
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
        let dir = tempfile::tempdir().unwrap();
        let mut lines = chain(4);
        lines[1] = b"{\"client_token\":\"hvs.SECRET\"}\n".to_vec();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, lines.concat()).unwrap();
        match verify_files(&[path], &VerifyOptions::default()) {
            Err(VerifyFailure::Broken(b)) => {
                let shown = b.to_string();
                assert!(shown.starts_with("entry 2 was modified ("), "{shown}");
                assert!(!shown.contains("SECRET"), "{shown}");
            }
            other => panic!("expected a break, got {other:?}"),
        }
    }
}
