"""Video metrics for world-model evaluation: PSNR, SSIM, the Fréchet distance (FVD's), a linear probe (P-Acc),
and optional LPIPS / I3D networks loaded from local TorchScript files.

Frames are uint8 ``[..., H, W, 3]``. Nothing here downloads weights: LPIPS and FVD need networks the
user passes as TorchScript files (:func:`load_torchscript`), e.g. StyleGAN-V's ``i3d_torchscript.pt``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) of two uint8 arrays of the same shape."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5, size: int = 11) -> float:
    """Mean structural similarity (Wang et al. 2004: Gaussian window 11 / 1.5, K1 0.01, K2 0.03) of uint8
    frames ``[..., H, W, 3]``, per channel, averaged over frames, channels and valid pixels."""
    x = torch.from_numpy(np.asarray(a, np.float64).reshape(-1, *np.shape(a)[-3:])).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.asarray(b, np.float64).reshape(-1, *np.shape(b)[-3:])).permute(0, 3, 1, 2)
    c = x.shape[1]
    t = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    win = (g[:, None] * g[None, :]).expand(c, 1, size, size)

    def blur(z):
        return F.conv2d(z, win, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``[N, D]`` (FID / FVD's formula)."""
    m1, m2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()  # tr sqrt(S1 S2)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * covmean)


class LinearProbe:
    """Multinomial logistic regression on standardised features, fitted by L-BFGS (deterministic)."""

    def __init__(self, weight_decay: float = 1e-3, steps: int = 200):
        self.weight_decay, self.steps = weight_decay, steps

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearProbe":
        x = torch.as_tensor(x, dtype=torch.float64)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        x = (x - self.mean) / self.std
        y = torch.as_tensor(y, dtype=torch.long)
        self.linear = torch.nn.Linear(x.shape[1], int(y.max()) + 1, dtype=torch.float64)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)
        opt = torch.optim.LBFGS(self.linear.parameters(), max_iter=self.steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(self.linear(x), y) + self.weight_decay * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        x = (torch.as_tensor(x, dtype=torch.float64) - self.mean) / self.std
        return self.linear(x).argmax(1).numpy()


def load_torchscript(path: str | Path, what: str) -> torch.jit.ScriptModule:
    """A TorchScript network from a local file, or ``FileNotFoundError`` naming what it was for."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} TorchScript file at {path}")
    return torch.jit.load(str(path), map_location="cpu").eval()


def _signed(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` -> float in [-1, 1], channels moved before H, W."""
    x = torch.from_numpy(np.asarray(frames)).float() / 127.5 - 1
    return x.movedim(-1, -3)


@torch.no_grad()
def lpips(net: torch.jit.ScriptModule, a: np.ndarray, b: np.ndarray) -> float:
    """Mean LPIPS of uint8 frames ``[..., H, W, 3]`` with a TorchScript ``net(x, y)`` taking [-1, 1] images
    ``[N, 3, H, W]`` (e.g. ``torch.jit.script(lpips.LPIPS(net="alex"))`` saved by the user)."""
    x, y = _signed(a).flatten(0, -4), _signed(b).flatten(0, -4)
    return float(net(x, y).mean())


@torch.no_grad()
def i3d_features(net: torch.jit.ScriptModule, videos: np.ndarray) -> np.ndarray:
    """I3D features of uint8 videos ``[N, T, H, W, 3]`` with StyleGAN-V's TorchScript calling convention:
    ``net(x [N, 3, T, H, W] in [-1, 1], rescale=False, resize=True, return_features=True)``."""
    x = _signed(videos).transpose(1, 2)  # [N, 3, T, H, W]
    return net(x, rescale=False, resize=True, return_features=True).numpy()
