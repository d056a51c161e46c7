//! TOTP (RFC 6238) codes with HMAC-SHA1, 6 digits and 30-second steps by default,
//! verified in constant time within ±1 step, and the `otpauth://` URL and QR code
//! that authenticator apps read. Replay protection (each step at most once) is the
//! caller's: [`verify`] returns the step that matched.

use crate::crypto::ct_eq;

/// Step length in seconds.
pub const PERIOD: u64 = 30;
/// Code length.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of now.
pub const SKEW: u64 = 1;

/// The code for time step `step` (RFC 4226 HOTP over the step counter).
pub fn code_at_step(secret: &[u8], step: u64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let bin = mac
        .get(offset..offset + 4)
        .map(|b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]))
        .unwrap_or(0);
    format!(
        "{:0width$}",
        bin % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The step matched by `code` at unix time `now`, if any, checking every step of
/// the window (no early exit) and comparing in constant time.
pub fn verify(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now / PERIOD;
    let mut matched = None;
    for step in current.saturating_sub(SKEW)..=current + SKEW {
        if ct_eq(code_at_step(secret, step).as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    matched
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URL for an authenticator app.
pub fn otpauth_url(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// A QR code of `text` as PNG bytes (black on white, 4-module quiet zone).
pub fn qr_png(text: &str) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    let width = code.width();
    let scale = 6usize;
    let quiet = 4usize;
    let side = (width + 2 * quiet) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for y in 0..width {
        for x in 0..width {
            if colors.get(y * width + x) == Some(&qrcode::Color::Dark) {
                for dy in 0..scale {
                    let row = (y + quiet) * scale + dy;
                    let start = row * side + (x + quiet) * scale;
                    if let Some(run) = pixels.get_mut(start..start + scale) {
                        run.fill(0);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let side = u32::try_from(side).map_err(|_| "QR code too large".to_owned())?;
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, truncated to 6 digits.
        for (time, code) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at_step(RFC_SECRET, time / PERIOD), code, "t={time}");
        }
    }

    #[test]
    fn verify_accepts_one_step_of_skew_and_returns_the_step() {
        let now = 1_111_111_111;
        let step = now / PERIOD;
        assert_eq!(
            verify(RFC_SECRET, &code_at_step(RFC_SECRET, step), now),
            Some(step)
        );
        assert_eq!(
            verify(RFC_SECRET, &code_at_step(RFC_SECRET, step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            verify(RFC_SECRET, &code_at_step(RFC_SECRET, step + 1), now),
            Some(step + 1)
        );
        assert_eq!(verify(RFC_SECRET, "12345", now), None);
        assert_eq!(verify(RFC_SECRET, "abcdef", now), None);
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
    }

    #[test]
    fn qr_png_is_a_png() {
        let png = qr_png(&otpauth_url("Coffer", "alice", RFC_SECRET)).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(otpauth_url("Coffer", "a b", b"x").contains("totp/Coffer:a%20b?secret="));
    }

    proptest! {
        /// A code from outside the ±1 step window never verifies (unless it
        /// happens to equal an in-window code, which the test accounts for).
        #[test]
        fn codes_outside_the_window_never_verify(secret in proptest::collection::vec(any::<u8>(), 10..32), now in 100_000u64..4_000_000_000, offset in 2u64..1000, before in any::<bool>()) {
            let current = now / PERIOD;
            let step = if before { current - offset.min(current) } else { current + offset };
            let code = code_at_step(&secret, step);
            let in_window = (current - 1..=current + 1).any(|s| code_at_step(&secret, s) == code);
            if !in_window {
                prop_assert_eq!(verify(&secret, &code, now), None);
            }
        }
    }
}
