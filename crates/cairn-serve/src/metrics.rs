//! `/metrics` in Prometheus' text format, with rest-server's counters: files read, written
//! and deleted (and their bytes), labelled by user, repository folder and file type.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Clone, Copy)]
pub enum Op {
    Read,
    Write,
    Delete,
}

const NAMES: [(&str, &str); 6] = [
    ("rest_server_blob_read_total", "Total number of blobs read"),
    (
        "rest_server_blob_read_bytes_total",
        "Total number of bytes read from blobs",
    ),
    (
        "rest_server_blob_write_total",
        "Total number of blobs written",
    ),
    (
        "rest_server_blob_write_bytes_total",
        "Total number of bytes written to blobs",
    ),
    (
        "rest_server_blob_delete_total",
        "Total number of blobs deleted",
    ),
    (
        "rest_server_blob_delete_bytes_total",
        "Total number of bytes of blobs deleted",
    ),
];

/// user, repository folder, file type
type Labels = (String, String, &'static str);

#[derive(Default)]
pub struct Metrics {
    /// Per label set: the six counters in the order of `NAMES`.
    counters: Mutex<BTreeMap<Labels, [u64; 6]>>,
}

impl Metrics {
    pub fn record(&self, user: &str, repo: &str, kind: &'static str, op: Op, bytes: u64) {
        let i = match op {
            Op::Read => 0,
            Op::Write => 2,
            Op::Delete => 4,
        };
        let mut m = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let c = m
            .entry((user.to_string(), repo.to_string(), kind))
            .or_default();
        c[i] += 1;
        c[i + 1] += bytes;
    }

    pub fn render(&self) -> String {
        let m = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (i, (name, help)) in NAMES.iter().enumerate() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((user, repo, kind), c) in m.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{repo=\"{}\",type=\"{}\",user=\"{}\"}} {}",
                    escape(repo),
                    kind,
                    escape(user),
                    c[i]
                );
            }
        }
        out
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
    fn renders_counters() {
        let m = Metrics::default();
        m.record("alice", "alice/laptop", "data", Op::Write, 100);
        m.record("alice", "alice/laptop", "data", Op::Write, 50);
        m.record("a\"b", "", "locks", Op::Delete, 7);
        let t = m.render();
        assert!(t.contains(
            "rest_server_blob_write_bytes_total{repo=\"alice/laptop\",type=\"data\",user=\"alice\"} 150"
        ));
        assert!(t.contains(
            "rest_server_blob_write_total{repo=\"alice/laptop\",type=\"data\",user=\"alice\"} 2"
        ));
        assert!(
            t.contains("rest_server_blob_delete_total{repo=\"\",type=\"locks\",user=\"a\\\"b\"} 1")
        );
        assert!(t.contains("# TYPE rest_server_blob_read_total counter"));
    }
}
