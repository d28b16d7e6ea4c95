//! Trails: the trail model (settings, event and Insights selectors, tags, logging state), the validation
//! rules CloudTrail applies to names, buckets, selectors and tags, and the durable store that keeps them
//! in one small JSON file in the data dir (see `docs/formats/state.md`, section Trails).
//!
//! No HTTP and no AWS exception names here: failures are [`TrailError`] variants with structured fields;
//! the `api` crate maps them onto the wire. Member names in field paths (`EventSelectors[0].ReadWriteType`)
//! are the ones the caller wrote, because the error must point at what they sent.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use model::EventTime;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Hard-coded: the most trails one server keeps. AWS's quota is 5 per Region; a self-hosted server has no
/// reason to be that strict, but the state file is rewritten on every change, so it stays bounded.
pub const MAX_TRAILS: usize = 1000;
/// Hard-coded by CloudTrail: at most 5 basic event selectors per trail.
pub const MAX_EVENT_SELECTORS: usize = 5;
/// Hard-coded by CloudTrail: at most 250 data resources (values) over all basic selectors of a trail.
pub const MAX_DATA_RESOURCES: usize = 250;
/// Hard-coded by CloudTrail: at most 500 values over all conditions of a trail's advanced selectors.
pub const MAX_ADVANCED_VALUES: usize = 500;
/// Hard-coded by CloudTrail: at most 50 tags per resource (AddTags model doc).
pub const MAX_TAGS_PER_RESOURCE: usize = 50;
/// Hard-coded by CloudTrail: `S3KeyPrefix` is at most 200 characters.
pub const MAX_S3_PREFIX_CHARS: usize = 200;
/// Hard-coded by CloudTrail: ListTags takes at most 20 resource ARNs.
pub const MAX_LIST_TAGS_RESOURCES: usize = 20;

/// Why a trail operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    #[error("{field} '{name}' is not a valid trail name: {rule}")]
    InvalidName { field: String, name: String, rule: NameRule },
    #[error("{field} '{arn}' is not a valid trail ARN: expected arn:aws:cloudtrail:<region>:<account>:trail/<name>")]
    InvalidArn { field: String, arn: String },
    #[error("Unknown trail: {trail} for the user: {account}")]
    NotFound { trail: String, account: String },
    #[error("Trail {name} already exists for the user: {account}")]
    AlreadyExists { name: String, account: String },
    #[error("this server keeps at most {max} trails")]
    TooManyTrails { max: usize },
    #[error("S3BucketName '{bucket}' is not a valid bucket name: {reason}")]
    InvalidBucketName { bucket: String, reason: &'static str },
    #[error("S3KeyPrefix is {chars} characters long; the maximum is {MAX_S3_PREFIX_CHARS}")]
    InvalidS3Prefix { chars: usize },
    #[error("SnsTopicName '{topic}' is not a valid SNS topic name or ARN")]
    InvalidSnsTopicName { topic: String },
    #[error("KmsKeyId '{key}' is not a valid KMS key id, alias or ARN")]
    InvalidKmsKeyId { key: String },
    #[error("CloudWatchLogsLogGroupArn '{arn}' is not a CloudWatch Logs log group ARN")]
    InvalidLogGroupArn { arn: String },
    #[error("CloudWatchLogsRoleArn '{arn}' is not an IAM role ARN")]
    InvalidLogRoleArn { arn: String },
    #[error("{reason}")]
    InvalidParameterCombination { reason: String },
    #[error("{field}: {reason}")]
    InvalidParameter { field: String, reason: String },
    #[error("IsOrganizationTrail: this server's account is not part of an organization")]
    OrganizationsNotInUse,
    #[error("{field}: {reason}")]
    InvalidEventSelectors { field: String, reason: String },
    #[error("{field}: {reason}")]
    InvalidInsightSelectors { field: String, reason: String },
    #[error(
        "Trail {arn} does not have Insights enabled. Edit the trail settings to enable Insights, and then try the operation again."
    )]
    InsightNotEnabled { arn: String },
    #[error("{field}: {reason}")]
    InvalidTag { field: String, reason: String },
    #[error("the resource {arn} would have {count} tags; at most {MAX_TAGS_PER_RESOURCE} are allowed")]
    TagsLimitExceeded { arn: String, count: usize },
    #[error("{field} '{arn}' is not a valid CloudTrail ARN")]
    InvalidResourceArn { field: String, arn: String },
    #[error("Resource not found: {arn}")]
    ResourceNotFound { arn: String },
    #[error("NextToken is not a token this server returned")]
    InvalidNextToken,
    #[error("cannot write trail state {path}: {source}")]
    Persist { path: PathBuf, source: std::io::Error },
}

/// Which of CloudTrail's trail-name rules a name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameRule {
    #[error("it must be 3 to 128 characters long")]
    Length,
    #[error("it may contain only ASCII letters, digits, periods (.), underscores (_) and dashes (-)")]
    Characters,
    #[error("it must start with a letter or number")]
    Start,
    #[error("it must end with a letter or number")]
    End,
    #[error("it must not have adjacent periods, underscores or dashes")]
    Adjacent,
    #[error("it must not be in IP address format")]
    IpAddress,
}

/// CloudTrail's trail-name rules (CreateTrail model doc).
pub fn check_trail_name(name: &str) -> Result<(), NameRule> {
    let b = name.as_bytes();
    if !(3..=128).contains(&b.len()) {
        return Err(NameRule::Length);
    }
    let punct = |c: u8| matches!(c, b'.' | b'_' | b'-');
    if !b.iter().all(|&c| c.is_ascii_alphanumeric() || punct(c)) {
        return Err(NameRule::Characters);
    }
    if !b[0].is_ascii_alphanumeric() {
        return Err(NameRule::Start);
    }
    if !b[b.len() - 1].is_ascii_alphanumeric() {
        return Err(NameRule::End);
    }
    if b.windows(2).any(|w| punct(w[0]) && punct(w[1])) {
        return Err(NameRule::Adjacent);
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Err(NameRule::IpAddress);
    }
    Ok(())
}

/// S3's bucket naming rules (general purpose buckets), as CloudTrail checks `S3BucketName`.
pub fn check_bucket_name(bucket: &str) -> Result<(), &'static str> {
    let b = bucket.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return Err("it must be 3 to 63 characters long");
    }
    if !b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-') {
        return Err("it may contain only lowercase letters, digits, periods (.) and hyphens (-)");
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err("it must start and end with a letter or number");
    }
    if bucket.contains("..") || bucket.contains(".-") || bucket.contains("-.") {
        return Err("it must not have a period next to another period or a hyphen");
    }
    if bucket.parse::<Ipv4Addr>().is_ok() {
        return Err("it must not be formatted as an IP address");
    }
    if ["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| bucket.starts_with(p)) {
        return Err("it must not start with a reserved prefix (xn--, sthree-, amzn-s3-demo-)");
    }
    if ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|s| bucket.ends_with(s)) {
        return Err("it must not end with a reserved suffix (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)");
    }
    Ok(())
}

/// Where trails live: the account and Region of this server, which make up every trail ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub account: String,
    pub region: String,
}

impl Home {
    pub fn trail_arn(&self, name: &str) -> String {
        format!("arn:aws:cloudtrail:{}:{}:trail/{name}", self.region, self.account)
    }

    /// Reads a trail named by name or ARN. `field` is the request member it came from, for messages.
    pub fn trail_ref(&self, field: &str, given: &str) -> Result<TrailRef, TrailError> {
        let name = if given.starts_with("arn:") {
            let parts: Vec<&str> = given.splitn(6, ':').collect();
            let invalid = || TrailError::InvalidArn { field: field.to_string(), arn: given.to_string() };
            let [_, partition, "cloudtrail", region, account, resource] = parts.as_slice() else {
                return Err(invalid());
            };
            let Some(name) = resource.strip_prefix("trail/") else { return Err(invalid()) };
            if partition.is_empty() || region.is_empty() || account.len() != 12 {
                return Err(invalid());
            }
            check_trail_name(name).map_err(|_| invalid())?;
            // A well-formed ARN of another Region or account names a trail this server does not have.
            if *region != self.region || *account != self.account {
                return Ok(TrailRef { given: given.to_string(), name: None });
            }
            name.to_string()
        } else {
            check_trail_name(given).map_err(|rule| TrailError::InvalidName {
                field: field.to_string(),
                name: given.to_string(),
                rule,
            })?;
            given.to_string()
        };
        Ok(TrailRef { given: given.to_string(), name: Some(name) })
    }

    /// Reads a resource ARN for the tag operations: only trail ARNs of this account and Region exist here.
    pub fn tag_resource(&self, field: &str, arn: &str) -> Result<TrailRef, TrailError> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let invalid = || TrailError::InvalidResourceArn { field: field.to_string(), arn: arn.to_string() };
        match parts.as_slice() {
            ["arn", _, "cloudtrail", _, _, resource] if resource.starts_with("trail/") => {
                self.trail_ref(field, arn).map_err(|_| invalid())
            }
            // Event data stores, channels and dashboards are other resources; none is taggable here.
            ["arn", _, "cloudtrail", _, _, resource] if resource.contains('/') => {
                Err(TrailError::ResourceNotFound { arn: arn.to_string() })
            }
            _ => Err(invalid()),
        }
    }
}

/// A trail as a caller named it: what they wrote (for messages) and the local name it resolves to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailRef {
    pub given: String,
    name: Option<String>,
}

/// Trail settings as a CreateTrail or UpdateTrail request gives them; `None` leaves a setting as it is
/// (UpdateTrail) or takes the default (CreateTrail).
#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    pub s3_bucket_name: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub sns_topic_name: Option<String>,
    pub include_global_service_events: Option<bool>,
    pub is_multi_region_trail: Option<bool>,
    pub enable_log_file_validation: Option<bool>,
    pub cloud_watch_logs_log_group_arn: Option<String>,
    pub cloud_watch_logs_role_arn: Option<String>,
    pub kms_key_id: Option<String>,
    pub is_organization_trail: Option<bool>,
}

/// A trail's delivery settings. Optional strings are absent when empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub s3_bucket_name: String,
    pub s3_key_prefix: Option<String>,
    pub sns_topic_name: Option<String>,
    pub include_global_service_events: bool,
    pub is_multi_region_trail: bool,
    pub log_file_validation_enabled: bool,
    pub cloud_watch_logs_log_group_arn: Option<String>,
    pub cloud_watch_logs_role_arn: Option<String>,
    pub kms_key_id: Option<String>,
    pub is_organization_trail: bool,
}

impl Settings {
    /// Applies `input` over `base` and checks the result.
    fn apply(base: Option<&Settings>, input: &SettingsInput, home: &Home) -> Result<Settings, TrailError> {
        let bucket = match (&input.s3_bucket_name, base) {
            (Some(b), _) => b.clone(),
            (None, Some(s)) => s.s3_bucket_name.clone(),
            (None, None) => {
                return Err(TrailError::InvalidParameter {
                    field: "S3BucketName".into(),
                    reason: "is required".into(),
                });
            }
        };
        check_bucket_name(&bucket)
            .map_err(|reason| TrailError::InvalidBucketName { bucket: bucket.clone(), reason })?;
        // An empty string in an update clears an optional setting.
        let merge = |new: &Option<String>, old: Option<&Option<String>>| match new {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(v.clone()),
            None => old.cloned().flatten(),
        };
        let s3_key_prefix = merge(&input.s3_key_prefix, base.map(|s| &s.s3_key_prefix));
        if let Some(p) = &s3_key_prefix {
            let chars = p.chars().count();
            if chars > MAX_S3_PREFIX_CHARS {
                return Err(TrailError::InvalidS3Prefix { chars });
            }
        }
        let sns_topic_name = merge(&input.sns_topic_name, base.map(|s| &s.sns_topic_name));
        if let Some(t) = &sns_topic_name {
            let short = t.rsplit(':').next().unwrap_or(t);
            let ok = (1..=256).contains(&short.len())
                && short.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
                && (!t.starts_with("arn:") || t.starts_with("arn:aws:sns:"));
            if !ok {
                return Err(TrailError::InvalidSnsTopicName { topic: t.clone() });
            }
        }
        let kms_key_id = merge(&input.kms_key_id, base.map(|s| &s.kms_key_id));
        let kms_key_id = match kms_key_id {
            None => None,
            Some(k) if k.starts_with("arn:aws:kms:") => Some(k),
            Some(k) if k.starts_with("arn:") || k.len() > 2048 || k.contains(char::is_whitespace) => {
                return Err(TrailError::InvalidKmsKeyId { key: k });
            }
            // CloudTrail answers with the full key ARN for a key id or alias.
            Some(k) if k.starts_with("alias/") => Some(format!("arn:aws:kms:{}:{}:{k}", home.region, home.account)),
            Some(k) => Some(format!("arn:aws:kms:{}:{}:key/{k}", home.region, home.account)),
        };
        let log_group = merge(&input.cloud_watch_logs_log_group_arn, base.map(|s| &s.cloud_watch_logs_log_group_arn));
        let log_role = merge(&input.cloud_watch_logs_role_arn, base.map(|s| &s.cloud_watch_logs_role_arn));
        if let Some(a) = &log_group
            && !(a.starts_with("arn:aws:logs:") && a.contains(":log-group:"))
        {
            return Err(TrailError::InvalidLogGroupArn { arn: a.clone() });
        }
        if let Some(a) = &log_role
            && !(a.starts_with("arn:aws:iam::") && a.contains(":role/"))
        {
            return Err(TrailError::InvalidLogRoleArn { arn: a.clone() });
        }
        if log_group.is_some() != log_role.is_some() {
            return Err(TrailError::InvalidParameterCombination {
                reason: "CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn must be given together".into(),
            });
        }
        let is_organization_trail =
            input.is_organization_trail.unwrap_or(base.is_some_and(|s| s.is_organization_trail));
        if is_organization_trail {
            return Err(TrailError::OrganizationsNotInUse);
        }
        let include_global_service_events =
            input.include_global_service_events.unwrap_or(base.is_none_or(|s| s.include_global_service_events));
        let is_multi_region_trail =
            input.is_multi_region_trail.unwrap_or(base.is_some_and(|s| s.is_multi_region_trail));
        if is_multi_region_trail && !include_global_service_events {
            // CloudTrail's rule: a multi-Region trail must include global service events.
            return Err(TrailError::InvalidParameterCombination {
                reason: "IsMultiRegionTrail requires IncludeGlobalServiceEvents to be true".into(),
            });
        }
        Ok(Settings {
            s3_bucket_name: bucket,
            s3_key_prefix,
            sns_topic_name,
            include_global_service_events,
            is_multi_region_trail,
            log_file_validation_enabled: input
                .enable_log_file_validation
                .unwrap_or(base.is_some_and(|s| s.log_file_validation_enabled)),
            cloud_watch_logs_log_group_arn: log_group,
            cloud_watch_logs_role_arn: log_role,
            kms_key_id,
            is_organization_trail,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadWriteType {
    ReadOnly,
    WriteOnly,
    All,
}

impl ReadWriteType {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadWriteType::ReadOnly => "ReadOnly",
            ReadWriteType::WriteOnly => "WriteOnly",
            ReadWriteType::All => "All",
        }
    }
}

/// A basic event selector as a request gives it.
#[derive(Debug, Clone, Default)]
pub struct EventSelectorInput {
    pub read_write_type: Option<String>,
    pub include_management_events: Option<bool>,
    pub data_resources: Vec<DataResourceInput>,
    pub exclude_management_event_sources: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DataResourceInput {
    pub resource_type: Option<String>,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSelector {
    pub read_write_type: ReadWriteType,
    pub include_management_events: bool,
    pub data_resources: Vec<DataResource>,
    pub exclude_management_event_sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataResource {
    pub resource_type: String,
    pub values: Vec<String>,
}

/// The one condition list of an advanced field selector, by operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    Equals,
    StartsWith,
    EndsWith,
    NotEquals,
    NotStartsWith,
    NotEndsWith,
}

impl Operator {
    pub const ALL: [Operator; 6] = [
        Operator::Equals,
        Operator::StartsWith,
        Operator::EndsWith,
        Operator::NotEquals,
        Operator::NotStartsWith,
        Operator::NotEndsWith,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "Equals",
            Operator::StartsWith => "StartsWith",
            Operator::EndsWith => "EndsWith",
            Operator::NotEquals => "NotEquals",
            Operator::NotStartsWith => "NotStartsWith",
            Operator::NotEndsWith => "NotEndsWith",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AdvancedEventSelectorInput {
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelectorInput>,
}

#[derive(Debug, Clone, Default)]
pub struct FieldSelectorInput {
    pub field: Option<String>,
    /// The operators present in the request, in [`Operator::ALL`] order.
    pub conditions: Vec<(Operator, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdvancedEventSelector {
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelector>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSelector {
    pub field: String,
    pub conditions: Vec<(Operator, Vec<String>)>,
}

impl FieldSelector {
    fn values(&self, op: Operator) -> Option<&[String]> {
        self.conditions.iter().find(|(o, _)| *o == op).map(|(_, v)| v.as_slice())
    }
}

/// What a trail selects. A trail has basic or advanced selectors, never both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Selectors {
    Basic(Vec<EventSelector>),
    Advanced(Vec<AdvancedEventSelector>),
}

impl Selectors {
    /// A new trail logs all read and write management events and no data events.
    pub fn default_for_new_trail() -> Selectors {
        Selectors::Basic(vec![EventSelector {
            read_write_type: ReadWriteType::All,
            include_management_events: true,
            data_resources: Vec::new(),
            exclude_management_event_sources: Vec::new(),
        }])
    }

    /// (logs read management events, logs write management events, logs data events)
    fn coverage(&self) -> (bool, bool, bool) {
        let (mut read, mut write, mut data) = (false, false, false);
        match self {
            Selectors::Basic(sels) => {
                for s in sels {
                    if s.include_management_events {
                        read |= s.read_write_type != ReadWriteType::WriteOnly;
                        write |= s.read_write_type != ReadWriteType::ReadOnly;
                    }
                    data |= !s.data_resources.is_empty();
                }
            }
            Selectors::Advanced(sels) => {
                for s in sels {
                    let field = |name: &str| s.field_selectors.iter().find(|f| f.field == name);
                    let category = field("eventCategory").and_then(|f| f.values(Operator::Equals));
                    let read_only = field("readOnly").and_then(|f| f.values(Operator::Equals));
                    let (r, w) = match read_only {
                        Some(v) => (v.iter().any(|x| x == "true"), v.iter().any(|x| x == "false")),
                        None => (true, true),
                    };
                    match category.and_then(|c| c.first()).map(String::as_str) {
                        Some("Management") => {
                            read |= r;
                            write |= w;
                        }
                        Some("Data") => data = true,
                        _ => {}
                    }
                }
            }
        }
        (read, write, data)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InsightType {
    ApiCallRateInsight,
    ApiErrorRateInsight,
}

impl InsightType {
    pub fn as_str(self) -> &'static str {
        match self {
            InsightType::ApiCallRateInsight => "ApiCallRateInsight",
            InsightType::ApiErrorRateInsight => "ApiErrorRateInsight",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceEventCategory {
    Management,
    Data,
}

impl SourceEventCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceEventCategory::Management => "Management",
            SourceEventCategory::Data => "Data",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct InsightSelectorInput {
    pub insight_type: Option<String>,
    pub event_categories: Option<Vec<String>>,
    pub sensitivity: Option<f64>,
}

/// The range of an Insights selector's `Sensitivity` extension: expected false Insights per API per week
/// (docs/insights.md).
pub const SENSITIVITY_RANGE: std::ops::RangeInclusive<f64> = 0.001..=100.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightSelector {
    pub insight_type: InsightType,
    /// As given; absent means Management.
    pub event_categories: Option<Vec<SourceEventCategory>>,
    /// opentrail's extension: the false-alarm budget this selector's detector is set from (expected false
    /// Insights per API per week); absent means the default (docs/insights.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct TagInput {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Tag key → value; AWS allows a tag without a value.
pub type Tags = BTreeMap<String, Option<String>>;

/// Whether a trail is logging, and when that last changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoggingState {
    pub is_logging: bool,
    pub start_logging_time: Option<EventTime>,
    pub stop_logging_time: Option<EventTime>,
    /// The stretches of the journal the trail logged, oldest first: a trail delivers exactly the records
    /// whose seq lies in one of them (as CloudTrail, nothing recorded while it was stopped). The last one is
    /// open while the trail logs. At most [`MAX_LOGGING_INTERVALS`] are kept.
    #[serde(default)]
    pub intervals: Vec<LoggingInterval>,
}

/// Hard-coded: how many start/stop stretches a trail remembers (its delivery has long passed older ones).
pub const MAX_LOGGING_INTERVALS: usize = 64;

/// One stretch of logging: the records after seq `after` (the journal's last durable seq when logging
/// started), through `through` (the last durable seq when it stopped) or on while it logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingInterval {
    pub after: u64,
    pub through: Option<u64>,
}

impl LoggingState {
    /// Whether the record at `seq` falls in a stretch when the trail logged.
    pub fn logged(&self, seq: u64) -> bool {
        self.intervals.iter().any(|i| seq > i.after && i.through.is_none_or(|t| seq <= t))
    }

    /// The next seq after `seq` at which logging (re)starts, if any stretch starts later: a delivery can
    /// skip to it.
    pub fn next_start_after(&self, seq: u64) -> Option<u64> {
        self.intervals.iter().map(|i| i.after).filter(|a| *a >= seq).min()
    }
}

/// One trail and everything set on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trail {
    pub name: String,
    pub home_region: String,
    pub arn: String,
    pub created: EventTime,
    pub settings: Settings,
    pub selectors: Selectors,
    /// True once PutEventSelectors was called: the trail no longer has the default selector.
    pub has_custom_event_selectors: bool,
    pub insight_selectors: Vec<InsightSelector>,
    /// While Insights are on: the journal's last durable seq when they were turned on; their analysis starts
    /// after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights_after: Option<u64>,
    pub tags: Tags,
    pub logging: LoggingState,
}

/// The state file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// Keyed by trail name: names are unique within the server's one Region.
    trails: BTreeMap<String, Trail>,
}

const STATE_VERSION: u32 = 1;
const STATE_FILE: &str = "trails.json";

/// The durable trail store: all trails in memory, rewritten atomically to one file on every change.
pub struct TrailStore {
    home: Home,
    /// The state file; a staging copy writes beside it (`<name>.staged`) until committed. `None` only for
    /// a copy that never writes.
    path: Option<PathBuf>,
    state: Mutex<StateFile>,
}

/// Why the trail state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrailStateError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid trail state file: {reason}")]
    Corrupted { path: PathBuf, reason: String },
}

impl TrailStore {
    /// Loads `trails.json` from `data_dir`, or starts empty when there is none.
    pub fn open(data_dir: &Path, home: Home) -> Result<TrailStore, TrailStateError> {
        let path = data_dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                let state: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|e| TrailStateError::Corrupted { path: path.clone(), reason: e.to_string() })?;
                if state.version != STATE_VERSION {
                    return Err(TrailStateError::Corrupted {
                        path,
                        reason: format!("unsupported version {} (this build reads {STATE_VERSION})", state.version),
                    });
                }
                state
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                StateFile { version: STATE_VERSION, trails: BTreeMap::new() }
            }
            Err(source) => return Err(TrailStateError::Read { path, source }),
        };
        Ok(TrailStore { home, path: Some(path), state: Mutex::new(state) })
    }

    /// A copy of the current state whose changes are written, fsync'd, to a staging file beside the state
    /// file and go no further: a call run against it does all it would do, and either [`TrailStore::commit`]
    /// makes that current (a rename) or dropping it leaves everything as it was.
    pub fn staging(&self) -> TrailStore {
        let path = self.path.as_ref().map(|p| staged_path(p));
        if let Some(p) = &path {
            let _ = std::fs::remove_file(p);
        }
        TrailStore { home: self.home.clone(), path, state: Mutex::new(self.state.lock().clone()) }
    }

    /// Makes a staging copy's state current: renames its staged file over the state file (the directory
    /// fsync'd) and takes its state into memory.
    pub fn commit(&self, staged: TrailStore) -> std::io::Result<()> {
        let mut guard = self.state.lock();
        if let (Some(path), Some(staged_file)) = (&self.path, &staged.path)
            && staged_file.exists()
        {
            atomic_file::commit_tmp(staged_file, path).map_err(|e| e.source)?;
        }
        *guard = staged.state.into_inner();
        Ok(())
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Runs `change` on a copy of the state and makes it current only once it is on disk, so a failed
    /// write leaves both the file and the memory as they were.
    fn mutate<T>(&self, change: impl FnOnce(&mut StateFile) -> Result<T, TrailError>) -> Result<T, TrailError> {
        let mut guard = self.state.lock();
        let mut next = guard.clone();
        let out = change(&mut next)?;
        if let Some(path) = &self.path {
            write_atomically(path, &next).map_err(|source| TrailError::Persist { path: path.clone(), source })?;
        }
        *guard = next;
        Ok(out)
    }

    fn not_found(&self, r: &TrailRef) -> TrailError {
        TrailError::NotFound { trail: r.given.clone(), account: self.home.account.clone() }
    }

    fn find<'a>(&self, state: &'a StateFile, r: &TrailRef) -> Result<&'a Trail, TrailError> {
        r.name.as_ref().and_then(|n| state.trails.get(n)).ok_or_else(|| self.not_found(r))
    }

    fn find_mut<'a>(&self, state: &'a mut StateFile, r: &TrailRef) -> Result<&'a mut Trail, TrailError> {
        let not_found = self.not_found(r);
        r.name.as_ref().and_then(|n| state.trails.get_mut(n)).ok_or(not_found)
    }

    pub fn create(
        &self,
        name: &str,
        input: &SettingsInput,
        tags: &[TagInput],
        now: EventTime,
    ) -> Result<Trail, TrailError> {
        check_trail_name(name).map_err(|rule| TrailError::InvalidName {
            field: "Name".into(),
            name: name.to_string(),
            rule,
        })?;
        let settings = Settings::apply(None, input, &self.home)?;
        let mut tag_map = BTreeMap::new();
        let arn = self.home.trail_arn(name);
        add_tags(&mut tag_map, tags, &arn)?;
        self.mutate(|state| {
            if state.trails.contains_key(name) {
                return Err(TrailError::AlreadyExists { name: name.to_string(), account: self.home.account.clone() });
            }
            if state.trails.len() >= MAX_TRAILS {
                return Err(TrailError::TooManyTrails { max: MAX_TRAILS });
            }
            let trail = Trail {
                name: name.to_string(),
                home_region: self.home.region.clone(),
                arn,
                created: now,
                settings,
                selectors: Selectors::default_for_new_trail(),
                has_custom_event_selectors: false,
                insight_selectors: Vec::new(),
                insights_after: None,
                tags: tag_map,
                logging: LoggingState::default(),
            };
            state.trails.insert(name.to_string(), trail.clone());
            Ok(trail)
        })
    }

    pub fn update(&self, r: &TrailRef, input: &SettingsInput) -> Result<Trail, TrailError> {
        self.mutate(|state| {
            let trail = self.find_mut(state, r)?;
            trail.settings = Settings::apply(Some(&trail.settings), input, &self.home)?;
            Ok(trail.clone())
        })
    }

    pub fn delete(&self, r: &TrailRef) -> Result<(), TrailError> {
        self.mutate(|state| {
            let name = self.find(state, r)?.name.clone();
            state.trails.remove(&name);
            Ok(())
        })
    }

    /// The trail of this name, if there is one (for the server's own use: no ref to resolve).
    pub fn by_name(&self, name: &str) -> Option<Trail> {
        self.state.lock().trails.get(name).cloned()
    }

    pub fn get(&self, r: &TrailRef) -> Result<Trail, TrailError> {
        self.find(&self.state.lock(), r).cloned()
    }

    /// DescribeTrails: the named trails (unknown ones are left out, as CloudTrail does), or all.
    pub fn describe(&self, refs: &[TrailRef]) -> Vec<Trail> {
        let state = self.state.lock();
        if refs.is_empty() {
            return state.trails.values().cloned().collect();
        }
        let mut out: Vec<Trail> = Vec::new();
        for r in refs {
            if let Some(t) = r.name.as_ref().and_then(|n| state.trails.get(n))
                && !out.iter().any(|o| o.name == t.name)
            {
                out.push(t.clone());
            }
        }
        out
    }

    /// ListTrails: one page in name order, and the name to continue after.
    pub fn list(&self, after: Option<&str>, page_size: usize) -> (Vec<Trail>, Option<String>) {
        let state = self.state.lock();
        let mut it: Box<dyn Iterator<Item = &Trail>> = match after {
            Some(a) => Box::new(
                state
                    .trails
                    .range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(_, t)| t),
            ),
            None => Box::new(state.trails.values()),
        };
        let page: Vec<Trail> = it.by_ref().take(page_size).cloned().collect();
        let more = it.next().is_some();
        let next = if more { page.last().map(|t| t.name.clone()) } else { None };
        (page, next)
    }

    /// Starts or stops logging at `now`; `durable_seq` is the journal's last durable seq at that moment,
    /// where the trail's delivery starts or stops (see [`LoggingState::intervals`]).
    pub fn set_logging(&self, r: &TrailRef, on: bool, now: EventTime, durable_seq: u64) -> Result<(), TrailError> {
        self.mutate(|state| {
            let trail = self.find_mut(state, r)?;
            // Starting a trail that logs (or stopping one that does not) changes nothing, as in CloudTrail.
            if trail.logging.is_logging != on {
                let l = &mut trail.logging;
                l.is_logging = on;
                if on {
                    l.start_logging_time = Some(now);
                    l.intervals.push(LoggingInterval { after: durable_seq, through: None });
                    if l.intervals.len() > MAX_LOGGING_INTERVALS {
                        l.intervals.remove(0);
                    }
                } else {
                    l.stop_logging_time = Some(now);
                    if let Some(last) = l.intervals.last_mut() {
                        last.through = Some(durable_seq.max(last.after));
                    }
                }
            }
            Ok(())
        })
    }

    pub fn put_event_selectors(&self, r: &TrailRef, selectors: Selectors) -> Result<Trail, TrailError> {
        self.mutate(|state| {
            let trail = self.find_mut(state, r)?;
            trail.selectors = selectors;
            trail.has_custom_event_selectors = true;
            Ok(trail.clone())
        })
    }

    /// Puts the trail's Insights selectors. `durable_seq` is the journal's last durable seq now: when Insights
    /// are turned on, their analysis starts after it (the moment of the call, whenever the detector starts).
    pub fn put_insight_selectors(
        &self,
        r: &TrailRef,
        selectors: Vec<InsightSelector>,
        durable_seq: u64,
    ) -> Result<Trail, TrailError> {
        self.mutate(|state| {
            let trail = self.find_mut(state, r)?;
            let (read, write, data) = trail.selectors.coverage();
            for (i, s) in selectors.iter().enumerate() {
                let categories = s.event_categories.clone().unwrap_or_else(|| vec![SourceEventCategory::Management]);
                for c in categories {
                    let ok = match (c, s.insight_type) {
                        (SourceEventCategory::Management, InsightType::ApiCallRateInsight) => write,
                        (SourceEventCategory::Management, InsightType::ApiErrorRateInsight) => read || write,
                        (SourceEventCategory::Data, _) => data,
                    };
                    if !ok {
                        let needs = match (c, s.insight_type) {
                            (SourceEventCategory::Management, InsightType::ApiCallRateInsight) => {
                                "write management events"
                            }
                            (SourceEventCategory::Management, _) => "read or write management events",
                            (SourceEventCategory::Data, _) => "data events",
                        };
                        return Err(TrailError::InvalidInsightSelectors {
                            field: format!("InsightSelectors[{i}].InsightType"),
                            reason: format!(
                                "{} on {} events needs the trail to log {needs}; change its event selectors first",
                                s.insight_type.as_str(),
                                c.as_str()
                            ),
                        });
                    }
                }
            }
            trail.insights_after = match (trail.insight_selectors.is_empty(), selectors.is_empty()) {
                (_, true) => None,
                (true, false) => Some(durable_seq),
                (false, false) => trail.insights_after.or(Some(durable_seq)),
            };
            trail.insight_selectors = selectors;
            Ok(trail.clone())
        })
    }

    pub fn get_insight_selectors(&self, r: &TrailRef) -> Result<(String, Vec<InsightSelector>), TrailError> {
        let trail = self.get(r)?;
        if trail.insight_selectors.is_empty() {
            return Err(TrailError::InsightNotEnabled { arn: trail.arn });
        }
        Ok((trail.arn, trail.insight_selectors))
    }

    pub fn add_tags(&self, r: &TrailRef, tags: &[TagInput]) -> Result<(), TrailError> {
        self.mutate(|state| {
            let not_found = TrailError::ResourceNotFound { arn: r.given.clone() };
            let trail = r.name.as_ref().and_then(|n| state.trails.get_mut(n)).ok_or(not_found)?;
            let arn = trail.arn.clone();
            add_tags(&mut trail.tags, tags, &arn)
        })
    }

    pub fn remove_tags(&self, r: &TrailRef, tags: &[TagInput]) -> Result<(), TrailError> {
        let keys = check_tags(tags)?;
        self.mutate(|state| {
            let not_found = TrailError::ResourceNotFound { arn: r.given.clone() };
            let trail = r.name.as_ref().and_then(|n| state.trails.get_mut(n)).ok_or(not_found)?;
            for (k, _) in keys {
                trail.tags.remove(&k);
            }
            Ok(())
        })
    }

    pub fn list_tags(&self, refs: &[TrailRef]) -> Result<Vec<(String, Tags)>, TrailError> {
        if refs.len() > MAX_LIST_TAGS_RESOURCES {
            return Err(TrailError::InvalidParameter {
                field: "ResourceIdList".into(),
                reason: format!("has {} ARNs; at most {MAX_LIST_TAGS_RESOURCES} are allowed", refs.len()),
            });
        }
        let state = self.state.lock();
        refs.iter()
            .map(|r| {
                let trail = r
                    .name
                    .as_ref()
                    .and_then(|n| state.trails.get(n))
                    .ok_or_else(|| TrailError::ResourceNotFound { arn: r.given.clone() })?;
                Ok((trail.arn.clone(), trail.tags.clone()))
            })
            .collect()
    }
}

/// Checks tag keys and values: key 1..128, value 0..256 characters, no `aws:` keys, no key twice.
fn check_tags(tags: &[TagInput]) -> Result<Vec<(String, Option<String>)>, TrailError> {
    let mut out: Vec<(String, Option<String>)> = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let invalid = |field: &str, reason: &str| TrailError::InvalidTag {
            field: format!("TagsList[{i}].{field}"),
            reason: reason.to_string(),
        };
        let key = t.key.as_deref().ok_or_else(|| invalid("Key", "is required"))?;
        let chars = key.chars().count();
        if !(1..=128).contains(&chars) {
            return Err(invalid("Key", "must be 1 to 128 characters long"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid("Key", "must not start with the reserved prefix aws:"));
        }
        if let Some(v) = &t.value
            && v.chars().count() > 256
        {
            return Err(invalid("Value", "must be at most 256 characters long"));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(invalid("Key", &format!("'{key}' appears more than once")));
        }
        out.push((key.to_string(), t.value.clone()));
    }
    Ok(out)
}

fn add_tags(map: &mut Tags, tags: &[TagInput], arn: &str) -> Result<(), TrailError> {
    let checked = check_tags(tags)?;
    let mut next = map.clone();
    next.extend(checked);
    if next.len() > MAX_TAGS_PER_RESOURCE {
        return Err(TrailError::TagsLimitExceeded { arn: arn.to_string(), count: next.len() });
    }
    *map = next;
    Ok(())
}

/// Validates basic event selectors as CloudTrail does.
pub fn basic_selectors(input: &[EventSelectorInput]) -> Result<Selectors, TrailError> {
    let invalid = |field: String, reason: String| TrailError::InvalidEventSelectors { field, reason };
    if input.is_empty() || input.len() > MAX_EVENT_SELECTORS {
        return Err(invalid(
            "EventSelectors".into(),
            format!("has {} selectors; give 1 to {MAX_EVENT_SELECTORS}", input.len()),
        ));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut resources = 0usize;
    for (i, s) in input.iter().enumerate() {
        let at = |f: &str| format!("EventSelectors[{i}].{f}");
        let read_write_type = match s.read_write_type.as_deref() {
            None | Some("All") => ReadWriteType::All,
            Some("ReadOnly") => ReadWriteType::ReadOnly,
            Some("WriteOnly") => ReadWriteType::WriteOnly,
            Some(other) => {
                return Err(invalid(at("ReadWriteType"), format!("'{other}' is not one of ReadOnly, WriteOnly, All")));
            }
        };
        let mut data_resources = Vec::with_capacity(s.data_resources.len());
        for (j, d) in s.data_resources.iter().enumerate() {
            let at = |f: &str| format!("EventSelectors[{i}].DataResources[{j}].{f}");
            let kind = d.resource_type.as_deref().ok_or_else(|| invalid(at("Type"), "is required".into()))?;
            let service = match kind {
                "AWS::S3::Object" => "s3",
                "AWS::Lambda::Function" => "lambda",
                "AWS::DynamoDB::Table" => "dynamodb",
                other => {
                    return Err(invalid(
                        at("Type"),
                        format!(
                            "'{other}' is not one of AWS::S3::Object, AWS::Lambda::Function, AWS::DynamoDB::Table; other types need advanced event selectors"
                        ),
                    ));
                }
            };
            if d.values.is_empty() {
                return Err(invalid(at("Values"), "needs at least one ARN or ARN prefix".into()));
            }
            for (k, v) in d.values.iter().enumerate() {
                if !data_resource_value_ok(service, v) {
                    return Err(invalid(
                        format!("EventSelectors[{i}].DataResources[{j}].Values[{k}]"),
                        format!("'{v}' is not a valid {kind} ARN or ARN prefix"),
                    ));
                }
            }
            resources += d.values.len();
            data_resources.push(DataResource { resource_type: kind.to_string(), values: d.values.clone() });
        }
        for (k, src) in s.exclude_management_event_sources.iter().enumerate() {
            if src != "kms.amazonaws.com" && src != "rdsdata.amazonaws.com" {
                return Err(invalid(
                    format!("EventSelectors[{i}].ExcludeManagementEventSources[{k}]"),
                    format!("'{src}' cannot be excluded; only kms.amazonaws.com and rdsdata.amazonaws.com can"),
                ));
            }
        }
        out.push(EventSelector {
            read_write_type,
            include_management_events: s.include_management_events.unwrap_or(true),
            data_resources,
            exclude_management_event_sources: s.exclude_management_event_sources.clone(),
        });
    }
    if resources > MAX_DATA_RESOURCES {
        return Err(invalid(
            "EventSelectors".into(),
            format!("name {resources} data resources; at most {MAX_DATA_RESOURCES} are allowed per trail"),
        ));
    }
    Ok(Selectors::Basic(out))
}

/// `arn:<partition>:<service>` alone means "all"; otherwise the ARN names a bucket (with `/`), a function
/// or a table.
fn data_resource_value_ok(service: &str, v: &str) -> bool {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    let partition_ok = |p: &str| p == "aws" || p.starts_with("aws-");
    match parts.as_slice() {
        ["arn", p, s] => partition_ok(p) && *s == service,
        ["arn", p, "s3", "", "", rest] if service == "s3" => {
            partition_ok(p) && rest.split_once('/').is_some_and(|(bucket, _)| check_bucket_name(bucket).is_ok())
        }
        ["arn", p, "lambda", region, account, rest] if service == "lambda" => {
            partition_ok(p) && !region.is_empty() && !account.is_empty() && rest.starts_with("function:")
        }
        ["arn", p, "dynamodb", region, account, rest] if service == "dynamodb" => {
            partition_ok(p) && !region.is_empty() && !account.is_empty() && rest.starts_with("table/")
        }
        _ => false,
    }
}

/// Validates advanced event selectors as CloudTrail does for trails.
pub fn advanced_selectors(input: &[AdvancedEventSelectorInput]) -> Result<Selectors, TrailError> {
    let invalid = |field: String, reason: String| TrailError::InvalidEventSelectors { field, reason };
    if input.is_empty() {
        return Err(invalid("AdvancedEventSelectors".into(), "needs at least one selector".into()));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut total_values = 0usize;
    for (i, s) in input.iter().enumerate() {
        if let Some(n) = &s.name
            && n.chars().count() > 1000
        {
            return Err(invalid(format!("AdvancedEventSelectors[{i}].Name"), "must be at most 1000 characters".into()));
        }
        if s.field_selectors.is_empty() {
            return Err(invalid(
                format!("AdvancedEventSelectors[{i}].FieldSelectors"),
                "needs at least one field selector".into(),
            ));
        }
        let mut fields: Vec<FieldSelector> = Vec::with_capacity(s.field_selectors.len());
        for (j, f) in s.field_selectors.iter().enumerate() {
            let at = format!("AdvancedEventSelectors[{i}].FieldSelectors[{j}]");
            let field = f.field.as_deref().ok_or_else(|| invalid(format!("{at}.Field"), "is required".into()))?;
            if fields.iter().any(|x| x.field == field) {
                return Err(invalid(
                    format!("{at}.Field"),
                    format!("'{field}' appears more than once in the selector"),
                ));
            }
            if f.conditions.is_empty() {
                return Err(invalid(at.clone(), format!("field '{field}' needs at least one operator")));
            }
            for (op, values) in &f.conditions {
                let at = format!("{at}.{}", op.as_str());
                if values.is_empty() {
                    return Err(invalid(at, "must not be an empty list".into()));
                }
                if let Some(v) = values.iter().find(|v| v.is_empty() || v.chars().count() > 2048) {
                    return Err(invalid(at, format!("value '{v}' must be 1 to 2048 characters")));
                }
                if matches!(field, "readOnly" | "eventCategory" | "resources.type") && *op != Operator::Equals {
                    return Err(invalid(at, format!("only Equals may be used with the field '{field}'")));
                }
                if field == "readOnly" && values.iter().any(|v| v != "true" && v != "false") {
                    return Err(invalid(at, "readOnly values must be \"true\" or \"false\"".into()));
                }
                total_values += values.len();
            }
            fields.push(FieldSelector { field: field.to_string(), conditions: f.conditions.clone() });
        }
        let at = format!("AdvancedEventSelectors[{i}]");
        let find = |name: &str| fields.iter().find(|f| f.field == name);
        let category = find("eventCategory")
            .and_then(|f| f.values(Operator::Equals))
            .ok_or_else(|| invalid(format!("{at}.FieldSelectors"), "eventCategory is required".into()))?;
        let [category] = category else {
            return Err(invalid(format!("{at}.FieldSelectors"), "eventCategory must have exactly one value".into()));
        };
        let (allowed, required): (&[&str], &[&str]) = match category.as_str() {
            "Management" => (&["eventCategory", "eventSource", "readOnly"], &[]),
            "Data" => (
                &[
                    "eventCategory",
                    "resources.type",
                    "eventName",
                    "eventSource",
                    "eventType",
                    "readOnly",
                    "resources.ARN",
                    "sessionCredentialFromConsole",
                    "userIdentity.arn",
                ],
                &["resources.type"],
            ),
            "NetworkActivity" => (
                &["eventCategory", "eventSource", "eventName", "errorCode", "vpcEndpointId", "userIdentity.arn"],
                &["eventSource"],
            ),
            other => {
                return Err(invalid(
                    format!("{at}.FieldSelectors"),
                    format!("eventCategory '{other}' is not one of Management, Data, NetworkActivity for a trail"),
                ));
            }
        };
        if let Some(f) = fields.iter().find(|f| !allowed.contains(&f.field.as_str())) {
            return Err(invalid(
                format!("{at}.FieldSelectors"),
                format!(
                    "field '{}' cannot be used with eventCategory {category}; allowed: {}",
                    f.field,
                    allowed.join(", ")
                ),
            ));
        }
        if let Some(missing) = required.iter().find(|r| find(r).is_none()) {
            return Err(invalid(
                format!("{at}.FieldSelectors"),
                format!("{missing} is required with eventCategory {category}"),
            ));
        }
        out.push(AdvancedEventSelector { name: s.name.clone(), field_selectors: fields });
    }
    if total_values > MAX_ADVANCED_VALUES {
        return Err(invalid(
            "AdvancedEventSelectors".into(),
            format!("hold {total_values} values; at most {MAX_ADVANCED_VALUES} are allowed per trail"),
        ));
    }
    Ok(Selectors::Advanced(out))
}

/// Validates Insights selectors (the logging prerequisite is checked against the trail when it is put).
pub fn insight_selectors(input: &[InsightSelectorInput]) -> Result<Vec<InsightSelector>, TrailError> {
    let invalid = |field: String, reason: String| TrailError::InvalidInsightSelectors { field, reason };
    let mut out: Vec<InsightSelector> = Vec::with_capacity(input.len());
    for (i, s) in input.iter().enumerate() {
        let insight_type = match s.insight_type.as_deref() {
            Some("ApiCallRateInsight") => InsightType::ApiCallRateInsight,
            Some("ApiErrorRateInsight") => InsightType::ApiErrorRateInsight,
            None => return Err(invalid(format!("InsightSelectors[{i}].InsightType"), "is required".into())),
            Some(other) => {
                return Err(invalid(
                    format!("InsightSelectors[{i}].InsightType"),
                    format!("'{other}' is not one of ApiCallRateInsight, ApiErrorRateInsight"),
                ));
            }
        };
        if out.iter().any(|o| o.insight_type == insight_type) {
            return Err(invalid(
                format!("InsightSelectors[{i}].InsightType"),
                format!("{} appears more than once", insight_type.as_str()),
            ));
        }
        let event_categories = match &s.event_categories {
            None => None,
            Some(cats) => {
                let mut parsed = Vec::with_capacity(cats.len());
                for (k, c) in cats.iter().enumerate() {
                    let cat = match c.as_str() {
                        "Management" => SourceEventCategory::Management,
                        "Data" => SourceEventCategory::Data,
                        other => {
                            return Err(invalid(
                                format!("InsightSelectors[{i}].EventCategories[{k}]"),
                                format!("'{other}' is not one of Management, Data"),
                            ));
                        }
                    };
                    if parsed.contains(&cat) {
                        return Err(invalid(
                            format!("InsightSelectors[{i}].EventCategories[{k}]"),
                            format!("{c} appears more than once"),
                        ));
                    }
                    parsed.push(cat);
                }
                Some(parsed)
            }
        };
        if let Some(v) = s.sensitivity
            && !SENSITIVITY_RANGE.contains(&v)
        {
            return Err(invalid(
                format!("InsightSelectors[{i}].Sensitivity"),
                format!(
                    "{v} is out of range: give the false Insights per API per week the thresholds allow, from {} to {}",
                    SENSITIVITY_RANGE.start(),
                    SENSITIVITY_RANGE.end()
                ),
            ));
        }
        out.push(InsightSelector { insight_type, event_categories, sensitivity: s.sensitivity });
    }
    Ok(out)
}

/// Where a staging copy of a control-plane state file writes: beside the state file (`<name>.staged`).
pub(crate) fn staged_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".staged");
    path.with_file_name(name)
}

/// Writes the state with the data dir's one crash-safe write (temp file, fsync, rename, directory fsync).
fn write_atomically(path: &Path, state: &StateFile) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    atomic_file::write_atomic(path, &bytes, 0o600).map_err(|e| e.source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> Home {
        Home { account: "123456789012".into(), region: "us-east-1".into() }
    }

    #[test]
    fn trail_names_follow_cloudtrail_rules() {
        for ok in ["abc", "My.Trail_1-x", "a1b", &"a".repeat(128)] {
            assert_eq!(check_trail_name(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("ab", NameRule::Length),
            (&"a".repeat(129)[..], NameRule::Length),
            ("a b", NameRule::Characters),
            ("-ab", NameRule::Start),
            ("ab_", NameRule::End),
            ("my-_namespace", NameRule::Adjacent),
            ("my--namespace", NameRule::Adjacent),
            ("192.168.5.4", NameRule::IpAddress),
        ];
        for (name, rule) in cases {
            assert_eq!(check_trail_name(name), Err(rule), "{name}");
        }
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(check_bucket_name("my-bucket.logs").is_ok());
        for bad in ["ab", "My-Bucket", "-abc", "a..b", "a.-b", "10.0.0.1", "xn--abc", "abc-s3alias", "a_b"] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trail_refs_take_names_and_arns_of_this_home_only() {
        let h = home();
        let r = h.trail_ref("Name", "arn:aws:cloudtrail:us-east-1:123456789012:trail/tr1").unwrap();
        assert_eq!(r.name.as_deref(), Some("tr1"));
        let other = h.trail_ref("Name", "arn:aws:cloudtrail:eu-west-1:123456789012:trail/tr1").unwrap();
        assert_eq!(other.name, None);
        assert!(matches!(
            h.trail_ref("Name", "arn:aws:cloudtrail:us-east-1:1:trail"),
            Err(TrailError::InvalidArn { .. })
        ));
        assert!(matches!(h.trail_ref("Name", "a--b"), Err(TrailError::InvalidName { rule: NameRule::Adjacent, .. })));
    }

    #[test]
    fn basic_selectors_are_checked_field_by_field() {
        let sel = |rw: &str, kind: &str, v: &str| EventSelectorInput {
            read_write_type: Some(rw.into()),
            data_resources: vec![DataResourceInput { resource_type: Some(kind.into()), values: vec![v.into()] }],
            ..Default::default()
        };
        assert!(basic_selectors(&[sel("All", "AWS::S3::Object", "arn:aws:s3:::bucket/")]).is_ok());
        assert!(basic_selectors(&[sel("All", "AWS::S3::Object", "arn:aws:s3")]).is_ok());
        assert!(
            basic_selectors(&[sel("All", "AWS::Lambda::Function", "arn:aws:lambda:us-east-1:1:function:f")]).is_ok()
        );
        let err = basic_selectors(&[sel("Sometimes", "AWS::S3::Object", "arn:aws:s3")]).unwrap_err();
        assert!(err.to_string().starts_with("EventSelectors[0].ReadWriteType"), "{err}");
        let err = basic_selectors(&[sel("All", "AWS::S3::Object", "arn:aws:s3:::bucket")]).unwrap_err();
        assert!(err.to_string().contains("DataResources[0].Values[0]"), "{err}");
        let err = basic_selectors(&[sel("All", "AWS::EC2::Instance", "arn:aws:ec2")]).unwrap_err();
        assert!(err.to_string().contains("DataResources[0].Type"), "{err}");
        let six = vec![EventSelectorInput::default(); 6];
        assert!(matches!(basic_selectors(&six), Err(TrailError::InvalidEventSelectors { .. })));
        let many = EventSelectorInput {
            data_resources: vec![DataResourceInput {
                resource_type: Some("AWS::S3::Object".into()),
                values: (0..251).map(|i| format!("arn:aws:s3:::b{i:03}/")).collect(),
            }],
            ..Default::default()
        };
        assert!(basic_selectors(&[many]).unwrap_err().to_string().contains("251"));
        let excl = EventSelectorInput {
            exclude_management_event_sources: vec!["s3.amazonaws.com".into()],
            ..Default::default()
        };
        assert!(basic_selectors(&[excl]).unwrap_err().to_string().contains("ExcludeManagementEventSources[0]"));
    }

    fn field(name: &str, op: Operator, values: &[&str]) -> FieldSelectorInput {
        FieldSelectorInput {
            field: Some(name.into()),
            conditions: vec![(op, values.iter().map(|v| v.to_string()).collect())],
        }
    }

    #[test]
    fn advanced_selectors_follow_the_per_category_field_rules() {
        let adv = |fields: Vec<FieldSelectorInput>| {
            advanced_selectors(&[AdvancedEventSelectorInput { name: None, field_selectors: fields }])
        };
        assert!(
            adv(vec![
                field("eventCategory", Operator::Equals, &["Data"]),
                field("resources.type", Operator::Equals, &["AWS::S3::Object"])
            ])
            .is_ok()
        );
        assert!(
            adv(vec![
                field("eventCategory", Operator::Equals, &["Management"]),
                field("readOnly", Operator::Equals, &["false"])
            ])
            .is_ok()
        );
        let no_cat = adv(vec![field("readOnly", Operator::Equals, &["true"])]).unwrap_err();
        assert!(no_cat.to_string().contains("eventCategory is required"), "{no_cat}");
        let starts = adv(vec![field("eventCategory", Operator::StartsWith, &["Man"])]).unwrap_err();
        assert!(starts.to_string().contains("FieldSelectors[0].StartsWith"), "{starts}");
        let mgmt_name = adv(vec![
            field("eventCategory", Operator::Equals, &["Management"]),
            field("eventName", Operator::Equals, &["X"]),
        ])
        .unwrap_err();
        assert!(mgmt_name.to_string().contains("'eventName' cannot be used"), "{mgmt_name}");
        let no_type = adv(vec![field("eventCategory", Operator::Equals, &["Data"])]).unwrap_err();
        assert!(no_type.to_string().contains("resources.type is required"), "{no_type}");
        let empty = adv(vec![
            field("eventCategory", Operator::Equals, &["Data"]),
            field("resources.ARN", Operator::StartsWith, &[]),
        ])
        .unwrap_err();
        assert!(empty.to_string().contains("FieldSelectors[1].StartsWith"), "{empty}");
        let vals: Vec<String> = (0..500).map(|i| format!("arn:aws:s3:::b/{i}")).collect();
        let vals: Vec<&str> = vals.iter().map(String::as_str).collect();
        let too_many = adv(vec![
            field("eventCategory", Operator::Equals, &["Data"]),
            field("resources.type", Operator::Equals, &["AWS::S3::Object"]),
            field("resources.ARN", Operator::StartsWith, &vals),
        ])
        .unwrap_err();
        assert!(too_many.to_string().contains("502 values"), "{too_many}");
    }

    #[test]
    fn state_survives_reopen_and_a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrailStore::open(dir.path(), home()).unwrap();
        let input = SettingsInput { s3_bucket_name: Some("bucket".into()), ..Default::default() };
        store.create("tr1", &input, &[TagInput { key: Some("k".into()), value: None }], EventTime(1000)).unwrap();
        let r = store.home().trail_ref("Name", "tr1").unwrap();
        store.set_logging(&r, true, EventTime(2000), 0).unwrap();
        let before = store.get(&r).unwrap();
        drop(store);
        let store = TrailStore::open(dir.path(), home()).unwrap();
        assert_eq!(store.get(&r).unwrap(), before);
        assert_eq!(before.logging.start_logging_time, Some(EventTime(2000)));

        // Make the rename fail: a directory where the temp file must go.
        std::fs::create_dir(dir.path().join("trails.json.tmp")).unwrap();
        assert!(matches!(store.delete(&r), Err(TrailError::Persist { .. })));
        assert_eq!(store.get(&r).unwrap(), before, "memory is unchanged after a failed write");
    }

    #[test]
    fn list_pages_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrailStore::open(dir.path(), home()).unwrap();
        let input = SettingsInput { s3_bucket_name: Some("bucket".into()), ..Default::default() };
        for n in ["ccc", "aaa", "bbb"] {
            store.create(n, &input, &[], EventTime(0)).unwrap();
        }
        let (p1, next) = store.list(None, 2);
        assert_eq!(p1.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["aaa", "bbb"]);
        let (p2, next2) = store.list(next.as_deref(), 2);
        assert_eq!(p2.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ccc"]);
        assert_eq!(next2, None);
    }

    #[test]
    fn call_rate_insights_need_write_management_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = TrailStore::open(dir.path(), home()).unwrap();
        let input = SettingsInput { s3_bucket_name: Some("bucket".into()), ..Default::default() };
        store.create("tr1", &input, &[], EventTime(0)).unwrap();
        let r = store.home().trail_ref("TrailName", "tr1").unwrap();
        let read_only = EventSelectorInput { read_write_type: Some("ReadOnly".into()), ..Default::default() };
        store.put_event_selectors(&r, basic_selectors(&[read_only]).unwrap()).unwrap();
        let call_rate = insight_selectors(&[InsightSelectorInput {
            insight_type: Some("ApiCallRateInsight".into()),
            event_categories: None,
            sensitivity: None,
        }])
        .unwrap();
        assert!(matches!(
            store.put_insight_selectors(&r, call_rate, 0),
            Err(TrailError::InvalidInsightSelectors { .. })
        ));
        let error_rate = insight_selectors(&[InsightSelectorInput {
            insight_type: Some("ApiErrorRateInsight".into()),
            event_categories: None,
            sensitivity: Some(2.0),
        }])
        .unwrap();
        assert!(store.put_insight_selectors(&r, error_rate, 0).is_ok());
        let out_of_range = insight_selectors(&[InsightSelectorInput {
            insight_type: Some("ApiErrorRateInsight".into()),
            event_categories: None,
            sensitivity: Some(0.0),
        }]);
        assert!(
            matches!(&out_of_range, Err(TrailError::InvalidInsightSelectors { field, .. }) if field == "InsightSelectors[0].Sensitivity"),
            "{out_of_range:?}"
        );
    }
}
