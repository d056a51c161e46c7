//! The route table against the server and the tiers: every row is served,
//! only the rows marked public work without a token, and every (route,
//! operation) has each tier's decision written down — through the real
//! authorisation (ACL of the shipped policy files, sudo, parameter rules).

use serde_json::{json, Map, Value};

use super::{find_fixed, fixed_routes};
use crate::clock::ManualClock;
use crate::core::{authorize, Core, CoreConfig, CoreError};
use crate::crypto::SecretString;
use crate::engine::paths::{find, matches, matches_path};
use crate::engine::tiers::TierRows;
use crate::engine::{Ops, PathSpec};
use crate::logical::{LogicalError, Operation, Request};
use crate::storage::{MigrationMode, Storage};

const ROOT: &str = "root-token";

async fn core() -> Core {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let c = Core::new(storage, ManualClock::new(1_000_000), CoreConfig::default());
    c.dev_setup(Some(&SecretString::from(ROOT))).await.unwrap();
    // Every engine at the mount its tier rows name (dev mode already has
    // `secret/` and the built-in mounts).
    let registry = c.registry().clone();
    for method in registry.all_auth() {
        let mount = method.tier_rows().mount;
        let name = mount.trim_start_matches("auth/").trim_end_matches('/');
        c.handle(req(
            Operation::Update,
            &format!("sys/auth/{name}"),
            Some(ROOT),
            json!({"type": method.kind()}),
        ))
        .await
        .unwrap();
    }
    for engine in registry.all_secrets() {
        let mount = engine.tier_rows().mount;
        if mount.is_empty() || mount == "secret/" || engine.builtin_mount().is_some() {
            continue;
        }
        c.handle(req(
            Operation::Update,
            &format!("sys/mounts/{}", mount.trim_end_matches('/')),
            Some(ROOT),
            json!({"type": engine.kind()}),
        ))
        .await
        .unwrap();
    }
    c
}

fn req(op: Operation, path: &str, token: Option<&str>, data: Value) -> Request {
    Request {
        id: "test".into(),
        operation: op,
        path: path.into(),
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        content_type: Some("application/merge-patch+json".into()),
        client_token: token.map(SecretString::from),
        list_after: None,
        list_limit: None,
        mfa_header: None,
        connection: Default::default(),
        unauthenticated_metrics: false,
    }
}

/// Where a served path is rooted: a fixed path, or below the mount the
/// engine's tier rows name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Fixed,
    Mount(&'static str),
}

/// One served path: where, and its spec.
#[derive(Clone, Copy)]
struct Route {
    scope: Scope,
    spec: &'static PathSpec,
}

impl Route {
    fn pattern(&self) -> &'static str {
        self.spec.pattern
    }
}

/// Every registered engine: its kind, its tier rows, its paths.
fn engines() -> Vec<(&'static str, TierRows, &'static [PathSpec])> {
    crate::engines::builtin()
        .all()
        .map(|e| (e.kind(), e.tier_rows(), e.paths()))
        .collect()
}

/// Every served route: the fixed table and every engine's paths.
fn all_routes() -> Vec<Route> {
    let mut out: Vec<Route> = fixed_routes()
        .map(|spec| Route {
            scope: Scope::Fixed,
            spec,
        })
        .collect();
    for (kind, rows, paths) in engines() {
        let mount = rows.mount;
        assert!(!mount.is_empty(), "engine {kind} states no tier rows");
        out.extend(paths.iter().map(|spec| Route {
            scope: Scope::Mount(mount),
            spec,
        }));
    }
    out
}

/// The full request path of a route, with its placeholders filled in.
fn instantiate(route: &Route) -> String {
    let auth_mount = route.pattern().starts_with("sys/auth/");
    let filled: Vec<&str> = route
        .pattern()
        .split('/')
        .map(|seg| match seg {
            ":user" => "alice",
            ":accessor" => "auth_userpass_0000",
            ":policy" => "developer",
            "*mount" if auth_mount => "userpass",
            "*mount" => "secret",
            "*device" => "file",
            "*path" => "teams/payments/app",
            other if other.starts_with(':') => "alice",
            other if other.starts_with('*') => "teams/payments/app",
            other => other,
        })
        .collect();
    let filled = filled.join("/");
    match route.scope {
        Scope::Fixed => filled,
        Scope::Mount(mount) => format!("{mount}{filled}"),
    }
}

const OPS: [(Ops, Operation); 5] = [
    (Ops::READ, Operation::Read),
    (Ops::LIST, Operation::List),
    (Ops::WRITE, Operation::Update),
    (Ops::PATCH, Operation::Patch),
    (Ops::DELETE, Operation::Delete),
];

fn served_ops(route: &Route) -> impl Iterator<Item = Operation> + '_ {
    OPS.iter()
        .filter(|(_, op)| route.spec.ops.has(*op))
        .map(|(_, op)| *op)
}

/// The route serving `path` for `op`, among `routes`.
fn served_by(routes: &[Route], path: &str, op: Operation) -> Option<Route> {
    let mount = routes.iter().find_map(|r| match r.scope {
        Scope::Mount(m) if path.starts_with(m) => Some(m),
        _ => None,
    });
    let (scope, rest) = match mount {
        Some(m) => (Scope::Mount(m), &path[m.len()..]),
        None => (Scope::Fixed, path),
    };
    let specs: Vec<PathSpec> = routes
        .iter()
        .filter(|r| r.scope == scope)
        .map(|r| *r.spec)
        .collect();
    let found = find(&specs, rest, op)?;
    routes
        .iter()
        .find(|r| r.scope == scope && r.spec.pattern == found.pattern)
        .copied()
}

fn same(a: &Route, b: &Route) -> bool {
    a.scope == b.scope && std::ptr::eq(a.spec, b.spec)
}

#[test]
fn every_route_instantiates_to_itself() {
    let routes = all_routes();
    for route in &routes {
        let path = instantiate(route);
        for op in served_ops(route) {
            let found = served_by(&routes, &path, op).map(|r| r.pattern());
            assert_eq!(found, Some(route.pattern()), "{path} ({op:?})");
        }
    }
}

/// The fixed paths served without a token, written down: no tier decides
/// them, so a path turned token-less by mistake must fail somewhere.
#[test]
fn the_token_less_fixed_paths_are_exactly_these() {
    let public: Vec<&str> = fixed_routes()
        .filter(|r| r.unauthenticated)
        .map(|r| r.pattern)
        .collect();
    assert_eq!(
        public,
        [
            "sys/init",
            "sys/seal-status",
            "sys/unseal",
            "sys/health",
            "sys/leader",
            // key shares authorise these
            "sys/generate-root/attempt",
            "sys/generate-root/update",
            "sys/generate-root-token/attempt",
            "sys/generate-root-token/update",
            "sys/rekey/init",
            "sys/rekey/update",
            "sys/rekey/verify",
            "sys/rekey-recovery-key/init",
            "sys/rekey-recovery-key/update",
            "sys/rekey-recovery-key/verify",
            "sys/mfa/validate",
        ]
    );
}

#[test]
fn patterns_match_only_what_they_name() {
    let fixed = |p: &str, op| find_fixed(p, op).map(|r| r.pattern);
    assert_eq!(
        fixed("sys/mounts/team/a/tune", Operation::Read),
        Some("sys/mounts/*mount/tune")
    );
    assert_eq!(
        fixed("sys/mounts/tune", Operation::Read),
        Some("sys/mounts/*mount")
    );
    assert_eq!(
        fixed("sys/policies/acl/", Operation::List),
        Some("sys/policies/acl")
    );
    for (path, op) in [
        ("sys/rotate/", Operation::Update),
        ("sys/rotate/keyring/", Operation::Update),
        ("sys/policies/acl/", Operation::Read),
        ("sys/policies/acl/a/b", Operation::Read),
        ("sys/mounts//tune", Operation::Read),
        ("sys/raw/core/keyring", Operation::Read),
        ("sys/Rotate", Operation::Update),
        ("sys", Operation::Read),
        ("auth/token/accessors", Operation::List),
    ] {
        assert_eq!(fixed(path, op), None, "{path}");
    }
    let kv_paths = crate::engine::Engine::paths(&crate::secrets::kv::Kv);
    let kv = |p: &str, op| find(kv_paths, p, op).map(|r| r.pattern);
    assert_eq!(kv("metadata/", Operation::List), Some("metadata"));
    assert_eq!(kv("metadata/a/", Operation::List), Some("metadata/*path"));
    assert_eq!(kv("data/a/", Operation::Update), None);
    assert_eq!(kv("data", Operation::Read), None);
    assert_eq!(kv("bogus/a", Operation::Read), None);
}

/// Every row reaches its handler (a root request is never "no handler" or
/// "unsupported operation"), and needs a token unless it is marked public.
#[tokio::test]
async fn every_route_in_the_table_is_served() {
    for route in &all_routes() {
        // A fresh core per route: some rows seal, rotate or delete mounts.
        let c = core().await;
        let path = instantiate(route);
        for op in served_ops(route) {
            let r = c.handle(req(op, &path, Some(ROOT), json!({}))).await;
            assert!(
                !matches!(
                    r,
                    Err(CoreError::NoHandler(_) | CoreError::UnsupportedOperation)
                        | Err(CoreError::Logical(LogicalError::UnsupportedOperation))
                ),
                "{op:?} {path}: {r:?}"
            );
            if c.is_sealed() {
                break;
            }
            let anonymous = c.handle(req(op, &path, None, json!({}))).await;
            let refused = matches!(
                anonymous,
                Err(CoreError::TokenRefused(crate::core::TokenRefusal::Missing))
            );
            assert_eq!(
                refused, !route.spec.unauthenticated,
                "{op:?} {path} without a token: {anonymous:?}"
            );
        }
    }
}

/// Operations a route does not list never reach its handler, and paths no
/// row names are "no handler" before authorisation (fixed) or after it (mounts).
#[tokio::test]
async fn what_the_table_does_not_name_is_not_served() {
    let c = core().await;
    for route in &all_routes() {
        let path = instantiate(route);
        for (_, op) in OPS {
            if route.spec.ops.has(op) {
                continue;
            }
            let r = c.handle(req(op, &path, Some(ROOT), json!({}))).await;
            assert!(
                matches!(r, Err(CoreError::UnsupportedOperation)),
                "{op:?} {path}: {r:?}"
            );
        }
    }
    for path in [
        "sys/raw/core/keyring",
        "sys/rotate/keyring/",
        "sys/policy/a/b",
        "auth/token/accessors",
        "secret/bogus/x",
        "auth/userpass/users/alice/other",
        "auth/userpass/login/alice/x",
    ] {
        let r = c
            .handle(req(Operation::Update, path, Some(ROOT), json!({})))
            .await;
        assert!(matches!(r, Err(CoreError::NoHandler(_))), "{path}: {r:?}");
    }
    // No token: a fixed path nobody serves is 404 (the table is public); below
    // mounts it is 403 as for any other path, so mounts cannot be probed.
    let r = c
        .handle(req(Operation::Read, "sys/raw/x", None, json!({})))
        .await;
    assert!(matches!(r, Err(CoreError::NoHandler(_))), "{r:?}");
    for path in ["secret/bogus/x", "nosuchmount/data/x"] {
        let r = c.handle(req(Operation::Read, path, None, json!({}))).await;
        assert!(
            matches!(
                r,
                Err(CoreError::TokenRefused(crate::core::TokenRefusal::Missing))
            ),
            "{path}: {r:?}"
        );
    }
}

const A: bool = true;
const D: bool = false;
const TIERS: [&str; 3] = ["read-only", "developer", "emergency-admin"];

/// One decision row (see [`crate::engine::tiers::TierRow`]), with where the
/// route is rooted. Rows for engine paths come from the engines.
struct Row {
    scope: Scope,
    pattern: &'static str,
    op: Operation,
    path: Option<String>,
    body: Value,
    expect: [bool; 3],
}

/// A break-glass row, at a path with a grant id (the default policy opens
/// `sys/breakglass/bg-*`).
fn bg_row(pattern: &'static str, op: Operation, ro: bool, dev: bool, ea: bool) -> Row {
    Row {
        path: Some(pattern.replace(":id", "bg-aaaaaaaaaaaaaaaaaaaaaaaaaa")),
        ..row(pattern, op, ro, dev, ea)
    }
}

fn row(pattern: &'static str, op: Operation, ro: bool, dev: bool, ea: bool) -> Row {
    Row {
        scope: Scope::Fixed,
        pattern,
        op,
        path: None,
        body: json!({}),
        expect: [ro, dev, ea],
    }
}

/// The fixed rows here, and every engine's rows from its folder.
fn tier_table() -> Vec<Row> {
    let mut rows = fixed_tier_table();
    for (_, engine_rows, _) in engines() {
        let mount = engine_rows.mount;
        rows.extend(engine_rows.rows.into_iter().map(|r| Row {
            scope: Scope::Mount(mount),
            pattern: r.pattern,
            op: r.op,
            path: r.path.map(|p| format!("{mount}{p}")),
            body: r.body,
            expect: r.expect,
        }));
    }
    rows
}

fn fixed_tier_table() -> Vec<Row> {
    use Operation::{Delete as Del, List, Read, Update as Wr};
    vec![
        // sys/
        row("sys/metrics", Read, D, D, A),
        row("sys/seal", Wr, D, D, D),
        row("sys/rotate", Wr, D, D, D),
        row("sys/rotate/keyring", Wr, D, D, D),
        row("sys/key-status", Read, D, D, A),
        row("sys/mounts", Read, D, D, A),
        row("sys/mounts/*mount/tune", Read, D, D, A),
        row("sys/mounts/*mount/tune", Wr, D, D, A),
        row("sys/mounts/*mount", Read, D, D, A),
        row("sys/mounts/*mount", Wr, D, D, D),
        row("sys/mounts/*mount", Del, D, D, D),
        row("sys/auth", Read, D, D, A),
        row("sys/auth/*mount/tune", Read, D, D, D),
        row("sys/auth/*mount/tune", Wr, D, D, D),
        row("sys/auth/*mount", Read, D, D, D),
        row("sys/auth/*mount", Wr, D, D, D),
        row("sys/auth/*mount", Del, D, D, D),
        row("sys/internal/ui/mounts", Read, D, D, A),
        row("sys/internal/ui/mounts/*mount", Read, A, A, A),
        row("sys/locked-users", Read, D, D, A),
        row("sys/locked-users/:accessor/unlock/:user", Wr, D, D, D),
        row("sys/audit", Read, D, D, A),
        row("sys/audit-checkpoint-key", Read, D, D, A),
        row("sys/audit-hash/*device", Wr, D, D, A),
        row("sys/audit/*device", Wr, D, D, D),
        row("sys/audit/*device", Del, D, D, D),
        row("sys/policies/acl", List, D, D, A),
        row("sys/policies/acl/:policy", Read, D, D, A),
        row("sys/policies/acl/:policy", Wr, D, D, D),
        row("sys/policies/acl/:policy", Del, D, D, D),
        row("sys/policy", Read, D, D, A),
        row("sys/policy", List, D, D, D),
        row("sys/policy/:policy", Read, D, D, A),
        row("sys/policy/:policy", Wr, D, D, D),
        row("sys/policy/:policy", Del, D, D, D),
        row("sys/capabilities-self", Wr, A, A, A),
        row("sys/leases/lookup", Wr, A, A, A),
        row("sys/leases/lookup", List, D, D, A),
        row("sys/leases/lookup/*prefix", List, D, D, A),
        row("sys/leases/renew", Wr, A, A, A),
        row("sys/leases/renew/*lease", Wr, D, D, D),
        row("sys/leases/revoke", Wr, D, D, A),
        row("sys/leases/revoke/*lease", Wr, D, D, D),
        row("sys/leases/revoke-prefix/*prefix", Wr, D, D, A),
        row("sys/leases/revoke-force/*prefix", Wr, D, D, D),
        row("sys/leases/tidy", Wr, D, D, D),
        row("sys/quotas/lease-count", List, D, D, D),
        row("sys/quotas/lease-count/:name", Read, D, D, D),
        row("sys/quotas/lease-count/:name", Wr, D, D, D),
        row("sys/quotas/lease-count/:name", Del, D, D, D),
        row("sys/breakglass", List, A, A, A),
        row("sys/breakglass/config", Read, D, D, D),
        row("sys/breakglass/config", Wr, D, D, D),
        row("sys/breakglass/request", Wr, D, A, D),
        // A name that is no grant id is opened by no policy.
        row("sys/breakglass/:id", Read, D, D, D),
        row("sys/breakglass/:id/approve", Wr, D, D, D),
        row("sys/breakglass/:id/deny", Wr, D, D, D),
        row("sys/breakglass/:id/cancel", Wr, D, D, D),
        row("sys/breakglass/:id/token", Wr, D, D, D),
        row("sys/breakglass/:id/revoke", Wr, D, D, D),
        row("sys/breakglass/:id/report", Read, D, D, D),
        bg_row("sys/breakglass/:id", Read, A, A, A),
        bg_row("sys/breakglass/:id/approve", Wr, A, A, A),
        bg_row("sys/breakglass/:id/deny", Wr, A, A, A),
        bg_row("sys/breakglass/:id/cancel", Wr, A, A, A),
        bg_row("sys/breakglass/:id/token", Wr, A, A, A),
        bg_row("sys/breakglass/:id/revoke", Wr, A, A, A),
        bg_row("sys/breakglass/:id/report", Read, A, A, A),
        row("sys/capabilities", Wr, D, D, A),
        row("sys/capabilities-accessor", Wr, D, D, A),
        // auth/token/
        row("auth/token/create", Wr, D, A, D),
        row("auth/token/create-orphan", Wr, D, D, D),
        row("auth/token/lookup-self", Read, A, A, A),
        row("auth/token/lookup-self", Wr, D, D, D),
        row("auth/token/lookup", Read, D, D, A),
        row("auth/token/lookup", Wr, D, D, A),
        row("auth/token/lookup-accessor", Wr, D, D, A),
        row("auth/token/renew-self", Wr, A, A, A),
        row("auth/token/renew", Wr, D, D, D),
        row("auth/token/renew-accessor", Wr, D, D, D),
        row("auth/token/revoke-self", Wr, A, A, A),
        row("auth/token/revoke", Wr, D, D, A),
        row("auth/token/revoke-accessor", Wr, D, D, A),
        row("auth/token/revoke-orphan", Wr, D, D, D),
    ]
}

fn route_of(routes: &[Route], row: &Row) -> Option<Route> {
    routes
        .iter()
        .find(|r| r.scope == row.scope && r.pattern() == row.pattern && r.spec.ops.has(row.op))
        .copied()
}

/// Every (route, operation) that takes a token has its three decisions here,
/// and each decision is what the server's authorisation says.
#[tokio::test]
async fn every_route_has_each_tiers_decision() {
    let c = core().await;
    c.handle(req(
        Operation::Update,
        "secret/data/teams/payments/app",
        Some(ROOT),
        json!({"data": {"k": "v"}}),
    ))
    .await
    .unwrap();
    let table = tier_table();

    // Complete: a route added to a fixed table or to an engine without its
    // decisions fails here.
    let routes = all_routes();
    let mut missing = Vec::new();
    for route in routes.iter().filter(|r| !r.spec.unauthenticated) {
        for op in served_ops(route) {
            let stated = table.iter().any(|row| {
                row.path.is_none()
                    && row.op == op
                    && route_of(&routes, row).is_some_and(|r| same(&r, route))
            });
            if !stated {
                missing.push(format!("{op:?} {:?} {}", route.scope, route.pattern()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without tier decisions:\n{}",
        missing.join("\n")
    );

    let state = c.unsealed().unwrap();
    let entity = payments_person();
    let mut wrong = Vec::new();
    for row in &table {
        let route = route_of(&routes, row).unwrap_or_else(|| {
            panic!(
                "row {:?} {:?} {} is no served route",
                row.op, row.scope, row.pattern
            )
        });
        let path = row.path.clone().unwrap_or_else(|| instantiate(&route));
        assert!(
            served_by(&routes, &path, row.op).is_some_and(|r| same(&r, &route)),
            "row path {path} is not served by {}",
            route.pattern()
        );
        let resolved = super::super::route::resolve(Some(&state), c.registry(), &path, row.op)
            .await
            .unwrap();
        for (i, tier) in TIERS.iter().enumerate() {
            let acl = state
                .policies
                .acl(&["default".to_owned(), (*tier).to_owned()], Some(&entity));
            let request = req(row.op, &path, Some("unused"), row.body.clone());
            let decision = authorize::authorize(&state, &acl, &request, &resolved, c.now()).await;
            let allowed = match decision {
                Ok(_) => true,
                Err(CoreError::PermissionDenied)
                | Err(CoreError::Logical(LogicalError::Forbidden(_))) => false,
                Err(other) => panic!("{tier} {:?} {path}: {other:?}", row.op),
            };
            if allowed != row.expect[i] {
                wrong.push(format!(
                    "{tier}: {:?} {path} {} -> {}",
                    row.op,
                    row.body,
                    if allowed { "allowed" } else { "denied" }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "decisions differ from the table:\n{}",
        wrong.join("\n")
    );
}

fn payments_person() -> crate::policy::Entity {
    crate::policy::Entity {
        id: "ent-1".into(),
        name: "alice".into(),
        metadata: [("team".to_owned(), "payments".to_owned())].into(),
    }
}

/// Paths whose engines are still to come are decided by the policies already.
#[tokio::test]
async fn tiers_decide_paths_of_engines_still_to_come() {
    let c = core().await;
    let state = c.unsealed().unwrap();
    let entity = payments_person();
    let cases: [(&str, crate::policy::Capabilities, [bool; 3]); 9] = {
        use crate::policy::Capabilities as C;
        [
            ("sys/breakglass/request", C::UPDATE, [D, A, D]),
            ("sys/breakglass/approve/1", C::UPDATE, [D, D, D]),
            // The capability that makes an approver: no tier holds it.
            ("sys/breakglass/approve", C::UPDATE, [D, D, D]),
            ("database/creds/deploy-app", C::READ, [D, A, D]),
            ("database/creds/admin", C::READ, [D, D, D]),
            ("sys/leases/revoke", C::UPDATE, [D, D, A]),
            (
                "sys/leases/revoke-prefix/database/creds",
                C::SUDO,
                [D, D, A],
            ),
            ("sys/raw/core/keyring", C::READ, [D, D, D]),
            ("sys/rotate/root", C::UPDATE, [D, D, D]),
        ]
    };
    for (path, needed, expect) in cases {
        for (i, tier) in TIERS.iter().enumerate() {
            let acl = state
                .policies
                .acl(&["default".to_owned(), (*tier).to_owned()], Some(&entity));
            let allowed = acl.decide(path, c.now()).allows(needed);
            assert_eq!(allowed, expect[i], "{tier}: {path}");
        }
    }
}

#[test]
fn the_fast_match_agrees_with_the_full_match() {
    let fill = |pattern: &str, star: &str| {
        pattern
            .split('/')
            .map(|seg| match seg.chars().next() {
                Some(':') => "v",
                Some('*') => star,
                _ => seg,
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let routes = all_routes();
    let mut paths: Vec<String> = Vec::new();
    for route in routes.iter().map(|r| r.spec) {
        for star in ["a", "a/b"] {
            let path = fill(route.pattern, star);
            paths.push(format!("{path}/extra"));
            paths.push(
                path.rsplit_once('/')
                    .map_or(String::new(), |(p, _)| p.to_owned()),
            );
            paths.push(path);
        }
    }
    for route in routes.iter().map(|r| r.spec) {
        for path in &paths {
            let segments: Vec<&str> = path.split('/').collect();
            assert_eq!(
                matches_path(route.pattern, path, &segments),
                matches(route.pattern, &segments),
                "{} vs {path}",
                route.pattern
            );
        }
    }
}
