"""Where the project's files are: found from the working directory upwards, never from this package.

An installed package lives in site-packages, far from any checkout; the files a command works on (the
CDK app's cdk.json, uv.lock, functions/, the local stack's state) belong to the project it is run in.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR_ENV = "INVOKER_PROJECT_DIR"
# The file that marks a project's root: the CDK app's configuration (routes and their settings).
MARKER = "cdk.json"


def find_project_dir(start: Path | None = None) -> Path | None:
    """INVOKER_PROJECT_DIR when set, else the nearest directory from `start` (default: the working
    directory) upwards that holds cdk.json; None when there is none."""
    explicit = os.environ.get(PROJECT_DIR_ENV)
    if explicit:
        return Path(explicit).resolve()
    here = (start or Path.cwd()).resolve()
    return next((directory for directory in (here, *here.parents) if (directory / MARKER).is_file()), None)
