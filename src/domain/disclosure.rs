//! How keys and users appear in labels and logs: access key ids whole,
//! masked or left out, and which user tags become labels. Shared by the
//! outputs and the refresh's logs; configured by `labels.*`.

/// `labels.access_key_id`; its values are parsed as the command line's are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyIdLabel {
    #[default]
    Full,
    Last4,
    None,
}

impl KeyIdLabel {
    /// Text (a log line, an AWS error message) with every access key id in it
    /// shown as `labels.access_key_id` says: whole, `****` and its last four
    /// characters, or not at all.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        static KEY_ID: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"\b(?:AKIA|ASIA)[A-Z0-9]{12}([A-Z0-9]{4})\b").unwrap());
        match self {
            KeyIdLabel::Full => std::borrow::Cow::Borrowed(text),
            KeyIdLabel::Last4 => KEY_ID.replace_all(text, "****$1"),
            KeyIdLabel::None => KEY_ID.replace_all(text, "<access key id>"),
        }
    }

    /// The `access_key_id` label value, as configured by `labels.access_key_id`.
    pub fn render<'a>(&self, id: Option<&'a str>) -> &'a str {
        match (self, id) {
            (_, None) | (KeyIdLabel::None, _) => "",
            (KeyIdLabel::Full, Some(id)) => id,
            (KeyIdLabel::Last4, Some(id)) => &id[id.len().saturating_sub(4)..],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSettings {
    /// IAM user tag keys exported as `tag_<key>` labels, in configured order.
    pub user_tags: Vec<String>,
    pub access_key_id: KeyIdLabel,
}

impl LabelSettings {
    /// Label name for a user tag: `tag_` and the key with every character that
    /// a Prometheus label name cannot hold turned into `_`.
    pub fn tag_label(key: &str) -> String {
        let sanitized: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
            .collect();
        format!("tag_{sanitized}")
    }
}
