//! CloudTrail's naming and classification of calls: eventSource from the credential scope's service,
//! eventName where it is not the operation name, readOnly and Management vs Data. Every table here is
//! listed in docs/awsproto.md.

use crate::Category;

/// Credential-scope service → eventSource host, where it is not `<service>.amazonaws.com`.
const EVENT_SOURCES: &[(&str, &str)] = &[("email", "ses.amazonaws.com"), ("ses", "ses.amazonaws.com")];

pub(crate) fn event_source(scope_service: &str) -> String {
    EVENT_SOURCES
        .iter()
        .find(|(s, _)| *s == scope_service)
        .map(|(_, e)| (*e).to_owned())
        .unwrap_or_else(|| format!("{scope_service}.amazonaws.com"))
}

/// S3 operations CloudTrail names differently.
const S3_NAMES: &[(&str, &str)] = &[
    ("ListObjectsV2", "ListObjects"),
    ("GetBucketLifecycleConfiguration", "GetBucketLifecycle"),
    ("PutBucketLifecycleConfiguration", "PutBucketLifecycle"),
    ("GetBucketNotificationConfiguration", "GetBucketNotification"),
    ("PutBucketNotificationConfiguration", "PutBucketNotification"),
];

/// Lambda operations whose CloudTrail name carries a `v2` after the API date
/// (`UpdateFunctionConfiguration20150331v2`).
const LAMBDA_V2: &[&str] = &[
    "GetFunction",
    "GetFunctionConfiguration",
    "UpdateFunctionConfiguration",
    "UpdateFunctionCode",
    "AddPermission",
    "RemovePermission",
    "GetPolicy",
    "TagResource",
    "UntagResource",
];

/// Lambda operations CloudTrail names without the API date.
const LAMBDA_PLAIN: &[&str] = &["Invoke", "InvokeAsync", "InvokeWithResponseStream"];

/// The eventName of an operation: S3's renames, Lambda's API-date suffixes (the date is the first segment of
/// the operation's request URI, `/2015-03-31/functions` → `20150331`), else the operation name.
pub(crate) fn event_name(service: &str, op: &str, request_uri: &str) -> String {
    match service {
        "s3" => S3_NAMES.iter().find(|(o, _)| *o == op).map(|(_, n)| (*n).to_owned()).unwrap_or_else(|| op.to_owned()),
        "lambda" if !LAMBDA_PLAIN.contains(&op) => {
            let date: String = request_uri.trim_start_matches('/').split('/').next().unwrap_or("").replace('-', "");
            if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
                return op.to_owned();
            }
            let v2 = if LAMBDA_V2.contains(&op) { "v2" } else { "" };
            format!("{op}{date}{v2}")
        }
        _ => op.to_owned(),
    }
}

/// Read-only operations that do not start with a read verb.
const READ_ONLY: &[(&str, &str)] = &[
    ("kms", "Encrypt"),
    ("kms", "Decrypt"),
    ("kms", "ReEncrypt"),
    ("kms", "GenerateDataKey"),
    ("kms", "GenerateDataKeyWithoutPlaintext"),
    ("kms", "GenerateDataKeyPair"),
    ("kms", "GenerateDataKeyPairWithoutPlaintext"),
    ("kms", "GenerateRandom"),
    ("kms", "GenerateMac"),
    ("kms", "VerifyMac"),
    ("kms", "Sign"),
    ("kms", "Verify"),
    ("sts", "AssumeRole"),
    ("sts", "AssumeRoleWithSAML"),
    ("sts", "AssumeRoleWithWebIdentity"),
    ("sts", "DecodeAuthorizationMessage"),
    ("dynamodb", "Query"),
    ("dynamodb", "Scan"),
    ("dynamodb", "TransactGetItems"),
    ("rds", "DownloadDBLogFilePortion"),
    ("logs", "FilterLogEvents"),
    ("logs", "StartQuery"),
    ("s3", "SelectObjectContent"),
];

/// Verbs that make an operation read-only (`GetUser`, `ListBuckets`, `DescribeInstances`, `HeadObject`…).
const READ_VERBS: &[&str] = &["Get", "List", "Describe", "Head", "Lookup", "Search", "BatchGet", "Select", "Check"];

pub(crate) fn read_only(service: &str, op: &str) -> bool {
    if READ_ONLY.iter().any(|(s, o)| *s == service && *o == op) {
        return true;
    }
    READ_VERBS.iter().any(|v| {
        op.strip_prefix(v).is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase()))
    })
}

/// Data events: (service, operation); `*` = every operation on an object (S3: see `s3_data`).
const DATA: &[(&str, &str)] = &[
    ("lambda", "Invoke"),
    ("lambda", "InvokeAsync"),
    ("lambda", "InvokeWithResponseStream"),
    ("dynamodb", "GetItem"),
    ("dynamodb", "PutItem"),
    ("dynamodb", "UpdateItem"),
    ("dynamodb", "DeleteItem"),
    ("dynamodb", "BatchGetItem"),
    ("dynamodb", "BatchWriteItem"),
    ("dynamodb", "Query"),
    ("dynamodb", "Scan"),
    ("dynamodb", "TransactGetItems"),
    ("dynamodb", "TransactWriteItems"),
    ("dynamodb", "ExecuteStatement"),
    ("dynamodb", "BatchExecuteStatement"),
    ("dynamodb", "ExecuteTransaction"),
    ("dynamodbstreams", "GetRecords"),
    ("dynamodbstreams", "GetShardIterator"),
    ("sns", "Publish"),
    ("sns", "PublishBatch"),
    ("sqs", "SendMessage"),
    ("sqs", "SendMessageBatch"),
    ("sqs", "ReceiveMessage"),
    ("sqs", "DeleteMessage"),
    ("sqs", "DeleteMessageBatch"),
    ("sqs", "ChangeMessageVisibility"),
    ("sqs", "ChangeMessageVisibilityBatch"),
    ("kinesis", "PutRecord"),
    ("kinesis", "PutRecords"),
    ("kinesis", "GetRecords"),
    ("kinesis", "GetShardIterator"),
    ("kinesis", "SubscribeToShard"),
    ("s3", "ListObjects"),
    ("s3", "ListObjectsV2"),
    ("s3", "ListObjectVersions"),
    ("s3", "ListMultipartUploads"),
    ("s3", "DeleteObjects"),
];

/// Management or data. S3: every operation on an object (a URI with `{Key+}`) is data, plus the listings of
/// a bucket's objects; Lambda Invoke; DynamoDB item calls; SQS messages; SNS Publish; Kinesis records.
pub(crate) fn category(service: &str, op: &str, request_uri: &str) -> Category {
    let s3_object = service == "s3" && request_uri.contains("{Key+}");
    if s3_object || DATA.iter().any(|(s, o)| *s == service && *o == op) { Category::Data } else { Category::Management }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cloudtrail() {
        assert_eq!(event_name("s3", "ListObjectsV2", "/{Bucket}?list-type=2"), "ListObjects");
        assert_eq!(event_name("lambda", "CreateFunction", "/2015-03-31/functions"), "CreateFunction20150331");
        assert_eq!(
            event_name("lambda", "UpdateFunctionConfiguration", "/2015-03-31/functions/{FunctionName}/configuration"),
            "UpdateFunctionConfiguration20150331v2"
        );
        assert_eq!(event_name("lambda", "Invoke", "/2015-03-31/functions/{FunctionName}/invocations"), "Invoke");
        assert_eq!(event_name("iam", "CreateUser", "/"), "CreateUser");
        assert_eq!(event_source("monitoring"), "monitoring.amazonaws.com");
        assert_eq!(event_source("email"), "ses.amazonaws.com");
    }

    #[test]
    fn read_only_and_category_follow_cloudtrail() {
        assert!(read_only("kms", "Decrypt"));
        assert!(read_only("sts", "AssumeRole"));
        assert!(read_only("iam", "GetUser"));
        assert!(!read_only("iam", "CreateUser"));
        assert!(!read_only("ec2", "Getaway"));
        assert_eq!(category("s3", "PutObject", "/{Bucket}/{Key+}"), Category::Data);
        assert_eq!(category("s3", "CreateBucket", "/{Bucket}"), Category::Management);
        assert_eq!(category("dynamodb", "PutItem", "/"), Category::Data);
        assert_eq!(category("secretsmanager", "GetSecretValue", "/"), Category::Management);
        assert_eq!(category("kms", "Decrypt", "/"), Category::Management);
    }
}
