"""The demo itself: one local stack, the workload sent while the fault phases run, the outcomes followed
until every request has settled (or the time is up), then the summary."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from dataclasses import asdict
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.local.demo.phases import Timeline, run_fault_phases
from sqs_sagemaker_invoker.local.demo.readback import (
    OutcomeReader,
    queue_counts,
    queue_empty,
    still_queued_problem,
)
from sqs_sagemaker_invoker.local.demo.report import (
    Summary,
    function_log_events,
    function_metrics,
    metric_problems,
    percentile,
    print_summary,
    tally,
)
from sqs_sagemaker_invoker.local.demo.workload import WorkloadSender, build_workload
from sqs_sagemaker_invoker.local.stack import ROOT, LocalStack, StackOptions, read_context

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.infra.config import AppConfig, RouteConfig
    from sqs_sagemaker_invoker.local.aws import RouteResources
    from sqs_sagemaker_invoker.local.demo.config import DemoConfig
    from sqs_sagemaker_invoker.local.demo.workload import Request


class Demo:
    def __init__(
        self, config: DemoConfig, console: Console | None = None, state_dir: Path | None = None
    ) -> None:
        self.config = config
        self.console = console or Console()
        self.state_dir = state_dir
        self.requests = self.workload()
        self.timeline = Timeline()
        self._stop = threading.Event()
        self.sender = WorkloadSender(self.requests, rate=config.rate, seed=config.seed, stop=self._stop)
        self.reader = OutcomeReader(self.sender)
        # Set when the demo timed out with messages still in the request queue.
        self.still_queued: str | None = None

    def workload(self) -> list[Request]:
        """The requests: the deterministic mix of kinds, each expecting its own place."""
        return build_workload(self.config.requests, self.config.seed)

    def pick_route(self, app: AppConfig) -> RouteConfig:
        if self.config.route is not None:
            return app.route(self.config.route)
        return next((r for r in app.routes if not r.fifo), app.routes[0])

    def stack_options(self, route_config: RouteConfig) -> StackOptions:
        """The stack as cdk.json defines it, the route's endpoint serving the scikit-learn model."""
        from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec  # noqa: PLC0415

        endpoint = route_config.endpoint_name
        options = StackOptions(
            endpoints={
                endpoint: EndpointSpec(
                    name=endpoint, container="sklearn", startup_delay_s=self.config.startup_delay_s
                )
            },
            default_container="echo",
            prewarm=True,
            route_overrides={"retryMaxSeconds": self._retry_max(route_config)},
        )
        if self.state_dir is not None:
            options.state_dir = self.state_dir
        return options

    def _retry_max(self, route_config: RouteConfig) -> int:
        return min(
            route_config.retry_max_seconds,
            max(route_config.retry_base_seconds, self.config.retry_max_seconds),
        )

    def route_config(self) -> RouteConfig:
        """The route the demo drives, from the configuration its stack is started with."""
        return self.pick_route(load_app_config(read_context(ROOT / "cdk.json")))

    def announce(self, route_config: RouteConfig) -> None:
        self.console.print(
            f"[bold]Starting the local stack[/] (route [cyan]{route_config.name}[/], endpoint "
            f"[cyan]{route_config.endpoint_name}[/]; demo setting: retryMaxSeconds="
            f"{self._retry_max(route_config)}, cdk.json says {route_config.retry_max_seconds})"
        )

    def background(self, stack: LocalStack, route_config: RouteConfig) -> list[threading.Thread]:
        """What runs beside the sender while the demo follows the outcomes: here, the fault phases."""
        assert stack.emulator is not None
        return [
            threading.Thread(
                target=run_fault_phases,
                args=(stack.emulator, route_config.endpoint_name, self.config, self.timeline, self._stop),
                daemon=True,
            )
        ]

    def run(self) -> Summary:
        started = self.timeline.restart()
        route_config = self.route_config()
        options = self.stack_options(route_config)
        self.announce(route_config)
        with LocalStack(options) as stack:
            self.console.print(
                f"  moto {stack.moto.url} · SageMaker Runtime emulator {stack.outputs['SageMakerRuntimeUrl']} · "
                f"started in {time.monotonic() - started:.1f} s"
            )
            route = stack.route(route_config.name)
            sqs = stack.sqs()
            sender = threading.Thread(
                target=self.sender.send_all,
                args=(stack.sqs(), route.request_queue_url),
                kwargs={"fifo": route_config.fifo, "on_done": lambda: self.timeline.note("all sent")},
                daemon=True,
            )
            threads = [sender, *self.background(stack, route_config)]
            for thread in threads:
                thread.start()
            try:
                self._follow(stack, sqs, route, started)
                self.after_settled(stack, route_config, started)
            finally:
                self._stop.set()
                for thread in threads:
                    thread.join(timeout=10)
            assert stack.esm is not None
            stack.esm.stop(kill=False, timeout=5)
            assert stack.telemetry is not None
            stack.telemetry.flush()
            # Anything that arrived while stopping (a batch finishing) counts too.
            self.reader.read(sqs, route)
            return self._summarise(stack, route, route_config, time.monotonic() - started)

    def after_settled(self, stack: LocalStack, route_config: RouteConfig, started: float) -> None:
        """Once every request has settled (or the time is up): nothing more to wait for here."""

    def status(self, stack: LocalStack, route: RouteResources) -> str:
        """The progress line's status: the fault phase and where the requests are."""
        assert stack.esm is not None
        stats = stack.esm.stats(route.route.name)
        ledger = self.reader.ledger
        delivered = ledger.delivered()
        return (
            f"[yellow]{self.timeline.phase}[/] · delivered {delivered} · "
            f"dead-lettered {ledger.settled() - delivered} · "
            f"returned to queue {stats.item_failures} · batches {stats.batches}"
        )

    def _follow(self, stack: LocalStack, sqs: SQSClient, route: RouteResources, started: float) -> None:
        total = len(self.requests)
        deadline = started + self.config.timeout_s
        ledger = self.reader.ledger
        columns = (
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            sent_task = progress.add_task("sent    ", total=total, status="")
            done_task = progress.add_task("settled ", total=total, status="")
            while True:
                try:
                    self.reader.read(sqs, route)
                    empty = queue_empty(sqs, route.request_queue_url)
                except (BotoCoreError, ClientError) as exc:
                    # A failed read (the stack's clients already retried) is read again on the next tick
                    self.console.print(f"[dim]read-back failed ({exc}); retrying[/]")
                    empty = False
                status = self.status(stack, route)
                progress.update(sent_task, completed=self.sender.sent)
                progress.update(done_task, completed=ledger.settled(), status=status)
                if self.sender.sent == total and ledger.settled() >= total and empty:
                    self.timeline.note("all settled")
                    return
                if time.monotonic() > deadline:
                    self.console.print(f"[red]timed out after {self.config.timeout_s:.0f} s[/]")
                    # Before any request is called lost: is it still in the queue (in flight, delayed)?
                    with contextlib.suppress(BotoCoreError, ClientError):
                        self.still_queued = still_queued_problem(queue_counts(sqs, route.request_queue_url))
                    return
                time.sleep(0.3)

    def _summarise(
        self, stack: LocalStack, route: RouteResources, route_config: RouteConfig, elapsed: float
    ) -> Summary:
        outcomes = tally(self.requests, self.reader.ledger, self.sender.sent_message_ids())
        retried, dead_metric, points = function_metrics(stack, route_config)
        assert stack.esm is not None
        assert stack.emulator is not None
        stats = stack.esm.stats(route_config.name)
        summary = Summary(
            sent=dict(Counter(r.kind for r in self.requests)),
            delivered=outcomes.delivered,
            duplicates=outcomes.duplicates,
            dead_lettered=dict(outcomes.dead),
            retried=retried,
            problems=[p for p in [self.still_queued] if p]
            + outcomes.problems
            + metric_problems(outcomes.dead, dead_metric),
            latency_ms={"p50": percentile(outcomes.latencies, 50), "p99": percentile(outcomes.latencies, 99)},
            end_to_end_ms={
                "p50": percentile(outcomes.end_to_end, 50),
                "p99": percentile(outcomes.end_to_end, 99),
            },
            event_source={
                "batches": stats.batches,
                "records": stats.records,
                "returned_to_queue": stats.item_failures,
                "failed_batches": dict(stats.batch_failures),
                "cold_starts": stats.cold_starts,
            },
            endpoint={k: v for k, v in stack.emulator.stats(route_config.endpoint_name).items() if v},
            log_events=function_log_events(stack, route),
            metric_data_points=points,
            elapsed_s=elapsed,
            timeline=sorted(self.timeline.events),
        )
        self.complete_summary(summary, stack, route_config)
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "demo-summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
        return summary

    def complete_summary(self, summary: Summary, stack: LocalStack, route_config: RouteConfig) -> None:
        """What a scenario adds to the summary (and to its problems) while the stack still runs."""

    def print_summary(self, summary: Summary) -> None:
        print_summary(self.console, summary)
