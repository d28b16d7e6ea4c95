#!/usr/bin/env python3
"""Generate SigV4 test vectors signed by the installed botocore.

Each vector is one HTTP request exactly as botocore would put it on the wire (method, raw path, raw query,
headers including the Host that urllib3 adds, body) plus the credentials and the signing time. The Rust tests in
crates/sigv4/tests/ verify every vector with opentrail's verifier and check that opentrail's signer reproduces the
same Authorization header.

Requests are made through real botocore clients where possible (so the SDK's serializers and handlers decide the
headers and the encoding); the HTTP layer is replaced by a 'before-send' hook that records the request and returns a
canned response. The clock is frozen by patching botocore.auth.get_current_datetime.

Usage: python3 scripts/gen-sigv4-vectors.py [OUT_DIR]   (default: crates/sigv4/tests/vectors)
"""

import datetime
import json
import os
import sys
from unittest import mock
from urllib.parse import urlsplit

import botocore
import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+session/token=="
WHEN = datetime.datetime(2024, 3, 9, 17, 42, 5)
WHEN_EPOCH = int(WHEN.replace(tzinfo=datetime.timezone.utc).timestamp())


class Recorder:
    """A before-send hook: remembers the last prepared request and answers with `body`."""

    def __init__(self):
        self.request = None
        self.response_body = b"{}"
        self.response_headers = {}

    def __call__(self, request, **_kwargs):
        self.request = request
        return AWSResponse(request.url, 200, self.response_headers, _RawBody(self.response_body))


class _RawBody:
    def __init__(self, data):
        self._data = data

    def stream(self, **_kwargs):
        yield self._data

    def read(self, *_args, **_kwargs):
        data, self._data = self._data, b""
        return data


def wire_headers(url, headers):
    """Headers in the order sent, with the Host header urllib3 adds (botocore signs the same value)."""
    out = [["Host", botocore.auth._host_from_url(url)]]
    for name, value in headers.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        out.append([name, value])
    return out


def body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        pos = body.tell()
        data = body.read()
        body.seek(pos)
        return data
    return bytes(body)


def vector(name, description, service, region, method, url, headers, body, token=None, presigned=False):
    parts = urlsplit(url)
    body = body_bytes(body)
    v = {
        "name": name,
        "description": description,
        "generator": f"botocore {botocore.__version__}",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "session_token": token,
        "region": region,
        "service": service,
        "now": WHEN_EPOCH,
        "method": method,
        "path": parts.path or "/",
        "query": parts.query,
        "headers": wire_headers(url, headers),
        "body_hex": body.hex(),
        "presigned": presigned,
    }
    try:
        v["body_text"] = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return v


def client(service, endpoint_url=None, token=None, config=None):
    session = botocore.session.get_session()
    c = session.create_client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=token,
        config=config or Config(retries={"max_attempts": 0}),
    )
    recorder = Recorder()
    c.meta.events.register("before-send", recorder)
    return c, recorder


def from_client(name, description, service, call, endpoint_url=None, token=None, config=None, response=b"{}"):
    c, rec = client(service, endpoint_url, token, config)
    rec.response_body = response
    try:
        call(c)
    except Exception as exc:  # the canned response may not parse; the request was still recorded
        print(f"{name}: response not parsed ({type(exc).__name__}: {exc}), request recorded", file=sys.stderr)
    r = rec.request
    assert r is not None, name
    return vector(name, description, service, "us-east-1", r.method, r.url, r.headers, r.body, token)


def from_signer(name, description, service, region, method, url, headers, body, signer_cls=botocore.auth.SigV4Auth,
                token=None, context=None, **signer_kwargs):
    creds = Credentials(ACCESS_KEY, SECRET_KEY, token)
    req = AWSRequest(method=method, url=url, data=body)
    req.context.update(context or {})
    # HTTPHeaders.__setitem__ appends, so a list of pairs can carry a repeated header name
    for hname, hvalue in headers.items() if isinstance(headers, dict) else headers:
        req.headers[hname] = hvalue
    signer_cls(creds, service, region, **signer_kwargs).add_auth(req)
    presigned = "X-Amz-Signature=" in req.url
    return vector(name, description, service, region, method, req.url, req.headers, req.data, token, presigned)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "crates", "sigv4", "tests", "vectors")
    os.makedirs(out_dir, exist_ok=True)
    vectors = []
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN):
        vectors.append(from_client(
            "cloudtrail-lookup-events",
            "CloudTrail JSON 1.1: POST / with X-Amz-Target and a JSON body, default https endpoint",
            "cloudtrail",
            lambda c: c.lookup_events(
                LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "alice  and\tbob"}],
                StartTime=datetime.datetime(2024, 3, 1), MaxResults=5),
        ))
        vectors.append(from_client(
            "cloudtrail-host-with-port",
            "CloudTrail JSON 1.1 against http://127.0.0.1:4567: the signed Host keeps the port",
            "cloudtrail",
            lambda c: c.describe_trails(trailNameList=["management-events"]),
            endpoint_url="http://127.0.0.1:4567",
        ))
        vectors.append(from_client(
            "cloudtrail-session-token",
            "CloudTrail JSON 1.1 signed with temporary credentials: X-Amz-Security-Token is signed",
            "cloudtrail",
            lambda c: c.get_trail_status(Name="arn:aws:cloudtrail:us-east-1:123456789012:trail/t"),
            endpoint_url="http://localhost:4567",
            token=SESSION_TOKEN,
        ))
        vectors.append(from_client(
            "cloudtrail-data-put-audit-events",
            "cloudtrail-data REST-JSON: POST /PutAuditEvents?channelArn=arn%3Aaws...&externalId=x",
            "cloudtrail-data",
            lambda c: c.put_audit_events(
                auditEvents=[{"id": "e-1", "eventData": json.dumps({"version": "1.0", "userIdentity": {"type": "x"}}),
                              "eventDataChecksum": "ignored"}],
                channelArn="arn:aws:cloudtrail:us-east-1:123456789012:channel/01234567-89ab-cdef-0123-456789abcdef",
                externalId="x"),
            endpoint_url="http://127.0.0.1:4567",
            # externalId has a 2-character minimum in the model; 'x' is what opentrail's own docs use, so the
            # client-side check is switched off (the server is what must accept or reject it)
            config=Config(retries={"max_attempts": 0}, parameter_validation=False),
            response=b'{"successful": [], "failed": []}',
        ))
        vectors.append(from_client(
            "s3-get-object-awkward-key",
            "S3 GET of a key with spaces, unicode, '~' and '+': unnormalized path, x-amz-content-sha256 signed",
            "s3",
            lambda c: c.get_object(Bucket="trail-bucket", Key="AWSLogs/a b/ünï+code~/./x..json.gz",
                                   VersionId="v 1/2"),
            endpoint_url="http://127.0.0.1:4567",
            config=Config(retries={"max_attempts": 0}, s3={"addressing_style": "path"}),
            response=b"",
        ))
        vectors.append(from_signer(
            "get-awkward-path-and-query",
            "GET with an encoded path holding spaces, unicode and dot segments, and an awkward query: repeated keys, "
            "a key without '=', an empty value, encoded '+', unicode and '~' (non-S3: path normalized and "
            "double-encoded, query sorted raw)",
            "execute-api", "eu-west-3", "GET",
            "https://api.example.com:8443/prod/foo%20bar/%E2%82%AC/./baz/../qux%2Fquux/?b=2&a=%20x%2By&a=1&empty="
            "&flag&%C3%BC=%E2%9C%93&tilde=~&Z=upper",
            {"Accept": "application/json", "X-Custom": "  spaced    value  with   runs  "},
            None,
        ))
        vectors.append(from_signer(
            "s3-put-unsigned-payload",
            "S3 PUT over https with payload signing off: x-amz-content-sha256 is UNSIGNED-PAYLOAD",
            "s3", "us-east-1", "PUT", "https://trail-bucket.s3.us-east-1.amazonaws.com/AWSLogs/digest%20file.json.gz",
            {"Content-Type": "application/octet-stream", "Content-MD5": "XUFAKrxLKna5cZ2REBfFkg=="},
            b"hello", signer_cls=botocore.auth.S3SigV4Auth,
            context={"client_config": Config(s3={"payload_signing_enabled": False})},
        ))
        vectors.append(from_signer(
            "get-unencoded-query",
            "a hand-built URL whose query leaves ':' '/' and '+' unencoded: botocore signs the pairs as sent, "
            "unlike the SDKs that re-encode them",
            "cloudtrail", "us-east-1", "GET",
            "http://127.0.0.1:4567/?trail=arn:aws:cloudtrail:us-east-1:123456789012:trail/t&q=a+b",
            {}, None,
        ))
        vectors.append(from_signer(
            "get-repeated-header",
            "a header repeated in the request: its values are joined with ',' in order",
            "service", "us-east-1", "GET", "http://example.amazonaws.com/",
            [("My-Header1", "value1"), ("my-header1", " value2  b "), ("X-Amz-Meta", "z")],
            None,
        ))
        vectors.append(from_signer(
            "presigned-cloudtrail-get",
            "query-string (presigned) SigV4 for a non-S3 service, with a session token",
            "cloudtrail", "us-east-1", "GET",
            "http://127.0.0.1:4567/?Action=LookupEvents&MaxResults=5",
            {}, None, signer_cls=botocore.auth.SigV4QueryAuth, token=SESSION_TOKEN, expires=900,
        ))
        c, _ = client("s3", "http://127.0.0.1:4567",
                      config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
        url = c.generate_presigned_url("get_object", Params={"Bucket": "trail-bucket", "Key": "AWSLogs/a b/ü.json"},
                                       ExpiresIn=3600)
        v = vector("presigned-s3-get-object", "S3 presigned GET URL from generate_presigned_url (UNSIGNED-PAYLOAD)",
                   "s3", "us-east-1", "GET", url, {}, None, presigned=True)
        vectors.append(v)

    for v in vectors:
        path = os.path.join(out_dir, v["name"] + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(v, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print(f"wrote {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
