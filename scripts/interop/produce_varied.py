"""Produces a varied set of records to partition 0 with a real third-party
client and prints one JSON line per record, in produce order: {"key",
"value", "headers", "timestamp", "committed"} (bytes as hex, null as null).
Used by tests/consumer_broker.rs to check that ferrokafka's consumer reads
what librdkafka (confluent-kafka) and kafka-python wrote, with every codec:
null keys, empty values, duplicate and null-valued headers, timestamps.

--transactions (librdkafka only) writes committed and aborted transactions;
"committed" says which records a read_committed consumer must see.

usage: produce_varied.py --client librdkafka|kafka-python --bootstrap H:P --topic T
                         --codec none|gzip|snappy|lz4|zstd [--count N] [--transactions]
"""
import argparse
import json
import sys
import time

# Recent timestamps: a broker deletes records older than retention.ms (7
# days by default) by their timestamps, and noida-db does so within seconds,
# moving the log start past what was just written.
BASE_TIMESTAMP = int(time.time() * 1000) - 60_000


def record(i, null_headers=True):
    key = None if i % 4 == 0 else b"key-%d" % i
    value = b"" if i % 5 == 0 else (b"value-%d-" % i) + b"x" * (i * 37 % 400)
    # kafka-python cannot send a null header value: it sends an empty one.
    null = None if null_headers else b""
    headers = [("dup", b"a"), ("dup", b"b"), ("null", null)] if i % 3 == 0 else []
    return key, value, headers, BASE_TIMESTAMP + i


def hexify(b):
    return None if b is None else bytes(b).hex()


def emit(key, value, headers, timestamp, committed=True):
    print(json.dumps({
        "key": hexify(key),
        "value": hexify(value),
        "headers": [[k, hexify(v)] for k, v in headers],
        "timestamp": timestamp,
        "committed": committed,
    }), flush=True)


def with_librdkafka(args):
    from confluent_kafka import Producer
    config = {
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.codec,
        "linger.ms": 5,
        "enable.idempotence": True,
        "message.timeout.ms": 20000,
    }
    if args.transactions:
        config["transactional.id"] = "ferrokafka-consumer-test-" + args.topic
    producer = Producer(config)
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    def send(i):
        key, value, headers, ts = record(i)
        producer.produce(args.topic, key=key, value=value, headers=headers or None,
                         timestamp=ts, partition=0, on_delivery=on_delivery)
        producer.poll(0)
        return key, value, headers, ts

    out = []
    if not args.transactions:
        for i in range(args.count):
            out.append(send(i) + (True,))
    else:
        producer.init_transactions(20)
        i = 0
        for commit in [True, False, True, False, True]:
            producer.begin_transaction()
            for _ in range(3):
                out.append(send(i) + (commit,))
                i += 1
            producer.flush(20)
            if commit:
                producer.commit_transaction(20)
            else:
                producer.abort_transaction(20)
    if producer.flush(20) or errors:
        print("librdkafka: errors %s" % errors[:5], file=sys.stderr)
        sys.exit(1)
    return out


def with_kafka_python(args):
    from kafka import KafkaProducer
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        compression_type=None if args.codec == "none" else args.codec,
        linger_ms=5,
        max_in_flight_requests_per_connection=1,
    )
    out = []
    futures = []
    for i in range(args.count):
        key, value, headers, ts = record(i, null_headers=False)
        futures.append(producer.send(args.topic, key=key, value=value, headers=headers,
                                     timestamp_ms=ts, partition=0))
        out.append((key, value, headers, ts, True))
    producer.flush(20)
    for f in futures:
        f.get(timeout=20)
    producer.close()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["librdkafka", "kafka-python"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--codec", default="none")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--transactions", action="store_true")
    args = parser.parse_args()
    produce = with_librdkafka if args.client == "librdkafka" else with_kafka_python
    for key, value, headers, ts, committed in produce(args):
        emit(key, value, headers, ts, committed)


if __name__ == "__main__":
    main()
