"""Consumes a topic from offset 0 with a real third-party Kafka client and
prints each record as one JSON line: {"partition", "offset", "timestamp",
"key", "value", "headers"} with bytes as hex (or null). Used through
tests/support/peers.rs by the interoperability, producer and mock-cluster
tests to check that what ferrokafka wrote reads back identically in
librdkafka (confluent-kafka) and kafka-python.

usage: consume.py --client librdkafka|kafka-python --bootstrap HOST:PORT --topic T --count N
                  [--partitions N] [--isolation read_uncommitted|read_committed]
"""
import argparse
import json
import sys
import time


def hexify(b):
    return None if b is None else bytes(b).hex()


def emit(partition, offset, timestamp, key, value, headers):
    print(json.dumps({
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "key": hexify(key),
        "value": hexify(value),
        "headers": [[k, hexify(v)] for k, v in (headers or [])],
    }), flush=True)


def with_librdkafka(args):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "ferrokafka-interop-" + args.topic,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": args.isolation,
    })
    consumer.assign([TopicPartition(args.topic, p, 0) for p in range(args.partitions)])
    seen = 0
    deadline = time.time() + args.timeout
    while seen < args.count and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            print("error: %s" % message.error(), file=sys.stderr)
            continue
        emit(message.partition(), message.offset(), message.timestamp()[1],
             message.key(), message.value(), message.headers())
        seen += 1
    consumer.close()
    return seen


def with_kafka_python(args):
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(args.timeout * 1000),
        isolation_level=args.isolation,
    )
    partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, 0)
    seen = 0
    for message in consumer:
        emit(message.partition, message.offset, message.timestamp, message.key,
             message.value, message.headers)
        seen += 1
        if seen >= args.count:
            break
    consumer.close()
    return seen


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["librdkafka", "kafka-python"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--isolation", default="read_uncommitted",
                        choices=["read_uncommitted", "read_committed"])
    args = parser.parse_args()
    consume = with_librdkafka if args.client == "librdkafka" else with_kafka_python
    seen = consume(args)
    if seen < args.count:
        print("only %d of %d records consumed" % (seen, args.count), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
