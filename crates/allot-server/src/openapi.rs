//! The OpenAPI 3.1 document, generated from the handlers and views.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{audit, cases, entitlements, keys, parties, usage};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Allot", description = "Usage-based entitlements: allotments, usage enforced at the moment of use, alerts."),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    paths(
        parties::create_account, parties::list_accounts, parties::get_account, parties::eligibility,
        parties::create_contact, parties::list_contacts, parties::get_contact,
        parties::create_product, parties::list_products, parties::get_product,
        entitlements::create, entitlements::list, entitlements::get, entitlements::patch,
        entitlements::activate, entitlements::deactivate, entitlements::cancel, entitlements::renew,
        entitlements::balance, entitlements::transitions,
        usage::record, usage::ledger, usage::adjust, usage::hold, usage::commit, usage::release, usage::get_reservation,
        usage::events,
        cases::open, cases::list, cases::get, cases::patch, cases::delete, cases::resolve, cases::cancel, cases::reactivate,
        cases::log_time, cases::delete_time,
        keys::create, keys::list, keys::revoke,
        audit::list,
    )
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
