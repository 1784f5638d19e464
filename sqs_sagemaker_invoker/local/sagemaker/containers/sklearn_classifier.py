"""Example model container: a scikit-learn classifier trained at start-up on a bundled dataset (no download).

Input (Content-Type):
- application/json: {"instances": [[f1, f2, ...], ...]}, a list of rows, or a single feature list [f1, f2, ...]
- text/csv: one row per line, comma separated (no header)
Output (Accept: application/json, */* or none): {"predictions": [{"label": "setosa",
"probabilities": {"setosa": 0.97, ...}}, ...]}. Malformed input answers 400, an unsupported content
type 415, an unsupported Accept 406 (SageMaker turns each into a ModelError).

Run: python -m sqs_sagemaker_invoker.local.sagemaker.containers.sklearn_classifier --port 0 --startup-delay 2 [--dataset wine]
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import TYPE_CHECKING, Any

from sqs_sagemaker_invoker.local.sagemaker.containers._server import ContainerResponse, json_error, serve
from sqs_sagemaker_invoker.local.sagemaker.wire import CUSTOM_ATTRIBUTES_HEADER

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from sqs_sagemaker_invoker.local.sagemaker._http import Headers

MAX_ROWS = 10_000
JSON_TYPES = ("application/json", "application/jsonlines")
CSV_TYPES = ("text/csv",)


class BadInput(ValueError):
    pass


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _json_rows(text: str) -> list[Any]:
    """The rows of a JSON body: a list of rows, one row, or an object with an "instances" list."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"body is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        if "instances" not in data:
            raise BadInput('JSON object must have an "instances" list')
        data = data["instances"]
    if not isinstance(data, list) or not data:
        raise BadInput("expected a non-empty list of feature rows")
    return data if isinstance(data[0], list) else [data]


def parse_rows(content_type: str | None, body: bytes, n_features: int) -> list[list[float]]:
    media = _media_type(content_type)
    if media not in CSV_TYPES and media not in JSON_TYPES and media != "":
        raise _Unsupported(media)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput("body is not UTF-8") from exc
    if media in CSV_TYPES:
        rows: list[Any] = [
            row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)
        ]
    else:
        rows = _json_rows(text)
    if not rows:
        raise BadInput("no rows in the request")
    if len(rows) > MAX_ROWS:
        raise BadInput(f"at most {MAX_ROWS} rows per request")
    parsed: list[list[float]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != n_features:
            raise BadInput(f"row {index}: expected {n_features} features, got {row!r:.80}")
        try:
            values = [float(v) for v in row if not isinstance(v, bool)]
        except (TypeError, ValueError) as exc:
            raise BadInput(f"row {index}: features must be numbers ({exc})") from exc
        if len(values) != n_features or not all(math.isfinite(v) for v in values):
            raise BadInput(f"row {index}: features must be finite numbers")
        parsed.append(values)
    return parsed


class _Unsupported(Exception):
    pass


class SklearnClassifier:
    def __init__(self, dataset: str = "iris") -> None:
        self.dataset = dataset
        self.labels: list[str] = []
        self.n_features = 0
        self._model: Any = None

    def load(self) -> None:
        # Imported here so the server is listening (and /ping answers 503) while scikit-learn loads.
        from sklearn import datasets  # noqa: PLC0415
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
        from sklearn.pipeline import make_pipeline  # noqa: PLC0415
        from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

        loader = {"iris": datasets.load_iris, "wine": datasets.load_wine}[self.dataset]
        data = loader()
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(data.data, data.target)
        self.labels = [str(name) for name in data.target_names]
        self.n_features = int(data.data.shape[1])
        self._model = model

    def invoke(self, headers: Headers, body: bytes) -> ContainerResponse:
        extra = (
            [(CUSTOM_ATTRIBUTES_HEADER, attrs)] if (attrs := headers.get(CUSTOM_ATTRIBUTES_HEADER)) else []
        )
        accept = _media_type(headers.get("Accept"))
        if accept not in ("", "*/*", "application/json"):
            return json_error(406, f"unsupported Accept {accept!r}: this model answers application/json")
        try:
            rows = parse_rows(headers.get("Content-Type"), body, self.n_features)
        except _Unsupported as exc:
            return json_error(
                415, f"unsupported content type {exc.args[0]!r}: use application/json or text/csv"
            )
        except BadInput as exc:
            return json_error(400, str(exc))
        probabilities = self._model.predict_proba(rows)
        predictions = []
        for row in probabilities:
            best = max(range(len(row)), key=lambda i: row[i])
            predictions.append(
                {
                    "label": self.labels[best],
                    "probabilities": {
                        label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)
                    },
                }
            )
        body_out = json.dumps({"predictions": predictions}).encode()
        return ContainerResponse(200, body_out, "application/json", extra)


def main(argv: Sequence[str] | None = None) -> None:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", choices=("iris", "wine"), default="iris")

    serve(lambda args: SklearnClassifier(args.dataset), argv, name="sklearn", add_arguments=add_arguments)


if __name__ == "__main__":
    main()
