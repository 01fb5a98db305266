//! The `user-events` contract: one JSON object per Kafka record.
//!
//! | field | type | rule |
//! | --- | --- | --- |
//! | `ts` | RFC 3339 string or integer epoch milliseconds | required; event time |
//! | `tenant` | string | required, 1–64 of `[A-Za-z0-9_.-]` |
//! | `service` | string | required, same charset |
//! | `endpoint` | string | optional, ≤ 256 chars, no U+0000 (PostgreSQL `text` cannot hold it), default `""` |
//! | `user` | string | optional, ≤ 128 chars; used for distinct counts only |
//! | `status` | integer 100–599 | optional, default 200; ≥ 500 is an error |
//! | `latency_ms` | number ≥ 0 | optional |
//!
//! Unknown fields are ignored. Timestamps before 2000-01-01 or from 2100 on
//! are rejected as absurd (`ts_out_of_range`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Earliest accepted event time: 2000-01-01T00:00:00Z.
pub const MIN_TS_MS: i64 = 946_684_800_000;
/// First rejected event time: 2100-01-01T00:00:00Z.
pub const MAX_TS_MS: i64 = 4_102_444_800_000;
/// Longest `tenant` / `service` name.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest `endpoint`.
pub const MAX_ENDPOINT_CHARS: usize = 256;
/// Longest `user` id.
pub const MAX_USER_CHARS: usize = 128;

/// A valid event. Strings borrow from the record where they can.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event<'a> {
    /// Event time, epoch milliseconds (serialized as `ts`).
    #[serde(rename = "ts")]
    pub ts_ms: i64,
    /// Tenant id.
    pub tenant: Cow<'a, str>,
    /// The service that gets scaled.
    pub service: Cow<'a, str>,
    /// Endpoint, `""` when absent.
    pub endpoint: Cow<'a, str>,
    /// Opaque user id, for distinct counts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Cow<'a, str>>,
    /// HTTP-like status, 200 when absent.
    pub status: u16,
    /// Latency in milliseconds, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

impl Event<'_> {
    /// True for status ≥ 500.
    pub fn is_error(&self) -> bool {
        self.status >= 500
    }

    /// An owned copy that outlives the record it was parsed from.
    pub fn into_owned(self) -> Event<'static> {
        Event {
            ts_ms: self.ts_ms,
            tenant: Cow::Owned(self.tenant.into_owned()),
            service: Cow::Owned(self.service.into_owned()),
            endpoint: Cow::Owned(self.endpoint.into_owned()),
            user: self.user.map(|u| Cow::Owned(u.into_owned())),
            status: self.status,
            latency_ms: self.latency_ms,
        }
    }

    /// The event as a JSON record of the contract.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serializes")
    }
}

/// Why a record was rejected. The label (see [`Reason::as_str`]) is the
/// `reason` header on the dead-letter record and the `reason` label of
/// `prescient_events_rejected_total`.
#[derive(strum::IntoStaticStr, strum::EnumString, strum::EnumIter, strum::Display)]
#[strum(serialize_all = "snake_case")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The record is not UTF-8.
    InvalidUtf8,
    /// The record is not JSON (or has a duplicate field).
    InvalidJson,
    /// The record is JSON but not an object.
    NotAnObject,
    /// A required field is missing or null.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field breaks a rule: charset, length, range.
    InvalidField,
    /// `ts` is before 2000 or from 2100 on.
    TsOutOfRange,
    /// `ts` is further ahead of the record's broker timestamp than allowed.
    TsInFuture,
    /// The event's window closed more than the allowed lateness ago.
    TooLate,
}

impl Reason {
    /// The snake_case label (`invalid_json`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every reason, in label order.
    pub fn all() -> impl Iterator<Item = Reason> {
        <Reason as strum::IntoEnumIterator>::iter()
    }

    /// Parses a label back.
    pub fn from_label(label: &str) -> Option<Reason> {
        label.parse().ok()
    }
}

/// A rejected record: the reason and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    /// Machine-readable reason.
    pub reason: Reason,
    /// What exactly was wrong.
    pub detail: String,
}

impl Rejection {
    /// A rejection with a reason and detail.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(default, deserialize_with = "de_ts")]
    ts: Option<i64>,
    #[serde(borrow, default)]
    tenant: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    endpoint: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(default)]
    status: Option<i64>,
    #[serde(default)]
    latency_ms: Option<f64>,
}

/// `ts` as integer epoch milliseconds or an RFC 3339 string.
fn de_ts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct TsVisitor;
    impl<'de> Visitor<'de> for TsVisitor {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 string or integer epoch milliseconds")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("ts out of range"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.timestamp_millis()))
                .map_err(|e| E::custom(format_args!("ts {v:?} is not RFC 3339: {e}")))
        }
    }
    d.deserialize_any(TsVisitor)
}

fn check_name(field: &str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() || value.len() > MAX_NAME_CHARS {
        return Err(Rejection::new(
            Reason::InvalidField,
            format!(
                "{field} must be 1-{MAX_NAME_CHARS} characters, got {}",
                value.chars().count()
            ),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Rejection::new(
            Reason::InvalidField,
            format!("{field} may only hold [A-Za-z0-9_.-], found {c:?}"),
        ));
    }
    Ok(())
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    // Byte length bounds char count from above: only count chars when needed.
    if value.len() > max && value.chars().count() > max {
        return Err(Rejection::new(
            Reason::InvalidField,
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(())
}

fn classify(err: serde_json::Error) -> Rejection {
    let msg = err.to_string();
    let reason = match err.classify() {
        serde_json::error::Category::Data if msg.starts_with("missing field") => {
            Reason::MissingField
        }
        serde_json::error::Category::Data if msg.starts_with("duplicate field") => {
            Reason::InvalidJson
        }
        serde_json::error::Category::Data if msg.starts_with("ts ") => Reason::InvalidField,
        serde_json::error::Category::Data => Reason::WrongType,
        _ => Reason::InvalidJson,
    };
    Rejection::new(reason, msg)
}

/// Parses and validates one record of `user-events`.
///
/// Returns the event, or the [`Rejection`] that sends the record to the
/// dead-letter topic. Never panics, whatever the bytes.
pub fn parse_event(bytes: &[u8]) -> Result<Event<'_>, Rejection> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Rejection::new(Reason::InvalidUtf8, format!("record is not UTF-8: {e}")))?;
    match text.trim_start().as_bytes().first() {
        Some(b'{') => {}
        Some(_) => {
            return Err(Rejection::new(
                Reason::NotAnObject,
                "record is not a JSON object",
            ));
        }
        None => return Err(Rejection::new(Reason::InvalidJson, "record is empty")),
    }
    let raw: RawEvent<'_> = serde_json::from_str(text).map_err(classify)?;
    let ts_ms = raw
        .ts
        .ok_or_else(|| Rejection::new(Reason::MissingField, "missing field `ts`"))?;
    if !(MIN_TS_MS..MAX_TS_MS).contains(&ts_ms) {
        return Err(Rejection::new(
            Reason::TsOutOfRange,
            format!("ts {ts_ms} is outside 2000-01-01..2100-01-01"),
        ));
    }
    let tenant = raw
        .tenant
        .ok_or_else(|| Rejection::new(Reason::MissingField, "missing field `tenant`"))?;
    check_name("tenant", &tenant)?;
    let service = raw
        .service
        .ok_or_else(|| Rejection::new(Reason::MissingField, "missing field `service`"))?;
    check_name("service", &service)?;
    let endpoint = raw.endpoint.unwrap_or(Cow::Borrowed(""));
    check_len("endpoint", &endpoint, MAX_ENDPOINT_CHARS)?;
    // `endpoint` is stored as PostgreSQL `text`, which cannot hold U+0000
    // (the only Unicode scalar a UTF-8 database refuses). `user` is only
    // hashed, so it may hold anything.
    if let Some(at) = endpoint.find('\0') {
        return Err(Rejection::new(
            Reason::InvalidField,
            format!("endpoint contains U+0000 at byte {at}, which PostgreSQL text cannot store"),
        ));
    }
    if let Some(user) = &raw.user {
        check_len("user", user, MAX_USER_CHARS)?;
    }
    let status = match raw.status {
        None => 200,
        Some(s @ 100..=599) => s as u16,
        Some(s) => {
            return Err(Rejection::new(
                Reason::InvalidField,
                format!("status {s} is outside 100-599"),
            ));
        }
    };
    if let Some(l) = raw.latency_ms
        && !(l.is_finite() && l >= 0.0)
    {
        return Err(Rejection::new(
            Reason::InvalidField,
            format!("latency_ms {l} must be a number >= 0"),
        ));
    }
    Ok(Event {
        ts_ms,
        tenant,
        service,
        endpoint,
        user: raw.user,
        status,
        latency_ms: raw.latency_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(bytes: &[u8]) -> Reason {
        parse_event(bytes).unwrap_err().reason
    }

    #[test]
    fn accepts_both_timestamp_forms_and_defaults() {
        let a = parse_event(br#"{"ts":1700000000000,"tenant":"t1","service":"api"}"#).unwrap();
        let b = parse_event(
            br#"{"ts":"2023-11-14T22:13:20Z","tenant":"t1","service":"api","extra":[1]}"#,
        )
        .unwrap();
        assert_eq!(a.ts_ms, b.ts_ms);
        assert_eq!(a.status, 200);
        assert_eq!(a.endpoint, "");
        assert_eq!(a.user, None);
        let c =
            parse_event(br#"{"ts":"2023-11-14T23:13:20.5+01:00","tenant":"t1","service":"api"}"#)
                .unwrap();
        assert_eq!(c.ts_ms, a.ts_ms + 500);
    }

    #[test]
    fn full_event_round_trips() {
        let e = parse_event(
            br#"{"ts":1700000000000,"tenant":"t.1","service":"s-2","endpoint":"/x","user":"u\u00e9","status":503,"latency_ms":12.5}"#,
        )
        .unwrap();
        assert!(e.is_error());
        assert_eq!(e.user.as_deref(), Some("ué"));
        let json = e.to_json();
        let again = parse_event(&json).unwrap();
        assert_eq!(again, e);
    }

    #[test]
    fn rejects_each_rule_with_its_reason() {
        assert_eq!(reason(b"\xff\xfe{}"), Reason::InvalidUtf8);
        assert_eq!(reason(b"{not json"), Reason::InvalidJson);
        assert_eq!(reason(b""), Reason::InvalidJson);
        assert_eq!(reason(b"[1,2]"), Reason::NotAnObject);
        assert_eq!(
            reason(br#"{"tenant":"a","service":"b"}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(br#"{"ts":1700000000000,"service":"b"}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(br#"{"ts":1700000000000,"tenant":null,"service":"b"}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(br#"{"ts":1700000000000,"tenant":5,"service":"b"}"#),
            Reason::WrongType
        );
        assert_eq!(
            reason(br#"{"ts":1.5,"tenant":"a","service":"b"}"#),
            Reason::WrongType
        );
        assert_eq!(
            reason(br#"{"ts":true,"tenant":"a","service":"b"}"#),
            Reason::WrongType
        );
        assert_eq!(
            reason(br#"{"ts":1700000000000,"tenant":"a","service":"b","status":"200"}"#),
            Reason::WrongType
        );
        assert_eq!(
            reason(br#"{"ts":"yesterday","tenant":"a","service":"b"}"#),
            Reason::InvalidField
        );
        assert_eq!(
            reason(br#"{"ts":1700000000000,"tenant":"a b","service":"b"}"#),
            Reason::InvalidField
        );
        assert_eq!(
            reason(br#"{"ts":1700000000000,"tenant":"","service":"b"}"#),
            Reason::InvalidField
        );
        let long = format!(
            r#"{{"ts":1700000000000,"tenant":"{}","service":"b"}}"#,
            "a".repeat(65)
        );
        assert_eq!(reason(long.as_bytes()), Reason::InvalidField);
        let ep = format!(
            r#"{{"ts":1700000000000,"tenant":"a","service":"b","endpoint":"{}"}}"#,
            "e".repeat(257)
        );
        assert_eq!(reason(ep.as_bytes()), Reason::InvalidField);
        let user = format!(
            r#"{{"ts":1700000000000,"tenant":"a","service":"b","user":"{}"}}"#,
            "é".repeat(129)
        );
        assert_eq!(reason(user.as_bytes()), Reason::InvalidField);
        assert_eq!(
            reason(br#"{"ts":1700000000000,"tenant":"a","service":"b","status":99}"#),
            Reason::InvalidField
        );
        assert_eq!(
            reason(br#"{"ts":1700000000000,"tenant":"a","service":"b","latency_ms":-1}"#),
            Reason::InvalidField
        );
        assert_eq!(
            reason(br#"{"ts":5,"tenant":"a","service":"b"}"#),
            Reason::TsOutOfRange
        );
        assert_eq!(
            reason(br#"{"ts":"2200-01-01T00:00:00Z","tenant":"a","service":"b"}"#),
            Reason::TsOutOfRange
        );
        assert_eq!(
            reason(br#"{"ts":1700000000000,"ts":1,"tenant":"a","service":"b"}"#),
            Reason::InvalidJson
        );
    }

    #[test]
    fn nul_in_endpoint_is_invalid_but_fine_in_user() {
        let ep = br#"{"ts":1700000000000,"tenant":"a","service":"b","endpoint":"/x\u0000y"}"#;
        assert_eq!(reason(ep), Reason::InvalidField);
        let user = br#"{"ts":1700000000000,"tenant":"a","service":"b","user":"u\u0000"}"#;
        assert!(parse_event(user).is_ok());
    }

    #[test]
    fn multibyte_lengths_count_characters() {
        let ok = format!(
            r#"{{"ts":1700000000000,"tenant":"a","service":"b","user":"{}"}}"#,
            "é".repeat(128)
        );
        assert!(parse_event(ok.as_bytes()).is_ok());
    }

    #[test]
    fn labels_round_trip() {
        // The labels are a contract (DLQ `reason` header, metric label,
        // `dead_letters_minute.reason`): derived, and pinned here.
        assert_eq!(
            Reason::all().map(Reason::as_str).collect::<Vec<_>>(),
            [
                "invalid_utf8",
                "invalid_json",
                "not_an_object",
                "missing_field",
                "wrong_type",
                "invalid_field",
                "ts_out_of_range",
                "ts_in_future",
                "too_late"
            ]
        );
        for r in Reason::all() {
            assert_eq!(Reason::from_label(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
    }
}
