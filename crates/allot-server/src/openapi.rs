//! The OpenAPI 3.1 document, generated from the handlers and views.
//!
//! The handlers' annotations state what is particular to each operation
//! (its operationId, parameters with their bounds, bodies, success and
//! refusal answers). What every operation shares is added here, once, by
//! the rule that decides it in the code (`Contract`): the error answers
//! each kind of operation can give, the `Idempotency-Key` header of every
//! mutation, and the links from an answer to the operations on the object
//! it names (what a stateful client, or schemathesis, follows).

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi as Document, Ref, RefOr, Required, ResponseBuilder,
    Schema, Type,
};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    audit, cases, contracts, entitlements, installations, keys, notifications, parties,
    report_totals, reports, software, templates, usage, usage_batch, webhooks,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Error answers by the rule that produces them (`error.rs`, `app.rs`,
/// `extract.rs`, `idempotency.rs`).
const UNAUTHORIZED: (&str, &str) = (
    "401",
    "`unauthorized`: no API key, or an unknown or revoked one (every /v1 operation).",
);
const FORBIDDEN: (&str, &str) = (
    "403",
    "`forbidden`: the key's role may not do this, or a customer key reached past its account.",
);
const NOT_FOUND: (&str, &str) = (
    "404",
    "`not_found`: no such object, or one this key may not see.",
);
const TIMEOUT: (&str, &str) = (
    "408",
    "`timeout`: no answer within 30 s (`app::REQUEST_DEADLINE`); the request may or may not have been applied (retry with the same Idempotency-Key).",
);
const INTERNAL: (&str, &str) = (
    "500",
    "`internal`: a failure of the service; details are logged, never sent. Nothing was applied. `outcome_unknown`: the connection to the database was lost while committing: the change may or may not have been applied; retry with the same Idempotency-Key (a replay if it was, applied once if not).",
);
const UNAVAILABLE: (&str, &str) = (
    "503",
    "`database_unavailable`: the database cannot be reached now; `overloaded`: the service sheds load. Nothing was applied; retry after `Retry-After` seconds.",
);
const STORAGE_FULL: (&str, &str) = (
    "507",
    "`storage_full`: the database's disk is full. Nothing was applied; reads still work.",
);
const BAD_QUERY: (&str, &str) = (
    "400",
    "`malformed_query`: the query string is not form-encoded.",
);
const BAD_BODY: (&str, &str) = (
    "400",
    "`malformed_json`, `unsupported_media_type`, `unreadable_body`: the body is not readable JSON.",
);
const INVALID: (&str, &str) = (
    "422",
    "`validation_failed`: a field or parameter breaks a rule (`details.fields` names each), or another refusal named by `code`; `idempotency_key_reused`: the key was used with another request.",
);
const INVALID_QUERY: (&str, &str) = (
    "422",
    "`validation_failed`: a parameter is out of its bounds (`details.fields` names it).",
);
const CONFLICT: (&str, &str) = (
    "409",
    "A rule of the object's current state refuses the change (named by `code`), or `idempotency_key_in_flight`: a request with this key is still being applied.",
);
const TOO_LARGE: (&str, &str) = ("413", "`payload_too_large`: the body is over 256 KiB.");

/// An operation and its place, as the rules below look at it.
struct Shape<'a> {
    path: &'a str,
    mutating: bool,
    has_query: bool,
    /// Takes `limit` (and so can refuse it).
    paged: bool,
}

/// Which error answers an operation of this shape can give.
fn errors(shape: &Shape) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![UNAUTHORIZED, FORBIDDEN, TIMEOUT, INTERNAL, UNAVAILABLE];
    if shape.path.contains('{') {
        out.push(NOT_FOUND);
    }
    if shape.mutating {
        // Every mutation reads its body (the idempotency fingerprint covers
        // it) and takes an Idempotency-Key.
        out.extend([BAD_BODY, INVALID, CONFLICT, TOO_LARGE, STORAGE_FULL]);
    } else if shape.has_query {
        out.push(BAD_QUERY);
        if shape.paged {
            out.push(INVALID_QUERY);
        }
    }
    out
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The `Idempotency-Key` header, as `idempotency::key_from` reads it: up
/// to 255 visible ASCII characters (inner spaces and tabs allowed; HTTP
/// trims surrounding ones); empty is the same as absent.
fn idempotency_key() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Same key and same request: the first answer again, marked `idempotent-replayed: true`. Kept 24 h. Empty is the same as absent.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(255))
                .pattern(Some("^(?:[!-~](?:[\\t -~]*[!-~])?)?$")),
        ))
        .build()
}

struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut Document) {
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                (false, item.get.as_mut()),
                (true, item.post.as_mut()),
                (true, item.patch.as_mut()),
                (true, item.put.as_mut()),
                (true, item.delete.as_mut()),
            ];
            for (mutating, op) in ops {
                if let Some(op) = op {
                    complete(path, mutating, op);
                }
            }
        }
        patch_entitlement_body(doc);
        patch_body(
            doc,
            "SoftwareModelInput",
            "PatchSoftwareModel",
            "patch_software_model",
        );
        patch_body(
            doc,
            "SoftwareEntitlementInput",
            "PatchSoftwareEntitlement",
            "patch_software_entitlement",
        );
        patch_body(
            doc,
            "TemplateInput",
            "PatchEntitlementTemplate",
            "patch_entitlement_template",
        );
        for (from, status, pointer, to) in LINKS {
            link(doc, from, status, pointer, to);
        }
    }
}

fn complete(path: &str, mutating: bool, op: &mut Operation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let paged = params.iter().any(|p| p.name == "limit");
    if mutating && !params.iter().any(|p| p.name == "Idempotency-Key") {
        params.push(idempotency_key());
    }
    let shape = Shape {
        path,
        mutating,
        has_query,
        paged,
    };
    for (status, description) in errors(&shape) {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(error_response(description)));
    }
    if mutating {
        for (status, response) in op.responses.responses.iter_mut() {
            if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                response.headers.insert(
                    "idempotent-replayed".into(),
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["true"])))
                        .description(Some("Present when this is the stored answer to an earlier request with the same Idempotency-Key."))
                        .build(),
                );
            }
        }
    }
}

/// The body of `PATCH /v1/entitlements/{id}`: any fields of the create
/// body, none required (`unit` only as it is); derived from the create body
/// so the two cannot drift.
fn patch_entitlement_body(doc: &mut Document) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let Some(RefOr::T(Schema::Object(create))) = components.schemas.get("EntitlementInput") else {
        panic!("EntitlementInput is not in the document");
    };
    let mut patch = create.clone();
    patch.required.clear();
    patch.description = Some(
        "Any fields of the create body, merged into the current terms; drafts only. `unit` cannot change.".into(),
    );
    components
        .schemas
        .insert("PatchEntitlement".into(), RefOr::T(Schema::Object(patch)));
    let body = doc
        .paths
        .paths
        .values_mut()
        .filter_map(|item| item.patch.as_mut())
        .find(|op| op.operation_id.as_deref() == Some("patch_entitlement"))
        .and_then(|op| op.request_body.as_mut())
        .and_then(|body| body.content.get_mut("application/json"));
    match body {
        Some(content) => content.schema = Some(Ref::from_schema_name("PatchEntitlement").into()),
        None => panic!("patch_entitlement has no JSON body"),
    }
}

/// The body of a PATCH that merges into the current object: the create
/// body `create` with nothing required, named `name`, for `operation`.
fn patch_body(doc: &mut Document, create: &str, name: &str, operation: &str) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let Some(RefOr::T(Schema::Object(schema))) = components.schemas.get(create) else {
        panic!("{create} is not in the document");
    };
    let mut patch = schema.clone();
    patch.required.clear();
    patch.description =
        Some("Any fields of the create body, merged into the current object.".into());
    components
        .schemas
        .insert(name.into(), RefOr::T(Schema::Object(patch)));
    let body = doc
        .paths
        .paths
        .values_mut()
        .filter_map(|item| item.patch.as_mut())
        .find(|op| op.operation_id.as_deref() == Some(operation))
        .and_then(|op| op.request_body.as_mut())
        .and_then(|body| body.content.get_mut("application/json"));
    match body {
        Some(content) => content.schema = Some(Ref::from_schema_name(name).into()),
        None => panic!("{operation} has no JSON body"),
    }
}

/// (operation, status, JSON pointer to the id in its answer, operations
/// that take that id): the links of the document. A target names the
/// parameter the id goes into (`id` unless said with `param=`), or spells
/// out every parameter: `op(param=expression;...)`.
const LINKS: &[(&str, &str, &str, &[&str])] = &[
    (
        "create_contract",
        "201",
        "/id",
        &[
            "get_contract",
            "create_contract_line",
            "list_contract_lines",
            "list_contract_entitlements",
            "activate_contract",
            "suspend_contract",
            "resume_contract",
            "cancel_contract",
            "renew_contract",
        ],
    ),
    (
        "create_entitlement_template",
        "201",
        "/id",
        &[
            "get_entitlement_template",
            "patch_entitlement_template",
            "delete_entitlement_template",
            "instantiate_entitlement_template",
        ],
    ),
    (
        "instantiate_entitlement_template",
        "202",
        "/id",
        &["get_job"],
    ),
    (
        "create_account",
        "201",
        "/id",
        &[
            "get_account",
            "get_eligibility",
            "account_id=list_contacts",
            "account_id=list_entitlements",
            "account_id=list_cases",
        ],
    ),
    ("create_contact", "201", "/id", &["get_contact"]),
    ("create_product", "201", "/id", &["get_product"]),
    (
        "create_entitlement",
        "201",
        "/id",
        &[
            "get_entitlement",
            "patch_entitlement",
            "activate_entitlement",
            "deactivate_entitlement",
            "cancel_entitlement",
            "renew_entitlement",
            "get_balance",
            "list_transitions",
            "list_usage",
            "entitlement_id=list_events",
            "entitlement_id=list_cases",
        ],
    ),
    (
        "activate_entitlement",
        "200",
        "/id",
        &[
            "record_usage",
            "post_adjustment",
            "create_reservation",
            "get_balance",
            "list_usage",
            "cancel_entitlement",
        ],
    ),
    (
        "renew_entitlement",
        "201",
        "/id",
        &["get_entitlement", "activate_entitlement"],
    ),
    (
        "create_reservation",
        "201",
        "/reservation/id",
        &[
            "get_reservation",
            "commit_reservation",
            "release_reservation",
        ],
    ),
    (
        "open_case",
        "201",
        "/id",
        &[
            "get_case",
            "patch_case",
            "resolve_case",
            "cancel_case",
            "reactivate_case",
            "log_time",
            "delete_case",
        ],
    ),
    (
        "log_time",
        "201",
        "/id",
        &[
            "get_case",
            "resolve_case",
            "cancel_case",
            "delete_time_entry(id=$request.path.id;entry_id=$response.body#/time_entries/0/id)",
        ],
    ),
    ("create_api_key", "201", "/id", &["revoke_api_key"]),
    (
        "create_webhook",
        "201",
        "/id",
        &[
            "get_webhook",
            "patch_webhook",
            "test_webhook",
            "list_webhook_deliveries",
            "rotate_webhook_secret",
            "delete_webhook",
        ],
    ),
    (
        "create_software_model",
        "201",
        "/id",
        &[
            "get_software_model",
            "patch_software_model",
            "software_model_id=list_software_entitlements",
        ],
    ),
    (
        "create_software_entitlement",
        "201",
        "/id",
        &[
            "get_software_entitlement",
            "patch_software_entitlement",
            "publish_software_entitlement",
            "retire_software_entitlement",
            "add_license_keys",
            "add_downgrade_right",
            "list_allocations",
            "allocate_software",
        ],
    ),
    (
        "allocate_software",
        "201",
        "/id",
        &["free_allocation(id=$request.path.id;allocation_id=$response.body#/id)"],
    ),
    ("run_reconciliation", "201", "/id", &["get_reconciliation"]),
];

fn link(doc: &mut Document, from: &str, status: &str, pointer: &str, targets: &[&str]) {
    let mut found = false;
    for item in doc.paths.paths.values_mut() {
        let ops = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.patch.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            if op.operation_id.as_deref() != Some(from) {
                continue;
            }
            let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) else {
                panic!("link from {from}: it has no {status} answer");
            };
            for target in targets {
                let (name, link) = match target.split_once('(') {
                    Some((op, params)) => {
                        let mut link = LinkBuilder::new().operation_id(op);
                        for param in params.trim_end_matches(')').split(';') {
                            let (param, expression) = param
                                .split_once('=')
                                .unwrap_or_else(|| panic!("link parameter {param} has no value"));
                            link = link.parameter(param, expression);
                        }
                        (op.to_string(), link)
                    }
                    None => {
                        let (param, op) = target.split_once('=').unwrap_or(("id", target));
                        let link = LinkBuilder::new()
                            .operation_id(op)
                            .parameter(param, format!("$response.body#{pointer}"));
                        (format!("{op}_{param}"), link)
                    }
                };
                response.links.insert(name, RefOr::T(link.build()));
            }
            found = true;
        }
    }
    assert!(found, "link from {from}: no such operation");
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Allot", description = "Usage-based entitlements: allotments, usage enforced at the moment of use, alerts."),
    modifiers(&BearerAuth, &Contract),
    security(("api_key" = [])),
    components(schemas(
        crate::inputs::schemas::UnitName, crate::inputs::schemas::PeriodName,
        crate::inputs::schemas::DecrementOnName, crate::inputs::schemas::StatusName,
        crate::inputs::schemas::CaseStatusName, crate::inputs::schemas::RoleName,
        crate::software::inputs::names::LicenseMetricName, crate::software::inputs::names::LicenseTypeName,
        crate::software::inputs::names::AgreementTypeName, crate::software::inputs::names::SubscriptionPeriodName,
        crate::software::inputs::names::SoftwareStateName, crate::software::inputs::names::ComplianceName,
        crate::imports::ImportKindName, crate::routes::usage_batch::UsageBatchItem, crate::routes::usage_batch::CloudEvent,
    )),
    paths(
        parties::create_account, parties::list_accounts, parties::get_account, parties::eligibility,
        parties::create_contact, parties::list_contacts, parties::get_contact,
        parties::create_product, parties::list_products, parties::get_product,
        entitlements::create, entitlements::list, entitlements::get, entitlements::patch,
        entitlements::activate, entitlements::deactivate, entitlements::cancel, entitlements::renew,
        entitlements::balance, entitlements::transitions,
        usage::record, usage::ledger, usage::adjust, usage::hold, usage::commit, usage::release, usage::get_reservation, usage::reservations,
        usage::events,
        cases::open, cases::list, cases::get, cases::patch, cases::delete, cases::resolve, cases::cancel, cases::reactivate,
        cases::log_time, cases::delete_time,
        keys::create, keys::list, keys::revoke,
        audit::list,
        reports::consumption, reports::approaching_limit, reports::expiring, reports::unused,
        report_totals::unused_by_account, report_totals::consumption_totals, reports::forecast_report, reports::usage_over_time,
        crate::routes::report_counts::report_counts,
        notifications::patch_account, notifications::list,
        webhooks::create, webhooks::list, webhooks::get, webhooks::patch, webhooks::delete,
        webhooks::rotate_secret, webhooks::test, webhooks::deliveries, webhooks::retry,
        software::create_model, software::list_models, software::get_model, software::patch_model,
        software::create, software::list, software::get, software::patch, software::publish, software::retire,
        software::add_license_keys, software::add_downgrade_right, software::upgrade,
        software::list_allocations, software::allocate, software::free,
        installations::record, installations::run, installations::list, installations::get,
        crate::imports::import, crate::imports::template_file,
        contracts::create, contracts::list, contracts::get, contracts::create_line, contracts::list_lines,
        contracts::list_entitlements, contracts::activate, contracts::suspend, contracts::resume,
        contracts::cancel, contracts::renew, contracts::make_default,
        templates::create, templates::list, templates::get, templates::patch, templates::delete,
        templates::instantiate, templates::get_job,
        crate::routes::software_compliance::software_compliance,
        usage_batch::record_batch,
    )
)]
pub struct ApiDoc;

/// The document as served.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    camel_case_links(&mut doc);
    doc["webhooks"] = crate::alerts::openapi::webhooks();
    doc
}

/// utoipa 5 serializes a Link's fields in snake case (`operation_id`);
/// OpenAPI names them `operationId` and `requestBody`.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_string(), value);
            }
        }
    }
}
