//! The virtual directories above the snapshots (`ids/`, `snapshots/`, `hosts/H/`, `tags/T/`
//! and their `latest` links), built from `--path-template` and `--time-template` the way
//! restic's mount names them.

use cairn_core::format::gotime;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::Id;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// restic's default path templates.
pub const DEFAULT_PATH_TEMPLATES: [&str; 4] =
    ["ids/%i", "snapshots/%T", "hosts/%h/%T", "tags/%t/%T"];
/// Go's `time.RFC3339`, restic's default `--time-template`.
pub const DEFAULT_TIME_TEMPLATE: &str = "2006-01-02T15:04:05Z07:00";

/// One snapshot as the layout refers to it.
pub struct SnapRef {
    pub id: Id,
    pub snap: Snapshot,
}

/// What a path of the layout is.
#[derive(Clone)]
pub enum Entry {
    /// A directory of the layout: names of its children, sorted.
    Dir(BTreeSet<String>),
    /// The root directory of a snapshot.
    Snapshot(Arc<SnapRef>),
    /// A `latest` link: its target (a sibling's name) and the snapshot it names.
    Link(String, Arc<SnapRef>),
}

/// The whole layout: paths ("" is the root, others start with '/') → entries.
#[derive(Default)]
pub struct Layout {
    pub entries: HashMap<String, Entry>,
}

/// A substituted value as a single file name: restic turns '/' into '_' in tags (and names
/// "", "." and ".." `_`, `_`, `__`); cairn does so for every value taken from a snapshot, and
/// NUL too, so that a forged hostname cannot add directory levels or break a name.
fn name_from_value(v: &str) -> String {
    match v {
        "" | "." => "_".into(),
        ".." => "__".into(),
        _ => v.replace(['/', '\0'], "_"),
    }
}

/// Go's `path.Clean` of an absolute path, without the leading '/' kept for the root ("").
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("/{}", parts.join("/"))
    }
}

/// The paths a template gives for a snapshot, and the time suffix when it ends with `%T`
/// (restic's rule: only then is the time the unique last element, with a `latest` beside it).
fn expand(template: &str, time_template: &str, id: &Id, s: &Snapshot) -> (Vec<String>, String) {
    let time = name_from_value(&gotime::format_layout(&s.time, time_template));
    let mut outs = vec![String::new()];
    let mut chars = template.chars().peekable();
    let mut time_at_end = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            outs.iter_mut().for_each(|o| o.push(c));
            continue;
        }
        let Some(v) = chars.next() else {
            break;
        };
        let repl = match v {
            'T' => {
                if chars.peek().is_none() {
                    time_at_end = true;
                    continue;
                }
                time.clone()
            }
            't' => {
                if s.tags.is_empty() {
                    return (Vec::new(), String::new());
                }
                // One path per tag.
                let mut n = Vec::with_capacity(outs.len() * s.tags.len());
                for t in &s.tags {
                    for o in &outs {
                        n.push(format!("{o}{}", name_from_value(t)));
                    }
                }
                outs = n;
                continue;
            }
            'i' => id.short(),
            'I' => id.to_hex(),
            'u' => name_from_value(&s.username),
            'h' => name_from_value(&s.hostname),
            other => other.to_string(),
        };
        outs.iter_mut().for_each(|o| o.push_str(&repl));
    }
    (outs, if time_at_end { time } else { String::new() })
}

/// The directory part of a template before its first placeholder (restic's `staticPrefix`):
/// these directories exist even with no snapshot in them.
fn static_prefix(template: &str) -> String {
    let mut in_verb = false;
    for (i, c) in template.char_indices() {
        if in_verb {
            in_verb = false;
            if "iIuhtT".contains(c) {
                let p = &template[..i - 1];
                return p.rfind('/').map(|k| p[..k].to_string()).unwrap_or_default();
            }
        } else if c == '%' {
            in_verb = true;
        }
    }
    String::new()
}

impl Layout {
    /// The layout for `snaps` (any order; sorted here by time, then id, as restic does).
    pub fn build(
        mut snaps: Vec<Arc<SnapRef>>,
        templates: &[String],
        time_template: &str,
    ) -> Layout {
        snaps.sort_by(|a, b| a.snap.time.cmp(&b.snap.time).then(a.id.cmp(&b.id)));
        let mut l = Layout::default();
        l.entries.insert(String::new(), Entry::Dir(BTreeSet::new()));
        for t in templates {
            let p = static_prefix(t);
            if !p.is_empty() {
                l.add(&clean(&format!("/{p}")), None);
            }
        }
        let mut latest: HashMap<String, cairn_core::format::gotime::GoTime> = HashMap::new();
        for s in &snaps {
            for t in templates {
                let (paths, suffix) = expand(t, time_template, &s.id, &s.snap);
                for p in paths {
                    let p = if p.is_empty() { p } else { format!("/{p}") };
                    let mut name = suffix.clone();
                    let mut i = 1;
                    while l.entries.contains_key(&clean(&format!("{p}{name}"))) {
                        name = format!("{suffix}-{i}");
                        i += 1;
                    }
                    let path = clean(&format!("{p}{name}"));
                    if path.is_empty() {
                        continue;
                    }
                    l.add(&path, Some(Entry::Snapshot(s.clone())));
                    if !suffix.is_empty() && latest.get(&p).is_none_or(|t| s.snap.time >= *t) {
                        let target = path.rsplit('/').next().unwrap_or_default().to_string();
                        l.add(
                            &clean(&format!("{p}/latest")),
                            Some(Entry::Link(target, s.clone())),
                        );
                        latest.insert(p, s.snap.time);
                    }
                }
            }
        }
        l
    }

    /// Sets `path` to `e` (a directory when None, keeping its children) and registers it in
    /// every ancestor.
    fn add(&mut self, path: &str, e: Option<Entry>) {
        match e {
            Some(e) => {
                self.entries.insert(path.to_string(), e);
            }
            None => {
                self.entries
                    .entry(path.to_string())
                    .or_insert_with(|| Entry::Dir(BTreeSet::new()));
            }
        }
        let mut child = path.to_string();
        while let Some(k) = child.rfind('/') {
            let parent = child[..k].to_string();
            let name = child[k + 1..].to_string();
            let e = self
                .entries
                .entry(parent.clone())
                .or_insert_with(|| Entry::Dir(BTreeSet::new()));
            match e {
                Entry::Dir(names) => {
                    if !names.insert(name) {
                        return;
                    }
                }
                // A snapshot or link where a directory is needed (a template that nests below
                // another one's snapshots): the directory wins, as in restic.
                _ => {
                    let mut names = BTreeSet::new();
                    names.insert(name);
                    *e = Entry::Dir(names);
                }
            }
            child = parent;
        }
    }

    /// The children of a directory path, or None if it is not one.
    pub fn children(&self, path: &str) -> Option<&BTreeSet<String>> {
        match self.entries.get(path)? {
            Entry::Dir(n) => Some(n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(n: u8, time: &str, host: &str, tags: &[&str]) -> Arc<SnapRef> {
        let json = format!(
            r#"{{"time":"{time}","tree":"{}","paths":["/x"],"hostname":"{host}","tags":{}}}"#,
            Id::hash(&[n]).to_hex(),
            serde_json_tags(tags)
        );
        Arc::new(SnapRef {
            id: Id::hash(&[n, n]),
            snap: Snapshot::parse(json.as_bytes()).expect("snapshot"),
        })
    }

    fn serde_json_tags(tags: &[&str]) -> String {
        let q: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        format!("[{}]", q.join(","))
    }

    #[test]
    fn restic_layout_with_duplicates_and_latest() {
        let snaps = vec![
            snap(1, "2026-01-01T10:00:00Z", "a", &["x", "y/z"]),
            snap(2, "2026-01-01T10:00:00Z", "b", &[]),
            snap(3, "2026-01-02T10:00:00Z", "a", &[".."]),
        ];
        let t: Vec<String> = DEFAULT_PATH_TEMPLATES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let l = Layout::build(snaps.clone(), &t, DEFAULT_TIME_TEMPLATE);
        let names = |p: &str| -> Vec<String> { l.children(p).expect(p).iter().cloned().collect() };
        assert_eq!(names(""), ["hosts", "ids", "snapshots", "tags"]);
        assert_eq!(
            names("/snapshots"),
            [
                "2026-01-01T10:00:00Z",
                "2026-01-01T10:00:00Z-1",
                "2026-01-02T10:00:00Z",
                "latest"
            ]
        );
        assert_eq!(names("/hosts"), ["a", "b"]);
        assert_eq!(names("/tags"), ["__", "x", "y_z"]);
        assert_eq!(names("/ids").len(), 3);
        match l.entries.get("/snapshots/latest") {
            Some(Entry::Link(t, s)) => {
                assert_eq!(t, "2026-01-02T10:00:00Z");
                assert_eq!(s.id, snaps[2].id);
            }
            _ => panic!("no latest link"),
        }
        // Same time: the one with the larger id sorts last and gets "-1" and the link.
        let (first, second) = if snaps[0].id < snaps[1].id {
            (0, 1)
        } else {
            (1, 0)
        };
        match l.entries.get("/snapshots/2026-01-01T10:00:00Z-1") {
            Some(Entry::Snapshot(s)) => assert_eq!(s.id, snaps[second].id),
            _ => panic!("no -1"),
        }
        let _ = first;
        assert!(matches!(
            l.entries.get("/hosts/b/latest"),
            Some(Entry::Link(..))
        ));
    }

    #[test]
    fn prefixes_and_templates() {
        assert_eq!(static_prefix("ids/%i"), "ids");
        assert_eq!(static_prefix("a/b/c%T"), "a/b");
        assert_eq!(static_prefix("%T"), "");
        assert_eq!(static_prefix("plain"), "");
        assert_eq!(clean("/a//b/./../c/"), "/a/c");
        assert_eq!(clean("/.."), "");
    }
}
