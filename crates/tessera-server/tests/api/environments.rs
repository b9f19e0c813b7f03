//! The ESC environment API: definitions, updates, check, open, sessions, revisions, tags.

use serde_json::json;

use crate::helpers::{TestApp, ADMIN_TOKEN, ORG};

fn env_path(name: &str) -> String {
    format!("/api/esc/environments/{ORG}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_get_and_open() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "").await;
    let yaml = "values:\n  greeting: hello\n  password:\n    fn::secret: hunter2-very-secret\n  nested:\n    list: [1, {x: y}]\n";
    let r = app
        .patch_yaml(&env_path("app/dev"), ADMIN_TOKEN, yaml)
        .await
        .expect(200);
    assert_eq!(r.header("pulumi-esc-revision"), Some("2"));
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert!(r.json().get("diagnostics").is_none(), "{}", r.text);

    let r = app.get(&env_path("app/dev"), ADMIN_TOKEN).await.expect(200);
    assert_eq!(r.header("content-type"), Some("application/x-yaml"));
    assert_eq!(r.header("pulumi-esc-revision"), Some("2"));
    assert!(!r.text.contains("hunter2"), "{}", r.text);
    assert!(r.text.contains("ciphertext"), "{}", r.text);
    assert!(r.text.contains("greeting: hello"));

    // The ciphertext form is accepted back unchanged.
    let again = r.text.clone();
    app.patch_yaml(&env_path("app/dev"), ADMIN_TOKEN, &again)
        .await
        .expect(200);

    let r = app
        .get(&format!("{}/decrypt", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert!(r.text.contains("hunter2-very-secret"), "{}", r.text);

    let r = app
        .post(
            &format!("{}/open?duration=1h", env_path("app/dev")),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json().as_object().unwrap().len(), 1, "{}", r.text);
    let r = app
        .get(&format!("{}/open/{id}", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert!(r.header("content-type").unwrap().contains("json"));
    let props = &r.json()["properties"];
    assert_eq!(props["greeting"]["value"], "hello");
    assert!(
        props["greeting"]["trace"]["def"]["begin"]["line"].is_number(),
        "{props}"
    );
    assert_eq!(props["password"]["value"], "hunter2-very-secret");
    assert_eq!(props["password"]["secret"], true);
    assert_eq!(
        props["nested"]["value"]["list"]["value"][1]["value"]["x"]["value"],
        "y"
    );
    assert!(props["nested"]["value"]["list"]["value"][0]["trace"].is_object());

    let r = app
        .get(
            &format!(
                "{}/open//{id}?property=nested.list[1].x",
                env_path("app/dev")
            ),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    assert_eq!(r.json()["value"], "y");
    app.get(
        &format!("{}/open//{id}?property=nope", env_path("app/dev")),
        ADMIN_TOKEN,
    )
    .await
    .expect(404);
    app.get(
        &format!("{}/open/unknown-session", env_path("app/dev")),
        ADMIN_TOKEN,
    )
    .await
    .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_errors_is_400_with_diagnostics_and_saves_nothing() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  a: 1\n").await;
    let r = app
        .patch_yaml(
            &env_path("app/dev"),
            ADMIN_TOKEN,
            "values:\n  a: ${nope.missing}\n",
        )
        .await
        .expect(400);
    let j = r.json();
    let d = &j["diagnostics"][0];
    assert!(d["summary"].as_str().is_some_and(|s| !s.is_empty()), "{j}");
    assert_eq!(d["range"]["environment"], "app/dev");
    assert!(d["range"]["begin"]["line"].is_number() && d["range"]["end"]["byte"].is_number());
    let r = app.get(&env_path("app/dev"), ADMIN_TOKEN).await.expect(200);
    assert_eq!(r.text, "values:\n  a: 1\n");
    assert_eq!(r.header("pulumi-esc-revision"), Some("2"));
    // Broken YAML too.
    app.patch_yaml(&env_path("app/dev"), ADMIN_TOKEN, "values: [")
        .await
        .expect(400);
    let r = app
        .get(&format!("{}/versions", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(r.json().as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_mismatch_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  a: 1\n").await;
    let r = app.get(&env_path("app/dev"), ADMIN_TOKEN).await.expect(200);
    let tag = r.header("etag").unwrap().to_owned();
    let ok = app
        .send(
            app.request(
                reqwest::Method::PATCH,
                &env_path("app/dev"),
                Some(ADMIN_TOKEN),
            )
            .header("If-Match", &tag)
            .body("values:\n  a: 2\n"),
        )
        .await
        .expect(200);
    assert_eq!(ok.header("pulumi-esc-revision"), Some("3"));
    for header in ["If-Match", "ETag"] {
        app.send(
            app.request(
                reqwest::Method::PATCH,
                &env_path("app/dev"),
                Some(ADMIN_TOKEN),
            )
            .header(header, &tag)
            .body("values:\n  a: 3\n"),
        )
        .await
        .expect(409);
    }
    // Without a precondition the last writer wins.
    app.patch_yaml(&env_path("app/dev"), ADMIN_TOKEN, "values:\n  a: 4\n")
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_diagnostics_and_never_decrypts() {
    let app = TestApp::spawn().await;
    let path = format!("/api/esc/environments/{ORG}/yaml/check");
    let r = app
        .post_yaml(
            &path,
            ADMIN_TOKEN,
            "values:\n  a: hello\n  s:\n    fn::secret: shh\n",
        )
        .await
        .expect(200);
    let j = r.json();
    assert!(j.get("diagnostics").is_none_or(|d| d.is_null()), "{j}");
    assert_eq!(j["properties"]["a"]["value"], "hello");
    assert_eq!(j["properties"]["s"]["value"], "[secret]");
    let r = app
        .post_yaml(&path, ADMIN_TOKEN, "values:\n  a: ${b}\n")
        .await
        .expect(400);
    assert!(r.json()["diagnostics"]
        .as_array()
        .is_some_and(|d| !d.is_empty()));

    app.create_env("app/dev", "values:\n  s:\n    fn::secret: topsecret\n")
        .await;
    let r = app
        .post(&format!("{}/check", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert!(!r.text.contains("topsecret"), "{}", r.text);
    assert_eq!(r.json()["properties"]["s"]["secret"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_merge_and_missing_imports_are_diagnostics() {
    let app = TestApp::spawn().await;
    app.create_env(
        "shared/base",
        "values:\n  region: eu\n  key:\n    fn::secret: base-secret\n",
    )
    .await;
    app.create_env("app/dev", "imports:\n  - shared/base\nvalues:\n  name: dev\n  copy: ${environments.shared.base.region}\n").await;
    let id = app.open_session("app/dev", ADMIN_TOKEN).await;
    let r = app
        .get(&format!("{}/open/{id}", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    let p = &r.json()["properties"];
    assert_eq!(p["region"]["value"], "eu");
    assert_eq!(p["key"]["value"], "base-secret");
    assert_eq!(p["copy"]["value"], "eu");
    assert_eq!(p["region"]["trace"]["def"]["environment"], "shared/base");

    let r = app
        .patch_yaml(
            &env_path("app/dev"),
            ADMIN_TOKEN,
            "imports:\n  - shared/nothing\nvalues:\n  a: 1\n",
        )
        .await
        .expect(400);
    assert!(r.text.contains("shared/nothing"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_input_mistake_is_a_400_diagnostic() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "").await;
    // The definition checks (providers are unknown during a check) ...
    app.patch_yaml(
        &env_path("app/dev"),
        ADMIN_TOKEN,
        "values:\n  creds:\n    fn::open::aws-login:\n      oidc:\n        sessionName: s\n",
    )
    .await
    .expect(200);
    // ... but opening it names the missing input, before any request is sent.
    let r = app
        .post(&format!("{}/open", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(400);
    assert!(r.text.contains("roleArn"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_and_revision_tags() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  v: 2\n").await;
    app.patch_yaml(&env_path("app/dev"), ADMIN_TOKEN, "values:\n  v: 3\n")
        .await
        .expect(200);
    let r = app
        .get(&format!("{}/versions", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    let nums: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_u64().unwrap())
        .collect();
    assert_eq!(nums, [3, 2, 1]);
    assert_eq!(r.json()[0]["tags"], json!(["latest"]));
    let r = app
        .get(
            &format!("{}/versions?before=3&count=1", env_path("app/dev")),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(r.json()[0]["number"], 2);

    let r = app
        .get(&format!("{}/versions/2", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(r.text, "values:\n  v: 2\n");
    app.get(&format!("{}/versions/9", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(404);

    let tags = format!("{}/versions/tags", env_path("app/dev"));
    app.post_json(&tags, ADMIN_TOKEN, json!({"name": "stable", "revision": 2}))
        .await
        .expect(204);
    app.post_json(&tags, ADMIN_TOKEN, json!({"name": "stable", "revision": 2}))
        .await
        .expect(409);
    let r = app
        .get(
            &format!("{}/versions/stable", env_path("app/dev")),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    assert_eq!(r.text, "values:\n  v: 2\n");
    let r = app.get(&tags, ADMIN_TOKEN).await.expect(200);
    let j = r.json();
    assert_eq!(j["nextToken"], "");
    let names: Vec<&str> = j["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["latest", "stable"]);
    app.patch_json(
        &format!("{tags}/stable"),
        ADMIN_TOKEN,
        json!({"revision": 3}),
    )
    .await
    .expect(204);
    let r = app
        .get(&format!("{tags}/stable"), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(r.json()["revision"], 3);
    app.post_json(&tags, ADMIN_TOKEN, json!({"name": "latest", "revision": 1}))
        .await
        .expect(400);
    app.delete(&format!("{tags}/stable"), ADMIN_TOKEN)
        .await
        .expect(204);
    app.get(&format!("{tags}/stable"), ADMIN_TOKEN)
        .await
        .expect(404);

    let r = app
        .post(
            &format!("{}/versions/2/open", env_path("app/dev")),
            ADMIN_TOKEN,
        )
        .await
        .expect(200);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = app
        .get(&format!("{}/open/{id}", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(r.json()["properties"]["v"]["value"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_tags_list_get_update_delete() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "").await;
    let tags = format!("{}/tags", env_path("app/dev"));
    let r = app.get(&tags, ADMIN_TOKEN).await.expect(200);
    assert_eq!(r.json(), json!({"tags": {}, "nextToken": ""}));
    let r = app
        .post_json(
            &tags,
            ADMIN_TOKEN,
            json!({"name": "team", "value": "payments"}),
        )
        .await
        .expect(200);
    assert_eq!(r.json()["value"], "payments");
    assert!(r.json()["editorLogin"].is_string() && r.json()["created"].is_string());
    let r = app
        .patch_json(&format!("{tags}/team"), ADMIN_TOKEN, json!({"currentTag": {"value": "payments"}, "newTag": {"name": "owner", "value": "billing"}}))
        .await
        .expect(200);
    assert_eq!(r.json()["name"], "owner");
    let r = app.get(&tags, ADMIN_TOKEN).await.expect(200);
    assert_eq!(r.json()["tags"]["owner"]["value"], "billing");
    assert!(r.json()["tags"].get("team").is_none());
    app.get(&format!("{tags}/owner"), ADMIN_TOKEN)
        .await
        .expect(200);
    app.delete(&format!("{tags}/owner"), ADMIN_TOKEN)
        .await
        .expect(204);
    app.get(&format!("{tags}/owner"), ADMIN_TOKEN)
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_clone_and_delete() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  s:\n    fn::secret: cloned-secret\n")
        .await;
    app.create_env("app/prod", "").await;
    let r = app
        .get(&format!("/api/esc/environments/{ORG}"), ADMIN_TOKEN)
        .await
        .expect(200);
    let j = r.json();
    let names: Vec<String> = j["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["project"].as_str().unwrap(),
                e["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["app/dev", "app/prod"]);
    assert_eq!(j["environments"][0]["organization"], ORG);
    app.post_json(
        &format!("/api/esc/environments/{ORG}"),
        ADMIN_TOKEN,
        json!({"project": "app", "name": "dev"}),
    )
    .await
    .expect(409);

    app.post_json(
        &format!("{}/clone", env_path("app/dev")),
        ADMIN_TOKEN,
        json!({"project": "app", "name": "copy"}),
    )
    .await
    .expect(204);
    let r = app
        .get(&format!("{}/decrypt", env_path("app/copy")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert!(r.text.contains("cloned-secret"), "{}", r.text);

    app.delete(&env_path("app/prod"), ADMIN_TOKEN)
        .await
        .expect(204);
    app.get(&env_path("app/prod"), ADMIN_TOKEN)
        .await
        .expect(404);
    app.delete(&env_path("app/prod"), ADMIN_TOKEN)
        .await
        .expect(404);
}
