//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the typed bodies in `api.rs`, then completed from the
//! route table: each operation's security (none for public routes) and the
//! answers the guard gives before a handler runs (401, 403, 429) come from
//! the same entry that registers the route, so the document cannot claim
//! an access the server does not enforce.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api;
use crate::routes::table::{Access, Verb, ENDPOINTS};
use crate::routes::{
    admin, health, liveness, metrics, probes, recognize, register, stats, stream, users, whoami,
};

/// FaceGate's API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FaceGate",
        description = "Face enrolment, 1:1 verification and 1:N identification. Only embeddings are stored. \
            Thresholds are distances in the active model's metric, calibrated on LFW (see /stats/)."
    ),
    paths(
        health::health, probes::livez, probes::readyz, metrics::metrics, stream::tickets, whoami::whoami, register::register, recognize::recognize,
        users::list, users::get, users::delete, users::add_faces, users::list_faces, users::delete_face, users::verify,
        liveness::create, liveness::get, liveness::frames,
        stats::stats, admin::reenrolment, admin::create_key, admin::list_keys, admin::revoke_key,
        admin::lockout, admin::reset_lockout, admin::lockouts, admin::audit
    ),
    components(schemas(
        api::BoxJson, api::FaceJson, api::RegisterRequest, api::ImageBody, api::Registered,
        api::FaceMatchJson, api::Recognized, api::Verified, api::UserJson,
        api::Deleted, api::Reenrolment, api::FacesAdded, api::KeyJson, api::KeyCreated,
        api::KeyList, api::TemplateJson, api::TemplateList, api::TemplateDeleted, api::LockoutJson, api::AuditJson, api::AuditPage, admin::KeyCreateRequest, api::Health, api::StreamTicket, api::Live, api::Ready, api::ReadyChecks, api::Stats, api::ErrorJson, api::WhoAmI, api::ScopeName, api::LivenessLevel, liveness::SessionCreateRequest, liveness::SessionFrames
    )),
    tags(
        (name = "recognition", description = "verify (1:1) and identify (1:N)"),
        (name = "users", description = "enrolment and user management"),
        (name = "system", description = "health, probes, metrics and statistics"),
        (name = "admin", description = "API keys, lockouts, audit log, re-enrolment (admin scope)")
    ),
    modifiers(&BearerKey, &FromRouteTable),
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

/// The document as served at `/openapi.json`, for a model whose distance
/// thresholds lie in `threshold_range` (exclusive minimum, maximum): the
/// bounds `?threshold=` is checked against depend on the active metric.
pub fn document(threshold_range: (f32, f32)) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let (lo, hi) = threshold_range;
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post, &mut item.delete]
            .into_iter()
            .flatten()
        {
            for param in op.parameters.iter_mut().flatten() {
                if param.name == "threshold" {
                    param.schema = Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Number)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
                            .exclusive_minimum(Some(f64::from(lo)))
                            .maximum(Some(f64::from(hi)))
                            .into(),
                    );
                }
            }
        }
    }
    doc
}

/// The document, serialised (once, at startup).
pub fn document_json(threshold_range: (f32, f32)) -> String {
    serde_json::to_string(&document(threshold_range)).unwrap_or_else(|e| {
        // Serialising a value built from static annotations cannot fail;
        // if it ever did, the docs route says so rather than the server
        // refusing to start.
        format!(r#"{{"error":"internal","message":"OpenAPI document: {e}"}}"#)
    })
}

/// Security and guard answers per operation, from the route table.
struct FromRouteTable;

impl Modify for FromRouteTable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for endpoint in ENDPOINTS.iter().filter(|e| e.documented) {
            let Some(path) = endpoint.paths.first() else {
                continue;
            };
            let Some(op) = openapi
                .paths
                .paths
                .get_mut(*path)
                .and_then(|item| operation_mut(item, endpoint.verb))
            else {
                continue;
            };
            // Path ids are positive 64-bit integers; anything else is a 422.
            let mut has_path_id = false;
            for param in op.parameters.iter_mut().flatten() {
                if param.parameter_in == ParameterIn::Path {
                    has_path_id = true;
                    param.schema = Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                            .minimum(Some(1))
                            .into(),
                    );
                }
            }
            let mut guard_answers = vec![];
            if has_path_id {
                guard_answers.push(("422", "the id in the path is not a positive integer"));
            }
            // Every body is read by input.rs, which answers these before the
            // handler sees it.
            if op.request_body.is_some() {
                guard_answers.push(("413", "the body is over server.body_limit_bytes"));
                guard_answers.push((
                    "415",
                    "the Content-Type is neither application/json nor multipart/form-data",
                ));
                guard_answers.push((
                    "503",
                    "busy: too many request bodies in flight; see Retry-After",
                ));
            }
            match endpoint.access {
                Access::Public => op.security = Some(Vec::new()),
                Access::AnyKey | Access::KeyOrTicket => {
                    op.security = Some(vec![key()]);
                    guard_answers.push(("401", "no key, or the key is unknown or revoked"));
                }
                Access::Scope(scope) => {
                    op.security = Some(vec![key()]);
                    guard_answers.push(("401", "no key, or the key is unknown or revoked"));
                    guard_answers.push(("403", scope_text(scope)));
                }
            }
            if endpoint.access != Access::Public {
                guard_answers.push((
                    "429",
                    "too many requests from this client or key; see Retry-After",
                ));
            }
            for (status, text) in guard_answers {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_response(text));
            }
        }
    }
}

fn operation_mut(item: &mut PathItem, verb: Verb) -> Option<&mut Operation> {
    match verb {
        Verb::Get => item.get.as_mut(),
        Verb::Post => item.post.as_mut(),
        Verb::Delete => item.delete.as_mut(),
    }
}

fn key() -> SecurityRequirement {
    SecurityRequirement::new("api_key", Vec::<String>::new())
}

fn scope_text(scope: face_service::Scope) -> &'static str {
    match scope {
        face_service::Scope::Admin => "the key lacks the admin scope",
        face_service::Scope::Enrol => "the key lacks the enrol scope",
        face_service::Scope::Recognize => "the key lacks the recognize scope",
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorJson")))
                    .build(),
            )
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented route of the table is in the document with the
    /// table's security, and the document has no operation the table lacks.
    #[test]
    fn the_document_and_the_route_table_agree() {
        let doc = serde_json::to_value(document((0.0, 4.0))).expect("serialises");
        let paths = doc["paths"].as_object().expect("paths");
        let mut in_table = std::collections::HashSet::new();
        for e in ENDPOINTS.iter().filter(|e| e.documented) {
            let path = e.paths[0];
            in_table.insert((path.to_string(), e.verb.as_str().to_string()));
            let op = &paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} not documented"))[e.verb.as_str()];
            assert!(op.is_object(), "{} {path} not documented", e.verb.as_str());
            let security = op["security"].as_array().expect("security set");
            assert_eq!(security.is_empty(), e.access == Access::Public, "{path}");
            assert_eq!(
                op["responses"].get("401").is_some(),
                e.access != Access::Public,
                "{path}"
            );
        }
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                assert!(
                    in_table.contains(&(path.clone(), method.clone())),
                    "{method} {path} is documented but not in the route table"
                );
            }
        }
    }
}
