//! The trails control plane on the wire: CreateTrail … ListTags. Reads each request's shape from
//! `wire::trails`, hands its validated input to `service::trails`, and writes the response shapes of the
//! CloudTrail model (Trail, GetTrailStatus, selectors, tags).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};
use service::trails::{
    AdvancedEventSelector, EventSelector, FieldSelector, Home, InsightSelector, Selectors, Tags, Trail, TrailError,
    TrailStore,
};

use crate::error::ApiError;
use crate::operation::Operation;
use crate::wire;
use crate::wire::trails::{
    CreateTrailRequest, DescribeTrailsRequest, InsightSelectorsRequest, ListTagsRequest, ListTrailsRequest,
    NameRequest, NewTrail, PutEventSelectorsRequest, TagsRequest, TrailNameRequest, UpdateTrailRequest,
};
use crate::{CallContext, blocking};

/// One operation's work on the store, run on a blocking thread.
type StoreWork = Box<dyn FnOnce(&TrailStore) -> Result<Value, ApiError> + Send>;

/// Hard-coded: trails per ListTrails page.
const LIST_TRAILS_PAGE_SIZE: usize = 50;

pub(crate) async fn call(
    store: &Arc<TrailStore>,
    ctx: &CallContext,
    op: Operation,
    p: &Value,
) -> Result<Value, ApiError> {
    let store = store.clone();
    let home = store.home().clone();
    let now = ctx.now;
    // Every store call may write and fsync the state file: keep it off the async workers.
    let run = |f: StoreWork| {
        let store = store.clone();
        blocking(move || f(&store))
    };
    match op {
        Operation::CreateTrail => {
            let NewTrail { name, settings, tags } = wire::parse::<CreateTrailRequest>(p)?.try_into()?;
            run(Box::new(move |s| value(TrailShape::settings(&s.create(&name, &settings, &tags, now)?, s.home()))))
                .await?
        }
        Operation::UpdateTrail => {
            let (r, settings) = wire::parse::<UpdateTrailRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| value(TrailShape::settings(&s.update(&r, &settings)?, s.home())))).await?
        }
        Operation::GetTrail => {
            let r = wire::parse::<NameRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| Ok(json!({ "Trail": value(TrailShape::trail(&s.get(&r)?, s.home()))? })))).await?
        }
        Operation::DescribeTrails => {
            let refs = wire::parse::<DescribeTrailsRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| {
                let trails = s.describe(&refs);
                let list: Vec<TrailShape> = trails.iter().map(|t| TrailShape::trail(t, s.home())).collect();
                Ok(json!({ "trailList": value(list)? }))
            }))
            .await?
        }
        Operation::ListTrails => {
            let after = wire::parse::<ListTrailsRequest>(p)?.after()?;
            run(Box::new(move |s| {
                let (page, next) = s.list(after.as_deref(), LIST_TRAILS_PAGE_SIZE);
                let trails: Vec<TrailInfo> = (page.iter())
                    .map(|t| TrailInfo { trail_arn: &t.arn, name: &t.name, home_region: &t.home_region })
                    .collect();
                let mut out = json!({ "Trails": value(trails)? });
                if let Some(n) = next {
                    out["NextToken"] = json!(encode_list_token(&n));
                }
                Ok(out)
            }))
            .await?
        }
        Operation::DeleteTrail => {
            let r = wire::parse::<NameRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| s.delete(&r).map(|()| json!({})).map_err(ApiError::from))).await?
        }
        Operation::StartLogging | Operation::StopLogging => {
            let r = wire::parse::<NameRequest>(p)?.resolve(&home)?;
            let on = op == Operation::StartLogging;
            let seq = ctx.durable_seq.map_or(0, |s| s.0);
            run(Box::new(move |s| s.set_logging(&r, on, now, seq).map(|()| json!({})).map_err(ApiError::from))).await?
        }
        Operation::PutEventSelectors => {
            let (r, selectors) = wire::parse::<PutEventSelectorsRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| value(EventSelectorsShape::of(&s.put_event_selectors(&r, selectors)?)))).await?
        }
        Operation::GetEventSelectors => {
            let r = wire::parse::<TrailNameRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| value(EventSelectorsShape::of(&s.get(&r)?)))).await?
        }
        Operation::PutInsightSelectors => {
            let (r, selectors) = wire::parse::<InsightSelectorsRequest>(p)?.resolve(&home)?;
            let seq = ctx.durable_seq.map_or(0, |s| s.0);
            run(Box::new(move |s| {
                let trail = s.put_insight_selectors(&r, selectors, seq)?;
                value(InsightSelectorsShape::of(&trail.arn, &trail.insight_selectors))
            }))
            .await?
        }
        Operation::GetInsightSelectors => {
            let r = wire::parse::<InsightSelectorsRequest>(p)?.trail(&home)?;
            run(Box::new(move |s| {
                let (arn, selectors) = s.get_insight_selectors(&r)?;
                value(InsightSelectorsShape::of(&arn, &selectors))
            }))
            .await?
        }
        Operation::AddTags | Operation::RemoveTags => {
            let (r, tags) = wire::parse::<TagsRequest>(p)?.resolve(&home)?;
            let add = op == Operation::AddTags;
            run(Box::new(move |s| {
                if add {
                    s.add_tags(&r, &tags)?
                } else {
                    s.remove_tags(&r, &tags)?
                }
                Ok(json!({}))
            }))
            .await?
        }
        Operation::ListTags => {
            let refs = wire::parse::<ListTagsRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| {
                let tags = s.list_tags(&refs)?;
                let list: Vec<ResourceTag> = tags.iter().map(|(arn, tags)| ResourceTag::of(arn, tags)).collect();
                Ok(json!({ "ResourceTagList": value(list)? }))
            }))
            .await?
        }
        other => Err(ApiError::internal(&format!("{} is not a trail operation", other.name()))),
    }
}

/// ListTrails' NextToken: the name the next page starts after, opaque to callers.
fn encode_list_token(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("trails:{after}"))
}

pub(crate) fn decode_list_token(token: &str) -> Result<String, TrailError> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| TrailError::InvalidNextToken)?;
    let text = String::from_utf8(bytes).map_err(|_| TrailError::InvalidNextToken)?;
    text.strip_prefix("trails:").map(str::to_string).ok_or(TrailError::InvalidNextToken)
}

// ---- response shapes ------------------------------------------------------------------------------

/// A response shape as the JSON the chain answers (and audits) with.
fn value(shape: impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(shape).map_err(|e| ApiError::internal(&e))
}

/// The Trail structure; without its Trail-only members, the CreateTrail and UpdateTrail outputs.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TrailShape<'a> {
    name: &'a str,
    s3_bucket_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    s3_key_prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sns_topic_name: Option<String>,
    #[serde(rename = "SnsTopicARN", skip_serializing_if = "Option::is_none")]
    sns_topic_arn: Option<String>,
    include_global_service_events: bool,
    is_multi_region_trail: bool,
    /// Trail only.
    #[serde(skip_serializing_if = "Option::is_none")]
    home_region: Option<&'a str>,
    #[serde(rename = "TrailARN")]
    trail_arn: &'a str,
    log_file_validation_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud_watch_logs_log_group_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud_watch_logs_role_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<&'a str>,
    /// Trail only.
    #[serde(skip_serializing_if = "Option::is_none")]
    has_custom_event_selectors: Option<bool>,
    /// Trail only.
    #[serde(skip_serializing_if = "Option::is_none")]
    has_insight_selectors: Option<bool>,
    is_organization_trail: bool,
}

impl<'a> TrailShape<'a> {
    /// CreateTrail's and UpdateTrail's output.
    fn settings(t: &'a Trail, home: &Home) -> TrailShape<'a> {
        let s = &t.settings;
        // The topic as given (name or ARN) is answered as both.
        let (sns_topic_name, sns_topic_arn) = match &s.sns_topic_name {
            None => (None, None),
            Some(topic) if topic.starts_with("arn:") => {
                (Some(topic.rsplit(':').next().unwrap_or(topic).to_string()), Some(topic.clone()))
            }
            Some(topic) => (Some(topic.clone()), Some(format!("arn:aws:sns:{}:{}:{topic}", home.region, home.account))),
        };
        TrailShape {
            name: &t.name,
            s3_bucket_name: &s.s3_bucket_name,
            s3_key_prefix: s.s3_key_prefix.as_deref(),
            sns_topic_name,
            sns_topic_arn,
            include_global_service_events: s.include_global_service_events,
            is_multi_region_trail: s.is_multi_region_trail,
            home_region: None,
            trail_arn: &t.arn,
            log_file_validation_enabled: s.log_file_validation_enabled,
            cloud_watch_logs_log_group_arn: s.cloud_watch_logs_log_group_arn.as_deref(),
            cloud_watch_logs_role_arn: s.cloud_watch_logs_role_arn.as_deref(),
            kms_key_id: s.kms_key_id.as_deref(),
            has_custom_event_selectors: None,
            has_insight_selectors: None,
            is_organization_trail: s.is_organization_trail,
        }
    }

    /// The Trail structure of GetTrail and DescribeTrails.
    fn trail(t: &'a Trail, home: &Home) -> TrailShape<'a> {
        TrailShape {
            home_region: Some(&t.home_region),
            has_custom_event_selectors: Some(t.has_custom_event_selectors),
            has_insight_selectors: Some(!t.insight_selectors.is_empty()),
            ..TrailShape::settings(t, home)
        }
    }
}

/// One ListTrails entry (TrailInfo).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TrailInfo<'a> {
    #[serde(rename = "TrailARN")]
    trail_arn: &'a str,
    name: &'a str,
    home_region: &'a str,
}

/// GetTrailStatus: the trail's logging state and its delivery's (crates/delivery). Timestamps are
/// epoch-second numbers; the `…Attempt…` members are ISO strings (empty before the first attempt) and the
/// deprecated `TimeLogging…` strings are sent as moto and AWS send them. `LatestDigestS3Bucket` /
/// `LatestDigestS3Object` are opentrail's own members (clients ignore them): the newest digest delivered,
/// which `opentrail validate` checks the bucket against.
pub(crate) async fn status(app: &Arc<crate::App>, p: &Value) -> Result<Value, ApiError> {
    let store = app.control_plane.trails.clone();
    let r = wire::parse::<NameRequest>(p)?.resolve(store.home())?;
    let trail = blocking(move || store.get(&r)).await??;
    let delivery = app.delivery.get().and_then(|d| d.status(&trail.name)).map(|s| s.status).unwrap_or_default();
    value(TrailStatus::of(&trail, &delivery))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TrailStatus {
    is_logging: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_delivery_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_delivery_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_digest_delivery_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_digest_delivery_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_logging_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_logging_started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_logging_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_logging_stopped: Option<String>,
    latest_delivery_attempt_time: String,
    latest_notification_attempt_time: &'static str,
    latest_notification_attempt_succeeded: &'static str,
    latest_delivery_attempt_succeeded: String,
    #[serde(rename = "LatestDigestS3Bucket", skip_serializing_if = "Option::is_none")]
    latest_digest_s3_bucket: Option<String>,
    #[serde(rename = "LatestDigestS3Object", skip_serializing_if = "Option::is_none")]
    latest_digest_s3_object: Option<String>,
}

impl TrailStatus {
    fn of(t: &Trail, d: &delivery::Status) -> TrailStatus {
        let l = &t.logging;
        let iso = |e: model::EventTime| e.to_datetime().map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        let iso_or_empty = |e: Option<model::EventTime>| e.and_then(iso).unwrap_or_default();
        TrailStatus {
            is_logging: l.is_logging,
            latest_delivery_error: d.latest_delivery_error.clone(),
            latest_delivery_time: d.latest_delivery_time.map(|t| t.epoch_seconds_f64()),
            latest_digest_delivery_time: d.latest_digest_delivery_time.map(|t| t.epoch_seconds_f64()),
            latest_digest_delivery_error: d.latest_digest_delivery_error.clone(),
            start_logging_time: l.start_logging_time.map(|t| t.epoch_seconds_f64()),
            time_logging_started: l.start_logging_time.map(|t| iso(t).unwrap_or_default()),
            stop_logging_time: l.stop_logging_time.map(|t| t.epoch_seconds_f64()),
            time_logging_stopped: l.stop_logging_time.map(|t| iso(t).unwrap_or_default()),
            latest_delivery_attempt_time: iso_or_empty(d.latest_delivery_attempt_time),
            latest_notification_attempt_time: "",
            latest_notification_attempt_succeeded: "",
            latest_delivery_attempt_succeeded: iso_or_empty(d.latest_delivery_attempt_succeeded),
            latest_digest_s3_bucket: d.latest_digest.as_ref().map(|(b, _)| b.clone()),
            latest_digest_s3_object: d.latest_digest.as_ref().map(|(_, k)| k.clone()),
        }
    }
}

/// PutEventSelectors' and GetEventSelectors' output: the trail's basic or advanced selectors.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventSelectorsShape<'a> {
    #[serde(rename = "TrailARN")]
    trail_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_selectors: Option<Vec<EventSelectorShape<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    advanced_event_selectors: Option<Vec<AdvancedEventSelectorShape<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventSelectorShape<'a> {
    read_write_type: &'static str,
    include_management_events: bool,
    data_resources: Vec<DataResourceShape<'a>>,
    exclude_management_event_sources: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataResourceShape<'a> {
    r#type: &'a str,
    values: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AdvancedEventSelectorShape<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    field_selectors: Vec<FieldSelectorShape<'a>>,
}

/// A field and its condition lists: one member per operator given, named by the operator.
struct FieldSelectorShape<'a>(&'a FieldSelector);

impl Serialize for FieldSelectorShape<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(1 + self.0.conditions.len()))?;
        m.serialize_entry("Field", &self.0.field)?;
        for (op, values) in &self.0.conditions {
            m.serialize_entry(op.as_str(), values)?;
        }
        m.end()
    }
}

impl<'a> EventSelectorsShape<'a> {
    fn of(t: &'a Trail) -> EventSelectorsShape<'a> {
        let (mut event_selectors, mut advanced_event_selectors) = (None, None);
        match &t.selectors {
            Selectors::Basic(sels) => event_selectors = Some(sels.iter().map(EventSelectorShape::of).collect()),
            Selectors::Advanced(sels) => {
                advanced_event_selectors = Some(sels.iter().map(AdvancedEventSelectorShape::of).collect())
            }
        }
        EventSelectorsShape { trail_arn: &t.arn, event_selectors, advanced_event_selectors }
    }
}

impl<'a> EventSelectorShape<'a> {
    fn of(s: &'a EventSelector) -> EventSelectorShape<'a> {
        EventSelectorShape {
            read_write_type: s.read_write_type.as_str(),
            include_management_events: s.include_management_events,
            data_resources: (s.data_resources.iter())
                .map(|d| DataResourceShape { r#type: &d.resource_type, values: &d.values })
                .collect(),
            exclude_management_event_sources: &s.exclude_management_event_sources,
        }
    }
}

impl<'a> AdvancedEventSelectorShape<'a> {
    pub(crate) fn of(s: &'a AdvancedEventSelector) -> AdvancedEventSelectorShape<'a> {
        AdvancedEventSelectorShape {
            name: s.name.as_deref(),
            field_selectors: s.field_selectors.iter().map(FieldSelectorShape).collect(),
        }
    }
}

/// PutInsightSelectors' and GetInsightSelectors' output.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InsightSelectorsShape<'a> {
    #[serde(rename = "TrailARN")]
    trail_arn: &'a str,
    insight_selectors: Vec<InsightSelectorShape>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InsightSelectorShape {
    insight_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_categories: Option<Vec<&'static str>>,
    /// opentrail's extension, only when set (SDKs drop members their model lacks).
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitivity: Option<f64>,
}

impl<'a> InsightSelectorsShape<'a> {
    fn of(trail_arn: &'a str, sels: &[InsightSelector]) -> InsightSelectorsShape<'a> {
        let insight_selectors = (sels.iter())
            .map(|s| InsightSelectorShape {
                insight_type: s.insight_type.as_str(),
                event_categories: s.event_categories.as_ref().map(|c| c.iter().map(|c| c.as_str()).collect()),
                sensitivity: s.sensitivity,
            })
            .collect();
        InsightSelectorsShape { trail_arn, insight_selectors }
    }
}

/// One ListTags entry (ResourceTag); a tag without a value has no `Value` member.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceTag<'a> {
    resource_id: &'a str,
    tags_list: Vec<TagShape<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagShape<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

impl<'a> ResourceTag<'a> {
    fn of(resource_id: &'a str, tags: &'a Tags) -> ResourceTag<'a> {
        let tags_list = tags.iter().map(|(key, value)| TagShape { key, value: value.as_deref() }).collect();
        ResourceTag { resource_id, tags_list }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::EventTime;
    use service::trails::{
        DataResource, InsightType, LoggingState, Operator, ReadWriteType, Settings, SourceEventCategory,
    };

    fn home() -> Home {
        Home { account: "123456789012".into(), region: "eu-west-1".into() }
    }

    /// A trail with every optional member set, advanced or basic selectors as asked.
    fn rich_trail(advanced: bool) -> Trail {
        let selectors = if advanced {
            Selectors::Advanced(vec![service::trails::AdvancedEventSelector {
                name: Some("mgmt".into()),
                field_selectors: vec![FieldSelector {
                    field: "eventCategory".into(),
                    conditions: vec![
                        (Operator::Equals, vec!["Management".into()]),
                        (Operator::NotStartsWith, vec!["x".into()]),
                    ],
                }],
            }])
        } else {
            Selectors::Basic(vec![EventSelector {
                read_write_type: ReadWriteType::WriteOnly,
                include_management_events: true,
                data_resources: vec![DataResource {
                    resource_type: "AWS::S3::Object".into(),
                    values: vec!["arn:aws:s3".into()],
                }],
                exclude_management_event_sources: vec!["kms.amazonaws.com".into()],
            }])
        };
        Trail {
            name: "t1".into(),
            home_region: "eu-west-1".into(),
            arn: "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1".into(),
            created: EventTime(0),
            settings: Settings {
                s3_bucket_name: "bucket".into(),
                s3_key_prefix: Some("pre".into()),
                sns_topic_name: Some("topic".into()),
                include_global_service_events: true,
                is_multi_region_trail: false,
                log_file_validation_enabled: true,
                cloud_watch_logs_log_group_arn: Some("arn:lg".into()),
                cloud_watch_logs_role_arn: Some("arn:role".into()),
                kms_key_id: Some("alias/k".into()),
                is_organization_trail: false,
            },
            selectors,
            has_custom_event_selectors: true,
            insight_selectors: vec![
                InsightSelector {
                    insight_type: InsightType::ApiCallRateInsight,
                    event_categories: None,
                    sensitivity: None,
                },
                InsightSelector {
                    insight_type: InsightType::ApiErrorRateInsight,
                    event_categories: Some(vec![SourceEventCategory::Management]),
                    sensitivity: Some(0.5),
                },
            ],
            insights_after: None,
            tags: [("a".to_string(), Some("1".to_string())), ("b".to_string(), None)].into_iter().collect(),
            logging: LoggingState {
                is_logging: true,
                start_logging_time: Some(EventTime(1_577_869_200_500)),
                stop_logging_time: Some(EventTime(1_577_869_100_000)),
                intervals: Vec::new(),
            },
        }
    }

    /// `got` is the JSON `expect` says (member order aside: the answer is a map).
    fn check(got: Value, expect: &str) {
        assert_eq!(got, serde_json::from_str::<Value>(expect).unwrap());
    }

    #[test]
    fn trail_shapes_carry_every_member_the_model_has() {
        let t = rich_trail(false);
        check(
            value(TrailShape::settings(&t, &home())).unwrap(),
            r#"{"CloudWatchLogsLogGroupArn":"arn:lg","CloudWatchLogsRoleArn":"arn:role","IncludeGlobalServiceEvents":true,"IsMultiRegionTrail":false,"IsOrganizationTrail":false,"KmsKeyId":"alias/k","LogFileValidationEnabled":true,"Name":"t1","S3BucketName":"bucket","S3KeyPrefix":"pre","SnsTopicARN":"arn:aws:sns:eu-west-1:123456789012:topic","SnsTopicName":"topic","TrailARN":"arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1"}"#,
        );
        check(
            value(TrailShape::trail(&t, &home())).unwrap(),
            r#"{"CloudWatchLogsLogGroupArn":"arn:lg","CloudWatchLogsRoleArn":"arn:role","HasCustomEventSelectors":true,"HasInsightSelectors":true,"HomeRegion":"eu-west-1","IncludeGlobalServiceEvents":true,"IsMultiRegionTrail":false,"IsOrganizationTrail":false,"KmsKeyId":"alias/k","LogFileValidationEnabled":true,"Name":"t1","S3BucketName":"bucket","S3KeyPrefix":"pre","SnsTopicARN":"arn:aws:sns:eu-west-1:123456789012:topic","SnsTopicName":"topic","TrailARN":"arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1"}"#,
        );
        let mut plain = rich_trail(false);
        plain.settings.sns_topic_name = Some("arn:aws:sns:us-east-1:123456789012:other".into());
        plain.settings.s3_key_prefix = None;
        plain.settings.kms_key_id = None;
        plain.logging = LoggingState::default();
        plain.insight_selectors.clear();
        check(
            value(TrailShape::trail(&plain, &home())).unwrap(),
            r#"{"CloudWatchLogsLogGroupArn":"arn:lg","CloudWatchLogsRoleArn":"arn:role","HasCustomEventSelectors":true,"HasInsightSelectors":false,"HomeRegion":"eu-west-1","IncludeGlobalServiceEvents":true,"IsMultiRegionTrail":false,"IsOrganizationTrail":false,"LogFileValidationEnabled":true,"Name":"t1","S3BucketName":"bucket","SnsTopicARN":"arn:aws:sns:us-east-1:123456789012:other","SnsTopicName":"other","TrailARN":"arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1"}"#,
        );
        check(
            value(TrailStatus::of(&t, &delivery::Status::default())).unwrap(),
            r#"{"IsLogging":true,"LatestDeliveryAttemptSucceeded":"","LatestDeliveryAttemptTime":"","LatestNotificationAttemptSucceeded":"","LatestNotificationAttemptTime":"","StartLoggingTime":1577869200.5,"StopLoggingTime":1577869100.0,"TimeLoggingStarted":"2020-01-01T09:00:00Z","TimeLoggingStopped":"2020-01-01T08:58:20Z"}"#,
        );
        check(
            value(TrailStatus::of(&plain, &delivery::Status::default())).unwrap(),
            r#"{"IsLogging":false,"LatestDeliveryAttemptSucceeded":"","LatestDeliveryAttemptTime":"","LatestNotificationAttemptSucceeded":"","LatestNotificationAttemptTime":""}"#,
        );
        let delivered = delivery::Status {
            latest_delivery_time: Some(model::EventTime(1_577_869_260_000)),
            latest_delivery_attempt_time: Some(model::EventTime(1_577_869_320_000)),
            latest_delivery_attempt_succeeded: Some(model::EventTime(1_577_869_260_000)),
            latest_delivery_error: Some("bucket audit-logs: unreachable: connection refused".into()),
            latest_digest_delivery_time: Some(model::EventTime(1_577_869_300_000)),
            latest_digest: Some(("audit-logs".into(), "AWSLogs/d.json.gz".into())),
            ..Default::default()
        };
        check(
            value(TrailStatus::of(&plain, &delivered)).unwrap(),
            r#"{"IsLogging":false,"LatestDeliveryAttemptSucceeded":"2020-01-01T09:01:00Z","LatestDeliveryAttemptTime":"2020-01-01T09:02:00Z","LatestDeliveryError":"bucket audit-logs: unreachable: connection refused","LatestDeliveryTime":1577869260.0,"LatestDigestDeliveryTime":1577869300.0,"LatestDigestS3Bucket":"audit-logs","LatestDigestS3Object":"AWSLogs/d.json.gz","LatestNotificationAttemptSucceeded":"","LatestNotificationAttemptTime":""}"#,
        );
    }

    #[test]
    fn selector_and_tag_shapes_name_their_members_as_the_model_does() {
        let t = rich_trail(false);
        check(
            value(EventSelectorsShape::of(&t)).unwrap(),
            r#"{"EventSelectors":[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}],"ExcludeManagementEventSources":["kms.amazonaws.com"],"IncludeManagementEvents":true,"ReadWriteType":"WriteOnly"}],"TrailARN":"arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1"}"#,
        );
        check(
            value(EventSelectorsShape::of(&rich_trail(true))).unwrap(),
            r#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Equals":["Management"],"Field":"eventCategory","NotStartsWith":["x"]}],"Name":"mgmt"}],"TrailARN":"arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1"}"#,
        );
        let insights = value(InsightSelectorsShape::of(&t.arn, &t.insight_selectors)).unwrap();
        check(
            insights["InsightSelectors"].clone(),
            r#"[{"InsightType":"ApiCallRateInsight"},{"EventCategories":["Management"],"InsightType":"ApiErrorRateInsight","Sensitivity":0.5}]"#,
        );
        check(
            value(ResourceTag::of(&t.arn, &t.tags)).unwrap()["TagsList"].clone(),
            r#"[{"Key":"a","Value":"1"},{"Key":"b"}]"#,
        );
    }
}
