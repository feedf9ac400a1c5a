"""Produces N records with a real third-party Kafka client and prints one JSON
line per delivered record: {"partition", "offset", "key", "value"} (bytes as
hex). Used by tests/mock_cluster.rs to check that librdkafka (confluent-kafka,
idempotent) and kafka-python can produce to ferrokafka's mock cluster.

usage: produce.py --client librdkafka|kafka-python --bootstrap HOST:PORT --topic T --count N
"""
import argparse
import json
import sys


def with_librdkafka(args):
    from confluent_kafka import Producer
    delivered = []
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
    })
    for i in range(args.count):
        producer.produce(args.topic, key=b"key-%d" % i, value=b"value-%d" % i, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(args.timeout)
    if remaining or errors:
        print("librdkafka: %d undelivered, errors: %s" % (remaining, errors[:5]), file=sys.stderr)
        sys.exit(1)
    return delivered


def with_kafka_python(args):
    from kafka import KafkaProducer
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        linger_ms=5,
        request_timeout_ms=int(args.timeout * 1000),
    )
    futures = [
        producer.send(args.topic, key=b"key-%d" % i, value=b"value-%d" % i)
        for i in range(args.count)
    ]
    producer.flush(args.timeout)
    delivered = []
    for i, future in enumerate(futures):
        meta = future.get(timeout=args.timeout)
        delivered.append((meta.partition, meta.offset, b"key-%d" % i, b"value-%d" % i))
    producer.close()
    return delivered


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["librdkafka", "kafka-python"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    produce = with_librdkafka if args.client == "librdkafka" else with_kafka_python
    for partition, offset, key, value in produce(args):
        print(json.dumps({
            "partition": partition,
            "offset": offset,
            "key": key.hex(),
            "value": value.hex(),
        }), flush=True)


if __name__ == "__main__":
    main()
