"""Where the raw data come from: the data root, one loader per data set, and the checks that
tell a missing file from a corrupt one.

Each loader returns the raw arrays of a data set, ``(x_train, y_train, x_test, y_test, classes)``:
inputs ``(N, C, *spatial)`` float32 in the data set's own scale, labels as integers, class names.
:func:`memkit.data.load` turns them into a :class:`memkit.data.Dataset`. A data set that is not on
disk and cannot be downloaded raises :class:`DataUnavailableError`; a file that is there but
truncated or wrong raises :class:`DataCorruptError` naming the file. A failed load leaves nothing
behind that it created.
"""

from __future__ import annotations

import functools
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class DataUnavailableError(FileNotFoundError):
    """A data set is not on disk and could not be downloaded."""


class DataCorruptError(ValueError):
    """A data set's file is on disk but cannot be used: truncated, corrupt, or not that data set
    (e.g. labels outside the class range). The message names the file."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder data sets are read from (and downloaded into): ``root``, else ``$MEMKIT_DATA``,
    else ``$XDG_CACHE_HOME/memkit`` (default ``~/.cache/memkit``)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("MEMKIT_DATA"):
        return Path(os.environ["MEMKIT_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "memkit"


Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]  # x, y, x_test, y_test, class names
DIGITS = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _digits(root: Path, download: bool) -> Raw:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    order = np.random.RandomState(0).permutation(len(x))  # a fixed split, the same everywhere
    tr, te = order[:1500], order[1500:]
    return x[tr], d.target[tr], x[te], d.target[te], DIGITS


@functools.cache
def _mnist1d_generated() -> dict[str, np.ndarray]:
    """MNIST-1D as the ``mnist1d`` package generates it (deterministic; about 2 s, so cached)."""
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds numpy's legacy global generator: save and restore that very generator's state
    state = np.random.get_state()  # noqa: NPY002  the legacy global state is what mnist1d changes
    try:
        return make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)  # noqa: NPY002  restores the legacy global state (see above)


def _mnist1d(root: Path, download: bool) -> Raw:
    d, f = _mnist1d_generated(), np.float32
    return d["x"].astype(f)[:, None], d["y"], d["x_test"].astype(f)[:, None], d["y_test"], DIGITS


#: The files torchvision reads for each data set, relative to the data root.
_MNIST_RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_TORCHVISION_FILES = {
    "MNIST": [f"MNIST/raw/{f}" for f in _MNIST_RAW],
    "FashionMNIST": [f"FashionMNIST/raw/{f}" for f in _MNIST_RAW],
    "CIFAR10": [
        f"cifar-10-batches-py/{f}"
        for f in (
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
            "batches.meta",
        )
    ],
    "CIFAR100": [f"cifar-100-python/{f}" for f in ("train", "test", "meta")],
}
_IDX_ITEMSIZE = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def _idx_file_ok(path: Path) -> bool:
    """Whether an MNIST-style IDX file is whole: its size matches the shape in its header."""
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_ITEMSIZE:
            return False
        dims = f.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        return False
    shape = [int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4)]
    return path.stat().st_size == 4 + len(dims) + int(np.prod(shape)) * _IDX_ITEMSIZE[head[2]]


def _bad_file(cls: Any, root: Path, files: list[str]) -> Path | None:
    """The first of ``files`` (all present) that is truncated or corrupt, when that can be told."""
    from torchvision.datasets.utils import check_integrity

    md5 = dict(getattr(cls, "train_list", []) + getattr(cls, "test_list", []))
    if hasattr(cls, "meta"):
        md5[cls.meta["filename"]] = cls.meta["md5"]
    for rel in files:
        path = root / rel
        if path.name in md5:
            if not check_integrity(str(path), md5[path.name]):
                return path
        elif "-idx" in path.name and not _idx_file_ok(path):
            return path
    return None


class _Created:
    """Remembers which folders (and entries in them) exist, to remove what a failed call created."""

    def __init__(self, dirs: list[Path]):
        self.before = {d: set(os.listdir(d)) if d.is_dir() else None for d in dirs}

    def undo(self) -> None:
        for d in sorted(self.before, key=lambda d: len(d.parts), reverse=True):  # deepest first
            if not d.is_dir():
                continue
            before = self.before[d]
            if before is None:
                shutil.rmtree(d, ignore_errors=True)
                continue
            for name in set(os.listdir(d)) - before:
                new = d / name
                shutil.rmtree(new, ignore_errors=True) if new.is_dir() and not new.is_symlink() else new.unlink(
                    missing_ok=True
                )


def _torchvision(cls_name: str, folder: str) -> Callable[[Path, bool], Raw]:
    def loader(root: Path, download: bool) -> Raw:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        files = _TORCHVISION_FILES[cls_name]
        top = root / files[0].split("/")[0]
        created = _Created([root, top, top / "raw", top / "processed"])
        try:
            train, test = (cls(str(root), train=t, download=download) for t in (True, False))
        except Exception as err:  # missing files, no network for the download, or a damaged file
            created.undo()  # no empty folders or partial downloads left behind
            missing = [f for f in files if not (root / f).is_file()]
            if missing:
                raise DataUnavailableError(
                    f"{cls_name} is not under {root / folder} (missing: {', '.join(missing)}) and could not be "
                    f"downloaded ({err}). Connect to the internet, or point MEMKIT_DATA (or root=) at a folder "
                    f"that holds torchvision's '{folder}' layout."
                ) from err
            bad = _bad_file(cls, root, files)
            raise DataCorruptError(
                f"{bad if bad else root / folder} is there but cannot be read "
                f"({'truncated or corrupt' if bad else type(err).__name__ + ': ' + str(err)}); "
                f"delete it to download it again, or copy it again from a good source."
            ) from err

        def arrays(ds: Any) -> tuple[np.ndarray, np.ndarray]:
            x = np.asarray(ds.data, dtype=np.float32) / 255.0
            x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # to (N, C, H, W)
            return x, np.asarray(ds.targets)

        return (*arrays(train), *arrays(test), tuple(train.classes))

    return loader


def _cifar10_subset(root: Path, download: bool) -> Raw:
    """CIFAR-10's training images 0..3999 and test images 0..999: from ``cifar10-subset/`` in the
    data root (a fixed offline copy), else cut from the full CIFAR-10 (torchvision downloads it)."""
    path = root / "cifar10-subset" / "cifar10_subset.npz"
    if not path.exists():
        try:
            x_tr, y_tr, x_te, y_te, classes = _torchvision("CIFAR10", "cifar-10-batches-py")(root, download)
        except DataUnavailableError as err:
            raise DataUnavailableError(
                f"the CIFAR-10 subset is not at {path} (a fixed file, cifar10_subset.npz, 4000 training and "
                f"1000 test images), and the full CIFAR-10 to cut it from is not there either: {err}"
            ) from err
        return x_tr[:4000], y_tr[:4000], x_te[:1000], y_te[:1000], classes
    try:
        with np.load(path) as d:
            x_tr, x_te = (d[k].astype(np.float32).transpose(0, 3, 1, 2) / 255.0 for k in ("x_train", "x_test"))
            return x_tr, d["y_train"], x_te, d["y_test"], CIFAR10_CLASSES
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise DataCorruptError(
            f"{path} is there but cannot be read ({type(err).__name__}: {err}): it is truncated or corrupt. "
            f"Copy cifar10_subset.npz again from a good source."
        ) from err


def source(name: str, root: Path) -> str:
    """Where data set ``name`` was read from, for messages."""
    where = {
        "digits": "scikit-learn's bundled digits",
        "mnist1d": "the data the mnist1d package generated",
        "mnist": root / "MNIST" / "raw",
        "fashion-mnist": root / "FashionMNIST" / "raw",
        "cifar10": root / "cifar-10-batches-py",
        "cifar100": root / "cifar-100-python",
        "cifar10-subset": root / "cifar10-subset" / "cifar10_subset.npz",
    }
    return str(where[name])


LOADERS: dict[str, Callable[[Path, bool], Raw]] = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    "mnist": _torchvision("MNIST", "MNIST"),
    "fashion-mnist": _torchvision("FashionMNIST", "FashionMNIST"),
    "cifar10": _torchvision("CIFAR10", "cifar-10-batches-py"),
    "cifar100": _torchvision("CIFAR100", "cifar-100-python"),
    "cifar10-subset": _cifar10_subset,
}
