//! The route table: every route the server answers, with who may call it.
//!
//! One list is the only way a route is registered ([`configure`]) and the
//! only place its access is decided ([`access`], read by the guard in
//! `auth.rs`, and by `openapi.rs` to mark each operation's security and
//! its 401/403/429 answers). A route cannot exist without an access
//! decision, and the guard, the router and the document cannot disagree.
//!
//! A method a known path lacks is answered 405 by the guard before any key
//! is asked for (`methods`). Any path no route matches needs `admin`: the
//! router matches the percent-decoded path while the guard sees the raw
//! one, so an unmatched pattern may still reach a handler the guard did not
//! recognise. Closed unless opened on purpose. No two patterns of the table
//! may match the same path (a test checks the ones with parameters), so the
//! pattern the guard finds is the route the router picks.

use actix_web::http::Method;
use actix_web::{guard, web, Route};
use face_service::Scope;

use super::{
    admin, docs, health, liveness, metrics, probes, recognize, register, stats, stream, ui, users,
    whoami,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key (health, probes, the API docs, the UI's files),
    /// and never rate-limited.
    Public,
    /// Any valid key, whatever its scopes.
    AnyKey,
    /// Any valid key, or a stream ticket (`?ticket=` or the subprotocol
    /// `facegate.ticket.<ticket>`): the WebSocket, which browsers cannot
    /// give a header. The use case checks the scope each mode needs.
    KeyOrTicket,
    /// A key with this scope (`admin` holds every scope).
    Scope(Scope),
}

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET.
    Get,
    /// POST.
    Post,
    /// DELETE.
    Delete,
}

impl Verb {
    /// The method.
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Delete => Method::DELETE,
        }
    }

    /// The lower-case name OpenAPI uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Delete => "delete",
        }
    }
}

/// One route: a method, its path(s), its access and its handler.
pub struct Endpoint {
    /// The method.
    pub verb: Verb,
    /// The documented path first, then aliases (the reference's paths end
    /// in `/`; clients that leave it off are answered the same).
    pub paths: &'static [&'static str],
    /// Who may call it.
    pub access: Access,
    /// Whether `/openapi.json` describes it (the docs pages and their
    /// assets are not API operations).
    pub documented: bool,
    /// Attaches the handler to a route of this method.
    handler: fn(Route) -> Route,
}

const ENROL: Access = Access::Scope(Scope::Enrol);
const RECOGNIZE: Access = Access::Scope(Scope::Recognize);
const ADMIN: Access = Access::Scope(Scope::Admin);

const fn api(
    verb: Verb,
    paths: &'static [&'static str],
    access: Access,
    handler: fn(Route) -> Route,
) -> Endpoint {
    Endpoint {
        verb,
        paths,
        access,
        documented: true,
        handler,
    }
}

const fn page(paths: &'static [&'static str], handler: fn(Route) -> Route) -> Endpoint {
    Endpoint {
        verb: Verb::Get,
        paths,
        access: Access::Public,
        documented: false,
        handler,
    }
}

/// Every route.
pub const ENDPOINTS: &[Endpoint] = &[
    api(Verb::Get, &["/health"], Access::Public, |r| {
        r.to(health::health)
    }),
    api(Verb::Get, &["/livez"], Access::Public, |r| {
        r.to(probes::livez)
    }),
    api(Verb::Get, &["/readyz"], Access::Public, |r| {
        r.to(probes::readyz)
    }),
    api(Verb::Get, &["/metrics"], ADMIN, |r| r.to(metrics::metrics)),
    api(Verb::Post, &["/stream/tickets"], Access::AnyKey, |r| {
        r.to(stream::tickets)
    }),
    // The WebSocket: not an OpenAPI operation (docs/stream.md).
    Endpoint {
        verb: Verb::Get,
        paths: &["/stream"],
        access: Access::KeyOrTicket,
        documented: false,
        handler: |r| r.to(stream::stream),
    },
    api(Verb::Get, &["/auth/whoami"], Access::AnyKey, |r| {
        r.to(whoami::whoami)
    }),
    api(Verb::Post, &["/register/", "/register"], ENROL, |r| {
        r.to(register::register)
    }),
    api(Verb::Post, &["/recognize/", "/recognize"], RECOGNIZE, |r| {
        r.to(recognize::recognize)
    }),
    api(Verb::Get, &["/users/", "/users"], ADMIN, |r| {
        r.to(users::list)
    }),
    api(Verb::Get, &["/users/{id}"], ADMIN, |r| r.to(users::get)),
    api(Verb::Delete, &["/users/{id}"], ADMIN, |r| {
        r.to(users::delete)
    }),
    api(Verb::Post, &["/users/{id}/faces"], ENROL, |r| {
        r.to(users::add_faces)
    }),
    api(Verb::Get, &["/users/{id}/faces"], ADMIN, |r| {
        r.to(users::list_faces)
    }),
    api(
        Verb::Delete,
        &["/users/{id}/faces/{template_id}"],
        ADMIN,
        |r| r.to(users::delete_face),
    ),
    api(Verb::Post, &["/users/{id}/verify"], RECOGNIZE, |r| {
        r.to(users::verify)
    }),
    api(Verb::Post, &["/liveness/sessions"], Access::AnyKey, |r| {
        r.to(liveness::create)
    }),
    api(
        Verb::Get,
        &["/liveness/sessions/{id}"],
        Access::AnyKey,
        |r| r.to(liveness::get),
    ),
    api(
        Verb::Post,
        &["/liveness/sessions/{id}/frames"],
        Access::AnyKey,
        |r| r.to(liveness::frames),
    ),
    api(Verb::Get, &["/stats/", "/stats"], ADMIN, |r| {
        r.to(stats::stats)
    }),
    api(Verb::Get, &["/admin/reenrolment"], ADMIN, |r| {
        r.to(admin::reenrolment)
    }),
    api(Verb::Post, &["/admin/keys"], ADMIN, |r| {
        r.to(admin::create_key)
    }),
    api(Verb::Get, &["/admin/keys"], ADMIN, |r| {
        r.to(admin::list_keys)
    }),
    api(Verb::Delete, &["/admin/keys/{id}"], ADMIN, |r| {
        r.to(admin::revoke_key)
    }),
    api(Verb::Get, &["/admin/users/{id}/lockout"], ADMIN, |r| {
        r.to(admin::lockout)
    }),
    api(
        Verb::Post,
        &["/admin/users/{id}/lockout/reset"],
        ADMIN,
        |r| r.to(admin::reset_lockout),
    ),
    api(Verb::Get, &["/admin/lockouts"], ADMIN, |r| {
        r.to(admin::lockouts)
    }),
    api(Verb::Get, &["/admin/audit"], ADMIN, |r| r.to(admin::audit)),
    page(&["/ui", "/ui/"], |r| r.to(ui::index)),
    page(&["/ui/app.js"], |r| r.to(ui::script)),
    page(&["/ui/app.css"], |r| r.to(ui::style)),
    page(&["/openapi.json"], |r| r.to(docs::openapi_json)),
    page(&["/docs", "/docs/"], |r| r.to(docs::swagger)),
    page(&["/redoc", "/redoc/"], |r| r.to(docs::redoc)),
    page(&["/docs/assets/swagger-ui-bundle.js"], |r| {
        r.to(docs::swagger_js)
    }),
    page(&["/docs/assets/swagger-ui.css"], |r| {
        r.to(docs::swagger_css)
    }),
    page(&["/docs/assets/redoc.standalone.js"], |r| {
        r.to(docs::redoc_js)
    }),
];

/// Who may call `method` on the route `pattern` (as the router names it);
/// `admin` for anything the table does not list (see the module notes).
/// `HEAD` is a `GET` without the body, with the same access.
pub fn access(method: &Method, pattern: Option<&str>) -> Access {
    listed(method, pattern).unwrap_or(ADMIN)
}

/// The access the table lists for `method` on `pattern`, if it lists one.
pub fn listed(method: &Method, pattern: Option<&str>) -> Option<Access> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    pattern
        .and_then(|p| {
            ENDPOINTS
                .iter()
                .find(|e| e.verb.method() == method && e.paths.contains(&p))
        })
        .map(|e| e.access)
}

/// The methods the table lists for `pattern`; empty when no route has it.
pub fn methods(pattern: &str) -> Vec<Method> {
    let mut methods: Vec<Method> = ENDPOINTS
        .iter()
        .filter(|e| e.paths.contains(&pattern))
        .map(|e| e.verb.method())
        .collect();
    if methods.contains(&Method::GET) {
        methods.push(Method::HEAD);
    }
    methods
}

/// Registers every route of the table.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for endpoint in ENDPOINTS {
        for path in endpoint.paths {
            let route = match endpoint.verb {
                // HEAD answers as GET does (the server drops the body), so
                // probes that use HEAD work on every GET route.
                Verb::Get => web::route().guard(guard::Any(guard::Get()).or(guard::Head())),
                verb => web::method(verb.method()),
            };
            cfg.route(path, (endpoint.handler)(route));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: Method, pattern: &str) -> Access {
        access(&method, Some(pattern))
    }

    #[test]
    fn routes_are_closed_unless_opened_on_purpose() {
        assert_eq!(of(Method::GET, "/health"), Access::Public);
        assert_eq!(of(Method::GET, "/livez"), Access::Public);
        assert_eq!(of(Method::HEAD, "/readyz"), Access::Public);
        assert_eq!(of(Method::GET, "/metrics"), ADMIN);
        assert_eq!(
            of(Method::GET, "/docs/assets/swagger-ui.css"),
            Access::Public
        );
        assert_eq!(of(Method::POST, "/register/"), ENROL);
        assert_eq!(of(Method::POST, "/register"), ENROL);
        assert_eq!(of(Method::POST, "/users/{id}/verify"), RECOGNIZE);
        assert_eq!(of(Method::GET, "/auth/whoami"), Access::AnyKey);
        assert_eq!(of(Method::GET, "/users/"), ADMIN);
        assert_eq!(of(Method::DELETE, "/users/{id}"), ADMIN);
        assert_eq!(of(Method::GET, "/users/{id}/faces"), ADMIN);
        assert_eq!(of(Method::DELETE, "/users/{id}/faces/{template_id}"), ADMIN);
        // Not in the table: a new pattern, a method the table does not list
        // for a known path (a GET on an enrol path is no enrolment), and a
        // path no pattern matched.
        assert_eq!(of(Method::GET, "/some/new/route"), ADMIN);
        assert_eq!(of(Method::GET, "/register/"), ADMIN);
        assert_eq!(of(Method::PUT, "/health"), ADMIN);
        // HEAD is GET's access; the guard 405s what a path lacks.
        assert_eq!(of(Method::HEAD, "/health"), Access::Public);
        assert_eq!(of(Method::HEAD, "/users/"), ADMIN);
        assert_eq!(
            methods("/users/{id}"),
            vec![Method::GET, Method::DELETE, Method::HEAD]
        );
        assert_eq!(methods("/register/"), vec![Method::POST]);
        assert_eq!(access(&Method::GET, None), ADMIN);
    }

    /// No two patterns match one path, so the pattern the guard finds is
    /// the route the router picks: each pattern's example path (its
    /// parameters replaced by a value) matches no other pattern.
    #[test]
    fn no_two_patterns_overlap() {
        let all: Vec<&str> = ENDPOINTS
            .iter()
            .flat_map(|e| e.paths.iter().copied())
            .collect();
        for pattern in &all {
            let example: String = pattern
                .split('/')
                .map(|seg| if seg.starts_with('{') { "7" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            for other in all.iter().filter(|o| *o != pattern) {
                let def = actix_web::dev::ResourceDef::new(*other);
                assert!(
                    !def.is_match(&example),
                    "{pattern} (as {example}) also matches {other}"
                );
            }
        }
    }

    #[test]
    fn each_method_and_path_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for e in ENDPOINTS {
            for p in e.paths {
                assert!(
                    seen.insert((e.verb, *p)),
                    "{} {p} listed twice",
                    e.verb.as_str()
                );
            }
        }
    }
}
