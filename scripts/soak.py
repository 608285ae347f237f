#!/usr/bin/env python3
"""Soak test of `norbert-worker serve` (driven by scripts/soak.sh; see docs/testing.md, "Sanitizers and soak").

Against a `norbert-worker broker --faults SEED` process (3 mock brokers, a fault every 2-5 s),
produces N mixed requests (every task, several heads, two-head and streamed requests, a
reply-to on some) with hostile ones interleaved, steadily, while 3 `serve` workers of one group
join and leave, and random workers are SIGKILLed and restarted with the same --instance-id.
An independent client (confluent-kafka) reads every answer and dead letter as they come. At the
end: every good request has a final result per head (on the results topic or its reply-to
topic), every bad one an error response and a dead letter (matched by source partition and
offset), the group's committed offsets reach the end of every request partition, and every
worker exits 0 on the final SIGTERM. Reports counts, duplicates, peak RSS (VmHWM) per worker.
Exits 1 on any loss, misrouted or wrong answer, commit short of the end or bad exit status.
"""
import argparse
import atexit
import collections
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

REQ, RES, DLQ = "soak-req", "soak-res", "soak-dlq"
REPLY = ["soak-reply-a", "soak-reply-b"]
TOPICS = {REQ: 6, RES: 6, DLQ: 3, REPLY[0]: 2, REPLY[1]: 1}
GROUP = "soak"
HEADS = {"sentiment": "sequence-classification", "ner": "token-classification", "qa": "question-answering",
         "mlm": "mlm", "mc": "multiple-choice", "causal": "causal-lm", "base": "base"}


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- requests

WORDS = ["Kari", "Ola", "bor", "i", "Tromsø", "Bergen", "og", "jobber", "på", "UiT", "konserten", "var", "fin",
         "maten", "kald", "Oslo", "hovedstaden", "Norge", "reiste", "til", "trives", "godt", "med", "det"]


def sentence(rng, n=None):
    return " ".join(rng.choice(WORDS) for _ in range(n or rng.randint(3, 14))) + "."


def good_request(rng, i, examples):
    """A good request (JSON object), every task and head; returns (request, heads answering)."""
    r = json.loads(json.dumps(examples[i % len(examples)]))
    r["id"] = f"g{i}"
    for field in ("text", "context"):
        if field in r and "<mask>" not in r[field]:
            r[field] = f"{r[field]} {sentence(rng)} ({i})"
    if r.get("task") == "multiple-choice":
        rng.shuffle(r["choices"])
    kind = rng.random()
    if r.get("task") == "text-generation":
        r.setdefault("options", {})["max_new_tokens"] = rng.randint(1, 12)
        if kind < 0.3:
            r["stream"] = True
    if r.get("task") == "question-answering" and kind < 0.3:
        r["stream"] = True
    # The heads answering: named, else "*" (the worker picks the head serving the task).
    heads = list(r["heads"]) if "heads" in r else [r["head"]] if "head" in r else ["*"]
    return r, heads


def hostile_values(rng, big_allowed):
    """(kind, value bytes or None, headers); the big ones only when big_allowed (the dev broker
    keeps ~5 MiB per partition)."""
    small = [
        ("not-json", b"not json"), ("open-brace", b"{"), ("array", b"[1,2]"), ("not-utf8", bytes([0xFF, 0xFE, 0x00])),
        ("bad-utf8-in-string", b'{"id": "x", "task": "text-classification", "text": "' + bytes([0xC3, 0x28]) + b'"}'),
        ("unknown-task", b'{"id": "x", "task": "summarization", "text": "a"}'),
        ("missing-text", b'{"id": "x", "task": "text-classification"}'),
        ("unknown-option", b'{"id": "x", "task": "text-classification", "text": "a", "options": {"nope": 1}}'),
        ("unknown-head", b'{"id": "x", "task": "text-classification", "head": "nope", "text": "a"}'),
        ("id-number", b'{"id": 5, "task": "text-classification", "text": "a"}'),
        ("trailing", b'{"id": "x", "task": "text-classification", "text": "a"} trailing'),
        ("top-k-vocab", b'{"id": "h", "task": "fill-mask", "text": "Jeg bor i <mask>.", "options": {"top_k": 2048}}'),
        ("max-new-tokens", b'{"id": "h", "task": "text-generation", "head": "causal", "text": "Hei", "options": {"max_new_tokens": 1000000}}'),
        ("350-masks", ('{"id": "h", "task": "fill-mask", "text": "' + "<mask> " * 350 + '", "options": {"top_k": 100}}').encode()),
        ("1000-choices", ('{"id": "h", "task": "multiple-choice", "question": "Hva er riktig?", "choices": ['
                          + ", ".join(f'"svar {k}"' for k in range(1000)) + "]}").encode()),
        ("tombstone", None),
    ]
    reply = [("reply-to-invalid", [("reply-to", b"a/b")]), ("reply-to-not-allowed", [("reply-to", b"soak-other")]),
             ("reply-to-twice", [("reply-to", REPLY[0].encode()), ("reply-to", REPLY[1].encode())])]
    text48k = "Kari Nordmann bor i Tromsø og jobber på UiT. " * 1050
    big = [
        ("window-stride-48k", ('{"id": "h", "task": "text-classification", "text": "' + text48k
                               + '", "options": {"overflow": "window", "stride": 16382}}').encode()),
        ("deep-nesting", b"{" * 100_000),
        ("over-1mb", b"a" * 1_000_100),
        ("over-max-message-bytes", b"[" * 1_048_577),
    ]
    roll = rng.random()
    if big_allowed and roll < 0.08:
        kind, value = rng.choice(big)
        return kind, value, []
    if roll < 0.25:
        kind, headers = rng.choice(reply)
        return kind, b'{"id": "r", "task": "text-classification", "text": "Hei"}', headers
    kind, value = rng.choice(small)
    return kind, value, []


def plan_requests(n, seed):
    """The run's messages: (key, value, headers, expect) with expect {"good": heads, "reply": topic}
    or {"bad": kind}. About 1 in 20 is hostile; the big hostile ones are capped."""
    rng = random.Random(seed)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    examples = [json.loads(l) for l in open(os.path.join(root, "schemas/examples/requests.jsonl")) if l.strip()]
    examples.append({"id": "fe-2", "task": "feature-extraction", "head": "base", "text": "Hei", "options": {"pooling": "first"}})
    examples.append({"id": "multi-3", "heads": ["sentiment", "ner", "base"], "text": "Ola reiste til Bergen."})
    messages, big_left = [], max(2, n // 1000)
    for i in range(n):
        if rng.random() < 0.05:
            kind, value, headers = hostile_values(rng, big_left > 0)
            if kind in ("window-stride-48k", "deep-nesting", "over-1mb", "over-max-message-bytes"):
                big_left -= 1
            messages.append((f"b{i}", value, headers, {"bad": kind}))
            continue
        request, heads = good_request(rng, i, examples)
        headers = [("correlation-id", f"c{i}".encode())]
        reply = None
        if rng.random() < 0.15:
            reply = rng.choice(REPLY)
            headers.append(("reply-to", reply.encode()))
        messages.append((f"g{i}", json.dumps(request, ensure_ascii=False).encode(), headers,
                         {"good": heads, "reply": reply}))
    return messages


# ---------------------------------------------------------------- answers

class Answers:
    """Everything the independent client has read, indexed for the checks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.finals = collections.Counter()      # (key, head) -> final responses with a result
        self.final_topic = {}                    # (key, head) -> set of topics
        self.errors = collections.Counter()      # key -> final error responses
        self.error_codes = collections.defaultdict(set)
        self.partials = 0
        self.final_count = 0
        self.repeat_times = []                   # arrival of each (request, head)'s second final
        self.request_finals = collections.Counter()  # key -> responses with norbert-final: true
        self.letters = collections.Counter()     # (partition, offset) of the source -> dead letters
        self.letter_codes = {}
        self.unparsable = 0
        self.read = 0

    def add(self, msg):
        key = (msg.key() or b"").decode("utf-8", "replace")
        headers = dict((k, v) for k, v in (msg.headers() or []))
        with self.lock:
            self.read += 1
            if msg.topic() == DLQ:
                try:
                    source = (int(headers["norbert-source-partition"]), int(headers["norbert-source-offset"]))
                except (KeyError, ValueError, TypeError):
                    self.unparsable += 1
                    return
                self.letters[source] += 1
                self.letter_codes[source] = (headers.get("norbert-error-code") or b"").decode()
                return
            try:
                body = json.loads(msg.value())
            except (TypeError, ValueError):
                self.unparsable += 1
                return
            # A (request, head)'s final response is the one without "partial": true (the
            # norbert-final header marks only the last response of a request, the last head's).
            if headers.get("norbert-final") == b"true":
                self.request_finals[key] += 1
            if body.get("partial"):
                self.partials += 1
                return
            if "error" in body:
                self.errors[key] += 1
                self.error_codes[key].add(body["error"].get("code"))
            else:
                self.final_count += 1
                if self.finals[(key, body.get("head"))] == 1:
                    self.repeat_times.append(time.monotonic())
                for head in (body.get("head"), "*"):
                    self.finals[(key, head)] += 1
                    self.final_topic.setdefault((key, head), set()).add(msg.topic())


def reader(servers, answers, stop):
    consumer = Consumer({"bootstrap.servers": servers, "group.id": "soak-checker", "enable.auto.commit": False,
                         "fetch.message.max.bytes": 4_000_000, "log_level": 2, "topic.metadata.refresh.interval.ms": 5000})
    consumer.assign([TopicPartition(t, p, -2) for t in [RES, DLQ] + REPLY for p in range(TOPICS[t])])
    while not stop.is_set():
        for msg in consumer.consume(500, 0.5):
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log("checker:", msg.error())
                continue
            answers.add(msg)
    consumer.close()


# ---------------------------------------------------------------- processes

class Worker:
    def __init__(self, slot, args, servers, out):
        self.slot, self.args, self.servers, self.out = slot, args, servers, out
        self.proc, self.runs, self.state = None, 0, "stopped"   # stopped | running | killed | left
        self.peak_kib = 0                                          # max VmHWM over its processes
        self.exits = []                                            # (how, status)

    def command(self):
        root, tiny = self.args.root, os.path.join(self.args.root, "Tests/Fixtures/norbert4-tiny")
        cmd = [self.args.bin, "serve", "--bootstrap-servers", self.servers, "--group", GROUP,
               "--requests", REQ, "--results", RES, "--dead-letter", DLQ, "--metrics-port", "0",
               "--lanes", "1", "--tokenizer", os.path.join(root, "Tests/Fixtures/tokenizer"),
               "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500",
               "--drain-timeout-ms", "10000", "--reply-to-allow", "soak-reply-*"]
        for name, folder in HEADS.items():
            cmd += ["--head", f"{name}={os.path.join(tiny, folder)}"]
        if not self.args.dynamic_members:
            cmd += ["--instance-id", f"soak-w{self.slot}"]
        return cmd

    def start(self):
        self.runs += 1
        err = open(os.path.join(self.out, f"worker{self.slot}.{self.runs}.log"), "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT)
        err.close()
        self.state = "running"

    def sample(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
        except OSError:
            pass

    def kill(self):
        self.sample()
        self.proc.kill()
        self.exits.append(("SIGKILL", self.proc.wait()))
        self.state = "killed"

    def terminate(self, timeout=60):
        self.sample()
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = f"hung (> {timeout} s), killed: {self.proc.wait()}"
        self.exits.append(("SIGTERM", status))
        self.state = "left"
        return status


def committed_offsets(servers):
    consumer = Consumer({"bootstrap.servers": servers, "group.id": GROUP, "enable.auto.commit": False, "log_level": 2})
    try:
        tps = consumer.committed([TopicPartition(REQ, p) for p in range(TOPICS[REQ])], timeout=10)
        ends = [consumer.get_watermark_offsets(TopicPartition(REQ, p), timeout=10)[1] for p in range(TOPICS[REQ])]
        return [tp.offset for tp in tps], ends
    finally:
        consumer.close()


# ---------------------------------------------------------------- run

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the norbert-worker binary")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--rate", type=float, default=25.0, help="requests produced per second")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--fault-interval-ms", default="2000-5000")
    ap.add_argument("--dynamic-members", action="store_true",
                    help="start workers without --instance-id (default: static membership, kept across restarts)")
    ap.add_argument("--settle", type=float, default=240.0, help="seconds to wait for the last answers")
    ap.add_argument("--out", required=True, help="folder for logs and summary.json")
    args = ap.parse_args()
    args.root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    os.makedirs(args.out, exist_ok=True)
    load = os.getloadavg()
    log(f"soak: seed {seed}, {args.requests} requests at {args.rate}/s, {args.kills} kills, {args.workers} workers, "
        f"{args.brokers} brokers; {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    messages = plan_requests(args.requests, seed)
    rng = random.Random(seed + 1)

    # Broker with faults.
    bootstrap_file = os.path.join(args.out, "bootstrap")
    broker_cmd = [args.bin, "broker", "--brokers", str(args.brokers), "--bootstrap-file", bootstrap_file,
                  "--faults", str(seed), "--fault-interval-ms", args.fault_interval_ms]
    for topic, partitions in TOPICS.items():
        broker_cmd += ["--topic", f"{topic}:{partitions}"]
    broker_log = open(os.path.join(args.out, "broker.log"), "wb")
    broker = subprocess.Popen(broker_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=broker_log)
    workers = []

    def leave_nothing_running():
        # On any exit (a failed check, an exception, Ctrl-C): no worker or broker outlives us.
        for p in [w.proc for w in workers if w.proc is not None] + [broker]:
            if p.poll() is None:
                p.kill()
                p.wait()
    atexit.register(leave_nothing_running)
    for _ in range(200):
        if os.path.exists(bootstrap_file):
            break
        time.sleep(0.1)
    servers = open(bootstrap_file).read().strip()
    log(f"soak: broker at {servers}")

    answers, stop = Answers(), threading.Event()
    checker = threading.Thread(target=reader, args=(servers, answers, stop), daemon=True)
    checker.start()

    workers += [Worker(k, args, servers, args.out) for k in range(args.workers)]
    failures = []

    # Timeline (seconds from the first produce): joins/leaves at fixed fractions, kills spread
    # evenly with jitter, each restarted 0.5-3 s later with the same --instance-id.
    duration = args.requests / args.rate
    events = [(0.0, "join", 0)]
    if args.workers >= 2:
        events += [(0.05 * duration, "join", 1), (0.35 * duration, "leave", 1), (0.50 * duration, "join", 1)]
    if args.workers >= 3:
        events += [(0.15 * duration, "join", 2), (0.62 * duration, "leave", 2), (0.78 * duration, "join", 2)]
    events += [(0.42 * duration, "leave", 0), (0.56 * duration, "join", 0)]
    for k in range(3, args.workers):
        events.append((0.1 * duration, "join", k))
    for k in range(args.kills):
        events.append((duration * (k + rng.uniform(0.2, 0.8)) / max(args.kills, 1), "kill", None))
    events.sort(key=lambda e: e[0])
    kills_done = 0

    # Producer thread: steady rate.
    delivered = {}                       # key -> (partition, offset)
    produce_failed = []
    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True, "linger.ms": 5,
                         "message.max.bytes": 2_000_000, "message.timeout.ms": 300_000, "log_level": 2})

    def on_delivery(err, msg):
        key = msg.key().decode()
        if err is not None:
            produce_failed.append((key, str(err)))
        else:
            delivered[key] = (msg.partition(), msg.offset())

    t0 = time.monotonic()
    disruptions = []                     # (time, what): kills, leaves, joins
    producing_done = threading.Event()

    def produce_all():
        for i, (key, value, headers, _) in enumerate(messages):
            wait = t0 + i / args.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            while True:
                try:
                    producer.produce(REQ, key=key.encode(), value=value, headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        producer.flush(600)
        producing_done.set()

    prod_thread = threading.Thread(target=produce_all, daemon=True)
    prod_thread.start()

    # Commit lag, every second: requests answered (a final or an error response read) at or
    # above the group's committed offset of their partition: what a crash would answer again.
    lag_samples = []                     # (t, lag)
    lag_file = open(os.path.join(args.out, "commit-lag.tsv"), "w")

    def sample_commit_lag():
        checker = Consumer({"bootstrap.servers": servers, "group.id": GROUP, "enable.auto.commit": False, "log_level": 2})
        while not stop.is_set():
            time.sleep(1)
            try:
                tps = checker.committed([TopicPartition(REQ, p) for p in range(TOPICS[REQ])], timeout=5)
            except Exception:            # noqa: BLE001 (faults: skip a sample)
                continue
            committed = {tp.partition: tp.offset for tp in tps}
            with answers.lock:
                answered = [k for k in list(delivered) if answers.errors[k] or answers.finals[(k, "*")]]
            lag = sum(1 for k in answered if delivered[k][1] >= committed.get(delivered[k][0], -1))
            t = time.monotonic() - t0
            lag_samples.append((t, lag))
            lag_file.write(f"{t:.1f}\t{lag}\t{' '.join(str(committed.get(p, -1)) for p in range(TOPICS[REQ]))}\n")
            lag_file.flush()
        checker.close()

    lag_thread = threading.Thread(target=sample_commit_lag, daemon=True)
    lag_thread.start()

    def watch_workers():
        for w in workers:
            w.sample()
            if w.state == "running" and w.proc.poll() is not None:
                status = w.proc.returncode
                failures.append(f"worker {w.slot} run {w.runs} exited by itself with {status}")
                log(f"soak: worker {w.slot} exited by itself ({status}); restarting")
                w.exits.append(("unexpected", status))
                w.start()

    last_report = 0.0
    pending_restarts = []                # (time, slot)
    while events or pending_restarts or not producing_done.is_set():
        now = time.monotonic() - t0
        for when, slot in list(pending_restarts):
            if when <= now:
                pending_restarts.remove((when, slot))
                if workers[slot].state == "killed":
                    workers[slot].start()
                    log(f"soak: worker {slot} restarted (run {workers[slot].runs})")
                    disruptions.append((time.monotonic(), "restart after kill"))
        while events and events[0][0] <= now:
            _, action, slot = events.pop(0)
            if action == "join" and workers[slot].state in ("stopped", "left"):
                workers[slot].start()
                log(f"soak: worker {slot} joins (run {workers[slot].runs})")
                disruptions.append((time.monotonic(), "join"))
            elif action == "leave" and workers[slot].state == "running":
                status = workers[slot].terminate()
                log(f"soak: worker {slot} leaves (SIGTERM): exit {status}")
                disruptions.append((time.monotonic(), "leave"))
                if status != 0:
                    failures.append(f"worker {slot} left with exit {status}")
            elif action == "leave" and workers[slot].state == "killed":
                workers[slot].state = "left"          # its restart is skipped
            elif action == "kill":
                running = [w for w in workers if w.state == "running"]
                if running:
                    w = rng.choice(running)
                    w.kill()
                    kills_done += 1
                    delay = rng.uniform(0.5, 3.0)
                    pending_restarts.append((now + delay, w.slot))
                    log(f"soak: kill {kills_done}: SIGKILL worker {w.slot} (run {w.runs}); restart in {delay:.1f} s")
                    disruptions.append((time.monotonic(), "kill"))
        watch_workers()
        if now - last_report >= 15:
            last_report = now
            with answers.lock:
                log(f"soak: t={now:.0f}s produced {len(delivered)}/{len(messages)}, finals {sum(answers.finals.values())}, "
                    f"errors {sum(answers.errors.values())}, dead letters {sum(answers.letters.values())}; "
                    f"running {[w.slot for w in workers if w.state == 'running']}; load {os.getloadavg()[0]:.2f}")
        time.sleep(0.1)

    # Every worker that left at the end of the timeline comes back for the tail.
    for w in workers:
        if w.state != "running":
            w.start()
            log(f"soak: worker {w.slot} joins for the end (run {w.runs})")
    produced_at = time.monotonic() - t0
    log(f"soak: all produced at t={produced_at:.0f}s ({len(produce_failed)} produce failures); waiting for answers")

    expected_finals = {}
    bad_sources = {}
    for key, _, _, expect in messages:
        if key not in delivered:
            continue
        if "good" in expect:
            for head in expect["good"]:
                expected_finals[(key, head)] = expect["reply"] or RES
        else:
            bad_sources[key] = delivered[key]

    def missing():
        with answers.lock:
            m_final = [k for k in expected_finals if answers.finals[k] == 0]
            m_error = [k for k in bad_sources if answers.errors[k] == 0]
            m_letter = [k for k, src in bad_sources.items() if answers.letters[src] == 0]
        return m_final, m_error, m_letter

    deadline = time.monotonic() + args.settle
    while time.monotonic() < deadline:
        watch_workers()
        m_final, m_error, m_letter = missing()
        if not (m_final or m_error or m_letter):
            break
        time.sleep(1)
    answered_at = time.monotonic() - t0
    os.kill(broker.pid, signal.SIGUSR1)          # no more faults: a quiet cluster for the checks
    log(f"soak: answers settled at t={answered_at:.0f}s; faults stopped")

    # The dev broker's group can take a while to settle after the last kill (rebalances every
    # few seconds, partitions lost and reassigned: static members on librdkafka's mock); commits
    # wait for it.
    commits, ends = [], []
    commit_wait_start = time.monotonic()
    for _ in range(180):
        try:
            commits, ends = committed_offsets(servers)
        except Exception as e:                     # noqa: BLE001 (retry a check on a flaky moment)
            log("soak: committed offsets:", e)
            time.sleep(1)
            continue
        if commits == ends:
            break
        time.sleep(1)
    commit_wait = time.monotonic() - commit_wait_start
    log(f"soak: committed {commits}, ends {ends} ({commit_wait:.0f} s after the answers)")
    if commits != ends:
        failures.append(f"committed offsets {commits} short of the ends {ends}")

    final_status = {}
    for w in workers:
        if w.state == "running":
            status = w.terminate()
            final_status[w.slot] = status
            if status != 0:
                failures.append(f"worker {w.slot} exited {status} on the final SIGTERM")
    log(f"soak: final SIGTERM exit statuses {final_status}")
    try:
        after, _ = committed_offsets(servers)
        if after != commits:
            failures.append(f"commits moved on drain: {commits} -> {after}")
    except Exception as e:                         # noqa: BLE001
        failures.append(f"committed offsets after the drain: {e}")

    time.sleep(2)                                   # the checker reads what the drains published
    stop.set()
    checker.join(30)
    broker.send_signal(signal.SIGTERM)
    try:
        broker_status = broker.wait(30)
    except subprocess.TimeoutExpired:
        broker.kill()
        broker_status = "hung"
    if broker_status != 0:
        failures.append(f"broker exited {broker_status}")
    faults = [l for l in open(os.path.join(args.out, "broker.log"), errors="replace") if ": fault " in l]
    fault_kinds = collections.Counter()
    for l in faults:
        for word, kind in (("down for", "broker down"), ("fail with", "request errors"), ("latency", "latency"), ("leader of", "leader moved")):
            if word in l and not l.rstrip().endswith("latency 0"):
                fault_kinds[kind] += 1

    lost_events = sum(open(os.path.join(args.out, f), errors="replace").read().count("partitions lost")
                      for f in os.listdir(args.out) if f.startswith("worker"))

    # Checks.
    m_final, m_error, m_letter = missing()
    with answers.lock:
        wrong_topic = [k for k, topic in expected_finals.items() if answers.finals[k] and topic not in answers.final_topic[k]]
        good_errors = sorted({k for k, _ in expected_finals if answers.errors[k]})
        dup_finals = sum(n - 1 for k, n in answers.finals.items() if n > 1 and k in expected_finals)
        dup_final_keys = sum(1 for k, n in answers.finals.items() if n > 1 and k in expected_finals)
        dup_errors = sum(n - 1 for k, n in answers.errors.items() if n > 1)
        dup_letters = sum(n - 1 for n in answers.letters.values() if n > 1)
        no_final_header = [k for k, _, _, e in messages if k in delivered and answers.request_finals[k] == 0]
        extra_finals = [k for k in answers.finals if k[1] != "*" and k not in expected_finals
                        and (k[0], "*") not in expected_finals]
        bad_codes = collections.Counter(next(iter(answers.error_codes[k]), "?") for k in bad_sources)
        partials, unparsable = answers.partials, answers.unparsable
        # Each repeated final, by the last disruption (kill, leave, join) before it arrived.
        repeats_after = collections.Counter()
        for when in answers.repeat_times:
            before = [what for t, what in disruptions if t <= when]
            repeats_after[before[-1] if before else "none"] += 1
    if produce_failed:
        failures.append(f"{len(produce_failed)} requests could not be produced: {produce_failed[:3]}")
    if m_final:
        failures.append(f"{len(m_final)} (request, head) without a final result, e.g. {m_final[:5]}")
    if m_error:
        failures.append(f"{len(m_error)} bad requests without an error response, e.g. {m_error[:5]}")
    if m_letter:
        failures.append(f"{len(m_letter)} bad requests without a dead letter, e.g. {m_letter[:5]}")
    if wrong_topic:
        failures.append(f"{len(wrong_topic)} results not on their topic, e.g. {wrong_topic[:5]}")
    if good_errors:
        failures.append(f"{len(good_errors)} good requests answered with an error, e.g. "
                        f"{[(k, sorted(answers.error_codes[k])) for k in good_errors[:5]]}")
    if no_final_header:
        failures.append(f"{len(no_final_header)} requests without a norbert-final: true response, e.g. {no_final_header[:5]}")
    if extra_finals:
        failures.append(f"{len(extra_finals)} results for no good request, e.g. {extra_finals[:5]}")
    if kills_done < args.kills:
        failures.append(f"only {kills_done} of {args.kills} kills done")

    good = sum(1 for m in messages if "good" in m[3])
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "seed": seed, "cores": os.cpu_count(),
        "load_at_start": [round(x, 2) for x in load], "load_at_end": [round(x, 2) for x in os.getloadavg()],
        "requests": len(messages), "good": good, "bad": len(messages) - good,
        "reply_to": sum(1 for m in messages if "good" in m[3] and m[3]["reply"]),
        "expected_finals": len(expected_finals), "finals_read": answers.final_count, "partials_read": partials,
        "duplicate_finals": dup_finals, "repeated_finals_by_last_disruption": dict(repeats_after), "requests_heads_answered_twice_or_more": dup_final_keys,
        "duplicate_error_responses": dup_errors, "duplicate_dead_letters": dup_letters, "unparsable": unparsable,
        "bad_by_code": dict(bad_codes), "kills": kills_done, "faults": sum(fault_kinds.values()),
        "fault_kinds": dict(fault_kinds), "partitions_lost_events": lost_events,
        "seconds_producing": round(produced_at, 1), "seconds_to_last_answer": round(answered_at, 1),
        "committed": commits, "ends": ends, "seconds_from_answers_to_commits": round(commit_wait, 1),
        "commit_lag_max": max((l for _, l in lag_samples), default=0),
        "commit_lag_median": sorted(l for _, l in lag_samples)[len(lag_samples) // 2] if lag_samples else 0, "final_exit_status": final_status,
        "worker_runs": {w.slot: w.runs for w in workers}, "exits": {w.slot: w.exits for w in workers},
        "peak_rss_mib": {w.slot: round(w.peak_kib / 1024, 1) for w in workers},
        "broker_exit": broker_status, "failures": failures,
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    print(json.dumps(summary, indent=2, default=str))
    if failures:
        log("soak: FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    log("soak: passed")


if __name__ == "__main__":
    main()
