//! Text that reaches the operator's terminal.

use std::borrow::Cow;

/// `s` with every control character (escape sequences, carriage returns, bells, ...)
/// replaced by its Rust escape (`\u{1b}`, `\r`, ...), so a subject, label or reason stored
/// in the database cannot rewrite the operator's terminal. Newlines and tabs are escaped
/// too: one record stays on one line. Borrowed when there is nothing to escape.
///
/// ```
/// use revokectl::text::escape_controls;
/// assert_eq!(escape_controls("alice"), "alice");
/// assert_eq!(escape_controls("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
/// ```
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `println!` for text output: the formatted line with its control characters escaped
/// ([`escape_controls`]).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", $crate::text::escape_controls(&format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_text_is_kept() {
        assert!(matches!(escape_controls("plain é ✓"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("\u{7}bell\r"), "\\u{7}bell\\r");
        assert_eq!(escape_controls("\u{9b}31m"), "\\u{9b}31m", "C1 CSI too");
        assert_eq!(escape_controls("tab\there"), "tab\\there");
    }
}
