//! The permission matrix: none/read/open/write/admin × get/open/decrypt/update/tag/delete,
//! imports needing Open, custom roles, revocation, expiry and the organization default.

use serde_json::json;
use tessera_store::access::Principal;
use tessera_store::audit::AuditContext;
use tessera_store::orgs::OrgSettings;
use tessera_store::roles::RoleSpec;
use tessera_store::tokens::TokenOwner;
use tessera_types::{Permission, Scope};

use crate::helpers::{TestApp, ADMIN_TOKEN, ORG};

fn env_path(name: &str) -> String {
    format!("/api/esc/environments/{ORG}/{name}")
}

const DEV: &str = "values:\n  a: 1\n  s:\n    fn::secret: matrix-secret\n";

/// Runs every action as `token` on app/dev and returns the statuses, in the order
/// get, open, decrypt, update, tag, delete.
async fn statuses(app: &TestApp, token: &str) -> [u16; 6] {
    let p = env_path("app/dev");
    [
        app.get(&p, token).await.status,
        app.post(&format!("{p}/open"), token).await.status,
        app.get(&format!("{p}/decrypt"), token).await.status,
        app.patch_yaml(&p, token, DEV).await.status,
        app.post_json(
            &format!("{p}/versions/tags"),
            token,
            json!({"name": format!("t{}", token.len() + rand_suffix()), "revision": 1}),
        )
        .await
        .status,
        app.delete(&p, token).await.status,
    ]
}

fn rand_suffix() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_matrix() {
    permission_matrix_on(&TestApp::spawn().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_matrix_on_postgresql() {
    if let Some(app) = TestApp::spawn_postgres().await {
        permission_matrix_on(&app).await;
    }
}

async fn permission_matrix_on(app: &TestApp) {
    app.create_env("app/dev", DEV).await;
    let cases: [(&str, [u16; 6]); 5] = [
        ("none", [404, 404, 404, 404, 404, 404]),
        ("read", [200, 403, 403, 403, 403, 403]),
        ("open", [200, 200, 200, 403, 403, 403]),
        ("write", [200, 200, 200, 200, 204, 403]),
        ("admin", [200, 200, 200, 200, 204, 204]),
    ];
    for (level, expected) in cases {
        let token = app.token_for(level, &["app/dev"]).await;
        let got = statuses(app, &token).await;
        assert_eq!(got, expected, "level {level}");
    }
    // Denials are audited with the event, the environment and the outcome.
    let audit = app.audit().await;
    assert!(audit.iter().any(|e| e.event == "environment.update"
        && e.outcome == tessera_store::audit::Outcome::Denied
        && e.environment.as_deref() == Some("app/dev")));
    assert!(audit.iter().any(
        |e| e.event == "environment.open" && e.outcome == tessera_store::audit::Outcome::Denied
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_needs_open_on_every_import() {
    let app = TestApp::spawn().await;
    app.create_env(
        "shared/base",
        "values:\n  k:\n    fn::secret: base-secret\n",
    )
    .await;
    app.create_env("shared/other", "values:\n  o: 1\n").await;
    app.create_env(
        "app/dev",
        "imports:\n  - shared/base\nvalues:\n  x: ${environments.shared.other.o}\n",
    )
    .await;
    let p = env_path("app/dev");

    // Read on an import: it is named in the 403.
    let t = app.token_for("open", &["app/dev"]).await;
    let ctx = AuditContext::system();
    let org = app.org();
    let team = app.store.list_teams(&org).await.unwrap().pop().unwrap();
    app.store
        .set_team_grant(
            &org,
            &team,
            &"shared/base".parse().unwrap(),
            Permission::Read,
            None,
            &ctx,
        )
        .await
        .unwrap();
    app.store
        .set_team_grant(
            &org,
            &team,
            &"shared/other".parse().unwrap(),
            Permission::Open,
            None,
            &ctx,
        )
        .await
        .unwrap();
    let r = app.post(&format!("{p}/open"), &t).await.expect(403);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("shared/base"),
        "{}",
        r.text
    );

    // An implicit import (`${environments…}`) needs Open too.
    app.store
        .set_team_grant(
            &org,
            &team,
            &"shared/base".parse().unwrap(),
            Permission::Open,
            None,
            &ctx,
        )
        .await
        .unwrap();
    app.store
        .set_team_grant(
            &org,
            &team,
            &"shared/other".parse().unwrap(),
            Permission::Read,
            None,
            &ctx,
        )
        .await
        .unwrap();
    let r = app.post(&format!("{p}/open"), &t).await.expect(403);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("shared/other"),
        "{}",
        r.text
    );

    // No permission at all on an import: it is reported as not found, not opened.
    app.store
        .set_team_grant(
            &org,
            &team,
            &"shared/other".parse().unwrap(),
            Permission::None,
            None,
            &ctx,
        )
        .await
        .unwrap();
    let r = app.post(&format!("{p}/open"), &t).await.expect(400);
    assert!(r.text.contains("not found"), "{}", r.text);
    assert!(!r.text.contains("base-secret"));

    // Open on everything: allowed.
    app.store
        .set_team_grant(
            &org,
            &team,
            &"shared/other".parse().unwrap(),
            Permission::Open,
            None,
            &ctx,
        )
        .await
        .unwrap();
    let r = app.post(&format!("{p}/open"), &t).await.expect(200);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = app.get(&format!("{p}/open/{id}"), &t).await.expect(200);
    assert_eq!(r.json()["properties"]["k"]["value"], "base-secret");

    // A reader of the root cannot read the session.
    let reader = app.token_for("read", &["app/dev"]).await;
    app.get(&format!("{p}/open/{id}"), &reader)
        .await
        .expect(403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_roles_grant_their_scopes_on_their_environments() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", DEV).await;
    app.create_env("app/prod", DEV).await;
    let org = app.org();
    let ctx = AuditContext::system();
    let role = app
        .store
        .create_role(
            &org,
            &RoleSpec {
                name: "dev-opener".into(),
                scopes: vec![Scope::EnvironmentRead, Scope::EnvironmentOpen],
                environments: Some(vec!["app/dev".parse().unwrap()]),
                ..RoleSpec::default()
            },
            &ctx,
        )
        .await
        .unwrap();
    let t = app.member_token("carol").await;
    app.store
        .update_member(&org, "carol", None, Some(Some(&role.id)), &ctx)
        .await
        .unwrap();
    app.post(&format!("{}/open", env_path("app/dev")), &t)
        .await
        .expect(200);
    app.patch_yaml(&env_path("app/dev"), &t, DEV)
        .await
        .expect(403);
    app.post(&format!("{}/open", env_path("app/prod")), &t)
        .await
        .expect(404);

    // A token acting with the role: the same, and nothing of its creator's.
    let rt = app
        .token(
            TokenOwner::Organization {
                role_id: Some(role.id.clone()),
                admin: false,
            },
            None,
        )
        .await;
    app.post(&format!("{}/open", env_path("app/dev")), &rt)
        .await
        .expect(200);
    app.get(&env_path("app/prod"), &rt).await.expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_expiry_take_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", DEV).await;
    let t = app.token_for("open", &["app/dev"]).await;
    app.get(&env_path("app/dev"), &t).await.expect(200);
    let org = app.org();
    let token = app
        .store
        .authenticate_token(&tessera_crypto::SecretString::new(t.clone()))
        .await
        .unwrap()
        .unwrap();
    app.store
        .revoke_token(&org, &token.id, &AuditContext::system())
        .await
        .unwrap();
    app.get(&env_path("app/dev"), &t).await.expect(401);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let short = app
        .token(TokenOwner::User("admin".into()), Some(now + 2))
        .await;
    app.get(&env_path("app/dev"), &short).await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    app.get(&env_path("app/dev"), &short).await.expect(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organization_default_applies_to_members_not_team_tokens() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", DEV).await;
    let org = app.org();
    let ctx = AuditContext::system();
    let member = app.member_token("dave").await;
    app.store.create_team(&org, "ops", &ctx).await.unwrap();
    let team = app.token(TokenOwner::Team("ops".into()), None).await;
    app.get(&env_path("app/dev"), &member).await.expect(404);
    app.store
        .update_org_settings(
            &org,
            &OrgSettings {
                default_permission: Permission::Read,
                max_token_lifetime_seconds: None,
            },
            &ctx,
        )
        .await
        .unwrap();
    app.get(&env_path("app/dev"), &member).await.expect(200);
    app.post(&format!("{}/open", env_path("app/dev")), &member)
        .await
        .expect(403);
    app.get(&env_path("app/dev"), &team).await.expect(404);
    let eff = app
        .store
        .effective_permission(
            &Principal::Member {
                login: "dave".into(),
            },
            &org,
            &"app/dev".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(eff.permission, Permission::Read);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_max_open_duration_caps_sessions() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", DEV).await;
    let org = app.org();
    let ctx = AuditContext::system();
    let t = app.member_token("erin").await;
    app.store.create_team(&org, "short", &ctx).await.unwrap();
    app.store
        .add_team_member(&org, "short", "erin", &ctx)
        .await
        .unwrap();
    app.store
        .set_team_grant(
            &org,
            "short",
            &"app/dev".parse().unwrap(),
            Permission::Open,
            Some(1),
            &ctx,
        )
        .await
        .unwrap();
    let r = app
        .post(&format!("{}/open?duration=2h", env_path("app/dev")), &t)
        .await
        .expect(200);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.get(&format!("{}/open/{id}", env_path("app/dev")), &t)
        .await
        .expect(404);
    // Admins are not capped by team grants.
    let r = app
        .post(
            &format!("{}/open?duration=2h", env_path("app/dev")),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.get(&format!("{}/open/{id}", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
}
