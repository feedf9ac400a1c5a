"""Runs one consumer-group member with a real third-party Kafka client and
reports what it does as JSON lines on stdout, one object per event:

  {"event": "started"}
  {"event": "assigned", "partitions": [[topic, p], ...]}   rebalance callback
  {"event": "revoked",  "partitions": [[topic, p], ...]}   (cooperative: only
  {"event": "lost",     "partitions": [[topic, p], ...]}    the moved ones)
  {"event": "assignment", "partitions": [[topic, p], ...]} whole assignment
                                                           after each change
  {"event": "records", "records": [[topic, p, offset, value], ...]}
                                                           one line per poll;
                                                           value as text
  {"event": "commit", "offsets": [[topic, p, next_offset], ...]}
                                                           a commit that the
                                                           broker accepted
  {"event": "commit_failed", "error": "..."}
  {"event": "closed"}

Offsets are committed by hand (never auto-commit), so that every committed
offset is reported: the consumed positions every --commit-interval-ms, the
revoked partitions' positions in the revoke callback, and everything on a
graceful stop.

Stopping: closing standard input or SIGTERM stops gracefully (commit, then
close: LeaveGroup unless the member is static). SIGKILL leaves no trace in the
group, so its session has to time out.

Diagnosing: FK_PEER_DEBUG=cgrp,protocol (any librdkafka `debug` contexts) in
the environment turns on librdkafka's debug log (kafka-python: its DEBUG
logging), on stderr, which the tests keep (GroupMember::stderr_tail).

Used by tests/consumer_group_mixed.rs (mixed groups with ferrokafka) and
tests/mock_cluster.rs (joins, syncs and coordinator moves on the mock).

usage: group_member.py --client librdkafka|kafka-python --bootstrap H:P
           --topic T [--topic T2] --group G
           [--strategy range|roundrobin|cooperative-sticky] [--instance-id ID]
           [--session-timeout-ms N] [--heartbeat-interval-ms N] [--max-poll-interval-ms N]
           [--commit-interval-ms N] [--max-poll-records N]
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

stop = threading.Event()
out_lock = threading.Lock()


def emit(event, **fields):
    fields["event"] = event
    line = json.dumps(fields)
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def pairs(partitions):
    return sorted([tp.topic, tp.partition] for tp in partitions)


def text(value):
    return None if value is None else bytes(value).decode("utf-8", "replace")


class Positions:
    """The next offset to commit per (topic, partition), from what was consumed."""

    def __init__(self):
        self.next = {}
        self.committed = {}

    def consumed(self, topic, partition, offset):
        self.next[(topic, partition)] = offset + 1

    def uncommitted(self, only=None):
        return {
            key: offset for key, offset in self.next.items()
            if self.committed.get(key) != offset and (only is None or key in only)
        }

    def done(self, offsets):
        self.committed.update(offsets)

    def forget(self, keys):
        for key in keys:
            self.next.pop(key, None)
            self.committed.pop(key, None)


class Member:
    """What both clients share: positions, commits, callbacks and the poll loop.
    `commit_offsets` commits {(topic, partition): next_offset} synchronously
    with the client, raising on failure."""

    def __init__(self, commit_offsets, commit_in_callback=None):
        self.positions = Positions()
        self.commit_offsets = commit_offsets
        # kafka-python 3 cannot block in a rebalance callback: it commits
        # asynchronously there (the OffsetCommit goes out before the JoinGroup)
        # and reports through self.committed / self.commit_failed.
        self.commit_in_callback = commit_in_callback

    def committed(self, offsets):
        self.positions.done(offsets)
        emit("commit", offsets=sorted([t, p, o] for (t, p), o in offsets.items()))

    def commit_failed(self, error):
        emit("commit_failed", error=repr(error))

    def commit(self, offsets, in_callback=False):
        if not offsets:
            return
        if in_callback and self.commit_in_callback is not None:
            self.commit_in_callback(offsets)
            return
        try:
            self.commit_offsets(offsets)
        except Exception as e:  # each client raises its own error types here
            self.commit_failed(e)
            return
        self.committed(offsets)

    def assigned(self, partitions):
        emit("assigned", partitions=pairs(partitions))

    def revoked(self, partitions):
        keys = {(tp.topic, tp.partition) for tp in partitions}
        self.commit(self.positions.uncommitted(keys), in_callback=True)
        self.positions.forget(keys)
        emit("revoked", partitions=pairs(partitions))

    def lost(self, partitions):
        self.positions.forget({(tp.topic, tp.partition) for tp in partitions})
        emit("lost", partitions=pairs(partitions))

    def run(self, args, poll, assignment_of, close):
        """Polls until stopped, reporting records and assignment changes and
        committing consumed positions every --commit-interval-ms; then commits
        once more and closes."""
        emit("started")
        last_assignment = None
        next_commit = time.monotonic() + args.commit_interval_ms / 1000.0
        while not stop.is_set():
            batch = []
            for topic, partition, offset, value in poll():
                self.positions.consumed(topic, partition, offset)
                batch.append([topic, partition, offset, text(value)])
            if batch:
                emit("records", records=batch)
            assignment = pairs(assignment_of())
            if assignment != last_assignment:
                last_assignment = assignment
                emit("assignment", partitions=assignment)
            if time.monotonic() >= next_commit:
                self.commit(self.positions.uncommitted())
                next_commit = time.monotonic() + args.commit_interval_ms / 1000.0
        self.commit(self.positions.uncommitted())
        close()
        emit("closed")


def run_librdkafka(args):
    from confluent_kafka import Consumer, TopicPartition

    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": args.heartbeat_interval_ms,
        "max.poll.interval.ms": args.max_poll_interval_ms,
        "partition.assignment.strategy": args.strategy,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "topic.metadata.refresh.interval.ms": 2000,
    }
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    if os.environ.get("FK_PEER_DEBUG"):
        config["debug"] = os.environ["FK_PEER_DEBUG"]
    consumer = Consumer(config)
    member = Member(lambda offsets: consumer.commit(
        offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
        asynchronous=False,
    ))
    consumer.subscribe(
        args.topic,
        on_assign=lambda c, partitions: member.assigned(partitions),
        on_revoke=lambda c, partitions: member.revoked(partitions),
        on_lost=lambda c, partitions: member.lost(partitions),
    )

    def poll():
        for m in consumer.consume(args.max_poll_records, 0.05):
            if m.error():
                print("librdkafka: %s" % m.error(), file=sys.stderr, flush=True)
                continue
            yield m.topic(), m.partition(), m.offset(), m.value()

    member.run(args, poll, consumer.assignment, consumer.close)


def keep_pending_joins(coordinator_class):
    """Works around a kafka-python 3.0.12 bug that can leave a member
    unassigned, without heartbeats, until its session expires.

    Its join loop runs while need_rejoin() holds, and a poll whose timeout
    ends mid-join leaves the JoinGroup/SyncGroup task in flight for the next
    poll to pick up. When the rejoin was asked for by a metadata change (the
    leader's assignment snapshot differs from the metadata), the leader's
    own assignment inside that task makes need_rejoin() false again, so the
    next poll never looks at the task: the completed SyncGroup is dropped.
    As the Java client does (rejoinNeededOrPending), a join in flight counts
    as a rejoin needed."""
    plain = coordinator_class.need_rejoin

    def need_rejoin_or_pending(self):
        return getattr(self, "_join_task", None) is not None or plain(self)

    coordinator_class.need_rejoin = need_rejoin_or_pending


def run_kafka_python(args):
    from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.consumer import ConsumerCoordinator

    if os.environ.get("FK_PEER_DEBUG"):
        import logging
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    keep_pending_joins(ConsumerCoordinator)
    strategies = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "cooperative-sticky": CooperativeStickyAssignor,
    }
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        group_instance_id=args.instance_id or None,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        max_poll_interval_ms=args.max_poll_interval_ms,
        partition_assignment_strategy=[strategies[args.strategy]],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=args.max_poll_records,
        metadata_max_age_ms=2000,
    )
    def to_kafka(offsets):
        return {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}

    def commit_in_callback(offsets):
        def done(_, response):
            if isinstance(response, Exception):
                member.commit_failed(response)
            else:
                member.committed(offsets)
        consumer.commit_async(to_kafka(offsets), callback=done)

    member = Member(lambda offsets: consumer.commit(to_kafka(offsets)), commit_in_callback)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            member.revoked(revoked)

        def on_partitions_assigned(self, assigned):
            member.assigned(assigned)

        def on_partitions_lost(self, lost):
            member.lost(lost)

    consumer.subscribe(args.topic, listener=Listener())

    def poll():
        for messages in consumer.poll(timeout_ms=50).values():
            for m in messages:
                yield m.topic, m.partition, m.offset, m.value

    member.run(args, poll, consumer.assignment, consumer.close)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["librdkafka", "kafka-python"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True, action="append")
    parser.add_argument("--group", required=True)
    parser.add_argument("--strategy", default="range",
                        choices=["range", "roundrobin", "cooperative-sticky"])
    parser.add_argument("--instance-id", default="")
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=300)
    parser.add_argument("--max-poll-interval-ms", type=int, default=300000)
    parser.add_argument("--commit-interval-ms", type=int, default=500)
    parser.add_argument("--max-poll-records", type=int, default=500)
    args = parser.parse_args()

    def wait_for_eof():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.client == "librdkafka":
        run_librdkafka(args)
    else:
        run_kafka_python(args)


if __name__ == "__main__":
    main()
