//! [`redact_url`]: a URL as it may be shown in logs, `Debug` output, `/health` and the
//! operator's terminal.

/// `url` with the password of its userinfo replaced by `***` and the value of every query
/// parameter replaced by `***` (a `?password=`, `?token=` or `?key=` is a credential as
/// much as a userinfo is); the fragment is dropped. Anything that is not a URL comes back
/// unchanged.
///
/// ```
/// use rocket_revoke_core::redact_url;
/// assert_eq!(
///     redact_url("postgres://app:s3cret@db:5432/prod?sslmode=require&password=x"),
///     "postgres://app:***@db:5432/prod?sslmode=***&password=***"
/// );
/// assert_eq!(redact_url("sqlite://revoke.db?mode=rwc"), "sqlite://revoke.db?mode=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[start..];
    let path_at = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(path_at);
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = tail.split('#').next().unwrap_or_default();
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) => {
                    out.push_str(key);
                    out.push_str("=***");
                }
                None => out.push_str(pair),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_masked() {
        assert_eq!(
            redact_url("https://u:secret@idp.example/jwks?x=1"),
            "https://u:***@idp.example/jwks?x=***"
        );
        assert_eq!(
            redact_url("https://idp.example/a@b"),
            "https://idp.example/a@b"
        );
        assert_eq!(
            redact_url("https://user@idp.example/"),
            "https://user@idp.example/"
        );
        assert_eq!(
            redact_url("postgres://db/test?password=hunter2#frag"),
            "postgres://db/test?password=***"
        );
        assert_eq!(redact_url("https://h/p?flag"), "https://h/p?flag");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
