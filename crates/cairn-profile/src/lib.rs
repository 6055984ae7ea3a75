//! Profiles: the routine around the engine. A resticprofile configuration file (TOML, YAML or
//! JSON) is read and resolved into command lines for cairn's own commands; hooks, webhooks,
//! status file, Prometheus metrics and schedules surround those runs. Nothing here touches a
//! repository: each step is run by the caller (the CLI), through [`run::StepRunner`].

pub mod capture;
pub mod config;
pub mod metrics;
pub mod notify;
pub mod outcome;
pub mod profilelock;
pub mod report;
pub mod resolve;
pub mod run;
pub mod schedlock;
pub mod schedule;
pub mod status;
pub mod streamerr;
