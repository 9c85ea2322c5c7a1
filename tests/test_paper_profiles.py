"""The ``paper`` profile's code path of every notebook, with its sizes cut down.

The paper scale needs a GPU and the full data sets; here each notebook runs its ``paper``
settings (architectures, optimisers, data sets) on a few examples for a step or two, on the CPU,
so that a Colab user never meets a branch that no test ran. Claims are reported, not asserted,
in the paper profile, so only crashes fail these tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import data_dir, run_notebook

# notebook -> (data sets to run, the paper settings to cut down)
CUT_DOWN = {
    "01_easy_examples": (["mnist", "cifar10-subset"], {"n_models": 3, "n_train": 300, "n_track": 100}),
}


@pytest.mark.parametrize("name", sorted(CUT_DOWN))
def test_paper_profile_cut_down(name, tmp_path):
    data_dir()
    datasets, overrides = CUT_DOWN[name]
    run_notebook(name, tmp_path, profile="paper", dataset=datasets, device="cpu", overrides=overrides)
    path = Path(os.environ["MEMKIT_OUTPUT"]) / "results" / "paper" / f"{name}.json"
    result = json.loads(path.read_text())
    assert result["profile"] == "paper"
    assert result["parameters"]["overrides"] == overrides
    assert result["claims"], "the paper profile computes its claims (reported, not asserted)"
