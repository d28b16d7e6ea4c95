#!/usr/bin/env python3
"""Generate crates/awsproto/data/services.json.gz from botocore's service models.

The table is what awsproto needs to describe a call and nothing more: per service its protocol(s), API version,
signing name, endpoint prefix and JSON target prefix; per operation its HTTP method and request URI (REST
protocols) and input/output shapes; per shape only the type, the members' names, wire names (locationName,
queryName, location), list/map members and flattening. Documentation is dropped.

Usage: python3 scripts/awsproto-gen.py   (reads the installed botocore; writes the table and prints its size)
"""
import glob
import gzip
import json
import os
import sys

import botocore

SERVICES = [
    # the services
    "iam", "sts", "ec2", "sns", "sqs", "rds", "dynamodb", "kms", "secretsmanager", "ssm", "logs", "lambda",
    "apigateway", "s3", "route53",
    # common ones
    "cloudwatch", "events", "ecr", "ecs", "eks", "cloudformation", "elb", "elbv2", "autoscaling", "organizations",
    "cloudtrail", "kinesis", "firehose", "stepfunctions", "ses", "sesv2", "athena", "glue", "acm",
    "cognito-idp", "elasticache", "redshift", "efs", "route53resolver", "ssm-incidents", "apigatewayv2",
    "s3control", "guardduty", "securityhub", "config", "codebuild", "wafv2", "dynamodbstreams", "sso-admin",
]

SCALARS = {"string": "s", "integer": "i", "long": "i", "float": "f", "double": "f", "boolean": "b",
           "timestamp": "t", "blob": "B", "bigdecimal": "f", "biginteger": "i", "byte": "i", "short": "i"}


def load(service):
    root = os.path.join(os.path.dirname(botocore.__file__), "data", service)
    version = sorted(glob.glob(root + "/*/"))[-1]
    path = os.path.join(version, "service-2.json")
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz") as f:
            return json.load(f)
    with open(path) as f:
        return json.load(f)


def compact_service(name, model):
    meta = model["metadata"]
    shapes = model["shapes"]
    used = {}

    def visit(shape_name):
        if shape_name in used:
            return
        s = shapes[shape_name]
        t = s["type"]
        out = {}
        used[shape_name] = out
        if t in SCALARS:
            out["t"] = SCALARS[t]
            if s.get("timestampFormat"):
                out["tf"] = s["timestampFormat"]
        elif t == "structure":
            out["t"] = "S"
            members = []
            for mname, m in s.get("members", {}).items():
                e = {"n": mname, "s": m["shape"]}
                for k_src, k_dst in (("locationName", "ln"), ("queryName", "qn"), ("location", "loc")):
                    if m.get(k_src):
                        e[k_dst] = m[k_src]
                if m.get("flattened"):
                    e["fl"] = True
                members.append(e)
                visit(m["shape"])
            out["m"] = members
            if s.get("payload"):
                out["p"] = s["payload"]
        elif t == "list":
            m = s["member"]
            out["t"] = "L"
            out["e"] = m["shape"]
            if m.get("locationName"):
                out["ln"] = m["locationName"]
            if s.get("flattened"):
                out["fl"] = True
            visit(m["shape"])
        elif t == "map":
            out["t"] = "M"
            out["k"] = s["key"]["shape"]
            out["v"] = s["value"]["shape"]
            if s["key"].get("locationName"):
                out["kn"] = s["key"]["locationName"]
            if s["value"].get("locationName"):
                out["vn"] = s["value"]["locationName"]
            if s.get("flattened"):
                out["fl"] = True
            visit(s["key"]["shape"])
            visit(s["value"]["shape"])
        else:
            out["t"] = "s"

    ops = {}
    for oname, op in model["operations"].items():
        e = {"m": op["http"]["method"], "u": op["http"]["requestUri"]}
        if op.get("input"):
            e["i"] = op["input"]["shape"]
            visit(op["input"]["shape"])
            # Required query-string and header members tell REST operations sharing a URI apart
            # (S3 PutObject vs UploadPart vs CopyObject).
            ishape = shapes[op["input"]["shape"]]
            req = []
            for mname in ishape.get("required", []):
                m = ishape["members"].get(mname, {})
                if m.get("location") == "querystring":
                    req.append("?" + m.get("locationName", mname))
                elif m.get("location") == "header":
                    req.append(m.get("locationName", mname).lower())
            if req:
                e["rq"] = req
        if op.get("output"):
            e["o"] = op["output"]["shape"]
            if op["output"].get("resultWrapper"):
                e["rw"] = op["output"]["resultWrapper"]
            visit(op["output"]["shape"])
        ops[oname] = e

    protocols = meta.get("protocols") or [meta["protocol"]]
    return {
        "name": name,
        "protocols": protocols,
        "apiVersion": meta["apiVersion"],
        "signingName": meta.get("signingName") or meta["endpointPrefix"],
        "endpointPrefix": meta["endpointPrefix"],
        "targetPrefix": meta.get("targetPrefix"),
        "ops": ops,
        "shapes": used,
    }


def main():
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "awsproto", "data",
                            "services.json.gz")
    table = {"botocore": botocore.__version__, "services": [compact_service(s, load(s)) for s in SERVICES]}
    raw = json.dumps(table, separators=(",", ":"), sort_keys=True).encode()
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    # mtime=0: the same botocore gives the same bytes.
    with open(out_path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as g:
            g.write(raw)
    ops = sum(len(s["ops"]) for s in table["services"])
    print(f"{len(SERVICES)} services, {ops} operations, {len(raw)} bytes raw, {os.path.getsize(out_path)} gzipped",
          file=sys.stderr)


if __name__ == "__main__":
    main()
