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

/// 3000-01-01T00:00:00Z: a number that, read as seconds, is later than this is taken to be
/// milliseconds (13 digits and more always are).
pub const YEAR_3000: i64 = 32_503_680_000;

/// A time given on the command line, as [`parse_time_detailed`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedTime {
    /// Seconds since the epoch.
    pub secs: i64,
    /// The input was a Unix timestamp in milliseconds (rounded down to the second).
    pub millis: bool,
}

impl ParsedTime {
    /// What to tell the operator when the input was read as milliseconds, e.g.
    /// `read 1735689600000 as milliseconds: 2025-01-01T00:00:00Z`.
    pub fn note(&self, input: &str) -> Option<String> {
        self.millis.then(|| {
            format!(
                "read {} as milliseconds: {}",
                input.trim(),
                rfc3339(self.secs)
            )
        })
    }
}

/// Parses RFC 3339 (`2026-11-29T10:00:00Z`, any offset), `now`, or a Unix timestamp in
/// seconds, or in milliseconds: a number of 13 digits or more, or one that read as seconds
/// would be past the year 3000, is milliseconds (see [`ParsedTime::millis`]).
pub fn parse_time_detailed(s: &str) -> Result<ParsedTime, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(ParsedTime {
            secs: OffsetDateTime::now_utc().unix_timestamp(),
            millis: false,
        });
    }
    if let Ok(n) = s.parse::<i64>() {
        let digits = s.trim_start_matches(['-', '+']).len();
        if digits < 13 && n.unsigned_abs() <= YEAR_3000.unsigned_abs() {
            return Ok(ParsedTime {
                secs: n,
                millis: false,
            });
        }
        let secs = n.div_euclid(1000);
        if secs.unsigned_abs() > YEAR_3000.unsigned_abs() {
            return Err(format!(
                "invalid time {s:?}: past the year 3000 even as milliseconds"
            ));
        }
        return Ok(ParsedTime { secs, millis: true });
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| ParsedTime {
            secs: t.unix_timestamp(),
            millis: false,
        })
        .map_err(|e| {
            format!("invalid time {s:?}: expected RFC 3339, unix seconds or milliseconds ({e})")
        })
}

/// [`parse_time_detailed`], in seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    parse_time_detailed(s).map(|t| t.secs)
}

/// A span of seconds in its largest whole unit and the next one (rounded down): `7d`,
/// `90d`, `1h 30m`, `45s`, `26328d 13h`.
pub fn duration(secs: i64) -> String {
    const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let sign = if secs < 0 { "-" } else { "" };
    let n = secs.unsigned_abs();
    let Some(i) = UNITS.iter().position(|&(_, size)| n >= size) else {
        return "0s".into();
    };
    let (unit, size) = UNITS[i];
    let mut out = format!("{sign}{}{unit}", n / size);
    if let Some(&(next, next_size)) = UNITS.get(i + 1) {
        let m = n % size / next_size;
        if m > 0 {
            out.push_str(&format!(" {m}{next}"));
        }
    }
    out
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
    fn milliseconds_are_recognised() {
        let t = parse_time_detailed("1735689600000").expect("ms");
        assert_eq!(
            t,
            ParsedTime {
                secs: 1_735_689_600,
                millis: true
            }
        );
        assert_eq!(
            t.note("1735689600000").as_deref(),
            Some("read 1735689600000 as milliseconds: 2025-01-01T00:00:00Z")
        );
        // Rounded down to the second.
        assert_eq!(parse_time("1735689600999"), Ok(1_735_689_600));
        // 13 digits are milliseconds even when short of the year 3000 as seconds.
        assert_eq!(parse_time("0001735689600"), Ok(1_735_689));
        // Past the year 3000 as seconds, but 11 digits: still milliseconds.
        assert_eq!(
            parse_time_detailed("40000000000"),
            Ok(ParsedTime {
                secs: 40_000_000,
                millis: true
            })
        );
        // Seconds stay seconds, and say nothing.
        let t = parse_time_detailed("1735689600").expect("secs");
        assert_eq!(
            t,
            ParsedTime {
                secs: 1_735_689_600,
                millis: false
            }
        );
        assert_eq!(t.note("1735689600"), None);
        assert_eq!(rfc3339(YEAR_3000), "3000-01-01T00:00:00Z");
        assert_eq!(parse_time(&YEAR_3000.to_string()), Ok(YEAR_3000));
        // Microseconds are past the year 3000 even as milliseconds.
        assert!(parse_time("1735689600000000").is_err());
    }

    #[test]
    fn now_is_now() {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let t = parse_time(" now ").expect("now");
        assert!((now..=now + 2).contains(&t), "{t} vs {now}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(604_800), "7d");
        assert_eq!(duration(90 * 86_400), "90d");
        assert_eq!(duration(5_400), "1h 30m");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(-60), "-1m");
        assert_eq!(duration(86_400 + 3_600 + 61), "1d 1h");
        assert_eq!(duration(86_400 + 61), "1d");
    }

    #[test]
    fn relative_reads_naturally() {
        assert_eq!(relative(100, 100), "now");
        assert_eq!(relative(100 + 840, 100), "in 14m");
        assert_eq!(relative(100, 100 + 3 * 86_400), "3d ago");
    }
}
