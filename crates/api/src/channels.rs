//! The channel operations of the CloudTrail JSON 1.1 API (CreateChannel, GetChannel, ListChannels,
//! UpdateChannel, DeleteChannel): request shapes from `wire::channels` in, the model's shapes out.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use service::channels::{Channel, Channels, NewChannel};

use crate::error::ApiError;
use crate::wire;
use crate::wire::channels::{
    ChannelRequest, ChannelUpdate, ChannelsPage, CreateChannelRequest, ListChannelsRequest, UpdateChannelRequest,
};
use crate::{CallContext, blocking};

pub(crate) async fn create(channels: &Arc<Channels>, ctx: &CallContext, params: &Value) -> Result<Value, ApiError> {
    let new = NewChannel::try_from(wire::parse::<CreateChannelRequest>(params)?)?;
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
    let c = channels.get(&wire::parse::<ChannelRequest>(params)?.reference()?)?;
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
    let ChannelsPage { max, token } = wire::parse::<ListChannelsRequest>(params)?.try_into()?;
    let (page, next) = channels.list(token.as_deref(), max)?;
    let mut out = json!({
        "Channels": page.iter().map(|c| json!({"ChannelArn": c.arn, "Name": c.name})).collect::<Vec<_>>(),
    });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub(crate) async fn update(channels: &Arc<Channels>, params: &Value) -> Result<Value, ApiError> {
    let ChannelUpdate { channel, name, destinations } = wire::parse::<UpdateChannelRequest>(params)?.try_into()?;
    let channels = channels.clone();
    let c = blocking(move || channels.update(&channel, name, destinations)).await??;
    Ok(json!({"ChannelArn": c.arn, "Name": c.name, "Source": c.source, "Destinations": destinations_json(&c)}))
}

pub(crate) async fn delete(channels: &Arc<Channels>, params: &Value) -> Result<Value, ApiError> {
    let reference = wire::parse::<ChannelRequest>(params)?.reference()?;
    let channels = channels.clone();
    blocking(move || channels.delete(&reference)).await??;
    Ok(json!({}))
}

fn destinations_json(c: &Channel) -> Vec<Value> {
    c.destinations.iter().map(|d| json!({"Type": d.kind.as_str(), "Location": d.location})).collect()
}
