//! describe() on hand-made exchanges: the cases the recorded fixtures do not cover (virtual-host S3,
//! presigned URLs, both X-Amz-Target spellings, query parameters in the URL, EC2 and JSON errors, unsigned
//! calls), and a property test: describe() never panics, whatever the bytes and headers.

use awsproto::{Category, Described, Exchange, Protocol, describe};
use proptest::prelude::*;
use serde_json::json;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIAJOHNEXAMPLE00001/20261130/eu-west-1/SERVICE/aws4_request, \
                    SignedHeaders=host;x-amz-date, Signature=0123456789abcdef";

struct Call<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    service: Option<&'a str>,
    req_headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    status: u16,
    resp_headers: &'a [(&'a str, &'a str)],
    resp_body: &'a [u8],
}

impl Default for Call<'_> {
    fn default() -> Self {
        Call {
            method: "POST",
            path: "/",
            query: None,
            service: None,
            req_headers: &[],
            body: b"",
            status: 200,
            resp_headers: &[],
            resp_body: b"",
        }
    }
}

fn map(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            http::HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn run(c: Call<'_>) -> Described {
    let mut req = map(c.req_headers);
    if let Some(s) = c.service {
        req.insert("authorization", http::HeaderValue::from_str(&AUTH.replace("SERVICE", s)).expect("auth"));
    }
    let resp = map(c.resp_headers);
    let method: http::Method = c.method.parse().expect("method");
    describe(&Exchange {
        method: &method,
        path: c.path,
        query: c.query,
        request_headers: &req,
        request_body: c.body,
        request_body_complete: true,
        status: Some(http::StatusCode::from_u16(c.status).expect("status")),
        response_headers: Some(&resp),
        response_body: c.resp_body,
        response_body_complete: true,
        account_id: Some("123456789012"),
    })
}

#[test]
fn virtual_host_s3_put_names_bucket_and_key() {
    let d = run(Call {
        method: "PUT",
        path: "/receipts/2026/11/30.csv",
        service: Some("s3"),
        req_headers: &[("host", "coffee-receipts.s3.eu-west-1.amazonaws.com"), ("content-length", "5")],
        body: b"a,b,c",
        resp_headers: &[
            ("x-amz-request-id", "REQ1"),
            ("x-amz-id-2", "HOSTID"),
            ("x-amz-version-id", "v1"),
            ("x-amz-server-side-encryption", "AES256"),
            ("etag", "\"abc\""),
        ],
        ..Call::default()
    });
    assert_eq!((d.protocol, d.event_name.as_str(), d.category), (Protocol::RestXml, "PutObject", Category::Data));
    assert_eq!(
        d.request_parameters,
        Some(
            json!({"bucketName":"coffee-receipts","Host":"coffee-receipts.s3.eu-west-1.amazonaws.com","key":"receipts/2026/11/30.csv"})
        )
    );
    assert_eq!(d.response_elements, Some(json!({"x-amz-version-id":"v1","x-amz-server-side-encryption":"AES256"})));
    assert_eq!(d.resources[0].arn, "arn:aws:s3:::coffee-receipts/receipts/2026/11/30.csv");
    assert_eq!(d.resources[1].resource_type, "AWS::S3::Bucket");
    assert_eq!(d.request_id.as_deref(), Some("REQ1"));
    assert_eq!(d.aws_region.as_deref(), Some("eu-west-1"));
    let extra = d.additional_event_data.expect("additionalEventData");
    assert_eq!(extra["bytesTransferredIn"], 5);
    assert_eq!(extra["x-amz-id-2"], "HOSTID");
    assert_eq!(extra["SSEApplied"], "SSE_S3");
}

#[test]
fn s3_copy_headers_and_bucket_policies_are_parameters_as_in_real_records() {
    let d = run(Call {
        method: "PUT",
        path: "/victim-data-bucket/important-file.txt",
        service: Some("s3"),
        req_headers: &[
            ("host", "127.0.0.1:9000"),
            ("x-amz-copy-source", "victim-data-bucket/important-file.txt"),
            ("x-amz-server-side-encryption", "aws:kms"),
            ("x-amz-server-side-encryption-customer-key", "c2VjcmV0"),
            ("x-amz-checksum-crc32", "AAAAAA=="),
        ],
        ..Call::default()
    });
    assert_eq!(d.event_name, "CopyObject");
    assert_eq!(
        d.request_parameters,
        Some(json!({"bucketName": "victim-data-bucket", "Host": "127.0.0.1:9000", "key": "important-file.txt",
            "x-amz-copy-source": "victim-data-bucket/important-file.txt", "x-amz-server-side-encryption": "aws:kms"}))
    );
    let d = run(Call {
        method: "PUT",
        path: "/example-bucket",
        query: Some("policy"),
        service: Some("s3"),
        req_headers: &[("host", "127.0.0.1:9000")],
        body: br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetBucketAcl","Resource":"arn:aws:s3:::example-bucket"}]}"#,
        status: 204,
        ..Call::default()
    });
    assert_eq!(d.event_name, "PutBucketPolicy");
    let p = d.request_parameters.expect("requestParameters");
    assert_eq!(
        (p["policy"].clone(), p["bucketPolicy"]["Statement"][0]["Action"].clone()),
        (json!(""), json!("s3:GetBucketAcl"))
    );
}

#[test]
fn presigned_get_is_query_string_authenticated_and_keeps_no_signature() {
    let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAJOHNEXAMPLE00001%2F20261130%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20261130T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd&versionId=3";
    let d = run(Call {
        method: "GET",
        path: "/coffee-receipts/menu%20v2.pdf",
        query: Some(q),
        req_headers: &[("host", "127.0.0.1:9000")],
        ..Call::default()
    });
    assert_eq!(d.event_name, "GetObject");
    assert!(d.read_only);
    assert_eq!(d.access_key_id.as_deref(), Some("AKIAJOHNEXAMPLE00001"));
    assert_eq!(
        d.request_parameters,
        Some(json!({"bucketName":"coffee-receipts","Host":"127.0.0.1:9000","key":"menu v2.pdf","versionId":"3"}))
    );
    assert_eq!(d.response_elements, None, "reads carry no responseElements");
    assert_eq!(d.additional_event_data.expect("extra")["AuthenticationMethod"], "QueryString");
}

#[test]
fn s3_bucket_subresources_and_listings_pick_the_right_operation() {
    let get = |query: Option<&'static str>| {
        run(Call { method: "GET", path: "/b", query, service: Some("s3"), ..Call::default() }).event_name
    };
    assert_eq!(get(None), "ListObjects");
    assert_eq!(get(Some("list-type=2&prefix=")), "ListObjects");
    assert_eq!(get(Some("acl")), "GetBucketAcl");
    assert_eq!(get(Some("versioning")), "GetBucketVersioning");
    assert_eq!(get(Some("versions")), "ListObjectVersions");
    let list = run(Call { method: "GET", path: "/", service: Some("s3"), ..Call::default() });
    assert_eq!((list.event_name.as_str(), list.category), ("ListBuckets", Category::Management));
    let head = run(Call { method: "HEAD", path: "/b", service: Some("s3"), status: 404, ..Call::default() });
    assert_eq!((head.event_name.as_str(), head.error_code.as_deref()), ("HeadBucket", Some("NotFound")));
}

#[test]
fn json_targets_in_both_spellings() {
    let d = run(Call {
        service: Some("dynamodb"),
        req_headers: &[("x-amz-target", "DynamoDB_20120810.GetItem"), ("content-type", "application/x-amz-json-1.0")],
        body: br#"{"TableName":"orders","Key":{"id":{"S":"o-1"}},"ConsistentRead":true}"#,
        resp_headers: &[("x-amzn-RequestId", "R2")],
        resp_body: br#"{"Item":{"id":{"S":"o-1"}}}"#,
        ..Call::default()
    });
    assert_eq!(
        (d.protocol, d.event_name.as_str(), d.category, d.read_only),
        (Protocol::Json, "GetItem", Category::Data, true)
    );
    assert_eq!(
        d.request_parameters,
        Some(json!({"tableName": "orders", "key": {"id": "o-1"}, "consistentRead": true}))
    );
    assert_eq!(d.api_version.as_deref(), Some("2012-08-10"));
    assert_eq!(d.response_elements, None);
    let d = run(Call {
        service: Some("kms"),
        req_headers: &[("x-amz-target", "TrentService.Decrypt"), ("content-type", "application/x-amz-json-1.1")],
        body: br#"{"CiphertextBlob":"AQID","KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","EncryptionContext":{"Department":"Engineering"}}"#,
        resp_body: br#"{"Plaintext":"c2VjcmV0","KeyId":"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}"#,
        ..Call::default()
    });
    assert_eq!((d.event_name.as_str(), d.read_only, d.category), ("Decrypt", true, Category::Management));
    // The ciphertext blob is not logged; map keys keep their case.
    assert_eq!(
        d.request_parameters,
        Some(json!({"keyId":"1234abcd-12ab-34cd-56ef-1234567890ab","encryptionContext":{"Department":"Engineering"}}))
    );
    assert_eq!(d.resources[0].arn, "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab");
}

#[test]
fn json_errors_from_type_and_from_the_error_header() {
    let d = run(Call {
        service: Some("secretsmanager"),
        req_headers: &[("x-amz-target", "secretsmanager.GetSecretValue")],
        body: br#"{"SecretId":"nope"}"#,
        status: 400,
        resp_body: br#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}"#,
        ..Call::default()
    });
    assert_eq!(d.error_code.as_deref(), Some("ResourceNotFoundException"));
    assert_eq!(d.error_message.as_deref(), Some("Secrets Manager can't find the specified secret."));
    let d = run(Call {
        method: "GET",
        path: "/2015-03-31/functions/nothing",
        service: Some("lambda"),
        status: 404,
        resp_headers: &[(
            "x-amzn-ErrorType",
            "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.lambda/",
        )],
        resp_body: br#"{"Message":"Function not found"}"#,
        ..Call::default()
    });
    assert_eq!(
        (d.event_name.as_str(), d.error_code.as_deref()),
        ("GetFunction20150331v2", Some("ResourceNotFoundException"))
    );
    assert_eq!(d.error_message.as_deref(), Some("Function not found"));
}

#[test]
fn ec2_errors_and_request_id_come_from_the_body() {
    let d = run(Call {
        service: Some("ec2"),
        req_headers: &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
        body: b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123&InstanceId.2=i-0456&Filter.1.Name=instance-state-name&Filter.1.Value.1=running",
        status: 400,
        resp_body: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-0123' does not exist</Message></Error></Errors><RequestID>ec2-req-1</RequestID></Response>",
        ..Call::default()
    });
    assert_eq!((d.protocol, d.event_name.as_str()), (Protocol::Query, "DescribeInstances"));
    assert_eq!(d.error_code.as_deref(), Some("InvalidInstanceID.NotFound"));
    assert_eq!(d.request_id.as_deref(), Some("ec2-req-1"));
    assert_eq!(
        d.request_parameters,
        Some(json!({
            "instancesSet": {"items": [{"instanceId": "i-0123"}, {"instanceId": "i-0456"}]},
            "filterSet": {"items": [{"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}}]}
        }))
    );
}

#[test]
fn ec2_describe_calls_write_their_absent_lists_as_empty_sets_like_real_records() {
    // Real record (../shared/data, panther-tests): DescribeSecurityGroups of one group id.
    let d = run(Call {
        service: Some("ec2"),
        req_headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: b"Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=sg-01e29ae063f5f63a0",
        ..Call::default()
    });
    assert_eq!(
        d.request_parameters,
        Some(
            json!({"filterSet": {}, "securityGroupIdSet": {"items": [{"groupId": "sg-01e29ae063f5f63a0"}]}, "securityGroupSet": {}})
        )
    );
    let d = run(Call {
        service: Some("ec2"),
        req_headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: b"Action=DescribeVpcs&Version=2016-11-15",
        ..Call::default()
    });
    assert_eq!(d.request_parameters, Some(json!({"vpcSet": {}, "filterSet": {}})));
    // An ingress rule's absent lists are written too.
    let d = run(Call {
        service: Some("ec2"),
        req_headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: b"Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1&IpPermissions.1.IpProtocol=tcp\
&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22&IpPermissions.1.IpRanges.1.CidrIp=127.0.0.1%2F32\
&IpPermissions.1.IpRanges.1.Description=SSH+for+me",
        ..Call::default()
    });
    assert_eq!(
        d.request_parameters,
        Some(json!({"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
            "groups": {}, "ipRanges": {"items": [{"cidrIp": "127.0.0.1/32", "description": "SSH for me"}]},
            "ipv6Ranges": {}, "prefixListIds": {}}]}}))
    );
}

#[test]
fn query_actions_in_the_url_and_api_versions_choose_the_service() {
    let d = run(Call {
        method: "GET",
        path: "/",
        query: Some("Action=ListUsers&Version=2010-05-08&MaxItems=10"),
        service: Some("iam"),
        ..Call::default()
    });
    assert_eq!((d.event_source.as_str(), d.event_name.as_str()), ("iam.amazonaws.com", "ListUsers"));
    assert_eq!(d.request_parameters, Some(json!({"maxItems": 10})));
    // Classic and v2 load balancers share the signing name; the Version picks the model.
    let v2 = run(Call {
        service: Some("elasticloadbalancing"),
        req_headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: b"Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=web",
        ..Call::default()
    });
    assert_eq!(v2.request_parameters, Some(json!({"names": ["web"]})));
    let classic = run(Call {
        service: Some("elasticloadbalancing"),
        req_headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: b"Action=DescribeLoadBalancers&Version=2012-06-01&LoadBalancerNames.member.1=web",
        ..Call::default()
    });
    assert_eq!(classic.request_parameters, Some(json!({"loadBalancerNames": ["web"]})));
}

#[test]
fn sqs_in_its_old_query_protocol_is_still_known() {
    let d = run(Call {
        path: "/123456789012/orders",
        service: Some("sqs"),
        req_headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: b"Action=SendMessage&Version=2012-11-05&MessageBody=hello&DelaySeconds=5",
        ..Call::default()
    });
    assert_eq!((d.protocol, d.event_name.as_str(), d.category), (Protocol::Query, "SendMessage", Category::Data));
    assert_eq!(d.request_parameters, Some(json!({"messageBody": "hello", "delaySeconds": 5})));
}

#[test]
fn lambda_invoke_is_a_data_event_on_the_function() {
    let d = run(Call {
        path: "/2015-03-31/functions/orders-api/invocations",
        service: Some("lambda"),
        body: br#"{"order": 1}"#,
        resp_body: b"1",
        ..Call::default()
    });
    assert_eq!((d.event_name.as_str(), d.category, d.read_only), ("Invoke", Category::Data, false));
    assert_eq!(
        d.request_parameters,
        Some(json!({"functionName": "orders-api"})),
        "the payload is data, not a parameter"
    );
    assert_eq!(d.resources[0].arn, "arn:aws:lambda:eu-west-1:123456789012:function:orders-api");
    assert_eq!(d.resources[0].resource_type, "AWS::Lambda::Function");
}

#[test]
fn sts_credentials_are_written_without_the_secret_key() {
    let d = run(Call {
        service: Some("sts"),
        req_headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: b"Action=GetSessionToken&Version=2011-06-15",
        resp_body: b"<GetSessionTokenResponse><GetSessionTokenResult><Credentials><AccessKeyId>ASIAX</AccessKeyId>\
<SecretAccessKey>wJalrXUtnFEMI/K7MDENG</SecretAccessKey><SessionToken>tok</SessionToken>\
<Expiration>2026-11-30T22:00:00Z</Expiration></Credentials></GetSessionTokenResult></GetSessionTokenResponse>",
        ..Call::default()
    });
    assert_eq!(
        d.response_elements,
        Some(
            json!({"credentials":{"accessKeyId":"ASIAX","sessionToken":"tok","expiration":"Nov 30, 2026, 10:00:00 PM"}})
        )
    );
}

#[test]
fn unsigned_or_unknown_calls_are_described_generically() {
    let d = run(Call { method: "GET", path: "/health", status: 503, ..Call::default() });
    assert_eq!((d.protocol, d.event_name.as_str(), d.read_only), (Protocol::Unknown, "GET /health", true));
    assert_eq!(d.error_code.as_deref(), Some("ServiceUnavailable"));
    assert_eq!(d.access_key_id, None);
    // A signed call to a service the table does not know keeps its scope and operation.
    let d = run(Call {
        service: Some("bedrock"),
        req_headers: &[("x-amz-target", "AmazonBedrock.ListGuardrails")],
        body: b"{}",
        ..Call::default()
    });
    assert_eq!(
        (d.protocol, d.event_source.as_str(), d.event_name.as_str()),
        (Protocol::Json, "bedrock.amazonaws.com", "ListGuardrails")
    );
}

#[test]
fn a_capped_form_body_loses_its_cut_last_pair_not_its_meaning() {
    let req = map(&[
        ("authorization", &AUTH.replace("SERVICE", "iam")),
        ("content-type", "application/x-www-form-urlencoded"),
    ]);
    let body = b"Action=CreateUser&Version=2010-05-08&UserName=Mary&Path=%2Fteam%2Fcof";
    let d = describe(&Exchange {
        method: &http::Method::POST,
        path: "/",
        query: None,
        request_headers: &req,
        request_body: body,
        request_body_complete: false,
        status: Some(http::StatusCode::OK),
        response_headers: None,
        response_body: b"",
        response_body_complete: true,
        account_id: None,
    });
    assert_eq!((d.event_name.as_str(), d.request_parameters), ("CreateUser", Some(json!({"userName": "Mary"}))));
}

#[test]
fn unsigned_sts_web_identity_calls_are_still_sts() {
    let d = run(Call {
        req_headers: &[("content-type", "application/x-www-form-urlencoded")],
        body:
            b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fci\
&RoleSessionName=build-7&WebIdentityToken=eyJhbGciOi.secret.jwt",
        ..Call::default()
    });
    assert_eq!(
        (d.protocol, d.event_source.as_str(), d.event_name.as_str()),
        (Protocol::Query, "sts.amazonaws.com", "AssumeRoleWithWebIdentity")
    );
    assert!(d.read_only);
    let p = d.request_parameters.expect("requestParameters");
    assert_eq!(
        (p["roleSessionName"].clone(), p["webIdentityToken"].clone()),
        (json!("build-7"), json!("HIDDEN_DUE_TO_SECURITY_REASONS"))
    );
    assert_eq!(d.resources[0].arn, "arn:aws:iam::123456789012:role/ci");
}

#[test]
fn no_response_means_no_error_code_from_here() {
    let req = map(&[("authorization", &AUTH.replace("SERVICE", "iam"))]);
    let d = describe(&Exchange {
        method: &http::Method::POST,
        path: "/",
        query: Some("Action=CreateUser&UserName=Mary"),
        request_headers: &req,
        request_body: b"",
        request_body_complete: true,
        status: None,
        response_headers: None,
        response_body: b"",
        response_body_complete: true,
        account_id: None,
    });
    assert_eq!((d.event_name.as_str(), d.error_code.as_deref(), d.response_elements), ("CreateUser", None, None));
}

fn any_header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        Just(
            "AWS4-HMAC-SHA256 Credential=AK/2026/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x".to_owned()
        ),
        Just("AWS4-HMAC-SHA256 Credential=AK/2026/us-east-1/ec2/aws4_request".to_owned()),
        Just("AWS4-HMAC-SHA256 Credential=AK/2026/us-east-1/lambda/aws4_request".to_owned()),
        Just("AWS4-HMAC-SHA256 Credential=////".to_owned()),
    ]
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[<>/a-zA-Z&;#0-9 =\"]{0,200}".prop_map(String::into_bytes),
        "[{}\\[\\]\":,a-zA-Z0-9._#]{0,200}".prop_map(String::into_bytes),
        "(Action=[A-Za-z]{1,12}&)?([A-Za-z]{1,6}(\\.[0-9a-z]{1,3}){0,4}=[%a-z0-9+]{0,6}&){0,12}"
            .prop_map(String::into_bytes),
        (0usize..600).prop_map(|depth| ("<a>".repeat(depth) + "x").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn describe_never_panics(
        method in prop_oneof![Just("GET"), Just("PUT"), Just("POST"), Just("HEAD"), Just("DELETE"), Just("PATCH")],
        path in "(/[%a-zA-Z0-9{}+._-]{0,12}){0,6}",
        query in proptest::option::of("[%a-zA-Z0-9=&.+-]{0,80}"),
        auth in any_header_value(),
        target in proptest::option::of("[A-Za-z_0-9.]{0,30}"),
        host in "[a-z0-9.:-]{0,40}",
        content_type in prop_oneof![Just("application/x-www-form-urlencoded"), Just("application/json"), Just("")],
        body in any_body(),
        status in proptest::option::of(100u16..600),
        resp_type in proptest::option::of("[ -~]{0,40}"),
        resp_body in any_body(),
    ) {
        let mut req = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&auth) { req.insert("authorization", v); }
        if let Some(t) = target.as_deref().and_then(|t| http::HeaderValue::from_str(t).ok()) { req.insert("x-amz-target", t); }
        if let Ok(v) = http::HeaderValue::from_str(&host) { req.insert("host", v); }
        if let Ok(v) = http::HeaderValue::from_str(content_type) { req.insert("content-type", v); }
        let mut resp = http::HeaderMap::new();
        if let Some(v) = resp_type.as_deref().and_then(|t| http::HeaderValue::from_str(t).ok()) { resp.insert("x-amzn-errortype", v); }
        let method: http::Method = method.parse().expect("method");
        let d = describe(&Exchange {
            method: &method,
            path: &path,
            query: query.as_deref(),
            request_headers: &req,
            request_body: &body,
            request_body_complete: body.len() % 2 == 0,
            status: status.and_then(|s| http::StatusCode::from_u16(s).ok()),
            response_headers: Some(&resp),
            response_body: &resp_body,
            response_body_complete: true,
            account_id: None,
        });
        prop_assert!(!d.event_name.is_empty());
    }
}
