//! API tokens: generated with a CSPRNG, stored only as SHA-256 hashes, compared in constant time.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix that makes a leaked token easy to recognise in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "mc_";

/// A fresh token: the prefix and 40 alphanumeric characters (about 238 bits of entropy).
pub fn generate_token() -> String {
    format!("{TOKEN_PREFIX}{}", Alphanumeric.sample_string(&mut rand::rng(), 40))
}

/// The stored form of a token: lowercase hex SHA-256.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `token` hashes to `stored_hash`, without leaking through timing where they differ.
pub fn verify_token(token: &str, stored_hash: &str) -> bool {
    let candidate = hash_token(token);
    candidate.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_and_prefixed() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 40);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verification_accepts_the_token_and_rejects_others() {
        let token = generate_token();
        let stored = hash_token(&token);
        assert!(verify_token(&token, &stored));
        assert!(!verify_token(&generate_token(), &stored));
        assert!(!verify_token(&token, "short"));
        assert!(!verify_token("", &stored));
    }
}
