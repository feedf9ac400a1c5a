"""Produces one record per key with a real third-party client's default key
partitioner and prints, per key, one JSON line: {"key", "partition"}. Used by
tests/producer_interop.rs to check that ferrokafka places keys as librdkafka
(partitioner=murmur2_random, the Java client's) and kafka-python do.

usage: partitions.py --client librdkafka|kafka-python --bootstrap H:P --topic T --keys-file F
       (F: one hex key per line)
"""
import argparse
import json
import sys


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
    parser.add_argument("--client", required=True, choices=["librdkafka", "kafka-python"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--keys-file", required=True)
    args = parser.parse_args()
    with open(args.keys_file) as f:
        keys = [bytes.fromhex(line.strip()) for line in f if line.strip() != "-"]
    run = partitions_librdkafka if args.client == "librdkafka" else partitions_kafka_python
    for key, partition in zip(keys, run(args, keys)):
        print(json.dumps({"key": key.hex(), "partition": partition}))


if __name__ == "__main__":
    main()
