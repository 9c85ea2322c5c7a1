"""memkit.data: shapes, corruption, determinism, and the error messages."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from memkit import data
from tests.helpers import data_dir


def test_digits_shapes_and_standardisation():
    ds = data.load("digits")
    assert ds.x_train.shape == (1500, 1, 8, 8) and ds.x_test.shape == (297, 1, 8, 8)
    assert ds.y_train.dtype == torch.int64 and set(ds.y_train.tolist()) == set(range(10))
    assert ds.n_classes == 10 and ds.in_features == 64 and ds.input_shape == (1, 8, 8)
    assert ds.classes == tuple("0123456789")
    assert abs(ds.x_train.mean().item()) < 1e-5 and abs(ds.x_train.std().item() - 1) < 1e-3
    assert len(ds.corrupted) == 0 and torch.equal(ds.y_train, ds.y_clean)


def test_mnist1d_is_generated_offline():
    ds = data.load("mnist1d", n_train=100, n_test=50)
    assert ds.x_train.shape == (100, 1, 40) and ds.x_test.shape == (50, 1, 40)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.37, 1.0])
def test_randy_corrupts_exactly_p(p):
    ds = data.load("digits", corruption="randY", p=p, seed=3)
    assert len(ds.corrupted) == round(p * 1500)
    assert torch.equal(ds.corrupted, ds.corrupted.unique())  # distinct and sorted
    clean = torch.ones(1500, dtype=torch.bool)
    clean[ds.corrupted] = False
    assert torch.equal(ds.y_train[clean], ds.y_clean[clean])  # only the chosen labels change
    if p == 1.0:  # uniformly random labels: about 1/K keep their old label by chance
        assert 0.05 < (ds.y_train == ds.y_clean).float().mean() < 0.15


def test_randx_replaces_exactly_the_chosen_inputs_with_matching_noise():
    real = data.load("mnist1d", standardized=False)
    ds = data.load("mnist1d", corruption="randX", p=0.5, standardized=False, seed=1)
    assert len(ds.corrupted) == 2000
    changed = (ds.x_train != real.x_train).flatten(1).any(1)
    assert torch.equal(changed.nonzero().flatten(), ds.corrupted)
    assert torch.equal(ds.y_train, real.y_train)  # randX keeps the labels
    noise = ds.x_train[ds.corrupted]  # per-feature mean and std of the data
    assert torch.allclose(noise.mean(0), real.x_train.mean(0), atol=0.15)
    assert torch.allclose(noise.std(0), real.x_train.std(0), rtol=0.1)


def test_same_seed_same_data_other_seed_other_corruption():
    a, b = (data.load("digits", corruption="randX", p=0.3, seed=7) for _ in range(2))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.corrupted, b.corrupted)
    c = data.load("digits", corruption="randX", p=0.3, seed=8)
    assert not torch.equal(a.corrupted, c.corrupted)


def test_first_n_examples_are_kept_in_order():
    full, part = data.load("digits", standardized=False), data.load("digits", n_train=10, standardized=False)
    assert torch.equal(full.x_train[:10], part.x_train)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="imagenet"), "unknown data set 'imagenet'"),
        (dict(name="digits", corruption="randZ"), "unknown corruption"),
        (dict(name="digits", corruption="randY", p=1.5), "outside [0, 1]"),
        (dict(name="digits", corruption="randY", p=-0.1), "outside [0, 1]"),
        (dict(name="digits", p=0.2), "without a corruption"),
        (dict(name="digits", n_train=5000), "n_train=5000 is out of range: digits has 1500"),
        (dict(name="digits", n_test=0), "n_test=0 is out of range"),
        (dict(name="digits", size=0), "size=0"),
    ],
)
def test_bad_parameters_fail_at_once_with_what_to_do(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(**kwargs)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar10-subset"])
def test_missing_data_offline_says_where_to_point(name, tmp_path):
    with pytest.raises(data.DataUnavailableError, match="MEMKIT_DATA"):
        data.load(name, root=tmp_path, download=False)


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MEMKIT_DATA", str(tmp_path / "env"))
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_root() == tmp_path / "env"
    monkeypatch.delenv("MEMKIT_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "memkit"


def test_real_mnist_from_the_offline_folder():
    root = data_dir()
    ds = data.load("mnist", root=root, download=False, standardized=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert abs(ds.x_train.mean().item() * 255 - 33.32) < 0.01  # the README's check value
    small = data.load("mnist", root=root, download=False, standardized=False, n_train=100, size=14)
    assert small.x_train.shape == (100, 1, 14, 14)  # the paper's 14×14 MNIST, by 2×2 averaging
    assert torch.allclose(small.x_train, ds.x_train[:100].view(100, 1, 14, 2, 14, 2).mean((3, 5)), atol=1e-6)


def test_real_fashion_mnist_and_cifar10_subset():
    root = data_dir()
    fm = data.load("fashion-mnist", root=root, download=False, standardized=False, n_test=10)
    assert abs(fm.x_train.mean().item() * 255 - 72.94) < 0.01
    cs = data.load("cifar10-subset", root=root, standardized=False)
    assert cs.x_train.shape == (4000, 3, 32, 32) and cs.x_test.shape == (1000, 3, 32, 32)
    assert cs.classes[3] == "cat" and fm.classes[0] == "T-shirt/top"
    means = (cs.x_train.mean((0, 2, 3)) * 255).tolist()
    assert means == pytest.approx([125.4, 122.9, 113.4], abs=0.1)
    scores = data.cscores("cifar10-subset", root)
    assert scores is not None and scores.shape == (50000,)
    assert data.cscores("digits", root) is None


# ------------------------------------------------------------------------------------ kinds


def test_kind_label_key_and_parse_round_trip():
    k = data.Kind("randY", 0.2)
    assert (k.family, k.label, k.key, str(k)) == ("randY", "randY 20%", "randY20", "randY 20%")
    assert (data.REAL.label, data.REAL.key) == ("real", "real")
    assert (data.RANDX.label, data.RANDX.key) == ("randX 100%", "randX100")
    assert data.Kind("randX", 0.125).key == "randX12.5"  # file-safe and not rounded away
    for text in ("randY-0.2", "randY20", "randY 20%", "randY20%"):
        assert data.Kind.parse(text) == k
    assert data.Kind.parse("real") is data.REAL and data.Kind.parse("randX") == data.RANDX
    for kind in (data.REAL, data.RANDY, data.Kind("randX", 0.125)):
        assert data.Kind.parse(kind.key) == kind and data.Kind.parse(kind.label) == kind


@pytest.mark.parametrize("text", ["blur", "randZ20", "randY-", "randY-1.5", "randX 0%", "Real"])
def test_kind_parse_rejects_what_it_cannot_read(text):
    with pytest.raises(ValueError, match=r"randY|p="):
        data.Kind.parse(text)


@pytest.mark.parametrize(
    ("corruption", "p", "message"),
    [
        (None, 0.5, "without a corruption"),
        ("randX", 0.0, "p = 0 is real"),
        ("randX", 1.5, r"\(0, 1\]"),
        ("blur", 0.5, "unknown corruption"),
    ],
)
def test_kind_rejects_bad_levels(corruption, p, message):
    with pytest.raises(ValueError, match=message):
        data.Kind(corruption, p)


def test_kinds_lists_real_first_then_each_level():
    kinds = data.kinds({"randX": [0, 0.2], "randY": [1.0]})
    assert kinds == [data.REAL, data.Kind("randX", 0.2), data.RANDY]
    assert [k.key for k in kinds] == ["real", "randX20", "randY100"]


def test_kind_colour_is_the_palette_shaded_by_p():
    from matplotlib.colors import to_rgb

    from memkit import figures

    assert data.RANDX.color == pytest.approx(to_rgb(figures.PALETTE["randX"]))
    assert data.REAL.color == pytest.approx(to_rgb(figures.PALETTE["real"]))
    light, dark = data.Kind("randY", 0.2).color, data.RANDY.color
    assert all(a >= b for a, b in zip(light, dark, strict=True)) and light != dark  # lower noise: lighter
    assert figures.kind_color("randY 20%") == light


def test_load_accepts_a_kind():
    a = data.load("digits", n_train=200, kind=data.Kind("randY", 0.5), seed=3)
    b = data.load("digits", n_train=200, corruption="randY", p=0.5, seed=3)
    assert torch.equal(a.y_train, b.y_train) and a.kind == data.Kind("randY", 0.5)
    assert data.load("digits", n_train=10).kind == data.REAL
    with pytest.raises(ValueError, match="pass one of them"):
        data.load("digits", kind=data.RANDX, corruption="randY", p=1.0)


# --- bad sizes, damaged files, and what a failed load leaves behind -----------------------------


def _idx(path, array):
    """Write ``array`` (uint8) as an MNIST IDX file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root, n_train=20, n_test=10, labels=None):
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    for split, n in (("train", n_train), ("t10k", n_test)):
        _idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _idx(
            raw / f"{split}-labels-idx1-ubyte", labels if labels is not None and split == "train" else np.arange(n) % 10
        )
    return raw


def _fake_cifar10_subset(root, y_train=None):
    folder = root / "cifar10-subset"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(
        folder / "cifar10_subset.npz",
        x_train=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(20) % 10 if y_train is None else y_train,
        x_test=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(10) % 10,
    )
    return folder / "cifar10_subset.npz"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(name="digits", size=1000),
            "size=1000 is larger than the native resolution of digits, 8×8: size only downscales",
        ),
        (dict(name="digits", size=9), "ask for 1..8, or size=None"),
        (dict(name="mnist1d", size=41), "native resolution of mnist1d, 40:"),
        (dict(name="digits", size=4.0), "size=4.0 must be a whole number (an int) or None, not float"),
        (dict(name="digits", n_train=10.5), "n_train=10.5 must be a whole number"),
        (dict(name="digits", n_test="10"), "n_test='10' must be a whole number"),
        (dict(name="digits", n_train=True), "n_train=True must be a whole number (an int) or None, not bool"),
        (
            dict(name="digits", n_train=1, corruption="randX", p=1.0),
            "randX needs at least 2 training examples (n_train=1)",
        ),
    ],
)
def test_bad_sizes_fail_at_once(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(**kwargs)


def test_sizes_that_fit_still_work():
    assert data.load("digits", size=8, n_train=np.int64(5)).x_train.shape == (5, 1, 8, 8)
    assert data.load("digits", size=4, n_train=2, corruption="randX", p=0.5).x_train.shape == (2, 1, 4, 4)
    assert data.load("digits", n_train=1, corruption="randY", p=1.0).n_train == 1


def test_a_truncated_npz_is_corrupt_not_missing(tmp_path):
    path = _fake_cifar10_subset(tmp_path)
    assert data.load("cifar10-subset", root=tmp_path, standardized=False).x_train.shape == (20, 3, 32, 32)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(data.DataCorruptError, match=re.escape(f"{path} is there but cannot be read")):
        data.load("cifar10-subset", root=tmp_path)


def test_labels_outside_the_classes_are_rejected_naming_the_file(tmp_path):
    path = _fake_cifar10_subset(tmp_path, y_train=np.full(20, 12))
    with pytest.raises(
        data.DataCorruptError,
        match=re.escape(
            f"cifar10-subset: the training labels in {path} are not all in 0..9 (10 classes; found 12..12)"
        ),
    ):
        data.load("cifar10-subset", root=tmp_path)
    _fake_mnist(tmp_path / "m", labels=np.full(20, 10))
    with pytest.raises(data.DataCorruptError, match=r"mnist: the training labels in .*MNIST/raw are not all in 0\.\.9"):
        data.load("mnist", root=tmp_path / "m", download=False)


def test_a_truncated_mnist_file_is_named_and_a_missing_one_too(tmp_path):
    raw = _fake_mnist(tmp_path)
    assert data.load("mnist", root=tmp_path, download=False).x_train.shape == (20, 1, 28, 28)
    bad = raw / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(
        data.DataCorruptError, match=re.escape(f"{bad} is there but cannot be read (truncated or corrupt)")
    ):
        data.load("mnist", root=tmp_path, download=False)
    bad.unlink()
    with pytest.raises(data.DataUnavailableError, match=re.escape("(missing: MNIST/raw/t10k-images-idx3-ubyte)")):
        data.load("mnist", root=tmp_path, download=False)


def test_a_failed_download_leaves_no_folders_or_partial_files(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def failing_download(self):  # what torchvision does offline: make its folders, fail mid-way
        os.makedirs(self.raw_folder, exist_ok=True)
        Path(self.raw_folder, "train-images-idx3-ubyte.gz").write_bytes(b"partial")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(tvd.MNIST, "download", failing_download)
    root = tmp_path / "data"
    with pytest.raises(data.DataUnavailableError, match="could not be downloaded"):
        data.load("mnist", root=root)
    assert not root.exists()
    (root / "other").mkdir(parents=True)  # a data root that exists keeps what was there before
    with pytest.raises(data.DataUnavailableError):
        data.load("mnist", root=root)
    assert sorted(p.name for p in root.rglob("*")) == ["other"]


def test_cifar10_subset_is_cut_from_full_cifar10_when_its_file_is_absent(tmp_path, monkeypatch):
    """Without cifar10-subset/ the subset is CIFAR-10's first 4000 training and 1000 test images
    (what torchvision downloads), so the quick profile of notebook 08 works online too."""
    import torchvision.datasets as tvd

    class FakeCIFAR10:
        classes = tuple(f"c{k}" for k in range(10))

        def __init__(self, root, train, download):
            n = 4100 if train else 1100
            self.data = np.arange(n, dtype=np.uint8)[:, None, None, None].repeat(32, 1).repeat(32, 2).repeat(3, 3)
            self.targets = list(np.arange(n) % 10)

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR10)
    ds = data.load("cifar10-subset", root=tmp_path, standardized=False)
    assert (ds.n_train, len(ds.x_test)) == (4000, 1000)
    assert ds.x_train[3999, 0, 0, 0] == pytest.approx(3999 % 256 / 255) and int(ds.y_test[999]) == 9
