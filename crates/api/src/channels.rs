//! The channel operations of the CloudTrail JSON 1.1 API (CreateChannel, GetChannel, ListChannels,
//! UpdateChannel, DeleteChannel): wire shapes in and out, and channel errors as AWS exceptions.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use service::channels::{Channel, ChannelError, Channels, Destination, DestinationType, NewChannel, Tag};

use crate::error::ApiError;
use crate::{CallContext, blocking};

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        let code = match &e {
            ChannelError::NotFound { .. } => "ChannelNotFoundException",
            ChannelError::InvalidArn { .. } => "ChannelARNInvalidException",
            ChannelError::AlreadyExists { .. } => "ChannelAlreadyExistsException",
            ChannelError::InvalidField { .. } => "InvalidParameterException",
            ChannelError::InvalidSource { .. } => "InvalidSourceException",
            ChannelError::InvalidTags { .. } => "InvalidTagParameterException",
            ChannelError::InvalidToken { .. } => "InvalidNextTokenException",
            ChannelError::Io { source, .. } => return ApiError::state_write(&e, source),
            ChannelError::Corrupt { .. } => return ApiError::internal(&e),
        };
        ApiError::client(code, e.to_string())
    }
}

pub(crate) async fn create(channels: &Arc<Channels>, ctx: &CallContext, params: &Value) -> Result<Value, ApiError> {
    let new = NewChannel {
        name: required_str(params, "Name")?.to_string(),
        source: required_str(params, "Source")?.to_string(),
        destinations: destinations(params.get("Destinations"))?
            .ok_or_else(|| ApiError::validation("Destinations is required"))?,
        tags: tags(params.get("Tags"))?,
    };
    let (channels, now, id) = (channels.clone(), ctx.now, ctx.fresh_id);
    let c = blocking(move || channels.create(new, id, now)).await??;
    Ok(json!({
        "ChannelArn": c.arn,
        "Name": c.name,
        "Source": c.source,
        "Destinations": destinations_json(&c),
        "Tags": c.tags.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect::<Vec<_>>(),
    }))
}

pub(crate) fn get(channels: &Channels, params: &Value) -> Result<Value, ApiError> {
    let c = channels.get(required_str(params, "Channel")?)?;
    let s = &c.ingestion;
    let mut status = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            status.insert(k.into(), v);
        }
    };
    put("LatestIngestionSuccessTime", s.latest_success_time.map(|t| json!(t.epoch_seconds_f64())));
    put("LatestIngestionSuccessEventID", s.latest_success_event_id.as_ref().map(|v| json!(v)));
    put("LatestIngestionErrorCode", s.latest_error_code.as_ref().map(|v| json!(v)));
    put("LatestIngestionAttemptTime", s.latest_attempt_time.map(|t| json!(t.epoch_seconds_f64())));
    put("LatestIngestionAttemptEventID", s.latest_attempt_event_id.as_ref().map(|v| json!(v)));
    Ok(json!({
        "ChannelArn": c.arn,
        "Name": c.name,
        "Source": c.source,
        // Channels take events from outside AWS into this Region only.
        "SourceConfig": {"ApplyToAllRegions": false, "AdvancedEventSelectors": []},
        "Destinations": destinations_json(&c),
        "IngestionStatus": status,
    }))
}

pub(crate) fn list(channels: &Channels, params: &Value) -> Result<Value, ApiError> {
    let max = match params.get("MaxResults") {
        None | Some(Value::Null) => service::channels::MAX_LIST_PAGE,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=1000) => n as usize,
            _ => return Err(ApiError::client("InvalidParameterException", "MaxResults must be between 1 and 1000")),
        },
    };
    let token = match params.get("NextToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(ApiError::serialization("NextToken must be a string")),
    };
    let (page, next) = channels.list(token, max)?;
    let mut out = json!({
        "Channels": page.iter().map(|c| json!({"ChannelArn": c.arn, "Name": c.name})).collect::<Vec<_>>(),
    });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub(crate) async fn update(channels: &Arc<Channels>, params: &Value) -> Result<Value, ApiError> {
    let reference = required_str(params, "Channel")?.to_string();
    let name = match params.get("Name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::serialization("Name must be a string")),
    };
    let dests = destinations(params.get("Destinations"))?;
    let channels = channels.clone();
    let c = blocking(move || channels.update(&reference, name, dests)).await??;
    Ok(json!({"ChannelArn": c.arn, "Name": c.name, "Source": c.source, "Destinations": destinations_json(&c)}))
}

pub(crate) async fn delete(channels: &Arc<Channels>, params: &Value) -> Result<Value, ApiError> {
    let reference = required_str(params, "Channel")?.to_string();
    let channels = channels.clone();
    blocking(move || channels.delete(&reference)).await??;
    Ok(json!({}))
}

fn destinations_json(c: &Channel) -> Vec<Value> {
    c.destinations.iter().map(|d| json!({"Type": d.kind.as_str(), "Location": d.location})).collect()
}

fn required_str<'a>(params: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    match params.get(field) {
        None | Some(Value::Null) => Err(ApiError::validation(format!("{field} is required"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::serialization(format!("{field} must be a string"))),
    }
}

/// `Destinations`: `None` when absent; shape errors name the element at fault.
fn destinations(v: Option<&Value>) -> Result<Option<Vec<Destination>>, ApiError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::serialization("Destinations must be a list")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let field = |name: &str| match d.get(name) {
                Some(Value::String(s)) => Ok(s.as_str()),
                _ => Err(ApiError::validation(format!("Destinations[{i}].{name} is required and must be a string"))),
            };
            let kind = DestinationType::parse(field("Type")?).ok_or_else(|| {
                ApiError::client(
                    "InvalidParameterException",
                    format!("Destinations[{i}].Type must be EVENT_DATA_STORE or AWS_SERVICE"),
                )
            })?;
            Ok(Destination { kind, location: field("Location")?.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn tags(v: Option<&Value>) -> Result<Vec<Tag>, ApiError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::serialization("Tags must be a list")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = t.get("Key").and_then(Value::as_str).ok_or_else(|| {
                ApiError::client("InvalidTagParameterException", format!("Tags[{i}].Key is required"))
            })?;
            let value = t.get("Value").and_then(Value::as_str).unwrap_or("");
            Ok(Tag { key: key.to_string(), value: value.to_string() })
        })
        .collect()
}
