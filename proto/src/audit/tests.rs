//! The verifier's rules, checked against lines written byte for byte as
//! `docs/design/audit.md` says (not with [`super::chain::link`], so a mistake shared
//! by the writer and the verifier would still show), and against [`super::chain::link`].

use super::chain::{link, Head, GENESIS_HASH};
use super::checkpoint::{checkpoint_message, CheckpointKey};
use super::verify::*;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// SHA-256 as lowercase hex, straight from the design note.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

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
        let hash = sha256_hex(body.as_bytes());
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
    let hash = sha256_hex(body.as_bytes());
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
    let files: [(&str, &[u8]); 3] = [("audit.log.1", &a), ("empty.log", b""), ("audit.log", &b)];
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
fn a_rotated_log_starts_later_but_a_later_gap_is_missing() {
    let lines = chain(20);
    // Only the newest file of a rotated log: intact from seq 8.
    let rotated = lines[7..].concat();
    let b = broken(verify_bytes(
        &[("audit.log", &rotated)],
        &VerifyOptions::default(),
    ));
    assert_eq!(
        b,
        brk(1, BreakKind::StartsLater { first_seq: 8 }, "audit.log", 1)
    );
    // Its first entry edited as well: that is a modification, found first.
    let mut edited = lines[7..].to_vec();
    edited[0][20] ^= 1;
    assert_eq!(
        broken(one(&edited, &VerifyOptions::default())).kind,
        BreakKind::Modified
    );
    // An empty older file before it changes nothing.
    let b = broken(verify_bytes(
        &[("audit.log.1", b""), ("audit.log", &rotated)],
        &VerifyOptions::default(),
    ));
    assert_eq!(
        b,
        brk(1, BreakKind::StartsLater { first_seq: 8 }, "audit.log", 1)
    );
    // Entry 1 present but entry 2 gone: that is a deleted entry, not a rotation.
    let mut gap = lines.clone();
    gap.remove(1);
    assert_eq!(
        broken(one(&gap, &VerifyOptions::default())),
        brk(2, BreakKind::Missing, "audit.log", 2)
    );
}

#[test]
fn lines_from_link_verify_and_an_edit_is_caught() {
    use serde_json::json;
    let mut head = Head::genesis();
    let mut lines = Vec::new();
    for n in 0..6 {
        let entry = json!({"type": "request", "n": n, "text": "a,\"hash\":\"x"});
        let serde_json::Value::Object(entry) = entry else {
            unreachable!()
        };
        let (line, next) = link(entry, &head).unwrap();
        lines.push(line);
        head = next;
    }
    let r = one(&lines, &VerifyOptions::default()).unwrap();
    assert_eq!((r.entries, r.last_seq), (6, Some(6)));
    let at = lines[3].iter().position(|b| *b == b'n').unwrap();
    lines[3][at + 4] ^= 1;
    assert_eq!(
        broken(one(&lines, &VerifyOptions::default())),
        brk(4, BreakKind::Modified, "audit.log", 4)
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
    // Without `partial` it is a log whose start is elsewhere, not a deleted entry.
    let b = broken(one(tail, &VerifyOptions::default()));
    assert_eq!(
        b,
        brk(1, BreakKind::StartsLater { first_seq: 10 }, "audit.log", 1)
    );
    assert_eq!(
        b.to_string(),
        "the chain starts at entry 10, not 1: the older entries are not in these files (audit.log line 1)"
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
        // Without its first line a log looks like one whose older part was rotated away.
        let kind = if k == 0 { BreakKind::StartsLater { first_seq: 2 } } else { BreakKind::Missing };
        prop_assert_eq!(b.kind, kind);
    }
}
