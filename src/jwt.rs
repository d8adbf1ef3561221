//! HS256 JSON Web Tokens as PostgREST 12 and Supabase's legacy keys use them:
//! the local stack mints its `anon` and `service_role` keys with this, and tests
//! mint user tokens; the simulator's local sign-in stand-in mints and checks
//! its demo users' tokens. Production keys come from Supabase, never from here.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Signs `claims` with `secret` (HS256). Returns the compact token.
pub fn sign(claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The claims of `token` when it is an HS256 token signed with `secret` and
/// not expired; `None` otherwise (no reason given: callers answer 401/403).
/// The signature is compared in constant time.
pub fn verify(token: &str, secret: &[u8]) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (header_b64, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
    // only HS256: accepting the header's choice is how "alg: none" tokens get in
    if header.get("alg").and_then(serde_json::Value::as_str) != Some("HS256") {
        return None;
    }
    let given = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let expected = hmac_sha256(secret, format!("{header_b64}.{payload}").as_bytes());
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_slice(),
        expected.as_slice(),
    )) {
        return None;
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp").and_then(serde_json::Value::as_i64)?;
    (exp > chrono::Utc::now().timestamp()).then_some(claims)
}

/// The claims of a Supabase-style key or user token for `role`, valid for `ttl_secs`.
pub fn claims(role: &str, sub: Option<&str>, ttl_secs: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = serde_json::json!({ "role": role, "iss": "callsync-local", "iat": now, "exp": now + ttl_secs });
    if let Some(sub) = sub {
        c["sub"] = serde_json::Value::String(sub.to_string());
        c["aud"] = serde_json::Value::String("authenticated".to_string());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_its_own_tokens_and_refuses_changed_expired_or_foreign_ones() {
        let token = sign(&claims("authenticated", Some("u1"), 60), b"secret");
        assert_eq!(verify(&token, b"secret").unwrap()["sub"], "u1");
        assert!(verify(&token, b"other secret").is_none());
        let expired = sign(&claims("authenticated", Some("u1"), -1), b"secret");
        assert!(verify(&expired, b"secret").is_none());
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"u2","exp":9999999999}"#);
        assert!(verify(
            &format!("{}.{forged_payload}.{}", parts[0], parts[2]),
            b"secret"
        )
        .is_none());
        let none_alg = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        assert!(verify(&format!("{none_alg}.{}.", parts[1]), b"secret").is_none());
        assert!(verify("not a token", b"secret").is_none());
    }

    #[test]
    fn a_token_has_three_parts_and_a_verifiable_signature() {
        let token = sign(&serde_json::json!({"role": "anon"}), b"secret");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let expected = URL_SAFE_NO_PAD.encode(hmac_sha256(
            b"secret",
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
        ));
        assert_eq!(parts[2], expected);
    }
}
