//! The CloudTrail Lake operations' request shapes (CreateEventDataStore … ListEventDataStores, StartQuery …
//! ListQueries) and their conversion into `service::event_data_stores` and `lake` input.

use serde::Deserialize;
use service::event_data_stores::{BillingMode, EventDataStoreError, MAX_LIST_PAGE, StoreSettings, Tag as StoreTag};
use service::trails::{AdvancedEventSelectorInput, Selectors};

use super::trails::AdvancedEventSelector;
use super::{Tag, Timestamp, WireError, required};
use crate::error::ApiError;

/// CreateEventDataStore and UpdateEventDataStore (Update names the store in `EventDataStore`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StoreRequest {
    event_data_store: Option<String>,
    name: Option<String>,
    advanced_event_selectors: Option<Vec<AdvancedEventSelector>>,
    multi_region_enabled: Option<bool>,
    organization_enabled: Option<bool>,
    retention_period: Option<i64>,
    termination_protection_enabled: Option<bool>,
    tags_list: Option<Vec<Tag>>,
    kms_key_id: Option<String>,
    start_ingestion: Option<bool>,
    billing_mode: Option<String>,
}

impl StoreRequest {
    /// The settings of a store to create (`Name` required).
    pub fn create(self) -> Result<StoreSettings, ApiError> {
        required(self.name.as_ref(), "Name")?;
        self.settings()
    }

    /// The store to update and its changes.
    pub fn update(mut self) -> Result<(String, StoreSettings), ApiError> {
        let store = required(self.event_data_store.take(), "EventDataStore")?;
        Ok((store, self.settings()?))
    }

    fn settings(self) -> Result<StoreSettings, ApiError> {
        let selectors = match self.advanced_event_selectors {
            None => None,
            Some(list) => {
                let input: Vec<AdvancedEventSelectorInput> = list.into_iter().map(Into::into).collect();
                match service::trails::advanced_selectors(&input)? {
                    Selectors::Advanced(s) => Some(s),
                    Selectors::Basic(_) => None,
                }
            }
        };
        let billing_mode = match self.billing_mode {
            None => None,
            Some(b) => Some(BillingMode::parse(&b).ok_or_else(|| EventDataStoreError::InvalidField {
                field: "BillingMode",
                reason: format!("'{b}' is not EXTENDABLE_RETENTION_PRICING or FIXED_RETENTION_PRICING"),
            })?),
        };
        let tags = self.tags_list.unwrap_or_default().into_iter().enumerate().map(|(i, t)| {
            let key = t.key.ok_or_else(|| EventDataStoreError::InvalidField {
                field: "TagsList",
                reason: format!("TagsList[{i}].Key is required"),
            })?;
            Ok::<_, EventDataStoreError>(StoreTag { key, value: t.value.unwrap_or_default() })
        });
        Ok(StoreSettings {
            name: self.name,
            selectors,
            multi_region_enabled: self.multi_region_enabled,
            organization_enabled: self.organization_enabled,
            retention_period: self.retention_period,
            termination_protection_enabled: self.termination_protection_enabled,
            billing_mode,
            kms_key_id: self.kms_key_id,
            tags: tags.collect::<Result<_, _>>()?,
            start_ingestion: self.start_ingestion,
        })
    }
}

/// GetEventDataStore, DeleteEventDataStore, Start/StopEventDataStoreIngestion.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StoreRef {
    event_data_store: Option<String>,
}

impl StoreRef {
    pub fn reference(self) -> Result<String, WireError> {
        required(self.event_data_store, "EventDataStore")
    }
}

/// ListEventDataStores and ListQueries' paging members (and ListQueries' filters).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListRequest {
    event_data_store: Option<String>,
    max_results: Option<serde_json::Number>,
    next_token: Option<String>,
    start_time: Option<Timestamp>,
    end_time: Option<Timestamp>,
    query_status: Option<String>,
}

/// A page request: its size, the token it starts from, and ListQueries' filters.
pub(crate) struct Page {
    pub store: Option<String>,
    pub max: usize,
    pub token: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub status: Option<lake::QueryStatus>,
}

impl TryFrom<ListRequest> for Page {
    type Error = ApiError;

    fn try_from(r: ListRequest) -> Result<Page, ApiError> {
        let max = match r.max_results {
            None => MAX_LIST_PAGE,
            Some(n) => match n.as_u64() {
                Some(m) if (1..=MAX_LIST_PAGE as u64).contains(&m) => m as usize,
                _ => {
                    return Err(ApiError::client(
                        "InvalidMaxResultsException",
                        format!("MaxResults {n} is not between 1 and {MAX_LIST_PAGE}"),
                    ));
                }
            },
        };
        let status = match r.query_status {
            None => None,
            Some(s) => Some(lake::QueryStatus::parse(&s).ok_or_else(|| {
                ApiError::client("InvalidQueryStatusException", format!("'{s}' is not a query status"))
            })?),
        };
        let (start, end) = (r.start_time.map(|t| t.0.0), r.end_time.map(|t| t.0.0));
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(ApiError::client("InvalidDateRangeException", "StartTime is after EndTime"));
        }
        Ok(Page { store: r.event_data_store, max, token: r.next_token.filter(|t| !t.is_empty()), start, end, status })
    }
}

/// StartQuery.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StartQueryRequest {
    query_statement: Option<String>,
    delivery_s3_uri: Option<String>,
    query_alias: Option<String>,
}

impl StartQueryRequest {
    pub fn statement(self) -> Result<String, ApiError> {
        if self.delivery_s3_uri.is_some() {
            return Err(WireError::Unsupported {
                members: "DeliveryS3Uri",
                reason: "delivering query results to S3 is not supported; page them with GetQueryResults",
            }
            .into());
        }
        if self.query_alias.is_some() {
            return Err(WireError::Unsupported { members: "QueryAlias", reason: "dashboards are not supported" }.into());
        }
        Ok(required(self.query_statement, "QueryStatement")?)
    }
}

/// DescribeQuery, GetQueryResults, CancelQuery.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueryRequest {
    pub event_data_store: Option<String>,
    query_id: Option<String>,
    pub next_token: Option<String>,
    max_query_results: Option<serde_json::Number>,
}

/// Hard-coded: GetQueryResults' largest page (MaxQueryResults 1..1000, the model's bounds).
pub(crate) const MAX_QUERY_RESULTS: usize = 1000;

impl QueryRequest {
    pub fn query_id(&self) -> Result<String, WireError> {
        required(self.query_id.clone(), "QueryId")
    }

    pub fn max_results(&self) -> Result<usize, ApiError> {
        match &self.max_query_results {
            None => Ok(MAX_QUERY_RESULTS),
            Some(n) => match n.as_u64() {
                Some(m) if (1..=MAX_QUERY_RESULTS as u64).contains(&m) => Ok(m as usize),
                _ => Err(ApiError::client(
                    "InvalidMaxResultsException",
                    format!("MaxQueryResults {n} is not between 1 and {MAX_QUERY_RESULTS}"),
                )),
            },
        }
    }
}
