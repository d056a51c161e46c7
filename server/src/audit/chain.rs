//! The hash chain of one audit device (format in `docs/design/audit.md`): each
//! line carries `seq` and `prev_hash`, and ends with its own `hash`, the SHA-256
//! of the line as written minus that last member. Also finds the head of an
//! existing file so a restarted device continues its chain.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::crypto::sha256_hex;

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_MEMBER: &str = ",\"hash\":\"";

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

/// Appends `entry` to the chain after `head`: returns the line to write
/// (newline included) and the new head.
pub fn link(
    mut entry: Map<String, Value>,
    head: &Head,
) -> Result<(Vec<u8>, Head), serde_json::Error> {
    let seq = head.seq + 1;
    entry.insert("seq".into(), Value::from(seq));
    entry.insert("prev_hash".into(), Value::from(head.hash.clone()));
    let mut line = serde_json::to_vec(&Value::Object(entry))?;
    let hash = sha256_hex(&line);
    // The object always has members (seq at least), so `,"hash":…` is valid JSON.
    line.pop();
    line.extend_from_slice(HASH_MEMBER.as_bytes());
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok((line, Head { seq, hash }))
}

/// The head recorded by a complete, intact line (without its newline), or
/// `None` when the line does not check out.
pub fn head_of_line(line: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(line).ok()?;
    let body = text.strip_suffix("\"}")?;
    let at = body.rfind(HASH_MEMBER)?;
    let hash = &body[at + HASH_MEMBER.len()..];
    if hash.len() != 64
        || !hash
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let hashed = format!("{}}}", &body[..at]);
    if sha256_hex(hashed.as_bytes()) != hash {
        return None;
    }
    let value: Value = serde_json::from_str(&hashed).ok()?;
    let seq = value.get("seq")?.as_u64()?;
    Some(Head {
        seq,
        hash: hash.to_owned(),
    })
}

/// The head of the last complete line in `tail` (the end of a file), if any.
pub fn head_of_tail(tail: &[u8]) -> Option<Head> {
    let complete = match tail.iter().rposition(|b| *b == b'\n') {
        Some(end) => &tail[..end],
        None => return None,
    };
    let start = complete
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    head_of_line(&complete[start..])
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
            assert_eq!(head_of_line(&line[..line.len() - 1]), Some(next.clone()));
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
        let mut edited = line[..line.len() - 1].to_vec();
        edited[12] ^= 1;
        assert_eq!(head_of_line(&edited), None);
        assert_eq!(head_of_line(b"not json"), None);
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
