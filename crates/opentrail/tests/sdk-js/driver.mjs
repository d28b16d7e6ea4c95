// Drives opentrail with the AWS SDK for JavaScript v3 for crates/opentrail/tests/sdk_js.rs, one call at a time:
// a JSON request per line on stdin, a JSON answer per line on stdout.
//
//   {"command": "GetTrail", "input": {...}}                     -> {"output": {...}, "metadata": {...}}
//   {"paginate": "LookupEvents", "pageSize": 25, "input": {...}} -> {"pages": [{...}, ...], "metadata": [...]}
//   {"client": "cloudtrail-data", "command": "PutAuditEvents", "input": {...}}
//   any of them failing                                          -> {"error": {"name", "message", ...}}
//
// `command` is a command class of the SDK (`GetTrailCommand`), `paginate` one of its paginators
// (`paginateLookupEvents`). Values JSON cannot tell apart travel tagged, both ways: {"$date": "<ISO-8601>"} is a
// Date, {"$bytes": "<base64>"} a Uint8Array, so the test sees which JS types the SDK's parser produced.
//
// Configuration comes from the environment the way an application's does: credentials and region through the
// SDK's default chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION); the endpoint is passed explicitly
// from OPENTRAIL_ENDPOINT.

import * as readline from "node:readline";
import * as cloudtrail from "@aws-sdk/client-cloudtrail";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import * as cloudtrailData from "./cloudtrail-data.mjs";

const endpoint = process.env.OPENTRAIL_ENDPOINT;
if (!endpoint) {
  console.error("OPENTRAIL_ENDPOINT is not set");
  process.exit(2);
}
// Hard-coded timeouts so a server that stops answering fails the test instead of hanging it.
const requestHandler = new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 30_000 });
const clients = {
  cloudtrail: { sdk: cloudtrail, client: new cloudtrail.CloudTrailClient({ endpoint, requestHandler }) },
  "cloudtrail-data": {
    sdk: cloudtrailData,
    client: new cloudtrailData.CloudTrailDataClient({ endpoint, requestHandler }),
  },
};

function toWire(v) {
  if (v instanceof Date) return { $date: v.toISOString() };
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString("base64") };
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
  return v;
}

function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    if (typeof v.$date === "string") return new Date(v.$date);
    if (typeof v.$bytes === "string") return new Uint8Array(Buffer.from(v.$bytes, "base64"));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromWire(x)]));
  }
  return v;
}

/** An output without its `$metadata`, and the metadata apart. */
function split(out) {
  const { $metadata, ...rest } = out;
  return [toWire(rest), $metadata];
}

function describeError(e, sdk) {
  // The SDK's own class for a modeled error, exported under its shape name.
  const modeled = typeof sdk[e.name] === "function" && e instanceof sdk[e.name];
  const base = sdk.CloudTrailServiceException ?? sdk.CloudTrailDataServiceException;
  return {
    name: e.name,
    message: e.message,
    fault: e.$fault,
    modeled,
    serviceException: base !== undefined && e instanceof base,
    metadata: e.$metadata,
  };
}

async function run(req) {
  const { sdk, client } = clients[req.client ?? "cloudtrail"];
  const input = fromWire(req.input ?? {});
  try {
    if (req.paginate) {
      const paginator = sdk[`paginate${req.paginate}`];
      const pages = [];
      const metadata = [];
      // A hard-coded cap: the SDK's paginators do not stop on a repeated token unless asked to.
      for await (const page of paginator({ client, pageSize: req.pageSize }, input)) {
        const [rest, meta] = split(page);
        pages.push(rest);
        metadata.push(meta);
        if (pages.length > 1000) throw new Error("paginator did not stop after 1000 pages");
      }
      return { pages, metadata };
    }
    const Command = sdk[`${req.command}Command`];
    if (typeof Command !== "function") throw new Error(`no ${req.command}Command in the SDK`);
    const [output, metadata] = split(await client.send(new Command(input)));
    return { output, metadata };
  } catch (e) {
    if (!e.$metadata) throw e; // Not an answer from the service: a bug in the driver or the SDK.
    return { error: describeError(e, sdk) };
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const answer = await run(JSON.parse(line));
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
for (const { client } of Object.values(clients)) client.destroy();
