//! The canonical request: path, query string, headers and payload hash, canonicalized exactly as botocore does.

use sha2::{Digest, Sha256};

/// The payload-hash literal for a body that is not signed (S3 presigned URLs, S3 over TLS with checksums).
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The payload-hash literal botocore sends for an aws-chunked body whose checksum travels in a trailer.
pub(crate) const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// Headers botocore never signs (`SIGNED_HEADERS_BLACKLIST` in `botocore/auth.py`): hop-by-hop headers and ones
/// that proxies rewrite. [`crate::sign`] skips them too so that it signs what botocore signs.
pub(crate) const NEVER_SIGNED: &[&str] = &[
    "authorization",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// S3 (and its variants) sign the path exactly as sent; every other service normalizes it first and encodes it
/// again (botocore's `S3SigV4Auth._normalize_url_path` vs `SigV4Auth._normalize_url_path`).
pub(crate) fn is_s3(service: &str) -> bool {
    matches!(service, "s3" | "s3-object-lambda" | "s3-outposts")
}

/// The canonical URI. `raw_path` is the path as on the wire (percent-encoded).
///
/// Non-S3: dot segments and empty segments removed (botocore `remove_dot_segments`), then every byte but
/// unreserved characters and `/` percent-encoded once more, so `%20` becomes `%2520`, as all AWS SDKs do.
pub(crate) fn canonical_path(raw_path: &str, service: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    if is_s3(service) {
        return raw_path.to_owned();
    }
    uri_encode(&remove_dot_segments(raw_path), true)
}

/// RFC 3986 5.2.4 plus the removal of empty segments, as `botocore.utils.remove_dot_segments`.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !out.is_empty() { "/" } else { "" };
    format!("{first}{}{last}", out.join("/"))
}

/// Percent-encodes every byte except the RFC 3986 unreserved characters (and `/` when `keep_slash`), with upper-case
/// hex: Python's `quote(s, safe='/~')` / `quote(s, safe='-_.~')`.
pub(crate) fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
        }
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is. `+` is *not* a space: SigV4 encodes
/// a space as `%20`, and a literal `+` in a query is signed by the SDKs as `%2B`.
pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (b.get(i + 1).and_then(hex_val), b.get(i + 2).and_then(hex_val))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_val(c: &u8) -> Option<u8> {
    char::from(*c).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Encodes possibly-non-UTF-8 decoded bytes with the unreserved set (bytes, not chars, so nothing is lost).
fn uri_encode_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => uri_encode(s, false),
        Err(_) => b
            .iter()
            .map(|&c| {
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
                    char::from(c).to_string()
                } else {
                    format!("%{c:02X}")
                }
            })
            .collect(),
    }
}

/// The canonical query string, in the two forms a correct signer may have used for the same raw query.
///
/// `normalized`: each name and value percent-decoded and re-encoded with the unreserved set, empty `&&` pieces
/// dropped, sorted by encoded name then value: what aws-sigv4, the Java and Go SDKs and the SigV4 spec produce.
/// `raw`: the pairs exactly as sent, sorted (botocore's `_canonical_query_string_url`, which never re-encodes).
/// For anything an SDK sends the two are equal; they differ only for hand-built URLs (`/` or `:` left unencoded).
/// With `skip_signature`, the `X-Amz-Signature` pair of a presigned URL is left out, as the spec requires.
pub(crate) struct CanonicalQuery {
    pub normalized: String,
    pub raw: String,
}

pub(crate) fn canonical_query(query: &str, skip_signature: bool) -> CanonicalQuery {
    let is_signature = |raw_key: &str| skip_signature && percent_decode(raw_key) == b"X-Amz-Signature";

    let mut normalized: Vec<(String, String)> = query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| piece.split_once('=').unwrap_or((piece, "")))
        .filter(|(k, _)| !is_signature(k))
        .map(|(k, v)| (uri_encode_bytes(&percent_decode(k)), uri_encode_bytes(&percent_decode(v))))
        .collect();
    normalized.sort();

    let mut raw: Vec<(&str, &str)> = if query.is_empty() {
        Vec::new()
    } else {
        query.split('&').map(|piece| piece.split_once('=').unwrap_or((piece, ""))).collect()
    };
    raw.retain(|(k, _)| !is_signature(k));
    raw.sort();

    CanonicalQuery {
        normalized: join_pairs(normalized.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        raw: join_pairs(raw),
    }
}

fn join_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// botocore's `' '.join(value.split())`: trims and collapses every run of whitespace to one space. Python's
/// `str.split()` also splits on U+001C..U+001F, so those count as whitespace here too.
pub(crate) fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)).filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The canonical headers block (`name:value\n` per signed header, repeated names joined with `,` in the order
/// received). `signed` must be lower-case; returns the first signed name with no header in the request.
pub(crate) fn canonical_headers<'s>(signed: &[&'s str], headers: &[(String, String)]) -> Result<String, &'s str> {
    let mut out = String::new();
    for &name in signed {
        let mut values = headers.iter().filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| trim_all(v));
        let Some(first) = values.next() else {
            return Err(name);
        };
        out.push_str(name);
        out.push(':');
        out.push_str(&first);
        for v in values {
            out.push(',');
            out.push_str(&v);
        }
        out.push('\n');
    }
    Ok(out)
}

/// The canonical request (method upper-cased as botocore does).
pub(crate) fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    let mut out = canonical_request_before_payload(method, path, query, canonical_headers, signed_headers);
    out.push_str(payload_hash);
    out
}

/// The canonical request up to its last line, the payload hash, which [`crate::PendingBody::finish`] appends once
/// the body has been read: everything else is known from the request head.
pub(crate) fn canonical_request_before_payload(
    method: &str,
    path: &str,
    query: &str,
    canonical_headers: &str,
    signed_headers: &str,
) -> String {
    format!("{}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n", method.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_s3_paths_are_normalized_and_double_encoded() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("//example//", "/example/"),
            ("/example1/example2/../..", "/"),
            ("/a/./b/../c/", "/a/c/"),
            ("/../..", "/"),
            ("/foo%20bar/%E2%82%AC", "/foo%2520bar/%25E2%2582%25AC"),
            ("/-._~azAZ09", "/-._~azAZ09"),
            ("/a b/ሴ", "/a%20b/%E1%88%B4"),
            ("/a+b:c@d", "/a%2Bb%3Ac%40d"),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical_path(raw, "cloudtrail"), want, "{raw:?}");
        }
    }

    #[test]
    fn s3_paths_are_signed_as_sent() {
        assert_eq!(canonical_path("/b/a%20b/./x/../y//z", "s3"), "/b/a%20b/./x/../y//z");
    }

    #[test]
    fn query_is_sorted_by_name_then_value() {
        let q = canonical_query("b=2&a=%20x%2By&a=1&empty=&flag&%C3%BC=%E2%9C%93&tilde=~&Z=upper", false);
        let want = "%C3%BC=%E2%9C%93&Z=upper&a=%20x%2By&a=1&b=2&empty=&flag=&tilde=~";
        assert_eq!(q.normalized, want);
        assert_eq!(q.raw, want);
    }

    #[test]
    fn hand_built_queries_have_a_normalized_and_a_raw_form() {
        let q = canonical_query("arn=arn:aws:x/y&s=a+b&e=%7e&&", false);
        assert_eq!(q.normalized, "arn=arn%3Aaws%3Ax%2Fy&e=~&s=a%2Bb");
        assert_eq!(q.raw, "=&=&arn=arn:aws:x/y&e=%7e&s=a+b");
    }

    #[test]
    fn presigned_signature_is_left_out_of_the_query() {
        let q = canonical_query("X-Amz-Date=1&X-Amz-Signature=abc&a=b", true);
        assert_eq!(q.normalized, "X-Amz-Date=1&a=b");
        assert_eq!(q.raw, "X-Amz-Date=1&a=b");
    }

    #[test]
    fn bad_escapes_survive_decoding() {
        assert_eq!(percent_decode("%zz%4"), b"%zz%4");
        assert_eq!(percent_decode("%41%e2%82%ac"), "A€".as_bytes());
        assert_eq!(canonical_query("k=%ff%fe", false).normalized, "k=%FF%FE");
    }

    #[test]
    fn header_values_are_trimmed_and_runs_collapsed() {
        assert_eq!(trim_all("  spaced    value\twith \r\n runs  "), "spaced value with runs");
        assert_eq!(trim_all(" \"a   b   c\""), "\"a b c\"");
        assert_eq!(trim_all(""), "");
    }

    #[test]
    fn repeated_headers_are_joined_in_order() {
        let headers = vec![
            ("My-Header1".to_owned(), "value1".to_owned()),
            ("Host".to_owned(), "h".to_owned()),
            ("my-header1".to_owned(), " value2  b ".to_owned()),
        ];
        assert_eq!(
            canonical_headers(&["host", "my-header1"], &headers),
            Ok("host:h\nmy-header1:value1,value2 b\n".into())
        );
        assert_eq!(canonical_headers(&["host", "x-absent"], &headers), Err("x-absent"));
    }
}
