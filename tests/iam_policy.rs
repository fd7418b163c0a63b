//! The IAM policy in `deploy/iam/` grants exactly what the code calls.
//!
//! The real exporter refreshes against moto three times: an Organization with
//! the API source and user tags, the same with the credential report, and the
//! account of its own credentials (whose name comes from its alias). Every AWS
//! operation counted in `aws_iam_exporter_aws_requests_total` must be allowed
//! by `deploy/iam/exporter-policy.json` on the resource it acts on, and the
//! policy must allow no action that none of those refreshes called. The
//! CloudFormation templates must carry the same statements, so that the roles
//! they create cannot fall behind either.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::Value;

const POLICY: &str = "deploy/iam/exporter-policy.json";
const MEMBER_ROLE_TEMPLATE: &str = "deploy/iam/cloudformation/member-role.yaml";
const EXPORTER_ROLE_TEMPLATE: &str = "deploy/iam/cloudformation/exporter-role.yaml";
/// The role the exporter assumes in member accounts (`accounts.organization.role_name`).
const ROLE_NAME: &str = "IAMKeyExporter";
/// Called by the exporter, but allowed to every principal: IAM has no permission for it.
const NEEDS_NO_PERMISSION: &[&str] = &["sts:GetCallerIdentity"];

/// One Allow statement: action patterns and resource patterns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Statement {
    sid: String,
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
}

fn strings(value: &Value, what: &str) -> BTreeSet<String> {
    match value {
        Value::String(s) => BTreeSet::from([s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{what}: {v} is not a string"))
                    .to_string()
            })
            .collect(),
        other => panic!("{what}: expected a string or a list, found {other}"),
    }
}

/// Parses a policy document that only allows (no Deny, NotAction, NotResource or Condition:
/// the checks below would not understand them).
fn statements(document: &Value, what: &str) -> Vec<Statement> {
    assert_eq!(document["Version"], "2012-10-17", "{what}: Version");
    let list = match &document["Statement"] {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        other => panic!("{what}: Statement is {other}"),
    };
    list.iter()
        .map(|s| {
            let keys: BTreeSet<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                BTreeSet::from(["Sid", "Effect", "Action", "Resource"]),
                "{what}: a statement has exactly Sid, Effect, Action and Resource: {s}"
            );
            assert_eq!(s["Effect"], "Allow", "{what}: {s}");
            Statement {
                sid: s["Sid"].as_str().unwrap().to_string(),
                actions: strings(&s["Action"], what),
                resources: strings(&s["Resource"], what),
            }
        })
        .collect()
}

/// IAM's wildcard match: `*` is any run of characters (`/` and `:` included), `?` one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // matches[j]: pattern[..i] matches text[..j].
    let mut matches = vec![false; t.len() + 1];
    matches[0] = true;
    for &pc in &p {
        let mut next = vec![false; t.len() + 1];
        if pc == '*' {
            let mut any = false;
            for j in 0..=t.len() {
                any |= matches[j];
                next[j] = any;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = matches[j - 1] && (pc == '?' || pc == t[j - 1]);
            }
        }
        matches = next;
    }
    matches[t.len()]
}

/// Whether the statements allow `action` (case-insensitive, as IAM compares actions) on
/// `resource` (case-sensitive).
fn allows(statements: &[Statement], action: &str, resource: &str) -> bool {
    statements.iter().any(|s| {
        s.actions
            .iter()
            .any(|a| wildcard_match(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && s.resources.iter().any(|r| wildcard_match(r, resource))
    })
}

/// The IAM action of an operation counted under the exporter's `service` label.
fn iam_action(service: &str, operation: &str) -> String {
    let prefix = match service {
        "iam" => "iam",
        "organizations" => "organizations",
        "sts" => "sts",
        other => panic!("the exporter calls a new AWS service {other:?}: map it to its IAM prefix here"),
    };
    format!("{prefix}:{operation}")
}

/// The resources an action acts on in these refreshes, as IAM authorizes it.
fn resources_of(action: &str, accounts: &[Value]) -> Vec<String> {
    let users = || {
        accounts
            .iter()
            .flat_map(|a| {
                let id = a["account_id"].as_str().unwrap().to_string();
                a["users"].as_array().unwrap().iter().map(move |u| {
                    format!(
                        "arn:aws:iam::{id}:user{}{}",
                        u["path"].as_str().unwrap(),
                        u["name"].as_str().unwrap()
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    match action {
        // Actions without a resource type: IAM authorizes them on "*".
        "iam:GetAccountAuthorizationDetails"
        | "iam:GetAccountSummary"
        | "iam:ListAccountAliases"
        | "iam:GenerateCredentialReport"
        | "iam:GetCredentialReport"
        | "organizations:ListAccounts" => vec!["*".to_string()],
        "iam:ListAccessKeys" | "iam:GetAccessKeyLastUsed" => users(),
        "sts:AssumeRole" => accounts
            .iter()
            .skip(1) // the management account is read with the base credentials
            .map(|a| format!("arn:aws:iam::{}:role/{ROLE_NAME}", a["account_id"].as_str().unwrap()))
            .collect(),
        other => panic!("the exporter calls {other}: add the resources it acts on (see the Service Authorization Reference) here, and the action to {POLICY}"),
    }
}

/// Runs the exporter with `yaml` until its first refresh is over and returns the operations
/// it called, as (service, operation) -> count.
fn operations_called(moto: &Moto, yaml: &str) -> BTreeMap<(String, String), f64> {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), yaml);
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()], &moto.aws_env());
    exporter.wait_ready();
    let samples = parse_metrics(&exporter.scrape());
    for up in find(&samples, "aws_iam_exporter_account_up", &[]) {
        assert_eq!(up.value, 1.0, "every account refreshed: {up:?}\n{yaml}");
    }
    let mut called = BTreeMap::new();
    for s in find(&samples, "aws_iam_exporter_aws_requests_total", &[]) {
        if s.value > 0.0 {
            called.insert((s.labels["service"].clone(), s.labels["operation"].clone()), s.value);
        }
    }
    called
}

fn read_policy() -> Vec<Statement> {
    let text = std::fs::read_to_string(repo_path(POLICY)).unwrap();
    statements(&serde_json::from_str(&text).unwrap(), POLICY)
}

#[test]
#[ignore = "tools tier, run by make test: needs moto"]
fn the_policy_allows_every_operation_the_exporter_calls_and_nothing_else() {
    let moto = Moto::start_with(&["--scenario", "organization", "--members", "2"]);
    let accounts = moto.seeded["accounts"].as_array().unwrap().clone();
    let organization = format!("accounts:\n  organization: {{role_name: {ROLE_NAME}, external_id: iam-policy-test}}\n");
    let runs = [
        // Discovery, AssumeRole, and every API source call.
        format!("source: api\nlabels: {{user_tags: [owner]}}\n{organization}"),
        // The credential report of every account.
        format!("source: credential-report\n{organization}"),
        // No accounts section: the own account, named by its alias (ListAccountAliases).
        "source: api\n".to_string(),
    ];
    let mut called: BTreeMap<String, f64> = BTreeMap::new();
    for yaml in &runs {
        for ((service, operation), count) in operations_called(&moto, yaml) {
            *called.entry(iam_action(&service, &operation)).or_default() += count;
        }
    }
    eprintln!("operations called: {called:?}");

    let policy = read_policy();
    let mut denied = Vec::new();
    for action in called.keys().filter(|a| !NEEDS_NO_PERMISSION.contains(&a.as_str())) {
        for resource in resources_of(action, &accounts) {
            if !allows(&policy, action, &resource) {
                denied.push(format!("{action} on {resource}"));
            }
        }
    }
    assert!(
        denied.is_empty(),
        "{POLICY} does not allow what the exporter calls: {denied:#?}"
    );

    // Nothing more: every action the policy names is one the exporter called, literally (a
    // wildcard would allow actions it never calls).
    let needed: BTreeSet<&str> = called
        .keys()
        .map(String::as_str)
        .filter(|a| !NEEDS_NO_PERMISSION.contains(a))
        .collect();
    for statement in &policy {
        for action in &statement.actions {
            assert!(
                !action.contains(['*', '?']),
                "{POLICY} {}: {action} is a wildcard; name the actions the exporter calls",
                statement.sid
            );
            assert!(
                needed.contains(action.as_str()),
                "{POLICY} {} allows {action}, which the exporter never called (called: {needed:?})",
                statement.sid
            );
        }
    }
    // And every path of the code was exercised, so that the comparison above is complete.
    let expected: BTreeSet<&str> = BTreeSet::from([
        "iam:GenerateCredentialReport",
        "iam:GetAccessKeyLastUsed",
        "iam:GetAccountAuthorizationDetails",
        "iam:GetAccountSummary",
        "iam:GetCredentialReport",
        "iam:ListAccessKeys",
        "iam:ListAccountAliases",
        "organizations:ListAccounts",
        "sts:AssumeRole",
    ]);
    assert_eq!(needed, expected, "operations the refreshes called");
}

#[test]
fn resources_are_as_narrow_as_iam_allows() {
    let policy = read_policy();
    // Per-user actions only on users, of any account and path.
    for action in ["iam:ListAccessKeys", "iam:GetAccessKeyLastUsed"] {
        assert!(allows(&policy, action, "arn:aws:iam::111122223333:user/a/b/c"));
        assert!(!allows(&policy, action, "*"), "{action} on *");
        assert!(!allows(&policy, action, "arn:aws:iam::111122223333:role/admin"));
        assert!(!allows(&policy, action, "arn:aws:iam::111122223333:group/admins"));
    }
    // AssumeRole only into the exporter's reader role.
    assert!(allows(
        &policy,
        "sts:AssumeRole",
        &format!("arn:aws:iam::111122223333:role/{ROLE_NAME}")
    ));
    for other in [
        "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole",
        "arn:aws:iam::111122223333:role/IAMKeyExporterAdmin",
        "arn:aws:iam::111122223333:role/path/IAMKeyExporter",
        "*",
    ] {
        assert!(!allows(&policy, "sts:AssumeRole", other), "AssumeRole on {other}");
    }
    // The matcher itself.
    assert!(wildcard_match("arn:aws:iam::*:user/*", "arn:aws:iam::1:user/x/y"));
    assert!(wildcard_match("iam:list?sers", "iam:listusers"));
    assert!(!wildcard_match("iam:List*", "iam:GetUser"));
    assert!(!wildcard_match("a*b", "a"));
}

// --- The CloudFormation templates carry the same statements ---------------------------

/// A YAML value of a CloudFormation template as JSON, with `!Sub` strings resolved for the
/// comparison: the partition to `aws`, the account to `*` (the JSON policy covers any
/// account; a template may narrow it to its own), parameters to their defaults.
fn resolve(value: &serde_norway::Value, parameters: &BTreeMap<String, String>) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(items.iter().map(|v| resolve(v, parameters)).collect()),
        Y::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), resolve(v, parameters)))
                .collect(),
        ),
        Y::Tagged(tagged) if tagged.tag == "Sub" => {
            let mut text = tagged.value.as_str().expect("!Sub with a string").to_string();
            text = text
                .replace("${AWS::Partition}", "aws")
                .replace("${AWS::AccountId}", "*");
            for (name, default) in parameters {
                text = text.replace(&format!("${{{name}}}"), default);
            }
            assert!(!text.contains("${"), "unresolved substitution in {text}");
            Value::String(text)
        }
        Y::Tagged(tagged) => panic!("unexpected !{} in a policy statement", tagged.tag),
    }
}

/// The statements of the inline policies of every role of a template.
fn template_statements(path: &str) -> Vec<Statement> {
    let text = std::fs::read_to_string(repo_path(path)).unwrap();
    let template: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let parameters: BTreeMap<String, String> = template["Parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v["Default"].as_str()?.to_string())))
        .collect();
    let mut found = Vec::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::IAM::Role") {
            continue;
        }
        for policy in resource["Properties"]["Policies"].as_sequence().unwrap() {
            let document = resolve(&policy["PolicyDocument"], &parameters);
            found.extend(statements(&document, path));
        }
    }
    assert!(!found.is_empty(), "{path} has no role policy");
    found.sort();
    found
}

#[test]
fn the_cloudformation_roles_carry_the_same_statements() {
    let mut policy = read_policy();
    policy.sort();
    // The exporter's own role: the whole policy.
    assert_eq!(
        template_statements(EXPORTER_ROLE_TEMPLATE),
        policy,
        "{EXPORTER_ROLE_TEMPLATE}"
    );
    // The member role: only reading IAM (no Organizations, no AssumeRole onwards).
    let iam_only: Vec<Statement> = policy
        .into_iter()
        .filter(|s| s.actions.iter().all(|a| a.starts_with("iam:")))
        .collect();
    assert_eq!(
        template_statements(MEMBER_ROLE_TEMPLATE),
        iam_only,
        "{MEMBER_ROLE_TEMPLATE}"
    );
}

// --- The Kubernetes deployment is wired to those roles ----------------------------------

fn yaml_file(path: &str) -> serde_norway::Value {
    serde_norway::from_str(&std::fs::read_to_string(repo_path(path)).unwrap()).unwrap()
}

fn default_of(template: &serde_norway::Value, parameter: &str) -> String {
    template["Parameters"][parameter]["Default"]
        .as_str()
        .unwrap_or_else(|| panic!("no default for {parameter}"))
        .to_string()
}

#[test]
fn the_kubernetes_deployment_uses_the_roles_of_the_templates() {
    let config = "deploy/kubernetes/base/config.yaml";
    let out = std::process::Command::new(BIN)
        .args(["check-config", repo_path(config).to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{config}: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let member = yaml_file(MEMBER_ROLE_TEMPLATE);
    let exporter = yaml_file(EXPORTER_ROLE_TEMPLATE);
    let role_name = yaml_file(config)["accounts"]["organization"]["role_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(role_name, ROLE_NAME, "{config}");
    assert_eq!(default_of(&member, "RoleName"), ROLE_NAME, "{MEMBER_ROLE_TEMPLATE}");
    assert_eq!(
        default_of(&exporter, "MemberRoleName"),
        ROLE_NAME,
        "{EXPORTER_ROLE_TEMPLATE}"
    );

    // IRSA trusts one service account: the one the pods run as, in their namespace.
    let service_account = yaml_file("deploy/kubernetes/base/serviceaccount.yaml");
    assert_eq!(
        service_account["metadata"]["name"].as_str().unwrap(),
        default_of(&exporter, "ServiceAccount")
    );
    for kustomization in [
        "deploy/kubernetes/base/kustomization.yaml",
        "deploy/kubernetes/overlays/prometheus-operator/kustomization.yaml",
        "deploy/kubernetes/overlays/sharded/kustomization.yaml",
    ] {
        assert_eq!(
            yaml_file(kustomization)["namespace"].as_str().unwrap(),
            default_of(&exporter, "Namespace"),
            "{kustomization}"
        );
    }
}
