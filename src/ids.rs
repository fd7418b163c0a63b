//! What AWS identifiers look like: account ids, role names, role ARNs.
//! Checked where they enter (the config, AWS answers), in one place.

pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// IAM role names: 1 to 64 of `[A-Za-z0-9+=,.@_-]`, optionally after a path.
pub fn is_role_name(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    (1..=64).contains(&base.len()) && base.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// The account id of `arn:PARTITION:iam::ACCOUNT:role/NAME`.
pub fn role_arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let ok = parts.next() == Some("arn") && parts.next().is_some_and(|p| p.starts_with("aws"));
    let (service, region, account, resource) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (ok && service == "iam"
        && region.is_empty()
        && is_account_id(account)
        && resource.strip_prefix("role/").is_some_and(is_role_name))
    .then_some(account)
}
