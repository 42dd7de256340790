"""docs/architecture.md names real things: every dotted ``splitcodec.…`` name in it imports."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
NAMES = sorted(set(re.findall(r"`(splitcodec(?:\.[A-Za-z_]\w*)+)", DOC.read_text())))


def resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted``, then follow the rest as attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_the_doc_names_enough_to_be_checked():
    assert len(NAMES) >= 20


@pytest.mark.parametrize("name", NAMES)
def test_every_name_in_the_doc_imports(name):
    resolve(name)


def test_readme_layout_points_to_the_doc():
    assert "docs/architecture.md" in (DOC.parents[1] / "README.md").read_text()
