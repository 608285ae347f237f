#!/usr/bin/env python3
"""Send one request to norbert-worker over Kafka and print its answer (and streamed partials).

A client of our own wire protocol written with a different Kafka client (confluent-kafka, which
bundles its own librdkafka): it produces the request with a `reply-to` and a `correlation-id`
header, then reads the reply topic until the answer with that correlation id and
`norbert-final: true` arrives. Every response line is printed as it arrives (partials of a
`"stream": true` request first).

    pip install confluent-kafka
    python3 examples/requester.py --bootstrap-servers localhost:9094 \
        '{"id": "tc-1", "task": "text-classification", "text": "Dette var bra!"}'
    python3 examples/requester.py --stream \
        '{"id": "gen-1", "task": "text-generation", "text": "Hei", "options": {"max_new_tokens": 8}}'

Exit status: 0 answered, 2 answered with an error response, 3 no final answer before --timeout.
"""
import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def header(headers, name):
    """The last value of a header, decoded (None when absent)."""
    value = None
    for key, raw in headers or []:
        if key == name:
            value = raw.decode("utf-8", "replace") if raw is not None else ""
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("request", help="the request: one JSON object (schemas/request.schema.json)")
    parser.add_argument("--bootstrap-servers", default="localhost:9094")
    parser.add_argument("--requests", default="norbert-requests", help="request topic")
    parser.add_argument("--reply-to", default="norbert-results",
                        help="topic for the answer (the results topic, or one the worker allows with --reply-to-allow)")
    parser.add_argument("--stream", action="store_true", help='set "stream": true (partials before the final answer)')
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the final answer")
    parser.add_argument("--kafka", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka property for both clients (e.g. security.protocol=SASL_SSL); repeatable")
    args = parser.parse_args(argv)

    request = json.loads(args.request)
    if args.stream:
        request["stream"] = True
    common = {"bootstrap.servers": args.bootstrap_servers}
    for pair in args.kafka:
        key, _, value = pair.partition("=")
        common[key] = value
    correlation_id = str(uuid.uuid4())

    # Read the reply topic from its current end, fixed before the request goes out, so the answer
    # cannot slip past. No group offsets are committed: this is a private reader, not a member.
    consumer = Consumer({**common, "group.id": f"norbert-requester-{correlation_id}",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    metadata = consumer.list_topics(args.reply_to, timeout=10)
    topic = metadata.topics.get(args.reply_to)
    if topic is None or topic.error is not None or not topic.partitions:
        print(f"requester: reply topic {args.reply_to!r} not found: {topic.error if topic else ''}", file=sys.stderr)
        return 1
    start = []
    for partition in sorted(topic.partitions):
        _low, high = consumer.get_watermark_offsets(TopicPartition(args.reply_to, partition), timeout=10)
        start.append(TopicPartition(args.reply_to, partition, high))
    consumer.assign(start)

    producer = Producer({**common, "enable.idempotence": True})
    delivery = {}
    producer.produce(args.requests, key=str(request.get("id", correlation_id)).encode(),
                     value=json.dumps(request, ensure_ascii=False).encode(),
                     headers=[("reply-to", args.reply_to.encode()), ("correlation-id", correlation_id.encode())],
                     on_delivery=lambda err, msg: delivery.update(error=err, message=msg))
    producer.flush(10)
    if delivery.get("error") is not None or "message" not in delivery:
        print(f"requester: request not delivered: {delivery.get('error')}", file=sys.stderr)
        return 1
    sent = delivery["message"]
    print(f"requester: sent to {sent.topic()}[{sent.partition()}]@{sent.offset()} correlation-id={correlation_id}",
          file=sys.stderr)

    status = 3
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            headers = message.headers()
            if header(headers, "correlation-id") != correlation_id:
                continue
            line = message.value().decode("utf-8")
            print(line, flush=True)
            if header(headers, "norbert-final") == "true":
                status = 2 if "error" in json.loads(line) else 0
                break
        else:
            print(f"requester: no final answer within {args.timeout} s", file=sys.stderr)
    finally:
        consumer.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
