// A stand-in for `@aws-sdk/client-cloudtrail-data`, which the npm registry this project can reach does not
// carry (it answers 404). It runs on the same Smithy runtime the real client is generated onto: the
// restJson1 protocol of `@aws-sdk/core` (query-string binding, JSON body, `x-amzn-errortype` error parsing),
// SigV4 signing as `cloudtrail-data`, retries and the user agent, all from the installed SDK. Only the
// PutAuditEvents operation and its errors are described here, by hand, from the cloudtrail-data 2021-08-11
// model. Swap it for the real package once the registry has it: the names below are the package's own.

import { CloudTrailClient } from "@aws-sdk/client-cloudtrail";
import { AwsRestJsonProtocol } from "@aws-sdk/core/protocols";
import { ServiceException, makeBuilder } from "@smithy/core/client";
import { getEndpointPlugin } from "@smithy/core/endpoints";
import { TypeRegistry } from "@smithy/core/schema";

const NS = "com.amazonaws.cloudtraildata";

export class CloudTrailDataServiceException extends ServiceException {
  constructor(options) {
    super(options);
    Object.setPrototypeOf(this, CloudTrailDataServiceException.prototype);
  }
}

const registry = TypeRegistry.for(NS);
const syntheticRegistry = TypeRegistry.for(`smithy.ts.sdk.synthetic.${NS}`);
syntheticRegistry.registerError(
  [-3, `smithy.ts.sdk.synthetic.${NS}`, "CloudTrailDataServiceException", 0, [], []],
  CloudTrailDataServiceException,
);

/** The modeled errors of PutAuditEvents: client faults with a `message` member. */
const errors = {};
for (const name of [
  "ChannelInsufficientPermission",
  "ChannelNotFound",
  "ChannelUnsupportedSchema",
  "DuplicatedAuditEventId",
  "InvalidChannelARN",
  "UnsupportedOperationException",
]) {
  const ctor = class extends CloudTrailDataServiceException {
    constructor(opts) {
      super({ name, $fault: "client", ...opts });
      Object.setPrototypeOf(this, ctor.prototype);
    }
  };
  Object.defineProperty(ctor, "name", { value: name });
  registry.registerError([-3, NS, name, { error: "client" }, ["message"], [0]], ctor);
  errors[name] = ctor;
}
// Exported one by one under their shape names, as the real package exports them.
export const {
  ChannelInsufficientPermission,
  ChannelNotFound,
  ChannelUnsupportedSchema,
  DuplicatedAuditEventId,
  InvalidChannelARN,
  UnsupportedOperationException,
} = errors;

// Schemas in the static form smithy-typescript emits: [kind, namespace, name, traits, members, member schemas, required].
const AuditEvent = [3, NS, "AuditEvent", 0, ["id", "eventData", "eventDataChecksum"], [0, 0, 0], 2];
const AuditEventResultEntry = [3, NS, "AuditEventResultEntry", 0, ["id", "eventID"], [0, 0], 2];
const ResultErrorEntry = [3, NS, "ResultErrorEntry", 0, ["id", "errorCode", "errorMessage"], [0, 0, 0], 3];
const PutAuditEventsRequest = [
  3,
  NS,
  "PutAuditEventsRequest",
  0,
  ["auditEvents", "channelArn", "externalId"],
  [
    () => [1, NS, "AuditEvents", 0, () => AuditEvent],
    [0, { httpQuery: "channelArn" }],
    [0, { httpQuery: "externalId" }],
  ],
  2,
];
const PutAuditEventsResponse = [
  3,
  NS,
  "PutAuditEventsResponse",
  0,
  ["successful", "failed"],
  [
    () => [1, NS, "AuditEventResultEntries", 0, () => AuditEventResultEntry],
    () => [1, NS, "ResultErrorEntries", 0, () => ResultErrorEntry],
  ],
  2,
];
const PutAuditEvents = [
  9,
  NS,
  "PutAuditEvents",
  { http: ["POST", "/PutAuditEvents", 200] },
  () => PutAuditEventsRequest,
  () => PutAuditEventsResponse,
];

const endpointParams = {
  UseFIPS: { type: "builtInParams", name: "useFipsEndpoint" },
  Endpoint: { type: "builtInParams", name: "endpoint" },
  Region: { type: "builtInParams", name: "region" },
  UseDualStack: { type: "builtInParams", name: "useDualstackEndpoint" },
};
const command = makeBuilder(endpointParams, "CloudTrailDataService", "CloudTrailDataClient", getEndpointPlugin);
export class PutAuditEventsCommand extends command({}, () => [], "PutAuditEvents", PutAuditEvents) {}

/** The cloudtrail-data client: CloudTrailClient's runtime with the cloudtrail-data protocol, service id and signing name. */
export class CloudTrailDataClient extends CloudTrailClient {
  constructor(config) {
    super({
      ...config,
      serviceId: "CloudTrail Data",
      protocol: AwsRestJsonProtocol,
      protocolSettings: {
        defaultNamespace: NS,
        errorTypeRegistries: [syntheticRegistry, registry],
        version: "2021-08-11",
        serviceTarget: "CloudTrailDataService",
      },
      // SigV4 credential scope `…/us-east-1/cloudtrail-data/aws4_request`, as the real client signs.
      signingName: "cloudtrail-data",
    });
  }
}
