import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# Two cores on CI: keep torch from oversubscribing, and make runs reproducible.
torch.set_num_threads(min(2, os.cpu_count() or 1))

# The suite leaves no .hypothesis/ in the tree (pytest's cache is off in pyproject): no example database,
# and Hypothesis's other storage (its cache of constants found in the source) goes to a temp folder.
settings.register_profile("splitcodec", database=None)
settings.load_profile("splitcodec")
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "splitcodec-hypothesis")

#: Codecs whose encoder is an external binary (x265, aomenc, ffmpeg): their tests carry the x265 marker.
BINARY_CODECS = {"hevc", "av1", "ffv1", "image-hevc"}


def pytest_collection_modifyitems(items):
    """Mark every test parametrized with one of :data:`BINARY_CODECS` as ``x265``, so ``-m "not x265"``
    runs the suite without those binaries (tests that name such a codec in their body are marked by hand)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("codec_id") in BINARY_CODECS:
            item.add_marker(pytest.mark.x265)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
