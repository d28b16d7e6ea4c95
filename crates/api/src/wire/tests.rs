//! Request shapes: a member of the wrong type is a SerializationException naming its path; a member left
//! out is the ValidationException AWS sends; unknown members are ignored.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::channels::{CreateChannelRequest, ListChannelsRequest};
use super::data::{PutAuditEventsQuery, PutAuditEventsRequest, WireAuditEvent};
use super::keys::ListPublicKeysRequest;
use super::lookup::LookupEventsRequest;
use super::trails::{CreateTrailRequest, NewTrail, PutEventSelectorsRequest, TagsRequest};
use super::*;
use crate::error::ApiError;

/// The error a body of the wrong shape gets, as the client sees it.
fn shape_error<T: DeserializeOwned + std::fmt::Debug>(body: Value) -> ApiError {
    ApiError::from(parse::<T>(&body).unwrap_err())
}

/// `body` fails to deserialize as `T` with a SerializationException saying `expect`.
fn check<T: DeserializeOwned + std::fmt::Debug>(body: Value, expect: &str) {
    let e = shape_error::<T>(body);
    assert_eq!((e.code, e.message.as_str()), ("SerializationException", expect));
}

#[test]
fn a_member_of_the_wrong_type_is_named_by_its_path() {
    check::<PutEventSelectorsRequest>(
        json!({"TrailName": "t", "EventSelectors": [{"ReadWriteType": 7}]}),
        "EventSelectors[0].ReadWriteType: invalid type: integer `7`, expected a string",
    );
    check::<PutEventSelectorsRequest>(
        json!({"TrailName": "t", "EventSelectors": [{}, {"DataResources": [{"Type": "AWS::S3::Object", "Values": [1]}]}]}),
        "EventSelectors[1].DataResources[0].Values[0]: invalid type: integer `1`, expected a string",
    );
    check::<PutEventSelectorsRequest>(
        json!({"TrailName": "t", "EventSelectors": [{"DataResources": [{"Type": false}]}]}),
        "EventSelectors[0].DataResources[0].Type: invalid type: boolean `false`, expected a string",
    );
    check::<PutEventSelectorsRequest>(
        json!({"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "NotStartsWith": "x"}]}]}),
        "AdvancedEventSelectors[0].FieldSelectors[0].NotStartsWith: invalid type: string \"x\", expected a sequence",
    );
    check::<CreateTrailRequest>(
        json!({"Name": "t", "S3BucketName": 7}),
        "S3BucketName: invalid type: integer `7`, expected a string",
    );
    check::<CreateTrailRequest>(
        json!({"Name": "t", "IsMultiRegionTrail": "yes"}),
        "IsMultiRegionTrail: invalid type: string \"yes\", expected a boolean",
    );
    check::<TagsRequest>(
        json!({"ResourceId": "arn", "TagsList": ["k"]}),
        "TagsList[0]: invalid type: string \"k\", expected struct Tag",
    );
    check::<CreateChannelRequest>(
        json!({"Name": "c", "Destinations": [{"Type": "EVENT_DATA_STORE", "Location": 5}]}),
        "Destinations[0].Location: invalid type: integer `5`, expected a string",
    );
    check::<ListChannelsRequest>(json!({"NextToken": 3}), "NextToken: invalid type: integer `3`, expected a string");
    check::<LookupEventsRequest>(
        json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "x"}, {"AttributeKey": 1}]}),
        "LookupAttributes[1].AttributeKey: invalid type: integer `1`, expected a string",
    );
    check::<LookupEventsRequest>(
        json!({"MaxResults": "ten"}),
        "MaxResults: invalid type: string \"ten\", expected a JSON number",
    );
}

#[test]
fn timestamps_are_epoch_seconds_or_iso_8601() {
    let r: ListPublicKeysRequest = parse(&json!({"StartTime": 1577869200, "EndTime": "2020-01-02T00:00:00Z"})).unwrap();
    assert_eq!(r.range(EventTime(0)).unwrap(), (EventTime(1_577_869_200_000), EventTime(1_577_923_200_000)));
    let r: ListPublicKeysRequest = parse(&json!({"StartTime": 1.5})).unwrap();
    assert_eq!(r.range(EventTime(2_000)).unwrap(), (EventTime(1_500), EventTime(2_000)));
    check::<ListPublicKeysRequest>(
        json!({"StartTime": "yesterday"}),
        "StartTime: invalid value: string \"yesterday\", expected a timestamp: epoch seconds or ISO-8601",
    );
    check::<LookupEventsRequest>(
        json!({"EndTime": true}),
        "EndTime: invalid type: boolean `true`, expected a timestamp: epoch seconds or ISO-8601",
    );
    let backwards: ListPublicKeysRequest = parse(&json!({"StartTime": 20, "EndTime": 10})).unwrap();
    let e = ApiError::from(backwards.range(EventTime(0)).unwrap_err());
    assert_eq!(e.code, "InvalidTimeRangeException");
}

#[test]
fn a_body_of_the_wrong_kind_is_named_without_a_path() {
    check::<LookupEventsRequest>(json!([1]), "request body must be a JSON object");
    check::<LookupEventsRequest>(json!("x"), "request body must be a JSON object");
}

#[test]
fn a_missing_member_is_the_validation_error_aws_sends() {
    let missing = |r: Result<NewTrail, WireError>| ApiError::from(r.err().unwrap());
    let e = missing(parse::<CreateTrailRequest>(&json!({"S3BucketName": "b"})).unwrap().try_into());
    assert_eq!(e.code, "ValidationException");
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'Name' failed to satisfy constraint: Member must not be null"
    );
    // `null` is a member left out, as AWS reads it.
    let e = missing(parse::<CreateTrailRequest>(&json!({"Name": null})).unwrap().try_into());
    assert!(e.message.contains("'Name'"), "{}", e.message);
}

#[test]
fn unknown_members_are_ignored() {
    let r: CreateTrailRequest = parse(&json!({"Name": "t", "S3BucketName": "b", "Frobnicate": [1, {"x": 2}]})).unwrap();
    let NewTrail { name, settings, tags } = r.try_into().unwrap();
    assert_eq!((name.as_str(), settings.s3_bucket_name.as_deref(), tags.len()), ("t", Some("b"), 0));
}

#[test]
fn put_audit_events_names_broken_json_and_members_of_the_wrong_type_apart() {
    let e = ApiError::from(PutAuditEventsRequest::from_slice(b"{\"auditEvents\": [").unwrap_err());
    assert_eq!(e.code, "SerializationException");
    assert!(e.message.starts_with("request body is not valid JSON: "), "{}", e.message);
    let e = ApiError::from(PutAuditEventsRequest::from_slice(b"{} trailing").unwrap_err());
    assert!(e.message.starts_with("request body is not valid JSON: "), "{}", e.message);
    let e = ApiError::from(
        PutAuditEventsRequest::from_slice(br#"{"auditEvents": [{"id": "a", "eventData": {}}]}"#).unwrap_err(),
    );
    assert_eq!(e.code, "SerializationException");
    assert!(e.message.starts_with("auditEvents[0].eventData: invalid type: map, expected a string"), "{}", e.message);
}

#[test]
fn put_audit_events_rules_have_their_own_names() {
    let events = |body: &[u8]| {
        PutAuditEventsRequest::from_slice(body).and_then(Vec::<WireAuditEvent>::try_from).map_err(ApiError::from)
    };
    let ok = events(br#"{"auditEvents": [{"id": "a", "eventData": "{}"}, {"id": "b", "eventData": "{}", "x": 1}]}"#);
    assert_eq!(ok.unwrap().len(), 2);
    let e = events(br#"{"auditEvents": [{"id": "a", "eventData": "{}"}, {"id": "a", "eventData": "{}"}]}"#);
    assert_eq!(e.unwrap_err().code, "DuplicatedAuditEventId");
    let e = events(br#"{"auditEvents": []}"#).unwrap_err();
    assert_eq!(e.code, "ValidationException");
    let e = events(br#"{"auditEvents": [{"id": "not ok", "eventData": "{}"}]}"#).unwrap_err();
    assert_eq!(e.code, "ValidationException");
    let e = events(br#"{"auditEvents": [{"id": "a"}]}"#).unwrap_err();
    assert!(e.message.contains("'auditEvents[0].eventData'"), "{}", e.message);

    let channel = |uri: &str| {
        PutAuditEventsQuery::from_uri(&uri.parse().unwrap())
            .and_then(PutAuditEventsQuery::channel)
            .map_err(ApiError::from)
    };
    assert_eq!(channel("/PutAuditEvents?channelArn=abc&externalId=ok").unwrap(), "abc");
    assert_eq!(channel("/PutAuditEvents").unwrap_err().code, "InvalidChannelARN");
    assert_eq!(channel("/PutAuditEvents?channelArn=abc&externalId=x").unwrap_err().code, "ValidationException");
}
