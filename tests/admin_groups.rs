//! Consumer-group admin calls against real brokers: a group is created by
//! running JoinGroup/SyncGroup by hand, offsets are committed as its member,
//! then the admin client lists, describes, alters and deletes.

mod admin_support;

use std::collections::BTreeMap;
use std::time::Instant;

use admin_support::*;
use ferrokafka::admin::{
    DescribeConsumerGroupsOptions, GroupState, ListConsumerGroupOffsetsOptions, ListGroupsOptions,
    MemberToRemove, OffsetAndMetadata, RemoveMembersOptions, TopicPartition,
};
use ferrokafka::protocol::ErrorCode;
use ferrokafka::testkit::{test_broker_kinds, BrokerKind, Capability, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_lifecycle() {
    for kind in test_broker_kinds() {
        let started = Instant::now();
        let cluster = TestCluster::from_env_or_start(kind).unwrap();
        let name = cluster.kind().map_or("external", BrokerKind::name);
        run(&cluster, name).await;
        println!(
            "{name}: consumer group lifecycle passed in {:?}",
            started.elapsed()
        );
    }
}

async fn run(cluster: &TestCluster, kind: &str) {
    let admin = connect(cluster).await;
    let topic = unique("grp-topic");
    let group = unique("grp");
    create_topic(&admin, &topic, 2).await;
    let tp0 = TopicPartition::new(topic.clone(), 0);
    let tp1 = TopicPartition::new(topic.clone(), 1);

    // A real group: join, sync (assigning both partitions) and commit.
    let member = join_group(&admin, &group, &topic, &[0, 1]).await;
    commit_as_member(&admin, &member, &topic, &[(0, 5), (1, 7)]).await;

    // list_groups asks every broker and merges.
    let listed = admin
        .list_groups(ListGroupsOptions::default())
        .await
        .unwrap();
    assert!(listed.errors.is_empty(), "{kind}: {:?}", listed.errors);
    let ours = listed
        .groups
        .iter()
        .find(|g| g.group_id == group)
        .unwrap_or_else(|| panic!("{kind}: {group} not listed in {listed:?}"));
    assert_eq!(ours.protocol_type, "consumer", "{kind}");
    let stable = admin
        .list_groups(ListGroupsOptions {
            states: vec![GroupState::Stable],
            ..Default::default()
        })
        .await
        .unwrap();
    let empty_only = admin
        .list_groups(ListGroupsOptions {
            states: vec![GroupState::Empty],
            ..Default::default()
        })
        .await
        .unwrap();
    let in_stable = stable.groups.iter().any(|g| g.group_id == group);
    let in_empty = empty_only.groups.iter().any(|g| g.group_id == group);
    match cluster.skip_reason(Capability::ListGroupsStates) {
        Some(reason) => println!(
            "{kind}: list_groups states: {reason}; reported {:?}, listed under Stable filter: {in_stable}, under Empty filter: {in_empty}",
            ours.state
        ),
        None => {
            if let Some(state) = &ours.state {
                assert_eq!(*state, GroupState::Stable, "{kind}");
            }
            assert!(in_stable, "{kind}: {stable:?}");
            assert!(!in_empty, "{kind}: a Stable group passed an Empty filter: {empty_only:?}");
        }
    }

    // describe_consumer_groups: the group and an unknown one, batched.
    let described = admin
        .describe_consumer_groups(
            &[&group, "no-such-group"],
            DescribeConsumerGroupsOptions::default(),
        )
        .await
        .unwrap();
    let d = described[&group].as_ref().unwrap();
    assert_eq!(d.group_id, group);
    assert!(d.coordinator.port > 0);
    match cluster.skip_reason(Capability::DescribeGroupsMembers) {
        Some(reason) => {
            println!("{kind}: describe_consumer_groups: {reason}; got {d:?}");
            // What the broker does report must still be right.
            assert_eq!(d.members.len(), 1, "{kind}: {d:?}");
            assert_eq!(d.members[0].member_id, member.member_id, "{kind}");
            assert!(
                d.members[0].subscription.is_none() && d.members[0].assignment.is_none(),
                "{kind}: {d:?}"
            );
        }
        None => {
            assert_eq!(d.state, GroupState::Stable, "{kind}");
            assert_eq!(d.protocol_type, "consumer", "{kind}");
            assert_eq!(d.partition_assignor, "range", "{kind}");
            assert_eq!(d.members.len(), 1, "{kind}: {d:?}");
            let m = &d.members[0];
            assert_eq!(m.member_id, member.member_id);
            assert!(!m.host.is_empty(), "{kind}: {m:?}");
            let subscription = m.subscription.as_ref().unwrap().as_ref().unwrap();
            assert_eq!(subscription.topics, vec![topic.clone()]);
            assert_eq!(subscription.version, 1);
            assert_eq!(m.assigned_partitions(), &[tp0.clone(), tp1.clone()]);
        }
    }
    let unknown = &described["no-such-group"];
    match unknown {
        // Kafka answers Dead; Tansu answers Empty. Either way: no members.
        Ok(d) => {
            assert!(
                matches!(d.state, GroupState::Dead | GroupState::Empty),
                "{kind}: {d:?}"
            );
            assert!(d.members.is_empty(), "{kind}: {d:?}");
            println!("{kind}: an unknown group is described as {:?}", d.state);
        }
        Err(e) => assert_eq!(
            e.error_code(),
            Some(ErrorCode::GroupIdNotFound),
            "{kind}: {e}"
        ),
    }

    // list offsets: all partitions, and a chosen set.
    let offsets = admin
        .list_consumer_group_offsets(&group, None, ListConsumerGroupOffsetsOptions::default())
        .await
        .unwrap();
    let keeps_metadata = match cluster.skip_reason(Capability::OffsetCommitMetadata) {
        Some(reason) => {
            println!("{kind}: offset metadata: {reason}; only offsets are compared");
            false
        }
        None => true,
    };
    let meta = |m: &str| {
        if keeps_metadata {
            m.to_owned()
        } else {
            "-".to_owned()
        }
    };
    let got = |offsets: &BTreeMap<
        TopicPartition,
        ferrokafka::admin::Result<Option<OffsetAndMetadata>>,
    >,
               tp: &TopicPartition| {
        offsets[tp].as_ref().unwrap().as_ref().map(|o| {
            (
                o.offset,
                if keeps_metadata {
                    o.metadata.clone()
                } else {
                    "-".to_owned()
                },
            )
        })
    };
    assert_eq!(
        got(&offsets, &tp0),
        Some((5, meta("meta-0"))),
        "{kind}: {offsets:?}"
    );
    assert_eq!(got(&offsets, &tp1), Some((7, meta("meta-1"))), "{kind}");
    let chosen = admin
        .list_consumer_group_offsets(&group, Some(std::slice::from_ref(&tp1)), Default::default())
        .await
        .unwrap();
    assert_eq!(chosen.len(), 1, "{kind}: {chosen:?}");
    assert_eq!(got(&chosen, &tp1), Some((7, meta("meta-1"))));

    // Removing a static member that does not exist: a per-member error.
    let removed = admin
        .remove_members_from_consumer_group(
            &group,
            &[MemberToRemove {
                group_instance_id: "nobody".into(),
            }],
            RemoveMembersOptions::default(),
        )
        .await;
    match removed {
        Ok(results) => {
            let r = &results["nobody"];
            assert!(
                r.is_err(),
                "{kind}: removing an unknown static member succeeded: {results:?}"
            );
            println!(
                "{kind}: remove_members_from_consumer_group(nobody) -> {:?}",
                r.as_ref().unwrap_err().error_code()
            );
        }
        // noida answers with a top-level error instead of a per-member one.
        Err(e) => {
            assert_eq!(
                e.error_code(),
                Some(ErrorCode::UnknownMemberId),
                "{kind}: {e}"
            );
            println!("{kind}: remove_members_from_consumer_group(nobody) failed as a whole: {e}");
        }
    }

    // Deleting a group with a member fails per group.
    match cluster.skip_reason(Capability::DeleteGroupsRefusesNonEmpty) {
        // Asking would delete the group the rest of this test needs.
        Some(reason) => {
            println!("{kind}: delete_consumer_groups on a group with members not tried: {reason}")
        }
        None => {
            let busy = admin
                .delete_consumer_groups(&[&group], Default::default())
                .await
                .unwrap();
            let e = busy[&group].as_ref().unwrap_err();
            assert_eq!(
                e.error_code(),
                Some(ErrorCode::NonEmptyGroup),
                "{kind}: {e}"
            );
        }
    }

    // The member leaves; the admin may now rewrite the offsets.
    leave(&admin, &member).await;
    let mut new_offsets = BTreeMap::new();
    new_offsets.insert(
        tp0.clone(),
        OffsetAndMetadata {
            offset: 42,
            leader_epoch: None,
            metadata: "admin".into(),
        },
    );
    new_offsets.insert(tp1.clone(), OffsetAndMetadata::new(43));
    let altered = admin
        .alter_consumer_group_offsets(&group, &new_offsets, Default::default())
        .await
        .unwrap();
    assert_eq!(altered.len(), 2, "{kind}: {altered:?}");
    for (tp, r) in &altered {
        assert!(r.is_ok(), "{kind}: {tp:?}: {r:?}");
    }
    let offsets = admin
        .list_consumer_group_offsets(&group, None, Default::default())
        .await
        .unwrap();
    assert_eq!(
        got(&offsets, &tp0),
        Some((42, meta("admin"))),
        "{kind}: {offsets:?}"
    );
    assert_eq!(got(&offsets, &tp1).map(|o| o.0), Some(43), "{kind}");

    let described = admin
        .describe_consumer_groups(&[&group], Default::default())
        .await
        .unwrap();
    assert_eq!(
        described[&group].as_ref().unwrap().state,
        GroupState::Empty,
        "{kind}"
    );

    // delete offsets (OffsetDelete).
    let deleted = admin
        .delete_consumer_group_offsets(&group, std::slice::from_ref(&tp0), Default::default())
        .await;
    match cluster.skip_reason(Capability::OffsetDelete) {
        Some(reason) => assert_unsupported(kind, "delete_consumer_group_offsets", &reason, deleted),
        None => {
            let deleted = deleted.unwrap();
            assert!(deleted[&tp0].is_ok(), "{kind}: {deleted:?}");
            let offsets = admin
                .list_consumer_group_offsets(&group, None, Default::default())
                .await
                .unwrap();
            assert!(
                offsets.get(&tp0).map_or(true, |r| matches!(r, Ok(None))),
                "{kind}: offset of {tp0:?} survived deletion: {offsets:?}"
            );
            assert_eq!(got(&offsets, &tp1).map(|o| o.0), Some(43), "{kind}");
        }
    }

    // delete the group.
    let deleted = admin
        .delete_consumer_groups(&[&group, "no-such-group"], Default::default())
        .await
        .unwrap();
    assert!(deleted[&group].is_ok(), "{kind}: {deleted:?}");
    println!(
        "{kind}: delete_consumer_groups(no-such-group) -> {:?}",
        deleted["no-such-group"]
    );
    let listed = admin
        .list_groups(ListGroupsOptions::default())
        .await
        .unwrap();
    assert!(
        !listed.groups.iter().any(|g| g.group_id == group),
        "{kind}: {listed:?}"
    );
}
