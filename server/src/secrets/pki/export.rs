//! The shapes Vault answers keys and certificates in: `format` (`pem`, `der`
//! as base64, `pem_bundle`) and `private_key_format` (`der`, the default: the
//! key's own form — PKCS#1 for RSA, SEC1 for EC, PKCS#8 for Ed25519 — or
//! `pkcs8`). Keys are stored as PKCS#8; the native forms are cut out of it
//! (and, for EC, given the curve ring leaves out). Every copy of key
//! material here is zeroizing.

use zeroize::Zeroizing;

use super::keys::KeySpec;
use super::x509::{der_to_pem, pem_blocks};
use crate::logical::LogicalError;

/// How certificates are written in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Pem,
    Der,
    PemBundle,
}

/// `format` and `private_key_format`, checked.
pub(super) fn formats(
    format: Option<String>,
    key_format: Option<String>,
) -> Result<(Format, bool), LogicalError> {
    let format = match format.as_deref().unwrap_or("pem") {
        "" | "pem" => Format::Pem,
        "der" => Format::Der,
        "pem_bundle" => Format::PemBundle,
        _ => {
            return Err(LogicalError::invalid(
                "the \"format\" path parameter must be \"pem\", \"der\", or \"pem_bundle\"",
            ))
        }
    };
    let pkcs8 = match key_format.as_deref().unwrap_or("") {
        "" | "der" | "pem" => false,
        "pkcs8" => true,
        _ => {
            return Err(LogicalError::invalid(
                "the \"private_key_format\" parameter must be \"der\", \"pem\" or \"pkcs8\"",
            ))
        }
    };
    Ok((format, pkcs8))
}

/// One certificate (PEM) in the answer's format (PEM, or base64 DER).
pub(super) fn cert(pem: &str, format: Format) -> Result<String, LogicalError> {
    match format {
        Format::Der => {
            use base64::Engine as _;
            Ok(base64::engine::general_purpose::STANDARD.encode(super::x509::pem_to_der(pem)?))
        }
        _ => Ok(pem.to_owned()),
    }
}

/// Splits one DER element: (tag, content, the rest).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn tlv(tag: u8, content: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![tag]);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The private key inside a PKCS#8 document (PKCS#1 for RSA, SEC1 for EC).
fn pkcs8_inner(pkcs8: &[u8]) -> Option<&[u8]> {
    let (0x30, body, _) = element(pkcs8)? else {
        return None;
    };
    let (0x02, _, body) = element(body)? else {
        return None;
    };
    let (0x30, _, body) = element(body)? else {
        return None;
    };
    match element(body)? {
        (0x04, inner, _) => Some(inner),
        _ => None,
    }
}

/// SEC1 `ECPrivateKey` with the curve's `[0]` parameters (ring's PKCS#8
/// leaves them out of the inner key, OpenSSL wants them in the SEC1 form).
fn sec1_with_curve(inner: &[u8], bits: u32) -> Option<Zeroizing<Vec<u8>>> {
    const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P384: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    let (0x30, body, _) = element(inner)? else {
        return None;
    };
    let (0x02, version, rest) = element(body)? else {
        return None;
    };
    let (0x04, key, mut rest) = element(rest)? else {
        return None;
    };
    let mut out = Zeroizing::new(Vec::new());
    out.extend_from_slice(&tlv(0x02, version));
    out.extend_from_slice(&tlv(0x04, key));
    let has_params = element(rest).is_some_and(|(tag, _, _)| tag == 0xa0);
    if !has_params {
        let oid: &[u8] = if bits == 384 { &P384 } else { &P256 };
        out.extend_from_slice(&tlv(0xa0, oid));
    }
    while let Some((tag, content, next)) = element(rest) {
        out.extend_from_slice(&tlv(tag, content));
        rest = next;
    }
    Some(tlv(0x30, &out))
}

/// The private key, stored as PKCS#8 PEM, in the answer's form.
pub(super) fn private_key(
    pkcs8_pem: &str,
    spec: KeySpec,
    format: Format,
    pkcs8: bool,
) -> Result<Zeroizing<String>, LogicalError> {
    let blocks = pem_blocks(pkcs8_pem, "PRIVATE KEY")?;
    let der = Zeroizing::new(blocks.into_iter().next().ok_or(LogicalError::Corrupt)?);
    let (label, native): (&str, Zeroizing<Vec<u8>>) = match spec {
        _ if pkcs8 => ("PRIVATE KEY", der.clone()),
        KeySpec::Ed25519 => ("PRIVATE KEY", der.clone()),
        KeySpec::Rsa(_) => (
            "RSA PRIVATE KEY",
            Zeroizing::new(pkcs8_inner(&der).ok_or(LogicalError::Corrupt)?.to_vec()),
        ),
        KeySpec::Ec(bits) => (
            "EC PRIVATE KEY",
            sec1_with_curve(pkcs8_inner(&der).ok_or(LogicalError::Corrupt)?, bits)
                .ok_or(LogicalError::Corrupt)?,
        ),
    };
    Ok(Zeroizing::new(match format {
        Format::Der => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&*native)
        }
        _ => der_to_pem(&native, label),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn key(spec: KeySpec) -> Zeroizing<String> {
        super::super::keys::generate(spec).await.unwrap().1
    }

    #[tokio::test]
    async fn ec_keys_come_out_as_sec1_with_their_curve() {
        let pem = key(KeySpec::Ec(256)).await;
        let sec1 = private_key(&pem, KeySpec::Ec(256), Format::Pem, false).unwrap();
        assert!(
            sec1.starts_with("-----BEGIN EC PRIVATE KEY-----\n"),
            "{}",
            sec1.len()
        );
        let der = pem_blocks(&sec1, "EC PRIVATE KEY").unwrap().remove(0);
        let (tag, body, rest) = element(&der).unwrap();
        assert_eq!((tag, rest.len()), (0x30, 0));
        let (_, version, body) = element(body).unwrap();
        assert_eq!(version, [1]);
        let (tag, secret, body) = element(body).unwrap();
        assert_eq!((tag, secret.len()), (0x04, 32));
        let (tag, curve, body) = element(body).unwrap();
        assert_eq!(tag, 0xa0);
        assert_eq!(
            curve,
            [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        );
        let (tag, public, _) = element(body).unwrap();
        assert_eq!(tag, 0xa1);
        let pair = super::super::keys::load(&pem).unwrap();
        assert!(public.ends_with(pair.public_key_raw()));
        // pkcs8 asked for: the stored form; der: base64 of the SEC1 DER.
        let p8 = private_key(&pem, KeySpec::Ec(256), Format::Pem, true).unwrap();
        assert_eq!(
            p8.as_str(),
            der_to_pem(&pem_blocks(&pem, "PRIVATE KEY").unwrap()[0], "PRIVATE KEY")
        );
        let b64 = private_key(&pem, KeySpec::Ec(256), Format::Der, false).unwrap();
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .unwrap(),
            der
        );
    }

    #[tokio::test]
    async fn rsa_keys_come_out_as_pkcs1_and_ed25519_as_pkcs8() {
        let pem = key(KeySpec::Rsa(2048)).await;
        let p1 = private_key(&pem, KeySpec::Rsa(2048), Format::Pem, false).unwrap();
        let der = pem_blocks(&p1, "RSA PRIVATE KEY").unwrap().remove(0);
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        let parsed = rsa::RsaPrivateKey::from_pkcs1_der(&der).unwrap();
        assert_eq!(rsa::traits::PublicKeyParts::size(&parsed), 256);
        let pem = key(KeySpec::Ed25519).await;
        let out = private_key(&pem, KeySpec::Ed25519, Format::Pem, false).unwrap();
        assert!(out.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn formats_are_checked() {
        assert_eq!(formats(None, None).unwrap(), (Format::Pem, false));
        assert_eq!(
            formats(Some("pem_bundle".into()), Some("pkcs8".into())).unwrap(),
            (Format::PemBundle, true)
        );
        assert!(formats(Some("bogus".into()), None).is_err());
        assert!(formats(None, Some("jwk".into())).is_err());
    }
}
