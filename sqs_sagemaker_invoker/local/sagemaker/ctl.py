"""Command line for a running emulator's control API.

python -m sqs_sagemaker_invoker.local.sagemaker.ctl --url http://127.0.0.1:8080 status
python -m sqs_sagemaker_invoker.local.sagemaker.ctl --url ... stats demo-classifier
python -m sqs_sagemaker_invoker.local.sagemaker.ctl --url ... inject demo-classifier model_error --count 2 --status 500
python -m sqs_sagemaker_invoker.local.sagemaker.ctl --url ... faults demo-classifier '{"throttle_rate": 0.2}' [--merge]
python -m sqs_sagemaker_invoker.local.sagemaker.ctl --url ... not-ready demo-classifier 10
python -m sqs_sagemaker_invoker.local.sagemaker.ctl --url ... throttle demo-classifier 5
python -m sqs_sagemaker_invoker.local.sagemaker.ctl --url ... capacity demo-classifier [INSTANCES --provisioning-s 30]
python -m sqs_sagemaker_invoker.local.sagemaker.ctl --url ... reset [ENDPOINT]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqs_sagemaker_invoker.local.sagemaker.control_client import ControlError, EmulatorClient
from sqs_sagemaker_invoker.local.sagemaker.spec import FaultSpec


def run(args: argparse.Namespace) -> Any:
    """Carry out one command; what it returns is printed as JSON (None: nothing)."""
    client = EmulatorClient(args.url)
    result: Any = None
    match args.command:
        case "status":
            if args.endpoint:
                result = client.status(args.endpoint)
            else:
                result = [client.status(name) for name in client.endpoint_names()]
        case "stats":
            result = client.stats(args.endpoint)
        case "inject":
            client.inject(args.endpoint, args.kind, count=args.count, original_status_code=args.status)
            result = client.stats(args.endpoint)["scripted_pending"]
        case "faults":
            result = _set_faults(client, args.endpoint, json.loads(args.json), merge=args.merge)
        case "not-ready":
            client.not_ready_for(args.endpoint, args.seconds)
        case "throttle":
            client.throttle_for(args.endpoint, args.seconds)
        case "capacity":
            if args.instances is None:
                result = client.capacity(args.endpoint)
            else:
                result = client.set_capacity(args.endpoint, args.instances, args.provisioning_s)
        case "reset":
            client.reset(args.endpoint)
    return result


def _set_faults(client: EmulatorClient, endpoint: str, changes: dict[str, Any], *, merge: bool) -> Any:
    if merge:
        return client.update_faults(endpoint, **changes).to_dict()
    client.set_faults(endpoint, FaultSpec.from_dict(changes))
    return client.faults(endpoint).to_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sqs_sagemaker_invoker.local.sagemaker.ctl", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", required=True, help="the emulator's URL (printed when it starts)")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status")
    status.add_argument("endpoint", nargs="?")
    commands.add_parser("stats").add_argument("endpoint")
    inject = commands.add_parser("inject", help="the next COUNT requests fail with KIND")
    inject.add_argument("endpoint")
    inject.add_argument("kind")
    inject.add_argument("--count", type=int, default=1)
    inject.add_argument("--status", type=int, default=500, help="OriginalStatusCode of a model_error")
    faults = commands.add_parser("faults", help="replace (or --merge into) the FaultSpec")
    faults.add_argument("endpoint")
    faults.add_argument("json")
    faults.add_argument("--merge", action="store_true")
    for name in ("not-ready", "throttle"):
        window = commands.add_parser(name, help="start a window of SECONDS (0 ends it)")
        window.add_argument("endpoint")
        window.add_argument("seconds", type=float)
    capacity = commands.add_parser("capacity", help="show, or scale to INSTANCES (copies)")
    capacity.add_argument("endpoint")
    capacity.add_argument("instances", type=int, nargs="?")
    capacity.add_argument("--provisioning-s", type=float, default=0.0, help="until added instances serve")
    commands.add_parser("reset").add_argument("endpoint", nargs="?")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (ControlError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
