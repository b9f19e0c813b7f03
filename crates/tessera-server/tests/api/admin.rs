//! Administration under /api/orgs/{org}: members, tokens, teams, grants, roles, settings,
//! the audit log, access explanations and access reviews.

use serde_json::json;

use crate::helpers::{TestApp, ADMIN_TOKEN, ORG};

fn org_path(rest: &str) -> String {
    format!("/api/orgs/{ORG}/{rest}")
}

fn env_path(name: &str) -> String {
    format!("/api/esc/environments/{ORG}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_user() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/user", ADMIN_TOKEN).await.expect(200);
    let j = r.json();
    assert_eq!(j["login"], "admin");
    assert_eq!(j["defaultOrg"], ORG);
    assert_eq!(j["organizations"][0]["githubLogin"], ORG);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_teams_grants_and_tokens_through_the_api() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  s:\n    fn::secret: team-secret\n")
        .await;
    app.post_json(
        &org_path("members"),
        ADMIN_TOKEN,
        json!({"login": "alice", "role": "member"}),
    )
    .await
    .expect(200);
    app.post_json(&org_path("members"), ADMIN_TOKEN, json!({"login": "alice"}))
        .await
        .expect(409);
    app.post_json(
        &org_path("members"),
        ADMIN_TOKEN,
        json!({"login": "bob", "role": "owner"}),
    )
    .await
    .expect(400);
    let r = app
        .post_json(
            &org_path("members/alice/tokens"),
            ADMIN_TOKEN,
            json!({"name": "first"}),
        )
        .await
        .expect(200);
    let alice = r.json()["tokenValue"].as_str().unwrap().to_owned();
    let alice_id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/user", &alice).await.expect(200).json()["login"],
        "alice"
    );

    // Members cannot administer.
    app.post_json(&org_path("teams"), &alice, json!({"name": "ops"}))
        .await
        .expect(403);
    app.post_json(&org_path("members"), &alice, json!({"login": "mallory"}))
        .await
        .expect(403);

    app.post_json(&org_path("teams"), ADMIN_TOKEN, json!({"name": "ops"}))
        .await
        .expect(200);
    app.post_json(
        &org_path("teams/ops/members"),
        ADMIN_TOKEN,
        json!({"login": "alice"}),
    )
    .await
    .expect(204);
    app.get(&env_path("app/dev"), &alice).await.expect(404);
    app.put_json(
        &org_path("teams/ops/environments/app/dev"),
        ADMIN_TOKEN,
        json!({"permission": "open", "maxOpenDuration": "1h"}),
    )
    .await
    .expect(200);
    app.post(&format!("{}/open", env_path("app/dev")), &alice)
        .await
        .expect(200);
    app.put_json(
        &org_path("teams/ops/environments/app/dev"),
        ADMIN_TOKEN,
        json!({"permission": "superuser"}),
    )
    .await
    .expect(400);
    let r = app
        .get(&org_path("teams/ops"), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(r.json()["members"], json!(["alice"]));
    assert_eq!(r.json()["environments"][0]["maxOpenDuration"], 3600);

    // A team token acts with the team's grants only.
    let r = app
        .post_json(
            &org_path("teams/ops/tokens"),
            ADMIN_TOKEN,
            json!({"name": "ci"}),
        )
        .await
        .expect(200);
    let team = r.json()["tokenValue"].as_str().unwrap().to_owned();
    let team_id = r.json()["id"].as_str().unwrap().to_owned();
    app.post(&format!("{}/open", env_path("app/dev")), &team)
        .await
        .expect(200);
    app.patch_yaml(&env_path("app/dev"), &team, "values: {}\n")
        .await
        .expect(403);
    app.delete(
        &org_path(&format!("teams/ops/tokens/{team_id}")),
        ADMIN_TOKEN,
    )
    .await
    .expect(204);
    app.get(&env_path("app/dev"), &team).await.expect(401);

    // A personal token of one's own, then revoked by its owner.
    let r = app
        .post_json("/api/user/tokens", &alice, json!({"description": "laptop"}))
        .await
        .expect(200);
    let laptop = r.json()["tokenValue"].as_str().unwrap().to_owned();
    let laptop_id = r.json()["id"].as_str().unwrap().to_owned();
    app.get(&env_path("app/dev"), &laptop).await.expect(200);
    app.delete(&org_path(&format!("tokens/{laptop_id}")), &alice)
        .await
        .expect(204);
    app.get(&env_path("app/dev"), &laptop).await.expect(401);
    // Expiry in the past is refused.
    app.post_json(
        "/api/user/tokens",
        &alice,
        json!({"description": "old", "expires": 1000}),
    )
    .await
    .expect(400);

    // Tokens are listed without values.
    let r = app.get(&org_path("tokens"), ADMIN_TOKEN).await.expect(200);
    assert!(r.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == alice_id.as_str()));
    assert!(!r.text.contains(&alice));

    app.delete(&org_path("members/alice"), ADMIN_TOKEN)
        .await
        .expect(204);
    app.get(&env_path("app/dev"), &alice).await.expect(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_permission_sets_and_role_assignment() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  a: 1\n").await;
    app.create_env("app/prod", "values:\n  a: 1\n").await;
    let r = app
        .get(&org_path("roles/scopes"), ADMIN_TOKEN)
        .await
        .expect(200);
    let scopes = r.json()["scopes"].as_array().unwrap().clone();
    assert!(scopes
        .iter()
        .any(|s| s["name"] == "environment:open" && s["description"].is_string()));
    assert!(scopes.iter().any(|s| s["name"] == "audit_log:read"));

    let r = app
        .post_json(
            &org_path("permissions"),
            ADMIN_TOKEN,
            json!({"name": "openers", "scopes": ["environment:read", "environment:open"]}),
        )
        .await
        .expect(200);
    let set = r.json()["id"].as_str().unwrap().to_owned();
    app.post_json(
        &org_path("permissions"),
        ADMIN_TOKEN,
        json!({"name": "bad", "scopes": ["environment:fly"]}),
    )
    .await
    .expect(400);
    let r = app
        .post_json(
            &org_path("roles"),
            ADMIN_TOKEN,
            json!({"name": "dev-tagged", "permissions": [set], "environmentTags": {"stage": "dev*"}}),
        )
        .await
        .expect(200);
    let role = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.json()["effectiveScopes"],
        json!(["environment:read", "environment:open"])
    );

    app.post_json(&org_path("members"), ADMIN_TOKEN, json!({"login": "gina"}))
        .await
        .expect(200);
    let gina = app
        .post_json(
            &org_path("members/gina/tokens"),
            ADMIN_TOKEN,
            json!({"name": "t"}),
        )
        .await
        .expect(200)
        .json()["tokenValue"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch_json(
        &org_path("members/gina"),
        ADMIN_TOKEN,
        json!({"roleId": role}),
    )
    .await
    .expect(200);
    app.post(&format!("{}/open", env_path("app/dev")), &gina)
        .await
        .expect(404);
    // Tagging the environment grants access on the next request; untagging takes it away.
    app.post_json(
        &format!("{}/tags", env_path("app/dev")),
        ADMIN_TOKEN,
        json!({"name": "stage", "value": "dev-1"}),
    )
    .await
    .expect(200);
    app.post(&format!("{}/open", env_path("app/dev")), &gina)
        .await
        .expect(200);
    app.get(&env_path("app/prod"), &gina).await.expect(404);
    let r = app
        .get(
            &org_path("environments/app/dev/access?principal=gina"),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    assert_eq!(r.json()["permission"], "open");
    assert_eq!(r.json()["grants"][0]["source"], "role");
    assert_eq!(r.json()["grants"][0]["name"], "dev-tagged");
    app.delete(&format!("{}/tags/stage", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(204);
    app.post(&format!("{}/open", env_path("app/dev")), &gina)
        .await
        .expect(404);

    // Team roles.
    app.patch_json(
        &org_path("members/gina"),
        ADMIN_TOKEN,
        json!({"roleId": null}),
    )
    .await
    .expect(200);
    app.post_json(&org_path("teams"), ADMIN_TOKEN, json!({"name": "devs"}))
        .await
        .expect(200);
    app.post_json(
        &org_path("teams/devs/members"),
        ADMIN_TOKEN,
        json!({"login": "gina"}),
    )
    .await
    .expect(204);
    let r = app
        .post_json(&org_path("roles"), ADMIN_TOKEN, json!({"name": "prod-reader", "scopes": ["environment:read"], "environments": ["app/prod"]}))
        .await
        .expect(200);
    let reader = r.json()["id"].as_str().unwrap().to_owned();
    app.send(app.request(
        reqwest::Method::PUT,
        &org_path(&format!("teams/devs/roles/{reader}")),
        Some(ADMIN_TOKEN),
    ))
    .await
    .expect(204);
    app.get(&env_path("app/prod"), &gina).await.expect(200);
    app.delete(
        &org_path(&format!("teams/devs/roles/{reader}")),
        ADMIN_TOKEN,
    )
    .await
    .expect(204);
    app.get(&env_path("app/prod"), &gina).await.expect(404);

    // A role limited to a project covers its environments, including ones made later.
    let r = app
        .post_json(
            &org_path("roles"),
            ADMIN_TOKEN,
            json!({"name": "app-openers", "scopes": ["environment:read", "environment:open"], "projects": ["app"]}),
        )
        .await
        .expect(200);
    assert_eq!(r.json()["projects"], json!(["app"]));
    let app_openers = r.json()["id"].as_str().unwrap().to_owned();
    let r = app
        .post_json(
            &org_path("tokens"),
            ADMIN_TOKEN,
            json!({"name": "app-bot", "roleId": app_openers}),
        )
        .await
        .expect(200);
    let app_bot = r.json()["tokenValue"].as_str().unwrap().to_owned();
    app.create_env("app/later", "values:\n  a: 1\n").await;
    app.create_env("other/dev", "values:\n  a: 1\n").await;
    app.post(&format!("{}/open", env_path("app/later")), &app_bot)
        .await
        .expect(200);
    app.post(&format!("{}/open", env_path("other/dev")), &app_bot)
        .await
        .expect(404);

    // An organization token with a role carries exactly the role.
    let r = app
        .post_json(
            &org_path("tokens"),
            ADMIN_TOKEN,
            json!({"name": "reader-bot", "roleId": reader}),
        )
        .await
        .expect(200);
    let bot = r.json()["tokenValue"].as_str().unwrap().to_owned();
    let bot_id = r.json()["id"].as_str().unwrap().to_owned();
    app.get(&env_path("app/prod"), &bot).await.expect(200);
    app.post(&format!("{}/open", env_path("app/prod")), &bot)
        .await
        .expect(403);
    let r = app
        .get(
            &org_path(&format!(
                "environments/app/prod/access?principal=token:{bot_id}"
            )),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    assert_eq!(r.json()["permission"], "read");
    app.delete(&org_path(&format!("roles/{reader}")), ADMIN_TOKEN)
        .await
        .expect(204);
    app.get(&org_path(&format!("roles/{reader}")), ADMIN_TOKEN)
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_default_permission_and_token_lifetime() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  a: 1\n").await;
    let member = app.member_token("hank").await;
    app.get(&env_path("app/dev"), &member).await.expect(404);
    let r = app
        .patch_json(
            &org_path("settings"),
            ADMIN_TOKEN,
            json!({"defaultEnvironmentPermission": "read", "maxTokenLifetimeSeconds": 3600}),
        )
        .await
        .expect(200);
    assert_eq!(r.json()["defaultEnvironmentPermission"], "read");
    app.get(&env_path("app/dev"), &member).await.expect(200);
    app.patch_json(
        &org_path("settings"),
        ADMIN_TOKEN,
        json!({"defaultEnvironmentPermission": "admin"}),
    )
    .await
    .expect(400);
    app.patch_json(
        &org_path("settings"),
        &member,
        json!({"defaultEnvironmentPermission": "write"}),
    )
    .await
    .expect(403);
    // Tokens without expiry, or living longer, are refused; shorter ones are fine.
    app.post_json(&org_path("tokens"), ADMIN_TOKEN, json!({"name": "forever"}))
        .await
        .expect(400);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    app.post_json(
        &org_path("tokens"),
        ADMIN_TOKEN,
        json!({"name": "long", "expires": now + 7200}),
    )
    .await
    .expect(400);
    app.post_json(
        &org_path("tokens"),
        ADMIN_TOKEN,
        json!({"name": "short", "expires": now + 600}),
    )
    .await
    .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_filters_pages_and_needs_the_scope() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  a: 1\n").await;
    app.create_env("app/prod", "values:\n  a: 1\n").await;
    for _ in 0..3 {
        app.post(&format!("{}/open", env_path("app/dev")), ADMIN_TOKEN)
            .await
            .expect(200);
    }
    let r = app
        .get(
            &org_path("auditlogs?event=environment.open&environment=app/dev&count=2"),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    let j = r.json();
    let events = j["auditLogEvents"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["event"] == "environment.open"
        && e["environment"] == "app/dev"
        && e["outcome"] == "allowed"));
    assert_eq!(events[0]["actor"], "admin");
    assert!(events[0]["timestamp"].is_number());
    let next = j["continuationToken"].as_str().unwrap().to_owned();
    let r = app
        .get(&org_path(&format!("auditlogs?event=environment.open&environment=app/dev&count=2&continuationToken={next}")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(r.json()["auditLogEvents"].as_array().unwrap().len(), 1);
    assert!(r.json().get("continuationToken").is_none());
    let far = app
        .get(&org_path("auditlogs?startTime=99999999999"), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(far.json()["auditLogEvents"], json!([]));

    // Exports of the same page.
    let r = app
        .get(
            &org_path("auditlogs?event=environment.open&format=csv"),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    assert_eq!(r.header("content-type"), Some("text/csv"));
    let lines: Vec<&str> = r.text.lines().collect();
    assert!(lines[0].starts_with("seq,time,event,actor"), "{}", r.text);
    assert_eq!(lines.len(), 4, "{}", r.text);
    assert!(lines[1].contains("environment.open") && lines[1].contains("allowed"));
    let r = app
        .get(
            &org_path("auditlogs?event=environment.open&format=jsonl"),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    let rows: Vec<serde_json::Value> = r
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    app.get(&org_path("auditlogs?format=xml"), ADMIN_TOKEN)
        .await
        .expect(400);

    let member = app.member_token("ivy").await;
    app.get(&org_path("auditlogs"), &member).await.expect(403);
    // The denial itself is in the log.
    let r = app
        .get(&org_path("auditlogs?event=audit_log.read"), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(r.json()["auditLogEvents"][0]["outcome"], "denied");
    // A role with audit_log:read is enough.
    let r = app
        .post_json(
            &org_path("roles"),
            ADMIN_TOKEN,
            json!({"name": "auditor", "scopes": ["audit_log:read"]}),
        )
        .await
        .expect(200);
    let role = r.json()["id"].as_str().unwrap().to_owned();
    app.patch_json(
        &org_path("members/ivy"),
        ADMIN_TOKEN,
        json!({"roleId": role}),
    )
    .await
    .expect(200);
    app.get(&org_path("auditlogs"), &member).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_review_finds_unused_tokens_and_first_time_opens() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  a: 1\n").await;
    let r = app
        .post_json(&org_path("tokens"), ADMIN_TOKEN, json!({"name": "idle"}))
        .await
        .expect(200);
    let idle = r.json()["id"].as_str().unwrap().to_owned();
    let opener = app.token_for("open", &["app/dev"]).await;
    app.post(&format!("{}/open", env_path("app/dev")), &opener)
        .await
        .expect(200);
    app.post(&format!("{}/open", env_path("app/dev")), &opener)
        .await
        .expect(200);
    let r = app
        .get(&org_path("access-review?unusedDays=30"), ADMIN_TOKEN)
        .await
        .expect(200);
    let j = r.json();
    assert!(
        j["unusedTokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == idle.as_str()),
        "{j}"
    );
    let firsts: Vec<_> = j["firstTimeOpens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["principal"].as_str().unwrap().starts_with("open-"))
        .collect();
    assert_eq!(firsts.len(), 1, "{j}");
    assert_eq!(firsts[0]["environment"], "app/dev");
    assert!(j["unusedGrants"].is_array() && j["unusedRoleAssignments"].is_array());
    // Fresh tokens are not long-lived at the default maximum age (90 days)...
    assert_eq!(j["longLivedTokens"].as_array().unwrap().len(), 0, "{j}");
    assert_eq!(j["maxTokenAgeDays"], 90);
    // ...and every live token is at a maximum age of 0 days.
    let r = app
        .get(&org_path("access-review?maxTokenAgeDays=0"), ADMIN_TOKEN)
        .await
        .expect(200);
    let j = r.json();
    assert!(
        j["longLivedTokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == idle.as_str()),
        "{j}"
    );
    app.get(&org_path("access-review?unusedDays=-1"), ADMIN_TOKEN)
        .await
        .expect(400);
    app.get(&org_path("access-review?maxTokenAgeDays=-1"), ADMIN_TOKEN)
        .await
        .expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_journey_on_postgresql() {
    let Some(app) = TestApp::spawn_postgres().await else {
        return;
    };
    app.create_env("app/dev", "values:\n  s:\n    fn::secret: pg-secret\n")
        .await;
    let r = app.get(&env_path("app/dev"), ADMIN_TOKEN).await.expect(200);
    assert!(!r.text.contains("pg-secret"));
    let id = app.open_session("app/dev", ADMIN_TOKEN).await;
    let r = app
        .get(&format!("{}/open/{id}", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(r.json()["properties"]["s"]["value"], "pg-secret");
    let reader = app.token_for("read", &["app/dev"]).await;
    app.post(&format!("{}/open", env_path("app/dev")), &reader)
        .await
        .expect(403);
    app.get(&env_path("app/dev"), &reader).await.expect(200);
    app.patch_yaml(&env_path("app/dev"), ADMIN_TOKEN, "values:\n  a: ${x}\n")
        .await
        .expect(400);
}
