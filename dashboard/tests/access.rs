//! Access control and live updates against a real PostgreSQL: 401 for
//! missing, wrong, revoked and expired tokens; 403 by role and by tenant
//! scope; sessions by login form and one-time link; rate limiting; the audit
//! trail; tenant isolation through crafted parameters; server-sent events
//! from NOTIFY with Last-Event-ID resume.

mod common;

use std::time::Duration;

use common::Env;
use prescient_dashboard::auth::{self, Role};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn tokens_roles_sessions_and_audit() {
    let env = Env::start(|c| c.login_attempts = 3).await;
    env.seed().await;
    let (_, admin) = env.token("root", Role::Admin, None).await;
    let (_, operator) = env.token("ops", Role::Operator, None).await;
    let (_, viewer) = env.token("eyes", Role::Viewer, None).await;

    // 401: missing, malformed, wrong.
    assert_eq!(env.get("/api/v1/me", None).await.0, 401);
    assert_eq!(env.get("/api/v1/overview", Some("nonsense")).await.0, 401);
    let wrong = format!("psk_{}", "A".repeat(43));
    assert_eq!(env.get("/api/v1/overview", Some(&wrong)).await.0, 401);
    let res = env
        .http
        .get(format!("{}/api/v1/me", env.base))
        .header("authorization", format!("Basic {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "only Bearer");

    let (status, me) = env.get("/api/v1/me", Some(&viewer)).await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "eyes");
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["tenant"], Value::Null);

    // 403 by role: tokens and audit are admin-only.
    for token in [&operator, &viewer] {
        assert_eq!(env.get("/api/v1/tokens", Some(token)).await.0, 403);
        assert_eq!(env.get("/api/v1/audit", Some(token)).await.0, 403);
        let sneaky = Some(r#"{"name":"sneaky","role":"admin"}"#);
        let (status, _) = env
            .send(Method::POST, "/api/v1/tokens", token, sneaky)
            .await;
        assert_eq!(status, 403);
        assert_eq!(env.get("/api/v1/overview", Some(token)).await.0, 200);
    }

    // Admin creates a token through the API, which works, then revokes it.
    let new = r#"{"name":"made-by-api","role":"viewer","tenant":"acme","expires_in_s":3600}"#;
    let (status, created) = env
        .send(Method::POST, "/api/v1/tokens", &admin, Some(new))
        .await;
    assert_eq!(status, 201);
    let new_token = created["token"].as_str().unwrap().to_string();
    let new_id = created["id"].as_i64().unwrap();
    assert_eq!(created["tenant"], "acme");
    assert!(created["expires_at_ms"].as_i64().is_some());
    assert_eq!(env.get("/api/v1/me", Some(&new_token)).await.0, 200);
    let (_, list) = env.get("/api/v1/tokens", Some(&admin)).await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert!(
        !list.to_string().contains("psk_"),
        "tokens are never listed"
    );
    let path = format!("/api/v1/tokens/{new_id}");
    assert_eq!(env.send(Method::DELETE, &path, &admin, None).await.0, 204);
    let (status, body) = env.get("/api/v1/me", Some(&new_token)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("the token was revoked"))
    );
    let missing = "/api/v1/tokens/999999";
    assert_eq!(env.send(Method::DELETE, missing, &admin, None).await.0, 404);
    let root = Some(r#"{"name":"x","role":"root"}"#);
    let (status, _) = env.send(Method::POST, "/api/v1/tokens", &admin, root).await;
    assert_eq!(status, 400, "unknown role");

    // Expired token.
    let (expired_id, expired) = env.token("old", Role::Admin, None).await;
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expired_id)
        .execute(&env.pool)
        .await
        .unwrap();
    let (status, body) = env.get("/api/v1/overview", Some(&expired)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("the token or session expired"))
    );

    // Login with JSON: a signed, HttpOnly, SameSite=Strict cookie.
    let res = env
        .login("application/json", format!(r#"{{"token":"{viewer}"}}"#))
        .await;
    assert_eq!(res.status(), 204);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in [
        "prescient_session=v1.",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=",
        "Path=/",
    ] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let with_cookie = |cookie: String| {
        let http = env.http.clone();
        let url = format!("{}/api/v1/me", env.base);
        async move {
            let res = http.get(url).header("cookie", cookie).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap())
        }
    };
    let (status, body) = with_cookie(format!("other=1; {cookie}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"eyes\""));
    // A tampered cookie (another token id, same signature) is refused.
    let tampered = cookie.replacen("v1.", "v1.1", 1);
    assert_eq!(with_cookie(tampered).await.0, 401);

    // Login with the form: redirect to the app.
    let res = env
        .login(
            "application/x-www-form-urlencoded",
            format!("token={operator}"),
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    assert!(res.headers().contains_key("set-cookie"));

    // One-time login link: works once.
    let viewer_id: i64 = sqlx::query_scalar("SELECT id FROM api_tokens WHERE name = 'eyes'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let code = auth::create_login_code(&env.pool, viewer_id, Duration::from_secs(60))
        .await
        .unwrap();
    let res = env
        .http
        .get(format!("{}/login?code={code}", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let link_cookie = res.headers()["set-cookie"].to_str().unwrap();
    let link_cookie = link_cookie.split(';').next().unwrap().to_string();
    assert_eq!(with_cookie(link_cookie.clone()).await.0, 200);
    let res = env
        .http
        .get(format!("{}/login?code={code}", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a code works once");

    // Revoking the token ends its sessions at once.
    auth::revoke_token(&env.pool, viewer_id).await.unwrap();
    assert_eq!(with_cookie(cookie.clone()).await.0, 401);
    assert_eq!(with_cookie(link_cookie).await.0, 401);

    // Logout clears the cookie.
    let res = env
        .http
        .post(format!("{}/api/v1/logout", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // Rate limiting: after 3 failures (one bad code above counted) the 4th attempt is refused.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = env
            .login("application/json", format!(r#"{{"token":"{wrong}"}}"#))
            .await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(statuses, [401, 401, 429]);
    let res = env
        .login("application/json", format!(r#"{{"token":"{admin}"}}"#))
        .await;
    assert_eq!(res.status(), 429, "even a good token waits out the limit");

    // The audit trail: logins, token changes and denials; never a secret.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, audit) = env.get("/api/v1/audit?limit=1000", Some(&admin)).await;
    assert_eq!(status, 200);
    let has = |action: &str, outcome: &str| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == action && e["outcome"] == outcome)
    };
    for (action, outcome) in [
        ("login", "ok"),
        ("login", "denied"),
        ("token-create", "ok"),
        ("token-revoke", "ok"),
        ("request", "denied"),
    ] {
        assert!(
            has(action, outcome),
            "audit has {action}/{outcome}: {audit}"
        );
    }
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE detail LIKE '%psk_%' OR detail LIKE '%' || $1 || '%' OR detail LIKE '%v1.%'",
    )
    .bind(&code)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "no token, code or cookie in the audit log");
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM api_tokens")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert!(
        stored.iter().all(|h| h.len() == 32),
        "only hashes are stored"
    );
}

#[tokio::test]
async fn tenant_tokens_see_only_their_tenant() {
    let env = Env::start(|_| {}).await;
    env.seed().await;
    let (_, acme) = env.token("acme-viewer", Role::Viewer, Some("acme")).await;
    let (_, acme_admin) = env.token("acme-admin", Role::Admin, Some("acme")).await;

    let (status, me) = env.get("/api/v1/me", Some(&acme)).await;
    assert_eq!((status, me["tenant"].as_str()), (200, Some("acme")));

    // Overview: acme's rows only (2 endpoints x 7), no forecasts or sizes.
    for path in ["/api/v1/overview", "/api/v1/overview?tenant=globex"] {
        let (status, o) = env.get(path, Some(&acme)).await;
        assert_eq!(status, 200);
        let services = o["services"].as_array().unwrap();
        assert_eq!(services.len(), 1, "{o}");
        assert_eq!(services[0]["service"], "checkout");
        assert_eq!(services[0]["requests_per_min"], 14);
        assert_eq!(services[0]["forecast"], Value::Null);
        assert_eq!(services[0]["desired"], Value::Null);
        assert!((o["events_per_s"].as_f64().unwrap() - 14.0 / 60.0).abs() < 1e-9);
        assert_eq!(o["freshness_p99_ms"], Value::Null);
    }

    let (_, list) = env.get("/api/v1/services?tenant=globex", Some(&acme)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["service"], "checkout");
    assert_eq!(list[0]["requests_per_min"], 14);

    // Series: acme's sum, never globex's 1000s nor the service total (100).
    for path in [
        "/api/v1/services/checkout/series?range=1h",
        "/api/v1/services/checkout/series?range=1h&tenant=globex",
        "/api/v1/services/checkout/series?range=1h&tenant=",
    ] {
        let (status, s) = env.get(path, Some(&acme)).await;
        assert_eq!(status, 200, "{path}");
        let req: Vec<f64> = s["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert!(!req.is_empty());
        assert!(req.iter().all(|r| *r == 14.0), "{path}: {req:?}");
    }
    // Another tenant's service through the path: nothing.
    for path in [
        "/api/v1/services/globex-only/series?range=1h",
        "/api/v1/services/globex-only%27%20OR%20tenant%3D%27globex/series?range=1h",
    ] {
        let (status, s) = env.get(path, Some(&acme)).await;
        if status == 200 {
            assert!(
                s["requests"].as_array().unwrap().iter().all(Value::is_null),
                "{path}: {s}"
            );
        } else {
            assert_eq!(status, 400, "{path}");
        }
    }

    // Cross-tenant routes are refused, whatever the role.
    for token in [&acme, &acme_admin] {
        for path in [
            "/api/v1/services/checkout/forecast",
            "/api/v1/services/checkout/forecast-history",
            "/api/v1/services/checkout/replicas",
            "/api/v1/decisions",
            "/api/v1/decisions?tenant=acme",
            "/api/v1/pipeline",
            "/api/v1/tokens",
            "/api/v1/audit",
        ] {
            let (status, body) = env.get(path, Some(token)).await;
            assert_eq!(status, 403, "{path}: {body}");
        }
    }
}

/// Reads the stream until `pred` holds for what arrived, or panics after 10 s.
async fn read_until(res: &mut reqwest::Response, buf: &mut String, pred: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pred(buf) {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .unwrap_or_else(|_| panic!("timed out; got so far:\n{buf}"))
            .unwrap()
            .expect("stream ended");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// (id, event, data) of each complete event in `buf`.
fn events(buf: &str) -> Vec<(Option<u64>, String, String)> {
    buf.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("event:")))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            };
            (
                field("id:").and_then(|v| v.parse().ok()),
                field("event:").unwrap_or_default(),
                field("data:").unwrap_or_default(),
            )
        })
        .collect()
}

async fn notify(env: &Env, channel: &str, payload: &str) {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&env.pool)
        .await
        .unwrap();
}

async fn open_stream(env: &Env, token: &str, last_id: Option<u64>) -> reqwest::Response {
    let http = reqwest::Client::new();
    let mut req = http
        .get(format!("{}/api/v1/stream", env.base))
        .bearer_auth(token);
    if let Some(id) = last_id {
        req = req.header("last-event-id", id.to_string());
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    res
}

#[tokio::test]
async fn stream_fans_out_notifications_and_resumes() {
    let env = Env::start(|_| {}).await;
    let (_, admin) = env.token("admin", Role::Admin, None).await;
    let (_, acme) = env.token("acme", Role::Viewer, Some("acme")).await;
    assert_eq!(
        env.http
            .get(format!("{}/api/v1/stream", env.base))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let mut res = open_stream(&env, &admin, None).await;
    let mut tenant_res = open_stream(&env, &acme, None).await;
    let mut buf = String::new();
    read_until(&mut res, &mut buf, |b| b.contains("event: hello")).await;
    // The listener may still be connecting: notify until the first event shows.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        notify(
            &env,
            "prescient_frontier",
            r#"{"topic":"user-events","frontier_ms":1}"#,
        )
        .await;
        if tokio::time::timeout(Duration::from_millis(300), async {
            read_until(&mut res, &mut buf, |b| b.contains("event: frontier")).await
        })
        .await
        .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event arrived: {buf}"
        );
    }
    notify(
        &env,
        "prescient_rows",
        r#"{"topic":"user-events","minute_ms":60000}"#,
    )
    .await;
    notify(
        &env,
        "prescient_decisions",
        r#"{"id":"d1","service":"checkout"}"#,
    )
    .await;
    notify(
        &env,
        "prescient_forecasts",
        r#"{"service":"checkout","issued_at":"x"}"#,
    )
    .await;
    notify(
        &env,
        "prescient_actions",
        r#"{"decision_id":"d1","service":"checkout","outcome":"applied"}"#,
    )
    .await;
    read_until(&mut res, &mut buf, |b| b.contains("event: action")).await;
    let got = events(&buf);
    let kinds: Vec<&str> = got.iter().map(|(_, k, _)| k.as_str()).collect();
    let tail = &kinds[kinds.len() - 4..];
    assert_eq!(tail, ["rows", "decision", "forecast", "action"], "{buf}");
    let ids: Vec<u64> = got.iter().filter_map(|(id, _, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let rows = got.iter().find(|(_, k, _)| k == "rows").unwrap();
    let payload: Value = serde_json::from_str(&rows.2).unwrap();
    assert_eq!(payload["minute_ms"], 60000);

    // The tenant stream sees progress events, never decisions or forecasts.
    let mut tbuf = String::new();
    read_until(&mut tenant_res, &mut tbuf, |b| b.contains("event: rows")).await;
    notify(
        &env,
        "prescient_rows",
        r#"{"topic":"user-events","minute_ms":120000}"#,
    )
    .await;
    read_until(&mut tenant_res, &mut tbuf, |b| b.contains("120000")).await;
    assert!(
        !tbuf.contains("event: decision")
            && !tbuf.contains("event: forecast")
            && !tbuf.contains("event: action"),
        "{tbuf}"
    );

    // Disconnect after the `rows` event, miss two, resume from it.
    let resume_from = rows.0.unwrap();
    drop(res);
    notify(
        &env,
        "prescient_decisions",
        r#"{"id":"d2","service":"checkout"}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut res = open_stream(&env, &admin, Some(resume_from)).await;
    let mut buf = String::new();
    read_until(&mut res, &mut buf, |b| b.contains("\"d2\"")).await;
    let replayed: Vec<(Option<u64>, String, String)> = events(&buf)
        .into_iter()
        .filter(|(id, _, _)| id.is_some())
        .collect();
    let kinds: Vec<&str> = replayed.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        &kinds[..4],
        ["decision", "forecast", "action", "rows"],
        "{buf}"
    );
    assert!(replayed.iter().all(|(id, _, _)| id.unwrap() > resume_from));
    assert!(!buf.contains("event: reset"));

    // An id from before this process (or older than the buffer): reset.
    let mut res = open_stream(&env, &admin, Some(1)).await;
    let mut buf = String::new();
    read_until(&mut res, &mut buf, |b| b.contains("event: reset")).await;
}
