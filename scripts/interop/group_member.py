"""Runs one consumer-group member with a real third-party Kafka client until
its standard input closes, printing a JSON line each time its assignment
changes: {"assignment": [partition, ...]}. On end of input it closes the
consumer (leaving the group). Used by tests/mock_cluster.rs to drive group
joins, syncs, heartbeats and coordinator moves on ferrokafka's mock cluster.

usage: group_member.py --client librdkafka|kafka-python --bootstrap HOST:PORT --topic T --group G
"""
import argparse
import json
import sys
import threading


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["librdkafka", "kafka-python"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()

    stop = threading.Event()

    def wait_for_eof():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    last = None

    def report(partitions):
        nonlocal last
        partitions = sorted(partitions)
        if partitions != last:
            last = partitions
            print(json.dumps({"assignment": partitions}), flush=True)

    if args.client == "librdkafka":
        from confluent_kafka import Consumer
        consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 100,
            "partition.assignment.strategy": "range",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 200,
            "auto.offset.reset": "earliest",
        })
        consumer.subscribe([args.topic])
        while not stop.is_set():
            consumer.poll(0.05)
            report(tp.partition for tp in consumer.assignment())
        consumer.close()
    else:
        from kafka import KafkaConsumer
        consumer = KafkaConsumer(
            bootstrap_servers=args.bootstrap,
            group_id=args.group,
            session_timeout_ms=6000,
            heartbeat_interval_ms=100,
            auto_offset_reset="earliest",
            enable_auto_commit=True,
            auto_commit_interval_ms=200,
        )
        consumer.subscribe([args.topic])
        while not stop.is_set():
            consumer.poll(timeout_ms=50)
            report(tp.partition for tp in consumer.assignment())
        consumer.close()


if __name__ == "__main__":
    main()
