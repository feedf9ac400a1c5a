#!/usr/bin/env python3
"""Summarise and check the golden frame captures.

Reads tests/fixtures/golden/*.frames, writes tests/fixtures/golden/COVERAGE.md
and checks that

* every request frame has a response frame with the same correlation id on
  the same connection (Produce with acks=0 is the only exception);
* no response frame is without a request;
* decoding the record batches of the captured Produce requests yields exactly
  the records listed in the matching <capture>.records.json, per topic and
  partition, in order, with the codec the manifest names (the batch CRC-32C
  is checked as well).

Exits with status 1 if a check fails. Needs the compression packages of
requirements.txt (python-snappy, lz4, zstandard) to look inside compressed
batches.
"""

import argparse
import glob
import gzip
import json
import os
import re
import struct
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = os.path.join(REPO, "tests", "fixtures", "golden")
SPEC_DIR = os.path.join(REPO, "protocol-spec", "message")
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


# --------------------------------------------------------------------------
# Spec lookups (names, flexible versions) from the vendored message specs
# --------------------------------------------------------------------------

def load_specs():
    specs = {}
    for path in glob.glob(os.path.join(SPEC_DIR, "*Request.json")):
        with open(path) as f:
            text = "\n".join(line for line in f if not line.lstrip().startswith("//"))
        spec = json.loads(text)
        flex = spec.get("flexibleVersions", "none")
        first_flex = None if flex == "none" else int(flex.rstrip("+"))
        specs[spec["apiKey"]] = {"name": spec["name"][:-len("Request")], "first_flex": first_flex}
    return specs


def request_header_flexible(specs, api_key, version):
    if api_key == 18:        # ApiVersions: request header v2 from v3, response header always v0
        return version >= 3
    first = specs.get(api_key, {}).get("first_flex")
    return first is not None and version >= first


# --------------------------------------------------------------------------
# Primitive readers
# --------------------------------------------------------------------------

class Reader:
    def __init__(self, data, pos=0, end=None):
        self.d = data
        self.p = pos
        self.end = len(data) if end is None else end

    def take(self, n):
        if n < 0 or self.p + n > self.end:
            raise ValueError("read past end")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = 0
        out = 0
        while True:
            b = self.take(1)[0]
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def string(self, flexible, nullable=False):
        if flexible:
            n = self.uvarint() - 1
        else:
            n = self.i16()
        if n < 0:
            if not nullable:
                raise ValueError("null in a non-nullable string")
            return None
        return self.take(n).decode("utf-8")

    def array_len(self, flexible):
        return self.uvarint() - 1 if flexible else self.i32()

    def nullable_bytes(self, flexible):
        n = self.uvarint() - 1 if flexible else self.i32()
        return None if n < 0 else self.take(n)

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def parse_request_header(specs, payload):
    r = Reader(payload)
    api_key, version, corr = r.i16(), r.i16(), r.i32()
    client_id = r.string(False, nullable=True)
    flexible = request_header_flexible(specs, api_key, version)
    if flexible:
        r.tagged_fields()
    return api_key, version, corr, client_id, flexible, r


# --------------------------------------------------------------------------
# Record batches
# --------------------------------------------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def decompress(codec, data):
    if codec == 0:
        return data
    if codec == 1:
        return gzip.decompress(data)
    if codec == 2:
        import snappy
        if data.startswith(b"\x82SNAPPY\x00"):
            # xerial framing: 16-byte header, then (i32 length, block) pairs
            r = Reader(data, 16)
            out = b""
            while r.p < r.end:
                out += snappy.decompress(r.take(r.i32()))
            return out
        return snappy.decompress(data)
    if codec == 3:
        import lz4.frame
        return lz4.frame.decompress(data)
    if codec == 4:
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError("unknown codec %d" % codec)


def parse_batches(data):
    """Yield (codec, xerial_snappy, records) for every v2 batch in data."""
    r = Reader(data)
    while r.p < r.end:
        r.i64()                          # base offset
        length = r.i32()
        end = r.p + length
        r.i32()                          # partition leader epoch
        magic = r.i8()
        if magic != 2:
            raise ValueError("record batch magic %d" % magic)
        crc = r.u32()
        if crc32c(r.d[r.p:end]) != crc:
            raise ValueError("record batch CRC-32C mismatch")
        attributes = r.i16()
        r.i32()                          # last offset delta
        base_ts = r.i64()
        r.i64()                          # max timestamp
        r.i64(), r.i16(), r.i32()        # producer id, epoch, base sequence
        count = r.i32()
        codec = attributes & 7
        raw = r.d[r.p:end]
        body = decompress(codec, raw)
        rr = Reader(body)
        recs = []
        for _ in range(count):
            size = rr.varint()
            rec_end = rr.p + size
            rr.i8()                      # attributes
            ts = base_ts + rr.varint()
            rr.varint()                  # offset delta
            kl = rr.varint()
            key = None if kl < 0 else rr.take(kl)
            vl = rr.varint()
            value = None if vl < 0 else rr.take(vl)
            headers = []
            for _ in range(rr.varint()):
                hk = rr.take(rr.varint()).decode("utf-8")
                hl = rr.varint()
                headers.append([hk, None if hl < 0 else rr.take(hl)])
            if rr.p != rec_end:
                raise ValueError("record length mismatch")
            recs.append({"timestamp": ts, "key": key, "value": value, "headers": headers})
        if rr.p != rr.end:
            raise ValueError("trailing bytes after %d records" % count)
        r.p = end
        yield codec, codec == 2 and raw.startswith(b"\x82SNAPPY\x00"), recs


def parse_produce(req_reader, version, flexible):
    """Returns (acks, [(topic, partition, records_bytes_or_None)])."""
    r = req_reader
    if version >= 3:
        r.string(flexible, nullable=True)
    acks = r.i16()
    r.i32()
    out = []
    for _ in range(r.array_len(flexible)):
        topic = r.string(flexible)
        for _ in range(r.array_len(flexible)):
            part = r.i32()
            out.append((topic, part, r.nullable_bytes(flexible)))
            if flexible:
                r.tagged_fields()
        if flexible:
            r.tagged_fields()
    if flexible:
        r.tagged_fields()
    if r.p != r.end:
        raise ValueError("trailing bytes in Produce request")
    return acks, out


# --------------------------------------------------------------------------
# Captures
# --------------------------------------------------------------------------

def read_frames(path):
    conns = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            cid, direction, hexdata = line.split(" ")
            if direction not in ("c2s", "s2c"):
                raise ValueError("%s:%d: bad direction" % (path, lineno))
            conns.setdefault(int(cid), []).append((direction, bytes.fromhex(hexdata)))
    return conns


def analyse(path, specs):
    name = os.path.basename(path)[:-len(".frames")]
    conns = read_frames(path)
    problems = []
    requests = {}        # (api_key, version) -> count
    responses = {}       # (api_key, version) -> count
    client_ids = set()
    produced = {}        # (topic, partition) -> list of records
    codecs = {}          # topic -> set of codec names seen in batches
    xerial = set()
    acks0 = 0
    acks0_answered = 0
    nframes = 0
    for cid, frames in sorted(conns.items()):
        pending = {}
        unanswerable = {}
        for direction, payload in frames:
            nframes += 1
            if direction == "c2s":
                api_key, version, corr, client_id, flexible, r = parse_request_header(specs, payload)
                client_ids.add(client_id)
                k = (api_key, version)
                requests[k] = requests.get(k, 0) + 1
                expect_response = True
                if api_key == 0:
                    acks, parts = parse_produce(r, version, flexible)
                    if acks == 0:
                        expect_response = False
                        acks0 += 1
                    for topic, part, data in parts:
                        for codec, is_xerial, recs in parse_batches(data or b""):
                            codecs.setdefault(topic, set()).add(CODEC_NAMES[codec])
                            if is_xerial:
                                xerial.add(topic)
                            produced.setdefault((topic, part), []).extend(recs)
                if corr in pending:
                    problems.append("conn %d: correlation id %d reused while in flight" % (cid, corr))
                if expect_response:
                    pending[corr] = k
                else:
                    unanswerable[corr] = k
            else:
                (corr,) = struct.unpack_from(">i", payload, 0)
                if corr in unanswerable:
                    # A Kafka broker sends nothing back for acks=0; some
                    # brokers (Tansu 0.6) answer anyway. Still a real frame.
                    k = unanswerable.pop(corr)
                    responses[k] = responses.get(k, 0) + 1
                    acks0_answered += 1
                    continue
                if corr not in pending:
                    problems.append("conn %d: response with unknown correlation id %d" % (cid, corr))
                    continue
                k = pending.pop(corr)
                responses[k] = responses.get(k, 0) + 1
        for corr, k in pending.items():
            problems.append("conn %d: %s v%d (correlation id %d) has no response"
                            % (cid, specs.get(k[0], {}).get("name", k[0]), k[1], corr))

    # Compare the decoded Produce requests with the manifest.
    manifest_path = os.path.join(os.path.dirname(path), name + ".records.json")
    manifest_topics = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest_topics = json.load(f)["topics"]
    else:
        problems.append("no manifest %s" % os.path.basename(manifest_path))
    hexed = lambda b: None if b is None else b.hex()
    checked = 0
    for topic, t in sorted(manifest_topics.items()):
        want_codecs = {t["codec"]}
        if codecs.get(topic, set()) != want_codecs:
            problems.append("%s: batches use codecs %s, manifest says %s" % (topic, sorted(codecs.get(topic, [])), t["codec"]))
        for p in range(t["partitions"]):
            want = [{k: r[k] for k in ("timestamp", "key", "value", "headers")} for r in t["records"] if r["partition"] == p]
            have = [{"timestamp": r["timestamp"], "key": hexed(r["key"]), "value": hexed(r["value"]),
                     "headers": [[hk, hexed(hv)] for hk, hv in r["headers"]]} for r in produced.get((topic, p), [])]
            if want != have:
                problems.append("%s[%d]: Produce requests carry %d records that differ from the %d in the manifest"
                                % (topic, p, len(have), len(want)))
            checked += len(want)
    for (topic, p), recs in produced.items():
        if topic not in manifest_topics:
            problems.append("%s[%d]: %d produced records not in the manifest" % (topic, p, len(recs)))
    return {
        "name": name, "connections": len(conns), "frames": nframes, "requests": requests,
        "responses": responses, "problems": problems, "client_ids": sorted(c for c in client_ids if c),
        "codecs": codecs, "xerial": xerial, "acks0": acks0, "acks0_answered": acks0_answered, "checked": checked,
        "size": os.path.getsize(path),
    }


def render(results, specs):
    out = ["# Golden frame coverage", "",
           "Generated by `scripts/golden/summary.py` from the `*.frames` captures in this directory;",
           "re-run it after re-recording (see `scripts/golden/README.md`). Versions are the request",
           "versions the client chose after ApiVersions negotiation with the broker.", ""]
    for res in results:
        out.append("## %s" % res["name"])
        out.append("")
        out.append("- %d connections, %d frames, %d bytes of fixture" % (res["connections"], res["frames"], res["size"]))
        out.append("- client ids: %s" % ", ".join("`%s`" % c for c in res["client_ids"]))
        all_codecs = sorted({c for s in res["codecs"].values() for c in s}, key=lambda c: list(CODEC_NAMES.values()).index(c))
        out.append("- codecs in Produce record batches: %s" % ", ".join(all_codecs))
        if res["xerial"]:
            out.append("- snappy batches use xerial framing (topics: %s)" % ", ".join(sorted(res["xerial"])))
        elif "snappy" in all_codecs:
            out.append("- snappy batches are raw snappy blocks (no xerial framing)")
        out.append("- Produce requests with acks=0 (no response expected): %d, of which the broker answered"
                   " anyway: %d" % (res["acks0"], res["acks0_answered"]))
        out.append("- records checked against the manifest: %d" % res["checked"])
        out.append("- check: %s" % ("OK" if not res["problems"] else "%d problem(s)" % len(res["problems"])))
        for p in res["problems"]:
            out.append("  - %s" % p)
        out.append("")
        out.append("| api | key | request version | requests | responses |")
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for k in sorted(res["requests"]):
            out.append("| %s | %d | %d | %d | %d |" % (specs.get(k[0], {}).get("name", "?"), k[0], k[1],
                                                   res["requests"][k], res["responses"].get(k, 0)))
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=DEFAULT_DIR)
    args = ap.parse_args()
    specs = load_specs()
    paths = sorted(glob.glob(os.path.join(args.dir, "*.frames")))
    if not paths:
        sys.exit("no .frames files in %s" % args.dir)
    results = [analyse(p, specs) for p in paths]
    with open(os.path.join(args.dir, "COVERAGE.md"), "w") as f:
        f.write(render(results, specs))
    bad = 0
    for res in results:
        pairs = ", ".join("%s v%d" % (specs.get(k[0], {}).get("name", k[0]), k[1]) for k in sorted(res["requests"]))
        print("%s: %d frames; %s" % (res["name"], res["frames"], pairs))
        for p in res["problems"]:
            print("  PROBLEM:", p)
        bad += len(res["problems"])
    print("wrote", os.path.join(args.dir, "COVERAGE.md"))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
