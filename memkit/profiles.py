"""The parameters every notebook shares, and how a profile scales an experiment.

``profile``: ``"test"`` (seconds, CPU; the notebook tests), ``"quick"`` (the default: minutes
on a laptop CPU, embedded data), ``"paper"`` (the papers' data sets and scales; meant for a GPU).
``$MEMKIT_PROFILE``, when set, overrides the notebook's ``profile`` parameter: the test suite
uses it to run every notebook in the ``test`` profile under nbval.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from memkit.data import DATASETS

PROFILES = ("test", "quick", "paper")
T = TypeVar("T")


def resolve_profile(profile: str) -> str:
    """``$MEMKIT_PROFILE`` if set, else ``profile``; raises ``ValueError`` for an unknown one."""
    profile = os.environ.get("MEMKIT_PROFILE") or profile
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    return profile


def settings(profile: str, table: dict[str, T]) -> T:
    """The entry of ``table`` (keyed by profile name) for ``profile``, with a clear error."""
    if profile not in table:
        raise ValueError(f"no settings for profile {profile!r}; this notebook knows {', '.join(table)}")
    return table[profile]


def resolve_datasets(dataset: str | list[str] | None, default: list[str]) -> list[str]:
    """The data sets to run: ``default`` when ``dataset`` is ``None``, else ``dataset`` (one
    name or a list), each checked against :data:`memkit.data.DATASETS`."""
    names = default if dataset is None else [dataset] if isinstance(dataset, str) else list(dataset)
    for n in names:
        if n not in DATASETS:
            raise ValueError(f"unknown data set {n!r}; choose one of {', '.join(DATASETS)}")
    return names


def parameters(**kwargs: Any) -> dict[str, Any]:
    """The notebook's parameters as a JSON-ready dict (for the result file)."""
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else str(v))
            for k, v in kwargs.items()}
