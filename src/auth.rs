//! Bearer tokens (spec 5.1): HS256 JWTs with claims `sub`, `org`, `role` and `exp`.
//!
//! Tokens are checked once at the edge into [`Claims`]; handlers never see raw tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Why a request is not authenticated. The messages are safe to show to clients.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token (Authorization: Bearer <JWT>)")]
    MissingToken,
    /// The token is expired.
    #[error("the token has expired")]
    Expired,
    /// Bad signature, wrong algorithm, missing claim, unknown role…
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// The role a token claims. For GraphQL the stored role of the agent decides; ingest
/// authorizes by this claim alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// An organization admin.
    Admin,
    /// A team supervisor.
    Supervisor,
    /// A support agent.
    Agent,
    /// The chat platform pushing events.
    Service,
}

impl TokenRole {
    /// Whether this role may push events to `/v1/events`.
    pub fn may_ingest(self) -> bool {
        matches!(self, TokenRole::Admin | TokenRole::Service)
    }
}

impl std::str::FromStr for TokenRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(TokenRole::Admin),
            "supervisor" => Ok(TokenRole::Supervisor),
            "agent" => Ok(TokenRole::Agent),
            "service" => Ok(TokenRole::Service),
            other => Err(format!(
                "unknown role `{other}` (admin, supervisor, agent, service)"
            )),
        }
    }
}

/// The verified claims of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Agent id, or a service name.
    pub sub: String,
    /// Organization id.
    pub org: String,
    /// Claimed role.
    pub role: TokenRole,
    /// Expiry, seconds since the Unix epoch. Required: a token without it is refused.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Shortest HS256 secret accepted: 32 bytes, the size of the hash (RFC 7518 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuses a secret shorter than [`MIN_SECRET_BYTES`]: tokens signed with it could be
/// forged by guessing it.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the JWT secret (COCKPIT_JWT_SECRET) has {} bytes; at least {MIN_SECRET_BYTES} are \
             needed (e.g. `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    Ok(())
}

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    /// Keys for an HS256 secret.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // A token that is not valid yet (`nbf`, when present) is refused too.
        validation.validate_nbf = true;
        // Clocks of the platform and of this service may differ a little.
        validation.leeway = 5;
        Keys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// A signed token for `sub` in `org` with `role`, valid for `ttl`.
    pub fn issue(&self, org: &str, sub: &str, role: TokenRole, ttl: Duration) -> String {
        let now = unix_now();
        let claims = Claims {
            sub: sub.to_string(),
            org: org.to_string(),
            role,
            exp: now + ttl.as_secs(),
            iat: Some(now),
        };
        // Encoding HS256 claims of plain strings and numbers cannot fail.
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims")
    }

    /// The verified claims of a raw token.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                        AuthError::Invalid("the token is not valid yet (`nbf`)".into())
                    }
                    jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(claim) => {
                        AuthError::Invalid(format!("missing claim `{claim}`"))
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                        AuthError::Invalid("bad signature".into())
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        AuthError::Invalid("only HS256 tokens are accepted".into())
                    }
                    _ => AuthError::Invalid("malformed token".into()),
                }
            })?;
        let claims = data.claims;
        if claims.org.is_empty() || claims.sub.is_empty() {
            return Err(AuthError::Invalid("empty `org` or `sub` claim".into()));
        }
        // No id of ours holds NUL (PostgreSQL's text cannot): such a token names nobody.
        if claims.org.contains('\0') || claims.sub.contains('\0') {
            return Err(AuthError::Invalid(
                "the `org` or `sub` claim holds a NUL character".into(),
            ));
        }
        Ok(claims)
    }

    /// The verified claims of the request's `Authorization: Bearer` header.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, AuthError> {
        self.verify(bearer_token(headers)?)
    }
}

/// The raw token of an `Authorization: Bearer <token>` header value.
pub fn bearer_from_value(value: &str) -> Result<&str, AuthError> {
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token.trim())
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?
        .to_str()
        .map_err(|_| AuthError::MissingToken)?;
    bearer_from_value(value)
}

/// Parses a time-to-live such as `90s`, `30m`, `8h` or `7d` (a bare number is seconds).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 30m, 8h or 7d"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}` (s, m, h, d)")),
    };
    number
        .checked_mul(unit_secs)
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is not a positive duration"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_with_its_claims() {
        let keys = Keys::new("s3cret");
        let token = keys.issue(
            "org-1",
            "a-1",
            TokenRole::Supervisor,
            Duration::from_secs(60),
        );
        let claims = keys.verify(&token).unwrap();
        assert_eq!(
            (claims.org.as_str(), claims.sub.as_str(), claims.role),
            ("org-1", "a-1", TokenRole::Supervisor)
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = Keys::new("one").issue("o", "s", TokenRole::Service, Duration::from_secs(60));
        assert!(matches!(
            Keys::new("two").verify(&token),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn ttl_units_parse_and_nonsense_is_refused() {
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("3w").is_err());
    }

    #[test]
    fn only_bearer_headers_carry_a_token() {
        assert_eq!(bearer_from_value("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_from_value("bearer  abc "), Ok("abc"));
        assert_eq!(bearer_from_value("Basic abc"), Err(AuthError::MissingToken));
        assert_eq!(bearer_from_value("Bearer "), Err(AuthError::MissingToken));
    }
}
