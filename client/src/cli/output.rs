//! Rendering for humans and scripts: the aligned `Key  Value` table, column tables
//! (`secrets list`), `=== Section ===` headers, value and duration formatting, pretty
//! JSON and YAML. Everything renders to a `String` so it can be tested and written out
//! in one go.

use clap::ValueEnum;
use serde_json::{Map, Value};

/// Output format chosen with `-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned `Key  Value` tables.
    #[default]
    Table,
    /// The server's JSON answer, pretty-printed.
    Json,
    /// The server's answer as YAML.
    Yaml,
}

impl Format {
    /// `-format` / `VAULT_FORMAT` values (`table`, `json`, `yaml`/`yml`), case-insensitive.
    pub fn parse(value: &str) -> Option<Format> {
        match value.trim().to_ascii_lowercase().as_str() {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }

    /// JSON or YAML: a format for scripts, where success messages are not printed.
    pub fn is_structured(self) -> bool {
        self != Format::Table
    }
}

/// `value` as pretty JSON or YAML (for [`Format::Table`], JSON too: callers that have a
/// table use it instead).
pub fn structured(format: Format, value: &Value) -> String {
    match format {
        Format::Yaml => yaml(value),
        Format::Json | Format::Table => json(value),
    }
}

/// An aligned table with column headers underlined by dashes, as `vault secrets list`
/// prints it. Trailing spaces are trimmed.
pub fn columns(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            text.push_str(cell);
            text.push_str(&" ".repeat(width.saturating_sub(cell.chars().count())));
            text.push_str(GAP);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    line(
        &headers
            .iter()
            .map(|h| "-".repeat(h.chars().count()))
            .collect::<Vec<_>>(),
    );
    for row in rows {
        line(row);
    }
    out
}

/// YAML for a JSON value (block style, keys in the server's order), with a trailing
/// newline. Strings are quoted whenever YAML could read them as something else.
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => yaml_map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => yaml_seq(a, 0, &mut out),
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
    out
}

fn yaml_map(map: &Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_string(k));
        out.push(':');
        yaml_child(v, indent, out);
    }
}

fn yaml_seq(items: &[Value], indent: usize, out: &mut String) {
    for v in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                // The first key goes on the dash's line, the others under it.
                let mut first = true;
                for (k, v) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        out.push_str(&" ".repeat(indent + 2));
                    }
                    out.push_str(&yaml_string(k));
                    out.push(':');
                    yaml_child(v, indent + 2, out);
                }
            }
            other => yaml_child(other, indent, out),
        }
    }
}

/// A value after `key:` or `-`: nested block on the next lines, scalar on this one.
fn yaml_child(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml_seq(a, indent + 2, out);
        }
        scalar => {
            out.push(' ');
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A plain scalar when that reads back as the same string, else a JSON-quoted one
/// (JSON string syntax is valid YAML double-quoted syntax).
fn yaml_string(s: &str) -> String {
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    // Anything starting with a digit may read as a number, date or time in YAML 1.1.
    let looks_numeric = s.starts_with(|c: char| c.is_ascii_digit())
        || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s.starts_with('.');
    let plain = !reserved
        && !looks_numeric
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !s.ends_with(char::is_whitespace)
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && s.chars().all(|c| !c.is_control());
    if plain {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

/// Rows of a two-column table, in display order.
pub type Rows = Vec<(String, String)>;

const GAP: &str = "    ";

/// The aligned two-column table with `Key`/`Value` headers, one trailing newline.
pub fn table(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        let pad = width - k.chars().count();
        let text = format!("{k}{}{GAP}{v}", " ".repeat(pad));
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line("Key", "Value");
    line("---", "-----");
    for (k, v) in rows {
        line(k, v);
    }
    out
}

/// Aligned `key  value` rows without the `Key`/`Value` header, as `vault operator
/// key-status` and `generate-root -status` print them.
pub fn bare_table(rows: &[(String, String)]) -> String {
    let full = table(rows);
    full.lines().skip(2).map(|l| format!("{l}\n")).collect()
}

/// `====== Title ======`, at least as wide as `width`.
pub fn section(title: &str, width: usize) -> String {
    let inner = title.chars().count() + 2;
    let total = width.max(inner + 6);
    let left = (total - inner) / 2;
    let right = total - inner - left;
    format!("{} {title} {}\n", "=".repeat(left), "=".repeat(right))
}

/// Width of the widest line of a rendered block.
pub fn width_of(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// A titled table: section header sized to the table, then the table.
pub fn titled_table(title: &str, rows: &[(String, String)]) -> String {
    let body = table(rows);
    format!("{}{body}", section(title, width_of(&body)))
}

/// Human form of a JSON value: strings as-is, `null` as `n/a`, lists of scalars as
/// `[a b c]`, other structures as compact JSON.
pub fn fmt_value(value: &Value) -> String {
    match value {
        Value::Null => "n/a".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(items) if items.iter().all(is_scalar) => {
            let parts: Vec<String> = items.iter().map(fmt_value).collect();
            format!("[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Seconds as a short Go-style duration: `0s`, `90s` → `1m30s`, `3600` → `1h`.
pub fn fmt_duration(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 || (h > 0 && sec > 0) {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.len() == sign.len() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// Seconds since the Unix epoch as an RFC 3339 UTC time, `2030-01-01T00:00:00Z`
/// (civil-from-days, so no date library is needed for one timestamp).
pub fn fmt_utc(epoch_secs: u64) -> String {
    let days = i64::try_from(epoch_secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = epoch_secs % 86_400;
    let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Keys whose integer values are durations in seconds.
fn is_duration_key(key: &str) -> bool {
    matches!(
        key,
        "ttl" | "creation_ttl" | "explicit_max_ttl" | "period" | "lease_duration"
    ) || key.ends_with("_ttl")
}

/// Rows for every key of a map, sorted by key; integer durations are humanised.
pub fn map_rows(map: &Map<String, Value>) -> Rows {
    let mut rows: Rows = map
        .iter()
        .map(|(k, v)| {
            let shown = match v.as_i64() {
                Some(secs) if is_duration_key(k) => fmt_duration(secs),
                _ => fmt_value(v),
            };
            (k.clone(), shown)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Pretty JSON with a trailing newline.
pub fn json(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    s.push('\n');
    s
}

/// The value of one row, for `-field`. Errors name the field, never the value.
pub fn pick_field(rows: &[(String, String)], field: &str) -> Option<String> {
    rows.iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(pairs: &[(&str, &str)]) -> Rows {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn table_is_aligned() {
        let t = table(&rows(&[("a", "1"), ("longer_key", "two"), ("empty", "")]));
        assert_eq!(
            t,
            "Key           Value\n\
             ---           -----\n\
             a             1\n\
             longer_key    two\n\
             empty\n"
        );
    }

    #[test]
    fn bare_tables_have_no_header() {
        assert_eq!(
            bare_table(&rows(&[("Key Term", "3"), ("Install Time", "t")])),
            "Key Term        3\nInstall Time    t\n"
        );
    }

    #[test]
    fn table_with_short_keys_keeps_header_width() {
        assert_eq!(
            table(&rows(&[("k", "v")])),
            "Key    Value\n---    -----\nk      v\n"
        );
    }

    #[test]
    fn map_rows_are_sorted_and_durations_humanised() {
        let m = json!({"zeta": "z", "ttl": 5400, "alpha": null, "policies": ["default", "root"],
                       "num_uses": 0, "meta": {"b": "2"}});
        let r = map_rows(m.as_object().unwrap());
        assert_eq!(
            r,
            rows(&[
                ("alpha", "n/a"),
                ("meta", r#"{"b":"2"}"#),
                ("num_uses", "0"),
                ("policies", "[default root]"),
                ("ttl", "1h30m"),
                ("zeta", "z"),
            ])
        );
    }

    #[test]
    fn utc_timestamps() {
        assert_eq!(fmt_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(fmt_utc(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(fmt_utc(1_893_456_000 + 3_723), "2030-01-01T01:02:03Z");
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(0), "0s");
        assert_eq!(fmt_duration(90), "1m30s");
        assert_eq!(fmt_duration(3600), "1h");
        assert_eq!(fmt_duration(3601), "1h0m1s");
        assert_eq!(fmt_duration(768 * 3600), "768h");
        assert_eq!(fmt_duration(-60), "-1m");
    }

    #[test]
    fn sections_are_centred() {
        assert_eq!(section("Data", 0), "=== Data ===\n");
        let s = section("Data", 20);
        assert_eq!(s.trim_end().chars().count(), 20);
        assert!(s.starts_with("======= Data ======"), "{s}");
    }

    #[test]
    fn json_is_pretty() {
        assert_eq!(json(&json!({"a": 1})), "{\n  \"a\": 1\n}\n");
    }

    #[test]
    fn yaml_output() {
        let v = json!({"data": {"keys": ["a", "b/"], "n": 3, "t": true, "z": null,
            "odd": "yes", "num": "0123", "colon": "a: b", "empty": {}, "list": [],
            "nested": [{"x": 1, "y": "two"}]}});
        // `n` and `y` are quoted: YAML 1.1 readers take them for booleans.
        assert_eq!(
            yaml(&v),
            "data:\n  keys:\n    - a\n    - b/\n  \"n\": 3\n  t: true\n  z: null\n  \
             odd: \"yes\"\n  num: \"0123\"\n  colon: \"a: b\"\n  empty: {}\n  list: []\n  \
             nested:\n    - x: 1\n      \"y\": two\n"
        );
        assert_eq!(yaml(&json!(["p1", "p2"])), "- p1\n- p2\n");
        assert_eq!(yaml(&json!("multi\nline")), "\"multi\\nline\"\n");
        assert_eq!(
            structured(Format::Json, &json!({"a": 1})),
            "{\n  \"a\": 1\n}\n"
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Format::parse("JSON"), Some(Format::Json));
        assert_eq!(Format::parse("yml"), Some(Format::Yaml));
        assert_eq!(Format::parse("table"), Some(Format::Table));
        assert_eq!(Format::parse("xml"), None);
        assert!(Format::Yaml.is_structured() && !Format::Table.is_structured());
    }

    #[test]
    fn column_tables() {
        let t = columns(
            &["Path", "Type"],
            &[
                vec!["secret/".into(), "kv".into()],
                vec!["x/".into(), "".into()],
            ],
        );
        assert_eq!(t, "Path       Type\n----       ----\nsecret/    kv\nx/\n");
    }

    #[test]
    fn field_lookup() {
        let r = rows(&[("token", "abc")]);
        assert_eq!(pick_field(&r, "token").as_deref(), Some("abc"));
        assert_eq!(pick_field(&r, "nope"), None);
    }
}
