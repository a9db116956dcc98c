//! Chat Cockpit: a live cockpit of support agents for the supervisors of a chat team.
//!
//! Metric logic lives in PostgreSQL (`migrations/`); this crate authenticates, validates,
//! calls SQL and serves HTTP.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod live;
pub mod model;
pub mod pgcluster;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
