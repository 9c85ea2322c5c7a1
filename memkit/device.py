"""Device selection: CUDA, then Apple MPS, then CPU, unless the caller names one."""

from __future__ import annotations

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` as a :class:`torch.device`, or the best available one when ``None``.

    The automatic order is CUDA, then MPS, then CPU. A named device that is not available
    (``"cuda"`` on a machine without a GPU) raises ``ValueError`` with what to do instead.
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but CUDA is not available; "
            "pass device=None (automatic) or device='cpu'"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but MPS is not available; "
            "pass device=None (automatic) or device='cpu'"
        )
    return dev
