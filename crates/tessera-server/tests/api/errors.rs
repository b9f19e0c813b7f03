//! Bad input and authentication: every error is the contract's JSON, never a 5xx.

use serde_json::json;

use crate::helpers::{TestApp, ADMIN_TOKEN, ORG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let r = app
        .send(app.request(reqwest::Method::GET, "/healthz", None))
        .await
        .expect(200);
    assert_eq!(r.json()["status"], "ok");
    app.send(app.request(reqwest::Method::GET, "/readyz", None))
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_json_errors() {
    let app = TestApp::spawn().await;
    let r = app.get("/nowhere", ADMIN_TOKEN).await.expect(404);
    assert!(r.json()["message"].as_str().unwrap().contains("/nowhere"));
    app.get("/api/esc/nothing/here/at/all/x/y/z", ADMIN_TOKEN)
        .await
        .expect(404);
    let r = app
        .send(app.request(
            reqwest::Method::PUT,
            &format!("/api/esc/environments/{ORG}"),
            Some(ADMIN_TOKEN),
        ))
        .await
        .expect(405);
    assert!(
        r.json()["message"].as_str().unwrap().contains("PUT"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_and_unknown_tokens_are_401() {
    let app = TestApp::spawn().await;
    let path = format!("/api/esc/environments/{ORG}");
    app.send(app.request(reqwest::Method::GET, &path, None))
        .await
        .expect(401);
    for header in [
        "token",
        "Basic abc",
        "token ",
        "tokenabc",
        "token tsr_unknown_token_value_123",
    ] {
        let r = app
            .send(
                app.client
                    .get(format!("{}{path}", app.addr))
                    .header("Authorization", header),
            )
            .await;
        r.expect(401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_is_400_and_oversized_bodies_are_413() {
    let app = TestApp::spawn().await;
    let path = format!("/api/esc/environments/{ORG}");
    let r = app
        .send(
            app.request(reqwest::Method::POST, &path, Some(ADMIN_TOKEN))
                .header("Content-Type", "application/json")
                .body("{not json"),
        )
        .await
        .expect(400);
    assert!(
        r.json()["message"].as_str().unwrap().contains("JSON"),
        "{}",
        r.text
    );
    app.post_json(&path, ADMIN_TOKEN, json!({"project": "app"}))
        .await
        .expect(400);
    let big = "x".repeat((1 << 20) + 10);
    app.send(
        app.request(reqwest::Method::POST, &path, Some(ADMIN_TOKEN))
            .header("Content-Type", "application/json")
            .body(format!("{{\"project\":\"{big}\",\"name\":\"e\"}}")),
    )
    .await
    .expect(413);
    app.create_env("app/dev", "").await;
    let yaml = format!("values:\n  a: {big}\n");
    app.patch_yaml(&format!("{path}/app/dev"), ADMIN_TOKEN, &yaml)
        .await
        .expect(413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_are_400() {
    let app = TestApp::spawn().await;
    let base = "/api/esc/environments";
    app.get(&format!("{base}/-bad-/app/dev"), ADMIN_TOKEN)
        .await
        .expect(400);
    app.get(&format!("{base}/{ORG}/default-x/dev"), ADMIN_TOKEN)
        .await
        .expect(400);
    app.get(&format!("{base}/{ORG}/app/open-x"), ADMIN_TOKEN)
        .await
        .expect(400);
    app.get(&format!("{base}/{ORG}/app/yamlx"), ADMIN_TOKEN)
        .await
        .expect(400);
    for (project, name) in [
        ("app", "a b"),
        ("..", "dev"),
        ("app", ".."),
        ("defaults", "x"),
    ] {
        app.post_json(
            &format!("{base}/{ORG}"),
            ADMIN_TOKEN,
            json!({"project": project, "name": name}),
        )
        .await
        .expect(400);
    }
    app.get(&format!("{base}/{ORG}/app/dev/versions/0"), ADMIN_TOKEN)
        .await
        .expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organization_is_not_found() {
    let app = TestApp::spawn().await;
    app.get("/api/esc/environments/other-org", ADMIN_TOKEN)
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_rate_limited_per_address() {
    let app = TestApp::spawn().await;
    let path = format!("/api/esc/environments/{ORG}");
    let mut statuses = Vec::new();
    for i in 0..35 {
        let r = app
            .get(&path, &format!("tsr_wrong_token_value_{i:04}"))
            .await;
        statuses.push(r.status);
    }
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
    app.get(&path, ADMIN_TOKEN).await.expect(429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_carries_the_etag_and_revision() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  a: 1\n").await;
    let r = app
        .send(app.request(
            reqwest::Method::HEAD,
            &format!("/api/esc/environments/{ORG}/app/dev"),
            Some(ADMIN_TOKEN),
        ))
        .await
        .expect(200);
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(r.header("pulumi-esc-revision"), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_get_clear_errors_never_5xx() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  a: 1\n").await;
    let p = format!("/api/esc/environments/{ORG}/app/dev");
    let bad_utf8 = app
        .send(
            app.request(reqwest::Method::PATCH, &p, Some(ADMIN_TOKEN))
                .body(vec![0xff, 0xfe, 0x00]),
        )
        .await;
    bad_utf8.expect(400);
    let deep = format!("values:\n  a: {}{}\n", "[".repeat(500), "]".repeat(500));
    app.patch_yaml(&p, ADMIN_TOKEN, &deep).await.expect(400);
    let aliases = "values:\n  a: &a [x, x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n  f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    let r = app.patch_yaml(&p, ADMIN_TOKEN, aliases).await;
    assert!(r.status == 400 || r.status == 200, "{}", r.text);
    for duration in ["abc", "-1h", "100000h", "1x"] {
        app.post(&format!("{p}/open?duration={duration}"), ADMIN_TOKEN)
            .await
            .expect(400);
    }
    let id = app.open_session("app/dev", ADMIN_TOKEN).await;
    for property in ["[", "a[\"x", "[99999999999999999999]", ".a"] {
        let r = app
            .get(
                &format!(
                    "{p}/open//{id}?property={}",
                    property
                        .replace('"', "%22")
                        .replace('[', "%5B")
                        .replace(']', "%5D")
                ),
                ADMIN_TOKEN,
            )
            .await;
        assert_eq!(r.status, 400, "{property}: {}", r.text);
    }
    app.get(
        &format!("/api/esc/environments/{ORG}/app%2Fx/dev"),
        ADMIN_TOKEN,
    )
    .await
    .expect(400);
    app.get(&format!("{p}/versions?count=abc"), ADMIN_TOKEN)
        .await
        .expect(400);
    app.post_json(
        &format!("{p}/versions/tags"),
        ADMIN_TOKEN,
        serde_json::json!({"name": "a b", "revision": 1}),
    )
    .await
    .expect(400);
    app.post_json(
        &format!("{p}/versions/tags"),
        ADMIN_TOKEN,
        serde_json::json!({"name": "t", "revision": -1}),
    )
    .await
    .expect(400);
    app.post_json(
        &format!("{p}/tags"),
        ADMIN_TOKEN,
        serde_json::json!({"name": "x".repeat(300), "value": "v"}),
    )
    .await
    .expect(400);
}
