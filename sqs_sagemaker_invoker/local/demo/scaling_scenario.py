"""``demo --scenario scaling``: a burst at an endpoint with no copies, the local autoscaler scaling it out
by the route's policy and back to zero, and nothing lost on the way.

The route is the cdk.json route the mixed demo uses, with capacity shared on an inference component
(capacity unit copies) and a `scaling` policy of minCapacity 0; its retry settings pass the same check as
a deployed route's (`check_retries_outlast_scale_out`), so a message that finds no copy waits long enough
for one to come. The workload, the read-back, the tally and the summary are the mixed demo's; what this
scenario adds is the endpoint (zero copies, 200-500 ms per call), the wait for the scale-in, and the
capacity timeline with its chart.

Passes only if every request reached the results queue (this scenario expects no dead letter: its retries
outlast the scale-out) and the endpoint went from zero copies to its peak and back to zero.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.local.demo.chart import text_chart, write_png
from sqs_sagemaker_invoker.local.demo.config import DemoConfig, ScalingDemoConfig
from sqs_sagemaker_invoker.local.demo.report import print_table, print_verdict
from sqs_sagemaker_invoker.local.demo.runner import Demo
from sqs_sagemaker_invoker.local.demo.workload import RESULT, build_uniform_workload
from sqs_sagemaker_invoker.local.stack import ROOT, LocalStack, StackOptions, read_context

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from sqs_sagemaker_invoker.infra.config import RouteConfig
    from sqs_sagemaker_invoker.local.aws import RouteResources
    from sqs_sagemaker_invoker.local.demo.report import Summary
    from sqs_sagemaker_invoker.local.demo.workload import Request

ROUTE = "scaling"
ENDPOINT = "scaling-demo"
# The inference component whose copies count (DescribeInferenceComponent); named after its endpoint.
COMPONENT = ENDPOINT
CHART_FILE = "scaling-demo.png"


class ScalingDemo(Demo):
    def __init__(
        self, config: ScalingDemoConfig, console: Console | None = None, state_dir: Path | None = None
    ) -> None:
        self.scaling = config
        base = DemoConfig(
            requests=config.requests, rate=config.rate, timeout_s=config.timeout_s, seed=config.seed
        )
        super().__init__(base, console, state_dir)

    # -- the scenario's stack ---------------------------------------------------------------------

    def workload(self) -> list[Request]:
        return build_uniform_workload(self.config.requests, self.config.seed)

    def context(self) -> dict[str, Any]:
        """cdk.json with one route: its first standard-queue route, made a scaled, shared-capacity one."""
        context = read_context(ROOT / "cdk.json")
        app = context["invoker"]
        if isinstance(app, str):
            app = json.loads(app)
        base: dict[str, Any] = next((r for r in app.get("routes", []) if not r.get("fifo")), {})
        c = self.scaling
        route = {
            **base,
            "name": ROUTE,
            "endpointName": ENDPOINT,
            "fifo": False,
            "maxReceiveCount": c.max_receive_count,
            "retryBaseSeconds": c.retry_base_seconds,
            "retryMaxSeconds": c.retry_max_seconds,
            # Results to the queue only (the demo reads them there); no S3 payloads.
            "results": {"queue": True, "bucket": False},
            "largePayloads": False,
            "capacity": {
                "mode": "shared",
                "inferenceComponentName": COMPONENT,
                "concurrencyPerInstance": c.concurrency_per_copy,
                # The function re-reads the copies every 2 s, so new ones are used soon after they serve.
                "refreshSeconds": 2,
            },
            "scaling": {
                "minCapacity": 0,
                "maxCapacity": c.max_copies,
                "targetBacklogPerInstance": c.target_backlog_per_copy,
                "scaleOutCooldownSeconds": c.scale_out_cooldown_seconds,
                "scaleInCooldownSeconds": c.scale_in_cooldown_seconds,
                "scaleFromZeroStep": 1,
                "provisioningSeconds": c.provisioning_seconds,
            },
        }
        return {**context, "invoker": {**app, "routes": [route]}}

    def route_config(self) -> RouteConfig:
        # Parsing runs the deployed checks, check_retries_outlast_scale_out among them.
        return load_app_config(self.context()).route(ROUTE)

    def stack_options(self, route_config: RouteConfig) -> StackOptions:
        from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec, FaultSpec  # noqa: PLC0415

        c = self.scaling
        options = StackOptions(
            context=self.context(),
            endpoints={
                ENDPOINT: EndpointSpec(
                    name=ENDPOINT,
                    container="inline",  # answers like echo; the model is not what this scenario shows
                    instances=0,
                    capacity_unit="copies",
                    concurrency_per_instance=c.concurrency_per_copy,
                    latency_ms=c.latency_ms,
                    faults=FaultSpec(latency_jitter_ms=c.latency_jitter_ms),
                )
            },
            default_container="inline",
            prewarm=True,
            autoscale_tick_s=c.tick_s,
        )
        if self.state_dir is not None:
            options.state_dir = self.state_dir
        return options

    def announce(self, route_config: RouteConfig) -> None:
        policy = route_config.scaling
        assert policy is not None
        self.console.print(
            f"[bold]Starting the local stack[/] (route [cyan]{ROUTE}[/], endpoint [cyan]{ENDPOINT}[/] at 0 copies; "
            f"scaling {policy.min_capacity}-{policy.max_capacity} copies, target {policy.target_backlog_per_instance:g} "
            f"messages per copy, cooldowns out {policy.scale_out_cooldown_seconds} s / in "
            f"{policy.scale_in_cooldown_seconds} s)\n"
            f"  provisioning a copy takes [bold]{policy.provisioning_seconds} s[/] here; on AWS it takes minutes, "
            f"and the alarm that starts it from zero needs {policy.detection_seconds} s to fire (the local "
            f"autoscaler looks every {self.scaling.tick_s:g} s)\n"
            f"  retries: maxReceiveCount {route_config.max_receive_count}, retryBaseSeconds "
            f"{route_config.retry_base_seconds}, retryMaxSeconds {route_config.retry_max_seconds} "
            f"(they outlast {policy.detection_seconds + policy.provisioning_seconds} s of scale-out, as the "
            "deployed check requires)"
        )

    def background(self, stack: LocalStack, route_config: RouteConfig) -> list[Any]:
        self.timeline.enter("burst at zero copies")
        return []  # the stack's own autoscaler does the scaling

    # -- following it -----------------------------------------------------------------------------

    def status(self, stack: LocalStack, route: RouteResources) -> str:
        assert stack.emulator is not None
        capacity = stack.emulator.capacity(ENDPOINT)
        ticks = stack.autoscalers[ROUTE].ticks()
        backlog = ticks[-1].backlog if ticks else 0
        ledger = self.reader.ledger
        delivered = ledger.delivered()
        return (
            f"[yellow]copies {capacity['current']} serving / {capacity['desired']} desired[/] · backlog {backlog} · "
            f"delivered {delivered} · dead-lettered {ledger.settled() - delivered}"
        )

    def after_settled(self, stack: LocalStack, route_config: RouteConfig, started: float) -> None:
        """Wait for the scale-in to zero (the scale-in cooldown, then at once)."""
        assert stack.emulator is not None
        deadline = time.monotonic() + self.scaling.scale_in_wait_s
        with self.console.status("every request settled; waiting for the endpoint to scale back to zero..."):
            while time.monotonic() < deadline:
                capacity = stack.emulator.capacity(ENDPOINT)
                if capacity["current"] == 0 and capacity["desired"] == 0:
                    self.timeline.note("back at zero copies")
                    return
                time.sleep(0.5)

    # -- the summary ------------------------------------------------------------------------------

    def complete_summary(self, summary: Summary, stack: LocalStack, route_config: RouteConfig) -> None:
        assert stack.emulator is not None
        policy = route_config.scaling
        assert policy is not None
        scaler = stack.autoscalers[ROUTE]
        ticks = scaler.ticks()
        sent = [r.sent_at for r in self.requests if r.sent_at]
        first_sent = min(sent) if sent else scaler.started_at
        # Seconds since the first request was sent, for every clock the scenario reads.
        shift = scaler.started_at - first_sent
        points = [(round(t.t + shift, 2), t.serving, t.desired, t.backlog) for t in ticks]
        arrivals = [
            request.sent_at + (outcome.end_to_end_ms or 0.0) / 1000 - first_sent
            for request in self.requests
            for outcome in self.reader.ledger.outcomes.get(request.message_id, [])[:1]
            if outcome.place == RESULT and outcome.end_to_end_ms is not None
        ]
        final = stack.emulator.capacity(ENDPOINT)
        peak = max((t.serving for t in ticks), default=0)
        stats = stack.emulator.stats(ENDPOINT)
        summary.scaling = {
            "unit": policy.unit,
            "provisioning_seconds": policy.provisioning_seconds,
            "max_capacity": policy.max_capacity,
            "started_serving": ticks[0].serving if ticks else None,
            "peak_serving": peak,
            "peak_desired": max((t.desired for t in ticks), default=0),
            "final": {"serving": final["current"], "desired": final["desired"]},
            "decisions": [
                {"t": round(t.t + shift, 2), "desired": t.decision, "rule": t.rule, "why": t.why}
                for t in ticks
                if t.decision is not None
            ],
            "throttled_calls": stats.get("throttled", 0),
            "no_capacity_calls": stats.get("no_capacity", 0),
            "first_result_s": round(min(arrivals), 2) if arrivals else None,
            "drained_s": round(max(arrivals), 2) if arrivals else None,
            "points": points,
        }
        chart = None
        if self.state_dir is not None:
            chart = write_png(
                points,
                self.state_dir / CHART_FILE,
                unit=policy.unit,
                provisioning_s=policy.provisioning_seconds,
            )
        summary.scaling["chart_png"] = str(chart) if chart else None
        summary.problems += scaling_problems(summary)

    def print_summary(self, summary: Summary) -> None:
        """The mixed demo's table, this scenario's figures and chart, then the verdict."""
        print_table(self.console, summary)
        for line in scaling_lines(summary.scaling or {}):
            self.console.print(line, highlight=False)
        print_verdict(self.console, summary)


def scaling_problems(summary: Summary) -> list[str]:
    """Why the scenario fails beyond the tally's own checks: a dead letter, or no round trip to zero."""
    scaling = summary.scaling or {}
    problems = []
    dead = sum(summary.dead_lettered.values())
    if dead:
        problems.append(
            f"{dead} request(s) dead-lettered ({', '.join(sorted(summary.dead_lettered))}); this scenario expects"
            " none: its retries outlast the scale-out from zero"
        )
    if scaling.get("started_serving") != 0:
        problems.append(f"the endpoint did not start at zero copies ({scaling.get('started_serving')})")
    if not scaling.get("peak_serving"):
        problems.append("the endpoint never scaled out from zero")
    if scaling.get("final") != {"serving": 0, "desired": 0}:
        problems.append(f"the endpoint did not scale back to zero (at the end: {scaling.get('final')})")
    return problems


def scaling_lines(scaling: dict[str, Any]) -> list[str]:
    """The scenario's own lines under the summary table: the figures, the decisions, the chart."""
    unit = scaling["unit"]
    lines = [
        f"capacity: 0 -> peak {scaling['peak_serving']} {unit} serving (asked {scaling['peak_desired']}, max "
        f"{scaling['max_capacity']}) -> {scaling['final']['serving']} at the end",
        f"calls throttled by the endpoint: {scaling['throttled_calls']} · answered no capacity: "
        f"{scaling['no_capacity_calls']}",
        f"time to first result: {_seconds(scaling['first_result_s'])} · time to drain (last result): "
        f"{_seconds(scaling['drained_s'])} (since the first request was sent)",
        "decisions (local autoscaler, the deployed policy):",
        *(
            f"  {d['t']:6.1f} s  -> {d['desired']} {unit}  {d['rule']}: {d['why']}"
            for d in scaling["decisions"]
        ),
        f"{unit} and backlog over time (one column per ~{_column_seconds(scaling['points'])} s):",
        *text_chart(scaling["points"], scaling["max_capacity"]),
    ]
    if scaling.get("chart_png"):
        lines.append(f"chart: {scaling['chart_png']}")
    lines.append(
        f"provisioning took {scaling['provisioning_seconds']} s per scale-out here; on AWS a copy takes minutes"
        " and the alarm that starts from zero about two more"
    )
    return lines


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def _column_seconds(points: list[Any]) -> str:
    if len(points) < 2:
        return "1"
    span = points[-1][0] - points[0][0]
    return f"{max(span / min(len(points), 60), 0.1):.1f}"
