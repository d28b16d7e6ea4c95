//! The trails control plane on the wire: CreateTrail … ListTags. Reads the JSON 1.1 request members
//! (naming the member on a wrong type), hands validated input to `service::trails`, and writes the
//! response shapes of the CloudTrail model (Trail, GetTrailStatus, selectors, tags).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use service::trails::{
    AdvancedEventSelector, AdvancedEventSelectorInput, DataResourceInput, EventSelectorInput, FieldSelectorInput,
    InsightSelector, InsightSelectorInput, Operator, Selectors, SettingsInput, TagInput, Trail, TrailRef, TrailStore,
};

use crate::error::ApiError;
use crate::operation::Operation;
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
            let name = req_str(p, "Name")?;
            let input = settings_input(p)?;
            let tags = tags_input(p, "TagsList")?.unwrap_or_default();
            run(Box::new(move |s| Ok(trail_settings_json(&s.create(&name, &input, &tags, now)?, s)))).await?
        }
        Operation::UpdateTrail => {
            let r = home.trail_ref("Name", &req_str(p, "Name")?)?;
            let input = settings_input(p)?;
            run(Box::new(move |s| Ok(trail_settings_json(&s.update(&r, &input)?, s)))).await?
        }
        Operation::GetTrail => {
            let r = home.trail_ref("Name", &req_str(p, "Name")?)?;
            run(Box::new(move |s| Ok(json!({ "Trail": trail_json(&s.get(&r)?, s) })))).await?
        }
        Operation::DescribeTrails => {
            let names = opt_list(p, "trailNameList", "trailNameList")?.unwrap_or(&[]);
            let mut refs = Vec::with_capacity(names.len());
            for (i, n) in names.iter().enumerate() {
                let field = format!("trailNameList[{i}]");
                let n = n.as_str().ok_or_else(|| type_error(&field, "a string"))?;
                refs.push(home.trail_ref(&field, n)?);
            }
            // There are no shadow trails on a one-Region server; the flag is read for its type only.
            opt_bool(p, "includeShadowTrails", "includeShadowTrails")?;
            run(Box::new(move |s| {
                let list: Vec<Value> = s.describe(&refs).iter().map(|t| trail_json(t, s)).collect();
                Ok(json!({ "trailList": list }))
            }))
            .await?
        }
        Operation::ListTrails => {
            let after = match opt_str(p, "NextToken", "NextToken")? {
                None => None,
                Some(t) if t.is_empty() => None,
                Some(t) => Some(decode_list_token(&t)?),
            };
            run(Box::new(move |s| {
                let (page, next) = s.list(after.as_deref(), LIST_TRAILS_PAGE_SIZE);
                let trails: Vec<Value> = page
                    .iter()
                    .map(|t| json!({"TrailARN": t.arn, "Name": t.name, "HomeRegion": t.home_region}))
                    .collect();
                let mut out = json!({ "Trails": trails });
                if let Some(n) = next {
                    out["NextToken"] = json!(URL_SAFE_NO_PAD.encode(format!("trails:{n}")));
                }
                Ok(out)
            }))
            .await?
        }
        Operation::DeleteTrail => {
            let r = home.trail_ref("Name", &req_str(p, "Name")?)?;
            run(Box::new(move |s| s.delete(&r).map(|()| json!({})).map_err(ApiError::from))).await?
        }
        Operation::StartLogging | Operation::StopLogging => {
            let r = home.trail_ref("Name", &req_str(p, "Name")?)?;
            let on = op == Operation::StartLogging;
            run(Box::new(move |s| s.set_logging(&r, on, now).map(|()| json!({})).map_err(ApiError::from))).await?
        }
        Operation::GetTrailStatus => {
            let r = home.trail_ref("Name", &req_str(p, "Name")?)?;
            run(Box::new(move |s| Ok(trail_status_json(&s.get(&r)?)))).await?
        }
        Operation::PutEventSelectors => {
            let r = home.trail_ref("TrailName", &req_str(p, "TrailName")?)?;
            let selectors = selectors_input(p)?;
            run(Box::new(move |s| Ok(selectors_json(&s.put_event_selectors(&r, selectors)?)))).await?
        }
        Operation::GetEventSelectors => {
            let r = home.trail_ref("TrailName", &req_str(p, "TrailName")?)?;
            run(Box::new(move |s| Ok(selectors_json(&s.get(&r)?)))).await?
        }
        Operation::PutInsightSelectors => {
            let r = insights_trail(p, &home)?;
            let raw = opt_list(p, "InsightSelectors", "InsightSelectors")?
                .ok_or_else(|| ApiError::validation("InsightSelectors is required"))?;
            let mut input = Vec::with_capacity(raw.len());
            for (i, s) in raw.iter().enumerate() {
                let at = format!("InsightSelectors[{i}]");
                input.push(InsightSelectorInput {
                    insight_type: opt_str(s, "InsightType", &format!("{at}.InsightType"))?,
                    event_categories: str_list(s, "EventCategories", &format!("{at}.EventCategories"))?,
                });
            }
            let selectors = service::trails::insight_selectors(&input)?;
            run(Box::new(move |s| {
                let trail = s.put_insight_selectors(&r, selectors)?;
                Ok(json!({"TrailARN": trail.arn, "InsightSelectors": insight_json(&trail.insight_selectors)}))
            }))
            .await?
        }
        Operation::GetInsightSelectors => {
            let r = insights_trail(p, &home)?;
            run(Box::new(move |s| {
                let (arn, selectors) = s.get_insight_selectors(&r)?;
                Ok(json!({"TrailARN": arn, "InsightSelectors": insight_json(&selectors)}))
            }))
            .await?
        }
        Operation::AddTags | Operation::RemoveTags => {
            let r = home.tag_resource("ResourceId", &req_str(p, "ResourceId")?)?;
            let tags = tags_input(p, "TagsList")?.ok_or_else(|| ApiError::validation("TagsList is required"))?;
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
            let ids = opt_list(p, "ResourceIdList", "ResourceIdList")?
                .ok_or_else(|| ApiError::validation("ResourceIdList is required"))?;
            let mut refs = Vec::with_capacity(ids.len());
            for (i, id) in ids.iter().enumerate() {
                let field = format!("ResourceIdList[{i}]");
                let id = id.as_str().ok_or_else(|| type_error(&field, "a string"))?;
                refs.push(home.tag_resource(&field, id)?);
            }
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

/// Insights selectors are only for trails here: event data stores are not served.
fn insights_trail(p: &Value, home: &service::trails::Home) -> Result<TrailRef, ApiError> {
    if opt_str(p, "EventDataStore", "EventDataStore")?.is_some()
        || opt_str(p, "InsightsDestination", "InsightsDestination")?.is_some()
    {
        return Err(ApiError::client(
            "UnsupportedOperationException",
            "EventDataStore and InsightsDestination: event data stores are not supported by this server; give TrailName",
        ));
    }
    let name = opt_str(p, "TrailName", "TrailName")?.ok_or_else(|| {
        ApiError::client(
            "InvalidParameterCombinationException",
            "TrailName is required (event data stores are not supported)",
        )
    })?;
    Ok(home.trail_ref("TrailName", &name)?)
}

fn decode_list_token(token: &str) -> Result<String, ApiError> {
    let bad = || ApiError::from(service::trails::TrailError::InvalidNextToken);
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("trails:").map(str::to_string).ok_or_else(bad)
}

// ---- request members -------------------------------------------------------------------------------

fn type_error(field: &str, expected: &str) -> ApiError {
    ApiError::serialization(format!("{field} must be {expected}"))
}

fn opt_str(v: &Value, key: &str, path: &str) -> Result<Option<String>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(type_error(path, "a string")),
    }
}

fn req_str(v: &Value, key: &str) -> Result<String, ApiError> {
    opt_str(v, key, key)?.ok_or_else(|| {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn opt_bool(v: &Value, key: &str, path: &str) -> Result<Option<bool>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(type_error(path, "a boolean")),
    }
}

fn opt_list<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a [Value]>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a.as_slice())),
        Some(_) => Err(type_error(path, "a list")),
    }
}

fn str_list(v: &Value, key: &str, path: &str) -> Result<Option<Vec<String>>, ApiError> {
    let Some(items) = opt_list(v, key, path)? else { return Ok(None) };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| x.as_str().map(str::to_string).ok_or_else(|| type_error(&format!("{path}[{i}]"), "a string")))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn settings_input(p: &Value) -> Result<SettingsInput, ApiError> {
    let s = |k: &str| opt_str(p, k, k);
    let b = |k: &str| opt_bool(p, k, k);
    Ok(SettingsInput {
        s3_bucket_name: s("S3BucketName")?,
        s3_key_prefix: s("S3KeyPrefix")?,
        sns_topic_name: s("SnsTopicName")?,
        include_global_service_events: b("IncludeGlobalServiceEvents")?,
        is_multi_region_trail: b("IsMultiRegionTrail")?,
        enable_log_file_validation: b("EnableLogFileValidation")?,
        cloud_watch_logs_log_group_arn: s("CloudWatchLogsLogGroupArn")?,
        cloud_watch_logs_role_arn: s("CloudWatchLogsRoleArn")?,
        kms_key_id: s("KmsKeyId")?,
        is_organization_trail: b("IsOrganizationTrail")?,
    })
}

fn tags_input(p: &Value, key: &str) -> Result<Option<Vec<TagInput>>, ApiError> {
    let Some(items) = opt_list(p, key, key)? else { return Ok(None) };
    let mut out = Vec::with_capacity(items.len());
    for (i, t) in items.iter().enumerate() {
        let at = format!("{key}[{i}]");
        if !t.is_object() {
            return Err(type_error(&at, "a Tag structure"));
        }
        out.push(TagInput {
            key: opt_str(t, "Key", &format!("{at}.Key"))?,
            value: opt_str(t, "Value", &format!("{at}.Value"))?,
        });
    }
    Ok(Some(out))
}

fn selectors_input(p: &Value) -> Result<Selectors, ApiError> {
    let basic = opt_list(p, "EventSelectors", "EventSelectors")?;
    let advanced = opt_list(p, "AdvancedEventSelectors", "AdvancedEventSelectors")?;
    let invalid = |m: &str| ApiError::client("InvalidEventSelectorsException", m.to_string());
    match (basic, advanced) {
        (Some(_), Some(_)) => Err(invalid("EventSelectors, AdvancedEventSelectors: give one of them, not both")),
        (None, None) => Err(invalid("EventSelectors, AdvancedEventSelectors: one of them is required")),
        (Some(items), None) => {
            let mut input = Vec::with_capacity(items.len());
            for (i, s) in items.iter().enumerate() {
                let at = format!("EventSelectors[{i}]");
                let mut data_resources = Vec::new();
                for (j, d) in
                    opt_list(s, "DataResources", &format!("{at}.DataResources"))?.unwrap_or(&[]).iter().enumerate()
                {
                    let at = format!("{at}.DataResources[{j}]");
                    data_resources.push(DataResourceInput {
                        resource_type: opt_str(d, "Type", &format!("{at}.Type"))?,
                        values: str_list(d, "Values", &format!("{at}.Values"))?.unwrap_or_default(),
                    });
                }
                input.push(EventSelectorInput {
                    read_write_type: opt_str(s, "ReadWriteType", &format!("{at}.ReadWriteType"))?,
                    include_management_events: opt_bool(
                        s,
                        "IncludeManagementEvents",
                        &format!("{at}.IncludeManagementEvents"),
                    )?,
                    data_resources,
                    exclude_management_event_sources: str_list(
                        s,
                        "ExcludeManagementEventSources",
                        &format!("{at}.ExcludeManagementEventSources"),
                    )?
                    .unwrap_or_default(),
                });
            }
            Ok(service::trails::basic_selectors(&input)?)
        }
        (None, Some(items)) => {
            let mut input = Vec::with_capacity(items.len());
            for (i, s) in items.iter().enumerate() {
                let at = format!("AdvancedEventSelectors[{i}]");
                let mut field_selectors = Vec::new();
                for (j, f) in
                    opt_list(s, "FieldSelectors", &format!("{at}.FieldSelectors"))?.unwrap_or(&[]).iter().enumerate()
                {
                    let at = format!("{at}.FieldSelectors[{j}]");
                    let mut conditions = Vec::new();
                    for op in Operator::ALL {
                        if let Some(values) = str_list(f, op.as_str(), &format!("{at}.{}", op.as_str()))? {
                            conditions.push((op, values));
                        }
                    }
                    field_selectors
                        .push(FieldSelectorInput { field: opt_str(f, "Field", &format!("{at}.Field"))?, conditions });
                }
                input.push(AdvancedEventSelectorInput {
                    name: opt_str(s, "Name", &format!("{at}.Name"))?,
                    field_selectors,
                });
            }
            Ok(service::trails::advanced_selectors(&input)?)
        }
    }
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
