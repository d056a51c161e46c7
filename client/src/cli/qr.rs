//! The TOTP enrolment QR code for any terminal: the module matrix (4-module quiet zone,
//! small enough that the whole picture fits 80x24 in half blocks), its renderings (`ansi`
//! with explicit black-on-white colours, which scans on light and dark backgrounds; plain
//! `utf8` for a dark or `utf8-light` for a light background; `png:FILE`), and the layout
//! that puts the otpauth URL beside the code.

use std::io::Write;
use std::path::PathBuf;

use qrcode::{Color, EcLevel, QrCode, Version};

use super::CliError;

/// Modules of quiet zone on each side (what the QR specification asks for).
pub const QUIET: usize = 4;
/// The largest symbol whose half-block rendering, quiet zone included, fits 24 rows
/// with a prompt below it: version 5, 37 modules + 8 = 45 → 23 rows.
const MAX_FITTING_VERSION: i16 = 5;

/// How to show the QR code (`-qr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrStyle {
    /// Half blocks with explicit black and white (ANSI colours): any background.
    Ansi,
    /// Half blocks drawn in the terminal's colour where the code is light: dark backgrounds.
    Utf8,
    /// Half blocks drawn where the code is dark: light backgrounds (and paper).
    Utf8Light,
    /// A PNG file (mode 0600: it holds the secret), nothing drawn in the terminal.
    Png(PathBuf),
}

impl QrStyle {
    /// `ansi`, `utf8`, `utf8-light` or `png:FILE`.
    pub fn parse(value: &str) -> Result<QrStyle, CliError> {
        match value.trim() {
            "ansi" => Ok(QrStyle::Ansi),
            "utf8" | "utf8-dark" => Ok(QrStyle::Utf8),
            "utf8-light" => Ok(QrStyle::Utf8Light),
            v => match v.strip_prefix("png:") {
                Some(file) if !file.is_empty() => Ok(QrStyle::Png(PathBuf::from(file))),
                _ => Err(CliError::Usage(format!(
                    "invalid -qr {v:?}: use ansi, utf8 (dark background), utf8-light or png:FILE"
                ))),
            },
        }
    }

    /// Without `-qr`: colours on a terminal (unless `NO_COLOR` or `TERM=dumb`), else
    /// plain half blocks.
    pub fn default_for(terminal: bool, no_color: bool, dumb: bool) -> QrStyle {
        if terminal && !no_color && !dumb {
            QrStyle::Ansi
        } else {
            QrStyle::Utf8
        }
    }
}

/// The text the QR code holds: the otpauth URL without the parameters that only repeat
/// the Key URI format's defaults (SHA1, 6 digits, 30 s), so the code stays small.
pub fn qr_payload(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !matches!(*p, "algorithm=SHA1" | "digits=6" | "period=30"))
        .collect();
    format!("{base}?{}", kept.join("&"))
}

/// The module matrix with its quiet zone, row-major, `true` = dark.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Modules per side, quiet zone included.
    pub size: usize,
    dark: Vec<bool>,
}

impl Matrix {
    /// The QR code of `text`: the strongest error correction that keeps the symbol small
    /// enough for 80x24, else the smallest symbol.
    pub fn new(text: &str) -> Result<Matrix, CliError> {
        let fail =
            |e: qrcode::types::QrError| CliError::Failed(format!("cannot draw the QR code: {e}"));
        let mut chosen = None;
        for level in [EcLevel::Q, EcLevel::M, EcLevel::L] {
            let code = QrCode::with_error_correction_level(text.as_bytes(), level).map_err(fail)?;
            let fits = matches!(code.version(), Version::Normal(v) if v <= MAX_FITTING_VERSION);
            if fits || level == EcLevel::L {
                chosen = Some(code);
                break;
            }
        }
        let code = match chosen {
            Some(c) => c,
            None => QrCode::new(text.as_bytes()).map_err(fail)?,
        };
        let inner = code.width();
        let size = inner + 2 * QUIET;
        let colors = code.to_colors();
        let mut dark = vec![false; size * size];
        for y in 0..inner {
            for x in 0..inner {
                dark[(y + QUIET) * size + x + QUIET] = colors[y * inner + x] == Color::Dark;
            }
        }
        Ok(Matrix { size, dark })
    }

    /// Whether the module at (x, y) is dark; outside the matrix is light.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.size && y < self.size && self.dark[y * self.size + x]
    }

    /// Text rows of the half-block rendering.
    pub fn rows(&self) -> usize {
        self.size.div_ceil(2)
    }
}

/// Half blocks with explicit colours: `▀` with the top module as foreground and the
/// bottom one as background; white is bright white, black is black.
pub fn render_ansi(m: &Matrix) -> Vec<String> {
    let mut lines = Vec::with_capacity(m.rows());
    for row in 0..m.rows() {
        let mut line = String::new();
        let mut last = None;
        for x in 0..m.size {
            let colours = (m.is_dark(x, 2 * row), m.is_dark(x, 2 * row + 1));
            if last != Some(colours) {
                let fg = if colours.0 { 30 } else { 97 };
                let bg = if colours.1 { 40 } else { 107 };
                line.push_str(&format!("\x1b[{fg};{bg}m"));
                last = Some(colours);
            }
            line.push('▀');
        }
        line.push_str("\x1b[0m");
        lines.push(line);
    }
    lines
}

/// Half blocks in the terminal's own colour, drawn where the code is light
/// (`ink_on_dark = false`, for dark backgrounds) or dark (for light backgrounds).
pub fn render_plain(m: &Matrix, ink_on_dark: bool) -> Vec<String> {
    (0..m.rows())
        .map(|row| {
            (0..m.size)
                .map(|x| {
                    let ink = |y| m.is_dark(x, y) == ink_on_dark;
                    match (ink(2 * row), ink(2 * row + 1) && 2 * row + 1 < m.size) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    }
                })
                .collect()
        })
        .collect()
}

/// PNG bytes: black on white, 8 pixels per module, quiet zone included.
pub fn png_bytes(m: &Matrix) -> Result<Vec<u8>, CliError> {
    const SCALE: usize = 8;
    let side = m.size * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..side {
        for x in 0..side {
            if m.is_dark(x / SCALE, y / SCALE) {
                pixels[y * side + x] = 0;
            }
        }
    }
    let mut out = Vec::new();
    let px = u32::try_from(side).map_err(|_| CliError::Failed("QR code too large".into()))?;
    let mut encoder = png::Encoder::new(&mut out, px, px);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let fail = |e: png::EncodingError| CliError::Failed(format!("cannot write the PNG: {e}"));
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&pixels).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

/// Write the PNG to `path`, created with mode 0600 (the picture is the TOTP secret).
pub fn write_png(m: &Matrix, path: &std::path::Path) -> Result<(), CliError> {
    let bytes = png_bytes(m)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let fail = |e: std::io::Error| {
        CliError::Failed(format!(
            "cannot write {}: {}",
            path.display(),
            super::args::io_reason(&e)
        ))
    };
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(&bytes).map_err(fail)
}

/// The text shown beside the code, wrapped to `width` columns: what to do, the key for
/// typing in by hand, and the otpauth URL (split at `width`, to be joined when copied).
pub fn side_text(url: &str, width: usize) -> Vec<String> {
    let width = width.max(16);
    let mut lines = wrap_words(
        "Scan this QR code with your authenticator app, or type the key in by hand:",
        width,
    );
    if let Some(secret) = url
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|p| p.strip_prefix("secret=")))
    {
        let groups: Vec<String> = secret
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        lines.push(String::new());
        lines.extend(wrap_words(&groups.join(" "), width));
    }
    lines.push(String::new());
    lines.push("otpauth URL:".into());
    lines.extend(
        url.as_bytes()
            .chunks(width)
            .map(|c| String::from_utf8_lossy(c).into_owned()),
    );
    lines
}

fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The picture `qr` (each line `qr_width` columns wide on screen) with `url`'s side text
/// beside it when `columns` leave room for it, below it otherwise.
pub fn layout(qr: &[String], qr_width: usize, url: &str, columns: usize) -> String {
    const GAP: usize = 2;
    const MIN_SIDE: usize = 24;
    let mut out = String::new();
    if columns >= qr_width + GAP + MIN_SIDE {
        let side = side_text(url, columns - qr_width - GAP);
        let rows = qr.len().max(side.len());
        for i in 0..rows {
            let left = qr.get(i).cloned().unwrap_or_else(|| " ".repeat(qr_width));
            let right = side.get(i).map(String::as_str).unwrap_or("");
            let line = if right.is_empty() {
                left
            } else {
                format!("{left}{}{right}", " ".repeat(GAP))
            };
            out.push_str(&line);
            out.push('\n');
        }
    } else {
        for line in qr {
            out.push_str(line);
            out.push('\n');
        }
        for line in side_text(url, columns.max(16)) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "otpauth://totp/Coffer:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Coffer&algorithm=SHA1&digits=6&period=30";
    const LONG_USER_URL: &str = "otpauth://totp/Coffer:alexandra.longname-ops?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Coffer&algorithm=SHA1&digits=6&period=30";

    /// A terminal's colours: default foreground and background luminance.
    struct Theme {
        fg: u8,
        bg: u8,
    }
    const LIGHT: Theme = Theme { fg: 20, bg: 250 };
    const DARK: Theme = Theme { fg: 235, bg: 25 };

    /// Paints rendered lines as a terminal with `theme` would: SGR 30/40 black,
    /// 97/107 white, 0 back to the theme; each cell is one module wide and two high.
    /// Returns a greyscale image (4 px per module, a margin of background around it).
    fn paint(lines: &[String], theme: &Theme) -> (usize, usize, Vec<u8>) {
        const PX: usize = 4;
        const MARGIN: usize = 3;
        let cols = lines
            .iter()
            .map(|l| visible(l).chars().count())
            .max()
            .unwrap();
        let (w, h) = (
            (cols + 2 * MARGIN) * PX,
            (lines.len() * 2 + 2 * MARGIN) * PX,
        );
        let mut img = vec![theme.bg; w * h];
        for (row, line) in lines.iter().enumerate() {
            let (mut fg, mut bg) = (theme.fg, theme.bg);
            let mut col = 0;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    let mut code = String::new();
                    for d in chars.by_ref() {
                        if d == 'm' {
                            break;
                        }
                        code.push(d);
                    }
                    for p in code.trim_start_matches('[').split(';') {
                        match p {
                            "0" => (fg, bg) = (theme.fg, theme.bg),
                            "30" => fg = 0,
                            "97" => fg = 255,
                            "40" => bg = 0,
                            "107" => bg = 255,
                            _ => {}
                        }
                    }
                    continue;
                }
                let (top, bottom) = match c {
                    '▀' => (fg, bg),
                    '▄' => (bg, fg),
                    '█' => (fg, fg),
                    _ => (bg, bg),
                };
                for (half, v) in [(0, top), (1, bottom)] {
                    for dy in 0..PX {
                        for dx in 0..PX {
                            let y = ((MARGIN + row * 2 + half) * PX) + dy;
                            let x = ((MARGIN + col) * PX) + dx;
                            img[y * w + x] = v;
                        }
                    }
                }
                col += 1;
            }
        }
        (w, h, img)
    }

    fn visible(line: &str) -> String {
        let mut out = String::new();
        let mut in_escape = false;
        for c in line.chars() {
            match c {
                '\x1b' => in_escape = true,
                'm' if in_escape => in_escape = false,
                _ if in_escape => {}
                c => out.push(c),
            }
        }
        out
    }

    fn decode(w: usize, h: usize, img: &[u8]) -> Option<String> {
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img[y * w + x]);
        let grids = prepared.detect_grids();
        grids
            .first()
            .and_then(|g| g.decode().ok())
            .map(|(_, text)| text)
    }

    #[test]
    fn payload_drops_only_default_parameters() {
        assert_eq!(
            qr_payload(URL),
            "otpauth://totp/Coffer:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Coffer"
        );
        let odd = "otpauth://totp/x?secret=AB&digits=8&period=30";
        assert_eq!(qr_payload(odd), "otpauth://totp/x?secret=AB&digits=8");
    }

    #[test]
    fn ansi_rendering_scans_on_light_and_dark_backgrounds() {
        let m = Matrix::new(&qr_payload(URL)).unwrap();
        let lines = render_ansi(&m);
        for theme in [LIGHT, DARK] {
            let (w, h, img) = paint(&lines, &theme);
            assert_eq!(
                decode(w, h, &img).as_deref(),
                Some(qr_payload(URL).as_str())
            );
        }
    }

    #[test]
    fn plain_renderings_scan_on_their_background() {
        let m = Matrix::new(&qr_payload(URL)).unwrap();
        let (w, h, img) = paint(&render_plain(&m, false), &DARK);
        assert_eq!(
            decode(w, h, &img).as_deref(),
            Some(qr_payload(URL).as_str())
        );
        let (w, h, img) = paint(&render_plain(&m, true), &LIGHT);
        assert_eq!(
            decode(w, h, &img).as_deref(),
            Some(qr_payload(URL).as_str())
        );
    }

    #[test]
    fn png_output_scans() {
        let m = Matrix::new(&qr_payload(URL)).unwrap();
        let bytes = png_bytes(&m).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        assert_eq!(
            decode(w, h, &buf[..w * h]).as_deref(),
            Some(qr_payload(URL).as_str())
        );
    }

    #[test]
    fn code_with_url_beside_fits_80_by_24() {
        for url in [URL, LONG_USER_URL] {
            let m = Matrix::new(&qr_payload(url)).unwrap();
            assert!(m.rows() <= 23, "{} rows for {url}", m.rows());
            let text = layout(&render_ansi(&m), m.size, url, 80);
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines.len() <= 23, "{} lines", lines.len());
            assert!(
                lines.iter().all(|l| visible(l).chars().count() <= 80),
                "{text}"
            );
            // The URL is beside the code, in pieces that join back to it.
            let side: Vec<String> = lines
                .iter()
                .map(|l| visible(l).chars().skip(m.size + 2).collect())
                .collect();
            let start = side.iter().position(|l| l == "otpauth URL:").unwrap();
            let joined: String = side[start + 1..]
                .iter()
                .take_while(|l| !l.is_empty())
                .cloned()
                .collect();
            assert_eq!(joined, url);
            // The quiet zone: the first and last rows are all white.
            assert!(render_ansi(&m)[0].starts_with("\x1b[97;107m"));
        }
    }

    #[test]
    fn narrow_terminals_get_the_text_below() {
        let m = Matrix::new(&qr_payload(URL)).unwrap();
        let text = layout(&render_plain(&m, false), m.size, URL, 50);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].chars().count(), m.size);
        assert!(lines.iter().all(|l| l.chars().count() <= 50));
    }

    #[test]
    fn styles_parse() {
        assert_eq!(QrStyle::parse("ansi").unwrap(), QrStyle::Ansi);
        assert_eq!(QrStyle::parse("utf8-light").unwrap(), QrStyle::Utf8Light);
        assert_eq!(
            QrStyle::parse("png:/tmp/q.png").unwrap(),
            QrStyle::Png(PathBuf::from("/tmp/q.png"))
        );
        assert!(QrStyle::parse("png:").is_err());
        assert!(QrStyle::parse("sixel").is_err());
        assert_eq!(QrStyle::default_for(true, false, false), QrStyle::Ansi);
        assert_eq!(QrStyle::default_for(true, true, false), QrStyle::Utf8);
        assert_eq!(QrStyle::default_for(false, false, false), QrStyle::Utf8);
    }
}
