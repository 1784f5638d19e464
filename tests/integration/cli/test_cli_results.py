"""`invoker results` against a moto server over HTTP: JSON Lines out, filters, S3 bodies, acknowledgement."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.cli_stack import CliStack


def _result(request_id: str, **extra: Any) -> str:
    document = {
        "requestId": request_id,
        "messageId": f"m-{request_id}",
        "endpointName": "demo-endpoint",
        "contentType": "application/json",
        "body": {"label": request_id},
        "invokedProductionVariant": "AllTraffic",
        "customAttributes": None,
        "latencyMs": 1.5,
        "receiveCount": 1,
    }
    document.update(extra)
    return json.dumps(document, separators=(",", ":"))


def _put_results(stack: CliStack, *request_ids: str) -> None:
    url = stack.route().results_queue_url
    assert url is not None
    for request_id in request_ids:
        stack.sqs().send_message(QueueUrl=url, MessageBody=_result(request_id))


def test_results_are_written_as_json_lines_and_then_deleted(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN three results on the results queue
    _put_results(cli_stack, "a", "b", "c")
    out = tmp_path / "results.jsonl"

    # WHEN they are read into a file
    result = cli_stack.invoke("results", "--out", str(out))

    # THEN the file holds the three documents, one per line, and the queue is empty
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["requestId"] for line in lines) == ["a", "b", "c"]
    assert lines[0]["body"] == {"label": lines[0]["requestId"]}
    url = cli_stack.route().results_queue_url
    assert url is not None
    assert cli_stack.counts(url) == (0, 0)
    assert "wrote 3 result(s)" in result.stderr


def test_filtered_reads_leave_other_results_visible(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN five results, and an ids file naming two of them
    _put_results(cli_stack, "keep-1", "want-1", "keep-2", "want-2", "keep-3")
    ids = tmp_path / "ids.txt"
    ids.write_text("want-1\n\nwant-2\n")

    # WHEN results are read for those ids (and, separately, one --request-id)
    by_file = cli_stack.invoke("results", "--ids", str(ids))
    by_flag = cli_stack.invoke("results", "--request-id", "keep-3")

    # THEN only the wanted ones are written and deleted; the others are visible again at once
    assert by_file.exit_code == by_flag.exit_code == 0, (by_file.stderr, by_flag.stderr)
    assert sorted(json.loads(line)["requestId"] for line in by_file.stdout.splitlines()) == [
        "want-1",
        "want-2",
    ]
    assert [json.loads(line)["requestId"] for line in by_flag.stdout.splitlines()] == ["keep-3"]
    url = cli_stack.route().results_queue_url
    assert url is not None
    assert cli_stack.counts(url) == (2, 0)
    assert sorted(json.loads(body)["requestId"] for body in cli_stack.bodies(url)) == ["keep-1", "keep-2"]


def test_s3_offloaded_bodies_are_fetched(cli_stack: CliStack) -> None:
    # GIVEN a result whose body the function stored in the results bucket
    bucket = cli_stack.route().results_bucket
    assert bucket is not None
    big = {"predictions": list(range(50))}
    cli_stack.s3().put_object(Bucket=bucket, Key="results/big-1.body", Body=json.dumps(big).encode())
    text_key = "results/txt-1.body"
    cli_stack.s3().put_object(Bucket=bucket, Key=text_key, Body=b"plain words")
    url = cli_stack.route().results_queue_url
    assert url is not None
    document = json.loads(_result("big-1"))
    del document["body"]
    document["bodyS3Uri"] = f"s3://{bucket}/results/big-1.body"
    cli_stack.sqs().send_message(QueueUrl=url, MessageBody=json.dumps(document))
    cli_stack.sqs().send_message(
        QueueUrl=url,
        MessageBody=json.dumps(
            {"requestId": "txt-1", "contentType": "text/plain", "bodyS3Uri": f"s3://{bucket}/{text_key}"}
        ),
    )

    # WHEN results are read, with and without fetching
    fetched = cli_stack.invoke("results", "--request-id", "big-1")
    kept = cli_stack.invoke("results", "--request-id", "txt-1", "--no-fetch")

    # THEN the body is inlined as the function would have (JSON as body), or left as a URI on request
    assert fetched.exit_code == kept.exit_code == 0, (fetched.stderr, kept.stderr)
    (line,) = [json.loads(x) for x in fetched.stdout.splitlines()]
    assert line["body"] == big
    assert line["bodyS3Uri"].endswith("big-1.body")
    (raw,) = [json.loads(x) for x in kept.stdout.splitlines()]
    assert "bodyText" not in raw
    assert raw["bodyS3Uri"] == f"s3://{bucket}/{text_key}"


def test_follow_waits_for_the_wanted_ids(cli_stack: CliStack, tmp_path: Path) -> None:
    # GIVEN one result now and one that arrives 1.5 s later
    _put_results(cli_stack, "early")
    later = threading.Timer(1.5, _put_results, args=(cli_stack, "late"))
    later.start()
    out = tmp_path / "out.jsonl"
    out.write_text(_result("from-before") + "\n")
    try:
        # WHEN results are followed for both ids
        started = time.monotonic()
        result = cli_stack.invoke(
            "results",
            "--follow",
            "--request-id",
            "early",
            "--request-id",
            "late",
            "--out",
            str(out),
            "--timeout",
            "20",
        )
        elapsed = time.monotonic() - started
    finally:
        later.join()

    # THEN it returns once both are written, appended to what the file held
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["requestId"] for line in out.read_text().splitlines()] == [
        "from-before",
        "early",
        "late",
    ]
    assert 1.0 < elapsed < 15


def test_follow_times_out_naming_the_missing_results(cli_stack: CliStack) -> None:
    # GIVEN one of two wanted results
    _put_results(cli_stack, "here")

    # WHEN followed with a short timeout
    result = cli_stack.invoke(
        "results", "-f", "--request-id", "here", "--request-id", "missing-1", "--timeout", "1.5"
    )

    # THEN the one present is written, and a one-line error names the missing one
    assert result.exit_code == 1
    assert [json.loads(line)["requestId"] for line in result.stdout.splitlines()] == ["here"]
    assert result.stderr.splitlines()[-1] == "error: timed out: 1 of 2 result(s) not received (missing-1)"


def test_nothing_is_deleted_when_the_output_cannot_be_written(cli_stack: CliStack) -> None:
    # GIVEN three results, and an output that fails when flushed (a full disk)
    _put_results(cli_stack, "a", "b", "c")

    # WHEN results are written to /dev/full
    result = cli_stack.invoke("results", "--out", "/dev/full")

    # THEN the command fails in one line and every result is still on the queue, visible
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "No space left on device" in result.stderr
    url = cli_stack.route().results_queue_url
    assert url is not None
    assert cli_stack.counts(url) == (3, 0)
