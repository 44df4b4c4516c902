//! Time formatting and parsing: RFC 3339 for scripts, short forms for the TUI.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// `secs` (since the epoch) as RFC 3339 in UTC, e.g. `2026-11-29T10:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// `secs` as `YYYY-MM-DD HH:MM` in UTC, for table cells.
pub fn short(secs: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]");
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// `secs` as `YYYY-MM-DD HH:MM:SS` in UTC, for the details pane and the event log.
pub fn long(secs: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// `secs` relative to `now`: `in 14m`, `3d ago`, `now`.
pub fn relative(secs: i64, now: i64) -> String {
    let d = secs.saturating_sub(now);
    let a = d.unsigned_abs();
    if a < 5 {
        return "now".into();
    }
    let amount = if a < 60 {
        format!("{a}s")
    } else if a < 3600 {
        format!("{}m", a / 60)
    } else if a < 86_400 {
        format!("{}h", a / 3600)
    } else {
        format!("{}d", a / 86_400)
    };
    if d > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// Parses RFC 3339 (`2026-11-29T10:00:00Z`, any offset) or unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| format!("invalid time {s:?}: expected RFC 3339 or unix seconds ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Ok(1_767_225_600));
        assert_eq!(parse_time("1767225600"), Ok(1_767_225_600));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn relative_reads_naturally() {
        assert_eq!(relative(100, 100), "now");
        assert_eq!(relative(100 + 840, 100), "in 14m");
        assert_eq!(relative(100, 100 + 3 * 86_400), "3d ago");
    }
}
