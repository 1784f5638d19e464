"""`invoker send` against a moto server over HTTP: envelopes, batching, S3 offload, and refusing bad input."""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING

import pytest

from tests.support.cli_stack import ORDERED_ROUTE

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.support.cli_stack import CliStack


def _envelopes(stack: CliStack, route: str = "demo") -> list[dict[str, object]]:
    return [json.loads(body) for body in stack.bodies(stack.route(route).request_queue_url)]


def test_single_payloads_become_envelopes_with_the_flags(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN a text payload on stdin, a binary file and a JSON file
    binary = tmp_path / "image.bin"
    binary.write_bytes(b"\x89PNG\x00\xff")
    document = tmp_path / "doc.json"
    document.write_text('{"instances": [[5.1, 3.5]]}')

    # WHEN each is sent with envelope flags
    text = cli_stack.invoke(
        "send", "--request-id", "csv-7", "--content-type", "text/csv", "--accept", "application/json",
        "--target-variant", "blue", "--custom-attributes", "trace=1", "--inference-id", "inf-1",
        "--prefix-aware-id", "tenant-7:chat", input="5.1,3.5\n",
    )  # fmt: skip
    raw = cli_stack.invoke("send", str(binary), "--content-type", "image/png", "--session-id", "s-1")
    js = cli_stack.invoke("send", str(document), "--raw-json", "--target-model", "m.tar.gz")

    # THEN each prints its request id and the queue holds the envelopes the function expects
    assert text.exit_code == raw.exit_code == js.exit_code == 0, (text.stderr, raw.stderr, js.stderr)
    assert text.stdout == "csv-7\n"
    by_id = {e["requestId"]: e for e in _envelopes(cli_stack)}
    assert by_id["csv-7"] == {
        "requestId": "csv-7", "bodyText": "5.1,3.5\n", "contentType": "text/csv", "accept": "application/json",
        "targetVariant": "blue", "customAttributes": "trace=1", "inferenceId": "inf-1",
        "prefixAwareId": "tenant-7:chat",
    }  # fmt: skip
    binary_envelope = by_id[raw.stdout.strip()]
    assert base64.b64decode(str(binary_envelope["bodyBase64"])) == b"\x89PNG\x00\xff"
    assert binary_envelope["sessionId"] == "s-1"
    assert by_id[js.stdout.strip()]["body"] == {"instances": [[5.1, 3.5]]}
    assert by_id[js.stdout.strip()]["targetModel"] == "m.tar.gz"


def test_jsonl_is_sent_in_batches_of_ten_with_ids_in_order(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN 25 envelopes, some with request ids, behind a proxy that counts SQS calls
    stack = cli_stack
    lines = [json.dumps({"requestId": f"r-{i:02d}", "body": {"i": i}}) for i in range(20)]
    lines += [json.dumps({"bodyText": f"t{i}"}) for i in range(5)]
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(lines) + "\n\n")
    ids_out = tmp_path / "ids.txt"

    # WHEN they are sent with a default content type flag
    result = stack.invoke("send", "--jsonl", str(source), "--ids-out", str(ids_out), "--accept", "text/csv")

    # THEN 25 messages arrived, the ids file lists every request id in input order
    assert result.exit_code == 0, result.stderr
    ids = ids_out.read_text().split()
    assert len(ids) == 25
    assert ids[:20] == [f"r-{i:02d}" for i in range(20)]
    envelopes = _envelopes(stack)
    assert sorted(str(e["requestId"]) for e in envelopes) == sorted(ids)
    assert all(e["accept"] == "text/csv" for e in envelopes)
    assert "sent 25 request(s)" in result.stderr


def test_batches_are_capped_at_ten_messages_and_one_mib(
    make_cli_stack: Callable[..., CliStack], tmp_path: Path
) -> None:
    # GIVEN a proxy counting calls; 12 small envelopes, then 3 of 400 KB each
    stack = make_cli_stack(proxy=True)
    assert stack.proxy is not None
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(json.dumps({"bodyText": "x"}) for _ in range(12)))
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(json.dumps({"bodyText": str(i) * 400_000}) for i in range(3)))

    # WHEN both are sent
    first = stack.invoke("send", "--jsonl", str(small), "-q")
    calls_small = stack.proxy.calls["SendMessageBatch"]
    second = stack.invoke("send", "--jsonl", str(big), "-q")

    # THEN 12 messages took 2 calls (10 + 2), 3 x 400 KB took 2 calls (the sum of one call stays <= 1 MiB)
    assert first.exit_code == second.exit_code == 0, (first.stderr, second.stderr)
    assert calls_small == 2
    assert stack.proxy.calls["SendMessageBatch"] - calls_small == 2
    assert len(stack.bodies(stack.route().request_queue_url)) == 15


def test_a_payload_past_the_sqs_limit_travels_through_s3(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN a 1.5 MB JSON payload (over SQS's 1 MiB message limit, under the endpoint's 6 MB)
    payload = json.dumps({"rows": ["x" * 100] * 15_000}).encode()
    assert 1_048_576 < len(payload) < 6_291_456
    path = tmp_path / "big.json"
    path.write_bytes(payload)

    # WHEN it is sent
    result = cli_stack.invoke("send", str(path), "--raw-json", "--request-id", "big-1")

    # THEN the message carries bodyS3Uri under the route's PayloadS3Prefix and S3 holds the payload
    assert result.exit_code == 0, result.stderr
    (envelope,) = _envelopes(cli_stack)
    prefix = cli_stack.route().payload_s3_prefix
    assert prefix is not None
    assert str(envelope["bodyS3Uri"]).startswith(prefix + "big-1")
    assert envelope["contentType"] == "application/json"
    assert "body" not in envelope
    bucket, _, key = str(envelope["bodyS3Uri"]).removeprefix("s3://").partition("/")
    stored = cli_stack.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert json.loads(stored) == json.loads(payload)
    assert "1 payload(s) via S3" in result.stderr


def test_a_payload_over_6_mb_is_refused_and_nothing_sent(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN a payload one byte over the endpoint's 6,291,456 bytes, and a JSONL file with one such line
    path = tmp_path / "huge.bin"
    path.write_bytes(b"a" * 6_291_457)
    lines = tmp_path / "huge.jsonl"
    lines.write_text(json.dumps({"bodyText": "ok"}) + "\n" + json.dumps({"bodyText": "a" * 6_291_457}) + "\n")

    # WHEN they are sent
    single = cli_stack.invoke("send", str(path))
    many = cli_stack.invoke("send", "--jsonl", str(lines))

    # THEN one-line errors naming the problem, non-zero exits, and an empty queue
    assert single.exit_code == 1
    assert single.stderr.count("\n") == 1
    assert "6,291,457 bytes is over the endpoint's limit" in single.stderr
    assert many.exit_code == 1
    assert "line 2" in many.stderr
    assert "Traceback" not in single.output + many.output
    assert cli_stack.bodies(cli_stack.route().request_queue_url) == []


def test_a_malformed_jsonl_line_names_the_line_and_nothing_is_sent(
    cli_stack: CliStack, tmp_path: Path
) -> None:
    # GIVEN files whose line 3 is broken in different ways
    good = [json.dumps({"bodyText": "a"}), json.dumps({"body": {"b": 1}})]
    cases = {
        "not json": '{"bodyText": "c"',
        "unknown key": json.dumps({"bodyText": "c", "contentTyp": "text/csv"}),
        "two bodies": json.dumps({"bodyText": "c", "body": 1}),
        "bad base64": json.dumps({"bodyBase64": "%%%"}),
        "bad request id": json.dumps({"bodyText": "c", "requestId": "has space"}),
        # What the function would refuse as invalid_message on every receive is refused here too.
        "duplicate key": '{"bodyText": "c", "bodyText": "d"}',
        "duplicate key in body": '{"body": {"a": 1, "a": 2}}',
        "inexact number": '{"body": [1e999]}',
        "too deep": '{"body": ' + "[" * 5000 + "]" * 5000 + "}",
        "non-ascii header": json.dumps({"bodyText": "c", "targetModel": "modèle.tar.gz"}),
        "variant pattern": json.dumps({"bodyText": "c", "targetVariant": "blue variant"}),
        "prefix-aware id": json.dumps({"bodyText": "c", "prefixAwareId": " leading-space"}),
    }
    for case, line in cases.items():
        path = tmp_path / f"{case}.jsonl"
        path.write_text("\n".join([*good, line, json.dumps({"bodyText": "d"})]) + "\n")

        # WHEN the file is sent
        result = cli_stack.invoke("send", "--jsonl", str(path))

        # THEN one line names line 3, the exit is non-zero, no id is printed and nothing was sent
        assert result.exit_code == 1, case
        assert result.stderr.startswith(f"error: {path} line 3: "), (case, result.stderr)
        assert result.stderr.count("\n") == 1, case
        assert result.stdout == "", case
    assert cli_stack.bodies(cli_stack.route().request_queue_url) == []


def test_fifo_route_needs_a_group_id_and_deduplicates_by_request_id(
    make_cli_stack: Callable[..., CliStack], tmp_path: Path
) -> None:
    # GIVEN a FIFO route
    stack = make_cli_stack([ORDERED_ROUTE])
    source = tmp_path / "ordered.jsonl"
    source.write_text("\n".join(json.dumps({"requestId": f"o-{i}", "bodyText": str(i)}) for i in range(3)))

    # WHEN sent without, then with a group id, then the same requests again
    refused = stack.invoke("send", "--jsonl", str(source))
    sent = stack.invoke("send", "--jsonl", str(source), "--group-id", "customer-9")
    again = stack.invoke("send", "--jsonl", str(source), "--group-id", "customer-9")

    # THEN the first is refused up front; the messages keep their group and order; the resend is deduplicated
    assert refused.exit_code == 1
    assert "--group-id" in refused.stderr
    assert sent.exit_code == again.exit_code == 0, (sent.stderr, again.stderr)
    messages = stack.peek(stack.route("ordered").request_queue_url)
    assert [json.loads(m["Body"])["requestId"] for m in messages] == ["o-0", "o-1", "o-2"]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"customer-9"}
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == ["o-0", "o-1", "o-2"]


def test_a_partial_batch_failure_says_exactly_what_was_sent(
    make_cli_stack: Callable[..., CliStack], tmp_path: Path
) -> None:
    # GIVEN 25 requests, and SQS refusing all but 3 entries of the second SendMessageBatch
    stack = make_cli_stack(proxy=True)
    assert stack.proxy is not None
    from tests.support.cli_stack import Fault  # noqa: PLC0415

    stack.proxy.faults.append(Fault("SendMessageBatch", call=2, keep=3))
    source = tmp_path / "requests.jsonl"
    source.write_text(
        "\n".join(json.dumps({"requestId": f"p-{i:02d}", "bodyText": str(i)}) for i in range(25))
    )
    unsent = tmp_path / "unsent.jsonl"

    # WHEN they are sent
    result = stack.invoke("send", "--jsonl", str(source), "--unsent-out", str(unsent))

    # THEN stdout lists exactly the 13 sent ids, stderr names every other id, and the queue agrees
    assert result.exit_code == 1
    sent = result.stdout.split()
    assert sent == [f"p-{i:02d}" for i in range(13)]
    for i in range(13, 25):
        assert f"not sent: p-{i:02d}" in result.stderr
    assert "sent 13 of 25" in result.stderr.splitlines()[-1]
    queued = sorted(json.loads(body)["requestId"] for body in stack.bodies(stack.route().request_queue_url))
    assert queued == sent
    assert [json.loads(line)["requestId"] for line in unsent.read_text().splitlines()] == [
        f"p-{i:02d}" for i in range(13, 25)
    ]


def test_rate_limits_messages_per_second(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN 12 requests
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(json.dumps({"bodyText": str(i)}) for i in range(12)))

    # WHEN sent at 20 per second
    started = time.monotonic()
    result = cli_stack.invoke("send", "--jsonl", str(source), "--rate", "20", "-q")
    elapsed = time.monotonic() - started

    # THEN it took at least (12 - 10) / 20 s: the second batch of 10 waited for the first to be paid for
    assert result.exit_code == 0, result.stderr
    assert elapsed >= 0.5
    assert len(result.stdout.split()) == 12


def test_raw_format_sends_the_payload_itself_with_attributes(cli_stack: CliStack) -> None:
    # GIVEN a route with MESSAGE_FORMAT=raw (the body is the payload; ContentType/Accept/RequestId travel as attributes)
    # WHEN a payload is sent in raw format
    result = cli_stack.invoke(
        "send", "--format", "raw", "--request-id", "raw-1", "--content-type", "text/csv",
        "--target-model", "m.tar.gz", "--prefix-aware-id", "tenant-7", input="1,2,3",
    )  # fmt: skip

    # THEN the message body is the payload and the attributes, named by the InvokeEndpoint members,
    # carry the rest
    assert result.exit_code == 0, result.stderr
    (message,) = cli_stack.peek(cli_stack.route().request_queue_url)
    assert message["Body"] == "1,2,3"
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {
        "RequestId": "raw-1", "ContentType": "text/csv", "TargetModel": "m.tar.gz", "PrefixAwareId": "tenant-7",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "says"),
    [('{"a": 1, "a": 2}', "repeats a key"), ("[1e999]", "cannot be forwarded exactly"),
     ("{", "the payload is not JSON")],
)  # fmt: skip
def test_raw_json_payload_is_read_as_strictly_as_the_function_reads_it(
    cli_stack: CliStack, payload: str, says: str
) -> None:
    # GIVEN a --raw-json payload the function would refuse (a lenient parse would silently keep the
    # last key, or send Infinity) WHEN sent THEN refused with the reason, and nothing is sent
    result = cli_stack.invoke("send", "--raw-json", input=payload)
    assert result.exit_code == 1
    assert says in result.stderr
    assert cli_stack.bodies(cli_stack.route().request_queue_url) == []
