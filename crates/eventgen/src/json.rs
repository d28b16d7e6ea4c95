//! The tiny append-only JSON writer the generator uses: strings pushed straight into one reused buffer,
//! numbers and times formatted by hand, so an event costs no allocation beyond its buffer.

use rand::RngCore;

/// Appends `s` as a JSON string. Almost every value comes from our own tables and needs no escaping;
/// the check keeps the output valid JSON if one ever does.
pub fn q(out: &mut String, s: &str) {
    out.push('"');
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    out.push_str("\\u00");
                    push_hex_byte(out, c as u8);
                }
                c => out.push(c),
            }
        }
    } else {
        out.push_str(s);
    }
    out.push('"');
}

/// Appends `"key":`.
pub fn k(out: &mut String, key: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// Appends `"key":"value"`.
pub fn kv(out: &mut String, key: &str, value: &str) {
    k(out, key);
    q(out, value);
}

pub fn num(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(b as char);
    }
}

/// Zero-padded decimal of exactly `width` digits.
fn num_padded(out: &mut String, n: u64, width: u32) {
    let mut div = 10u64.pow(width - 1);
    while div > 0 {
        out.push((b'0' + ((n / div) % 10) as u8) as char);
        div /= 10;
    }
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
/// The alphabet of AWS unique ids and access keys (upper-case letters and digits 2-7, as in base32).
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn push_hex_byte(out: &mut String, b: u8) {
    out.push(HEX_LOWER[(b >> 4) as usize] as char);
    out.push(HEX_LOWER[(b & 15) as usize] as char);
}

/// `n` random lower-case hex digits.
pub fn hex(out: &mut String, rng: &mut impl RngCore, n: usize) {
    random_chars(out, rng, n, HEX_LOWER);
}

/// `n` random upper-case hex digits (S3 request ids).
pub fn hex_upper(out: &mut String, rng: &mut impl RngCore, n: usize) {
    random_chars(out, rng, n, HEX_UPPER);
}

/// `n` random characters of the AWS id alphabet (AKIA…, AIDA…, AROA… suffixes).
pub fn base32(out: &mut String, rng: &mut impl RngCore, n: usize) {
    random_chars(out, rng, n, BASE32);
}

/// `n` random letters and digits (session tokens, S3 `x-amz-id-2`).
pub fn alnum(out: &mut String, rng: &mut impl RngCore, n: usize) {
    random_chars(out, rng, n, ALNUM);
}

fn random_chars(out: &mut String, rng: &mut impl RngCore, n: usize, alphabet: &[u8]) {
    let mut left = 0;
    let mut bits = 0u64;
    for _ in 0..n {
        if left == 0 {
            bits = rng.next_u64();
            left = 8;
        }
        // 8 random bits per character; the modulo bias for 62 letters is irrelevant for synthetic ids.
        out.push(alphabet[(bits & 0xff) as usize % alphabet.len()] as char);
        bits >>= 8;
        left -= 1;
    }
}

/// A random (version 4) UUID in its lower-case hyphenated form, drawn from `rng`.
pub fn uuid(out: &mut String, rng: &mut impl RngCore) {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push_str(id.hyphenated().encode_lower(&mut buf));
}

/// Appends a UTC instant (milliseconds since the epoch, truncated to the second) as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn time(out: &mut String, millis: i64) {
    let secs = millis.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    num_padded(out, y.clamp(0, 9999) as u64, 4);
    out.push('-');
    num_padded(out, m as u64, 2);
    out.push('-');
    num_padded(out, d as u64, 2);
    out.push('T');
    num_padded(out, sod / 3600, 2);
    out.push(':');
    num_padded(out, sod / 60 % 60, 2);
    out.push(':');
    num_padded(out, sod % 60, 2);
    out.push('Z');
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) — Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_cloudtrail_prints_them() {
        let mut s = String::new();
        time(&mut s, 1_577_869_200_999);
        assert_eq!(s, "2020-01-01T09:00:00Z");
        s.clear();
        time(&mut s, 951_782_400_000); // leap day
        assert_eq!(s, "2000-02-29T00:00:00Z");
        s.clear();
        time(&mut s, 0);
        assert_eq!(s, "1970-01-01T00:00:00Z");
    }

    #[test]
    fn strings_that_need_escaping_are_escaped() {
        let mut s = String::new();
        q(&mut s, "a\"b\\c\n");
        assert_eq!(s, r#""a\"b\\c\u000a""#);
        num(&mut s, 0);
        num(&mut s, 1234567890);
        assert!(s.ends_with("01234567890"));
    }
}
