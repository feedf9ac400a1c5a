use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::consumer::TopicPartition;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn counts(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
    pairs.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
}

fn member(id: &str, topics: &[&str]) -> GroupMember {
    GroupMember::new(id, Subscription::new(topics.iter().copied()))
}

fn owning(id: &str, topics: &[&str], owned: &[TopicPartition], generation: i32) -> GroupMember {
    GroupMember::new(
        id,
        Subscription::new(topics.iter().copied())
            .with_owned_partitions(owned.to_vec())
            .with_generation_id(generation),
    )
}

fn parts(assignment: &GroupAssignment, id: &str) -> Vec<TopicPartition> {
    let mut p = assignment[id].partitions.clone();
    p.sort();
    p
}

fn sorted(mut v: Vec<TopicPartition>) -> Vec<TopicPartition> {
    v.sort();
    v
}

// ---- range ----

#[test]
fn range_javadoc_example() {
    let out = RangeAssignor
        .assign(
            &counts(&[("t0", 3), ("t1", 3)]),
            &[member("C1", &["t0", "t1"]), member("C0", &["t0", "t1"])],
        )
        .unwrap();
    assert_eq!(
        out["C0"].partitions,
        [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
    );
    assert_eq!(out["C1"].partitions, [tp("t0", 2), tp("t1", 2)]);
}

#[test]
fn range_uneven_split_and_partial_subscriptions() {
    let out = RangeAssignor
        .assign(
            &counts(&[("a", 7), ("b", 2), ("missing-from-nobody", 0)]),
            &[
                member("m1", &["a"]),
                member("m2", &["a", "b"]),
                member("m3", &["a", "unknown"]),
            ],
        )
        .unwrap();
    assert_eq!(out["m1"].partitions, [tp("a", 0), tp("a", 1), tp("a", 2)]);
    assert_eq!(
        out["m2"].partitions,
        [tp("a", 3), tp("a", 4), tp("b", 0), tp("b", 1)]
    );
    assert_eq!(out["m3"].partitions, [tp("a", 5), tp("a", 6)]);
}

#[test]
fn range_orders_static_members_by_instance_id_first() {
    let out = RangeAssignor
        .assign(
            &counts(&[("t", 3)]),
            &[
                member("a-dynamic", &["t"]),
                member("z-member", &["t"]).with_group_instance_id("instance-1"),
                member("b-member", &["t"]).with_group_instance_id("instance-2"),
            ],
        )
        .unwrap();
    assert_eq!(out["z-member"].partitions, [tp("t", 0)]);
    assert_eq!(out["b-member"].partitions, [tp("t", 1)]);
    assert_eq!(out["a-dynamic"].partitions, [tp("t", 2)]);
}

#[test]
fn duplicate_member_ids_are_rejected() {
    let members = [member("x", &["t"]), member("x", &["t"])];
    for assignor in all_assignors() {
        assert_eq!(
            assignor.assign(&counts(&[("t", 2)]), &members),
            Err(AssignError::DuplicateMember("x".into()))
        );
    }
}

// ---- roundrobin ----

#[test]
fn roundrobin_javadoc_example_equal_subscriptions() {
    let out = RoundRobinAssignor
        .assign(
            &counts(&[("t0", 3), ("t1", 3)]),
            &[member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])],
        )
        .unwrap();
    assert_eq!(
        out["C0"].partitions,
        [tp("t0", 0), tp("t0", 2), tp("t1", 1)]
    );
    assert_eq!(
        out["C1"].partitions,
        [tp("t0", 1), tp("t1", 0), tp("t1", 2)]
    );
}

#[test]
fn roundrobin_javadoc_example_unequal_subscriptions() {
    let out = RoundRobinAssignor
        .assign(
            &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]),
            &[
                member("C0", &["t0"]),
                member("C1", &["t0", "t1"]),
                member("C2", &["t0", "t1", "t2"]),
            ],
        )
        .unwrap();
    assert_eq!(out["C0"].partitions, [tp("t0", 0)]);
    assert_eq!(out["C1"].partitions, [tp("t1", 0)]);
    assert_eq!(
        out["C2"].partitions,
        [tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]
    );
}

// ---- sticky ----

#[test]
fn sticky_javadoc_example_equal_subscriptions() {
    let topics = ["t0", "t1", "t2", "t3"];
    let cluster = counts(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
    let sticky = StickyAssignor::default();
    let first = sticky
        .assign(
            &cluster,
            &[
                member("C0", &topics),
                member("C1", &topics),
                member("C2", &topics),
            ],
        )
        .unwrap();
    assert_eq!(parts(&first, "C0"), [tp("t0", 0), tp("t1", 1), tp("t3", 0)]);
    assert_eq!(parts(&first, "C1"), [tp("t0", 1), tp("t2", 0), tp("t3", 1)]);
    assert_eq!(parts(&first, "C2"), [tp("t1", 0), tp("t2", 1)]);
    // C1 leaves: C0 and C2 keep everything and split C1's partitions.
    let second = sticky
        .assign(
            &cluster,
            &[
                owning("C0", &topics, &first["C0"].partitions, 1),
                owning("C2", &topics, &first["C2"].partitions, 1),
            ],
        )
        .unwrap();
    assert_eq!(
        parts(&second, "C0"),
        sorted(vec![tp("t0", 0), tp("t1", 1), tp("t3", 0), tp("t2", 0)])
    );
    assert_eq!(
        parts(&second, "C2"),
        sorted(vec![tp("t1", 0), tp("t2", 1), tp("t0", 1), tp("t3", 1)])
    );
}

#[test]
fn sticky_javadoc_example_unequal_subscriptions() {
    let cluster = counts(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let sticky = StickyAssignor::default();
    let first = sticky
        .assign(
            &cluster,
            &[
                member("C0", &["t0"]),
                member("C1", &["t0", "t1"]),
                member("C2", &["t0", "t1", "t2"]),
            ],
        )
        .unwrap();
    assert_eq!(parts(&first, "C0"), [tp("t0", 0)]);
    assert_eq!(parts(&first, "C1"), [tp("t1", 0), tp("t1", 1)]);
    assert_eq!(parts(&first, "C2"), [tp("t2", 0), tp("t2", 1), tp("t2", 2)]);
    // C0 leaves: its partition goes to C1, nothing else moves.
    let second = sticky
        .assign(
            &cluster,
            &[
                owning("C1", &["t0", "t1"], &first["C1"].partitions, 1),
                owning("C2", &["t0", "t1", "t2"], &first["C2"].partitions, 1),
            ],
        )
        .unwrap();
    assert_eq!(
        parts(&second, "C1"),
        [tp("t0", 0), tp("t1", 0), tp("t1", 1)]
    );
    assert_eq!(
        parts(&second, "C2"),
        [tp("t2", 0), tp("t2", 1), tp("t2", 2)]
    );
}

#[test]
fn sticky_ownership_is_generation_aware() {
    let cluster = counts(&[("t", 2)]);
    let out = StickyAssignor::default()
        .assign(
            &cluster,
            &[
                owning("old", &["t"], &[tp("t", 0), tp("t", 1)], 3),
                owning("new", &["t"], &[tp("t", 0)], 4),
            ],
        )
        .unwrap();
    assert_eq!(parts(&out, "new"), [tp("t", 0)]);
    assert_eq!(parts(&out, "old"), [tp("t", 1)]);
    // Same generation: both claims cancel, and cooperative withholds it from
    // any member that is not its only claimant.
    let out = CooperativeStickyAssignor
        .assign(
            &cluster,
            &[
                owning("a", &["t"], &[tp("t", 0)], 4),
                owning("b", &["t"], &[tp("t", 0)], 4),
            ],
        )
        .unwrap();
    let all: Vec<_> = out.values().flat_map(|a| a.partitions.clone()).collect();
    assert_eq!(all, [tp("t", 1)]);
}

#[test]
fn sticky_user_data_carries_the_previous_assignment_under_eager() {
    let sticky = StickyAssignor::default();
    assert_eq!(sticky.subscription_user_data(&["t".into()], -1), None);
    let previous = Assignment::new(vec![tp("t", 1), tp("t", 2), tp("u", 0)]);
    sticky.on_assignment(&previous, 7);
    let user_data = sticky.subscription_user_data(&["t".into()], 7).unwrap();
    // Java StickyAssignorUserData v1: [topic, [partition]], generation.
    let mut expected = BytesMut::new();
    expected.put_i32(2);
    expected.put_i16(1);
    expected.put_slice(b"t");
    expected.put_i32(2);
    expected.put_i32(1);
    expected.put_i32(2);
    expected.put_i16(1);
    expected.put_slice(b"u");
    expected.put_i32(1);
    expected.put_i32(0);
    expected.put_i32(7);
    assert_eq!(user_data, expected.freeze());
    // Eager members own nothing when they join; the user data says what they had.
    let cluster = counts(&[("t", 3), ("u", 1)]);
    let out = sticky
        .assign(
            &cluster,
            &[
                member("a", &["t", "u"]),
                GroupMember::new(
                    "b",
                    Subscription::new(["t", "u"]).with_user_data(Some(user_data)),
                ),
            ],
        )
        .unwrap();
    assert_eq!(parts(&out, "b"), [tp("t", 1), tp("t", 2)]);
    assert_eq!(parts(&out, "a"), [tp("t", 0), tp("u", 0)]);
    // Garbage user data falls back to the subscription's owned partitions.
    let out = sticky
        .assign(
            &cluster,
            &[GroupMember::new(
                "c",
                Subscription::new(["t"])
                    .with_user_data(Some(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 1]))),
            )],
        )
        .unwrap();
    assert_eq!(parts(&out, "c"), [tp("t", 0), tp("t", 1), tp("t", 2)]);
}

#[test]
fn cooperative_revokes_first_then_hands_out_next_round() {
    let cluster = counts(&[("t", 4)]);
    let coop = CooperativeStickyAssignor;
    let round1 = coop
        .assign(
            &cluster,
            &[
                owning("C0", &["t"], &[tp("t", 0), tp("t", 1)], 1),
                owning("C1", &["t"], &[tp("t", 2), tp("t", 3)], 1),
                member("C2", &["t"]),
            ],
        )
        .unwrap();
    // One partition must move to C2: it is revoked now, given to nobody.
    assert!(round1["C2"].partitions.is_empty());
    let kept: usize = round1.values().map(|a| a.partitions.len()).sum();
    assert_eq!(kept, 3);
    let round2 = coop
        .assign(
            &cluster,
            &[
                owning("C0", &["t"], &round1["C0"].partitions, 2),
                owning("C1", &["t"], &round1["C1"].partitions, 2),
                owning("C2", &["t"], &[], 2),
            ],
        )
        .unwrap();
    assert_eq!(round2["C2"].partitions.len(), 1);
    assert_eq!(round2["C0"].partitions, round1["C0"].partitions);
    assert_eq!(round2["C1"].partitions, round1["C1"].partitions);
}

#[test]
fn cooperative_user_data_is_the_generation_and_old_versions_use_it() {
    let coop = CooperativeStickyAssignor;
    assert_eq!(
        coop.subscription_user_data(&[], 9),
        Some(Bytes::from_static(&[0, 0, 0, 9]))
    );
    // v1 subscriptions have no generation field: it comes from user data.
    let cluster = counts(&[("t", 1)]);
    let stale = GroupMember::new(
        "stale",
        Subscription::new(["t"])
            .with_owned_partitions(vec![tp("t", 0)])
            .with_user_data(coop.subscription_user_data(&[], 2)),
    );
    let current = GroupMember::new(
        "current",
        Subscription::new(["t"])
            .with_owned_partitions(vec![tp("t", 0)])
            .with_user_data(coop.subscription_user_data(&[], 3)),
    );
    let out = coop.assign(&cluster, &[stale, current]).unwrap();
    assert_eq!(out["current"].partitions, [tp("t", 0)]);
    assert!(out["stale"].partitions.is_empty());
}

// ---- properties over random cases ----

fn all_assignors() -> Vec<Arc<dyn Assignor>> {
    parse_assignment_strategy("range,roundrobin,sticky,cooperative-sticky").unwrap()
}

struct Case {
    cluster: BTreeMap<String, i32>,
    subscriptions: Vec<(String, Vec<String>)>,
}

fn random_case(rng: &mut StdRng, equal: bool) -> Case {
    let topic_count = rng.random_range(1..=4);
    let cluster: BTreeMap<String, i32> = (0..topic_count)
        .map(|t| (format!("topic-{t}"), rng.random_range(0..=9)))
        .collect();
    let names: Vec<String> = cluster.keys().cloned().collect();
    let member_count = rng.random_range(1..=7);
    let all: Vec<String> = names.clone();
    let subscriptions = (0..member_count)
        .map(|m| {
            let mut topics: Vec<String> = if equal {
                all.clone()
            } else {
                names
                    .iter()
                    .filter(|_| rng.random_bool(0.6))
                    .cloned()
                    .collect()
            };
            if topics.is_empty() {
                topics.push(names[rng.random_range(0..names.len())].clone());
            }
            (
                format!("member-{m:02}-{}", rng.random_range(0..1000)),
                topics,
            )
        })
        .collect();
    Case {
        cluster,
        subscriptions,
    }
}

fn members_of(
    case: &Case,
    owned: &BTreeMap<String, Vec<TopicPartition>>,
    generation: i32,
) -> Vec<GroupMember> {
    case.subscriptions
        .iter()
        .map(|(id, topics)| {
            GroupMember::new(
                id.as_str(),
                Subscription::new(topics.iter().cloned())
                    .with_owned_partitions(owned.get(id).cloned().unwrap_or_default())
                    .with_generation_id(generation),
            )
        })
        .collect()
}

/// Every partition is assigned to at most one member, only to subscribers,
/// and (unless `partial`) every subscribed partition is assigned.
fn check_valid(case: &Case, out: &GroupAssignment, partial: bool) {
    let mut seen = BTreeSet::new();
    for (id, assignment) in out {
        let topics = &case.subscriptions.iter().find(|(m, _)| m == id).unwrap().1;
        for p in &assignment.partitions {
            assert!(
                topics.iter().any(|t| t == p.topic()),
                "{id} got {p} without subscribing"
            );
            assert!(p.partition() < case.cluster[p.topic()]);
            assert!(seen.insert(p.clone()), "{p} assigned twice");
        }
    }
    assert_eq!(out.len(), case.subscriptions.len());
    if !partial {
        for (topic, &n) in &case.cluster {
            if case.subscriptions.iter().any(|(_, t)| t.contains(topic)) {
                for p in 0..n {
                    assert!(seen.contains(&tp(topic, p)), "{topic}-{p} unassigned");
                }
            }
        }
    }
}

/// No partition could move to another subscriber that holds two fewer.
fn check_balanced(case: &Case, out: &GroupAssignment) {
    for (id, assignment) in out {
        for p in &assignment.partitions {
            for (other, topics) in &case.subscriptions {
                if other != id && topics.iter().any(|t| t == p.topic()) {
                    assert!(
                        out[other].partitions.len() + 2 > assignment.partitions.len(),
                        "{p} could move from {id} to {other}: {out:?}"
                    );
                }
            }
        }
    }
}

fn owned_map(out: &GroupAssignment) -> BTreeMap<String, Vec<TopicPartition>> {
    out.iter()
        .map(|(k, v)| (k.clone(), v.partitions.clone()))
        .collect()
}

#[test]
fn every_assignor_assigns_each_partition_once_to_a_subscriber() {
    let mut rng = StdRng::seed_from_u64(10);
    for round in 0..400 {
        let case = random_case(&mut rng, round % 2 == 0);
        let members = members_of(&case, &BTreeMap::new(), -1);
        for assignor in all_assignors() {
            let out = assignor.assign(&case.cluster, &members).unwrap();
            check_valid(&case, &out, false);
        }
    }
}

#[test]
fn equal_subscriptions_are_balanced_within_one_by_roundrobin_and_sticky() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..300 {
        let case = random_case(&mut rng, true);
        let members = members_of(&case, &BTreeMap::new(), -1);
        for assignor in [
            Arc::new(RoundRobinAssignor) as Arc<dyn Assignor>,
            Arc::new(StickyAssignor::default()),
            Arc::new(CooperativeStickyAssignor),
        ] {
            let out = assignor.assign(&case.cluster, &members).unwrap();
            let sizes: Vec<usize> = out.values().map(|a| a.partitions.len()).collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "{}: {sizes:?}", assignor.name());
        }
    }
}

#[test]
fn sticky_is_balanced_and_keeps_owned_partitions_across_membership_changes() {
    let mut rng = StdRng::seed_from_u64(12);
    let sticky = StickyAssignor::default();
    for _ in 0..300 {
        let equal = rng.random_bool(0.5);
        let mut case = random_case(&mut rng, equal);
        let first = sticky
            .assign(&case.cluster, &members_of(&case, &BTreeMap::new(), 1))
            .unwrap();
        check_valid(&case, &first, false);
        check_balanced(&case, &first);
        // Re-running with the result as ownership changes nothing.
        let again = sticky
            .assign(&case.cluster, &members_of(&case, &owned_map(&first), 1))
            .unwrap();
        assert_eq!(again, first);
        // Members leave and join.
        let previous = owned_map(&first);
        if case.subscriptions.len() > 1 && rng.random_bool(0.5) {
            let gone = rng.random_range(0..case.subscriptions.len());
            case.subscriptions.remove(gone);
        }
        let extra = random_case(&mut rng, equal);
        if rng.random_bool(0.5) {
            let topics: Vec<String> = if equal {
                case.cluster.keys().cloned().collect()
            } else {
                vec![case.cluster.keys().next().unwrap().clone()]
            };
            case.subscriptions
                .push((format!("joiner-{}", extra.subscriptions.len()), topics));
        }
        let second = sticky
            .assign(&case.cluster, &members_of(&case, &previous, 2))
            .unwrap();
        check_valid(&case, &second, false);
        check_balanced(&case, &second);
        if equal {
            // Members never lose a partition they owned unless they held
            // more than the largest balanced share.
            let total: usize = second.values().map(|a| a.partitions.len()).sum();
            let quota = total.div_ceil(case.subscriptions.len());
            for (id, assignment) in &second {
                let owned = previous.get(id).cloned().unwrap_or_default();
                let kept = owned
                    .iter()
                    .filter(|p| assignment.partitions.contains(p))
                    .count();
                assert!(
                    kept >= owned.len().min(quota.saturating_sub(1)),
                    "{id} kept {kept} of {}",
                    owned.len()
                );
            }
        }
    }
}

#[test]
fn cooperative_never_hands_a_revoked_partition_to_a_new_owner_in_the_same_round() {
    let mut rng = StdRng::seed_from_u64(13);
    let coop = CooperativeStickyAssignor;
    for _ in 0..300 {
        let equal = rng.random_bool(0.5);
        let mut case = random_case(&mut rng, equal);
        let mut owned = owned_map(
            &coop
                .assign(&case.cluster, &members_of(&case, &BTreeMap::new(), 1))
                .unwrap(),
        );
        // Membership changes, then rebalances until stable.
        case.subscriptions
            .push(("zz-joiner".into(), case.cluster.keys().cloned().collect()));
        if case.subscriptions.len() > 2 {
            let gone = rng.random_range(0..case.subscriptions.len() - 1);
            let (id, _) = case.subscriptions.remove(gone);
            owned.remove(&id);
        }
        let mut generation = 2;
        let mut rounds = 0;
        loop {
            let out = coop
                .assign(&case.cluster, &members_of(&case, &owned, generation))
                .unwrap();
            check_valid(&case, &out, true);
            for (id, assignment) in &out {
                for p in &assignment.partitions {
                    let holder = owned.iter().find(|(_, ps)| ps.contains(p)).map(|(m, _)| m);
                    assert!(
                        holder.is_none() || holder == Some(id),
                        "{p} moved to {id} while {holder:?} holds it"
                    );
                }
            }
            let next = owned_map(&out);
            rounds += 1;
            if next == owned {
                break;
            }
            owned = next;
            generation += 1;
            assert!(rounds <= 3, "cooperative rebalances did not settle");
        }
        let settled = coop
            .assign(&case.cluster, &members_of(&case, &owned, generation))
            .unwrap();
        check_valid(&case, &settled, false);
        check_balanced(&case, &settled);
    }
}

// ---- protocol formats ----

#[test]
fn subscription_round_trips_in_every_version() {
    let full = Subscription::new(["a", "b"])
        .with_user_data(Some(Bytes::from_static(b"ud")))
        .with_owned_partitions(vec![tp("a", 0), tp("a", 3), tp("b", 1)])
        .with_generation_id(42)
        .with_rack_id(Some("rack-1".into()));
    for version in 0..=3i16 {
        let bytes = full.encode_version(version).unwrap();
        assert_eq!(&bytes[..2], version.to_be_bytes());
        let decoded = Subscription::decode(bytes).unwrap();
        let mut expected = full.clone();
        if version < 1 {
            expected.owned_partitions.clear();
        }
        if version < 2 {
            expected.generation_id = -1;
        }
        if version < 3 {
            expected.rack_id = None;
        }
        assert_eq!(decoded, expected, "version {version}");
    }
    assert_eq!(Subscription::decode(full.encode().unwrap()).unwrap(), full);
}

#[test]
fn assignment_round_trips_in_every_version() {
    let full = Assignment {
        partitions: vec![tp("a", 2), tp("b", 0), tp("a", 5)],
        user_data: Some(Bytes::from_static(b"x")),
    };
    for version in 0..=3i16 {
        let decoded = Assignment::decode(full.encode_version(version).unwrap()).unwrap();
        // Partitions come back grouped by topic.
        assert_eq!(decoded.partitions, [tp("a", 2), tp("a", 5), tp("b", 0)]);
        assert_eq!(decoded.user_data, full.user_data);
    }
    assert_eq!(
        Assignment::decode(Bytes::new()).unwrap(),
        Assignment::default()
    );
}

#[test]
fn subscription_v0_known_bytes() {
    let bytes = Subscription::new(["t"]).encode_version(0).unwrap();
    assert_eq!(
        &bytes[..],
        [0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]
    );
}

#[test]
fn newer_versions_decode_as_the_highest_known_and_bad_input_is_an_error() {
    let sub = Subscription::new(["t"])
        .with_generation_id(3)
        .with_rack_id(Some("r".into()));
    let mut bytes = BytesMut::from(&sub.encode().unwrap()[..]);
    bytes[0..2].copy_from_slice(&9i16.to_be_bytes());
    bytes.put_slice(b"future fields");
    assert_eq!(Subscription::decode(bytes.freeze()).unwrap(), sub);

    let mut assignment = BytesMut::from(&Assignment::new(vec![tp("t", 1)]).encode().unwrap()[..]);
    assignment[0..2].copy_from_slice(&5i16.to_be_bytes());
    assert_eq!(
        Assignment::decode(assignment.freeze()).unwrap().partitions,
        [tp("t", 1)]
    );

    assert_eq!(
        Subscription::decode(Bytes::from_static(&[0])),
        Err(GroupProtocolError::MissingVersion(1))
    );
    assert_eq!(
        Subscription::decode(Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0])),
        Err(GroupProtocolError::UnsupportedVersion(-1))
    );
    let full = sub.encode().unwrap();
    for cut in 2..full.len() {
        assert!(
            matches!(
                Subscription::decode(full.slice(..cut)),
                Err(GroupProtocolError::Decode { .. })
            ),
            "truncated at {cut}"
        );
    }
    // A huge array count does not allocate or panic.
    let hostile = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff]);
    assert!(Subscription::decode(hostile).is_err());
}

// ---- strategy ----

#[test]
fn strategy_parses_names_and_java_class_names_in_order() {
    let names = |s: &str| -> Vec<String> {
        parse_assignment_strategy(s)
            .unwrap()
            .iter()
            .map(|a| a.name().to_owned())
            .collect()
    };
    assert_eq!(
        names(DEFAULT_ASSIGNMENT_STRATEGY),
        ["range", "cooperative-sticky"]
    );
    assert_eq!(
        names(
            "org.apache.kafka.clients.consumer.RoundRobinAssignor, org.apache.kafka.clients.consumer.StickyAssignor,\
             org.apache.kafka.clients.consumer.CooperativeStickyAssignor,org.apache.kafka.clients.consumer.RangeAssignor"
        ),
        ["roundrobin", "sticky", "cooperative-sticky", "range"]
    );
    assert!(parse_assignment_strategy("range,range").is_err());
    assert!(
        parse_assignment_strategy("range,org.apache.kafka.clients.consumer.RangeAssignor").is_err()
    );
    assert!(parse_assignment_strategy("fair").is_err());
    assert!(parse_assignment_strategy(" , ").is_err());
}

#[test]
fn rebalance_protocol_is_cooperative_only_when_every_assignor_supports_it() {
    let p = |s: &str| rebalance_protocol(&parse_assignment_strategy(s).unwrap());
    assert_eq!(
        p("cooperative-sticky"),
        Some(RebalanceProtocol::Cooperative)
    );
    assert_eq!(
        p("cooperative-sticky,range"),
        Some(RebalanceProtocol::Eager)
    );
    assert_eq!(p("range"), Some(RebalanceProtocol::Eager));
    assert_eq!(rebalance_protocol(&[]), None);
}

#[test]
fn group_protocol_choice_follows_the_coordinator_vote() {
    // All support both; the majority prefers range.
    let a: &[&str] = &["cooperative-sticky", "range"];
    let b: &[&str] = &["range", "cooperative-sticky"];
    assert_eq!(choose_group_protocol(&[a, b, b]), Some("range"));
    assert_eq!(
        choose_group_protocol(&[a, a, b]),
        Some("cooperative-sticky")
    );
    // A member that only knows range forces range.
    assert_eq!(choose_group_protocol(&[a, &["range"]]), Some("range"));
    assert_eq!(choose_group_protocol(&[&["roundrobin"], &["range"]]), None);
    assert_eq!(choose_group_protocol(&[]), None);
}

// ---- bytes written by kafka-python 2.x (captured from its encoders) ----

fn hex(s: &str) -> Bytes {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect::<Vec<u8>>()
        .into()
}

#[test]
fn kafka_python_subscriptions_and_assignments_decode_and_match_our_encoding() {
    let expected_sub = |v: i16| {
        match v {
        0 => "000000000002000161000162000000027564",
        1 => "00010000000200016100016200000002756400000001000161000000020000000000000003",
        2 => "000200000002000161000162000000027564000000010001610000000200000000000000030000002a",
        _ => "000300000002000161000162000000027564000000010001610000000200000000000000030000002a00027231",
    }
    };
    let sub = Subscription::new(["a", "b"])
        .with_user_data(Some(Bytes::from_static(b"ud")))
        .with_owned_partitions(vec![tp("a", 0), tp("a", 3)])
        .with_generation_id(42)
        .with_rack_id(Some("r1".into()));
    let assignment = Assignment {
        partitions: vec![tp("a", 2), tp("a", 5)],
        user_data: Some(Bytes::from_static(b"x")),
    };
    for v in 0..=3i16 {
        let theirs = hex(expected_sub(v));
        assert_eq!(sub.encode_version(v).unwrap(), theirs, "subscription v{v}");
        let decoded = Subscription::decode(theirs).unwrap();
        assert_eq!(decoded.topics, ["a", "b"]);
        let theirs = hex(&format!(
            "000{v}000000010001610000000200000002000000050000000178"
        ));
        assert_eq!(
            assignment.encode_version(v).unwrap(),
            theirs,
            "assignment v{v}"
        );
        assert_eq!(Assignment::decode(theirs).unwrap(), assignment);
    }
}

#[test]
fn kafka_python_sticky_user_data_and_cooperative_owned_partitions_are_honoured() {
    // kafka-python StickyPartitionAssignor: v0 subscription to [t1, t0] whose
    // user data says it had t0-1, t0-0, t1-2 in generation 5 (kafka-python
    // puts an i16 version before Java's StickyAssignorUserData layout).
    let sticky = Subscription::decode(hex(
        "0000000000020002743100027430000000260001000000020002743000000002000000010000000000027431000000010000000200000005",
    ))
    .unwrap();
    assert_eq!(sticky.topics, ["t1", "t0"]);
    let out = StickyAssignor::default()
        .assign(
            &counts(&[("t0", 2), ("t1", 3)]),
            &[
                GroupMember::new("python", sticky),
                member("rust", &["t0", "t1"]),
            ],
        )
        .unwrap();
    assert_eq!(
        parts(&out, "python"),
        [tp("t0", 0), tp("t0", 1), tp("t1", 2)]
    );
    assert_eq!(parts(&out, "rust"), [tp("t1", 0), tp("t1", 1)]);

    // kafka-python CooperativeStickyAssignor: v1 with owned t0-1 and t1-0.
    let coop = Subscription::decode(hex(
        "00010000000200027430000274310000000000000002000274300000000100000001000274310000000100000000",
    ))
    .unwrap();
    assert_eq!(coop.owned_partitions, [tp("t0", 1), tp("t1", 0)]);
    assert_eq!(coop.user_data, Some(Bytes::new()));
    let out = CooperativeStickyAssignor
        .assign(
            &counts(&[("t0", 2), ("t1", 2)]),
            &[
                GroupMember::new("python", coop),
                member("rust", &["t0", "t1"]),
            ],
        )
        .unwrap();
    assert_eq!(parts(&out, "python"), [tp("t0", 1), tp("t1", 0)]);
    assert_eq!(parts(&out, "rust"), [tp("t0", 0), tp("t1", 1)]);
}
