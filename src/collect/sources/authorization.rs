//! Every user's tags and policies, from `GetAccountAuthorizationDetails`: a
//! few calls per account (up to 1,000 users, groups and policies a page)
//! instead of one `ListUserTags` per user, and the only way to see what a
//! user may do without one call per policy. The judging is the domain's
//! ([`crate::domain::privilege`]); this file only gathers what it judges.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_iam::types::{AttachedPolicy, EntityType, GroupDetail, ManagedPolicyDetail, PolicyDetail, UserDetail};

use super::UserFilter;
use crate::collect::aws::{classify, RequestRate};
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::privilege::{grants_admin, has_admin_policy, has_quarantine_policy, Privilege};

const OPERATION: &str = "GetAccountAuthorizationDetails";

/// One user as the authorization details describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserDetails {
    pub name: String,
    pub path: String,
    /// Every tag of the user, for the filter and the exported labels.
    pub tags: Vec<(String, String)>,
    pub privilege: Privilege,
}

impl UserDetails {
    /// The tags `labels.user_tags` exports.
    pub fn exported_tags(&self, keys: &[String]) -> BTreeMap<String, String> {
        self.tags.iter().filter(|(k, _)| keys.contains(k)).cloned().collect()
    }

    pub fn excluded_by(&self, filter: &UserFilter) -> bool {
        filter.excludes_name(&self.name)
            || filter.excludes_tags(self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// Reads every page, then judges each user: a group or policy may come on a
/// later page than the user that refers to it. Each page waits for its slot
/// at the account's rate, as every other call of the account does: the pages
/// of a large account draw from the same budget.
pub async fn fetch(iam: &aws_sdk_iam::Client, rate: &RequestRate) -> Result<Vec<UserDetails>, SourceError> {
    let (mut users, mut groups, mut policies) = (Vec::new(), Vec::new(), Vec::new());
    // Paged by hand, not by the SDK's paginator: a slot is taken only for a
    // page that will be asked for.
    let mut marker: Option<String> = None;
    loop {
        rate.wait().await;
        let page = iam
            .get_account_authorization_details()
            .filter(EntityType::User)
            .filter(EntityType::Group)
            .filter(EntityType::LocalManagedPolicy)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| classify(OPERATION, &e))?;
        users.extend(page.user_detail_list.unwrap_or_default());
        groups.extend(page.group_detail_list.unwrap_or_default());
        policies.extend(page.policies.unwrap_or_default());
        match page.marker {
            // The SDK's paginator stopped on a marker that came back
            // unchanged; so does this, or it would ask for that page until
            // the deadline.
            Some(next) if page.is_truncated && Some(&next) == marker.as_ref() => {
                return Err(invalid(format!(
                    "a page came back with the marker it was asked for: {next}"
                )));
            }
            Some(next) if page.is_truncated => marker = Some(next),
            _ => break,
        }
    }
    judge(&users, &groups, &policies)
}

/// Each user's tags and privilege; a policy document that cannot be read
/// fails the account, naming the policy, rather than pass for harmless.
pub fn judge(
    users: &[UserDetail],
    groups: &[GroupDetail],
    policies: &[ManagedPolicyDetail],
) -> Result<Vec<UserDetails>, SourceError> {
    // The default version of each customer managed policy, by ARN.
    let mut customer = HashMap::new();
    for policy in policies {
        let arn = policy.arn().unwrap_or_default();
        let Some(default) = policy.policy_version_list().iter().find(|v| v.is_default_version()) else {
            return Err(invalid(format!("policy {arn} has no default version")));
        };
        let admin = admin_document(default.document(), || format!("policy {arn}"))?;
        customer.insert(arn, admin);
    }
    // What each group gives its members: its attached policies, and whether
    // they or an inline policy of it grant admin.
    let mut by_group = HashMap::new();
    for group in groups {
        let name = group.group_name().unwrap_or_default();
        let grants = own_grants(
            group.attached_managed_policies(),
            group.group_policy_list(),
            &format!("group {name}"),
            &customer,
        )?;
        by_group.insert(name, grants);
    }
    users
        .iter()
        .map(|user| {
            let name = user
                .user_name()
                .ok_or_else(|| invalid("a user without a name".into()))?;
            let (mut arns, mut admin) = own_grants(
                user.attached_managed_policies(),
                user.user_policy_list(),
                &format!("user {name}"),
                &customer,
            )?;
            for group in user.group_list() {
                // A group the details did not list gives nothing known.
                if let Some((group_arns, group_admin)) = by_group.get(group.as_str()) {
                    admin |= group_admin;
                    arns.extend(group_arns);
                }
            }
            Ok(UserDetails {
                name: name.to_string(),
                path: user.path().unwrap_or("/").to_string(),
                tags: user
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
                privilege: Privilege {
                    admin,
                    quarantined: has_quarantine_policy(arns.iter().copied()),
                },
            })
        })
        .collect()
}

/// What a user's or a group's own policies give: the ARNs attached to it,
/// and whether one of them (AWS managed, or a customer managed one whose
/// default version `customer` judged) or an inline policy grants admin.
/// `owner` ("user alice", "group admins") names it in errors.
fn own_grants<'a>(
    attached: &'a [AttachedPolicy],
    inline: &[PolicyDetail],
    owner: &str,
    customer: &HashMap<&str, bool>,
) -> Result<(Vec<&'a str>, bool), SourceError> {
    let arns: Vec<&str> = attached.iter().filter_map(|p| p.policy_arn()).collect();
    let mut admin = has_admin_policy(arns.iter().copied()) || arns.iter().any(|a| customer.get(a) == Some(&true));
    for policy in inline {
        let what = || format!("inline policy {} of {owner}", policy.policy_name().unwrap_or_default());
        admin |= admin_document(policy.policy_document(), what)?;
    }
    Ok((arns, admin))
}

/// Whether a policy document grants admin; `what` names the policy in the
/// error of one that is missing or cannot be read.
fn admin_document(document: Option<&str>, what: impl Fn() -> String) -> Result<bool, SourceError> {
    match document {
        Some(document) => grants_admin(document).map_err(|e| invalid(format!("{}: {e}", what()))),
        None => Err(invalid(format!("{} has no document", what()))),
    }
}

fn invalid(message: String) -> SourceError {
    SourceError::new(ErrorReason::InvalidResponse, format!("{OPERATION}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::types::{PolicyVersion, Tag};

    fn attached(arn: &str) -> AttachedPolicy {
        AttachedPolicy::builder().policy_arn(arn).build()
    }

    fn inline(name: &str, document: &str) -> PolicyDetail {
        PolicyDetail::builder()
            .policy_name(name)
            .policy_document(document)
            .build()
    }

    const ALL: &str = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    const READ: &str = r#"{"Statement":[{"Effect":"Allow","Action":["s3:Get*"],"Resource":"*"}]}"#;
    const ACCOUNT_POLICY: &str = "arn:aws:iam::111122223333:policy/ops/iam-all";

    fn privilege_of(users: &[UserDetails], name: &str) -> Privilege {
        users.iter().find(|u| u.name == name).unwrap().privilege
    }

    /// Every page waits for its slot (at 2 a second, three pages take 1 s),
    /// and a user on the first page meets its group from the last.
    #[tokio::test(start_paused = true)]
    async fn each_page_waits_for_its_slot_at_the_accounts_rate() {
        use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput as Page;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        let page = |marker: Option<&'static str>, users: Vec<UserDetail>, groups: Vec<GroupDetail>| {
            mock!(aws_sdk_iam::Client::get_account_authorization_details).then_output(move || {
                Page::builder()
                    .set_user_detail_list(Some(users.clone()))
                    .set_group_detail_list(Some(groups.clone()))
                    .set_is_truncated(Some(marker.is_some()))
                    .set_marker(marker.map(String::from))
                    .build()
            })
        };
        let user = UserDetail::builder()
            .user_name("alice")
            .path("/")
            .group_list("admins")
            .build();
        let admins = GroupDetail::builder()
            .group_name("admins")
            .attached_managed_policies(attached("arn:aws:iam::aws:policy/AdministratorAccess"))
            .build();
        let pages = [
            page(Some("2"), vec![user], vec![]),
            page(Some("3"), vec![], vec![]),
            page(None, vec![], vec![admins]),
        ];
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&pages[0], &pages[1], &pages[2]]);
        let started = tokio::time::Instant::now();
        let users = fetch(&iam, &RequestRate::new(Some(2.0))).await.unwrap();
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(1));
        assert!(pages.iter().all(|p| p.num_calls() == 1));
        assert!(privilege_of(&users, "alice").admin);
    }

    /// A page that sends back the marker it was asked with is a bad answer,
    /// not a page to ask for again until the deadline.
    #[tokio::test]
    async fn a_marker_that_comes_back_unchanged_is_an_invalid_response() {
        use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput as Page;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        let same = mock!(aws_sdk_iam::Client::get_account_authorization_details)
            .sequence()
            .output(|| Page::builder().set_is_truncated(Some(true)).marker("m").build())
            .repeatedly()
            .build();
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&same]);
        let err = tokio::time::timeout(std::time::Duration::from_secs(10), fetch(&iam, &RequestRate::new(None)))
            .await
            .expect("stops at the repeated marker")
            .unwrap_err();
        assert_eq!(err.reason, ErrorReason::InvalidResponse);
        assert_eq!(
            err.message,
            "GetAccountAuthorizationDetails: a page came back with the marker it was asked for: m"
        );
        assert_eq!(same.num_calls(), 2);
    }

    /// Every way to admin that the rule names, and the ways that are not.
    #[test]
    fn admin_comes_from_the_user_its_groups_and_its_account_policies() {
        let user = |name: &str| UserDetail::builder().user_name(name).path("/");
        let users = [
            user("direct").attached_managed_policies(attached("arn:aws:iam::aws:policy/AdministratorAccess")),
            user("iam-full").attached_managed_policies(attached("arn:aws:iam::aws:policy/IAMFullAccess")),
            user("by-group").group_list("admins"),
            user("group-inline").group_list("inline-admins"),
            user("inline").user_policy_list(inline("all", &urlencoding(ALL))),
            user("customer").attached_managed_policies(attached(ACCOUNT_POLICY)),
            user("reader")
                .attached_managed_policies(attached("arn:aws:iam::aws:policy/ReadOnlyAccess"))
                .user_policy_list(inline("read", READ))
                .group_list("not-listed")
                .tags(Tag::builder().key("team").value("web").build().unwrap()),
            user("quarantined")
                .attached_managed_policies(attached("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3")),
            user("group-quarantined").group_list("quarantine"),
        ]
        .map(|b| b.build());
        let groups = [
            GroupDetail::builder()
                .group_name("admins")
                .attached_managed_policies(attached("arn:aws:iam::aws:policy/AdministratorAccess"))
                .build(),
            GroupDetail::builder()
                .group_name("inline-admins")
                .group_policy_list(inline(
                    "iam",
                    r#"{"Statement":{"Effect":"Allow","Action":"IAM:*","Resource":"*"}}"#,
                ))
                .build(),
            GroupDetail::builder()
                .group_name("quarantine")
                .attached_managed_policies(attached("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine"))
                .build(),
        ];
        let policies = [ManagedPolicyDetail::builder()
            .arn(ACCOUNT_POLICY)
            .policy_version_list(PolicyVersion::builder().version_id("v1").document(READ).build())
            .policy_version_list(
                PolicyVersion::builder()
                    .version_id("v2")
                    .is_default_version(true)
                    .document(r#"{"Statement":[{"Effect":"Allow","Action":["iam:*"],"Resource":["*"]}]}"#)
                    .build(),
            )
            .build()];
        let judged = judge(&users, &groups, &policies).unwrap();
        let admins: Vec<&str> = judged
            .iter()
            .filter(|u| u.privilege.admin)
            .map(|u| u.name.as_str())
            .collect();
        assert_eq!(
            admins,
            ["direct", "iam-full", "by-group", "group-inline", "inline", "customer"]
        );
        let quarantined: Vec<&str> = judged
            .iter()
            .filter(|u| u.privilege.quarantined)
            .map(|u| u.name.as_str())
            .collect();
        assert_eq!(quarantined, ["quarantined", "group-quarantined"]);
        assert_eq!(privilege_of(&judged, "reader"), Privilege::default());
        let reader = judged.iter().find(|u| u.name == "reader").unwrap();
        assert_eq!(
            reader.exported_tags(&["team".into()]),
            [("team".into(), "web".into())].into()
        );
    }

    #[test]
    fn a_document_that_cannot_be_read_fails_naming_the_policy() {
        let users = [UserDetail::builder()
            .user_name("alice")
            .user_policy_list(inline("broken", "{not json"))
            .build()];
        let error = judge(&users, &[], &[]).unwrap_err();
        assert_eq!(error.reason, ErrorReason::InvalidResponse);
        assert!(
            error.message.starts_with(
                "GetAccountAuthorizationDetails: inline policy broken of user alice: policy document: not JSON"
            ),
            "{}",
            error.message
        );
    }

    /// As IAM sends documents: every byte but the unreserved ones escaped.
    fn urlencoding(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
}
