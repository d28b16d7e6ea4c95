//! The typed CloudTrail record (eventVersion 1.11 field set) for code that builds or reads records field by
//! field: self-audit, PutAuditEvents mapping, tools. Every field is optional (real records are partial) and
//! unknown fields are kept in `other`, so a record read and written back is equivalent JSON.
//!
//! The stored form of an ingested record stays its original text ([`crate::Record`]); this type is a view.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Deserializes a present field as `Some`, even when it is JSON `null`: CloudTrail writes
/// `"responseElements": null` for read-only calls, and a round trip must keep it.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One CloudTrail event record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudTrailEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub response_elements: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "eventID", skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<ResourceRef>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_event: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    pub shared_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_account_id: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub service_event_details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub addendum: Option<Value>,
    /// The string `"true"`, present only when true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_credential_from_console: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub edge_device_details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<TlsDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight_details: Option<InsightDetails>,
    /// Only in event-data-store-enriched events, never in trails or lookups.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub event_context: Option<Value>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `Root`, `IAMUser`, `AssumedRole`, `Role`, `FederatedUser`, `Directory`, `AWSAccount`, `AWSService`,
    /// `IdentityCenterUser`, `SAMLUser`, `WebIdentityUser`, `Unknown`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub invoked_by_delegate: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub in_scope_of: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<SessionIssuer>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub web_id_federation_data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<SessionAttributes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2_role_delivery: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub assumed_root: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Who issued the session (an empty object for console sessions of IAM users).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub issuer_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    /// The string `"true"` or `"false"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_authenticated: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One entry of `resources[]` (the key is `ARN`, upper case).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    #[serde(rename = "ARN", skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_provided_host_header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_exchange: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `insightDetails` of an Insights event (`eventType` `AwsCloudTrailInsight`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightDetails {
    /// `Start` or `End`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// `ApiCallRateInsight` or `ApiErrorRateInsight`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight_type: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub insight_context: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let typed: CloudTrailEvent = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let back = serde_json::to_value(&typed).unwrap();
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, want, "round trip changed the record");
    }

    #[test]
    fn documented_identity_shapes_round_trip() {
        round_trip(
            r#"{"eventVersion":"1.11","userIdentity":{"type":"AssumedRole","principalId":"AROAIDPPEZS35WEXAMPLE:MySessionName","arn":"arn:aws:sts::123456789012:assumed-role/RoleToBeAssumed/MySessionName","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAIDPPEZS35WEXAMPLE","arn":"arn:aws:iam::123456789012:role/RoleToBeAssumed","accountId":"123456789012","userName":"RoleToBeAssumed"},"webIdFederationData":{},"attributes":{"mfaAuthenticated":"false","creationDate":"2021-02-21T23:46:28Z"}}},"eventTime":"2021-02-22T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","requestParameters":null,"responseElements":null,"readOnly":true,"resources":[{"ARN":"arn:aws:s3:::b","accountId":"123456789012","type":"AWS::S3::Bucket"}],"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"s3.amazonaws.com"},"brandNewField":{"x":1}}"#,
        );
        round_trip(
            r#"{"eventVersion":"1.11","userIdentity":{"type":"IdentityCenterUser","accountId":"123456789012","onBehalfOf":{"userId":"544894e8","identityStoreArn":"arn:aws:identitystore::123456789012:identitystore/d-9067642ac7"},"credentialId":"EXAMPLE"},"eventTime":"2024-01-01T00:00:00Z","eventSource":"sso.amazonaws.com","eventName":"Federate"}"#,
        );
        round_trip(
            r#"{"eventVersion":"1.07","eventTime":"2020-01-01T00:00:00Z","awsRegion":"us-east-1","eventID":"e","eventType":"AwsCloudTrailInsight","recipientAccountId":"1","sharedEventID":"s","insightDetails":{"state":"Start","eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceInformation","insightType":"ApiCallRateInsight","insightContext":{"statistics":{"baseline":{"average":85.4202380952},"insight":{"average":664}}}},"eventCategory":"Insight"}"#,
        );
    }

    #[test]
    fn explicit_nulls_and_absent_fields_stay_apart() {
        let with_null: CloudTrailEvent = serde_json::from_str(r#"{"responseElements":null}"#).unwrap();
        assert_eq!(with_null.response_elements, Some(Value::Null));
        let absent: CloudTrailEvent = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.response_elements, None);
    }

    /// The real records in `../shared/data` (beside the repository in development and CI; absent from a
    /// user's clone) must all survive a typed round trip.
    #[test]
    fn real_aws_documentation_records_round_trip() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/cloudtrail-samples/awsdocs-examples.ndjson");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipped: {} not present", path.display());
            return;
        };
        let mut n = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            round_trip(line);
            n += 1;
        }
        assert!(n >= 100, "expected the 112 documented records, read {n}");
    }
}
