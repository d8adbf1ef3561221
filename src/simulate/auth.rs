//! A stand-in for Supabase Auth (GoTrue) that knows only the seed's three demo
//! users, so the console signs in locally through the same REST calls it makes
//! against a deployed project: `POST /auth/v1/token?grant_type=password`
//! (`{email, password}`), `…?grant_type=refresh_token` (`{refresh_token}`,
//! rotated on every use) and `POST /auth/v1/logout` (Bearer access token), with
//! GoTrue's answers (`access_token`, `expires_in`, `expires_at`,
//! `refresh_token`, `user`; errors `{code, error_code, msg}`) and the gateway's
//! `apikey` check. Nothing else GoTrue does (sign-up, e-mail, MFA, OAuth).
//!
//! Served only with `callsync simulate --local-login`: the demo password is
//! public (README), so whoever reaches this port can become any demo user.
//! Passwords and tokens are never logged.
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// One user of `supabase/seed.sql` the local sign-in knows.
pub struct DemoUser {
    /// `auth.users.id`, as `callsync.app_user.user_id` holds it.
    pub id: &'static str,
    pub email: &'static str,
    pub role: &'static str,
    /// How the local sign-in screen names the account.
    pub label: &'static str,
}

/// The demo users of `supabase/seed.sql`.
pub const DEMO_USERS: [DemoUser; 3] = [
    DemoUser {
        id: "00000000-0000-4000-8000-0000000000a0",
        email: "admin@callsync.test",
        role: "admin",
        label: "Administrator (widzi wszystko)",
    },
    DemoUser {
        id: "00000000-0000-4000-8000-0000000000b0",
        email: "kierownik@callsync.test",
        role: "manager",
        label: "Kierownik zespołu Demo team Warszawa",
    },
    DemoUser {
        id: "00000000-0000-4000-8000-0000000000c1",
        email: "doradca@callsync.test",
        role: "advisor",
        label: "Doradca Olga Nowak",
    },
];

/// The demo users' password. Public on purpose (README, the local sign-in
/// screen): it guards nothing but a demo on one's own machine.
pub const DEMO_PASSWORD: &str = "callsync-demo";

/// Access token lifetime, GoTrue's default `JWT_EXPIRY`.
const ACCESS_TOKEN_SECS: i64 = 3600;
/// A session (its chain of refresh tokens) ends a day after sign-in, so the
/// table of a long-running demo cannot grow without bound.
const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The state of the stand-in: the key it signs with and the live sessions.
pub struct LocalAuth {
    jwt_secret: String,
    /// The anon key the console must send as `apikey` (`None`: any value).
    anon_key: Option<String>,
    /// `iss` of the tokens, as GoTrue sets it: its own URL.
    issuer: String,
    /// Refresh token -> its session. A refresh token is used once.
    sessions: Mutex<HashMap<String, Session>>,
}

struct Session {
    user: usize,
    id: String,
    signed_in: Instant,
    signed_in_unix: i64,
}

impl LocalAuth {
    pub fn new(jwt_secret: String, anon_key: Option<String>, issuer: String) -> Self {
        Self {
            jwt_secret,
            anon_key,
            issuer,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Answers a request under `/auth/v1`; `path` is the rest (`/token`, `/logout`).
    pub fn handle(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        if method == Method::OPTIONS {
            return preflight();
        }
        if let Some(refused) = self.api_key_refusal(headers) {
            return refused;
        }
        let answer = match (method, path) {
            (&Method::POST, "/token") => {
                let params = form_or_json(headers, body);
                match query_param(query, "grant_type").as_deref() {
                    Some("password") => self.password_grant(&params),
                    Some("refresh_token") => self.refresh_grant(&params),
                    _ => error(
                        StatusCode::BAD_REQUEST,
                        "validation_failed",
                        "unsupported_grant_type",
                    ),
                }
            }
            (&Method::POST, "/logout") => self.logout(headers),
            _ => error(StatusCode::NOT_FOUND, "not_found", "Not found"),
        };
        with_cors(answer)
    }

    /// The gateway in front of GoTrue (Kong) refuses requests without the
    /// project's key; checking it here keeps the console honest about sending it.
    fn api_key_refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let given = headers.get("apikey").and_then(|v| v.to_str().ok());
        let refused = |message: &str, hint: &str| {
            with_cors(
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"message": message, "hint": hint})),
                )
                    .into_response(),
            )
        };
        match (given, &self.anon_key) {
            (None, _) => Some(refused(
                "No API key found in request",
                "No `apikey` request header or url param was found.",
            )),
            (Some(_), None) => None,
            (Some(given), Some(want)) if same_secret(given, want) => None,
            (Some(_), Some(_)) => Some(refused(
                "Invalid API key",
                "Double check your Supabase `anon` or `service_role` API key.",
            )),
        }
    }

    fn password_grant(&self, params: &HashMap<String, String>) -> Response {
        let email = params
            .get("email")
            .map(|e| e.trim().to_lowercase())
            .unwrap_or_default();
        if email.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "missing email or phone",
            );
        }
        let password = params.get("password").map(String::as_str).unwrap_or("");
        // the password is compared whoever the e-mail names, and both failures
        // answer alike, as GoTrue does: no hint which accounts exist
        let password_ok = same_secret(password, DEMO_PASSWORD);
        match DEMO_USERS.iter().position(|u| u.email == email) {
            Some(user) if password_ok => {
                tracing::info!(role = DEMO_USERS[user].role, "local sign-in of a demo user");
                let session = Session {
                    user,
                    id: uuid::Uuid::new_v4().to_string(),
                    signed_in: Instant::now(),
                    signed_in_unix: chrono::Utc::now().timestamp(),
                };
                self.issue(session)
            }
            _ => {
                tracing::info!("local sign-in refused: wrong e-mail or password");
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_credentials",
                    "Invalid login credentials",
                )
            }
        }
    }

    fn refresh_grant(&self, params: &HashMap<String, String>) -> Response {
        let Some(token) = params.get("refresh_token").filter(|t| !t.is_empty()) else {
            return error(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "refresh_token required",
            );
        };
        // removed whether or not it is still good: a refresh token works once
        let session = lock(&self.sessions).remove(token);
        match session {
            Some(s) if s.signed_in.elapsed() < SESSION_LIFETIME => self.issue(s),
            _ => error(
                StatusCode::BAD_REQUEST,
                "refresh_token_not_found",
                "Invalid Refresh Token: Refresh Token Not Found",
            ),
        }
    }

    /// Ends the session of the Bearer token: its refresh tokens stop working.
    /// The access token itself stays valid until it expires, as with GoTrue.
    fn logout(&self, headers: &HeaderMap) -> Response {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return error(
                StatusCode::UNAUTHORIZED,
                "no_authorization",
                "This endpoint requires a Bearer token",
            );
        };
        let Some(claims) = crate::jwt::verify(token, self.jwt_secret.as_bytes()) else {
            return error(
                StatusCode::FORBIDDEN,
                "bad_jwt",
                "invalid JWT: unable to parse or verify signature",
            );
        };
        let session_id = claims.get("session_id").and_then(Value::as_str);
        lock(&self.sessions).retain(|_, s| Some(s.id.as_str()) != session_id);
        StatusCode::NO_CONTENT.into_response()
    }

    /// A new access token and refresh token for `session`.
    fn issue(&self, session: Session) -> Response {
        let user = &DEMO_USERS[session.user];
        let now = chrono::Utc::now().timestamp();
        let expires_at = now + ACCESS_TOKEN_SECS;
        let app_metadata = json!({"provider": "email", "providers": ["email"]});
        // the claims a Supabase access token carries; our policies read sub and role
        let claims = json!({
            "aud": "authenticated",
            "exp": expires_at,
            "iat": now,
            "iss": self.issuer,
            "sub": user.id,
            "email": user.email,
            "phone": "",
            "app_metadata": app_metadata,
            "user_metadata": {},
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": "password", "timestamp": session.signed_in_unix}],
            "session_id": session.id,
            "is_anonymous": false,
        });
        let access_token = crate::jwt::sign(&claims, self.jwt_secret.as_bytes());
        // 122 random bits from the operating system (uuid v4 uses getrandom)
        let refresh_token = uuid::Uuid::new_v4().simple().to_string();
        {
            let mut sessions = lock(&self.sessions);
            sessions.retain(|_, s| s.signed_in.elapsed() < SESSION_LIFETIME);
            sessions.insert(refresh_token.clone(), session);
        }
        (
            StatusCode::OK,
            axum::Json(json!({
                "access_token": access_token,
                "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_SECS,
                "expires_at": expires_at,
                "refresh_token": refresh_token,
                "user": {
                    "id": user.id,
                    "aud": "authenticated",
                    "role": "authenticated",
                    "email": user.email,
                    "app_metadata": app_metadata,
                    "user_metadata": {},
                },
            })),
        )
            .into_response()
    }
}

/// Equal secrets, compared in constant time over their SHA-256 (so the length
/// of the expected one does not leak either).
fn same_secret(given: &str, want: &str) -> bool {
    let (given, want) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(want.as_bytes()),
    );
    given.as_slice().ct_eq(want.as_slice()).into()
}

/// GoTrue reads its parameters from a JSON object or a form body.
fn form_or_json(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        return url::form_urlencoded::parse(body).into_owned().collect();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect(),
        _ => HashMap::new(),
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// GoTrue's error body (the shape without an API-version header).
fn error(status: StatusCode, error_code: &str, msg: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": status.as_u16(), "error_code": error_code, "msg": msg})),
    )
        .into_response()
}

/// A console served from another origin may call the stand-in, as it may call
/// Supabase Auth.
fn with_cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

fn preflight() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS")
        .header(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "apikey, authorization, content-type, x-client-info",
        )
        .body(Body::empty())
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "local-auth-test-secret-with-32-characters";

    fn auth() -> LocalAuth {
        LocalAuth::new(
            SECRET.into(),
            Some("anon-key".into()),
            "http://sim/auth/v1".into(),
        )
    }

    fn headers(apikey: Option<&str>, bearer: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        if let Some(k) = apikey {
            h.insert("apikey", k.parse().unwrap());
        }
        if let Some(t) = bearer {
            h.insert(
                header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
        }
        h
    }

    async fn call(
        a: &LocalAuth,
        path: &str,
        query: &str,
        h: &HeaderMap,
        body: Value,
    ) -> (u16, Value) {
        let r = a.handle(&Method::POST, path, query, h, body.to_string().as_bytes());
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn sign_in(a: &LocalAuth, email: &str, password: &str) -> (u16, Value) {
        call(
            a,
            "/token",
            "grant_type=password",
            &headers(Some("anon-key"), None),
            json!({"email": email, "password": password}),
        )
        .await
    }

    #[tokio::test]
    async fn a_demo_user_signs_in_and_gets_a_supabase_shaped_session() {
        let a = auth();
        let (status, body) = sign_in(&a, " Admin@Callsync.test ", DEMO_PASSWORD).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], ACCESS_TOKEN_SECS);
        assert_eq!(body["user"]["email"], "admin@callsync.test");
        let claims =
            crate::jwt::verify(body["access_token"].as_str().unwrap(), SECRET.as_bytes()).unwrap();
        assert_eq!(claims["sub"], DEMO_USERS[0].id);
        assert_eq!(claims["role"], "authenticated");
        assert_eq!(claims["aud"], "authenticated");
        assert_eq!(claims["exp"], body["expires_at"]);
    }

    #[tokio::test]
    async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
        let a = auth();
        let wrong = sign_in(&a, "admin@callsync.test", "callsync-dem").await;
        let unknown = sign_in(&a, "nobody@callsync.test", DEMO_PASSWORD).await;
        assert_eq!(wrong.0, 400);
        assert_eq!(wrong.1["error_code"], "invalid_credentials");
        assert_eq!(wrong, unknown);
        assert_eq!(
            sign_in(&a, "", DEMO_PASSWORD).await.1["error_code"],
            "validation_failed"
        );
    }

    #[tokio::test]
    async fn the_api_key_is_required_and_checked() {
        let a = auth();
        let body = json!({"email": "admin@callsync.test", "password": DEMO_PASSWORD});
        let (status, none) = call(
            &a,
            "/token",
            "grant_type=password",
            &headers(None, None),
            body.clone(),
        )
        .await;
        assert_eq!(
            (status, none["message"].as_str()),
            (401, Some("No API key found in request"))
        );
        let (status, bad) = call(
            &a,
            "/token",
            "grant_type=password",
            &headers(Some("other"), None),
            body,
        )
        .await;
        assert_eq!(
            (status, bad["message"].as_str()),
            (401, Some("Invalid API key"))
        );
    }

    #[tokio::test]
    async fn a_refresh_token_works_once_and_not_after_sign_out() {
        let a = auth();
        let h = headers(Some("anon-key"), None);
        let (_, first) = sign_in(&a, "doradca@callsync.test", DEMO_PASSWORD).await;
        let refresh = |t: &Value| json!({"refresh_token": t["refresh_token"]});
        let (status, second) = call(
            &a,
            "/token",
            "grant_type=refresh_token",
            &h,
            refresh(&first),
        )
        .await;
        assert_eq!(status, 200, "{second}");
        assert_ne!(second["refresh_token"], first["refresh_token"]);
        let (status, reused) = call(
            &a,
            "/token",
            "grant_type=refresh_token",
            &h,
            refresh(&first),
        )
        .await;
        assert_eq!(
            (status, reused["error_code"].as_str()),
            (400, Some("refresh_token_not_found"))
        );

        let access = second["access_token"].as_str().unwrap();
        let (status, _) = call(
            &a,
            "/logout",
            "",
            &headers(Some("anon-key"), Some(access)),
            Value::Null,
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = call(
            &a,
            "/token",
            "grant_type=refresh_token",
            &h,
            refresh(&second),
        )
        .await;
        assert_eq!(status, 400);
        let (status, _) = call(
            &a,
            "/logout",
            "",
            &headers(Some("anon-key"), Some("forged.token.x")),
            Value::Null,
        )
        .await;
        assert_eq!(status, 403);
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret(DEMO_PASSWORD, DEMO_PASSWORD));
        assert!(!same_secret("callsync-demo ", DEMO_PASSWORD));
        assert!(!same_secret("", DEMO_PASSWORD));
    }
}
