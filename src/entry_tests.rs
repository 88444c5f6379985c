use serde_json::json;

use super::*;

fn digest(c: char) -> Digest {
    format!("sha256:{}", c.to_string().repeat(64))
        .parse()
        .unwrap()
}

#[test]
fn roles_read_as_a_kind_and_their_data() {
    let cases = [
        (Role::Version, json!({"kind": "version"})),
        (
            Role::Floating {
                series: "{major}.{minor}".into(),
            },
            json!({"kind": "floating", "series": "{major}.{minor}"}),
        ),
        (
            Role::Attached {
                subject: digest('a'),
            },
            json!({"kind": "attached", "subject": digest('a').to_string()}),
        ),
    ];
    for (role, json) in cases {
        assert_eq!(serde_json::to_value(&role).unwrap(), json);
        assert_eq!(serde_json::from_value::<Role>(json).unwrap(), role);
    }
    let bad = json!({"kind": "attached", "subject": "sha256-abc.sig"});
    assert!(serde_json::from_value::<Role>(bad).is_err());
}

#[test]
fn actions_keep_their_reasons_beside_the_action() {
    let cases = [
        (Action::Create, json!({"action": "create"})),
        (Action::Update, json!({"action": "update"})),
        (Action::UNCHANGED, json!({"action": "unchanged"})),
        (
            Action::Unchanged {
                kept_at: Some("1.11.0".into()),
            },
            json!({"action": "unchanged", "kept_at": "1.11.0"}),
        ),
        (
            Action::blocked("pinned"),
            json!({"action": "blocked", "reason": "pinned"}),
        ),
    ];
    for (action, json) in cases {
        assert_eq!(serde_json::to_value(&action).unwrap(), json);
        assert_eq!(serde_json::from_value::<Action>(json).unwrap(), action);
    }
    // A refusal without its reason means nothing.
    assert!(serde_json::from_value::<Action>(json!({"action": "blocked"})).is_err());
}

fn entry(tag: &str, source_tag: &str, role: Role) -> PlanEntry {
    PlanEntry {
        role,
        ..PlanEntry::creating(
            ("dst", "app", tag),
            ("src", "app", source_tag),
            &digest('b'),
        )
    }
}

#[test]
fn an_entry_reads_flat_with_its_role() {
    let mut kept = entry(
        "1",
        "1.2.0",
        Role::Floating {
            series: "{major}".into(),
        },
    );
    kept.action = Action::Unchanged {
        kept_at: Some("1.3.0".into()),
    };
    kept.travel.mode = Transfer::CopyNotMove;
    let json = serde_json::to_value(&kept).unwrap();
    assert_eq!(json["action"], "unchanged");
    assert_eq!(json["kept_at"], "1.3.0");
    assert_eq!(
        json["role"],
        json!({"kind": "floating", "series": "{major}"})
    );
    assert_eq!(json["mode"], "copy_not_move");
    assert_eq!(serde_json::from_value::<PlanEntry>(json).unwrap(), kept);
    assert_eq!(
        kept.remark().as_deref(),
        Some("kept: the target's `1` is at 1.3.0, newer than 1.2.0")
    );
}

#[test]
fn late_entries_follow_what_their_role_names() {
    let version = entry("1.2.0", "1.2.0", Role::Version);
    let other = entry("1.3.0", "1.3.0", Role::Version);
    let floating = entry(
        "1",
        "1.2.0",
        Role::Floating {
            series: "{major}".into(),
        },
    );
    assert!(floating.is_late() && floating.follows(&version) && !floating.follows(&other));
    // The subject is the role's digest, not a guess from the tag's name.
    let signature = entry(
        "sha256-cccc.sig",
        "sha256-cccc.sig",
        Role::Attached {
            subject: digest('b'),
        },
    );
    assert!(signature.is_late() && signature.follows(&version));
    let mut filtered = version.clone();
    filtered.target.digest = Some(digest('f'));
    assert!(!signature.follows(&filtered));
    assert!(!version.is_late() && !version.follows(&other));
}
