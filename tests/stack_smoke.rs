//! The HTTP stack stands up on real parts: PostgREST answers with the service
//! key and refuses a forged one; the Edge Functions are served.
#![allow(clippy::unwrap_used)] // tests and benchmarks fail loudly by design

mod common;

use common::stack::Stack;
use common::TestDb;

#[tokio::test]
async fn postgrest_and_the_functions_answer_on_the_test_database() {
    let stack = Stack::start(TestDb::new().await, &[]).await;
    let root = stack
        .http
        .get(format!("{}/", stack.rest_url))
        .bearer_auth(&stack.service_key)
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);

    let forged = callsync::jwt::sign(
        &callsync::jwt::claims("service_role", None, 3600),
        b"some-other-secret-of-32-characters!!",
    );
    let refused = stack
        .http
        .get(format!("{}/", stack.rest_url))
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "a token signed with another secret is refused"
    );

    let ping = stack
        .http
        .get(format!("{}/ping", stack.functions_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    let body: serde_json::Value = ping.json().await.unwrap();
    assert_eq!(body["ok"], true);
}
