"""Run the SageMaker Runtime emulator standalone: prints its URL on the first stdout line, runs until
Ctrl-C / SIGTERM (or stdin EOF with --exit-on-stdin-eof), then stops every container it started.

    python -m sqs_sagemaker_invoker.local.sagemaker --config emulator.json
    python -m sqs_sagemaker_invoker.local.sagemaker --endpoint demo-classifier=sklearn --endpoint echo=echo --port 8080

Config JSON: {"host", "port", "access_key", "secret_key", "account_id", "log_dir",
"endpoints": [{EndpointSpec fields, "faults": {FaultSpec fields}}]}.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from sqs_sagemaker_invoker.local.sagemaker.emulator import SageMakerEmulator
from sqs_sagemaker_invoker.local.sagemaker.spec import EndpointSpec, SpecError

CONFIG_KEYS = {"host", "port", "access_key", "secret_key", "account_id", "log_dir", "endpoints"}


def build(args: argparse.Namespace) -> SageMakerEmulator:
    config: dict[str, Any] = json.loads(Path(args.config).read_text()) if args.config else {}
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise SpecError(f"unknown config key(s): {', '.join(unknown)}")
    specs = [EndpointSpec.from_dict(item) for item in config.get("endpoints", [])]
    for item in args.endpoint:
        name, _, container = item.partition("=")
        specs.append(EndpointSpec.from_dict({"name": name, "container": container or "echo"}))
    return SageMakerEmulator(
        specs,
        host=args.host or config.get("host", "127.0.0.1"),
        port=args.port if args.port is not None else int(config.get("port", 0)),
        access_key=config.get("access_key", "testing"),
        secret_key=config.get("secret_key", "testing"),
        account_id=config.get("account_id", "123456789012"),
        log_dir=config.get("log_dir"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sqs_sagemaker_invoker.local.sagemaker", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", help="JSON config file")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--endpoint", action="append", default=[], metavar="NAME[=echo|sklearn|inline]")
    parser.add_argument(
        "--wait-ready",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait for every endpoint to be ready before printing the URL",
    )
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when the parent closes stdin")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        emulator = build(args)
    except (SpecError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with emulator:
        if args.wait_ready:
            emulator.wait_ready(timeout=args.wait_ready)
        print(emulator.url, flush=True)
        if args.exit_on_stdin_eof:

            def watch_stdin() -> None:
                while sys.stdin.buffer.read(4096):
                    pass
                done.set()

            threading.Thread(target=watch_stdin, daemon=True).start()
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
