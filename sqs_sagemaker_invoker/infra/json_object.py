"""A JSON object of the route configuration being read, every error naming the key's path.

Pure Python (no CDK import), shared by cdk.json's reader and the construct's keyword props.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from sqs_sagemaker_invoker.infra.config import CONTEXT_KEY, RouteConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

# Keys renamed while the project is young: the old spelling is refused with the new one named, never
# read silently (a renamed key that fell back to its default would change a deployment unnoticed).
RENAMED_KEYS: Final[Mapping[str, str]] = {
    "functionConcurrency": "endpointCallsInFlight",
}


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    return (
        type(value).__name__
        if not isinstance(value, (list, dict))
        else ("list" if isinstance(value, list) else "object")
    )


class JsonObject:
    """A JSON object being read, with every error naming the key's path."""

    def __init__(self, raw: Any, path: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(raw, dict):
            raise RouteConfigError(f"{path or CONTEXT_KEY}: must be an object, got {describe(raw)}")
        self.raw: dict[str, Any] = raw
        self.path = path
        for old, new in RENAMED_KEYS.items():
            if old in raw and new in allowed:
                raise RouteConfigError(
                    f"{self._key(old)}: renamed to {new}; write {new} instead (same meaning and range)"
                )
        unknown = [key for key in raw if key not in allowed]
        if unknown:
            # Typos would otherwise fall back to a default silently.
            raise RouteConfigError(
                f"{self._key(str(unknown[0]))}: unknown setting; allowed keys are {', '.join(allowed)}"
            )

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.raw

    def get(self, key: str, default: Any) -> Any:
        return self.raw.get(key, default)

    def required_string(self, key: str) -> str:
        if key not in self.raw or self.raw[key] is None:
            raise RouteConfigError(f"{self._key(key)}: missing (required)")
        return self.string(key, "")

    def string(self, key: str, default: str) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str):
            raise RouteConfigError(f"{self._key(key)}: must be a string, got {describe(value)}")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise RouteConfigError(f"{self._key(key)}: must be a string, got {describe(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise RouteConfigError(f"{self._key(key)}: must be true or false, got {describe(value)}")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self.raw.get(key, default)
        # bool is an int subclass in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            raise RouteConfigError(f"{self._key(key)}: must be a whole number, got {describe(value)}")
        if value < minimum:
            raise RouteConfigError(f"{self._key(key)}: {value} is below {minimum}, the minimum")
        if value > maximum:
            raise RouteConfigError(f"{self._key(key)}: {value} is above {maximum}, the maximum")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise RouteConfigError(f"{self._key(key)}: {value!r} is not one of {', '.join(choices)}")
        return value
