//! When several load generators start together: `--start-at TIME` and
//! `--tag NAME` of `loadgen run`, parsed and turned into the instant the
//! load begins.
//!
//! N load generators on N hosts each open their connections and get every
//! one answered once, then wait for the same wall-clock time before the
//! warm-up begins; so their measured windows coincide (to the hosts' clock
//! agreement: NTP keeps that within milliseconds) and `loadgen merge` can add
//! them up. The time is RFC 3339 (`2025-06-01T12:00:00Z`,
//! `2025-06-01T14:00:00.5+02:00`) or unix seconds (`1748779200`), the forms
//! `date -u +%FT%TZ` and `date +%s` print. Records print their dates the
//! same way ([`rfc3339`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far in the past `--start-at` may be: a second, for the time it took
/// to start the process.
pub const PAST_SLACK: Duration = Duration::from_secs(1);

/// `--start-at` may be no more than [`PAST_SLACK`] ago. Checked when a run
/// starts (`RunArgs::validate`), not when it is parsed: a stored
/// configuration, read back later, holds a time long past.
pub fn check_start_at(at: SystemTime) -> Result<(), String> {
    let now = SystemTime::now();
    match now.duration_since(at) {
        Ok(ago) if ago > PAST_SLACK => Err(format!(
            "--start-at {}: {:.1} s in the past (now is {}): give a time a few seconds ahead, such as $(( $(date \
             +%s) + 5 ))",
            rfc3339(at),
            ago.as_secs_f64(),
            rfc3339(now)
        )),
        _ => Ok(()),
    }
}

/// RFC 3339 (a `T` or a space between date and time, `Z` or `±HH:MM`,
/// fractional seconds) or unix seconds, possibly fractional.
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s.parse().map_err(|_| format!("`{s}`: not a number of unix seconds"))?;
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("`{s}`: expected RFC 3339 (2025-06-01T12:00:00Z, with an offset or Z) or unix seconds (1748779200)")
    })
}

fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<9}", &frac[..digits.min(9)]);
        nanos = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (rest[1..3].parse::<i64>().ok()?, rest[4..6].parse::<i64>().ok()?);
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian (Howard
/// Hinnant's `days_from_civil`, the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `--tag`: what names one load generator among several, in its JSON and
/// in its interval log's `Tag=` column. Letters, digits, `.`, `_` and `-`
/// (HdrHistogram's tags may hold no comma or space; `+` joins merged tags).
pub fn parse_tag(s: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.is_empty() || s.len() > 64 || !s.chars().all(ok) {
        return Err(format!("`{s}`: a tag is 1 to 64 letters, digits, `.`, `_` or `-` (such as lg0 or host-b)"));
    }
    Ok(s.to_string())
}

/// The instant the load begins: at `--start-at` (a note says when it was
/// already past, once every connection was ready: the windows of the load
/// generators then do not coincide and `loadgen merge` will say so), or
/// right away.
pub fn start_instant(start_at: Option<SystemTime>, notes: &mut Vec<String>) -> Instant {
    let soon = Instant::now() + Duration::from_millis(20);
    let Some(at) = start_at else { return soon };
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) => Instant::now() + ahead,
        Err(late) => {
            notes.push(format!(
                "--start-at {}: the connections were ready only {:.3} s after it; the load began then",
                rfc3339(at),
                late.duration().as_secs_f64()
            ));
            soon
        }
    }
}

/// Seconds since the epoch, for the records.
pub fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// RFC 3339 in UTC, to the second: `2024-05-01T12:34:56Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rfc3339_and_unix_seconds() {
        assert_eq!(parse_time("1748779200"), Ok(at(1_748_779_200)));
        assert_eq!(parse_time("1748779200.5"), Ok(at(1_748_779_200) + Duration::from_millis(500)));
        assert_eq!(parse_time("2025-06-01T12:00:00Z"), Ok(at(1_748_779_200)));
        assert_eq!(parse_time("2025-06-01 14:00:00+02:00"), Ok(at(1_748_779_200)));
        assert_eq!(parse_time("2025-06-01T07:30:00-04:30"), Ok(at(1_748_779_200)));
        assert_eq!(parse_time("2025-06-01T12:00:00.25Z"), Ok(at(1_748_779_200) + Duration::from_millis(250)));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(UNIX_EPOCH));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(at(951_782_400)));
        for bad in ["", "soon", "2025-06-01", "2025-06-01T12:00:00", "2025-13-01T00:00:00Z", "2025-06-01T12:00:00+2"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_print_and_read_back() {
        for (secs, date) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (1_748_779_200, "2025-06-01T12:00:00Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(at(secs)), date);
            assert_eq!(parse_time(date), Ok(at(secs)));
        }
    }

    #[test]
    fn a_start_in_the_past_is_refused() {
        let now = unix_s(SystemTime::now());
        let check = |s: String| check_start_at(parse_time(&s).unwrap());
        let err = check(format!("{}", now as u64 - 10)).unwrap_err();
        assert!(err.contains("in the past"), "{err}");
        assert!(check(format!("{}", now as u64 + 30)).is_ok());
        assert!(check(format!("{:.3}", now - 0.5)).is_ok(), "within the second's slack");
    }

    #[test]
    fn tags() {
        assert_eq!(parse_tag("lg0"), Ok("lg0".into()));
        assert_eq!(parse_tag("host-b.2_x"), Ok("host-b.2_x".into()));
        for bad in ["", "a b", "a,b", "a+b", &"x".repeat(65)] {
            assert!(parse_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_load_begins_at_the_time_or_now() {
        let mut notes = Vec::new();
        let ahead = start_instant(Some(SystemTime::now() + Duration::from_secs(3)), &mut notes);
        let wait = ahead.saturating_duration_since(Instant::now());
        assert!(wait > Duration::from_secs(2) && wait <= Duration::from_secs(3), "{wait:?}");
        assert!(notes.is_empty());
        let late = start_instant(Some(SystemTime::now() - Duration::from_secs(2)), &mut notes);
        assert!(late <= Instant::now() + Duration::from_millis(20));
        assert!(notes[0].contains("ready only 2."), "{notes:?}");
    }
}
