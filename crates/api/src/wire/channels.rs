//! The channel operations' request shapes (CreateChannel … DeleteChannel) and their conversion into
//! `service::channels` input.

use serde::Deserialize;
use service::channels::{ChannelError, Destination, DestinationType, MAX_LIST_PAGE, NewChannel};

use super::{Tag, WireError, required};
use crate::error::ApiError;

/// The `Destination` structure.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationShape {
    r#type: Option<String>,
    location: Option<String>,
}

fn destinations(list: Vec<DestinationShape>) -> Result<Vec<Destination>, ApiError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.into_iter().enumerate() {
        let kind = required(d.r#type, format!("Destinations[{i}].Type"))?;
        let kind = DestinationType::parse(&kind).ok_or_else(|| ChannelError::InvalidField {
            field: "Destinations",
            reason: format!("Destinations[{i}].Type '{kind}' must be EVENT_DATA_STORE or AWS_SERVICE"),
        })?;
        out.push(Destination { kind, location: required(d.location, format!("Destinations[{i}].Location"))? });
    }
    Ok(out)
}

/// CreateChannel.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateChannelRequest {
    name: Option<String>,
    source: Option<String>,
    destinations: Option<Vec<DestinationShape>>,
    tags: Option<Vec<Tag>>,
}

impl TryFrom<CreateChannelRequest> for NewChannel {
    type Error = ApiError;

    fn try_from(r: CreateChannelRequest) -> Result<NewChannel, ApiError> {
        let tags = r.tags.unwrap_or_default().into_iter().enumerate().map(|(i, t)| {
            let key =
                t.key.ok_or_else(|| ChannelError::InvalidTags { reason: format!("Tags[{i}].Key is required") })?;
            Ok::<_, ChannelError>(service::channels::Tag { key, value: t.value.unwrap_or_default() })
        });
        Ok(NewChannel {
            name: required(r.name, "Name")?,
            source: required(r.source, "Source")?,
            destinations: destinations(required(r.destinations, "Destinations")?)?,
            tags: tags.collect::<Result<_, _>>()?,
        })
    }
}

/// GetChannel and DeleteChannel: a channel by ARN or id.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ChannelRequest {
    channel: Option<String>,
}

impl ChannelRequest {
    /// The channel's ARN or id, as given.
    pub fn reference(self) -> Result<String, WireError> {
        required(self.channel, "Channel")
    }
}

/// ListChannels.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListChannelsRequest {
    max_results: Option<serde_json::Number>,
    next_token: Option<String>,
}

/// A page of ListChannels: its size, and the token it starts from.
pub(crate) struct ChannelsPage {
    pub max: usize,
    pub token: Option<String>,
}

impl TryFrom<ListChannelsRequest> for ChannelsPage {
    type Error = ChannelError;

    fn try_from(r: ListChannelsRequest) -> Result<ChannelsPage, ChannelError> {
        let max = match r.max_results {
            None => MAX_LIST_PAGE,
            Some(n) => match n.as_u64() {
                Some(m) if (1..=MAX_LIST_PAGE as u64).contains(&m) => m as usize,
                _ => {
                    return Err(ChannelError::InvalidField {
                        field: "MaxResults",
                        reason: format!("{n} is not between 1 and {MAX_LIST_PAGE}"),
                    });
                }
            },
        };
        Ok(ChannelsPage { max, token: r.next_token.filter(|t| !t.is_empty()) })
    }
}

/// UpdateChannel.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateChannelRequest {
    channel: Option<String>,
    name: Option<String>,
    destinations: Option<Vec<DestinationShape>>,
}

/// What UpdateChannel changes: `None` leaves it as it is.
pub(crate) struct ChannelUpdate {
    pub channel: String,
    pub name: Option<String>,
    pub destinations: Option<Vec<Destination>>,
}

impl TryFrom<UpdateChannelRequest> for ChannelUpdate {
    type Error = ApiError;

    fn try_from(r: UpdateChannelRequest) -> Result<ChannelUpdate, ApiError> {
        Ok(ChannelUpdate {
            channel: required(r.channel, "Channel")?,
            name: r.name,
            destinations: r.destinations.map(destinations).transpose()?,
        })
    }
}
