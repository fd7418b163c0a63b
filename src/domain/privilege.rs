//! What a user may do and whether AWS found its key leaked, judged from the
//! policies IAM lists for it (issue 22). Pure functions over the policy
//! names and documents, so that the rule is one place and the sources only
//! hand over what `GetAccountAuthorizationDetails` returned.
//!
//! The admin rule: the AWS managed
//! `AdministratorAccess` or `IAMFullAccess` attached, or an `Allow`
//! statement with `Action` `*` or `iam:*` (alone or in a list) on `Resource`
//! `*`, without a `Condition`. `NotAction`, conditions, permission boundaries
//! and SCPs are not evaluated: a statement that uses them does not count,
//! so the rule can miss an admin but does not invent one.

/// What a user's policies let it do, and whether AWS quarantined it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Privilege {
    /// Admin-equivalent by the rule above.
    pub admin: bool,
    /// A quarantine policy is attached: AWS found one of its keys exposed.
    pub quarantined: bool,
}

/// AWS managed policies that make their holder admin-equivalent: full
/// access, or full IAM access, with which a user can grant itself the rest.
pub const ADMIN_POLICIES: [&str; 2] = ["AdministratorAccess", "IAMFullAccess"];

/// AWS managed policies that AWS attaches to a user whose access key it
/// found exposed in public, newest first.
pub const QUARANTINE_POLICIES: [&str; 3] = [
    "AWSCompromisedKeyQuarantineV3",
    "AWSCompromisedKeyQuarantineV2",
    "AWSCompromisedKeyQuarantine",
];

/// The name of an AWS managed policy from its ARN
/// (`arn:<partition>:iam::aws:policy/[<path>/]<name>`); `None` for a
/// customer managed policy, whose account is a number, not `aws`.
pub fn aws_managed_name(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (arn_word, _partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn_word != "arn" || service != "iam" || account != "aws" {
        return None;
    }
    resource.strip_prefix("policy/")?.rsplit('/').next()
}

/// Whether one of these attached policies is an admin one.
pub fn has_admin_policy<'a>(arns: impl IntoIterator<Item = &'a str>) -> bool {
    arns.into_iter()
        .filter_map(aws_managed_name)
        .any(|name| ADMIN_POLICIES.contains(&name))
}

/// Whether one of these attached policies is a quarantine one.
pub fn has_quarantine_policy<'a>(arns: impl IntoIterator<Item = &'a str>) -> bool {
    arns.into_iter()
        .filter_map(aws_managed_name)
        .any(|name| QUARANTINE_POLICIES.contains(&name))
}

/// A policy document that could not be read, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy document: {0}")]
pub struct DocumentError(String);

/// Whether a policy document (JSON, or URL-encoded JSON as IAM returns it)
/// has a statement that grants everything, or everything in IAM, on every
/// resource, without a condition.
pub fn grants_admin(document: &str) -> Result<bool, DocumentError> {
    let decoded;
    let text = if document.trim_start().starts_with('{') {
        document
    } else {
        decoded = percent_decode(document)?;
        &decoded
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| DocumentError(format!("not JSON: {e}")))?;
    let statements = match value.get("Statement") {
        Some(serde_json::Value::Array(list)) => list.iter().collect(),
        Some(one @ serde_json::Value::Object(_)) => vec![one],
        Some(_) => return Err(DocumentError("Statement is neither an object nor a list".into())),
        None => Vec::new(),
    };
    Ok(statements.into_iter().any(statement_grants_admin))
}

fn statement_grants_admin(statement: &serde_json::Value) -> bool {
    let field = |name: &str| statement.get(name);
    if field("Effect").and_then(|e| e.as_str()) != Some("Allow") || field("Condition").is_some() {
        return false;
    }
    let any = |name: &str, wanted: &dyn Fn(&str) -> bool| match field(name) {
        Some(serde_json::Value::String(one)) => wanted(one),
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|v| v.as_str()).any(wanted),
        _ => false,
    };
    // IAM action names are case-insensitive; `*` and `iam:*` are the only
    // patterns that cover every IAM action.
    let all_actions = |a: &str| a == "*" || a.eq_ignore_ascii_case("iam:*");
    any("Action", &all_actions) && any("Resource", &|r| r == "*")
}

/// `%XX` escapes turned back into bytes; the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, DocumentError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| DocumentError(format!("a bad %-escape at byte {i}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DocumentError("not UTF-8 once decoded".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_managed_names_come_from_the_arn_and_customer_policies_have_none() {
        assert_eq!(
            aws_managed_name("arn:aws:iam::aws:policy/AdministratorAccess"),
            Some("AdministratorAccess")
        );
        assert_eq!(
            aws_managed_name("arn:aws-us-gov:iam::aws:policy/service-role/IAMFullAccess"),
            Some("IAMFullAccess")
        );
        assert_eq!(
            aws_managed_name("arn:aws:iam::111122223333:policy/AdministratorAccess"),
            None
        );
        assert_eq!(aws_managed_name("AdministratorAccess"), None);
        assert!(has_admin_policy([
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:iam::aws:policy/IAMFullAccess"
        ]));
        assert!(!has_admin_policy([
            "arn:aws:iam::111122223333:policy/AdministratorAccess"
        ]));
        for name in QUARANTINE_POLICIES {
            assert!(has_quarantine_policy([
                format!("arn:aws:iam::aws:policy/{name}").as_str()
            ]));
        }
        assert!(!has_quarantine_policy(["arn:aws:iam::aws:policy/AdministratorAccess"]));
    }

    #[test]
    fn everything_on_everything_without_a_condition_is_admin() {
        let admin = [
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":["s3:GetObject","IAM:*"],"Resource":["*"]}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"},{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#,
            // As IAM returns it: URL-encoded.
            "%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%7D",
        ];
        for document in admin {
            assert_eq!(grants_admin(document), Ok(true), "{document}");
        }
        let not_admin = [
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"iam:Get*","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::bucket/*"}}"#,
            r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}}"#,
            r#"{"Statement":{"Effect":"Allow","NotAction":"s3:*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17"}"#,
        ];
        for document in not_admin {
            assert_eq!(grants_admin(document), Ok(false), "{document}");
        }
    }

    #[test]
    fn a_document_that_cannot_be_read_is_an_error_naming_why() {
        assert!(grants_admin("%7B%ZZ").unwrap_err().to_string().contains("bad %-escape"));
        assert!(grants_admin("{not json").unwrap_err().to_string().contains("not JSON"));
        assert!(grants_admin(r#"{"Statement":"*"}"#)
            .unwrap_err()
            .to_string()
            .contains("neither an object nor a list"));
    }
}
