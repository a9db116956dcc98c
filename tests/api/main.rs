//! One integration-test binary: every module is one capability, tested over real HTTP
//! against a real PostgreSQL (a database of its own per test).

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod bench;
mod bodies;
mod busy;
mod cockpit;
mod definitions;
mod demo;
mod edge;
mod graphql;
mod health;
mod ingest;
mod ingest_differential;
mod ingest_edge;
mod insights;
mod insights_live;
mod live;
mod memory;
mod metrics;
mod nul;
mod ordering;
mod outages;
mod pooler;
mod reactivation;
mod refresh;
mod replica;
mod reporting;
mod screen;
mod search;
mod service_level;
mod slots;
mod snapshots;
mod sockets;
mod sql_api;
mod status;
