//! In-process metrics and their Prometheus text exposition (`sys/metrics`).
//! Counters and histograms keyed by name and labels; no exporter thread, no
//! global registry. Label values never carry secrets (mount paths, operations,
//! status codes, method names).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Label pairs of one sample.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Help text of every metric, in exposition order.
const HELP: &[(&str, &str, &str)] = &[
    (
        "coffer_requests_total",
        "counter",
        "API requests by mount, operation and status code",
    ),
    (
        "coffer_request_duration_seconds",
        "histogram",
        "API request latency by mount and operation",
    ),
    (
        "coffer_logins_total",
        "counter",
        "Successful logins by auth method",
    ),
    (
        "coffer_login_failures_total",
        "counter",
        "Failed logins (wrong password or code, locked, rate-limited) by auth method",
    ),
    (
        "coffer_audit_write_duration_seconds",
        "histogram",
        "Time for an audit device to durably accept an entry, by device",
    ),
    (
        "coffer_audit_write_failures_total",
        "counter",
        "Audit entries a device failed to accept (error or timeout), by device",
    ),
];

/// A gauge family computed at scrape time: name, help, and one value per label set.
pub struct Gauge {
    /// metric name
    pub name: &'static str,
    /// HELP text
    pub help: &'static str,
    /// `counter` for totals kept elsewhere, `gauge` otherwise
    pub kind: &'static str,
    /// samples
    pub samples: Vec<(Labels, f64)>,
}

impl Gauge {
    /// A family with one unlabelled sample.
    pub fn single(name: &'static str, kind: &'static str, help: &'static str, value: f64) -> Gauge {
        Gauge {
            name,
            help,
            kind,
            samples: vec![(Vec::new(), value)],
        }
    }
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: Labels) {
        *crate::sync::lock(&self.inner)
            .counters
            .entry((name, labels))
            .or_insert(0) += 1;
    }

    /// Records one request.
    pub fn request(&self, mount: &str, operation: &str, status: u16, seconds: f64) {
        self.inc(
            "coffer_requests_total",
            vec![
                ("mount", mount.to_owned()),
                ("operation", operation.to_owned()),
                ("status", status.to_string()),
            ],
        );
        self.observe(
            "coffer_request_duration_seconds",
            vec![
                ("mount", mount.to_owned()),
                ("operation", operation.to_owned()),
            ],
            seconds,
        );
    }

    /// Records one observation in a histogram.
    pub fn observe(&self, name: &'static str, labels: Labels, seconds: f64) {
        let mut m = crate::sync::lock(&self.inner);
        let h = m.histograms.entry((name, labels)).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i] += 1;
            }
        }
    }

    /// The Prometheus text exposition, with `gauges` computed by the caller added.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        let m = crate::sync::lock(&self.inner);
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), v) in m.counters.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{n}{} {v}", fmt_labels(labels, None));
            }
            for ((n, labels), h) in m.histograms.iter().filter(|((n, _), _)| n == name) {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {}",
                        fmt_labels(labels, Some(&bound.to_string())),
                        h.buckets[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{n}_bucket{} {}",
                    fmt_labels(labels, Some("+Inf")),
                    h.count
                );
                let _ = writeln!(out, "{n}_sum{} {}", fmt_labels(labels, None), h.sum);
                let _ = writeln!(out, "{n}_count{} {}", fmt_labels(labels, None), h.count);
            }
        }
        for g in gauges {
            let (name, help, kind) = (g.name, g.help, g.kind);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in &g.samples {
                let _ = writeln!(out, "{name}{} {value}", fmt_labels(labels, None));
            }
        }
        out
    }
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.request("secret/", "read", 200, 0.002);
        m.request("secret/", "read", 200, 0.02);
        m.inc("coffer_logins_total", vec![("method", "userpass".into())]);
        m.observe(
            "coffer_audit_write_duration_seconds",
            vec![("device", "file/".into())],
            0.0001,
        );
        let text = m.render(&[
            Gauge::single("coffer_sealed", "gauge", "1 when sealed", 0.0),
            Gauge {
                name: "coffer_audit_device_healthy",
                help: "1 when healthy",
                kind: "gauge",
                samples: vec![(vec![("device", "a/".into())], 1.0)],
            },
        ]);
        assert!(
            text.contains(
                "coffer_requests_total{mount=\"secret/\",operation=\"read\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("coffer_request_duration_seconds_bucket{mount=\"secret/\",operation=\"read\",le=\"0.0025\"} 1"), "{text}");
        assert!(text.contains(
            "coffer_request_duration_seconds_count{mount=\"secret/\",operation=\"read\"} 2"
        ));
        assert!(text.contains("coffer_logins_total{method=\"userpass\"} 1"));
        assert!(text.contains("# TYPE coffer_sealed gauge\ncoffer_sealed 0"));
        assert!(text.contains(
            "coffer_audit_write_duration_seconds_bucket{device=\"file/\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains("coffer_audit_device_healthy{device=\"a/\"} 1"));
        assert_eq!(escape("a\"b"), "a\\\"b");
    }
}
