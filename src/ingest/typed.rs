//! The common case of a batch, read here into one column per field for
//! `cockpit.ingest_well_formed`: PostgreSQL then judges it without parsing any JSON.
//!
//! An event qualifies when it is a well-formed conversation event by the exact path's own
//! rules (`cockpit.string_problem`, `cockpit.parse_instant` in the migrations): these
//! checks are never looser than the database's, so an event read here is one the database
//! would read the same way. A batch qualifies when all its readable events do and no id is
//! repeated; any other batch goes to `cockpit.ingest_events` as JSON, whole.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;

use crate::model::Channel;

/// Longest id, conversation, agent or product id (characters), as in the database.
const MAX_ID: usize = 128;
/// Longest channel text.
const MAX_CHANNEL: usize = 16;

/// The fields of an event that the judgement reads; unknown fields are ignored, a field
/// of another JSON type than string makes the event not qualify.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    conversation: Option<Cow<'a, str>>,
    #[serde(borrow)]
    agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    by: Option<Cow<'a, str>>,
    #[serde(borrow)]
    product: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
}

/// A batch as columns: event i of the batch's readable events at position i of each.
#[derive(Debug, Default)]
pub struct Columns {
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub ats: Vec<String>,
    pub conversations: Vec<String>,
    pub agents: Vec<Option<String>>,
    pub bys: Vec<Option<String>>,
    pub products: Vec<Option<String>>,
    pub channels: Vec<Option<String>>,
}

/// Builds [`Columns`] event by event; gives up (for good) at the first event that does not
/// qualify.
#[derive(Debug, Default)]
pub struct Reader {
    columns: Columns,
    seen: HashSet<String>,
    failed: bool,
}

/// A non-empty (not only spaces, as `btrim` sees it) string of at most `max` characters.
fn usable(value: Option<&str>, max: usize) -> bool {
    value.is_some_and(|v| !v.trim_matches(' ').is_empty() && v.chars().count() <= max)
}

fn owned(value: Option<Cow<'_, str>>) -> Option<String> {
    value.map(Cow::into_owned)
}

impl Reader {
    /// Reads one readable event (its JSON text).
    pub fn push(&mut self, raw: &str) {
        if self.failed {
            return;
        }
        if !self.read(raw) {
            self.failed = true;
            self.columns = Columns::default();
            self.seen = HashSet::new();
        }
    }

    fn read(&mut self, raw: &str) -> bool {
        let Ok(wire) = serde_json::from_str::<Wire>(raw) else {
            return false;
        };
        let (Some(id), Some(kind), Some(at), Some(conversation)) =
            (&wire.id, &wire.kind, &wire.at, &wire.conversation)
        else {
            return false;
        };
        if !usable(Some(id.as_ref()), MAX_ID)
            || !usable(Some(conversation.as_ref()), MAX_ID)
            || !instant_shape_ok(at)
        {
            return false;
        }
        let (agent, by, product, channel) = match kind.as_ref() {
            "conversation_opened" => {
                let channel = wire.channel.as_deref();
                let known = channel.is_some_and(|c| {
                    c.is_ascii() && Channel::parse(&c.to_ascii_uppercase()).is_some()
                });
                if !usable(wire.product.as_deref(), MAX_ID)
                    || !usable(channel, MAX_CHANNEL)
                    || !known
                {
                    return false;
                }
                (None, None, owned(wire.product), owned(wire.channel))
            }
            "customer_message" => (None, None, None, None),
            "assigned" => {
                if !usable(wire.agent.as_deref(), MAX_ID)
                    || (wire.by.is_some() && !usable(wire.by.as_deref(), MAX_ID))
                {
                    return false;
                }
                (owned(wire.agent), owned(wire.by), None, None)
            }
            "agent_message" | "resolved" | "reactivated" => {
                if !usable(wire.agent.as_deref(), MAX_ID) {
                    return false;
                }
                (owned(wire.agent), None, None, None)
            }
            // Entity events, unknown types: the exact path, whole batch.
            _ => return false,
        };
        if !self.seen.insert(id.to_string()) {
            return false; // an id twice: only the exact path can tell duplicate from conflict
        }
        let c = &mut self.columns;
        c.ids.push(id.to_string());
        c.types.push(kind.to_string());
        c.ats.push(at.to_string());
        c.conversations.push(conversation.to_string());
        c.agents.push(agent);
        c.bys.push(by);
        c.products.push(product);
        c.channels.push(channel);
        true
    }

    /// The columns, when every event qualified.
    pub fn finish(self) -> Option<Columns> {
        (!self.failed).then_some(self.columns)
    }
}

/// Whether `p` has the shape `cockpit.parse_instant` accepts, with fields in range, so that
/// PostgreSQL reads it as the same instant without error: `YYYY-MM-DD[Tt ]HH:MM:SS`,
/// an optional fraction of 1 to 9 digits, then `Z`/`z` or `±HH:MM` (hours up to 15).
pub fn instant_shape_ok(p: &str) -> bool {
    let b = p.as_bytes();
    if b.len() > 40 || b.len() < 20 {
        return false;
    }
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let number = |from: usize, len: usize| -> u32 {
        b[from..from + len]
            .iter()
            .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let fixed = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if !fixed.iter().all(|&i| digit(i))
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while digit(i) {
            i += 1;
        }
        if !(1..=9).contains(&(i - start)) {
            return false;
        }
    }
    let zone_ok = match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', _, _, b':', _, _] => {
            digit(i + 1)
                && digit(i + 2)
                && digit(i + 4)
                && digit(i + 5)
                && number(i + 1, 2) <= 15
                && number(i + 4, 2) <= 59
        }
        _ => false,
    };
    let (year, month, day) = (number(0, 4), number(5, 2), number(8, 2));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    zone_ok
        && year >= 1
        && (1..=days).contains(&day)
        && number(11, 2) <= 23
        && number(14, 2) <= 59
        && number(17, 2) <= 59
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_of_the_accepted_shape_pass_and_others_do_not() {
        for good in [
            "2026-12-02T10:00:00Z",
            "2026-12-02t10:00:00.123456789+03:00",
            "2024-02-29 23:59:59-15:59",
            "2026-12-02T10:00:00.5z",
        ] {
            assert!(instant_shape_ok(good), "{good}");
        }
        for bad in [
            "2026-12-02T10:00:00",
            "2026-12-02T10:00:00.Z",
            "2026-12-02T10:00:00.1234567890Z",
            "2023-02-29T10:00:00Z",
            "2026-13-02T10:00:00Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T10:00:60Z",
            "2026-12-02T10:00:00+16:00",
            "0000-01-01T00:00:00Z",
            "2026-12-02T10:00:00+0300",
            "٢٠٢٦-12-02T10:00:00Z",
        ] {
            assert!(!instant_shape_ok(bad), "{bad}");
        }
    }

    #[test]
    fn a_batch_qualifies_only_when_every_event_does() {
        let mut reader = Reader::default();
        reader.push(r#"{"id":"a","type":"conversation_opened","at":"2026-12-02T10:00:00Z","conversation":"c","product":"p","channel":"whatsapp","extra":[1]}"#);
        reader.push(r#"{"id":"b","type":"assigned","at":"2026-12-02T10:00:01Z","conversation":"c","agent":"x","by":null}"#);
        let columns = reader.finish().expect("qualifies");
        assert_eq!(columns.ids, ["a", "b"]);
        assert_eq!(columns.channels, [Some("whatsapp".to_string()), None]);
        assert_eq!(columns.bys, [None, None]);

        for spoiler in [
            r#"{"id":"a","type":"customer_message","at":"2026-12-02T10:00:02Z","conversation":"c"}"#,
            r#"{"id":"z","type":"agent_upserted","at":"2026-12-02T10:00:02Z","agent":"x"}"#,
            r#"{"id":"z","type":"agent_message","at":"2026-12-02T10:00:02Z","conversation":"c","agent":5}"#,
            r#"{"id":"  ","type":"customer_message","at":"2026-12-02T10:00:02Z","conversation":"c"}"#,
            r#"{"id":"z","type":"assigned","at":"2026-12-02T10:00:02Z","conversation":"c","agent":"x","by":""}"#,
            r#"[1,2]"#,
        ] {
            let mut reader = Reader::default();
            reader.push(r#"{"id":"a","type":"customer_message","at":"2026-12-02T10:00:00Z","conversation":"c"}"#);
            reader.push(spoiler);
            assert!(reader.finish().is_none(), "{spoiler}");
        }
    }
}
