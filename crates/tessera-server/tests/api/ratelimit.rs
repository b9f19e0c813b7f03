//! The per-token request rate limit: off by default; when set, 429 with `Retry-After`.

use std::num::NonZeroU32;

use tessera_store::tokens::TokenOwner;

use crate::helpers::{TestApp, ADMIN_TOKEN, ORG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_setting_tokens_are_not_limited() {
    let app = TestApp::spawn().await;
    for _ in 0..60 {
        app.get(&format!("/api/esc/environments/{ORG}"), ADMIN_TOKEN)
            .await
            .expect(200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let app = TestApp::spawn_configured(|c| c.rate_limit_per_token = NonZeroU32::new(5)).await;
    let list = format!("/api/esc/environments/{ORG}");
    for _ in 0..5 {
        app.get(&list, ADMIN_TOKEN).await.expect(200);
    }
    let r = app.get(&list, ADMIN_TOKEN).await.expect(429);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After is sent")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    assert!(r.json()["message"].as_str().unwrap().contains("per second"));

    // Another token has its own budget.
    let other = app.token(TokenOwner::User("admin".into()), None).await;
    app.get(&list, &other).await.expect(200);

    // After the wait, the token works again.
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    app.get(&list, ADMIN_TOKEN).await.expect(200);
}
