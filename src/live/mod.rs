//! What keeps the cockpit live: the periodic refresh of the daily columns.

pub mod refresher;
