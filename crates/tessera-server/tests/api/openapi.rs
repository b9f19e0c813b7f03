//! The OpenAPI document: served, and naming every route the server answers.

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_exists_and_the_sdk_routes_are_documented() {
    let app = TestApp::spawn().await;
    let r = app
        .send(app.request(reqwest::Method::GET, "/api/openapi.json", None))
        .await
        .expect(200);
    let doc = r.json();
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, ops) in paths {
        if !path.starts_with("/api/") {
            continue;
        }
        let concrete = path
            .replace("{org}", "acme")
            .replace("{project}", "app")
            .replace("{env}", "dev")
            .replace("{version}", "1")
            .replace(['{', '}'], "");
        for (method, op) in ops.as_object().unwrap() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // Without a token an existing route answers 401; a missing one 404 or 405. The
            // one route documented without security (the token exchange) reads its
            // credential from the body, so an empty request is a 400.
            let needs_token = op["security"].as_array().is_none_or(|s| !s.is_empty());
            let r = app.send(app.request(m, &concrete, None)).await;
            let expected = if needs_token { 401 } else { 400 };
            assert_eq!(
                r.status, expected,
                "{method} {path} ({concrete}): {}",
                r.text
            );
            checked += 1;
        }
    }
    assert!(checked >= 55, "{checked}");
    for (path, method) in [
        ("/api/esc/environments/{org}", "get"),
        ("/api/esc/environments/{org}/yaml/check", "post"),
        ("/api/esc/environments/{org}/{project}/{env}", "patch"),
        (
            "/api/esc/environments/{org}/{project}/{env}/open//{id}",
            "get",
        ),
        (
            "/api/esc/environments/{org}/{project}/{env}/versions/{version}/open",
            "post",
        ),
        (
            "/api/esc/environments/{org}/{project}/{env}/versions/tags/{tag}",
            "patch",
        ),
        (
            "/api/esc/environments/{org}/{project}/{env}/tags/{tag}",
            "delete",
        ),
        ("/api/orgs/{org}/auditlogs", "get"),
        ("/api/orgs/{org}/access-review", "get"),
        ("/api/user", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not documented"
        );
        assert!(paths[path][method]["x-tessera-access"].is_string());
    }
}
