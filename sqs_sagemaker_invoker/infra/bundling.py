"""The function's code asset, built without Docker.

Packaging decision (also in docs/deploying.md, "Packaging without Docker"): the function's dependencies are the project's locked
`function` dependency group (pyproject.toml, pinned in uv.lock: Powertools and boto3; the package's own
dependencies are the command line's). At synth we export exactly those pins with `uv export --frozen
--only-group function`, install the arm64 manylinux
wheels for the route's Python with `uv pip install --target --python-platform ... --only-binary :all:`
and copy `functions/` next to them. Why this and not the public Powertools layer + the runtime's boto3:
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
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from sqs_sagemaker_invoker.project import find_project_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

# The project being synthesized (cdk runs the app from it), not this package's install location.
REPO_ROOT = find_project_dir() or Path.cwd()
FUNCTIONS_DIR = REPO_ROOT / "functions"
HANDLER = "invoker.handler.lambda_handler"
PLATFORM = "aarch64-manylinux2014"  # arm64, glibc 2.17+: what Lambda's arm64 Python runtimes accept
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", "*.egg-info")


# The locked pins of the function's dependency group, and nothing else (not the project, not its
# dependencies, which are the command line's): the requirements the asset installs.
EXPORT_FUNCTION_PINS = (
    "export", "--frozen", "--only-group", "function", "--no-emit-project",
    "--no-hashes", "--no-header", "--no-annotate",
)  # fmt: skip


class BundlingError(RuntimeError):
    pass


def _python_version(runtime: str) -> str:
    # "python3.12" -> "3.12"
    return runtime.removeprefix("python")


def _source_files() -> Iterator[Path]:
    for path in sorted(FUNCTIONS_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def asset_hash(runtime: str) -> str:
    """A hash of everything that goes into the asset: the code, the lock file, the target platform.

    Custom because the default (hash of `functions/`) would miss a dependency bump in uv.lock, and an
    output hash would depend on incidental bytes of the installed files.
    """
    digest = hashlib.sha256()
    digest.update(f"{PLATFORM}\0{runtime}\0".encode())
    for name in ("uv.lock", "pyproject.toml"):
        path = REPO_ROOT / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    for path in _source_files():
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _run(command: list[str], what: str) -> str:
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BundlingError(f"{what}: cannot run {command[0]}: {exc}") from exc
    if done.returncode != 0:
        raise BundlingError(f"{what} failed (exit {done.returncode}): {' '.join(command)}\n{done.stderr}")
    return done.stdout


def find_uv() -> str:
    # scripts/ensure-uv prints a working uv (installing the pinned one into .tools/ when none is on PATH).
    return _run([str(REPO_ROOT / "scripts" / "ensure-uv")], "finding uv").strip()


def build(output_dir: Path, runtime: str) -> None:
    """Install the locked runtime dependencies for Lambda arm64 and copy functions/ into output_dir."""
    uv = find_uv()
    requirements = _run([uv, *EXPORT_FUNCTION_PINS], "exporting the locked function dependencies (uv export)")
    with tempfile.TemporaryDirectory(prefix="invoker-bundle-") as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(requirements, encoding="utf-8")
        install = [
            uv, "pip", "install", "--quiet", "--target", str(output_dir),
            "--python-platform", PLATFORM, "--python-version", _python_version(runtime),
            "--only-binary", ":all:", "--no-deps", "--no-compile", "-r", str(reqs),
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
    for child in sorted(FUNCTIONS_DIR.iterdir()):
        if child.name in {"__pycache__"}:
            continue
        target = output_dir / child.name
        if child.is_dir():
            shutil.copytree(child, target, ignore=_IGNORED, dirs_exist_ok=True)
        else:
            shutil.copy2(child, target)


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
        str(FUNCTIONS_DIR),
        asset_hash=asset_hash(runtime),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(
            # Required by the API; never pulled because the local bundling always succeeds or raises.
            image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.12:latest-arm64"),
            # jsii hands try_bundle its options as one positional struct, unlike the typed stub.
            local=cast("cdk.ILocalBundling", UvLocalBundling(runtime)),
        ),
    )
