//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the typed bodies in `api.rs`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;
use crate::routes::{admin, health, recognize, register, stats, users};

/// FaceGate's API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FaceGate",
        description = "Face enrolment, 1:1 verification and 1:N identification. Only embeddings are stored. \
            Thresholds are distances in the active model's metric, calibrated on LFW (see /stats/)."
    ),
    paths(
        health::health, register::register, recognize::recognize,
        users::list, users::get, users::delete, users::add_faces, users::list_faces, users::delete_face, users::verify,
        stats::stats, admin::reenrolment, admin::create_key, admin::list_keys, admin::revoke_key,
        admin::lockout, admin::reset_lockout, admin::audit
    ),
    components(schemas(
        api::BoxJson, api::FaceJson, api::RegisterRequest, api::ImageBody, api::Registered,
        api::FaceMatchJson, api::Recognized, api::Verified, api::UserJson, api::UserList,
        api::Deleted, api::Reenrolment, api::FacesAdded, api::KeyJson, api::KeyCreated,
        api::KeyList, api::TemplateJson, api::TemplateList, api::TemplateDeleted, api::LockoutJson, api::AuditJson, api::AuditPage, admin::KeyCreateRequest, api::Health, api::Stats, api::ErrorJson
    )),
    tags(
        (name = "recognition", description = "verify (1:1) and identify (1:N)"),
        (name = "users", description = "enrolment and user management"),
        (name = "system", description = "health and statistics"),
        (name = "admin", description = "API keys, lockouts, audit log, re-enrolment (admin scope)")
    ),
    modifiers(&BearerKey),
    security(("api_key" = []))
)]
pub struct ApiDoc;

/// Declares the API key (`Authorization: Bearer fg_...`), so the docs
/// pages' "Authorize" button sends it.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fg_<prefix>_<secret>")
                    .description(Some(
                        "An API key from `facegate keys create` or POST /admin/keys",
                    ))
                    .build(),
            ),
        );
    }
}
