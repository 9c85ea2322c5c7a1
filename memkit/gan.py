"""A DCGAN (Radford et al. 2016) scaled to the input size, its trainer, and saved weights.

The generator G maps z ∈ R^100, z ~ N(0, 1), to an image through transposed convolutions (each
doubling the side, with batch norm and ReLU, Tanh at the end); the discriminator D mirrors it
with strided convolutions (LeakyReLU 0.2, batch norm after the first) and ends in one logit.
For 32×32 inputs both have four layers, as in the paper; 8×8, 14×14 and 28×28 inputs get fewer.
G's Tanh output in [−1, 1] is mapped affinely onto the data's range per channel (``lo``, ``hi``
buffers), so G(z) lives in the same (standardised) input space as the classifiers' inputs.
Used by notebook 07 (:mod:`memkit.dissection`) to keep activation maximisation on the data.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memkit.device import pick_device
from memkit.results import atomic_write


def _layout(size: int) -> tuple[int, int]:
    """``(s0, n_up)``: G starts at ``s0``×``s0`` and doubles ``n_up`` times to reach ``size``
    (halving while the side stays even and at least 4: 32 → 4, 3; 28 → 7, 2; 14 → 7, 1; 8 → 4, 1)."""
    s0, n_up = size, 0
    while s0 % 2 == 0 and s0 // 2 >= 4:
        s0, n_up = s0 // 2, n_up + 1
    if n_up == 0:
        raise ValueError(f"a DCGAN needs an even image side of at least 8 pixels, not {size}")
    return s0, n_up


@dataclass(frozen=True)
class GANConfig:
    """The architecture: image ``shape`` ``(C, H, W)`` (H = W), latent size ``nz``, the width of
    G's last hidden layer ``ngf`` and of D's first ``ndf`` (doubled at each step inwards)."""

    shape: tuple[int, int, int]
    nz: int = 100
    ngf: int = 64
    ndf: int = 64


class Generator(nn.Module):
    """G: ``(B, nz)`` → ``(B, C, H, W)`` in ``[lo, hi]`` per channel. Use it in eval mode once
    trained (batch norm with running statistics, so every z is mapped on its own)."""

    nz: int

    def __init__(self, cfg: GANConfig, lo: torch.Tensor | None = None, hi: torch.Tensor | None = None) -> None:
        super().__init__()
        c, size, _ = cfg.shape
        s0, n_up = _layout(size)
        ch = cfg.ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(cfg.nz, ch, s0, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU()]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, c, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.nz = cfg.nz
        self.lo: torch.Tensor
        self.hi: torch.Tensor
        self.register_buffer("lo", torch.full((c, 1, 1), -1.0) if lo is None else lo.reshape(c, 1, 1).float())
        self.register_buffer("hi", torch.full((c, 1, 1), 1.0) if hi is None else hi.reshape(c, 1, 1).float())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        t = self.net(z[:, :, None, None])
        return self.lo + (t + 1) / 2 * (self.hi - self.lo)


class Discriminator(nn.Module):
    """D: ``(B, C, H, W)`` → ``(B,)`` logits of "real"."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        c, size, _ = cfg.shape
        s0, n_down = _layout(size)
        ch = cfg.ndf
        layers: list[nn.Module] = [nn.Conv2d(c, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2)]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, s0, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def _init_weights(m: nn.Module) -> None:
    """DCGAN initialisation: convolutions N(0, 0.02), batch-norm scales N(1, 0.02), shifts 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@dataclass
class GAN:
    """A trained (or loaded) GAN: ``G``, ``D`` (eval mode), its ``config``, how it was trained
    (``train``: epochs, seed, ...), and ``history``: per epoch, the mean losses of D and G and
    D's accuracy on generated samples (the fraction of G's samples it calls fake, as it trains:
    near 1 when D sees through G, about 0.5 or less when G fools it)."""

    G: Generator
    D: Discriminator
    config: GANConfig
    train: dict = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` images G(z), z ~ N(0, 1) drawn from ``seed``, without gradients."""
        z = latents(n, self.config.nz, seed).to(self.G.lo.device)
        with torch.no_grad():
            return self.G.eval()(z)


def latents(n: int, nz: int, seed: int) -> torch.Tensor:
    """``(n, nz)`` standard normal latent vectors from their own generator seeded with ``seed``."""
    return torch.randn(n, nz, generator=torch.Generator().manual_seed(seed))


def train_gan(
    x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 2e-4,
    seed: int = 0,
    nz: int = 100,
    ngf: int = 64,
    ndf: int = 64,
    device: str | torch.device | None = None,
) -> GAN:
    """Train a DCGAN on images ``x`` ``(N, C, H, W)`` with Radford et al.'s recipe: Adam (``lr``,
    β = (0.5, 0.999)), the non-saturating loss, one D step then one G step per mini-batch.

    Deterministic from ``seed`` (initialisation, data order and every z) on the CPU; torch's global
    generator is left as it was. Returns the :class:`GAN` in eval mode, with its history.
    """
    device = pick_device(device)
    c, h, w = x.shape[1:]
    cfg = GANConfig((int(c), int(h), int(w)), nz, ngf, ndf)
    dims = [0, 2, 3]
    lo, hi = x.amin(dims), x.amax(dims)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G, D = Generator(cfg, lo, hi), Discriminator(cfg)
        G.apply(_init_weights), D.apply(_init_weights)
    G, D, x = G.to(device), D.to(device), x.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed + 1)
    history: dict[str, list[float]] = {"loss_d": [], "loss_g": [], "fake_acc": []}
    t0 = time.perf_counter()
    for _ in range(epochs):
        G.train(), D.train()
        loss_d = loss_g = fake_acc = 0.0
        batches = torch.randperm(len(x), generator=gen).split(batch_size)
        for idx in batches:
            real = x[idx.to(device)]
            z = torch.randn(len(idx), nz, generator=gen).to(device)
            fake = G(z)
            out_real, out_fake = D(real), D(fake.detach())
            ld = F.binary_cross_entropy_with_logits(
                out_real, torch.ones_like(out_real)
            ) + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
            opt_d.zero_grad()
            ld.backward()
            opt_d.step()
            out = D(fake)
            lg = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
            opt_g.zero_grad()
            lg.backward()
            opt_g.step()
            loss_d, loss_g = loss_d + ld.item() / len(batches), loss_g + lg.item() / len(batches)
            fake_acc += float((out_fake < 0).float().mean()) / len(batches)
        history["loss_d"].append(loss_d)
        history["loss_g"].append(loss_g)
        history["fake_acc"].append(fake_acc)
    G.eval(), D.eval()
    train = dict(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        nz=nz,
        ngf=ngf,
        ndf=ndf,
        n_train=len(x),
        seconds=time.perf_counter() - t0,
    )
    return GAN(G, D, cfg, train, history)


def save_gan(gan: GAN, path: str | Path) -> Path:
    """Save ``gan`` (weights, configuration, how it was trained, history) to ``path`` atomically."""
    doc = {
        "config": asdict(gan.config),
        "train": gan.train,
        "history": gan.history,
        "G": gan.G.state_dict(),
        "D": gan.D.state_dict(),
    }
    return atomic_write(path, lambda tmp: torch.save(doc, tmp))


def load_gan(path: str | Path, device: str | torch.device | None = None) -> GAN:
    """The :class:`GAN` saved at ``path`` by :func:`save_gan`, in eval mode on ``device``."""
    doc = torch.load(path, map_location="cpu", weights_only=False)
    cfg = GANConfig(**{**doc["config"], "shape": tuple(doc["config"]["shape"])})
    G, D = Generator(cfg), Discriminator(cfg)
    G.load_state_dict(doc["G"])
    D.load_state_dict(doc["D"])
    device = pick_device(device)
    return GAN(G.to(device).eval(), D.to(device).eval(), cfg, doc["train"], doc["history"])


def cached_gan(
    path: str | Path, x: torch.Tensor, *, retrain: bool = False, device: str | torch.device | None = None, **train: Any
) -> tuple[GAN, bool]:
    """The GAN saved at ``path`` if it exists, was trained with the same settings ``train`` (the
    keyword arguments of :func:`train_gan`) on as many examples, and ``retrain`` is False; else a
    GAN trained now and saved there. Returns ``(gan, loaded)``."""
    path = Path(path)
    if path.exists() and not retrain:
        gan = load_gan(path, device)
        wanted = {**train, "n_train": len(x)}
        if all(gan.train.get(k) == v for k, v in wanted.items()) and gan.config.shape == tuple(x.shape[1:]):
            return gan, True
    gan = train_gan(x, device=device, **train)
    save_gan(gan, path)
    return gan, False
