//! Ingest of the chat platform's events (spec 5.2): the body is read here (JSON array,
//! one JSON object, or NDJSON), bounded, and handed whole to `cockpit.ingest_events`, which
//! judges and stores every event in one round trip.

use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::db::DbError;
use crate::error::ApiError;

/// Largest accepted body.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Most events in one batch.
pub const MAX_EVENTS: usize = 50_000;

const INGEST_SQL: &str = include_str!("../sql/queries/ingest_events.sql");

/// The answer to a batch, as `cockpit.ingest_events` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Events stored by this batch.
    pub accepted: u64,
    /// Events already stored with the same content.
    pub duplicates: u64,
    /// Events refused, in batch order.
    pub rejected: Vec<Rejection>,
}

/// One refused event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// 0-based position in the batch (NDJSON: among the non-blank lines).
    pub index: usize,
    /// The event's `id` when it had a string one.
    pub id: Option<String>,
    /// `INVALID`, `UNKNOWN_AGENT`, `UNKNOWN_PRODUCT`, `UNKNOWN_CONVERSATION`, `CONFLICT`,
    /// `OUT_OF_WINDOW` or `INVALID_STATE`.
    pub code: String,
    /// What was wrong, for the platform's developers.
    pub message: String,
}

/// A body read into events: the readable ones as one JSON array text, and the lines that
/// were not JSON.
#[derive(Debug)]
pub struct Batch {
    /// The readable events, as a JSON array text.
    json: String,
    /// For each event of `json`, its position in the batch.
    positions: Vec<usize>,
    /// Positions and reasons of the NDJSON lines that are not JSON.
    unreadable: Vec<(usize, String)>,
}

impl Batch {
    /// Number of events in the batch, readable or not.
    pub fn len(&self) -> usize {
        self.positions.len() + self.unreadable.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the `Content-Type` names NDJSON (`application/x-ndjson`, `application/jsonl`…).
pub fn is_ndjson(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        mime.as_str(),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonl"
    )
}

/// Reads a body into a batch. JSON that is not an array or an object, or not JSON at all,
/// is a [`ApiError::BadRequest`]; more than [`MAX_EVENTS`] events a
/// [`ApiError::PayloadTooLarge`]. NDJSON lines that are not JSON stay in the batch as
/// rejections of their own.
pub fn read_body(body: &[u8], ndjson: bool) -> Result<Batch, ApiError> {
    let batch = if ndjson {
        read_ndjson(body)
    } else {
        read_json(body)?
    };
    if batch.len() > MAX_EVENTS {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch holds at most {MAX_EVENTS} events; this one holds {}",
            batch.len()
        )));
    }
    Ok(batch)
}

fn read_json(body: &[u8]) -> Result<Batch, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8 JSON".into()))?;
    let not_json =
        |e: serde_json::Error| ApiError::BadRequest(format!("the body is not JSON: {e}"));
    match text.trim_start().as_bytes().first() {
        Some(b'[') => {
            let events: Vec<&RawValue> = serde_json::from_str(text).map_err(not_json)?;
            Ok(Batch {
                json: text.to_string(),
                positions: (0..events.len()).collect(),
                unreadable: Vec::new(),
            })
        }
        Some(b'{') => {
            let event: &RawValue = serde_json::from_str(text).map_err(not_json)?;
            Ok(Batch {
                json: format!("[{}]", event.get()),
                positions: vec![0],
                unreadable: Vec::new(),
            })
        }
        _ => {
            // Valid JSON of another kind (`42`, `"x"`) or not JSON at all: either way a 400.
            let value: serde_json::Value = serde_json::from_str(text).map_err(not_json)?;
            let kind = match value {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                _ => "not an array",
            };
            Err(ApiError::BadRequest(format!(
                "the body must be a JSON array of events or one event object, not {kind}"
            )))
        }
    }
}

fn read_ndjson(body: &[u8]) -> Batch {
    let mut json = String::with_capacity(body.len() + 2);
    json.push('[');
    let mut positions = Vec::new();
    let mut unreadable = Vec::new();
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
    for (position, line) in lines.enumerate() {
        let parsed = std::str::from_utf8(line)
            .map_err(|_| "the line is not UTF-8".to_string())
            .and_then(|text| {
                serde_json::from_str::<&RawValue>(text)
                    .map_err(|e| format!("the line is not JSON: {e}"))
            });
        match parsed {
            Ok(raw) => {
                if !positions.is_empty() {
                    json.push(',');
                }
                json.push_str(raw.get());
                positions.push(position);
            }
            Err(message) => unreadable.push((position, message)),
        }
    }
    json.push(']');
    Batch {
        json,
        positions,
        unreadable,
    }
}

/// Judges and stores a batch for `org` in one transaction; the events it accepts are
/// durable when this returns.
pub async fn store(pool: &Pool, org: &str, batch: Batch) -> Result<IngestReport, ApiError> {
    let mut report = if batch.positions.is_empty() {
        IngestReport {
            accepted: 0,
            duplicates: 0,
            rejected: Vec::new(),
        }
    } else {
        let client = pool.get().await.map_err(DbError::from)?;
        let statement = client
            .prepare_cached(INGEST_SQL)
            .await
            .map_err(DbError::from)?;
        let row = client
            .query_one(&statement, &[&org, &batch.json])
            .await
            .map_err(|e| match e.code() {
                // The function's own argument checks (e.g. an over-long organization id).
                Some(code) if *code == tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE => {
                    ApiError::BadRequest(
                        e.as_db_error()
                            .map(|d| d.message().to_string())
                            .unwrap_or_default(),
                    )
                }
                _ => ApiError::Internal(DbError::from(e)),
            })?;
        let answer: serde_json::Value = row.get(0);
        let mut report: IngestReport = serde_json::from_value(answer)
            .map_err(|e| ApiError::Internal(DbError::Unexpected(format!("ingest answer: {e}"))))?;
        for rejection in &mut report.rejected {
            rejection.index = batch.positions[rejection.index];
        }
        report
    };
    report.rejected.extend(
        batch
            .unreadable
            .into_iter()
            .map(|(index, message)| Rejection {
                index,
                id: None,
                code: "INVALID".into(),
                message,
            }),
    );
    report.rejected.sort_by_key(|r| r.index);
    Ok(report)
}

/// Ingests events given as a JSON value (an array, or one object) for `org`, exactly as
/// the endpoint would: for tools inside the service (the demo).
pub async fn store_json(
    pool: &Pool,
    org: &str,
    events: &serde_json::Value,
) -> Result<IngestReport, ApiError> {
    let batch = read_body(events.to_string().as_bytes(), false)?;
    store(pool, org, batch).await
}

/// Counts a batch's events in `cockpit_ingest_events_total`.
pub fn count(report: &IngestReport) {
    metrics::counter!("cockpit_ingest_events_total", "result" => "accepted")
        .increment(report.accepted);
    metrics::counter!("cockpit_ingest_events_total", "result" => "duplicate")
        .increment(report.duplicates);
    for rejection in &report.rejected {
        metrics::counter!("cockpit_ingest_events_total", "result" => "rejected", "code" => rejection.code.clone())
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_keeps_positions_among_non_blank_lines() {
        let batch = read_body(
            b"{\"id\":\"a\"}\n\n  \n{\"id\":\nnot json\r\n{\"id\":\"b\"}\r\n",
            true,
        )
        .unwrap();
        assert_eq!(batch.positions, vec![0, 3]);
        assert_eq!(
            batch.unreadable.iter().map(|u| u.0).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let events: Vec<serde_json::Value> = serde_json::from_str(&batch.json).unwrap();
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn json_scalars_and_garbage_are_bad_requests() {
        for body in [&b"42"[..], b"\"x\"", b"null", b"{not json", b"", b"[1,"] {
            assert!(
                matches!(read_body(body, false), Err(ApiError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn one_object_is_a_batch_of_one_and_empty_array_is_empty() {
        assert_eq!(read_body(br#"{"id":"x"}"#, false).unwrap().len(), 1);
        assert!(read_body(b" [ ] ", false).unwrap().is_empty());
    }

    #[test]
    fn more_than_the_event_limit_is_too_large() {
        let body = format!("[{}]", vec!["{}"; MAX_EVENTS + 1].join(","));
        assert!(matches!(
            read_body(body.as_bytes(), false),
            Err(ApiError::PayloadTooLarge(_))
        ));
        let ndjson = "{}\n".repeat(MAX_EVENTS + 1);
        assert!(matches!(
            read_body(ndjson.as_bytes(), true),
            Err(ApiError::PayloadTooLarge(_))
        ));
        assert!(read_body(&ndjson.as_bytes()[3..], true).is_ok());
    }

    #[test]
    fn content_types_choose_the_format() {
        assert!(is_ndjson(Some("application/x-ndjson; charset=utf-8")));
        assert!(is_ndjson(Some("Application/JSONL")));
        assert!(!is_ndjson(Some("application/json")));
        assert!(!is_ndjson(None));
    }
}
