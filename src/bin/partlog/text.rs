//! Rendering bytes and names for people: lossy UTF-8, truncation, escaping.

/// How many characters of a key or value `dump --records` shows.
pub const PREVIEW_CHARS: usize = 60;

/// `bytes` as lossy UTF-8, cut to `max_chars` characters; the flag says whether it was cut.
pub fn preview(bytes: &[u8], max_chars: usize) -> (String, bool) {
    // Only decode what can be shown: a character takes at most 4 bytes.
    let window = &bytes[..bytes
        .len()
        .min(max_chars.saturating_add(1).saturating_mul(4))];
    let lossy = String::from_utf8_lossy(window);
    let mut out = String::new();
    for (count, c) in lossy.chars().enumerate() {
        if count == max_chars {
            return (out, true);
        }
        out.push(c);
    }
    (out, window.len() < bytes.len())
}

/// A double-quoted rendering of `s` with control characters, quotes and backslashes escaped,
/// so that it stays on one line (the same escaping as the JSON output: a JSON string literal).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// A quoted preview of an optional key or value: `null`, or `"text"`, with `...` when cut.
pub fn quoted_preview(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".to_owned(),
        Some(b) => {
            let (s, cut) = preview(b, PREVIEW_CHARS);
            let mut q = quote(&s);
            if cut {
                q.push_str("...");
            }
            q
        }
    }
}

/// `n` bytes in a human unit (`1.5 MiB`), exact below 1 KiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_cuts_and_flags() {
        assert_eq!(preview(b"abc", 60), ("abc".to_owned(), false));
        assert_eq!(preview(b"abcdef", 3), ("abc".to_owned(), true));
        assert_eq!(preview(&[0xff, b'a'], 60), ("\u{fffd}a".to_owned(), false));
        let long = vec![b'x'; 1000];
        assert_eq!(preview(&long, 60).0.len(), 60);
        assert!(preview(&long, 60).1);
    }

    #[test]
    fn quote_escapes() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(quoted_preview(None), "null");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
