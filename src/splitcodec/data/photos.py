"""A small set of natural RGB photos shipped inside installed Python packages (no download).

Photos (name: package file):
    astronaut: scikit-image ``data/astronaut.png``     chelsea: ``data/chelsea.png`` (cat)
    coffee: ``data/coffee.png``                          rocket: ``data/rocket.jpg``
    motorcycle_left / motorcycle_right: ``data/motorcycle_{left,right}.png`` (a stereo pair)
    hubble_deep_field: ``data/hubble_deep_field.jpg``     retina: ``data/retina.jpg`` (fundus photo)
    china, flower: scikit-learn ``datasets/images/{china,flower}.jpg``
    grace_hopper: matplotlib ``mpl-data/sample_data/grace_hopper.jpg``

Left out: scikit-image's grey, synthetic or non-photo images (camera, brick, ..., chessboard, color,
logo, horse silhouette, ihc microscopy).

Splits, by photo so that no photo has crops in both: ``calibration`` = chelsea, coffee, flower;
``test`` = the other 8 (the stereo pair stays together).  Each photo is resized (PIL bilinear with
antialiasing) so its shorter side is 256 px, then cut into 10 crops of 224×224 with
``torchvision.transforms.functional.ten_crop``: top-left, top-right, bottom-left, bottom-right, centre,
then the same five of the horizontally flipped image.  Order: photo order above, 10 crops per photo.
Normalised with the ImageNet mean/std; there are no labels.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import torch

from splitcodec.data.base import Dataset, normalize, register_dataset
from splitcodec.errors import DatasetError

__all__ = ["PHOTOS", "CALIBRATION_PHOTOS", "IMAGENET_MEAN", "IMAGENET_STD", "RESIZE", "CROP", "photo_path"]

IMAGENET_MEAN: tuple[float, ...] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, ...] = (0.229, 0.224, 0.225)
RESIZE = 256
CROP = 224
CROPS_PER_PHOTO = 10

#: name -> (package, path inside the package)
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "retina": ("skimage", "data/retina.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
CALIBRATION_PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "flower")
_PIP_NAMES = {"skimage": "scikit-image", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}


def photo_path(name: str) -> Path:
    """Path of photo ``name`` inside its installed package (the package is located, not imported)."""
    package, rel = PHOTOS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"photo {name!r} needs the package {_PIP_NAMES[package]} (pip install {_PIP_NAMES[package]})")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise DatasetError(f"photo {name!r}: {path} is missing from the installed {_PIP_NAMES[package]}")
    return path


def _photo_names(split: str) -> list[str]:
    if split == "calibration":
        return [n for n in PHOTOS if n in CALIBRATION_PHOTOS]
    return [n for n in PHOTOS if n not in CALIBRATION_PHOTOS]


def _ten_crops(path: Path) -> torch.Tensor:
    """uint8 10×3×224×224 crops of one photo."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except OSError as e:
        raise DatasetError(f"cannot read photo {path}: {e}") from e
    img = TF.resize(img, RESIZE, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return torch.stack([TF.pil_to_tensor(c) for c in TF.ten_crop(img, CROP)])


@lru_cache(maxsize=None)
def _raw(split: str) -> torch.Tensor:
    return torch.cat([_ten_crops(photo_path(n)) for n in _photo_names(split)])


@register_dataset("photos", ("calibration", "test"))
def load(split: str) -> Dataset:
    """Load the ``calibration`` (30 crops) or ``test`` (80 crops) split of the photos."""
    raw = _raw(split)
    return Dataset(
        name="photos",
        split=split,
        images=normalize(raw, IMAGENET_MEAN, IMAGENET_STD),
        labels=None,
        raw=raw,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
