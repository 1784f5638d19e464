"""`invoker dlq redrive --move-task`: one SQS message move task for the whole DLQ, refused when unsafe."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.markup import escape

from sqs_sagemaker_invoker.cli.dlq.letters import DeadLetterQueue
from sqs_sagemaker_invoker.cli.dlq.redrive import check_for_move_task, start_move_task, wait_move_task
from sqs_sagemaker_invoker.cli.errors import CliError, describe_aws_error
from sqs_sagemaker_invoker.cli.ui import stderr_console

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.cli.target import Route, Target

MOVE_TASK_TIMEOUT_S = 3600


def redrive_with_move_task(  # noqa: PLR0913 - the redrive command's options, one keyword each
    target: Target,
    route: Route,
    *,
    max_redrives: int,
    force: bool,
    rate: float | None,
    wait: bool,
    as_json: bool,
) -> bool:
    """Redrive through StartMessageMoveTask; False when unavailable (the caller redrives message by message).

    The task moves every message as it is: it cannot hold back, fetch a body from S3 or add
    invoker.redrive_count (the function counts a redrive from the invoker.* attributes the letters keep).
    So the DLQ is read first, and the task is refused when it would do what a redrive must not.
    """
    err = stderr_console()
    check = check_for_move_task(
        DeadLetterQueue(target, route, visibility_timeout=60), max_redrives=max_redrives
    )
    if check.pointers:
        raise CliError(
            f"{check.pointers} of {check.read} dead letter(s) keep their body in S3: a move task would send "
            "the pointer, not the body; redrive without --move-task"
        )
    if check.held_back and not force:
        raise CliError(
            f"{check.held_back} of {check.read} dead letter(s) were redriven {max_redrives} time(s) already "
            "and a move task cannot hold them back; redrive without --move-task (holds them back), or --force"
        )
    try:
        handle = start_move_task(target, route, rate=rate)
    except (ClientError, BotoCoreError) as exc:
        err.print(
            f"StartMessageMoveTask unavailable ({escape(describe_aws_error(exc) or str(exc))}); "
            "redriving message by message (send, then delete)"
        )
        return False
    err.print(
        f"started message move task {escape(handle)} from {route.dead_letter_queue_name} to {route.request_queue_name}"
    )
    final: dict[str, Any] = {}
    if wait:
        shown: list[tuple[Any, Any]] = []

        def on_status(task: dict[str, Any]) -> None:
            state = (task.get("Status"), task.get("ApproximateNumberOfMessagesMoved"))
            if state != (shown[-1] if shown else None):
                shown.append(state)
                err.print(f"move task {state[0] or 'starting'}: {state[1] or 0} message(s) moved")

        final = wait_move_task(target, route, handle, on_status, timeout=MOVE_TASK_TIMEOUT_S)
        moved = final.get("ApproximateNumberOfMessagesMoved", "?")
        err.print(f"move task {final.get('Status', 'UNKNOWN')}: {moved} message(s) moved")
    document: dict[str, Any] = {"moveTask": handle}
    document.update({k: final[k] for k in ("Status", "ApproximateNumberOfMessagesMoved") if k in final})
    sys.stdout.write(json.dumps(document) + "\n" if as_json else f"{handle}\n")
    if final.get("Status") == "FAILED":
        raise CliError(f"message move task failed: {final.get('FailureReason', 'unknown reason')}")
    return True
