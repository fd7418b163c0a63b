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

/// An IAM ARN, `arn:PARTITION:iam:REGION:ACCOUNT:RESOURCE`, with a valid
/// account id; what else must hold is up to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IamArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> IamArn<'a> {
    pub fn parse(arn: &'a str) -> Option<IamArn<'a>> {
        let mut parts = arn.splitn(6, ':');
        let (scheme, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
        let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
        (scheme == "arn" && service == "iam" && is_account_id(account)).then_some(IamArn {
            partition,
            region,
            account,
            resource,
        })
    }
}

/// The account id of `arn:PARTITION:iam::ACCOUNT:role/NAME`.
pub fn role_arn_account(arn: &str) -> Option<&str> {
    let arn = IamArn::parse(arn)?;
    (arn.partition.starts_with("aws")
        && arn.region.is_empty()
        && arn.resource.strip_prefix("role/").is_some_and(is_role_name))
    .then_some(arn.account)
}
