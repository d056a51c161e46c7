//! The hash chain: each line carries `seq` and `prev_hash`, and ends with its own
//! `hash`, the lowercase hex SHA-256 of the line as written minus that last member.
//! [`link`] writes a line; [`parse_line`] checks one line on its own (the chain
//! across lines is [`super::verify`]'s); [`head_of_tail`] finds where an existing
//! file's chain stopped, so a restarted writer continues it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::checkpoint::Claim;

/// `prev_hash` of the entry with `seq` 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What every line ends with before the hash hex. The hash is always the last member
/// so it can be cut off without re-serialising the JSON.
const HASH_MEMBER: &[u8] = b",\"hash\":\"";
const HASH_HEX_LEN: usize = 64;
/// `,"hash":"` + 64 hex + `"}`.
const SUFFIX_LEN: usize = HASH_MEMBER.len() + HASH_HEX_LEN + 2;

/// The last entry of a chain: its sequence number and hash (`seq` 0 = empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// sequence number of the last entry
    pub seq: u64,
    /// its hash
    pub hash: String,
}

impl Head {
    /// The head of a chain with no entries.
    pub fn genesis() -> Head {
        Head {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// Whichever of two heads is further along.
    pub fn furthest(self, other: Head) -> Head {
        if other.seq > self.seq {
            other
        } else {
            self
        }
    }
}

/// The hash rule: lowercase hex SHA-256 of `body`, the line without its hash member.
pub fn line_hash(body: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, body).as_ref())
}

/// Appends `entry` to the chain after `head`: returns the line to write (newline
/// included) and the new head.
pub fn link(
    mut entry: Map<String, Value>,
    head: &Head,
) -> Result<(Vec<u8>, Head), serde_json::Error> {
    let seq = head.seq + 1;
    entry.insert("seq".into(), Value::from(seq));
    entry.insert("prev_hash".into(), Value::from(head.hash.clone()));
    let mut line = serde_json::to_vec(&Value::Object(entry))?;
    let hash = line_hash(&line);
    // The object always has members (seq at least), so `,"hash":…` is valid JSON.
    line.pop();
    line.extend_from_slice(HASH_MEMBER);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok((line, Head { seq, hash }))
}

/// The parts of a line that checked out on its own that the chain rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `seq`
    pub seq: u64,
    /// `prev_hash`
    pub prev_hash: String,
    /// `hash`, which matched the line
    pub hash: String,
    /// The `checkpoint` member of a `type: checkpoint` entry.
    pub checkpoint: Option<Claim>,
}

impl Entry {
    /// The chain's head once this entry is accepted.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Why a line is not a hashed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// No `\n` at the end: the write was cut short.
    Incomplete,
    /// The hash does not match, or the line is not a well-formed entry.
    Modified,
}

/// Checks one line as read (with its `\n`): the `\n`, then [`parse_entry`].
pub fn parse_line(bytes: &[u8]) -> Result<Entry, LineError> {
    let line = bytes.strip_suffix(b"\n").ok_or(LineError::Incomplete)?;
    parse_entry(line)
}

/// Checks one complete line (without its `\n`): the trailing hash member, the hash of
/// the rest `B`, and that `B` is an object with an integer `seq` and a hash-shaped
/// `prev_hash`.
pub fn parse_entry(line: &[u8]) -> Result<Entry, LineError> {
    // At least `{` must come before the suffix.
    if line.len() <= SUFFIX_LEN {
        return Err(LineError::Modified);
    }
    let (front, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let hash = suffix
        .strip_prefix(HASH_MEMBER)
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .filter(|hex| is_hash_hex(hex))
        .ok_or(LineError::Modified)?;
    let mut body = Vec::with_capacity(front.len() + 1);
    body.extend_from_slice(front);
    body.push(b'}');
    let computed = line_hash(&body);
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
    Ok(Entry {
        seq,
        prev_hash,
        hash: computed,
        checkpoint: Claim::of_entry(&obj),
    })
}

/// The head of the last complete, intact line in `tail` (the end of a file), if any.
pub fn head_of_tail(tail: &[u8]) -> Option<Head> {
    let end = tail.iter().rposition(|b| *b == b'\n')?;
    let complete = &tail[..end];
    let start = complete
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    parse_entry(&complete[start..]).ok().map(|e| e.head())
}

/// `seq` of a line, read without any check: to tell a moved entry from a deleted one.
pub(crate) fn peek_seq(bytes: &[u8]) -> Option<u64> {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    serde_json::from_slice::<Map<String, Value>>(text)
        .ok()
        .and_then(|obj| obj.get("seq").and_then(Value::as_u64))
}

pub(crate) fn is_hash_hex(hex: &[u8]) -> bool {
    hex.len() == HASH_HEX_LEN && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(n: u64) -> Map<String, Value> {
        match json!({"type": "request", "n": n, "text": "a,\"hash\":\"x"}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn lines_link_and_check_out() {
        let mut head = Head::genesis();
        let mut file = Vec::new();
        for n in 0..3 {
            let (line, next) = link(entry(n), &head).unwrap();
            assert_eq!(next.seq, head.seq + 1);
            assert!(line.ends_with(b"\"}\n"));
            let parsed: Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(parsed["prev_hash"], json!(head.hash));
            assert_eq!(parsed["hash"], json!(next.hash));
            assert_eq!(parse_line(&line).unwrap().head(), next);
            file.extend_from_slice(&line);
            head = next;
        }
        assert_eq!(head_of_tail(&file), Some(head.clone()));
        // A half-written last line is ignored in favour of the last whole one.
        let mut torn = file.clone();
        torn.extend_from_slice(b"{\"type\":\"req");
        assert_eq!(head_of_tail(&torn), Some(head));
    }

    #[test]
    fn an_edited_line_has_no_head() {
        let (line, _) = link(entry(7), &Head::genesis()).unwrap();
        let mut edited = line.clone();
        edited[12] ^= 1;
        assert_eq!(parse_line(&edited), Err(LineError::Modified));
        assert_eq!(head_of_tail(&edited), None);
        assert_eq!(
            parse_line(&line[..line.len() - 1]),
            Err(LineError::Incomplete)
        );
        assert_eq!(parse_entry(b"not json"), Err(LineError::Modified));
        assert_eq!(head_of_tail(b""), None);
    }

    #[test]
    fn furthest_head_wins() {
        let a = Head {
            seq: 3,
            hash: "a".into(),
        };
        let b = Head {
            seq: 5,
            hash: "b".into(),
        };
        assert_eq!(a.clone().furthest(b.clone()), b);
        assert_eq!(b.clone().furthest(a), b);
    }
}
