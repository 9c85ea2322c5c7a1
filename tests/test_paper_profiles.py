"""The ``paper`` profile's code path of every notebook, with its sizes cut down.

The paper scale needs a GPU and the full data sets; here each notebook runs its ``paper``
settings (architectures, optimisers, data sets) on a few examples for a step or two, on the CPU,
so that a Colab user never meets a branch that no test ran. With ``MEMKIT_TEST_DEVICE=cuda``
the same runs exercise the CUDA branches (TF32, bfloat16 autocast) on a GPU machine. Claims are reported, not asserted,
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
    "01_easy_examples": (["mnist", "cifar10-subset"], {"n_seeds": 3, "n_train": 300, "n_track": 100}),
    "02_loss_sensitivity": (["mnist"], {"n_train": 100, "n_seeds": 2, "epochs": 2, "n_times": 2, "n_times_class": 2}),
    "03_capacity_convergence": (
        ["mnist", "cifar10-subset"],
        {
            "n_seeds": 1,
            "capacity_n": 200,
            "n_heldout": 100,
            "capacity_widths": [16, 64],
            "capacity_epochs": 1,
            "noise_levels": [0.0, 0.8],
            "clean_controls": [0.8],
            "time_noise": {"randX": [1.0]},
            "time_sizes": [50, 100],
            "time_width": 64,
            "time_widths": [16, 64],
            "time_n": 100,
            "time_budget": 2,
        },
    ),
    "04_critical_samples": (
        ["mnist", "cifar10-subset"],
        {
            "n_seeds": 1,
            "n_train": 64,
            "n_test": 50,
            "n_csr": 10,
            "epochs": [0, 1],
            "noise_levels": [0.5],
            "widths": [64],
            "n_check": 100,
            "lass": {"n_iter": 2},
        },
    ),
    "05_regularization": (
        ["mnist", "cifar10-subset"],
        {
            "n_train": 64,
            "n_seeds": 1,
            "epochs": 1,
            "arch_options": {"channels": [4], "hidden": 8},
            "strengths": {"dropout": [0.5], "weight_decay": [0.001], "adversarial": [0.5]},
            "chosen": {"dropout": 0.5, "weight_decay": 0.001, "adversarial": 0.5},
            "lass": {"n_iter": 2},
        },
    ),
    "06_shallow_first": (
        ["mnist", "cifar10-subset"],
        {"n_seeds": 2, "n_train": 8, "n_test": 8, "epochs": 1, "n_log": 2},
    ),
    "07_one_way_to_learn": (
        "cifar10-subset",
        {
            "n_train": 256,
            "n_seeds": 2,
            "epochs": 2,
            "n_grad": 64,
            "noise_levels": [0.0, 1.0],
            "n_z": 2,
            "am_iter": 3,
            "gan_epochs": 1,
            "gan_width": 8,
            "archs": {
                "A": {"arch": "cnn", "channels": [8], "hidden": 16},
                "A_large": {"arch": "cnn", "channels": [16], "hidden": 16},
                "B": {"arch": "mlp", "widths": [32]},
            },
        },
    ),
    "08_memorization_atlas": (
        ["cifar10-subset"],
        {
            "n_train": 120,
            "noise_datasets": ["cifar10-subset"],
            "n_baseline": 1,
            "n_boot": 10,
            "lass": {"n_iter": 2},
            "n_critical": 2,
            "shallow": {"kind": "svm", "n_components": 50},
            "train": {
                "default": {
                    "size": None,
                    "model": {"arch": "cnn", "channels": [8, 8], "hidden": 16},
                    "n_models": 4,
                    "epochs": 2,
                    "batch_size": 32,
                    "lr": 0.01,
                    "momentum": 0.9,
                    "early_epoch": 1,
                    "n_grand": 2,
                }
            },
        },
    ),
}


@pytest.mark.parametrize("name", sorted(CUT_DOWN))
def test_paper_profile_cut_down(name, tmp_path):
    data_dir()
    datasets, overrides = CUT_DOWN[name]
    device = os.environ.get("MEMKIT_TEST_DEVICE", "cpu")  # e.g. cuda, to try the GPU-only branches
    run_notebook(name, tmp_path, profile="paper", dataset=datasets, device=device, overrides=overrides)
    path = Path(os.environ["MEMKIT_OUTPUT"]) / "results" / "paper" / f"{name}.json"
    result = json.loads(path.read_text())
    assert result["profile"] == "paper"
    assert result["parameters"]["overrides"] == overrides
    assert result["claims"], "the paper profile computes its claims (reported, not asserted)"
