//! The trail operations' request shapes (CreateTrail … ListTags) and their conversion into
//! `service::trails` input: trail names read against the server's [`Home`], selectors checked by the
//! service's own constructors.

use serde::Deserialize;
use service::trails::{
    AdvancedEventSelectorInput, DataResourceInput, EventSelectorInput, FieldSelectorInput, Home, InsightSelector,
    InsightSelectorInput, Operator, Selectors, SettingsInput, TagInput, TrailError, TrailRef,
};

use super::{Tag, WireError, required};
use crate::error::ApiError;

/// A trail named by the request member `member`, read against this server's account and Region.
fn trail(home: &Home, member: &'static str, given: Option<String>) -> Result<TrailRef, ApiError> {
    let given = required(given, member)?;
    Ok(home.trail_ref(member, &given)?)
}

fn tags(list: Vec<Tag>) -> Vec<TagInput> {
    list.into_iter().map(|t| TagInput { key: t.key, value: t.value }).collect()
}

/// CreateTrail.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateTrailRequest {
    name: Option<String>,
    s3_bucket_name: Option<String>,
    s3_key_prefix: Option<String>,
    sns_topic_name: Option<String>,
    include_global_service_events: Option<bool>,
    is_multi_region_trail: Option<bool>,
    enable_log_file_validation: Option<bool>,
    cloud_watch_logs_log_group_arn: Option<String>,
    cloud_watch_logs_role_arn: Option<String>,
    kms_key_id: Option<String>,
    is_organization_trail: Option<bool>,
    tags_list: Option<Vec<Tag>>,
}

/// A trail to create: its name is checked by the service.
pub(crate) struct NewTrail {
    pub name: String,
    pub settings: SettingsInput,
    pub tags: Vec<TagInput>,
}

impl TryFrom<CreateTrailRequest> for NewTrail {
    type Error = WireError;

    fn try_from(r: CreateTrailRequest) -> Result<NewTrail, WireError> {
        Ok(NewTrail {
            name: required(r.name, "Name")?,
            settings: SettingsInput {
                s3_bucket_name: r.s3_bucket_name,
                s3_key_prefix: r.s3_key_prefix,
                sns_topic_name: r.sns_topic_name,
                include_global_service_events: r.include_global_service_events,
                is_multi_region_trail: r.is_multi_region_trail,
                enable_log_file_validation: r.enable_log_file_validation,
                cloud_watch_logs_log_group_arn: r.cloud_watch_logs_log_group_arn,
                cloud_watch_logs_role_arn: r.cloud_watch_logs_role_arn,
                kms_key_id: r.kms_key_id,
                is_organization_trail: r.is_organization_trail,
            },
            tags: tags(r.tags_list.unwrap_or_default()),
        })
    }
}

/// UpdateTrail: CreateTrail's settings, `None` leaving a setting as it is.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UpdateTrailRequest {
    name: Option<String>,
    s3_bucket_name: Option<String>,
    s3_key_prefix: Option<String>,
    sns_topic_name: Option<String>,
    include_global_service_events: Option<bool>,
    is_multi_region_trail: Option<bool>,
    enable_log_file_validation: Option<bool>,
    cloud_watch_logs_log_group_arn: Option<String>,
    cloud_watch_logs_role_arn: Option<String>,
    kms_key_id: Option<String>,
    is_organization_trail: Option<bool>,
}

impl UpdateTrailRequest {
    pub fn resolve(self, home: &Home) -> Result<(TrailRef, SettingsInput), ApiError> {
        let settings = SettingsInput {
            s3_bucket_name: self.s3_bucket_name,
            s3_key_prefix: self.s3_key_prefix,
            sns_topic_name: self.sns_topic_name,
            include_global_service_events: self.include_global_service_events,
            is_multi_region_trail: self.is_multi_region_trail,
            enable_log_file_validation: self.enable_log_file_validation,
            cloud_watch_logs_log_group_arn: self.cloud_watch_logs_log_group_arn,
            cloud_watch_logs_role_arn: self.cloud_watch_logs_role_arn,
            kms_key_id: self.kms_key_id,
            is_organization_trail: self.is_organization_trail,
        };
        Ok((trail(home, "Name", self.name)?, settings))
    }
}

/// GetTrail, DeleteTrail, GetTrailStatus, StartLogging, StopLogging: a trail by `Name` (name or ARN).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NameRequest {
    name: Option<String>,
}

impl NameRequest {
    pub fn resolve(self, home: &Home) -> Result<TrailRef, ApiError> {
        trail(home, "Name", self.name)
    }
}

/// DescribeTrails (its members are camelCase in the model).
#[derive(Debug, Deserialize)]
pub(crate) struct DescribeTrailsRequest {
    #[serde(rename = "trailNameList")]
    trail_name_list: Option<Vec<String>>,
    /// There are no shadow trails on a one-Region server; the flag is read for its type only.
    #[serde(rename = "includeShadowTrails")]
    #[allow(dead_code)]
    include_shadow_trails: Option<bool>,
}

impl DescribeTrailsRequest {
    /// The trails asked for; none means every trail.
    pub fn resolve(self, home: &Home) -> Result<Vec<TrailRef>, TrailError> {
        let names = self.trail_name_list.unwrap_or_default();
        names.iter().enumerate().map(|(i, n)| home.trail_ref(&format!("trailNameList[{i}]"), n)).collect()
    }
}

/// ListTrails.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTrailsRequest {
    next_token: Option<String>,
}

impl ListTrailsRequest {
    /// The name the page starts after, from the token the previous page ended with (`trails:<name>`).
    pub fn after(self) -> Result<Option<String>, TrailError> {
        match self.next_token {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => crate::trails::decode_list_token(&t).map(Some),
        }
    }
}

/// PutEventSelectors: basic or advanced selectors, never both.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutEventSelectorsRequest {
    trail_name: Option<String>,
    event_selectors: Option<Vec<EventSelector>>,
    advanced_event_selectors: Option<Vec<AdvancedEventSelector>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventSelector {
    read_write_type: Option<String>,
    include_management_events: Option<bool>,
    data_resources: Option<Vec<DataResource>>,
    exclude_management_event_sources: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataResource {
    r#type: Option<String>,
    values: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AdvancedEventSelector {
    name: Option<String>,
    field_selectors: Option<Vec<AdvancedFieldSelector>>,
}

/// One field and its condition lists, one member per operator.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AdvancedFieldSelector {
    field: Option<String>,
    equals: Option<Vec<String>>,
    starts_with: Option<Vec<String>>,
    ends_with: Option<Vec<String>>,
    not_equals: Option<Vec<String>>,
    not_starts_with: Option<Vec<String>>,
    not_ends_with: Option<Vec<String>>,
}

impl From<EventSelector> for EventSelectorInput {
    fn from(s: EventSelector) -> EventSelectorInput {
        EventSelectorInput {
            read_write_type: s.read_write_type,
            include_management_events: s.include_management_events,
            data_resources: (s.data_resources.unwrap_or_default().into_iter())
                .map(|d| DataResourceInput { resource_type: d.r#type, values: d.values.unwrap_or_default() })
                .collect(),
            exclude_management_event_sources: s.exclude_management_event_sources.unwrap_or_default(),
        }
    }
}

impl From<AdvancedFieldSelector> for FieldSelectorInput {
    fn from(f: AdvancedFieldSelector) -> FieldSelectorInput {
        // In `Operator::ALL` order, as the service keeps them.
        let lists = [
            (Operator::Equals, f.equals),
            (Operator::StartsWith, f.starts_with),
            (Operator::EndsWith, f.ends_with),
            (Operator::NotEquals, f.not_equals),
            (Operator::NotStartsWith, f.not_starts_with),
            (Operator::NotEndsWith, f.not_ends_with),
        ];
        FieldSelectorInput {
            field: f.field,
            conditions: lists.into_iter().filter_map(|(op, values)| Some((op, values?))).collect(),
        }
    }
}

impl From<AdvancedEventSelector> for AdvancedEventSelectorInput {
    fn from(s: AdvancedEventSelector) -> AdvancedEventSelectorInput {
        AdvancedEventSelectorInput {
            name: s.name,
            field_selectors: s.field_selectors.unwrap_or_default().into_iter().map(Into::into).collect(),
        }
    }
}

impl PutEventSelectorsRequest {
    pub fn resolve(self, home: &Home) -> Result<(TrailRef, Selectors), ApiError> {
        let r = trail(home, "TrailName", self.trail_name)?;
        let invalid = |reason: &str| TrailError::InvalidEventSelectors {
            field: "EventSelectors, AdvancedEventSelectors".into(),
            reason: reason.into(),
        };
        let selectors = match (self.event_selectors, self.advanced_event_selectors) {
            (Some(_), Some(_)) => return Err(invalid("give one of them, not both").into()),
            (None, None) => return Err(invalid("one of them is required").into()),
            (Some(basic), None) => {
                let input: Vec<EventSelectorInput> = basic.into_iter().map(Into::into).collect();
                service::trails::basic_selectors(&input)?
            }
            (None, Some(advanced)) => {
                let input: Vec<AdvancedEventSelectorInput> = advanced.into_iter().map(Into::into).collect();
                service::trails::advanced_selectors(&input)?
            }
        };
        Ok((r, selectors))
    }
}

/// GetEventSelectors.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TrailNameRequest {
    trail_name: Option<String>,
}

impl TrailNameRequest {
    pub fn resolve(self, home: &Home) -> Result<TrailRef, ApiError> {
        trail(home, "TrailName", self.trail_name)
    }
}

/// PutInsightSelectors and GetInsightSelectors (the latter without `InsightSelectors`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InsightSelectorsRequest {
    trail_name: Option<String>,
    event_data_store: Option<String>,
    insights_destination: Option<String>,
    insight_selectors: Option<Vec<InsightSelectorShape>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename = "InsightSelector", rename_all = "PascalCase")]
struct InsightSelectorShape {
    insight_type: Option<String>,
    event_categories: Option<Vec<String>>,
    /// opentrail's extension (docs/insights.md).
    sensitivity: Option<f64>,
}

impl InsightSelectorsRequest {
    /// The trail: Insights selectors are only for trails here, event data stores are not served.
    pub fn trail(&mut self, home: &Home) -> Result<TrailRef, ApiError> {
        if self.event_data_store.is_some() || self.insights_destination.is_some() {
            return Err(WireError::Unsupported {
                members: "EventDataStore and InsightsDestination",
                reason: "event data stores are not supported by this server; give TrailName",
            }
            .into());
        }
        let name = self.trail_name.take().ok_or_else(|| TrailError::InvalidParameterCombination {
            reason: "TrailName is required (event data stores are not supported)".into(),
        })?;
        Ok(home.trail_ref("TrailName", &name)?)
    }

    /// PutInsightSelectors: the trail and the selectors to put.
    pub fn resolve(mut self, home: &Home) -> Result<(TrailRef, Vec<InsightSelector>), ApiError> {
        let r = self.trail(home)?;
        let input: Vec<InsightSelectorInput> = required(self.insight_selectors, "InsightSelectors")?
            .into_iter()
            .map(|s| InsightSelectorInput {
                insight_type: s.insight_type,
                event_categories: s.event_categories,
                sensitivity: s.sensitivity,
            })
            .collect();
        Ok((r, service::trails::insight_selectors(&input)?))
    }
}

/// AddTags and RemoveTags.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagsRequest {
    resource_id: Option<String>,
    tags_list: Option<Vec<Tag>>,
}

impl TagsRequest {
    pub fn resolve(self, home: &Home) -> Result<(TrailRef, Vec<TagInput>), ApiError> {
        let r = home.tag_resource("ResourceId", &required(self.resource_id, "ResourceId")?)?;
        Ok((r, tags(required(self.tags_list, "TagsList")?)))
    }
}

/// ListTags.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListTagsRequest {
    resource_id_list: Option<Vec<String>>,
}

impl ListTagsRequest {
    pub fn resolve(self, home: &Home) -> Result<Vec<TrailRef>, ApiError> {
        let ids = required(self.resource_id_list, "ResourceIdList")?;
        let refs = ids.iter().enumerate().map(|(i, id)| home.tag_resource(&format!("ResourceIdList[{i}]"), id));
        Ok(refs.collect::<Result<_, _>>()?)
    }
}
