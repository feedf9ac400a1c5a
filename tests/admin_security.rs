//! ACLs, SCRAM credentials, client quotas, producers and transactions
//! against real brokers. Each broker either performs an operation for real
//! or the test asserts, and prints, the documented gap.

mod admin_support;

use std::time::Instant;

use admin_support::*;
use ferrokafka::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, Admin, ClientQuotaAlteration,
    ClientQuotaEntity, ClientQuotaFilter, ListTransactionsOptions, QuotaEntityType, QuotaOp,
    ResourceType, ScramMechanism, TopicPartition, TransactionState, UserScramCredentialAlteration,
};
use ferrokafka::protocol::ErrorCode;
use ferrokafka::testkit::{test_broker_kinds, BrokerKind, Capability, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_quotas_producers_and_transactions() {
    for kind in test_broker_kinds() {
        let started = Instant::now();
        let cluster = TestCluster::from_env_or_start(kind).unwrap();
        let name = cluster.kind().map_or("external", BrokerKind::name);
        let admin = connect(&cluster).await;
        acls(&cluster, &admin, name).await;
        scram(&cluster, &admin, name).await;
        quotas(&cluster, &admin, name).await;
        producers_and_transactions(&cluster, &admin, name).await;
        println!("{name}: passed in {:?}", started.elapsed());
    }
}

async fn acls(cluster: &TestCluster, admin: &Admin, kind: &str) {
    let topic = unique("acl-topic");
    let binding = AclBinding::literal(
        ResourceType::Topic,
        &topic,
        "User:alice",
        AclOperation::Read,
        AclPermissionType::Allow,
    );
    let created = admin
        .create_acls(std::slice::from_ref(&binding), Default::default())
        .await;
    if let Some(reason) = cluster.skip_reason(Capability::CreateAcls) {
        let e = created.unwrap_err();
        assert!(
            matches!(e, ferrokafka::admin::Error::Decode { .. }),
            "{kind}: {e}"
        );
        println!("{kind}: create_acls: {reason}; got {e}");
        let described = admin
            .describe_acls(&AclBindingFilter::any(), Default::default())
            .await;
        println!("{kind}: describe_acls(any) -> {described:?}");
        described.unwrap();
        return;
    }
    let created = created.unwrap();
    assert_eq!(created.len(), 1);
    let described = admin
        .describe_acls(&binding.to_filter(), Default::default())
        .await;
    if let Some(reason) = cluster.skip_reason(Capability::DescribeAcls) {
        let e = described.unwrap_err();
        assert_eq!(
            e.error_code(),
            Some(ErrorCode::SecurityDisabled),
            "{kind}: {e}"
        );
        let create_error = created[0].1.as_ref().err().and_then(|e| e.error_code());
        println!("{kind}: ACLs: {reason}; describe_acls -> {e}; create_acls -> {create_error:?}");
        let deleted = admin
            .delete_acls(&[binding.to_filter()], Default::default())
            .await
            .unwrap();
        let e = deleted[0].result.as_ref().unwrap_err();
        assert_eq!(
            e.error_code(),
            Some(ErrorCode::SecurityDisabled),
            "{kind}: {e}"
        );
        return;
    }
    created[0].1.as_ref().unwrap();
    let described = described.unwrap();
    assert_eq!(described, vec![binding.clone()], "{kind}");
    let any = admin
        .describe_acls(&AclBindingFilter::any(), Default::default())
        .await
        .unwrap();
    assert!(any.contains(&binding), "{kind}: {any:?}");
    let deleted = admin
        .delete_acls(&[binding.to_filter()], Default::default())
        .await;
    match cluster.skip_reason(Capability::DeleteAcls) {
        Some(reason) => assert_unsupported(kind, "delete_acls", &reason, deleted),
        None => {
            let deleted = deleted.unwrap();
            let matched = deleted[0].result.as_ref().unwrap();
            assert_eq!(matched.len(), 1, "{kind}: {deleted:?}");
            assert_eq!(matched[0].binding, binding);
            assert!(admin
                .describe_acls(&binding.to_filter(), Default::default())
                .await
                .unwrap()
                .is_empty());
        }
    }
}

async fn scram(cluster: &TestCluster, admin: &Admin, kind: &str) {
    let user = unique("scram-user");
    let upsert = [
        UserScramCredentialAlteration::upsert(&user, ScramMechanism::ScramSha256, 4096, "pw-256"),
        UserScramCredentialAlteration::upsert(&user, ScramMechanism::ScramSha512, 8192, "pw-512"),
    ];
    let altered = admin
        .alter_user_scram_credentials(&upsert, Default::default())
        .await;
    if let Some(reason) = cluster.skip_reason(Capability::ScramCredentials) {
        let described = admin
            .describe_user_scram_credentials(None, Default::default())
            .await;
        match altered {
            Ok(altered) => {
                assert!(altered[&user].is_ok(), "{kind}: {altered:?}");
                let e = described.unwrap_err();
                assert!(
                    matches!(e, ferrokafka::admin::Error::Decode { .. }),
                    "{kind}: {e}"
                );
                println!("{kind}: SCRAM: {reason}; alter succeeded, describe failed with {e}");
            }
            Err(_) => {
                assert_unsupported(kind, "alter_user_scram_credentials", &reason, altered);
                assert_unsupported(kind, "describe_user_scram_credentials", &reason, described);
            }
        }
        return;
    }
    let altered = altered.unwrap();
    assert!(altered[&user].is_ok(), "{kind}: {altered:?}");
    let described = admin
        .describe_user_scram_credentials(Some(&[&user]), Default::default())
        .await
        .unwrap();
    let mut creds = described[&user].as_ref().unwrap().credentials.clone();
    creds.sort_by_key(|c| c.mechanism);
    assert_eq!(
        creds
            .iter()
            .map(|c| (c.mechanism, c.iterations))
            .collect::<Vec<_>>(),
        vec![
            (ScramMechanism::ScramSha256, 4096),
            (ScramMechanism::ScramSha512, 8192)
        ],
        "{kind}"
    );
    let all = admin
        .describe_user_scram_credentials(None, Default::default())
        .await
        .unwrap();
    assert!(all.contains_key(&user), "{kind}: {all:?}");
    let deleted = admin
        .alter_user_scram_credentials(
            &[UserScramCredentialAlteration::delete(
                &user,
                ScramMechanism::ScramSha256,
            )],
            Default::default(),
        )
        .await
        .unwrap();
    assert!(deleted[&user].is_ok(), "{kind}: {deleted:?}");
    let described = admin
        .describe_user_scram_credentials(Some(&[&user]), Default::default())
        .await
        .unwrap();
    let creds = &described[&user].as_ref().unwrap().credentials;
    assert_eq!(creds.len(), 1, "{kind}: {creds:?}");
    assert_eq!(creds[0].mechanism, ScramMechanism::ScramSha512);
}

async fn quotas(cluster: &TestCluster, admin: &Admin, kind: &str) {
    let entity =
        ClientQuotaEntity::new().with(QuotaEntityType::ClientId, Some(unique("quota-client")));
    let alteration = ClientQuotaAlteration {
        entity: entity.clone(),
        ops: vec![QuotaOp {
            key: "producer_byte_rate".into(),
            value: Some(1_048_576.0),
        }],
    };
    let altered = admin
        .alter_client_quotas(&[alteration], Default::default())
        .await;
    let described = admin
        .describe_client_quotas(&ClientQuotaFilter::all(), Default::default())
        .await;
    if let Some(reason) = cluster.skip_reason(Capability::ClientQuotas) {
        assert_unsupported(kind, "alter_client_quotas", &reason, altered);
        assert_unsupported(kind, "describe_client_quotas", &reason, described);
        return;
    }
    assert!(altered.unwrap()[&entity].is_ok(), "{kind}");
    let described = described.unwrap();
    assert_eq!(
        described[&entity]["producer_byte_rate"], 1_048_576.0,
        "{kind}"
    );
}

async fn producers_and_transactions(cluster: &TestCluster, admin: &Admin, kind: &str) {
    let topic = unique("prod-topic");
    create_topic(admin, &topic, 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    let producer = init_producer_id(admin, None).await.unwrap();
    produce(admin, &topic, 0, producer, 0, 3, None).await;
    produce(admin, &topic, 0, producer, 3, 2, None).await;

    let described = admin
        .describe_producers(std::slice::from_ref(&tp), Default::default())
        .await;
    match cluster.skip_reason(Capability::DescribeProducers) {
        Some(reason) => {
            let result = described.and_then(|mut m| m.remove(&tp).unwrap());
            match result {
                Ok(states) => {
                    assert!(
                        states.iter().all(|s| s.producer_id >= 0),
                        "{kind}: {states:?}"
                    );
                    println!(
                        "{kind}: describe_producers: {reason}; the call succeeded with {states:?}"
                    );
                }
                Err(_) => assert_unsupported(kind, "describe_producers", &reason, result),
            }
        }
        None => {
            let described = described.unwrap();
            let states = described[&tp].as_ref().unwrap();
            let ours = states
                .iter()
                .find(|s| s.producer_id == producer.0)
                .unwrap_or_else(|| panic!("{kind}: producer {producer:?} not in {states:?}"));
            assert_eq!(ours.producer_epoch, i32::from(producer.1), "{kind}");
            assert_eq!(ours.last_sequence, 4, "{kind}: {ours:?}");
            assert!(ours.last_timestamp > 0, "{kind}");
            assert_eq!(ours.current_transaction_start_offset, None, "{kind}");
        }
    }

    // A transactional producer: InitProducerId registers the id with its coordinator.
    let txn_id = unique("txn");
    let txn_producer = init_producer_id(admin, Some(&txn_id)).await.unwrap();
    let listed = admin
        .list_transactions(ListTransactionsOptions::default())
        .await;
    match cluster.skip_reason(Capability::ListTransactions) {
        Some(reason) => {
            let listed = listed.unwrap();
            // Each broker's failure is per broker.
            assert!(!listed.errors.is_empty(), "{kind}");
            for (id, e) in listed.errors {
                assert!(
                    matches!(e, ferrokafka::admin::Error::UnsupportedVersion { .. }),
                    "{kind}: broker {id}: {e}"
                );
            }
            println!("{kind}: list_transactions: not supported ({reason}); every broker reported UnsupportedVersion");
        }
        None => {
            let listed = listed.unwrap();
            assert!(listed.errors.is_empty(), "{kind}: {:?}", listed.errors);
            let ours = listed
                .transactions
                .iter()
                .find(|t| t.transactional_id == txn_id)
                .unwrap_or_else(|| panic!("{kind}: {txn_id} not listed: {listed:?}"));
            assert_eq!(ours.producer_id, txn_producer.0);
            assert_eq!(ours.state, TransactionState::Empty, "{kind}");
            let filtered = admin
                .list_transactions(ListTransactionsOptions {
                    states: vec![TransactionState::Ongoing],
                    ..Default::default()
                })
                .await
                .unwrap();
            assert!(
                !filtered
                    .transactions
                    .iter()
                    .any(|t| t.transactional_id == txn_id),
                "{kind}: {filtered:?}"
            );
            let by_producer = admin
                .list_transactions(ListTransactionsOptions {
                    producer_ids: vec![txn_producer.0],
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(by_producer.transactions.len(), 1, "{kind}: {by_producer:?}");
        }
    }
    let described = admin
        .describe_transactions(&[&txn_id], Default::default())
        .await
        .unwrap();
    match cluster.skip_reason(Capability::DescribeTransactions) {
        Some(reason) => {
            let r = described.into_values().next().unwrap();
            assert_unsupported(kind, "describe_transactions", &reason, r);
        }
        None => {
            let d = described[&txn_id].as_ref().unwrap();
            assert_eq!(d.state, TransactionState::Empty, "{kind}: {d:?}");
            assert_eq!(d.producer_id, txn_producer.0);
            assert_eq!(d.producer_epoch, txn_producer.1);
            assert_eq!(d.transaction_timeout_ms, 60_000, "{kind}");
            assert!(d.topic_partitions.is_empty(), "{kind}");
            assert_eq!(d.transaction_start_time_ms, None, "{kind}: {d:?}");
        }
    }
}
