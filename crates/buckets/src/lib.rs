//! Buckets: where log files and digests are delivered, and where the S3 read API finds them. A bucket is a
//! local folder or an S3 bucket, and both are served by ONE code path over `object_store`
//! (`LocalFileSystem` or `AmazonS3`, path-style): write once, read, head, list.
//!
//! Write once. [`Bucket::put_once`] never overwrites (an existing key is [`BucketError::Exists`], with its
//! size). In a local folder the object is written to a temp file and linked into place by `object_store`
//! (`PutMode::Create`), then fsync'd with its directory and made read-only (0444); its user metadata lives
//! in a sidecar tree, `<root>/.opentrail-meta/<key>.json`, written first and crash-safely (see
//! `docs/formats/buckets.md`). In S3 the metadata is `x-amz-meta-*`, the PUT is conditional
//! (`If-None-Match: *`), and with Object Lock every PUT carries `x-amz-object-lock-mode`,
//! `x-amz-object-lock-retain-until-date` and `Content-MD5`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig,
};

/// The hidden folder of a local bucket that holds the objects' user metadata; never a key, never listed.
pub const META_DIR: &str = ".opentrail-meta";
/// Hard-coded: a request to S3 is retried this many times by `object_store` before the error is returned
/// (the delivery has its own back-off above it).
const S3_MAX_RETRIES: usize = 3;
/// Hard-coded: how long `object_store` keeps retrying one request.
const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// Hard-coded: connect and request timeouts of the S3 client.
const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a bucket lives (from `[buckets.<name>]`, or `<data-dir>/buckets/<name>` when not configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketTarget {
    Local { root: PathBuf },
    S3(S3Target),
}

/// An S3 (or S3-compatible) bucket, addressed path-style at `endpoint`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Target {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub object_lock: Option<ObjectLock>,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("object_lock", &self.object_lock)
            .finish_non_exhaustive()
    }
}

/// Object Lock retention put on every object written to an S3 bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: LockMode,
    pub days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    /// The value of `x-amz-object-lock-mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// Whether an `http://` endpoint host is loopback (the only place plain HTTP is allowed).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of an `http://` or `https://` URL, `None` when it is neither.
pub fn endpoint_host(endpoint: &str) -> Option<(&'static str, &str)> {
    let (scheme, rest) = if let Some(r) = endpoint.strip_prefix("http://") {
        ("http", r)
    } else if let Some(r) = endpoint.strip_prefix("https://") {
        ("https", r)
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then_some((scheme, host))
}

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("s3://{bucket}/{key}: no such object")]
    NotFound { bucket: String, key: String },
    #[error("s3://{bucket}/{key}: already exists ({size} bytes); objects are written once")]
    Exists { bucket: String, key: String, size: u64 },
    #[error("s3://{bucket}/{key}: not a valid object key: {reason}")]
    InvalidKey { bucket: String, key: String, reason: String },
    #[error("bucket {bucket}: unreachable: {reason}")]
    Unreachable { bucket: String, reason: String },
    #[error("bucket {bucket}: access denied to {key}: {reason}")]
    Denied { bucket: String, key: String, reason: String },
    #[error("bucket {bucket}: {op} {key}: {reason}")]
    Other { bucket: String, key: String, op: &'static str, reason: String },
}

/// What is known of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// Without quotes.
    pub etag: Option<String>,
    /// User metadata, names without `x-amz-meta-` (lower case).
    pub metadata: BTreeMap<String, String>,
}

/// An object's bytes (or the requested range of them) and what is known of it.
#[derive(Debug, Clone)]
pub struct Object {
    pub info: ObjectInfo,
    /// The range of the object `body` holds.
    pub range: Range<u64>,
    pub body: Bytes,
}

/// An object's bytes as a stream, for answers too big to hold whole.
pub struct ObjectStream {
    pub info: ObjectInfo,
    pub range: Range<u64>,
    pub body: BoxStream<'static, Result<Bytes, BucketError>>,
}

#[derive(Debug, Clone)]
enum Kind {
    Local { root: PathBuf, fs: Arc<LocalFileSystem> },
    S3 { target: S3Target },
}

/// One bucket: a local folder or an S3 bucket behind the same `ObjectStore`.
#[derive(Debug, Clone)]
pub struct Bucket {
    name: String,
    kind: Kind,
    store: Arc<dyn ObjectStore>,
}

impl Bucket {
    /// Opens the bucket (a local folder is created when missing). No request is made to S3.
    pub fn open(name: &str, target: &BucketTarget) -> Result<Bucket, BucketError> {
        let other = |op: &'static str, reason: String| BucketError::Other {
            bucket: name.to_string(),
            key: String::new(),
            op,
            reason,
        };
        match target {
            BucketTarget::Local { root } => {
                std::fs::create_dir_all(root)
                    .map_err(|e| other("create folder", format!("{}: {e}", root.display())))?;
                let fs = LocalFileSystem::new_with_prefix(root)
                    .map_err(|e| other("open folder", format!("{}: {e}", root.display())))?;
                let fs = Arc::new(fs);
                Ok(Bucket { name: name.to_string(), store: fs.clone(), kind: Kind::Local { root: root.clone(), fs } })
            }
            BucketTarget::S3(t) => {
                let store = s3_store(name, t, None).map_err(|e| other("configure S3 client for", e))?;
                Ok(Bucket { name: name.to_string(), store: Arc::new(store), kind: Kind::S3 { target: t.clone() } })
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder of a local bucket; `None` for S3.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Local { root, .. } => Some(root),
            Kind::S3 { .. } => None,
        }
    }

    /// Writes a new object; never overwrites: an existing key is [`BucketError::Exists`] with its size (a
    /// caller recovering from a crash compares it). `metadata` is user metadata, names without `x-amz-meta-`.
    pub async fn put_once(&self, key: &str, bytes: Bytes, metadata: &[(&str, &str)]) -> Result<(), BucketError> {
        let path = self.path(key)?;
        for (name, value) in metadata {
            if !valid_meta_name(name) || value.bytes().any(|b| b.is_ascii_control()) {
                return Err(BucketError::InvalidKey {
                    bucket: self.name.clone(),
                    key: key.to_string(),
                    reason: format!("metadata {name:?} must be a lower-case token with a printable value"),
                });
            }
        }
        let mut opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        // S3 with Object Lock: a client for this one PUT, whose default headers carry the retention.
        let mut lock_store = None;
        match &self.kind {
            Kind::Local { .. } => {
                // The sidecar first: an object is never visible without its metadata. A crash between the
                // two leaves a sidecar with no object, which the retried put replaces.
                self.remove_staging_leftovers(&path, key).await?;
                if let Some(existing) = self.existing_size(&path).await? {
                    // A crash between the link into place and the seal leaves the object writable and maybe
                    // not durable; the retry that finds it (and counts it delivered) finishes the seal.
                    self.seal_local(&path, key).await?;
                    return Err(self.exists(key, existing));
                }
                if !metadata.is_empty() {
                    let sidecar = self.sidecar(&path)?;
                    let doc: BTreeMap<&str, &str> = metadata.iter().copied().collect();
                    let text = serde_json::to_vec(&serde_json::json!({ "metadata": doc }))
                        .map_err(|e| self.other("encode metadata of", key, e.to_string()))?;
                    blocking(move || atomic_file::write_atomic(&sidecar, &text, 0o444).map_err(|e| e.to_string()))
                        .await
                        .map_err(|e| self.other("write metadata of", key, e))?;
                }
            }
            Kind::S3 { target } => {
                let mut attrs = Attributes::new();
                for (name, value) in metadata {
                    attrs.insert(
                        Attribute::Metadata((*name).to_string().into()),
                        AttributeValue::from(value.to_string()),
                    );
                }
                opts.attributes = attrs;
                if let Some(lock) = target.object_lock {
                    let until = Utc::now() + chrono::Duration::days(i64::from(lock.days));
                    let headers = lock_headers(lock.mode, until, &bytes);
                    let store = s3_store(&self.name, target, Some(headers)).map_err(|e| self.other("put", key, e))?;
                    lock_store = Some(store);
                }
            }
        }
        let payload = PutPayload::from_bytes(bytes);
        let put = match &lock_store {
            Some(store) => store.put_opts(&path, payload, opts).await,
            None => self.store.put_opts(&path, payload, opts).await,
        };
        match put {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                let size = self.existing_size(&path).await?.unwrap_or(0);
                return Err(self.exists(key, size));
            }
            Err(e) => return Err(self.error("put", key, e)),
        }
        if let Kind::Local { .. } = &self.kind {
            self.seal_local(&path, key).await?;
        }
        Ok(())
    }

    /// Removes `<key>#<n>` files beside a local object: what `LocalFileSystem` was writing when a crash
    /// stopped a put of this key (the put that finds them is the retry; keys are written by one writer).
    async fn remove_staging_leftovers(&self, path: &StorePath, key: &str) -> Result<(), BucketError> {
        let Kind::Local { fs, .. } = &self.kind else { return Ok(()) };
        let file = fs.path_to_filesystem(path).map_err(|e| self.error("put", key, e))?;
        blocking(move || {
            let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) else {
                return Ok(());
            };
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            for entry in entries.flatten() {
                let other = entry.file_name();
                let Some(other) = other.to_str() else { continue };
                if other.strip_prefix(name).and_then(|r| r.strip_prefix('#')).is_some_and(all_digits) {
                    std::fs::remove_file(entry.path()).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| self.other("clean up before a put of", key, e))
    }

    /// Makes a local object durable with its folders and read-only (idempotent).
    async fn seal_local(&self, path: &StorePath, key: &str) -> Result<(), BucketError> {
        let Kind::Local { fs, .. } = &self.kind else { return Ok(()) };
        let file = fs.path_to_filesystem(path).map_err(|e| self.error("put", key, e))?;
        let root = std::fs::canonicalize(self.local_root().unwrap_or(Path::new("."))).unwrap_or_default();
        blocking(move || seal(&file, &root)).await.map_err(|e| self.other("fsync", key, e))
    }

    /// The object, or `range` of it (clamped to its end; a range starting at or past the end is an error).
    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Object, BucketError> {
        let s = self.get_stream(key, range).await?;
        let chunks: Vec<Bytes> = s.body.try_collect().await?;
        let body =
            if chunks.len() == 1 { chunks.into_iter().next().unwrap_or_default() } else { chunks.concat().into() };
        Ok(Object { info: s.info, range: s.range, body })
    }

    /// The object, or `range` of it, as a stream of chunks.
    pub async fn get_stream(&self, key: &str, range: Option<Range<u64>>) -> Result<ObjectStream, BucketError> {
        let path = self.path(key)?;
        let opts = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let got = self.store.get_opts(&path, opts).await.map_err(|e| self.error("get", key, e))?;
        let range = got.range.clone();
        let mut info = self.info_of(&got.meta, &got.attributes);
        if let Kind::Local { .. } = self.kind {
            info.metadata = self.local_metadata(&path, key).await?;
        }
        let (bucket, k) = (self.name.clone(), key.to_string());
        let body = got.into_stream().map_err(move |e| classify(&bucket, &k, "read", e)).boxed_stream();
        Ok(ObjectStream { info, range, body })
    }

    /// Size, last modified, ETag and user metadata.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, BucketError> {
        let path = self.path(key)?;
        match &self.kind {
            Kind::Local { .. } => {
                let meta = self.store.head(&path).await.map_err(|e| self.error("head", key, e))?;
                let mut info = self.info_of(&meta, &Attributes::new());
                info.metadata = self.local_metadata(&path, key).await?;
                Ok(info)
            }
            Kind::S3 { .. } => {
                // A HEAD through get_opts keeps the response's x-amz-meta-* (plain `head` drops them).
                let opts = GetOptions { head: true, ..Default::default() };
                let got = self.store.get_opts(&path, opts).await.map_err(|e| self.error("head", key, e))?;
                Ok(self.info_of(&got.meta, &got.attributes))
            }
        }
    }

    /// Up to `limit` objects whose key starts with `prefix` (a plain string prefix, as S3's) and sorts after
    /// `start_after`, sorted by key. Metadata is not filled in (use [`Bucket::head`]).
    pub async fn list(
        &self,
        prefix: Option<&str>,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, BucketError> {
        let prefix = prefix.unwrap_or("");
        // object_store lists by whole path segments: list the folder the prefix is in, filter the rest.
        let folder = prefix.rfind('/').map(|i| &prefix[..i]).filter(|f| !f.is_empty());
        let folder = match folder {
            Some(f) => match StorePath::parse(f) {
                Ok(p) => Some(p),
                // No object can be under a folder that is not a valid path.
                Err(_) => return Ok(Vec::new()),
            },
            None => None,
        };
        let stream = match start_after {
            Some(after) => self.store.list_with_offset(folder.as_ref(), &StorePath::from(after)),
            None => self.store.list(folder.as_ref()),
        };
        let sorted_by_store = matches!(self.kind, Kind::S3 { .. });
        let mut out = Vec::new();
        let mut stream = stream;
        while let Some(meta) = stream.try_next().await.map_err(|e| self.error("list", prefix, e))? {
            let key = meta.location.as_ref();
            if key.starts_with(META_DIR) && key[META_DIR.len()..].starts_with('/') {
                continue;
            }
            if matches!(self.kind, Kind::Local { .. }) && is_staging_leftover(key) {
                // `LocalFileSystem` writes `<key>#<n>` and renames it into place: one left by a crash is
                // not an object (the next put of its key removes it).
                continue;
            }
            if !key.starts_with(prefix) || start_after.is_some_and(|a| key <= a) {
                continue;
            }
            out.push(self.info_of(&meta, &Attributes::new()));
            if sorted_by_store && out.len() >= limit {
                break;
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.truncate(limit);
        Ok(out)
    }

    fn path(&self, key: &str) -> Result<StorePath, BucketError> {
        let invalid = |reason: String| BucketError::InvalidKey { bucket: self.name.clone(), key: key.into(), reason };
        if key.is_empty() || key.len() > 1024 {
            return Err(invalid("a key is 1 to 1024 bytes".into()));
        }
        if key == META_DIR || key.starts_with(&format!("{META_DIR}/")) {
            return Err(invalid(format!("{META_DIR}/ holds the bucket's metadata")));
        }
        StorePath::parse(key).map_err(|e| invalid(e.to_string()))
    }

    fn info_of(&self, meta: &object_store::ObjectMeta, attrs: &Attributes) -> ObjectInfo {
        let metadata = attrs
            .iter()
            .filter_map(|(k, v)| match k {
                Attribute::Metadata(name) => Some((name.to_ascii_lowercase(), v.as_ref().to_string())),
                _ => None,
            })
            .collect();
        ObjectInfo {
            key: meta.location.as_ref().to_string(),
            size: meta.size,
            last_modified: meta.last_modified,
            etag: meta.e_tag.as_ref().map(|e| e.trim_matches('"').to_string()),
            metadata,
        }
    }

    /// `<root>/.opentrail-meta/<key>.json` for the object at `path` of a local bucket.
    fn sidecar(&self, path: &StorePath) -> Result<PathBuf, BucketError> {
        let Kind::Local { root, fs } = &self.kind else {
            return Err(self.other("find metadata of", path.as_ref(), "not a local bucket".into()));
        };
        let file = fs.path_to_filesystem(path).map_err(|e| self.error("find metadata of", path.as_ref(), e))?;
        // path_to_filesystem is under the canonical root, which may differ from `root` (symlinks).
        let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
        let rel = file
            .strip_prefix(&canonical)
            .or_else(|_| file.strip_prefix(root))
            .map_err(|_| self.other("find metadata of", path.as_ref(), "object is outside its bucket".into()))?;
        let mut name = canonical.join(META_DIR).join(rel).into_os_string();
        name.push(".json");
        Ok(PathBuf::from(name))
    }

    async fn local_metadata(&self, path: &StorePath, key: &str) -> Result<BTreeMap<String, String>, BucketError> {
        let sidecar = self.sidecar(path)?;
        let text = match tokio::fs::read(&sidecar).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.other("read metadata of", key, format!("{}: {e}", sidecar.display()))),
        };
        #[derive(serde::Deserialize)]
        struct Sidecar {
            metadata: BTreeMap<String, String>,
        }
        let doc: Sidecar = serde_json::from_slice(&text)
            .map_err(|e| self.other("read metadata of", key, format!("{}: {e}", sidecar.display())))?;
        Ok(doc.metadata)
    }

    async fn existing_size(&self, path: &StorePath) -> Result<Option<u64>, BucketError> {
        match self.store.head(path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("head", path.as_ref(), e)),
        }
    }

    fn exists(&self, key: &str, size: u64) -> BucketError {
        BucketError::Exists { bucket: self.name.clone(), key: key.to_string(), size }
    }

    fn other(&self, op: &'static str, key: &str, reason: String) -> BucketError {
        BucketError::Other { bucket: self.name.clone(), key: key.to_string(), op, reason }
    }

    fn error(&self, op: &'static str, key: &str, e: object_store::Error) -> BucketError {
        classify(&self.name, key, op, e)
    }
}

/// An `object_store` error as the delivery and the read API need it: missing, existing, unreachable
/// (retry later), denied, or anything else.
fn classify(bucket: &str, key: &str, op: &'static str, e: object_store::Error) -> BucketError {
    let (bucket, key) = (bucket.to_string(), key.to_string());
    match e {
        object_store::Error::NotFound { .. } => BucketError::NotFound { bucket, key },
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            BucketError::Exists { bucket, key, size: 0 }
        }
        object_store::Error::PermissionDenied { source, .. } | object_store::Error::Unauthenticated { source, .. } => {
            BucketError::Denied { bucket, key, reason: chain(&*source) }
        }
        e => {
            let reason = chain(&e);
            if transient(&e, &reason) {
                BucketError::Unreachable { bucket, reason }
            } else {
                BucketError::Other { bucket, key, op, reason }
            }
        }
    }
}

/// A connection or timeout failure anywhere in the error's causes, or a 5xx / throttling answer from S3
/// (`object_store` hides its retry error type, so its status is read from the message).
fn transient(e: &(dyn std::error::Error + 'static), text: &str) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            if matches!(h.kind(), K::Connect | K::Timeout | K::Interrupted | K::Request) {
                return true;
            }
        }
        cur = err.source();
    }
    text.contains("status code: 5") || text.contains("SlowDown") || text.contains("status code: 429")
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let t = err.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = err.source();
    }
    s
}

/// `x-amz-meta-` names: what S3 and HTTP headers both accept, lower case.
fn valid_meta_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The headers of an Object Lock PUT: mode, retain-until (ISO-8601, whole seconds) and the Content-MD5 S3
/// requires with them.
fn lock_headers(mode: LockMode, until: DateTime<Utc>, body: &[u8]) -> object_store::HeaderMap {
    use base64::Engine as _;
    use md5::Digest as _;
    let mut h = object_store::HeaderMap::new();
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
    let until = until.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for (name, value) in [
        ("x-amz-object-lock-mode", mode.as_str().to_string()),
        ("x-amz-object-lock-retain-until-date", until),
        ("content-md5", md5),
    ] {
        if let Ok(v) = object_store::HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    h
}

fn s3_store(
    name: &str,
    t: &S3Target,
    headers: Option<object_store::HeaderMap>,
) -> Result<object_store::aws::AmazonS3, String> {
    let plain_http = match endpoint_host(&t.endpoint) {
        Some(("http", host)) if is_loopback_host(host) => true,
        Some(("http", host)) => return Err(format!("plain http is allowed only to loopback, not {host}")),
        Some(_) => false,
        None => return Err(format!("endpoint {:?} is not an http(s) URL", t.endpoint)),
    };
    let mut client = ClientOptions::new()
        .with_allow_http(plain_http)
        .with_connect_timeout(S3_CONNECT_TIMEOUT)
        .with_timeout(S3_REQUEST_TIMEOUT);
    if let Some(h) = headers {
        client = client.with_default_headers(h);
    }
    AmazonS3Builder::new()
        .with_bucket_name(name)
        .with_endpoint(t.endpoint.trim_end_matches('/'))
        .with_region(&t.region)
        .with_access_key_id(&t.access_key_id)
        .with_secret_access_key(&t.secret_access_key)
        .with_virtual_hosted_style_request(false)
        .with_client_options(client)
        .with_retry(RetryConfig { max_retries: S3_MAX_RETRIES, retry_timeout: S3_RETRY_TIMEOUT, ..Default::default() })
        .build()
        .map_err(|e| e.to_string())
}

/// After the link into place: the file's bytes and its directory entries (up to the bucket's root: the put
/// may have created folders) made durable, the file read-only.
fn seal(file: &Path, root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let f = std::fs::File::open(file).map_err(|e| format!("open {}: {e}", file.display()))?;
    f.sync_all().map_err(|e| format!("fsync {}: {e}", file.display()))?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o444))
        .map_err(|e| format!("chmod 0444 {}: {e}", file.display()))?;
    f.sync_all().map_err(|e| format!("fsync {}: {e}", file.display()))?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        std::fs::File::open(d)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("fsync directory {}: {e}", d.display()))?;
        if d == root || !d.starts_with(root) {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())?
}

trait BoxStreamExt<T>: futures::Stream<Item = T> + Sized + Send + 'static {
    fn boxed_stream(self) -> BoxStream<'static, T> {
        Box::pin(self)
    }
}

impl<T, S: futures::Stream<Item = T> + Send + 'static> BoxStreamExt<T> for S {}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a local key is a staging file of `LocalFileSystem` (`<key>#<n>`) rather than an object.
fn is_staging_leftover(key: &str) -> bool {
    key.rsplit_once('#').is_some_and(|(_, n)| all_digits(n))
}
