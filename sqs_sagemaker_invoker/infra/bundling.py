"""The function's code asset, built without Docker.

Packaging decision (also in docs/deploying.md, "Packaging without Docker"): the function's dependencies are the project's locked
`function` dependency group (pyproject.toml, pinned in uv.lock: Powertools and boto3; the package's own
dependencies are the command line's). Their pins travel with this package as `function-requirements.txt` (generated from uv.lock by
`make function-requirements`; a test keeps it equal to `uv export` of the lock), so an installed
construct bundles the same versions without the repository. At synth we install the arm64 manylinux
wheels of those pins for the route's Python with `uv pip install --target --python-platform ...
--only-binary :all:` and copy the function package `invoker` (found where it is installed) next to them. Why this and not the public Powertools layer + the runtime's boto3:
- the versions deployed are the versions the tests ran with (one lock file), including boto3/botocore,
  whose retry defaults the function relies on and which the Lambda runtime upgrades on its own schedule;
- no per-region layer ARN table to maintain, and it works in any partition/region;
- no Docker: wheels for another platform are fetched by the resolver, nothing is compiled (every
  dependency is pure Python today; --only-binary makes a future native dependency fail loudly rather
  than build for the wrong platform);
- cold start is the same order either way: Lambda loads the same modules from /var/task or /opt.
The cost is a larger asset (about 40 MB unzipped, mostly botocore), well under Lambda's 250 MB limit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

if TYPE_CHECKING:
    from collections.abc import Iterator

FUNCTION_PACKAGE = "invoker"  # the function's import name; installed with this package
HANDLER = f"{FUNCTION_PACKAGE}.handler.lambda_handler"
# The function's locked dependencies: `uv export` of uv.lock (EXPORT_ARGS), committed and shipped here.
FUNCTION_REQUIREMENTS = Path(__file__).resolve().with_name("function-requirements.txt")
EXPORT_ARGS = (
    "export", "--frozen", "--only-group", "function", "--no-emit-project",
    "--no-hashes", "--no-header", "--no-annotate",
)  # fmt: skip
PLATFORM = "aarch64-manylinux2014"  # arm64, glibc 2.17+: what Lambda's arm64 Python runtimes accept
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", "*.egg-info")


class BundlingError(RuntimeError):
    pass


def function_package_dir() -> Path:
    """Where the function package is installed (functions/invoker in a checkout), found without importing
    it: infra imports nothing of the function but its contract."""
    spec = importlib.util.find_spec(FUNCTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BundlingError(f"the function package {FUNCTION_PACKAGE!r} is not installed next to this one")
    return Path(next(iter(spec.submodule_search_locations)))


def _python_version(runtime: str) -> str:
    # "python3.12" -> "3.12"
    return runtime.removeprefix("python")


def _source_files(package: Path) -> Iterator[Path]:
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def asset_hash(runtime: str) -> str:
    """A hash of everything that goes into the asset: the code, the pins, the target platform.

    Custom because the default (hash of the source directory) would miss a dependency bump, and an
    output hash would depend on incidental bytes of the installed files.
    """
    package = function_package_dir()
    digest = hashlib.sha256()
    digest.update(f"{PLATFORM}\0{runtime}\0".encode())
    digest.update(b"requirements\0" + FUNCTION_REQUIREMENTS.read_bytes())
    for path in _source_files(package):
        digest.update(str(path.relative_to(package.parent)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _run(command: list[str], what: str, *, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BundlingError(f"{what}: cannot run {command[0]}: {exc}") from exc
    if done.returncode != 0:
        raise BundlingError(f"{what} failed (exit {done.returncode}): {' '.join(command)}\n{done.stderr}")
    return done.stdout


def find_uv() -> str:
    """uv from $UV, else the project's scripts/ensure-uv (run from a checkout), else uv on PATH."""
    if os.environ.get("UV"):
        return os.environ["UV"]
    ensure_uv = Path.cwd() / "scripts" / "ensure-uv"
    if ensure_uv.is_file():
        # Prints a working uv (installing the pinned one into .tools/ when none is on PATH).
        return _run([str(ensure_uv)], "finding uv").strip()
    found = shutil.which("uv")
    if found is None:
        raise BundlingError("bundling the function needs uv (https://docs.astral.sh/uv/) on PATH or in $UV")
    return found


def export_requirements(project: Path) -> str:
    """`uv export` of project's uv.lock: what FUNCTION_REQUIREMENTS must hold."""
    return _run(
        [find_uv(), *EXPORT_ARGS], "exporting the locked function dependencies (uv export)", cwd=project
    )


def build(output_dir: Path, runtime: str) -> None:
    """Install the pinned function dependencies for Lambda arm64 and copy the function package into output_dir."""
    uv = find_uv()
    install = [
        uv, "pip", "install", "--quiet", "--target", str(output_dir),
        "--python-platform", PLATFORM, "--python-version", _python_version(runtime),
        "--only-binary", ":all:", "--no-deps", "--no-compile", "-r", str(FUNCTION_REQUIREMENTS),
    ]  # fmt: skip
    what = "installing the function dependencies for Lambda arm64 (uv pip install)"
    try:
        # From uv's cache first (filled by `make install`): synth then needs no network at all.
        _run([*install, "--offline"], what)
    except BundlingError:
        shutil.rmtree(output_dir, ignore_errors=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        _run(install, what)
    # Console scripts of the dependencies are useless in the function.
    shutil.rmtree(output_dir / "bin", ignore_errors=True)
    shutil.copytree(
        function_package_dir(), output_dir / FUNCTION_PACKAGE, ignore=_IGNORED, dirs_exist_ok=True
    )


@jsii.implements(cdk.ILocalBundling)
class UvLocalBundling:
    """Docker-free bundling: CDK calls try_bundle; returning True means Docker is never used."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        # Raise rather than return False: False would make CDK fall back to Docker, which the project
        # must not need, and the Docker error would hide the real cause.
        build(Path(output_dir), self.runtime)
        return True


def function_code(runtime: str) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(function_package_dir()),
        asset_hash=asset_hash(runtime),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(
            # Required by the API; never pulled because the local bundling always succeeds or raises.
            image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.12:latest-arm64"),
            # jsii hands try_bundle its options as one positional struct, unlike the typed stub.
            local=cast("cdk.ILocalBundling", UvLocalBundling(runtime)),
        ),
    )


if __name__ == "__main__":  # `make function-requirements`: refresh the shipped pins from uv.lock
    FUNCTION_REQUIREMENTS.write_text(export_requirements(Path.cwd()), encoding="utf-8")
