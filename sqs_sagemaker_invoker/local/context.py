"""A cdk.json's context, as the local stack reads it, and the overrides its scenarios apply to every route."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


def read_context(cdk_json: Path) -> dict[str, Any]:
    """The ``context`` object of a cdk.json (what ``load_app_config`` reads)."""
    data = json.loads(cdk_json.read_text(encoding="utf-8"))
    context = data.get("context") if isinstance(data, dict) else None
    if not isinstance(context, dict):
        raise ValueError(f'{cdk_json}: has no "context" object')
    return context


def with_route_overrides(context: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The context with ``overrides`` (route settings, cdk.json spelling) applied to every route."""
    app = context["invoker"]
    if isinstance(app, str):
        app = json.loads(app)
    app = dict(app)
    app["routes"] = [{**route, **overrides} for route in app.get("routes", [])]
    return {**context, "invoker": app}
