"""``python -m sqs_sagemaker_invoker.local.moto_process HOST``: a moto server on a free port; prints {"port": N}; ends at stdin EOF."""

from __future__ import annotations

import contextlib
import json
import logging
import sys


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - after the logging setup

    from sqs_sagemaker_invoker.local.moto_sqs_lock import serialise_sqs  # noqa: PLC0415

    # moto's SQS is not thread-safe: without this, a receive racing a delete now and then fails with
    # HTTP 500 after hiding messages for their visibility timeout.
    serialise_sqs()

    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    server.start()
    print(json.dumps({"port": server.get_host_and_port()[1]}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # until the parent closes the pipe or dies
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
