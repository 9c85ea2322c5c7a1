"""Every notebook's ``quick`` settings on every data set it applies to, cut down to seconds.

``quick`` sizes an experiment for the data set chosen (:data:`memkit.profiles.DATA_LIMITS`, and a
notebook's ``per_dataset`` settings), so a student can run any finding on MNIST, Fashion-MNIST,
MNIST-1D or the CIFAR-10 subset on a laptop (the measured times are in the README). Here each
notebook runs its quick settings on all of them in one run (one run per data set for a notebook
that takes one at a time), with sizes cut by ``overrides``, so its claims are reported, not asserted:
only a crash fails. A data set a notebook does not apply to (:data:`memkit.profiles.UNSUPPORTED`)
is left out; the unit tests check that it is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from memkit import profiles
from tests.helpers import NOTEBOOKS, data_dir, run_notebook
from tests.test_paper_profiles import CUT_DOWN

OFFLINE = ("digits", "mnist1d", "mnist", "fashion-mnist", "cifar10-subset")

# notebook -> the quick settings cut down
CUT = {
    "01_easy_examples": {"n_seeds": 4, "n_repeats": 1, "n_train": 200, "n_track": 100},
    "02_loss_sensitivity": {"n_train": 100, "n_seeds": 2, "epochs": 2, "n_times": 2, "n_times_class": 2},
    "03_capacity_convergence": CUT_DOWN["03_capacity_convergence"][1],  # the same cut as the paper path's
    "04_critical_samples": CUT_DOWN["04_critical_samples"][1],
    "05_regularization": {
        "n_train": 64,
        "n_seeds": 1,
        "epochs": 1,
        "arch_options": {"widths": [32]},
        "strengths": {"dropout": [0.5], "weight_decay": [0.01], "adversarial": [0.5]},
        "chosen": {"dropout": 0.5, "weight_decay": 0.01, "adversarial": 0.5},
        "lass": {"n_iter": 2},
    },
    "06_shallow_first": {"n_seeds": 2, "n_train": 64, "n_test": 32, "epochs": 1, "n_log": 2, "n_perm": 10},
    "07_one_way_to_learn": {
        "n_train": 128,
        "n_seeds": 2,
        "epochs": 2,
        "n_grad": 32,
        "noise_levels": [0.0, 1.0],
        "n_z": 2,
        "am_iter": 3,
        "gan_epochs": 1,
        "gan_width": 8,
        "archs": {
            "A": {"arch": "mlp", "widths": [32]},
            "A_large": {"arch": "mlp", "widths": [64]},
            "B": {"arch": "cnn", "channels": [4], "hidden": 8},
        },
    },
    "08_memorization_atlas": {
        "n_train": 120,
        "noise_datasets": ["digits", "mnist"],
        "n_baseline": 1,
        "n_boot": 10,
        "lass": {"n_iter": 2},
        "n_critical": 2,
        "sensitivity": {"widths": [8], "n_seeds": 2, "n_times": 2, "sgd": {"epochs": 1, "batch_size": 50, "lr": 0.2}},
    },
}


# notebooks that run one data set at a time (Run.one_dataset): one run per data set
ONE_AT_A_TIME = {"07_one_way_to_learn"}
RUNS = [
    (name, datasets)
    for name in sorted(CUT)
    for supported in [[d for d in OFFLINE if d not in profiles.UNSUPPORTED.get(name, {})]]
    for datasets in ([[d] for d in supported] if name in ONE_AT_A_TIME else [supported])
]


@pytest.mark.parametrize(("name", "datasets"), RUNS, ids=[f"{n}-{'+'.join(d)}" for n, d in RUNS])
def test_quick_on_every_data_set(name, datasets, tmp_path):
    data_dir()
    run_notebook(name, tmp_path, profile="quick", dataset=datasets, device="cpu", overrides=CUT[name])
    path = Path(os.environ["MEMKIT_OUTPUT"]) / "results" / "quick" / f"{name}.json"
    result = json.loads(path.read_text())
    assert result["parameters"]["overrides"] == CUT[name]
    assert result["claims"]


def test_every_notebook_is_run_on_every_data_set():
    assert set(CUT) == {nb.stem for nb in NOTEBOOKS.glob("*.ipynb")}, "add the new notebook's cut to CUT"
    assert all(set(reasons) <= set(OFFLINE) | {"cifar10", "cifar100"} for reasons in profiles.UNSUPPORTED.values())
