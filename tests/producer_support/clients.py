"""Peer clients for the producer tests (tests/producer_*.rs).

  clients.py consume --client librdkafka|kafka-python --bootstrap H:P --topic T
      --partitions N --count C [--isolation read_committed|read_uncommitted]
    prints one JSON line per record: partition, offset, timestamp, key, value,
    headers (bytes as hex, null as null).

  clients.py partitions --client librdkafka|kafka-python --bootstrap H:P
      --topic T --keys-file F
    produces one record per key (hex, one per line of F) with the client's
    default key partitioner (librdkafka: partitioner=murmur2_random, the Java
    client's), and prints one JSON line per key: key, partition.
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


def consume_librdkafka(args):
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "ferrokafka-producer-" + args.topic,
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


def consume_kafka_python(args):
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


def partitions_librdkafka(args, keys):
    from confluent_kafka import Producer
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "partitioner": "murmur2_random",
        "linger.ms": 20,
    })
    out = {}

    def done(i):
        def callback(err, message):
            if err is not None:
                print("delivery failed: %s" % err, file=sys.stderr)
                sys.exit(1)
            out[i] = message.partition()
        return callback

    for i, key in enumerate(keys):
        while True:
            try:
                producer.produce(args.topic, value=b"", key=key, on_delivery=done(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)
    return [out[i] for i in range(len(keys))]


def partitions_kafka_python(args, keys):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=20)
    futures = [producer.send(args.topic, value=b"", key=key) for key in keys]
    producer.flush(60)
    result = [f.get(timeout=60).partition for f in futures]
    producer.close()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["consume", "partitions"])
    parser.add_argument("--client", required=True, choices=["librdkafka", "kafka-python"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--isolation", default="read_uncommitted")
    parser.add_argument("--keys-file")
    args = parser.parse_args()
    if args.command == "consume":
        consume = consume_librdkafka if args.client == "librdkafka" else consume_kafka_python
        seen = consume(args)
        if seen < args.count:
            print("only %d of %d records consumed" % (seen, args.count), file=sys.stderr)
            sys.exit(1)
    else:
        with open(args.keys_file) as f:
            keys = [bytes.fromhex(line.strip()) for line in f if line.strip() != "-"]
        run = partitions_librdkafka if args.client == "librdkafka" else partitions_kafka_python
        for key, partition in zip(keys, run(args, keys)):
            print(json.dumps({"key": key.hex(), "partition": partition}))


if __name__ == "__main__":
    main()
