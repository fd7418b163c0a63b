//! Content negotiation by RFC 9110 §12.5: `Accept` and `Accept-Encoding`
//! lists with q-values, where `q=0` means "not this", names match whatever
//! their case, and the most specific entry decides.

use crate::output::metrics::Format;

/// The entries of an `Accept`-style list: each value (before its
/// parameters) in lower case, with its q-value. An entry with an invalid
/// q-value is left out rather than guessed at.
fn entries(header: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    header.split(',').filter_map(|item| {
        let mut parts = item.split(';');
        let value = parts.next()?.trim().to_ascii_lowercase();
        if value.is_empty() {
            return None;
        }
        let mut q = 1.0;
        for param in parts {
            if let Some((name, v)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
                    // Anything after q is an accept-extension, not a media
                    // type parameter: the q-value is the last word.
                    break;
                }
            }
        }
        Some((value, q))
    })
}

/// The q-value of `media_type` (`type/subtype`, lower case) under an
/// `Accept` header: from its own entry, else `type/*`, else `*/*`, else 0.
pub fn media_quality(accept: &str, media_type: &str) -> f32 {
    let (kind, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    let wildcard = format!("{kind}/*");
    let mut best: (u8, f32) = (0, 0.0);
    for (value, q) in entries(accept) {
        let specificity = if value == media_type {
            3
        } else if value == wildcard {
            2
        } else if value == "*/*" {
            1
        } else {
            continue;
        };
        // The same range twice (with other parameters): the better q counts.
        if specificity > best.0 || (specificity == best.0 && q > best.1) {
            best = (specificity, q);
        }
    }
    best.1
}

/// The name to send in `Content-Encoding` if gzip is acceptable under this
/// `Accept-Encoding`: `gzip`, or `x-gzip` when that is what the client
/// named; `None` when gzip is refused or not mentioned.
pub fn gzip_coding(accept_encoding: &str) -> Option<&'static str> {
    let mut named: Option<(f32, &'static str)> = None;
    let mut any: Option<f32> = None;
    for (value, q) in entries(accept_encoding) {
        let name = match value.as_str() {
            "gzip" => "gzip",
            "x-gzip" => "x-gzip",
            "*" => {
                any = Some(any.map_or(q, |a: f32| a.max(q)));
                continue;
            }
            _ => continue,
        };
        if named.is_none_or(|(best, _)| q > best) {
            named = Some((q, name));
        }
    }
    match (named, any) {
        (Some((q, name)), _) => (q > 0.0).then_some(name),
        (None, Some(q)) => (q > 0.0).then_some("gzip"),
        (None, None) => None,
    }
}

/// The exposition format for an `Accept` header: OpenMetrics only when the
/// scraper prefers it to the text format (by q-value, as Prometheus asks);
/// the text format otherwise, even when neither is acceptable, as
/// Prometheus' own handler does.
pub fn metrics_format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let open_metrics = media_quality(accept, "application/openmetrics-text");
    if open_metrics > 0.0 && open_metrics > media_quality(accept, "text/plain") {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_by_q_value_and_specificity() {
        let om = "application/openmetrics-text";
        assert_eq!(media_quality("application/openmetrics-text", om), 1.0);
        assert_eq!(media_quality("Application/OpenMetrics-Text; Version=1.0.0", om), 1.0);
        assert_eq!(media_quality("application/openmetrics-text;q=0", om), 0.0);
        assert_eq!(media_quality("application/openmetrics-text;Q=0.5", om), 0.5);
        assert_eq!(media_quality("text/plain", om), 0.0);
        assert_eq!(media_quality("*/*;q=0.2", om), 0.2);
        assert_eq!(media_quality("application/*;q=0.4, */*;q=0.2", om), 0.4);
        // The specific entry wins over a wildcard, even with a lower q.
        assert_eq!(media_quality("application/openmetrics-text;q=0, */*", om), 0.0);
        assert_eq!(
            media_quality("application/openmetrics-text;q=2", om),
            0.0,
            "invalid q: left out"
        );
    }

    #[test]
    fn gzip_by_q_value_alias_and_wildcard() {
        assert_eq!(gzip_coding("gzip"), Some("gzip"));
        assert_eq!(gzip_coding("GZip"), Some("gzip"));
        assert_eq!(gzip_coding("identity, gzip;q=0.5"), Some("gzip"));
        assert_eq!(gzip_coding("x-gzip"), Some("x-gzip"));
        assert_eq!(gzip_coding("*"), Some("gzip"));
        assert_eq!(gzip_coding("gzip;q=0"), None);
        assert_eq!(gzip_coding("gzip;q=0, *"), None, "named entry beats the wildcard");
        assert_eq!(gzip_coding("*;q=0"), None);
        assert_eq!(gzip_coding("identity"), None);
        assert_eq!(gzip_coding("br, deflate"), None);
        assert_eq!(gzip_coding("gzip;q=0.000"), None);
    }

    #[test]
    fn content_negotiation_follows_accept() {
        assert_eq!(metrics_format(None), Format::Text);
        assert_eq!(
            metrics_format(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::Text
        );
        let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(metrics_format(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(metrics_format(Some("application/openmetrics-text;q=0")), Format::Text);
        assert_eq!(
            metrics_format(Some("APPLICATION/OPENMETRICS-TEXT; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            metrics_format(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Format::Text
        );
    }
}
