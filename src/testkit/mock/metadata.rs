//! Cluster-level APIs: Metadata, CreateTopics, DeleteTopics, FindCoordinator.

use std::sync::Arc;

use crate::protocol::messages::create_topics_response::CreatableTopicResult;
use crate::protocol::messages::delete_topics_response::DeletableTopicResult;
use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use crate::protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};
use crate::protocol::{ErrorCode, Uuid};

use super::state::{Shared, State};

pub(super) fn metadata(
    shared: &Arc<Shared>,
    _node_id: i32,
    request: &MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let mut state = shared.lock();
    let brokers = state
        .brokers
        .iter()
        .filter(|b| b.alive)
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(b.node_id)
                .with_host("127.0.0.1".into())
                .with_port(i32::from(b.port))
        })
        .collect();
    let all = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let topics = if all {
        state
            .topics
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|name| topic_metadata(&state, &name))
            .collect()
    } else {
        let auto_create =
            state.options.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
        request
            .topics
            .iter()
            .flatten()
            .map(|t| match &t.name {
                Some(name) => {
                    if !state.topics.contains_key(name) && auto_create {
                        let _ = state.create_topic(name, -1, -1);
                    }
                    topic_metadata(&state, name)
                }
                None => match state.topic_name_by_id(t.topic_id) {
                    Some(name) => topic_metadata(&state, &name),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(t.topic_id)
                        .with_error_code(ErrorCode::UnknownTopicId.code()),
                },
            })
            .collect()
    };
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if version >= 1 {
        response = response.with_controller_id(state.controller());
    }
    if version >= 2 {
        response = response.with_cluster_id(Some(state.cluster_id.clone()));
    }
    response
}

fn topic_metadata(state: &State, name: &str) -> MetadataResponseTopic {
    let Some(topic) = state.topics.get(name) else {
        return MetadataResponseTopic::default()
            .with_name(Some(name.to_owned()))
            .with_error_code(ErrorCode::UnknownTopicOrPartition.code());
    };
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, log)| {
            let alive: Vec<i32> = log
                .replicas
                .iter()
                .copied()
                .filter(|&r| state.is_alive(r))
                .collect();
            let offline: Vec<i32> = log
                .replicas
                .iter()
                .copied()
                .filter(|&r| !state.is_alive(r))
                .collect();
            let error = if log.leader < 0 {
                ErrorCode::LeaderNotAvailable
            } else {
                ErrorCode::None
            };
            MetadataResponsePartition::default()
                .with_error_code(error.code())
                .with_partition_index(index as i32)
                .with_leader_id(log.leader)
                .with_leader_epoch(log.leader_epoch)
                .with_replica_nodes(log.replicas.clone())
                .with_isr_nodes(alive)
                .with_offline_replicas(offline)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(name.to_owned()))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}

pub(super) fn create_topics(
    shared: &Arc<Shared>,
    _node_id: i32,
    request: &CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut state = shared.lock();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            // Any broker takes it, as Kafka 3.x brokers forward to the controller.
            let outcome = if !t.assignments.is_empty() {
                Err(ErrorCode::InvalidRequest)
            } else if request.validate_only {
                if state.topics.contains_key(&t.name) {
                    Err(ErrorCode::TopicAlreadyExists)
                } else {
                    Ok(Uuid::ZERO)
                }
            } else {
                state.create_topic(&t.name, t.num_partitions, t.replication_factor)
            };
            match outcome {
                Ok(id) => {
                    let topic = state.topics.get(&t.name);
                    let partitions =
                        topic.map_or(t.num_partitions, |tp| tp.partitions.len() as i32);
                    let replication = topic
                        .and_then(|tp| tp.partitions.first())
                        .map_or(t.replication_factor, |p| p.replicas.len() as i16);
                    let mut result = result;
                    if version >= 5 {
                        result = result
                            .with_num_partitions(partitions)
                            .with_replication_factor(replication);
                    }
                    if version >= 7 {
                        result = result.with_topic_id(id);
                    }
                    result
                }
                Err(code) => {
                    let mut result = result.with_error_code(code.code());
                    if version >= 1 {
                        result = result.with_error_message(Some(code.description().into()));
                    }
                    if version >= 5 {
                        result = result.with_num_partitions(-1).with_replication_factor(-1);
                    }
                    result
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

pub(super) fn delete_topics(
    shared: &Arc<Shared>,
    _node_id: i32,
    request: &DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut state = shared.lock();
    let targets: Vec<(Option<String>, Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.clone()), Uuid::ZERO))
        .chain(request.topics.iter().map(|t| (t.name.clone(), t.topic_id)))
        .collect();
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| state.topic_name_by_id(id));
            let code = match &name {
                Some(n) if state.topics.remove(n).is_some() => ErrorCode::None,
                _ if id != Uuid::ZERO => ErrorCode::UnknownTopicId,
                _ => ErrorCode::UnknownTopicOrPartition,
            };
            let mut result = DeletableTopicResult::default()
                .with_name(name)
                .with_error_code(code.code());
            if version >= 6 {
                result = result.with_topic_id(id);
            }
            result
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(super) fn find_coordinator(
    shared: &Arc<Shared>,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let mut state = shared.lock();
    let mut lookup = |key: &str| -> (ErrorCode, i32, i32) {
        if request.key_type > 1 {
            return (ErrorCode::InvalidRequest, -1, -1);
        }
        let node = state.coordinator(request.key_type, key);
        match state.broker(node) {
            Some(b) if b.alive => (ErrorCode::None, node, i32::from(b.port)),
            _ => (ErrorCode::CoordinatorNotAvailable, -1, -1),
        }
    };
    if version < 4 {
        let (code, node, port) = lookup(&request.key);
        FindCoordinatorResponse::default()
            .with_error_code(code.code())
            .with_node_id(node)
            .with_host(if node >= 0 {
                "127.0.0.1".into()
            } else {
                String::new()
            })
            .with_port(port)
    } else {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (code, node, port) = lookup(key);
                Coordinator::default()
                    .with_key(key.clone())
                    .with_error_code(code.code())
                    .with_node_id(node)
                    .with_host(if node >= 0 {
                        "127.0.0.1".into()
                    } else {
                        String::new()
                    })
                    .with_port(port)
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    }
}
