"""One SQS call at a time inside a moto server: moto's SQS backend is not thread-safe.

The server answers each request on its own thread, and moto's SQS backend iterates and changes a queue's
message list and in-flight set without a lock. Under load (the demo's function workers, its reader and
its sender at once) a ReceiveMessage then fails with HTTP 500 ("Set changed size during iteration")
*after* marking some messages received: they stay invisible for the whole visibility timeout, and a
demo that ends before that reports them lost. Real SQS has no such failure.

`serialise_sqs()` wraps every public method of moto's `SQSBackend` in one process-wide lock. A long poll
(ReceiveMessage with WaitTimeSeconds) must not hold it while it waits for messages, or every other SQS
call would stall for up to 20 s: the queue's wait is replaced by a wait on the same lock's condition, which
releases the lock meanwhile and wakes on any finished SQS call (a send, a visibility change) or after a
short poll interval (a delayed message or an expired visibility timeout becomes visible with no call).

Other services are untouched: the lock serialises SQS with itself only. Imports moto when called.
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Final

# Re-scan of a long poll when nothing wakes it: what a delayed or timed-out message waits at most to be
# seen (moto's own wait re-scans every second).
POLL_INTERVAL_S: Final = 0.05

_condition = threading.Condition(threading.RLock())
_installed = False
_install_lock = threading.Lock()


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _condition:
            try:
                return method(*args, **kwargs)
            finally:
                # Whatever changed (a send, a deleted or returned message) may end a long poll's wait.
                _condition.notify_all()

    call.__serialised__ = True  # type: ignore[attr-defined]
    return call


def _wait_for_messages(self: Any, timeout: int) -> None:
    """Queue.wait_for_messages, called from inside the locked receive_message: wait with the lock free."""
    del self
    _condition.wait(min(float(timeout), POLL_INTERVAL_S))


def serialise_sqs() -> None:
    """Install the lock into this process's moto (idempotent)."""
    global _installed  # noqa: PLW0603 - one installation per process, as moto's backends are per process
    with _install_lock:
        if _installed:
            return
        from moto.sqs import models  # noqa: PLC0415 - moto only where a server runs

        backend = models.SQSBackend
        for name, member in list(vars(backend).items()):
            if (
                name.startswith("_")
                or not inspect.isfunction(member)
                or getattr(member, "__serialised__", False)
            ):
                continue
            setattr(backend, name, _serialised(member))
        models.Queue.wait_for_messages = _wait_for_messages  # type: ignore[method-assign]
        _installed = True


def installed() -> bool:
    return _installed
