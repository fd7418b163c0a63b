//! Which accounts to read, and with which credentials: the exporter's own
//! account, the members of an AWS Organization, a static list of roles,
//! filtered by include / exclude and by shard.

use std::collections::BTreeMap;

use crate::domain::ids::role_arn_account;

#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationAccounts {
    pub role_name: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StaticAccount {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounts {
    pub organization: Option<OrganizationAccounts>,
    pub static_accounts: Vec<StaticAccount>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A role the exporter assumes to read an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
}

/// One account to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub account_id: String,
    /// From Organizations or the config; the account alias is used when `None`.
    pub name: Option<String>,
    /// `None`: read with the exporter's own credentials.
    pub role: Option<Role>,
}

/// An account as Organizations lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAccount {
    pub id: String,
    pub name: String,
}

/// Who the exporter's own credentials are (STS `GetCallerIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    /// `aws`, `aws-cn`, `aws-us-gov`: for the role ARNs built from `role_name`.
    pub partition: String,
}

impl Caller {
    /// From the caller ARN, `arn:PARTITION:sts::ACCOUNT:...`.
    pub fn from_arn(account_id: &str, arn: Option<&str>) -> Caller {
        let partition = arn
            .and_then(|a| a.split(':').nth(1))
            .filter(|p| p.starts_with("aws"))
            .unwrap_or("aws");
        Caller {
            account_id: account_id.to_string(),
            partition: partition.to_string(),
        }
    }
}

/// Whether the configuration asks for Organizations discovery.
pub fn uses_organization(config: &Accounts) -> bool {
    config.organization.is_some()
}

/// The accounts this replica reads, sorted by id: Organizations members (only
/// the active ones are passed in), then static roles, each account once; the
/// caller's own account is read with its own credentials, never through a
/// role; then include, exclude and the shard.
pub fn plan(config: &Accounts, shard: Shard, caller: &Caller, members: Option<&[MemberAccount]>) -> Vec<Target> {
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    let role_for = |account_id: &str, role: Role| (account_id != caller.account_id).then_some(role);
    if let (Some(org), Some(members)) = (&config.organization, members) {
        for member in members {
            let role = Role {
                arn: format!("arn:{}:iam::{}:role/{}", caller.partition, member.id, org.role_name),
                external_id: org.external_id.clone(),
            };
            targets.entry(member.id.clone()).or_insert_with(|| Target {
                account_id: member.id.clone(),
                name: Some(member.name.clone()).filter(|n| !n.is_empty()),
                role: role_for(&member.id, role),
            });
        }
    }
    for entry in &config.static_accounts {
        let Some(account_id) = role_arn_account(&entry.role_arn) else {
            continue; // rejected by config validation
        };
        let role = Role {
            arn: entry.role_arn.clone(),
            external_id: entry.external_id.clone(),
        };
        let target = targets.entry(account_id.to_string()).or_insert_with(|| Target {
            account_id: account_id.to_string(),
            name: None,
            role: role_for(account_id, role),
        });
        if target.name.is_none() {
            target.name = entry.name.clone();
        }
    }
    if config.organization.is_none() && config.static_accounts.is_empty() {
        targets.insert(
            caller.account_id.clone(),
            Target {
                account_id: caller.account_id.clone(),
                name: None,
                role: None,
            },
        );
    }
    targets
        .into_values()
        .filter(|t| config.include.is_empty() || config.include.contains(&t.account_id))
        .filter(|t| !config.exclude.contains(&t.account_id))
        .filter(|t| shard_of(&t.account_id, shard.count) == shard.index)
        .collect()
}

/// The shard of an account: FNV-1a (64 bit) of its id, modulo the shard
/// count. Stable across versions, platforms and replicas, so that every
/// replica agrees on the split without talking to the others.
pub fn shard_of(account_id: &str, count: u32) -> u32 {
    let hash = account_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % count.max(1) as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "111111111111";

    fn caller() -> Caller {
        Caller::from_arn(CALLER, Some("arn:aws:iam::111111111111:user/exporter"))
    }

    fn members() -> Vec<MemberAccount> {
        [
            (CALLER, "management"),
            ("222222222222", "prod"),
            ("333333333333", "dev"),
        ]
        .map(|(id, name)| MemberAccount {
            id: id.into(),
            name: name.into(),
        })
        .to_vec()
    }

    const ALL: Shard = Shard { index: 0, count: 1 };

    #[test]
    fn without_accounts_section_reads_own_account_with_own_credentials() {
        assert_eq!(
            plan(&Accounts::default(), ALL, &caller(), None),
            [Target {
                account_id: CALLER.into(),
                name: None,
                role: None
            }]
        );
    }

    #[test]
    fn organization_members_through_the_role_and_own_account_directly() {
        let config = Accounts {
            organization: Some(OrganizationAccounts {
                role_name: "Reader".into(),
                external_id: Some("x-1".into()),
            }),
            ..Accounts::default()
        };
        let role = |id: &str| Role {
            arn: format!("arn:aws:iam::{id}:role/Reader"),
            external_id: Some("x-1".into()),
        };
        assert_eq!(
            plan(&config, ALL, &caller(), Some(&members())),
            [
                Target {
                    account_id: CALLER.into(),
                    name: Some("management".into()),
                    role: None
                },
                Target {
                    account_id: "222222222222".into(),
                    name: Some("prod".into()),
                    role: Some(role("222222222222"))
                },
                Target {
                    account_id: "333333333333".into(),
                    name: Some("dev".into()),
                    role: Some(role("333333333333"))
                },
            ]
        );
    }

    #[test]
    fn static_roles_merge_with_organization_and_are_read_once() {
        let config = Accounts {
            organization: Some(OrganizationAccounts {
                role_name: "Reader".into(),
                external_id: None,
            }),
            static_accounts: vec![
                StaticAccount {
                    role_arn: "arn:aws:iam::222222222222:role/Other".into(),
                    external_id: None,
                    name: Some("ignored: Organizations names it".into()),
                },
                StaticAccount {
                    role_arn: "arn:aws:iam::444444444444:role/Reader".into(),
                    external_id: Some("e".into()),
                    name: Some("partner".into()),
                },
            ],
            exclude: vec!["333333333333".into()],
            ..Accounts::default()
        };
        let targets = plan(&config, ALL, &caller(), Some(&members()));
        let summary: Vec<(&str, Option<&str>, Option<&str>)> = targets
            .iter()
            .map(|t| {
                (
                    t.account_id.as_str(),
                    t.name.as_deref(),
                    t.role.as_ref().map(|r| r.arn.as_str()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (CALLER, Some("management"), None),
                (
                    "222222222222",
                    Some("prod"),
                    Some("arn:aws:iam::222222222222:role/Reader")
                ),
                (
                    "444444444444",
                    Some("partner"),
                    Some("arn:aws:iam::444444444444:role/Reader")
                ),
            ]
        );
    }

    #[test]
    fn include_is_an_allow_list() {
        let config = Accounts {
            organization: Some(OrganizationAccounts {
                role_name: "Reader".into(),
                external_id: None,
            }),
            include: vec!["333333333333".into()],
            ..Accounts::default()
        };
        let ids: Vec<String> = plan(&config, ALL, &caller(), Some(&members()))
            .into_iter()
            .map(|t| t.account_id)
            .collect();
        assert_eq!(ids, ["333333333333"]);
    }

    #[test]
    fn static_role_in_own_account_uses_own_credentials() {
        let config = Accounts {
            static_accounts: vec![StaticAccount {
                role_arn: format!("arn:aws:iam::{CALLER}:role/Reader"),
                external_id: None,
                name: Some("home".into()),
            }],
            ..Accounts::default()
        };
        assert_eq!(
            plan(&config, ALL, &caller(), None),
            [Target {
                account_id: CALLER.into(),
                name: Some("home".into()),
                role: None
            }]
        );
    }

    #[test]
    fn partition_comes_from_the_caller_arn() {
        assert_eq!(
            Caller::from_arn(CALLER, Some("arn:aws-us-gov:sts::111111111111:assumed-role/x/y")).partition,
            "aws-us-gov"
        );
        assert_eq!(Caller::from_arn(CALLER, None).partition, "aws");
    }

    #[test]
    fn shards_split_every_account_exactly_once_and_evenly() {
        let ids: Vec<String> = (0..3000u64)
            .map(|i| format!("{:012}", 100_000_000_000 + i * 7919))
            .collect();
        let mut sizes = [0usize; 3];
        for id in &ids {
            let shard = shard_of(id, 3);
            assert!(shard < 3);
            sizes[shard as usize] += 1;
            assert_eq!(shard_of(id, 3), shard, "stable");
        }
        assert_eq!(sizes.iter().sum::<usize>(), ids.len());
        assert!(sizes.iter().all(|n| (800..1200).contains(n)), "roughly even: {sizes:?}");
        assert_eq!(shard_of("123456789012", 1), 0);
        // Fixed values: a change of hash would move accounts between replicas.
        // (Computed independently with a few lines of Python.)
        assert_eq!(
            [
                shard_of("123456789012", 3),
                shard_of("210987654321", 3),
                shard_of("111111111111", 5)
            ],
            [2, 2, 2]
        );
    }
}
