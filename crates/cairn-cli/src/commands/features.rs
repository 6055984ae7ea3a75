//! `features`: restic 0.18's feature flags, and where cairn stands on each. cairn has no
//! switchable features: each row says what cairn always does.

use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct Args {}

/// (name, restic's type, cairn's fixed value, what it means for cairn)
const FEATURES: &[(&str, &str, bool, &str)] = &[
    (
        "backend-error-redesign",
        "beta",
        true,
        "stuck HTTP requests time out and are retried (-o rest.timeout, s3.timeout, b2.timeout)",
    ),
    (
        "deprecate-legacy-index",
        "stable",
        true,
        "the index format of restic 0.1.0 is not read; `repair index` writes a current one",
    ),
    (
        "deprecate-s3-legacy-layout",
        "stable",
        true,
        "the S3 layout of restic up to 0.7.0 is not supported",
    ),
    (
        "device-id-for-hardlinks",
        "alpha",
        false,
        "the device id is stored for every node, as restic 0.14 and later do by default",
    ),
    (
        "explicit-s3-anonymous-auth",
        "stable",
        true,
        "S3 without credentials is refused",
    ),
    (
        "s3-restore",
        "alpha",
        false,
        "objects in S3 cold storage classes are not restored from there",
    ),
    (
        "safe-forget-keep-tags",
        "stable",
        true,
        "forget refuses a --keep-tag policy that would remove every snapshot",
    ),
];

pub fn run(_a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if g.json {
        let list: Vec<_> = FEATURES
            .iter()
            .map(|(name, ty, value, what)| {
                serde_json::json!({"name": name, "type": ty, "default": value, "description": what})
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(crate::exit::OK);
    }
    println!("All Feature Flags (cairn has no switches: each is fixed at the value shown):");
    println!("{:<27} {:<7} {:<8} Description", "Name", "Type", "Value");
    let rule = "-".repeat(100);
    println!("{rule}");
    for (name, ty, value, what) in FEATURES {
        println!("{name:<27} {ty:<7} {:<8} {what}", value.to_string());
    }
    println!("{rule}");
    Ok(crate::exit::OK)
}
