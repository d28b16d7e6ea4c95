//! Which events a trail logs: its basic or advanced event selectors applied to one record's facts, with
//! CloudTrail's semantics (reference §3.1–3.2). Insights events are never selected here: a trail delivers
//! them from its Insights selectors, to its own folder.

use model::EventFacts;

use crate::trails::{
    AdvancedEventSelector, DataResource, EventSelector, FieldSelector, Operator, ReadWriteType, Selectors,
};

impl Selectors {
    /// Whether a trail with these selectors logs this event.
    pub fn matches(&self, f: &EventFacts<'_>) -> bool {
        if f.category == "Insight" {
            return false;
        }
        match self {
            Selectors::Basic(sels) => sels.iter().any(|s| basic_matches(s, f)),
            Selectors::Advanced(sels) => sels.iter().any(|s| advanced_matches(s, f)),
        }
    }
}

fn read_write_ok(rw: ReadWriteType, f: &EventFacts<'_>) -> bool {
    match rw {
        ReadWriteType::All => true,
        ReadWriteType::ReadOnly => f.read_only == Some(true),
        // A record without readOnly is taken as a write: it may change something.
        ReadWriteType::WriteOnly => f.read_only != Some(true),
    }
}

/// A basic selector: management events by read/write type minus the excluded sources; data events whose
/// resources match one of its data resources. Other categories (network activity) need advanced selectors.
fn basic_matches(s: &EventSelector, f: &EventFacts<'_>) -> bool {
    if !read_write_ok(s.read_write_type, f) {
        return false;
    }
    match &*f.category {
        "Management" => {
            s.include_management_events
                && !f
                    .event_source
                    .as_deref()
                    .is_some_and(|src| s.exclude_management_event_sources.iter().any(|x| x == src))
        }
        "Data" => s.data_resources.iter().any(|d| data_resource_matches(d, f)),
        _ => false,
    }
}

/// `arn:<partition>:<service>` (optionally with `:::`) selects every resource of the type; an S3 value is an
/// object-ARN prefix (`arn:aws:s3:::bucket/` = the whole bucket); Lambda and DynamoDB values name one
/// function or table (a Lambda ARN also covers its qualified versions and aliases).
fn data_resource_matches(d: &DataResource, f: &EventFacts<'_>) -> bool {
    f.resources.iter().any(|(ty, arn)| {
        let (Some(ty), Some(arn)) = (ty.as_deref(), arn.as_deref()) else { return false };
        ty == d.resource_type
            && d.values.iter().any(|v| {
                let service_wide = v.trim_end_matches(':');
                service_wide.matches(':').count() == 2 && arn.starts_with(service_wide)
                    || match d.resource_type.as_str() {
                        "AWS::S3::Object" => arn.starts_with(v.as_str()),
                        "AWS::Lambda::Function" => {
                            arn == v || arn.strip_prefix(v.as_str()).is_some_and(|rest| rest.starts_with(':'))
                        }
                        _ => arn == v,
                    }
            })
    })
}

/// An advanced selector: every field selector holds (AND); the trail logs the event when any selector does.
fn advanced_matches(s: &AdvancedEventSelector, f: &EventFacts<'_>) -> bool {
    s.field_selectors.iter().all(|fs| field_matches(fs, f))
}

fn field_matches(fs: &FieldSelector, f: &EventFacts<'_>) -> bool {
    let read_only = f.read_only.map(|b| if b { "true" } else { "false" });
    let scalar: Option<Option<&str>> = match fs.field.as_str() {
        "eventCategory" => Some(Some(&*f.category)),
        "eventSource" => Some(f.event_source.as_deref()),
        "eventName" => Some(f.event_name.as_deref()),
        "eventType" => Some(f.event_type.as_deref()),
        "readOnly" => Some(read_only),
        "errorCode" => Some(f.error_code.as_deref()),
        "userIdentity.arn" => Some(f.user_identity_arn.as_deref()),
        "sessionCredentialFromConsole" => Some(f.session_credential_from_console.as_deref()),
        "vpcEndpointId" => Some(f.vpc_endpoint_id.as_deref()),
        _ => None,
    };
    if let Some(value) = scalar {
        return conditions_hold(fs, value);
    }
    let values: Vec<Option<&str>> = match fs.field.as_str() {
        "resources.type" => f.resources.iter().map(|(t, _)| t.as_deref()).collect(),
        "resources.ARN" => f.resources.iter().map(|(_, a)| a.as_deref()).collect(),
        // A field this build does not know selects nothing (selectors are validated when they are put).
        _ => return false,
    };
    if values.is_empty() {
        return conditions_hold(fs, None);
    }
    // An event with several resources matches when one of them satisfies every condition.
    values.into_iter().any(|v| conditions_hold(fs, v))
}

/// Values of one operator are OR-ed (Equals [a, b] = a or b; NotEquals [a, b] = neither); the operators of a
/// field are AND-ed. An absent value satisfies only the negative operators.
fn conditions_hold(fs: &FieldSelector, value: Option<&str>) -> bool {
    fs.conditions.iter().all(|(op, values)| {
        let any = |test: &dyn Fn(&str, &str) -> bool| value.is_some_and(|v| values.iter().any(|x| test(v, x)));
        match op {
            Operator::Equals => any(&|v, x| v == x),
            Operator::StartsWith => any(&|v, x| v.starts_with(x)),
            Operator::EndsWith => any(&|v, x| v.ends_with(x)),
            Operator::NotEquals => !any(&|v, x| v == x),
            Operator::NotStartsWith => !any(&|v, x| v.starts_with(x)),
            Operator::NotEndsWith => !any(&|v, x| v.ends_with(x)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trails::{
        AdvancedEventSelectorInput, EventSelectorInput, FieldSelectorInput, advanced_selectors, basic_selectors,
    };

    fn facts(json: &str) -> EventFacts<'_> {
        EventFacts::parse(json).unwrap()
    }

    const MGMT_WRITE: &str = r#"{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","readOnly":false,"eventCategory":"Management","userIdentity":{"arn":"arn:aws:iam::1:user/John"}}"#;
    const MGMT_READ: &str =
        r#"{"eventSource":"iam.amazonaws.com","eventName":"GetUser","readOnly":true,"eventCategory":"Management"}"#;
    const KMS_READ: &str =
        r#"{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","readOnly":true,"eventCategory":"Management"}"#;
    const S3_GET: &str = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","readOnly":true,"eventCategory":"Data","resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::logs/2024/a.txt"},{"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::logs"}]}"#;
    const S3_PUT_OTHER: &str = r#"{"eventSource":"s3.amazonaws.com","eventName":"PutObject","readOnly":false,"eventCategory":"Data","resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::other/x"}]}"#;
    const INSIGHT: &str =
        r#"{"eventType":"AwsCloudTrailInsight","eventCategory":"Insight","eventSource":"ec2.amazonaws.com"}"#;

    fn basic(json: &str) -> Selectors {
        let v: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        let input: Vec<EventSelectorInput> = v
            .iter()
            .map(|s| EventSelectorInput {
                read_write_type: s["ReadWriteType"].as_str().map(String::from),
                include_management_events: s["IncludeManagementEvents"].as_bool(),
                data_resources: s["DataResources"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|d| crate::trails::DataResourceInput {
                                resource_type: d["Type"].as_str().map(String::from),
                                values: d["Values"]
                                    .as_array()
                                    .map(|x| x.iter().map(|y| y.as_str().unwrap().to_string()).collect())
                                    .unwrap_or_default(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                exclude_management_event_sources: s["ExcludeManagementEventSources"]
                    .as_array()
                    .map(|x| x.iter().map(|y| y.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            })
            .collect();
        basic_selectors(&input).unwrap()
    }

    fn advanced(json: &str) -> Selectors {
        let v: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        let input: Vec<AdvancedEventSelectorInput> = v
            .iter()
            .map(|s| AdvancedEventSelectorInput {
                name: None,
                field_selectors: s["FieldSelectors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| FieldSelectorInput {
                        field: f["Field"].as_str().map(String::from),
                        conditions: Operator::ALL
                            .iter()
                            .filter_map(|op| {
                                f[op.as_str()].as_array().map(|a| {
                                    (*op, a.iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>())
                                })
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        advanced_selectors(&input).unwrap()
    }

    #[test]
    fn a_new_trail_logs_management_events_but_no_data_or_insights() {
        let s = Selectors::default_for_new_trail();
        assert!(s.matches(&facts(MGMT_WRITE)));
        assert!(s.matches(&facts(MGMT_READ)));
        assert!(!s.matches(&facts(S3_GET)));
        assert!(!s.matches(&facts(INSIGHT)));
    }

    #[test]
    fn basic_read_write_type_exclusions_and_data_resources() {
        let s = basic(r#"[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true}]"#);
        assert!(s.matches(&facts(MGMT_WRITE)));
        assert!(!s.matches(&facts(MGMT_READ)));
        let s = basic(
            r#"[{"ReadWriteType":"All","IncludeManagementEvents":true,"ExcludeManagementEventSources":["kms.amazonaws.com"]}]"#,
        );
        assert!(!s.matches(&facts(KMS_READ)));
        assert!(s.matches(&facts(MGMT_READ)));
        let s = basic(
            r#"[{"ReadWriteType":"All","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/"]}]}]"#,
        );
        assert!(s.matches(&facts(S3_GET)));
        assert!(!s.matches(&facts(S3_PUT_OTHER)));
        assert!(!s.matches(&facts(MGMT_WRITE)));
        let all = basic(
            r#"[{"ReadWriteType":"ReadOnly","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]"#,
        );
        assert!(all.matches(&facts(S3_GET)));
        assert!(!all.matches(&facts(S3_PUT_OTHER)), "write data event under a ReadOnly selector");
    }

    #[test]
    fn advanced_operators_and_resources() {
        let s = advanced(
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]"#,
        );
        assert!(s.matches(&facts(MGMT_WRITE)));
        assert!(!s.matches(&facts(MGMT_READ)));
        assert!(!s.matches(&facts(S3_PUT_OTHER)), "data event under a Management selector");

        let s = advanced(
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}]}]"#,
        );
        assert!(s.matches(&facts(MGMT_READ)));
        assert!(!s.matches(&facts(KMS_READ)));

        let s = advanced(
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},
                {"Field":"resources.ARN","StartsWith":["arn:aws:s3:::logs/"],"NotEndsWith":[".tmp"]},{"Field":"eventName","NotStartsWith":["Delete"]}]}]"#,
        );
        assert!(s.matches(&facts(S3_GET)));
        assert!(!s.matches(&facts(S3_PUT_OTHER)));
        let s = advanced(
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"userIdentity.arn","EndsWith":["/John"]}]},
                {"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","Equals":["iam.amazonaws.com"]}]}]"#,
        );
        assert!(!s.matches(&facts(S3_GET)), "no identity: a positive operator fails on an absent value");
        assert!(s.matches(&facts(MGMT_READ)), "second selector");
        assert!(!s.matches(&facts(KMS_READ)));
        assert!(!s.matches(&facts(INSIGHT)));
    }
}
