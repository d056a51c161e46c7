//! A JWT issuer's signing key for tests: an EC P-256 key, its public JWK (what
//! a JWKS document lists) and ES256 signing with its `kid`.

use base64::Engine as _;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

/// An EC P-256 signing key and its JWK.
pub struct Signer {
    /// the key id, in the JWK and in every header
    pub kid: String,
    /// the private key (PKCS#8 PEM)
    pub pem: String,
    /// the public JWK
    pub jwk: Value,
}

/// A fresh key named `kid`.
pub fn signer(kid: &str) -> Signer {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = key.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Signer {
        kid: kid.into(),
        pem: key.serialize_pem(),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                    "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}),
    }
}

impl Signer {
    /// `claims` signed ES256 with this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        encode(
            &header,
            claims,
            &EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }
}
