//! The S3 read API over local-folder buckets, enough for `aws s3 ls`, `aws s3 cp` and
//! `aws cloudtrail validate-logs`: ListBuckets, GetBucketLocation, HeadBucket, ListObjects v1 and v2 (prefix,
//! delimiter, marker / continuation, `encoding-type=url`), GetObject (with Range, streamed) and HeadObject
//! with the objects' `x-amz-meta-*`. Answers are S3's REST-XML; errors are encoded by the chain. Writes never
//! get here: the operation table refuses them (`Effect::Refused`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use buckets::{Bucket, ObjectInfo};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use crate::chain::Reply;
use crate::error::{ApiError, xml_escape};
use crate::operation::{Operation, S3Address};
use crate::{App, header_str};

const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// Hard-coded, as S3's: the most keys one listing returns, and the default.
const MAX_KEYS: usize = 1000;

/// One S3 read.
pub(crate) async fn read(
    app: &Arc<App>,
    op: Operation,
    addr: Option<&S3Address>,
    parts: &Parts,
) -> Result<Reply, ApiError> {
    let query: Vec<(String, String)> =
        axum::extract::Query::try_from_uri(&parts.uri).map(|axum::extract::Query(q)| q).unwrap_or_default();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if op == Operation::ListBuckets {
        return Ok(list_buckets(app));
    }
    let Some(addr) = addr else {
        return Err(ApiError::internal(&"an S3 operation without its bucket"));
    };
    let bucket = app
        .buckets
        .local(&addr.bucket)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "NoSuchBucket", "The specified bucket does not exist"))?;
    match op {
        Operation::GetBucketLocation => {
            // S3's rule: us-east-1 is the empty constraint.
            let region = if app.config.region == "us-east-1" { "" } else { app.config.region.as_str() };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{XMLNS}\">{}</LocationConstraint>",
                xml_escape(region)
            );
            Ok(xml(body))
        }
        Operation::HeadBucket => Ok(Reply::Http {
            status: StatusCode::OK,
            headers: vec![("x-amz-bucket-region".into(), app.config.region.clone())],
            body: Body::empty(),
        }),
        Operation::ListObjects | Operation::ListObjectsV2 => {
            list_objects(&bucket, op == Operation::ListObjectsV2, &param).await.map(xml)
        }
        Operation::GetObject | Operation::HeadObject => {
            let key = addr.key.as_deref().unwrap_or_default();
            get_object(&bucket, key, op == Operation::HeadObject, header_str(&parts.headers, "range")).await
        }
        _ => Err(ApiError::internal(&format!("{} is not an S3 read", op.name()))),
    }
}

fn xml(body: String) -> Reply {
    Reply::Http {
        status: StatusCode::OK,
        headers: vec![("content-type".into(), "application/xml".into())],
        body: Body::from(body),
    }
}

fn list_buckets(app: &App) -> Reply {
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"{XMLNS}\"><Owner><ID>{}</ID><DisplayName>opentrail</DisplayName></Owner><Buckets>",
        app.config.account_id
    );
    for (name, modified) in app.buckets.local_names() {
        let created: DateTime<Utc> = modified.into();
        body.push_str(&format!(
            "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
            xml_escape(&name),
            iso(created)
        ));
    }
    body.push_str("</Buckets></ListAllMyBucketsResult>");
    xml(body)
}

/// One line of a listing: an object, or the common prefix of objects rolled up by the delimiter.
enum Entry {
    Object(ObjectInfo),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Object(o) => &o.key,
            Entry::Prefix(p) => p,
        }
    }
}

async fn list_objects<'a>(
    bucket: &Bucket,
    v2: bool,
    param: &impl Fn(&str) -> Option<&'a str>,
) -> Result<String, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "InvalidArgument", m);
    let prefix = param("prefix").unwrap_or("");
    let delimiter = param("delimiter").filter(|d| !d.is_empty());
    let url = match param("encoding-type") {
        None => false,
        Some(e) if e.eq_ignore_ascii_case("url") => true,
        Some(e) => return Err(invalid(format!("Invalid Encoding Method specified in Request: {e}"))),
    };
    let max_keys = match param("max-keys") {
        None => MAX_KEYS,
        Some(m) => m.parse::<usize>().map_err(|_| invalid(format!("max-keys must be a number of keys, not {m:?}")))?,
    }
    .min(MAX_KEYS);
    let token = param("continuation-token");
    let after: Option<String> = if v2 {
        match token {
            Some(t) => Some(
                URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| invalid("The continuation token provided is incorrect".into()))?,
            ),
            None => param("start-after").filter(|s| !s.is_empty()).map(str::to_string),
        }
    } else {
        param("marker").filter(|s| !s.is_empty()).map(str::to_string)
    };
    let prefix_arg = (!prefix.is_empty()).then_some(prefix);
    let objects = bucket.list(prefix_arg, after.as_deref(), usize::MAX).await?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut truncated = false;
    for o in objects {
        let entry = match delimiter.and_then(|d| o.key[prefix.len()..].find(d).map(|i| (d, i))) {
            Some((d, i)) => {
                let cp = &o.key[..prefix.len() + i + d.len()];
                // Rolled up already (on this page, or the previous page ended on it).
                if entries.last().is_some_and(|e| e.name() == cp) || after.as_deref() == Some(cp) {
                    continue;
                }
                Entry::Prefix(cp.to_string())
            }
            None => Entry::Object(o),
        };
        if entries.len() == max_keys {
            truncated = true;
            break;
        }
        entries.push(entry);
    }
    let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
    let tag = |name: &str, value: &str| format!("<{name}>{}</{name}>", xml_escape(value));
    let mut body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"{XMLNS}\">");
    body.push_str(&tag("Name", bucket.name()));
    body.push_str(&tag("Prefix", &enc(prefix)));
    let last = entries.last().map(|e| e.name().to_string());
    if v2 {
        if let Some(t) = token {
            body.push_str(&tag("ContinuationToken", t));
        }
        if let Some(s) = param("start-after") {
            body.push_str(&tag("StartAfter", &enc(s)));
        }
        body.push_str(&tag("KeyCount", &entries.len().to_string()));
        if truncated && let Some(l) = &last {
            body.push_str(&tag("NextContinuationToken", &URL_SAFE_NO_PAD.encode(l)));
        }
    } else {
        body.push_str(&tag("Marker", &enc(param("marker").unwrap_or(""))));
        if truncated && let Some(l) = &last {
            body.push_str(&tag("NextMarker", &enc(l)));
        }
    }
    body.push_str(&tag("MaxKeys", &max_keys.to_string()));
    if let Some(d) = delimiter {
        body.push_str(&tag("Delimiter", &enc(d)));
    }
    if url {
        body.push_str("<EncodingType>url</EncodingType>");
    }
    body.push_str(&tag("IsTruncated", if truncated { "true" } else { "false" }));
    for e in &entries {
        match e {
            Entry::Object(o) => {
                body.push_str("<Contents>");
                body.push_str(&tag("Key", &enc(&o.key)));
                body.push_str(&tag("LastModified", &iso(o.last_modified)));
                body.push_str(&tag("ETag", &format!("\"{}\"", o.etag.as_deref().unwrap_or(""))));
                body.push_str(&tag("Size", &o.size.to_string()));
                body.push_str("<StorageClass>STANDARD</StorageClass></Contents>");
            }
            Entry::Prefix(p) => {
                body.push_str("<CommonPrefixes>");
                body.push_str(&tag("Prefix", &enc(p)));
                body.push_str("</CommonPrefixes>");
            }
        }
    }
    body.push_str("</ListBucketResult>");
    Ok(body)
}

async fn get_object(bucket: &Bucket, key: &str, head_only: bool, range: Option<&str>) -> Result<Reply, ApiError> {
    let info = bucket.head(key).await?;
    let range = match range.filter(|_| !head_only).and_then(parse_range) {
        None => None,
        Some(spec) => match spec.resolve(info.size) {
            Some(r) => Some(r),
            None => {
                return Err(ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                ));
            }
        },
    };
    let mut headers = vec![
        ("last-modified".to_string(), info.last_modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
        ("content-type".to_string(), content_type(key).to_string()),
        ("accept-ranges".to_string(), "bytes".to_string()),
    ];
    if let Some(etag) = &info.etag {
        headers.push(("etag".into(), format!("\"{etag}\"")));
    }
    for (name, value) in &info.metadata {
        headers.push((format!("x-amz-meta-{name}"), value.clone()));
    }
    let length = range.as_ref().map_or(info.size, |r| r.end - r.start);
    headers.push(("content-length".into(), length.to_string()));
    if head_only {
        return Ok(Reply::Http { status: StatusCode::OK, headers, body: Body::empty() });
    }
    let status = match &range {
        Some(r) => {
            headers.push(("content-range".into(), format!("bytes {}-{}/{}", r.start, r.end - 1, info.size)));
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    // Streamed: an object is never held whole in memory.
    let stream = bucket.get_stream(key, range).await?;
    let body = Body::from_stream(stream.body.map(|chunk| chunk.map_err(std::io::Error::other)));
    Ok(Reply::Http { status, headers, body })
}

/// A `Range: bytes=…` header: a first-last, first- or -suffix range. Anything else (several ranges, other
/// units, garbage) is ignored and the whole object sent, as S3 does.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    From { first: u64, last: Option<u64> },
    Suffix(u64),
}

fn parse_range(h: &str) -> Option<RangeSpec> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return b.parse().ok().map(RangeSpec::Suffix);
    }
    let first = a.parse().ok()?;
    let last = if b.is_empty() { None } else { Some(b.parse().ok()?) };
    if last.is_some_and(|l| l < first) {
        return None;
    }
    Some(RangeSpec::From { first, last })
}

impl RangeSpec {
    /// The byte range of an object of `size` bytes; `None` when not satisfiable.
    fn resolve(&self, size: u64) -> Option<std::ops::Range<u64>> {
        match *self {
            RangeSpec::From { first, .. } if first >= size => None,
            RangeSpec::From { first, last } => Some(first..last.map_or(size, |l| (l + 1).min(size))),
            RangeSpec::Suffix(0) => None,
            RangeSpec::Suffix(_) if size == 0 => None,
            RangeSpec::Suffix(n) => Some(size - n.min(size)..size),
        }
    }
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".json") { "application/json" } else { "application/octet-stream" }
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// S3's `encoding-type=url`: every byte but the unreserved ones and `/` percent-encoded.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_s3_does() {
        let r = |h: &str, size: u64| parse_range(h).map(|s| s.resolve(size));
        assert_eq!(r("bytes=2-4", 10), Some(Some(2..5)));
        assert_eq!(r("bytes=8-100", 10), Some(Some(8..10)));
        assert_eq!(r("bytes=3-", 10), Some(Some(3..10)));
        assert_eq!(r("bytes=-4", 10), Some(Some(6..10)));
        assert_eq!(r("bytes=-40", 10), Some(Some(0..10)));
        assert_eq!(r("bytes=10-", 10), Some(None));
        assert_eq!(r("bytes=-0", 10), Some(None));
        assert_eq!(r("bytes=5-2", 10), None);
        assert_eq!(r("bytes=0-1,4-5", 10), None);
        assert_eq!(r("items=0-1", 10), None);
        assert_eq!(r("bytes=x-1", 10), None);
    }

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved() {
        assert_eq!(url_encode("AWSLogs/a b+c~_.-/é"), "AWSLogs/a%20b%2Bc~_.-/%C3%A9");
    }
}
