//! Ingest of the chat platform's events (spec 5.2): the body is read here (JSON array,
//! one JSON object, or NDJSON), bounded, and handed whole to `cockpit.ingest_events`, which
//! judges and stores every event in one round trip.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use crate::db::Pool;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::{self, DbError};

/// Largest accepted body.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Most events in one batch.
pub const MAX_EVENTS: usize = 50_000;

mod typed;

const INGEST_SQL: &str = include_str!("../sql/queries/ingest_events.sql");
const INGEST_WELL_FORMED_SQL: &str = include_str!("../sql/queries/ingest_well_formed.sql");

/// Longest organization id (as `cockpit.ingest_events` accepts it).
const MAX_ORG_CHARS: usize = 128;

/// Why a batch could not be judged at all (each event's own faults are rejections in the
/// answer instead).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is not a batch of events.
    #[error("{0}")]
    BadBody(String),
    /// The body holds more events than a batch may.
    #[error("{0}")]
    TooLarge(String),
    /// The database could not take the batch in time; send it again.
    #[error("the service is busy; try again shortly")]
    Busy,
    /// Anything else (a pool timeout among them: the API answers it as busy too).
    #[error(transparent)]
    Db(#[from] DbError),
}

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
    /// Positions, ids (when readable) and reasons of the events that cannot be judged:
    /// NDJSON lines that are not JSON, events PostgreSQL's `jsonb` would refuse.
    unreadable: Vec<(usize, Option<String>, String)>,
    /// The readable events as columns, when every one is a well-formed conversation event
    /// (the common case, judged without JSON in the database).
    columns: Option<typed::Columns>,
}

impl Batch {
    /// Whether the batch goes to the database as columns (the common case) rather than
    /// as JSON.
    pub fn is_columnar(&self) -> bool {
        self.columns.is_some()
    }

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
/// is an [`IngestError::BadBody`]; more than [`MAX_EVENTS`] events an
/// [`IngestError::TooLarge`]. NDJSON lines that are not JSON stay in the batch as
/// rejections of their own.
pub fn read_body(body: &[u8], ndjson: bool) -> Result<Batch, IngestError> {
    let batch = if ndjson {
        read_ndjson(body)
    } else {
        read_json(body)?
    };
    if batch.len() > MAX_EVENTS {
        return Err(IngestError::TooLarge(format!(
            "a batch holds at most {MAX_EVENTS} events; this one holds {}",
            batch.len()
        )));
    }
    Ok(batch)
}

fn read_json(body: &[u8]) -> Result<Batch, IngestError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| IngestError::BadBody("the body is not UTF-8 JSON".into()))?;
    // Where the text stops being JSON, in our words (never the parser's).
    let not_json = |e: serde_json::Error| {
        IngestError::BadBody(format!(
            "the body is not JSON (it stops being JSON at line {}, column {}): send a JSON \
             array of event objects, one event object, or NDJSON",
            e.line(),
            e.column()
        ))
    };
    match text.trim_start().as_bytes().first() {
        Some(b'[') => {
            let events: Vec<&RawValue> = serde_json::from_str(text).map_err(not_json)?;
            let mut batch = BatchBuilder::with_capacity(text.len());
            for (position, event) in events.into_iter().enumerate() {
                batch.push(position, event);
            }
            Ok(batch.finish())
        }
        Some(b'{') => {
            let event: &RawValue = serde_json::from_str(text).map_err(not_json)?;
            let mut batch = BatchBuilder::with_capacity(text.len());
            batch.push(0, event);
            Ok(batch.finish())
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
            Err(IngestError::BadBody(format!(
                "the body must be a JSON array of events or one event object, not {kind}"
            )))
        }
    }
}

fn read_ndjson(body: &[u8]) -> Batch {
    let mut batch = BatchBuilder::with_capacity(body.len() + 2);
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
            Ok(raw) => batch.push(position, raw),
            Err(message) => batch.unreadable.push((position, None, message)),
        }
    }
    batch.finish()
}

/// Collects a batch event by event, setting aside those PostgreSQL could not take.
struct BatchBuilder {
    json: String,
    positions: Vec<usize>,
    unreadable: Vec<(usize, Option<String>, String)>,
    columns: typed::Reader,
}

impl BatchBuilder {
    fn with_capacity(bytes: usize) -> Self {
        let mut json = String::with_capacity(bytes + 2);
        json.push('[');
        BatchBuilder {
            json,
            positions: Vec::new(),
            unreadable: Vec::new(),
            columns: typed::Reader::default(),
        }
    }

    fn push(&mut self, position: usize, event: &RawValue) {
        if let Some(problem) = jsonb_problem(event.get()) {
            self.unreadable
                .push((position, event_id(event.get()), problem));
            return;
        }
        if !self.positions.is_empty() {
            self.json.push(',');
        }
        self.json.push_str(event.get());
        self.positions.push(position);
        self.columns.push(event.get());
    }

    fn finish(mut self) -> Batch {
        self.json.push(']');
        Batch {
            json: self.json,
            positions: self.positions,
            unreadable: self.unreadable,
            columns: self.columns.finish(),
        }
    }
}

/// The `id` of an event that is set aside, when it is a plain string of a usable length.
fn event_id(raw: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        id: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Id>(raw).ok()?.id? {
        serde_json::Value::String(id) if !id.contains('\0') => {
            Some(id.chars().take(MAX_ID_CHARS).collect())
        }
        _ => None,
    }
}

/// Longest id an answer repeats (the database refuses longer ones anyway).
const MAX_ID_CHARS: usize = 128;
/// `numeric`'s limits: digits before the decimal point, digits after it.
const NUMERIC_MAX_INTEGER_DIGITS: i64 = 131_072;
const NUMERIC_MAX_SCALE: i64 = 16_383;

/// Why PostgreSQL's `jsonb` would refuse this event (valid JSON text), if it would: a
/// `\u0000` escape (text cannot hold NUL), an unpaired UTF-16 surrogate escape, or a number
/// outside `numeric`'s range. Such an event is that event's `INVALID`; its neighbours go on.
pub fn jsonb_problem(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let hex4 = |at: usize| {
        b.get(at..at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] != b'\\' {
                        i += 1;
                        continue;
                    }
                    if b.get(i + 1) != Some(&b'u') {
                        i += 2;
                        continue;
                    }
                    let code = hex4(i + 2)?;
                    match code {
                        0 => return Some("a string holds \\u0000, which cannot be stored".into()),
                        0xD800..=0xDBFF => {
                            let low = (b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u'))
                                .then(|| hex4(i + 8))
                                .flatten();
                            if !low.is_some_and(|l| (0xDC00..=0xDFFF).contains(&l)) {
                                return Some(format!(
                                    "a string holds the unpaired UTF-16 surrogate \\u{code:04x}"
                                ));
                            }
                            i += 12;
                        }
                        0xDC00..=0xDFFF => {
                            return Some(format!(
                                "a string holds the unpaired UTF-16 surrogate \\u{code:04x}"
                            ))
                        }
                        _ => i += 6,
                    }
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                if let Some(problem) = numeric_problem(&raw[start..i]) {
                    return Some(problem);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Whether a JSON number fits PostgreSQL's `numeric` (at most 131,072 digits before the
/// decimal point and 16,383 after it, trailing zeros included).
fn numeric_problem(number: &str) -> Option<String> {
    let unsigned = number.strip_prefix('-').unwrap_or(number);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    // Exponents beyond any limit saturate (and are then refused).
    let exponent: i64 =
        exponent
            .trim_start_matches('+')
            .parse()
            .unwrap_or(if exponent.starts_with('-') {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            });
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = integer.len() as i64 + fraction.len() as i64;
    let point = integer.len() as i64 + exponent;
    let first_significant = integer
        .bytes()
        .chain(fraction.bytes())
        .position(|d| d != b'0')
        .map(|p| p as i64);
    let integer_digits = first_significant.map_or(0, |z| point - z);
    let scale = digits - point;
    if integer_digits > NUMERIC_MAX_INTEGER_DIGITS || scale > NUMERIC_MAX_SCALE {
        return Some(format!(
            "the number {} is out of range (at most {NUMERIC_MAX_INTEGER_DIGITS} digits before \
             the decimal point and {NUMERIC_MAX_SCALE} after it)",
            if number.len() > 40 {
                &number[..40]
            } else {
                number
            }
        ));
    }
    None
}

/// One ingest at a time per organization and instance, waited for *outside* the pool: the
/// database serializes an organization's batches anyway (its advisory lock), so queued
/// batches of one busy tenant would otherwise each hold a pooled connection while they
/// wait, and starve every other tenant and `/readyz`.
#[derive(Debug, Default)]
pub struct OrgGate {
    orgs: std::sync::Mutex<HashMap<String, Weak<Semaphore>>>,
}

/// Entries kept before the gate forgets organizations that have nothing in flight.
const GATE_PRUNE_AT: usize = 1024;

impl OrgGate {
    /// Waits for `org`'s turn; the turn lasts as long as the permit.
    pub async fn enter(&self, org: &str) -> Result<OwnedSemaphorePermit, IngestError> {
        let semaphore = {
            // A panic while holding this lock leaves a consistent map: keep going.
            let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
            if orgs.len() >= GATE_PRUNE_AT {
                orgs.retain(|_, gate| gate.strong_count() > 0);
            }
            match orgs.get(org).and_then(Weak::upgrade) {
                Some(semaphore) => semaphore,
                None => {
                    let semaphore = Arc::new(Semaphore::new(1));
                    orgs.insert(org.to_string(), Arc::downgrade(&semaphore));
                    semaphore
                }
            }
        };
        // The semaphore is never closed.
        semaphore
            .acquire_owned()
            .await
            .map_err(|_| IngestError::Busy)
    }
}

/// Judges and stores a batch for `org` in one transaction; the events it accepts are
/// durable when this returns. Dropped before it returns, it cancels its statement
/// ([`db::run`]).
pub async fn store(
    pool: &Pool,
    gate: &OrgGate,
    org: &str,
    batch: Batch,
) -> Result<IngestReport, IngestError> {
    // The SQL refuses it too (22023), but in its own words.
    if org.trim().is_empty() || org.chars().count() > MAX_ORG_CHARS {
        return Err(IngestError::BadBody(format!(
            "the token's organization id must have 1 to {MAX_ORG_CHARS} characters"
        )));
    }
    let mut report = if batch.positions.is_empty() {
        IngestReport {
            accepted: 0,
            duplicates: 0,
            rejected: Vec::new(),
        }
    } else {
        let _turn = gate.enter(org).await?;
        let row = db::run(pool, async |client| {
            let rows = match &batch.columns {
                Some(c) => {
                    db::query_on(
                        pool,
                        client,
                        INGEST_WELL_FORMED_SQL,
                        &[
                            &org,
                            &c.ids,
                            &c.types,
                            &c.ats,
                            &c.conversations,
                            &c.agents,
                            &c.bys,
                            &c.products,
                            &c.channels,
                        ],
                    )
                    .await?
                }
                None => db::query_on(pool, client, INGEST_SQL, &[&org, &batch.json]).await?,
            };
            rows.into_iter()
                .next()
                .ok_or_else(|| db::DbError::Unexpected("ingest answered no row".into()))
        })
        .await
        .map_err(|e| match e.postgres_code() {
            // statement_timeout: the batch could not be judged in time.
            Some(code) if code == tokio_postgres::error::SqlState::QUERY_CANCELED => {
                tracing::warn!(org, error = %e, "ingest statement cancelled");
                IngestError::Busy
            }
            _ => IngestError::from(e),
        })?;
        let answer: serde_json::Value = row.try_get(0).map_err(DbError::from)?;
        let mut report: IngestReport = serde_json::from_value(answer)
            .map_err(|e| IngestError::Db(DbError::Unexpected(format!("ingest answer: {e}"))))?;
        for rejection in &mut report.rejected {
            rejection.index = batch.positions[rejection.index];
        }
        report
    };
    report.rejected.extend(
        batch
            .unreadable
            .into_iter()
            .map(|(index, id, message)| Rejection {
                index,
                id,
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
) -> Result<IngestReport, IngestError> {
    let batch = read_body(events.to_string().as_bytes(), false)?;
    store(pool, &OrgGate::default(), org, batch).await
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
                matches!(read_body(body, false), Err(IngestError::BadBody(_))),
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
            Err(IngestError::TooLarge(_))
        ));
        let ndjson = "{}\n".repeat(MAX_EVENTS + 1);
        assert!(matches!(
            read_body(ndjson.as_bytes(), true),
            Err(IngestError::TooLarge(_))
        ));
        assert!(read_body(&ndjson.as_bytes()[3..], true).is_ok());
    }

    #[test]
    fn what_jsonb_refuses_is_found_and_the_rest_passes() {
        for bad in [
            r#"{"id":"a","x":"\u0000"}"#,
            r#"{"id":"a","x":"\ud800"}"#,
            r#"{"id":"a","x":"\ud800\u0041"}"#,
            r#"{"id":"a","x":"\udc00"}"#,
            r#"{"id":"a","x":1e1000000}"#,
            r#"{"id":"a","x":-1e131072}"#,
            r#"{"id":"a","x":1000e131069}"#,
            r#"{"id":"a","x":1e-16384}"#,
            r#"{"id":"a","x":1e99999999999999999999999}"#,
            r#"{"id":"a","x":-0.0e-99999999999999999999}"#,
        ] {
            assert!(jsonb_problem(bad).is_some(), "{bad}");
        }
        for good in [
            r#"{"id":"a","x":"\\u0000 is text","y":"\ud83d\ude00","z":"\u00e7"}"#,
            r#"{"id":"a","x":1e131071,"y":12.5e131070,"z":0.001e131074}"#,
            r#"{"id":"a","x":1e-16383,"y":0,"z":0e99999999}"#,
            r#"{"id":"a","x":[1,2.5,-3e2],"y":{"n":null,"t":true}}"#,
        ] {
            assert_eq!(jsonb_problem(good), None, "{good}");
        }
    }

    #[test]
    fn an_event_jsonb_refuses_is_set_aside_with_its_id_and_neighbours_kept() {
        let batch =
            read_body(br#"[{"id":"a"},{"id":"b","x":"\u0000"},{"id":"c"}]"#, false).unwrap();
        assert_eq!(batch.positions, vec![0, 2]);
        assert_eq!(batch.unreadable[0].0, 1);
        assert_eq!(batch.unreadable[0].1.as_deref(), Some("b"));
        let events: Vec<serde_json::Value> = serde_json::from_str(&batch.json).unwrap();
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn content_types_choose_the_format() {
        assert!(is_ndjson(Some("application/x-ndjson; charset=utf-8")));
        assert!(is_ndjson(Some("Application/JSONL")));
        assert!(!is_ndjson(Some("application/json")));
        assert!(!is_ndjson(None));
    }
}
