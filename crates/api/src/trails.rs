//! The trails control plane on the wire: CreateTrail … ListTags. Reads each request's shape from
//! `wire::trails`, hands its validated input to `service::trails`, and writes the response shapes of the
//! CloudTrail model (Trail, GetTrailStatus, selectors, tags).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use service::trails::{AdvancedEventSelector, InsightSelector, Selectors, Trail, TrailError, TrailStore};

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
            run(Box::new(move |s| Ok(trail_settings_json(&s.create(&name, &settings, &tags, now)?, s)))).await?
        }
        Operation::UpdateTrail => {
            let (r, settings) = wire::parse::<UpdateTrailRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| Ok(trail_settings_json(&s.update(&r, &settings)?, s)))).await?
        }
        Operation::GetTrail => {
            let r = wire::parse::<NameRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| Ok(json!({ "Trail": trail_json(&s.get(&r)?, s) })))).await?
        }
        Operation::DescribeTrails => {
            let refs = wire::parse::<DescribeTrailsRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| {
                let list: Vec<Value> = s.describe(&refs).iter().map(|t| trail_json(t, s)).collect();
                Ok(json!({ "trailList": list }))
            }))
            .await?
        }
        Operation::ListTrails => {
            let after = wire::parse::<ListTrailsRequest>(p)?.after()?;
            run(Box::new(move |s| {
                let (page, next) = s.list(after.as_deref(), LIST_TRAILS_PAGE_SIZE);
                let trails: Vec<Value> = page
                    .iter()
                    .map(|t| json!({"TrailARN": t.arn, "Name": t.name, "HomeRegion": t.home_region}))
                    .collect();
                let mut out = json!({ "Trails": trails });
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
            run(Box::new(move |s| s.set_logging(&r, on, now).map(|()| json!({})).map_err(ApiError::from))).await?
        }
        Operation::GetTrailStatus => {
            let r = wire::parse::<NameRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| Ok(trail_status_json(&s.get(&r)?)))).await?
        }
        Operation::PutEventSelectors => {
            let (r, selectors) = wire::parse::<PutEventSelectorsRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| Ok(selectors_json(&s.put_event_selectors(&r, selectors)?)))).await?
        }
        Operation::GetEventSelectors => {
            let r = wire::parse::<TrailNameRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| Ok(selectors_json(&s.get(&r)?)))).await?
        }
        Operation::PutInsightSelectors => {
            let (r, selectors) = wire::parse::<InsightSelectorsRequest>(p)?.resolve(&home)?;
            run(Box::new(move |s| {
                let trail = s.put_insight_selectors(&r, selectors)?;
                Ok(json!({"TrailARN": trail.arn, "InsightSelectors": insight_json(&trail.insight_selectors)}))
            }))
            .await?
        }
        Operation::GetInsightSelectors => {
            let r = wire::parse::<InsightSelectorsRequest>(p)?.trail(&home)?;
            run(Box::new(move |s| {
                let (arn, selectors) = s.get_insight_selectors(&r)?;
                Ok(json!({"TrailARN": arn, "InsightSelectors": insight_json(&selectors)}))
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
                let list: Vec<Value> = s
                    .list_tags(&refs)?
                    .into_iter()
                    .map(|(arn, tags)| json!({"ResourceId": arn, "TagsList": tags_json(&tags)}))
                    .collect();
                Ok(json!({ "ResourceTagList": list }))
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

fn put_opt(m: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), json!(v));
    }
}

/// The settings members shared by CreateTrail/UpdateTrail outputs and the Trail structure.
fn settings_members(t: &Trail, store: &TrailStore) -> Map<String, Value> {
    let s = &t.settings;
    let home = store.home();
    let mut m = Map::new();
    m.insert("Name".into(), json!(t.name));
    m.insert("S3BucketName".into(), json!(s.s3_bucket_name));
    put_opt(&mut m, "S3KeyPrefix", &s.s3_key_prefix);
    if let Some(topic) = &s.sns_topic_name {
        let (name, arn) = match topic.strip_prefix("arn:") {
            Some(_) => (topic.rsplit(':').next().unwrap_or(topic).to_string(), topic.clone()),
            None => (topic.clone(), format!("arn:aws:sns:{}:{}:{topic}", home.region, home.account)),
        };
        m.insert("SnsTopicName".into(), json!(name));
        m.insert("SnsTopicARN".into(), json!(arn));
    }
    m.insert("IncludeGlobalServiceEvents".into(), json!(s.include_global_service_events));
    m.insert("IsMultiRegionTrail".into(), json!(s.is_multi_region_trail));
    m
}

fn trail_settings_json(t: &Trail, store: &TrailStore) -> Value {
    let s = &t.settings;
    let mut m = settings_members(t, store);
    m.insert("TrailARN".into(), json!(t.arn));
    m.insert("LogFileValidationEnabled".into(), json!(s.log_file_validation_enabled));
    put_opt(&mut m, "CloudWatchLogsLogGroupArn", &s.cloud_watch_logs_log_group_arn);
    put_opt(&mut m, "CloudWatchLogsRoleArn", &s.cloud_watch_logs_role_arn);
    put_opt(&mut m, "KmsKeyId", &s.kms_key_id);
    m.insert("IsOrganizationTrail".into(), json!(s.is_organization_trail));
    Value::Object(m)
}

/// The model's Trail structure, members in model order.
fn trail_json(t: &Trail, store: &TrailStore) -> Value {
    let s = &t.settings;
    let mut m = settings_members(t, store);
    m.insert("HomeRegion".into(), json!(t.home_region));
    m.insert("TrailARN".into(), json!(t.arn));
    m.insert("LogFileValidationEnabled".into(), json!(s.log_file_validation_enabled));
    put_opt(&mut m, "CloudWatchLogsLogGroupArn", &s.cloud_watch_logs_log_group_arn);
    put_opt(&mut m, "CloudWatchLogsRoleArn", &s.cloud_watch_logs_role_arn);
    put_opt(&mut m, "KmsKeyId", &s.kms_key_id);
    m.insert("HasCustomEventSelectors".into(), json!(t.has_custom_event_selectors));
    m.insert("HasInsightSelectors".into(), json!(!t.insight_selectors.is_empty()));
    m.insert("IsOrganizationTrail".into(), json!(s.is_organization_trail));
    Value::Object(m)
}

/// GetTrailStatus: epoch-second numbers, plus the deprecated string members as moto and AWS send them.
fn trail_status_json(t: &Trail) -> Value {
    let l = &t.logging;
    let mut m = Map::new();
    m.insert("IsLogging".into(), json!(l.is_logging));
    let iso =
        |e: model::EventTime| e.to_datetime().map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default();
    if let Some(start) = l.start_logging_time {
        m.insert("StartLoggingTime".into(), json!(start.epoch_seconds_f64()));
        m.insert("TimeLoggingStarted".into(), json!(iso(start)));
    }
    if let Some(stop) = l.stop_logging_time {
        m.insert("StopLoggingTime".into(), json!(stop.epoch_seconds_f64()));
        m.insert("TimeLoggingStopped".into(), json!(iso(stop)));
    }
    // No delivery yet (a later issue): the attempt fields are the empty strings CloudTrail sends then.
    for k in [
        "LatestDeliveryAttemptTime",
        "LatestNotificationAttemptTime",
        "LatestNotificationAttemptSucceeded",
        "LatestDeliveryAttemptSucceeded",
    ] {
        m.insert(k.into(), json!(""));
    }
    Value::Object(m)
}

fn selectors_json(t: &Trail) -> Value {
    match &t.selectors {
        Selectors::Basic(sels) => {
            let list: Vec<Value> = sels
                .iter()
                .map(|s| {
                    json!({
                        "ReadWriteType": s.read_write_type.as_str(),
                        "IncludeManagementEvents": s.include_management_events,
                        "DataResources": s.data_resources.iter()
                            .map(|d| json!({"Type": d.resource_type, "Values": d.values}))
                            .collect::<Vec<_>>(),
                        "ExcludeManagementEventSources": s.exclude_management_event_sources,
                    })
                })
                .collect();
            json!({"TrailARN": t.arn, "EventSelectors": list})
        }
        Selectors::Advanced(sels) => json!({"TrailARN": t.arn, "AdvancedEventSelectors": advanced_json(sels)}),
    }
}

fn advanced_json(sels: &[AdvancedEventSelector]) -> Vec<Value> {
    sels.iter()
        .map(|s| {
            let fields: Vec<Value> = s
                .field_selectors
                .iter()
                .map(|f| {
                    let mut m = Map::new();
                    m.insert("Field".into(), json!(f.field));
                    for (op, values) in &f.conditions {
                        m.insert(op.as_str().into(), json!(values));
                    }
                    Value::Object(m)
                })
                .collect();
            let mut m = Map::new();
            put_opt(&mut m, "Name", &s.name);
            m.insert("FieldSelectors".into(), json!(fields));
            Value::Object(m)
        })
        .collect()
}

fn insight_json(sels: &[InsightSelector]) -> Vec<Value> {
    sels.iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("InsightType".into(), json!(s.insight_type.as_str()));
            if let Some(c) = &s.event_categories {
                m.insert("EventCategories".into(), json!(c.iter().map(|c| c.as_str()).collect::<Vec<_>>()));
            }
            Value::Object(m)
        })
        .collect()
}

fn tags_json(tags: &BTreeMap<String, Option<String>>) -> Vec<Value> {
    tags.iter()
        .map(|(k, v)| match v {
            Some(v) => json!({"Key": k, "Value": v}),
            None => json!({"Key": k}),
        })
        .collect()
}
