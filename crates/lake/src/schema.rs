//! The lake's table schema (version 1, docs/formats/lake.md) and the one conversion of CloudTrail records
//! into Arrow record batches: typed columns and structs for the stable parts of the record, JSON text for the
//! free-form members, and the whole record as stored in `eventjson`.
//!
//! Column and struct field names are the record's names in lower case, as CloudTrail Lake's schema spells
//! them: SQL identifiers are case-insensitive (DataFusion folds unquoted names to lower case), so
//! `userIdentity.userName` and `useridentity.username` both name `useridentity.username`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, ListBuilder, RecordBatch, StringBuilder, StructBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use serde_json::Value;

/// The version of the schema below; written in every file's key-value metadata and in the manifest.
pub const SCHEMA_VERSION: u32 = 1;

/// Top-level string columns taken from the record member of the same name (camelCase in the record).
const STRINGS: &[(&str, &str)] = &[
    ("eventversion", "eventVersion"),
    ("eventsource", "eventSource"),
    ("eventname", "eventName"),
    ("awsregion", "awsRegion"),
    ("sourceipaddress", "sourceIPAddress"),
    ("useragent", "userAgent"),
    ("errorcode", "errorCode"),
    ("errormessage", "errorMessage"),
    ("requestid", "requestID"),
    ("eventid", "eventID"),
    ("eventtype", "eventType"),
    ("apiversion", "apiVersion"),
    ("recipientaccountid", "recipientAccountId"),
    ("sharedeventid", "sharedEventID"),
    ("vpcendpointid", "vpcEndpointId"),
    ("vpcendpointaccountid", "vpcEndpointAccountId"),
    ("eventcategory", "eventCategory"),
    ("sessioncredentialfromconsole", "sessionCredentialFromConsole"),
];

/// Free-form members kept as their JSON text (null when absent or JSON null).
const JSON_TEXT: &[(&str, &str)] = &[
    ("requestparameters", "requestParameters"),
    ("responseelements", "responseElements"),
    ("additionaleventdata", "additionalEventData"),
    ("serviceeventdetails", "serviceEventDetails"),
    ("addendum", "addendum"),
    ("edgedevicedetails", "edgeDeviceDetails"),
    ("insightdetails", "insightDetails"),
    ("eventcontext", "eventContext"),
];

const BOOLS: &[(&str, &str)] = &[("readonly", "readOnly"), ("managementevent", "managementEvent")];

const IDENTITY_STRINGS: &[(&str, &str)] = &[
    ("type", "type"),
    ("principalid", "principalId"),
    ("arn", "arn"),
    ("accountid", "accountId"),
    ("accesskeyid", "accessKeyId"),
    ("username", "userName"),
    ("invokedby", "invokedBy"),
    ("identityprovider", "identityProvider"),
    ("credentialid", "credentialId"),
];
const ISSUER_STRINGS: &[(&str, &str)] = &[
    ("type", "type"),
    ("principalid", "principalId"),
    ("arn", "arn"),
    ("accountid", "accountId"),
    ("username", "userName"),
];
const ATTRIBUTE_STRINGS: &[(&str, &str)] =
    &[("creationdate", "creationDate"), ("mfaauthenticated", "mfaAuthenticated")];
const SESSION_STRINGS: &[(&str, &str)] =
    &[("sourceidentity", "sourceIdentity"), ("ec2roledelivery", "ec2RoleDelivery")];
const RESOURCE_STRINGS: &[(&str, &str)] = &[("arn", "ARN"), ("accountid", "accountId"), ("type", "type")];
const TLS_STRINGS: &[(&str, &str)] = &[
    ("tlsversion", "tlsVersion"),
    ("ciphersuite", "cipherSuite"),
    ("clientprovidedhostheader", "clientProvidedHostHeader"),
    ("keyexchange", "keyExchange"),
];

fn strings(names: &[(&str, &str)]) -> Vec<Field> {
    names.iter().map(|(n, _)| Field::new(*n, DataType::Utf8, true)).collect()
}

fn issuer_fields() -> Fields {
    strings(ISSUER_STRINGS).into()
}
fn attribute_fields() -> Fields {
    strings(ATTRIBUTE_STRINGS).into()
}
fn session_fields() -> Fields {
    let mut f = vec![
        Field::new("attributes", DataType::Struct(attribute_fields()), true),
        Field::new("sessionissuer", DataType::Struct(issuer_fields()), true),
    ];
    f.extend(strings(SESSION_STRINGS));
    f.into()
}
fn identity_fields() -> Fields {
    let mut f = strings(IDENTITY_STRINGS);
    f.push(Field::new("sessioncontext", DataType::Struct(session_fields()), true));
    f.into()
}
fn resource_fields() -> Fields {
    strings(RESOURCE_STRINGS).into()
}
fn tls_fields() -> Fields {
    strings(TLS_STRINGS).into()
}

/// The type of `eventtime`: milliseconds since the epoch, UTC.
pub fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![Field::new("eventtime", event_time_type(), true)];
    fields.extend(strings(STRINGS));
    fields.extend(BOOLS.iter().map(|(n, _)| Field::new(*n, DataType::Boolean, true)));
    fields.push(Field::new("useridentity", DataType::Struct(identity_fields()), true));
    fields.push(Field::new(
        "resources",
        DataType::List(Arc::new(Field::new("item", DataType::Struct(resource_fields()), true))),
        true,
    ));
    fields.push(Field::new("tlsdetails", DataType::Struct(tls_fields()), true));
    fields.extend(strings(JSON_TEXT));
    fields.push(Field::new("eventjson", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
});

/// The lake table's schema (version [`SCHEMA_VERSION`]).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The schema queries read the table as: every string (nested ones too) as `Utf8View`, which the Parquet
/// reader fills with views into its pages instead of copying each value out, and which DataFusion groups,
/// compares and hashes without copying either. The files hold the same strings (Parquet does not know the
/// difference); the table casts the tail's batches to it as it takes them in.
pub fn read_schema() -> SchemaRef {
    static READ: LazyLock<SchemaRef> = LazyLock::new(|| {
        let fields: Vec<Field> = schema().fields().iter().map(|f| view_field(f)).collect();
        Arc::new(Schema::new(fields))
    });
    READ.clone()
}

/// A batch of [`schema`] as a batch of [`read_schema`] (strings become views of the same bytes).
pub fn to_read(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(read_schema().fields())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(read_schema(), columns)
}

fn view_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 => DataType::Utf8View,
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(|f| view_field(f)).collect::<Vec<_>>().into()),
        DataType::List(item) => DataType::List(Arc::new(view_field(item))),
        other => other.clone(),
    }
}

fn view_field(f: &Field) -> Field {
    f.clone().with_data_type(view_type(f.data_type()))
}

/// A member as text: strings as they are, numbers and booleans printed (some writers send `"readOnly":"true"`
/// or a numeric account id), objects and arrays as JSON; null and absent are `None`.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// Builds the columns of a batch, one record at a time.
pub struct BatchBuilder {
    event_time: TimestampMillisecondBuilder,
    strings: Vec<StringBuilder>,
    bools: Vec<BooleanBuilder>,
    identity: StructBuilder,
    resources: ListBuilder<StructBuilder>,
    tls: StructBuilder,
    json_text: Vec<StringBuilder>,
    event_json: StringBuilder,
    rows: usize,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::new()
    }
}

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder {
            event_time: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            strings: STRINGS.iter().map(|_| StringBuilder::new()).collect(),
            bools: BOOLS.iter().map(|_| BooleanBuilder::new()).collect(),
            identity: StructBuilder::from_fields(identity_fields(), 0),
            resources: ListBuilder::new(StructBuilder::from_fields(resource_fields(), 0))
                .with_field(Arc::new(Field::new("item", DataType::Struct(resource_fields()), true))),
            tls: StructBuilder::from_fields(tls_fields(), 0),
            json_text: JSON_TEXT.iter().map(|_| StringBuilder::new()).collect(),
            event_json: StringBuilder::new(),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds one record: `json` is its text as stored (kept whole in `eventjson`), `record` its parse.
    /// `event_time_ms` is its eventTime (the caller has read it to choose the partition).
    pub fn push(&mut self, json: &str, record: &Value, event_time_ms: Option<i64>) {
        let get = |name: &str| record.get(name);
        self.event_time.append_option(event_time_ms);
        for (b, (_, member)) in self.strings.iter_mut().zip(STRINGS) {
            b.append_option(text(get(member)));
        }
        for (b, (_, member)) in self.bools.iter_mut().zip(BOOLS) {
            b.append_option(boolean(get(member)));
        }
        push_identity(&mut self.identity, get("userIdentity"));
        match get("resources") {
            Some(Value::Array(items)) => {
                let values = self.resources.values();
                for item in items {
                    append_strings(values, RESOURCE_STRINGS, Some(item));
                }
                self.resources.append(true);
            }
            _ => self.resources.append(false),
        }
        append_strings(&mut self.tls, TLS_STRINGS, get("tlsDetails"));
        for (b, (_, member)) in self.json_text.iter_mut().zip(JSON_TEXT) {
            b.append_option(match get(member) {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.to_string()),
            });
        }
        self.event_json.append_value(json);
        self.rows += 1;
    }

    /// The batch of everything pushed so far; the builder is empty again afterwards.
    pub fn finish(&mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.event_time.finish())];
        columns.extend(self.strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend(self.bools.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(self.identity.finish()));
        columns.push(Arc::new(self.resources.finish()));
        columns.push(Arc::new(self.tls.finish()));
        columns.extend(self.json_text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(self.event_json.finish()));
        self.rows = 0;
        // The columns are built from the schema's own field lists, in its order: a mismatch is a bug here.
        RecordBatch::try_new(schema(), columns).expect("the lake's batch matches its schema")
    }
}

/// Appends a struct of string fields from `obj`'s members (a null struct when `obj` is not an object).
fn append_strings(b: &mut StructBuilder, names: &[(&str, &str)], obj: Option<&Value>) {
    let obj = obj.and_then(Value::as_object);
    for (i, (_, member)) in names.iter().enumerate() {
        let v = obj.and_then(|o| text(o.get(*member)));
        b.field_builder::<StringBuilder>(i).expect("string field").append_option(v);
    }
    b.append(obj.is_some());
}

fn push_identity(b: &mut StructBuilder, v: Option<&Value>) {
    let obj = v.and_then(Value::as_object);
    for (i, (_, member)) in IDENTITY_STRINGS.iter().enumerate() {
        let v = obj.and_then(|o| text(o.get(*member)));
        b.field_builder::<StringBuilder>(i).expect("string field").append_option(v);
    }
    let session = obj.and_then(|o| o.get("sessionContext")).and_then(Value::as_object);
    let s = b.field_builder::<StructBuilder>(IDENTITY_STRINGS.len()).expect("sessioncontext");
    append_strings(
        s.field_builder::<StructBuilder>(0).expect("attributes"),
        ATTRIBUTE_STRINGS,
        session.and_then(|o| o.get("attributes")),
    );
    append_strings(
        s.field_builder::<StructBuilder>(1).expect("sessionissuer"),
        ISSUER_STRINGS,
        session.and_then(|o| o.get("sessionIssuer")),
    );
    for (i, (_, member)) in SESSION_STRINGS.iter().enumerate() {
        let v = session.and_then(|o| text(o.get(*member)));
        s.field_builder::<StringBuilder>(2 + i).expect("string field").append_option(v);
    }
    s.append(session.is_some());
    b.append(obj.is_some());
}

/// `eventTime` of a parsed record, in milliseconds since the epoch (`None` when absent or unreadable).
pub fn event_time_ms(record: &Value) -> Option<i64> {
    let t = record.get("eventTime")?.as_str()?;
    model::EventTime::parse_flexible(t).ok().map(|t| t.millis())
}
