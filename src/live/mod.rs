//! What keeps the cockpit live: the periodic refresh of the daily columns, the listener of
//! PostgreSQL notifications, and the hub that fans them out to subscriptions.

pub mod hub;
pub mod listener;
pub mod refresher;
