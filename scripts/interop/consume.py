"""Consumes a topic with a real third-party Kafka client and prints each record
as one JSON line: {"partition", "offset", "key", "value", "headers"} with bytes
as hex (or null). Used by tests/interop_clients.rs to check that batches
ferrokafka produced (every codec) read back identically in librdkafka
(confluent-kafka) and kafka-python.

usage: consume.py --client librdkafka|kafka-python --bootstrap HOST:PORT --topic T --count N
"""
import argparse
import json
import sys
import time


def hexify(b):
    return None if b is None else bytes(b).hex()


def emit(partition, offset, key, value, headers):
    print(json.dumps({
        "partition": partition,
        "offset": offset,
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
        "api.version.request": True,
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
        emit(message.partition(), message.offset(), message.key(), message.value(), message.headers())
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
    )
    partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, 0)
    seen = 0
    for message in consumer:
        emit(message.partition, message.offset, message.key, message.value, message.headers)
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
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    consume = with_librdkafka if args.client == "librdkafka" else with_kafka_python
    seen = consume(args)
    if seen < args.count:
        print("only %d of %d records consumed" % (seen, args.count), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
