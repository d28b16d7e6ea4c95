//! Every operation opentrail answers, parsed once from the request line and headers, with the facts the
//! one request path needs about it: the IAM action it is authorized as, whether it reads or changes state,
//! how its audit record is made durable, its body limit, and the SigV4 signing name it must be scoped to.
//! A new operation is one variant, one row in [`Operation::info`] and one handler.

use axum::http::{HeaderMap, Method};

/// The surface an operation belongs to: decides the wire format of answers and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `POST /` with `X-Amz-Target` (AWS JSON 1.1).
    CloudTrail,
    /// `POST /PutAuditEvents?channelArn=…` (REST-JSON).
    CloudTrailData,
    /// opentrail's own API: `/v1/events`, `/v1/event-counts`, `/v1/keys/rotate`.
    Native,
    /// The S3 read API over local-folder buckets: path-style `GET|HEAD /<bucket>[/<key>]` (REST-XML).
    S3,
}

impl Surface {
    /// The signing names a request to this surface may be scoped to.
    pub fn signing_names(self) -> &'static [&'static str] {
        match self {
            Surface::CloudTrail => &["cloudtrail"],
            Surface::CloudTrailData => &["cloudtrail-data"],
            Surface::Native => &["opentrail"],
            Surface::S3 => &["s3"],
        }
    }

    /// `eventSource` of the audit records of calls to this surface.
    pub fn event_source(self) -> &'static str {
        match self {
            Surface::CloudTrail => "cloudtrail.amazonaws.com",
            Surface::CloudTrailData => "cloudtrail-data.amazonaws.com",
            Surface::Native => "opentrail",
            Surface::S3 => "s3.amazonaws.com",
        }
    }
}

/// How a call's effect and its audit record are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Changes nothing: the audit record is queued for the next group commit before the answer is sent.
    Read,
    /// Changes control-plane state (trails, channels): the call is first run against a copy of the state,
    /// its audit record made durable, and only then applied, so a call whose record cannot be written
    /// changes nothing.
    ControlPlane,
    /// Stores records: the records and the call's audit record go to the journal in one group commit.
    Records,
    /// A write this server refuses whatever the caller may do (the S3 read API's PUT/POST/DELETE: the files
    /// are write-once): answered with an error, audited as a failed write, changes nothing.
    Refused,
}

macro_rules! operations {
    ($( $variant:ident $(as $name:literal)? => $surface:ident, $effect:ident ;)*) => {
        /// An operation opentrail answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation { $( $variant, )* }

        impl Operation {
            pub const ALL: &'static [Operation] = &[ $( Operation::$variant, )* ];

            /// The operation's name: its `eventName`, metric label and IAM action; the variant's name
            /// unless the table gives another (`as "…"`).
            pub fn name(self) -> &'static str {
                match self { $( Operation::$variant => operations!(@name $variant $($name)?), )* }
            }

            pub fn surface(self) -> Surface {
                match self { $( Operation::$variant => Surface::$surface, )* }
            }

            pub fn effect(self) -> Effect {
                match self { $( Operation::$variant => Effect::$effect, )* }
            }
        }
    };
    (@name $variant:ident) => { stringify!($variant) };
    (@name $variant:ident $name:literal) => { $name };
}

operations! {
    LookupEvents => CloudTrail, Read;
    ListPublicKeys => CloudTrail, Read;
    CreateTrail => CloudTrail, ControlPlane;
    GetTrail => CloudTrail, Read;
    DescribeTrails => CloudTrail, Read;
    ListTrails => CloudTrail, Read;
    UpdateTrail => CloudTrail, ControlPlane;
    DeleteTrail => CloudTrail, ControlPlane;
    GetTrailStatus => CloudTrail, Read;
    StartLogging => CloudTrail, ControlPlane;
    StopLogging => CloudTrail, ControlPlane;
    PutEventSelectors => CloudTrail, ControlPlane;
    GetEventSelectors => CloudTrail, Read;
    PutInsightSelectors => CloudTrail, ControlPlane;
    GetInsightSelectors => CloudTrail, Read;
    AddTags => CloudTrail, ControlPlane;
    RemoveTags => CloudTrail, ControlPlane;
    ListTags => CloudTrail, Read;
    CreateChannel => CloudTrail, ControlPlane;
    GetChannel => CloudTrail, Read;
    ListChannels => CloudTrail, Read;
    UpdateChannel => CloudTrail, ControlPlane;
    DeleteChannel => CloudTrail, ControlPlane;
    CreateEventDataStore => CloudTrail, ControlPlane;
    GetEventDataStore => CloudTrail, Read;
    ListEventDataStores => CloudTrail, Read;
    UpdateEventDataStore => CloudTrail, ControlPlane;
    DeleteEventDataStore => CloudTrail, ControlPlane;
    StartEventDataStoreIngestion => CloudTrail, ControlPlane;
    StopEventDataStoreIngestion => CloudTrail, ControlPlane;
    // Queries are kept in memory, not control-plane state: their calls are recorded as reads are (queued
    // for the next group commit before the answer).
    StartQuery => CloudTrail, Read;
    DescribeQuery => CloudTrail, Read;
    GetQueryResults => CloudTrail, Read;
    CancelQuery => CloudTrail, Read;
    ListQueries => CloudTrail, Read;
    PutAuditEvents => CloudTrailData, Records;
    PutEvents => Native, Records;
    GetEvent => Native, Read;
    // LookupEvents on the native API (`POST /v1/lookup`): the same request and answer, pages of up to
    // `lookup::NATIVE_MAX_RESULTS`; recorded, authorized and rate-limited as LookupEvents.
    NativeLookupEvents as "LookupEvents" => Native, Read;
    GetEventCounts => Native, Read;
    RotateSigningKey => Native, ControlPlane;
    ListBuckets => S3, Read;
    GetBucketLocation => S3, Read;
    HeadBucket => S3, Read;
    ListObjects => S3, Read;
    ListObjectsV2 => S3, Read;
    GetObject => S3, Read;
    HeadObject => S3, Read;
    PutObject => S3, Refused;
    DeleteObject => S3, Refused;
    DeleteObjects => S3, Refused;
    CreateBucket => S3, Refused;
    DeleteBucket => S3, Refused;
}

/// Hard-coded: the largest body of a CloudTrail API request (their inputs are small).
pub const MAX_API_BODY_BYTES: usize = 1024 * 1024;
/// Hard-coded: the longest operation name kept from an unknown `X-Amz-Target` for its audit record.
const MAX_UNKNOWN_NAME_CHARS: usize = 128;

/// The two spellings of the CloudTrail target prefix: botocore's long form and the service shape name the
/// Smithy-generated SDKs (JavaScript v3, Go v2, Rust, Java v2, …) send.
const TARGET_PREFIXES: [&str; 2] = ["com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.", "CloudTrail_20131101."];

impl Operation {
    /// The IAM-style action the caller's role and policy must allow.
    pub fn action(self) -> String {
        let service = match self.surface() {
            // One permission governs the event history, whichever surface reads it.
            Surface::CloudTrail => "cloudtrail",
            Surface::Native if self == Operation::NativeLookupEvents => "cloudtrail",
            Surface::CloudTrailData => "cloudtrail-data",
            Surface::Native => "opentrail",
            // S3's IAM actions are not all named as its operations.
            Surface::S3 => {
                let action = match self {
                    Operation::ListBuckets => "ListAllMyBuckets",
                    Operation::HeadBucket | Operation::ListObjects | Operation::ListObjectsV2 => "ListBucket",
                    Operation::GetObject | Operation::HeadObject => "GetObject",
                    Operation::DeleteObjects => "DeleteObject",
                    other => other.name(),
                };
                return format!("s3:{action}");
            }
        };
        format!("{service}:{}", self.name())
    }

    /// An S3 call on an object (a data event in CloudTrail's terms) rather than on a bucket or the account.
    pub fn is_s3_object_call(self) -> bool {
        matches!(self, Operation::GetObject | Operation::HeadObject | Operation::PutObject | Operation::DeleteObject)
    }

    /// A call whose commit the lake's views must follow (started, given new selectors, stopped).
    pub fn changes_event_data_stores(self) -> bool {
        matches!(
            self,
            Operation::CreateEventDataStore
                | Operation::UpdateEventDataStore
                | Operation::DeleteEventDataStore
                | Operation::StartEventDataStoreIngestion
                | Operation::StopEventDataStoreIngestion
        )
    }

    pub fn read_only(self) -> bool {
        self.effect() == Effect::Read
    }

    /// Per-key rate limits (`[rate_limits]`) apply to the CloudTrail APIs and the S3 read API, as AWS
    /// throttles them, and to the native LookupEvents (in the same bucket as LookupEvents: it is no way
    /// around the limit).
    pub fn rate_limited(self) -> bool {
        self.surface() != Surface::Native || self == Operation::NativeLookupEvents
    }

    /// The largest body the operation reads: `[server] max_request_bytes` for the native ingest API, the
    /// documented 1 MiB of PutAuditEvents, [`MAX_API_BODY_BYTES`] for the CloudTrail API, none for GetEvent.
    pub fn max_body_bytes(self, server: &service::ServerConfig) -> usize {
        match self {
            Operation::PutEvents => server.max_request_bytes,
            Operation::PutAuditEvents => service::audit_events::MAX_REQUEST_BYTES,
            Operation::GetEvent | Operation::GetEventCounts => 0,
            // S3 reads carry no body; a refused write's body is read (within the API limit) only to check
            // its signature.
            op if op.surface() == Surface::S3 && op.read_only() => 0,
            _ => MAX_API_BODY_BYTES,
        }
    }

    fn by_name(name: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|op| op.name() == name && op.surface() == Surface::CloudTrail)
    }
}

/// What a request asks for: a known operation, or what an unknown one called itself (for the error and
/// its audit record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// `event_id` for GetEvent, `s3` for the S3 read API (which bucket and key).
    Known {
        op: Operation,
        event_id: Option<String>,
        s3: Option<S3Address>,
    },
    Unknown {
        surface: Surface,
        name: String,
        reason: UnknownReason,
    },
}

/// What an S3 request addresses: a bucket, and a key in it (percent-decoded) or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Address {
    pub bucket: String,
    pub key: Option<String>,
}

impl S3Address {
    /// `/bucket` or `/bucket/key`: the `Resource` of S3 errors.
    pub fn resource(&self) -> String {
        match &self.key {
            Some(k) => format!("/{}/{k}", self.bucket),
            None => format!("/{}", self.bucket),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownReason {
    MissingTarget,
    UnknownTarget { target: String },
    NoRoute { method: String, path: String },
}

impl Requested {
    /// Parses the request line and headers. Never fails: what is not an operation is `Unknown`.
    pub fn parse(method: &Method, path: &str, query: &str, headers: &HeaderMap) -> Requested {
        let known = |op| Requested::Known { op, event_id: None, s3: None };
        if method == Method::POST && path == "/" {
            let Some(target) = headers.get("x-amz-target").map(|v| String::from_utf8_lossy(v.as_bytes())) else {
                return Requested::Unknown {
                    surface: Surface::CloudTrail,
                    name: String::new(),
                    reason: UnknownReason::MissingTarget,
                };
            };
            let name = TARGET_PREFIXES.iter().find_map(|p| target.strip_prefix(p));
            return match name.and_then(Operation::by_name) {
                Some(op) => known(op),
                None => Requested::Unknown {
                    surface: Surface::CloudTrail,
                    name: clip(name.unwrap_or(&target)),
                    reason: UnknownReason::UnknownTarget { target: clip(&target) },
                },
            };
        }
        if method == Method::POST && path == "/PutAuditEvents" {
            return known(Operation::PutAuditEvents);
        }
        if method == Method::POST && path == "/v1/events" {
            return known(Operation::PutEvents);
        }
        if method == Method::POST && path == "/v1/lookup" {
            return known(Operation::NativeLookupEvents);
        }
        if method == Method::POST && path == "/v1/keys/rotate" {
            return known(Operation::RotateSigningKey);
        }
        if method == Method::GET && path == "/v1/event-counts" {
            return known(Operation::GetEventCounts);
        }
        if method == Method::GET
            && let Some(id) = path.strip_prefix("/v1/events/")
        {
            return Requested::Known { op: Operation::GetEvent, event_id: Some(percent_decode(id)), s3: None };
        }
        if let Some(s3) = Requested::parse_s3(method, path, query) {
            return s3;
        }
        let surface = if path.starts_with("/v1/") { Surface::Native } else { Surface::CloudTrail };
        Requested::Unknown {
            surface,
            name: String::new(),
            reason: UnknownReason::NoRoute { method: method.to_string(), path: clip(path) },
        }
    }

    /// The S3 read API: `GET|HEAD /` (ListBuckets) and path-style `/<bucket>[/<key>]` whose first segment is a
    /// valid bucket name (so `/healthz`-like words are buckets only on other methods than theirs, and `/v1/…`
    /// or `/PutAuditEvents` never are). PUT/POST/DELETE are parsed as the writes they are, to be refused.
    fn parse_s3(method: &Method, path: &str, query: &str) -> Option<Requested> {
        let rest = path.strip_prefix('/')?;
        let s3 = |op, s3: Option<S3Address>| Some(Requested::Known { op, event_id: None, s3 });
        if rest.is_empty() {
            return match *method {
                Method::GET | Method::HEAD => s3(Operation::ListBuckets, None),
                _ => None,
            };
        }
        let (bucket, key) = match rest.split_once('/') {
            Some((b, k)) => (b, (!k.is_empty()).then(|| percent_decode(k))),
            None => (rest, None),
        };
        service::trails::check_bucket_name(bucket).ok()?;
        let addr = Some(S3Address { bucket: bucket.to_string(), key: key.clone() });
        let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
        let unknown_sub = || {
            query.split('&').filter(|p| !p.is_empty()).map(|p| p.split('=').next().unwrap_or("")).find(|name| {
                !matches!(
                    *name,
                    "location"
                        | "list-type"
                        | "prefix"
                        | "delimiter"
                        | "marker"
                        | "max-keys"
                        | "continuation-token"
                        | "start-after"
                        | "encoding-type"
                        | "fetch-owner"
                        | "x-id"
                        | "response-content-type"
                )
            })
        };
        let no_route = |name: &str| {
            Some(Requested::Unknown {
                surface: Surface::S3,
                name: clip(name),
                reason: UnknownReason::NoRoute { method: method.to_string(), path: clip(path) },
            })
        };
        let op = match (method, key.is_some()) {
            (&Method::GET, false) if has("location") => Operation::GetBucketLocation,
            (&Method::GET, false) => match unknown_sub() {
                Some(sub) => return no_route(sub),
                None if query.split('&').any(|p| p == "list-type=2") => Operation::ListObjectsV2,
                None => Operation::ListObjects,
            },
            (&Method::HEAD, false) => Operation::HeadBucket,
            (&Method::GET, true) => Operation::GetObject,
            (&Method::HEAD, true) => Operation::HeadObject,
            (&Method::PUT, true) | (&Method::POST, true) => Operation::PutObject,
            (&Method::DELETE, true) => Operation::DeleteObject,
            (&Method::PUT, false) => Operation::CreateBucket,
            (&Method::DELETE, false) => Operation::DeleteBucket,
            (&Method::POST, false) => Operation::DeleteObjects,
            _ => return no_route(""),
        };
        s3(op, addr)
    }

    /// The bucket and key of an S3 call.
    pub fn s3_address(&self) -> Option<&S3Address> {
        match self {
            Requested::Known { s3, .. } => s3.as_ref(),
            Requested::Unknown { .. } => None,
        }
    }

    pub fn surface(&self) -> Surface {
        match self {
            Requested::Known { op, .. } => op.surface(),
            Requested::Unknown { surface, .. } => *surface,
        }
    }

    /// The `eventName` of the call's audit record.
    pub fn event_name(&self) -> &str {
        match self {
            Requested::Known { op, .. } => op.name(),
            Requested::Unknown { name, .. } if !name.is_empty() => name,
            Requested::Unknown { .. } => "UnknownOperation",
        }
    }

    /// The largest body read for this request; an unknown operation gets the CloudTrail API's limit (its
    /// body is read only to check the signature).
    pub fn max_body_bytes(&self, server: &service::ServerConfig) -> usize {
        match self {
            Requested::Known { op, .. } => op.max_body_bytes(server),
            Requested::Unknown { .. } => MAX_API_BODY_BYTES,
        }
    }

    /// The label of the call in metrics (unknown names are not labels: they are unbounded).
    pub fn metric_name(&self) -> &'static str {
        match self {
            // Named as LookupEvents in its record and its permission; told apart in metrics and logs.
            Requested::Known { op: Operation::NativeLookupEvents, .. } => "NativeLookupEvents",
            Requested::Known { op, .. } => op.name(),
            Requested::Unknown { .. } => "UnknownOperation",
        }
    }
}

/// At most [`MAX_UNKNOWN_NAME_CHARS`] characters.
fn clip(s: &str) -> String {
    s.chars().take(MAX_UNKNOWN_NAME_CHARS).collect()
}

/// `%XX` sequences decoded (as UTF-8, lossily); a `%` not followed by two hex digits is kept as is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn target(t: &str) -> Requested {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", HeaderValue::from_str(t).unwrap());
        Requested::parse(&Method::POST, "/", "", &h)
    }

    #[test]
    fn both_target_spellings_name_the_same_operation() {
        let long = target("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents");
        let short = target("CloudTrail_20131101.LookupEvents");
        assert_eq!(long, Requested::Known { op: Operation::LookupEvents, event_id: None, s3: None });
        assert_eq!(short, long);
        assert!(matches!(target("CloudTrail_20131101.PutAuditEvents"), Requested::Unknown { .. }));
        assert!(matches!(target("Foo.LookupEvents"), Requested::Unknown { .. }));
        assert_eq!(target("CloudTrail_20131101.Nope").event_name(), "Nope");
    }

    #[test]
    fn every_operation_has_one_row_and_a_distinct_name_on_its_surface() {
        let mut names: Vec<(&str, &str)> =
            Operation::ALL.iter().map(|o| (o.surface().event_source(), o.name())).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
        assert_eq!(Operation::CreateTrail.action(), "cloudtrail:CreateTrail");
        assert_eq!(Operation::PutAuditEvents.action(), "cloudtrail-data:PutAuditEvents");
        assert_eq!(Operation::GetEvent.action(), "opentrail:GetEvent");
        assert_eq!(Operation::RotateSigningKey.action(), "opentrail:RotateSigningKey");
        assert_eq!(Operation::NativeLookupEvents.action(), "cloudtrail:LookupEvents");
        assert_eq!(Operation::NativeLookupEvents.name(), "LookupEvents");
        assert!(Operation::NativeLookupEvents.rate_limited() && Operation::NativeLookupEvents.read_only());
        assert_eq!(
            Requested::parse(&Method::POST, "/v1/lookup", "", &HeaderMap::new()),
            Requested::Known { op: Operation::NativeLookupEvents, event_id: None, s3: None }
        );
        assert!(!Operation::RotateSigningKey.read_only());
        assert_eq!(
            Requested::parse(&Method::POST, "/v1/keys/rotate", "", &HeaderMap::new()),
            Requested::Known { op: Operation::RotateSigningKey, event_id: None, s3: None }
        );
        assert!(Operation::GetTrailStatus.read_only() && !Operation::StartLogging.read_only());
    }

    #[test]
    fn event_ids_in_paths_are_percent_decoded() {
        let r = Requested::parse(&Method::GET, "/v1/events/a%20b%25c%2Fd", "", &HeaderMap::new());
        assert_eq!(r, Requested::Known { op: Operation::GetEvent, event_id: Some("a b%c/d".into()), s3: None });
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    fn s3(method: Method, path: &str, query: &str) -> (Option<Operation>, Option<S3Address>) {
        match Requested::parse(&method, path, query, &HeaderMap::new()) {
            Requested::Known { op, s3, .. } => (Some(op), s3),
            Requested::Unknown { .. } => (None, None),
        }
    }

    #[test]
    fn s3_paths_name_buckets_keys_and_operations() {
        let addr = |b: &str, k: Option<&str>| Some(S3Address { bucket: b.into(), key: k.map(str::to_string) });
        assert_eq!(s3(Method::GET, "/", ""), (Some(Operation::ListBuckets), None));
        assert_eq!(s3(Method::GET, "/logs", "location"), (Some(Operation::GetBucketLocation), addr("logs", None)));
        assert_eq!(s3(Method::GET, "/logs", "prefix=a&marker=b&encoding-type=url").0, Some(Operation::ListObjects));
        assert_eq!(s3(Method::GET, "/logs/", "list-type=2&prefix=a").0, Some(Operation::ListObjectsV2));
        assert_eq!(
            s3(Method::GET, "/logs/a%20b/c.gz", ""),
            (Some(Operation::GetObject), addr("logs", Some("a b/c.gz")))
        );
        assert_eq!(s3(Method::HEAD, "/logs/k", "").0, Some(Operation::HeadObject));
        assert_eq!(s3(Method::PUT, "/logs/k", "").0, Some(Operation::PutObject));
        assert_eq!(s3(Method::DELETE, "/logs/k", "").0, Some(Operation::DeleteObject));
        assert_eq!(s3(Method::POST, "/logs", "delete").0, Some(Operation::DeleteObjects));
        assert_eq!(s3(Method::GET, "/logs", "acl"), (None, None));
        // The other surfaces keep their paths.
        assert_eq!(s3(Method::POST, "/v1/events", "").0, Some(Operation::PutEvents));
        assert_eq!(s3(Method::GET, "/v1/event-counts", "by=ErrorCode").0, Some(Operation::GetEventCounts));
        assert_eq!(s3(Method::POST, "/PutAuditEvents", "channelArn=x").0, Some(Operation::PutAuditEvents));
        assert!(matches!(
            Requested::parse(&Method::GET, "/PutAuditEvents", "", &HeaderMap::new()),
            Requested::Unknown { surface: Surface::CloudTrail, .. }
        ));
        assert_eq!(Operation::HeadObject.action(), "s3:GetObject");
        assert_eq!(Operation::ListObjectsV2.action(), "s3:ListBucket");
        assert_eq!(Operation::ListBuckets.action(), "s3:ListAllMyBuckets");
        assert!(Operation::GetObject.read_only() && !Operation::PutObject.read_only());
    }
}
