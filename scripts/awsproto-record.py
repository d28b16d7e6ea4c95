#!/usr/bin/env python3
"""Record real AWS exchanges as awsproto fixtures.

A tiny recording proxy sits between the aws CLI and moto_server: every request and response that crosses it
is saved as one JSON fixture under crates/awsproto/tests/fixtures/ (bodies capped at CAP bytes, as the gateway
caps them, with a `complete` flag). The scenario below runs the issue's calls; each step names the fixture and
what CloudTrail would record for it (`expect`), written by hand from AWS's documentation and real records.

Usage: python3 scripts/awsproto-record.py            (re-records every fixture; needs moto_server and aws)
       python3 scripts/awsproto-record.py --proxy-only UPSTREAM_PORT LISTEN_PORT   (just the proxy)
"""
import base64
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

CAP = 8192
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "crates", "awsproto", "tests", "fixtures")
ACCESS_KEY = "AKIAJOHNEXAMPLE00001"
SECRET_KEY = "john-secret-key-example-0000000000000000"

exchanges = []
lock = threading.Lock()


def encode_body(body):
    cut = body[:CAP]
    out = {"complete": len(body) <= CAP, "length": len(body)}
    try:
        out["text"] = cut.decode("utf-8")
    except UnicodeDecodeError:
        out["base64"] = base64.b64encode(cut).decode()
    return out


def make_handler(upstream_port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def handle_any(self):
            body = self.read_body()
            path, _, query = self.path.partition("?")
            headers = [(k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"]
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                headers.append(("Content-Length", str(len(body))))
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            if body:
                conn.send(body)
            resp = conn.getresponse()
            rbody = resp.read()
            rheaders = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection")]
            with lock:
                exchanges.append({
                    "request": {"method": self.command, "path": path, "query": query or None,
                                "headers": headers, "body": encode_body(body)},
                    "response": {"status": resp.status, "headers": rheaders, "body": encode_body(rbody)},
                })
            self.send_response_only(resp.status)
            for k, v in rheaders:
                if k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(rbody)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(rbody)
            conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any

    return Handler


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(upstream_port, listen_port=0):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", listen_port), make_handler(upstream_port))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# (fixture name, aws CLI arguments, expected CloudTrail fields of the LAST exchange the command made;
#  `requestParameters` is a subset: each key given must be present with that value).
def scenario(tmp):
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]})
    zip_path = os.path.join(tmp, "fn.zip")
    import zipfile
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("index.py", "def handler(e, c):\n    return 1\n")
    big = os.path.join(tmp, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(20 * 1024 * 1024))
    iam = "iam.amazonaws.com"
    return [
        ("iam-create-user", ["iam", "create-user", "--user-name", "Mary"],
         {"eventSource": iam, "eventName": "CreateUser", "readOnly": False, "eventCategory": "Management",
          "requestParameters": {"userName": "Mary"}, "responseElements": {"user": {"userName": "Mary"}}}),
        ("iam-attach-user-policy", ["iam", "attach-user-policy", "--user-name", "Mary", "--policy-arn",
                                    "arn:aws:iam::aws:policy/ReadOnlyAccess"],
         {"eventSource": iam, "eventName": "AttachUserPolicy", "readOnly": False,
          "requestParameters": {"userName": "Mary", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
          "responseElements": None}),
        ("iam-create-access-key", ["iam", "create-access-key", "--user-name", "Mary"],
         {"eventSource": iam, "eventName": "CreateAccessKey", "readOnly": False,
          "requestParameters": {"userName": "Mary"}, "responseElements": {"accessKey": {"userName": "Mary", "status": "Active"}}}),
        ("iam-create-role", ["iam", "create-role", "--role-name", "deployer", "--assume-role-policy-document", policy],
         {"eventSource": iam, "eventName": "CreateRole", "readOnly": False, "requestParameters": {"roleName": "deployer"}}),
        ("iam-get-user-missing", ["iam", "get-user", "--user-name", "nobody"],
         {"eventSource": iam, "eventName": "GetUser", "readOnly": True, "errorCode": "NoSuchEntity",
          "requestParameters": {"userName": "nobody"}, "responseElements": None}),
        ("sts-get-caller-identity", ["sts", "get-caller-identity"],
         {"eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity", "readOnly": True,
          "requestParameters": None, "responseElements": None}),
        ("sts-assume-role", ["sts", "assume-role", "--role-arn", "arn:aws:iam::123456789012:role/deployer",
                             "--role-session-name", "john-deploy"],
         {"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "readOnly": True,
          "requestParameters": {"roleArn": "arn:aws:iam::123456789012:role/deployer", "roleSessionName": "john-deploy"},
          "resources": [{"ARN": "arn:aws:iam::123456789012:role/deployer", "type": "AWS::IAM::Role"}]}),
        ("ec2-run-instances", ["ec2", "run-instances", "--image-id", "ami-12c6146b", "--count", "1",
                               "--instance-type", "t2.micro", "--tag-specifications",
                               "ResourceType=instance,Tags=[{Key=Name,Value=web}]"],
         {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "readOnly": False,
          "requestParameters": {"instancesSet": {"items": [{"imageId": "ami-12c6146b", "minCount": 1, "maxCount": 1}]},
                                "instanceType": "t2.micro",
                                "tagSpecificationSet": {"items": [{"resourceType": "instance",
                                                                   "tags": [{"key": "Name", "value": "web"}]}]}}}),
        ("ec2-describe-instances", ["ec2", "describe-instances"],
         {"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "readOnly": True,
          "requestParameters": {"instancesSet": {}, "filterSet": {}}, "responseElements": None}),
        ("ec2-create-security-group", ["ec2", "create-security-group", "--group-name", "web", "--description", "web"],
         {"eventSource": "ec2.amazonaws.com", "eventName": "CreateSecurityGroup", "readOnly": False,
          "requestParameters": {"groupName": "web", "groupDescription": "web"}}),
        ("ec2-authorize-security-group-ingress", ["ec2", "authorize-security-group-ingress", "--group-name", "web",
                                                  "--protocol", "tcp", "--port", "22", "--cidr", "0.0.0.0/0"],
         {"eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress", "readOnly": False,
          "requestParameters": {"groupName": "web", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                                "groups": {}, "ipv6Ranges": {}, "prefixListIds": {}}]}}}),
        ("secretsmanager-create-secret", ["secretsmanager", "create-secret", "--name", "db-password",
                                          "--secret-string", "hunter2"],
         {"eventSource": "secretsmanager.amazonaws.com", "eventName": "CreateSecret", "readOnly": False,
          "requestParameters": {"name": "db-password", "secretString": "HIDDEN_DUE_TO_SECURITY_REASONS"}}),
        ("secretsmanager-get-secret-value", ["secretsmanager", "get-secret-value", "--secret-id", "db-password"],
         {"eventSource": "secretsmanager.amazonaws.com", "eventName": "GetSecretValue", "readOnly": True,
          "eventCategory": "Management", "requestParameters": {"secretId": "db-password"}, "responseElements": None}),
        ("ssm-put-parameter", ["ssm", "put-parameter", "--name", "/app/db-url", "--value", "postgres://x",
                               "--type", "String"],
         {"eventSource": "ssm.amazonaws.com", "eventName": "PutParameter", "readOnly": False,
          "requestParameters": {"name": "/app/db-url", "type": "String"}}),
        ("ssm-get-parameters", ["ssm", "get-parameters", "--names", "/app/db-url", "--with-decryption"],
         {"eventSource": "ssm.amazonaws.com", "eventName": "GetParameters", "readOnly": True,
          "requestParameters": {"names": ["/app/db-url"], "withDecryption": True}, "responseElements": None}),
        ("dynamodb-create-table", ["dynamodb", "create-table", "--table-name", "orders", "--attribute-definitions",
                                   "AttributeName=id,AttributeType=S", "--key-schema", "AttributeName=id,KeyType=HASH",
                                   "--billing-mode", "PAY_PER_REQUEST"],
         {"eventSource": "dynamodb.amazonaws.com", "eventName": "CreateTable", "readOnly": False,
          "eventCategory": "Management", "requestParameters": {"tableName": "orders", "billingMode": "PAY_PER_REQUEST"}}),
        ("dynamodb-put-item", ["dynamodb", "put-item", "--table-name", "orders", "--item",
                               '{"id": {"S": "o-1"}, "total": {"N": "12"}}'],
         {"eventSource": "dynamodb.amazonaws.com", "eventName": "PutItem", "readOnly": False, "eventCategory": "Data",
          "requestParameters": {"tableName": "orders", "item": ["id", "total"]},
          "resources": [{"type": "AWS::DynamoDB::Table"}]}),
        ("dynamodb-describe-table-missing", ["dynamodb", "describe-table", "--table-name", "nothing"],
         {"eventSource": "dynamodb.amazonaws.com", "eventName": "DescribeTable", "readOnly": True,
          "errorCode": "ResourceNotFoundException"}),
        ("kms-create-key", ["kms", "create-key", "--description", "orders"],
         {"eventSource": "kms.amazonaws.com", "eventName": "CreateKey", "readOnly": False,
          "requestParameters": {"description": "orders"}, "resources": [{"type": "AWS::KMS::Key"}]}),
        ("lambda-create-function", ["lambda", "create-function", "--function-name", "orders-api", "--runtime",
                                    "python3.12", "--role", "arn:aws:iam::123456789012:role/deployer", "--handler",
                                    "index.handler", "--zip-file", "fileb://" + zip_path],
         {"eventSource": "lambda.amazonaws.com", "eventName": "CreateFunction20150331", "readOnly": False,
          "eventCategory": "Management", "requestParameters": {"functionName": "orders-api", "runtime": "python3.12"}}),
        ("lambda-update-function-configuration", ["lambda", "update-function-configuration", "--function-name",
                                                  "orders-api", "--timeout", "30"],
         {"eventSource": "lambda.amazonaws.com", "eventName": "UpdateFunctionConfiguration20150331v2",
          "readOnly": False, "requestParameters": {"functionName": "orders-api", "timeout": 30}}),
        ("lambda-get-function-missing", ["lambda", "get-function", "--function-name", "nothing"],
         {"eventSource": "lambda.amazonaws.com", "eventName": "GetFunction20150331v2", "readOnly": True,
          "errorCode": "ResourceNotFoundException"}),
        ("s3-mb", ["s3", "mb", "s3://coffee-receipts"],
         {"eventSource": "s3.amazonaws.com", "eventName": "CreateBucket", "readOnly": False,
          "eventCategory": "Management", "requestParameters": {"bucketName": "coffee-receipts"},
          "resources": [{"ARN": "arn:aws:s3:::coffee-receipts", "type": "AWS::S3::Bucket"}]}),
        ("s3-cp-multipart", ["s3", "cp", big, "s3://coffee-receipts/big.bin"],
         {"eventSource": "s3.amazonaws.com", "eventName": "CompleteMultipartUpload", "readOnly": False,
          "eventCategory": "Data", "requestParameters": {"bucketName": "coffee-receipts", "key": "big.bin"},
          "resources": [{"ARN": "arn:aws:s3:::coffee-receipts/big.bin", "type": "AWS::S3::Object"},
                        {"ARN": "arn:aws:s3:::coffee-receipts", "type": "AWS::S3::Bucket"}]}),
        ("s3api-put-object", ["s3api", "put-object", "--bucket", "coffee-receipts", "--key", "r/1.txt", "--body", zip_path],
         {"eventSource": "s3.amazonaws.com", "eventName": "PutObject", "readOnly": False, "eventCategory": "Data",
          "requestParameters": {"bucketName": "coffee-receipts", "key": "r/1.txt"}}),
        ("s3-ls", ["s3", "ls", "s3://coffee-receipts"],
         {"eventSource": "s3.amazonaws.com", "eventName": "ListObjects", "readOnly": True, "eventCategory": "Data",
          "requestParameters": {"bucketName": "coffee-receipts", "list-type": "2", "delimiter": "/"},
          "responseElements": None}),
        ("s3api-head-object-missing", ["s3api", "head-object", "--bucket", "coffee-receipts", "--key", "nothing"],
         {"eventSource": "s3.amazonaws.com", "eventName": "HeadObject", "readOnly": True, "eventCategory": "Data",
          "errorCode": "NotFound"}),
        ("s3api-get-object-missing", ["s3api", "get-object", "--bucket", "coffee-receipts", "--key", "nothing",
                                      os.path.join(tmp, "out")],
         {"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "readOnly": True, "eventCategory": "Data",
          "errorCode": "NoSuchKey"}),
        ("sqs-create-queue", ["sqs", "create-queue", "--queue-name", "orders"],
         {"eventSource": "sqs.amazonaws.com", "eventName": "CreateQueue", "readOnly": False,
          "requestParameters": {"queueName": "orders"}}),
        ("sns-create-topic", ["sns", "create-topic", "--name", "orders"],
         {"eventSource": "sns.amazonaws.com", "eventName": "CreateTopic", "readOnly": False,
          "requestParameters": {"name": "orders"}}),
        ("logs-create-log-group", ["logs", "create-log-group", "--log-group-name", "/app/orders"],
         {"eventSource": "logs.amazonaws.com", "eventName": "CreateLogGroup", "readOnly": False,
          "requestParameters": {"logGroupName": "/app/orders"}}),
        ("route53-create-hosted-zone", ["route53", "create-hosted-zone", "--name", "coffee.example",
                                        "--caller-reference", "ref-1"],
         {"eventSource": "route53.amazonaws.com", "eventName": "CreateHostedZone", "readOnly": False,
          "requestParameters": {"name": "coffee.example", "callerReference": "ref-1"}}),
        ("cloudwatch-put-metric-data", ["cloudwatch", "put-metric-data", "--namespace", "Shop", "--metric-name",
                                        "Orders", "--value", "3"],
         {"eventSource": "monitoring.amazonaws.com", "eventName": "PutMetricData", "readOnly": False,
          "requestParameters": {"namespace": "Shop"}}),
    ]


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--proxy-only":
        server = start_proxy(int(sys.argv[2]), int(sys.argv[3]))
        print(f"recording proxy on 127.0.0.1:{server.server_address[1]}", flush=True)
        threading.Event().wait()
    moto_port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(moto_port)],
                            env=dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", moto_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        proxy = start_proxy(moto_port)
        endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
        os.makedirs(FIXTURES, exist_ok=True)
        for f in os.listdir(FIXTURES):
            if f.endswith(".json"):
                os.remove(os.path.join(FIXTURES, f))
        with tempfile.TemporaryDirectory() as tmp:
            for i, (name, args, expect) in enumerate(scenario(tmp)):
                with lock:
                    exchanges.clear()
                r = subprocess.run(["aws", "--endpoint-url", endpoint] + args, env=env, capture_output=True, text=True)
                with lock:
                    got = list(exchanges)
                if not got:
                    print(f"{name}: no exchange recorded (exit {r.returncode}: {r.stderr.strip()[:200]})", file=sys.stderr)
                    continue
                fixture = {"name": name, "command": ["aws"] + [a if not a.startswith(tmp) and not a.startswith("fileb://" + tmp)
                                                               else "<tmp file>" for a in args],
                           "exit": r.returncode, "exchanges": got, "expect": expect}
                path = os.path.join(FIXTURES, f"{i:02d}-{name}.json")
                with open(path, "w") as f:
                    json.dump(fixture, f, indent=1, sort_keys=False)
                    f.write("\n")
                print(f"{name}: {len(got)} exchange(s), exit {r.returncode}, last status {got[-1]['response']['status']}",
                      file=sys.stderr)
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
