"""Helpers for the tests: the offline data folder and running a notebook with papermill."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def data_dir() -> Path:
    """The offline data root (``$MEMKIT_DATA``), or skip the test with the reason."""
    root = os.environ.get("MEMKIT_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip(
            "offline data not found: set MEMKIT_DATA to a folder like ../shared/data "
            "(MNIST/raw, FashionMNIST/raw, cifar10-subset/)"
        )
    return Path(root)


def run_notebook(name: str, tmp_path: Path, **parameters) -> Path:
    """Execute ``notebooks/<name>.ipynb`` with papermill and ``parameters`` (the profile is taken
    from them, not from ``$MEMKIT_PROFILE``); return the executed copy. Raises on a failing cell."""
    import papermill as pm

    out = tmp_path / f"{name}.ipynb"
    env_profile = os.environ.pop("MEMKIT_PROFILE", None)  # let the `profile` parameter decide
    try:
        pm.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"),
            str(out),
            parameters=parameters,
            cwd=str(NOTEBOOKS),
            progress_bar=False,
            kernel_name="python3",
        )
    finally:
        if env_profile is not None:
            os.environ["MEMKIT_PROFILE"] = env_profile
    return out
