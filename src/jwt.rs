//! HS256 JSON Web Tokens as PostgREST 12 and Supabase's legacy keys use them:
//! the local stack mints its `anon` and `service_role` keys with this, and tests
//! mint user tokens. Production keys come from Supabase, never from here.
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
