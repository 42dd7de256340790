"""Input reconstruction: a small decoder network maps (decoded) split features back to the input image.

Choi & Bajić (2018) suggest that the server, which receives the features anyway, can reconstruct the
input picture from them to supplement the inference.  :class:`FeatureDecoder` mirrors a head: a 3×3
conv on the (per-channel standardised) features, then one ×2 bilinear upsampling + 3×3 conv stage per
halving of the resolution in the head, then a 3×3 conv to the image channels and a sigmoid (pixels in
[0, 1]).  One decoder is trained per (model, split) by ``scripts/train_reconstruction.py``; its weights
and the shapes it was built for are stored together in ``models/weights/recon-<model>-<split>.pt``.

>>> import torch
>>> dec = FeatureDecoder((32, 14, 14), (1, 28, 28), width=16)
>>> to_uint8(dec(torch.randn(2, 32, 14, 14))).shape
torch.Size([2, 1, 28, 28])
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from splitcodec.errors import SplitcodecError

__all__ = [
    "FeatureDecoder",
    "weights_path",
    "load_reconstructor",
    "save_reconstructor",
    "list_reconstructors",
    "to_uint8",
    "psnr",
    "ssim",
    "image_grid",
    "save_png",
    "Reconstructions",
    "reconstruct_images",
    "reconstruct_streams",
]

WEIGHTS_DIR = Path(__file__).parent / "models" / "weights"


class FeatureDecoder(nn.Module):
    """Features ``(C, H, W)`` → image ``(c, h, w)`` in [0, 1].

    Args:
        feature_shape: per-sample shape of the features (no batch dimension).
        image_shape: per-sample shape of the input image.
        width: channels of the first stage (halved at every upsampling, never below 16).
    """

    def __init__(self, feature_shape: tuple[int, ...], image_shape: tuple[int, ...], width: int = 64) -> None:
        super().__init__()
        if len(feature_shape) != 3 or len(image_shape) != 3:
            raise SplitcodecError(
                f"reconstruction needs C×H×W features and images, got {tuple(feature_shape)} -> {tuple(image_shape)}"
            )
        self.feature_shape = tuple(int(s) for s in feature_shape)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.width = int(width)
        c_in, h, _ = self.feature_shape
        ups = max(0, round(math.log2(max(self.image_shape[1] / h, 1.0))))
        # per-channel standardisation of the features, set from training data
        self.register_buffer("feat_mean", torch.zeros(c_in))
        self.register_buffer("feat_std", torch.ones(c_in))
        layers: list[nn.Module] = [_conv(c_in, width), _conv(width, width)]
        ch = width
        for _ in range(ups):
            nxt = max(16, ch // 2)
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), _conv(ch, nxt), _conv(nxt, nxt)]
            ch = nxt
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, self.image_shape[0], 3, padding=1)

    def set_feature_stats(self, features: torch.Tensor) -> None:
        """Standardise inputs with the per-channel mean/std of ``features`` (N×C×H×W)."""
        f = features.detach().float().transpose(0, 1).reshape(features.shape[1], -1)
        self.feat_mean.copy_(f.mean(1))
        self.feat_std.copy_(f.std(1).clamp_min(1e-3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or tuple(features.shape[1:]) != self.feature_shape:
            raise SplitcodecError(
                f"this decoder takes N×{'×'.join(map(str, self.feature_shape))} features, got {tuple(features.shape)}"
            )
        x = (features.float() - self.feat_mean[:, None, None]) / self.feat_std[:, None, None]
        y = self.head(self.body(x))
        if tuple(y.shape[-2:]) != self.image_shape[1:]:
            y = F.interpolate(y, size=self.image_shape[1:], mode="bilinear", align_corners=False)
        return torch.sigmoid(y)

    def config(self) -> dict[str, Any]:
        return {"feature_shape": list(self.feature_shape), "image_shape": list(self.image_shape), "width": self.width}


def _conv(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def weights_path(model: str, split: str) -> Path:
    """Where the decoder for ``model`` cut at ``split`` is stored."""
    return WEIGHTS_DIR / f"recon-{model}-{split}.pt"


def save_reconstructor(decoder: FeatureDecoder, path: Path, **meta: Any) -> None:
    """Store weights (float16 to stay small) with the decoder's shapes and ``meta`` (training provenance)."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in decoder.state_dict().items()}
    torch.save({"config": decoder.config(), "meta": meta, "state_dict": state}, path)


def load_reconstructor(model: str, split: str | None = None, *, path: Path | str | None = None) -> FeatureDecoder:
    """The trained decoder for ``model`` at ``split`` (default: the model's default split), in eval mode."""
    if split is None:
        from splitcodec.models import get_model_cfg

        split = get_model_cfg(model).default_split
    file = Path(path) if path is not None else weights_path(model, str(split))
    if not file.is_file():
        have = ", ".join(f"{m}@{s}" for m, s in list_reconstructors()) or "none"
        raise SplitcodecError(
            f"no reconstruction decoder for {model} at split {split!r} ({file} missing; trained: {have}); "
            f"train one with: python scripts/train_reconstruction.py --model {model} --split {split}"
        )
    try:
        blob = torch.load(file, map_location="cpu", weights_only=True)
        cfg = blob["config"]
        decoder = FeatureDecoder(tuple(cfg["feature_shape"]), tuple(cfg["image_shape"]), cfg["width"])
        decoder.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    except (KeyError, TypeError, ValueError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise SplitcodecError(f"{file} is not a reconstruction decoder: {exc}") from exc
    decoder.meta = blob.get("meta", {})  # type: ignore[attr-defined]
    return decoder.eval()


def list_reconstructors() -> list[tuple[str, str]]:
    """(model, split) of every decoder stored in the package."""
    out = []
    for f in sorted(WEIGHTS_DIR.glob("recon-*.pt")):
        try:
            blob = torch.load(f, map_location="cpu", weights_only=True)
            out.append((blob["meta"]["model"], blob["meta"]["split"]))
        except Exception:  # a foreign file in the folder is not ours to judge
            continue
    return out


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats → uint8 pixels (rounded)."""
    return (pixels.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)


def psnr(reference: torch.Tensor | np.ndarray, test: torch.Tensor | np.ndarray) -> float:
    """Mean PSNR in dB over a batch of uint8 N×C×H×W images (peak 255)."""
    a, b = _as_batch(reference), _as_batch(test)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(1)
    return float(np.mean(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))))


def ssim(reference: torch.Tensor | np.ndarray, test: torch.Tensor | np.ndarray) -> float:
    """Mean SSIM (scikit-image, Gaussian window σ = 1.5, data range 255) over a batch of uint8 images."""
    from skimage.metrics import structural_similarity

    a, b = _as_batch(reference), _as_batch(test)
    scores = [
        structural_similarity(x, y, data_range=255.0, channel_axis=0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for x, y in zip(a, b)
    ]
    return float(np.mean(scores))


def _as_batch(x: torch.Tensor | np.ndarray) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 4:
        raise SplitcodecError(f"expected N×C×H×W images, got shape {arr.shape}")
    return arr.astype(np.float64)


def image_grid(columns: list[torch.Tensor], *, scale: int = 1, pad: int = 2) -> np.ndarray:
    """Lay uint8 N×C×H×W batches side by side: row i = (columns[0][i] | columns[1][i] | ...), as H×W×3."""
    if not columns or any(c.shape != columns[0].shape for c in columns):
        raise SplitcodecError("image_grid needs batches of one shape")
    n, c, h, w = columns[0].shape
    hs, ws = h * scale, w * scale
    grid = np.full((n * (hs + pad) + pad, len(columns) * (ws + pad) + pad, 3), 255, dtype=np.uint8)
    for j, col in enumerate(columns):
        arr = col.detach().cpu().numpy().astype(np.uint8)
        if c == 1:
            arr = np.repeat(arr, 3, axis=1)
        arr = arr.repeat(scale, axis=2).repeat(scale, axis=3).transpose(0, 2, 3, 1)
        for i in range(n):
            y, x = pad + i * (hs + pad), pad + j * (ws + pad)
            grid[y : y + hs, x : x + ws] = arr[i]
    return grid


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write one uint8 C×H×W image (1 or 3 channels) as a PNG."""
    from PIL import Image

    arr = image.numpy().transpose(1, 2, 0)
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(path)


@dataclass
class Reconstructions:
    """Test images and their reconstructions: ``columns`` maps a label to uint8 N×C×H×W images, the first
    being ``"original"``; ``bpe`` maps each reconstructed column's label to the feature rate it came from."""

    model: str
    split: str
    columns: dict[str, torch.Tensor] = field(default_factory=dict)
    bpe: dict[str, float] = field(default_factory=dict)

    @property
    def original(self) -> torch.Tensor:
        return self.columns["original"]


def reconstruct_images(
    model: str,
    split: str | None = None,
    codec: str | None = "nearlossless:bits=8",
    *,
    samples: int = 16,
    weights: Path | str | None = None,
) -> Reconstructions:
    """Reconstruct ``samples`` test images of ``model`` from its features at ``split``, uncompressed and
    (unless ``codec`` is None) after coding each sample alone with the one setting ``codec`` names."""
    from splitcodec.eval import code_samples, prepare
    from splitcodec.pipeline import codec_from_spec

    c = None if codec is None else codec_from_spec(codec)  # a bad spec fails before the slow part
    ctx = prepare(model, split, samples=samples, calibration_samples=64)
    decoder = load_reconstructor(ctx.model_name, ctx.split, path=weights)
    out = Reconstructions(ctx.model_name, ctx.split, {"original": ctx.dataset.raw})
    with torch.no_grad():
        out.columns["uncompressed features"] = to_uint8(decoder(ctx.features))
    out.bpe["uncompressed features"] = 32.0
    if c is not None:
        c.fit(ctx.calib_features, activation=ctx.activation)
        coded = code_samples(c, ctx.features)
        label = f"{c.codec_id} features"
        with torch.no_grad():
            out.columns[label] = to_uint8(decoder(coded.decoded.float()))
        out.bpe[label] = 8 * sum(coded.sizes) / ctx.features.numel()
    return out


def reconstruct_streams(
    model: str, split: str | None, streams: list[bytes], *, weights: Path | str | None = None
) -> list[torch.Tensor]:
    """Decode each feature bitstream (inline config) and reconstruct its images: uint8 N×C×H×W per stream."""
    from splitcodec.codecs import decode

    decoder = load_reconstructor(model, split, path=weights)
    out = []
    for data in streams:
        features = decode(data).float()
        if features.ndim == len(decoder.feature_shape):
            features = features[None]
        with torch.no_grad():
            out.append(to_uint8(decoder(features)))
    return out
