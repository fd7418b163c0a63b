//! The label sets of the snapshot's families, typed: each family's labels
//! are one struct, in exposition order, borrowing from the assessed model so
//! that a scrape of many keys allocates no label strings.

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};

/// A label set of borrowed strings, encoded in field order.
macro_rules! label_set {
    ($(#[$doc:meta])* $name:ident { $($field:ident),+ $(,)? }) => {
        $(#[$doc])*
        pub struct $name<'a> {
            $(pub $field: &'a str,)+
        }

        impl EncodeLabelSet for $name<'_> {
            fn encode(&self, encoder: &mut LabelSetEncoder) -> std::fmt::Result {
                [$((stringify!($field), self.$field)),+].encode(encoder)
            }
        }
    };
}

label_set!(AccountLabel { account_id });
label_set!(AccountUserLabels { account_id, user });
label_set!(AccountInfoLabels {
    account_id,
    account_name
});
label_set!(BucketLabels {
    account_id,
    status,
    age_bucket
});
label_set!(BuildLabels {
    version,
    revision,
    rustc_version
});

/// `aws_iam_user_info`: fixed labels, then one `tag_<key>` label per
/// exported tag, in configured order (empty when the user lacks the tag).
pub struct UserLabels<'a> {
    pub account_id: &'a str,
    pub user: &'a str,
    pub path: &'a str,
    /// (label name, value) per exported tag.
    pub tags: &'a [(&'a str, &'a str)],
}

impl EncodeLabelSet for UserLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> std::fmt::Result {
        [
            ("account_id", self.account_id),
            ("user", self.user),
            ("path", self.path),
        ]
        .encode(encoder)?;
        self.tags.encode(encoder)
    }
}
