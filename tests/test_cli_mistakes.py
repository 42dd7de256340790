"""Every user mistake tried on the CLI exits non-zero with a message (and what to do), never a traceback.

The same case list generates the table in ``docs/errors.md``; a test checks the two agree.  Regenerate
the table after changing a message with ``SPLITCODEC_WRITE_ERRORS_DOC=1 pytest tests/test_cli_mistakes.py``.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import splitcodec
from splitcodec.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
FUZZ = Path(__file__).parent / "fixtures" / "fuzz"


@dataclass(frozen=True)
class Mistake:
    what: str  # the mistake, as the docs table says it
    argv: str  # the command line after `splitcodec`, run in a folder holding the files below
    expect: str  # a piece of the message that says what is wrong or what to do
    env: tuple[tuple[str, str], ...] = ()


MISTAKES = [
    Mistake("tensor file holding text", "encode text.pt out.scb", "save the tensor with torch.save"),
    Mistake("tensor file holding an arbitrary pickled object", "encode object.pt out.scb", "not a tensor file"),
    Mistake("tensor file holding a dict of tensors", "encode dict.pt out.scb", "holds a dict, not a tensor"),
    Mistake(".npy file holding text", "encode text.npy out.scb", "not a tensor file"),
    Mistake("empty tensor file", "encode empty.pt out.scb", "is empty"),
    Mistake("missing input file", "encode missing.pt out.scb", "does not exist"),
    Mistake("calibration file that is not a tensor", "encode x.pt out.scb --codec lightweight:lam=0.2 --fit text.pt",
            "not a tensor file"),
    Mistake("repeated key in a codec spec", "encode x.pt out.scb --codec uniform:bits=4:bits=8", "given twice"),
    Mistake("codec spec without a value", "encode x.pt out.scb --codec uniform:bits", "expected name:key=value"),
    Mistake("unknown codec", "encode x.pt out.scb --codec nope", "splitcodec codecs"),
    Mistake("codec parameter out of range", "encode x.pt out.scb --codec uniform:bits=99", "1..12"),
    Mistake("a sweep where one setting is needed", "encode x.pt out.scb --codec lightweight", "give exactly one"),
    Mistake("codec that needs calibration, without --fit", "encode x.pt out.scb --codec lightweight:lam=0.2",
            "--fit CALIBRATION.pt"),
    Mistake("x265 not installed", "encode x.pt out.scb --codec hevc:qp=30", "apt-get install x265",
            env=(("PATH", "/nonexistent"),)),
    Mistake("output path under a file, not a folder", "encode x.pt x.pt/out.scb", "folder must exist"),
    Mistake("stream by reference, config not given", "decode ref.scb out.pt", "decode --config FILE"),
    Mistake("--config file that is a JSON list", "decode ref.scb out.pt --config list.json", "not a codec config"),
    Mistake("--config file missing", "decode ref.scb out.pt --config missing.json", "cannot read codec config"),
    Mistake("decode of a file that is not a stream", "decode x.pt out.pt", "not a splitcodec stream"),
    Mistake("decode of a stream with a deeply nested inline config", "decode nested.scb out.pt", "levels deep"),
    Mistake("info of a stream with a 5000-digit integer in its config", "info bigint.scb", "5000 digits"),
    Mistake("decode of a stream with a malformed lightweight state", "decode bad-state.scb out.pt", "state lacks"),
    Mistake("compare on a JSON list", "compare list.json", "splitcodec eval --out"),
    Mistake("eval --samples 0", "eval --samples 0", "--samples"),
    Mistake("serve --port 70000", "serve --port 70000", "--port"),
    Mistake("unknown model", "splits nope", "splitcodec models"),
    Mistake("unknown split point", "eval --split nope --samples 4 --codec uniform:bits=8", "Valid split points"),
    Mistake("fit-model without features", "fit-model", "--model"),
]


def _make_files(folder: Path) -> None:
    (folder / "text.pt").write_text("hello world\n")
    (folder / "text.npy").write_text("hello\n")
    (folder / "empty.pt").write_bytes(b"")
    (folder / "object.pt").write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    torch.save({"a": torch.ones(2)}, folder / "dict.pt")
    torch.save(torch.relu(torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(0))), folder / "x.pt")
    (folder / "list.json").write_text(json.dumps([1, 2, 3]))
    (folder / "ref.scb").write_bytes(splitcodec.get_codec("uniform", bits=8).encode(torch.rand(1, 4, 6, 6), config="ref"))
    for name in ("nested", "bigint"):
        (folder / f"{name}.scb").write_bytes((FUZZ / f"issue-config-{name}.scb").read_bytes())
    (folder / "bad-state.scb").write_bytes((FUZZ / "issue-lightweight-bad-state.scb").read_bytes())


def message(text: str) -> str:
    """The output as one line: rich's boxes and line wrapping removed, click's usage lines dropped."""
    text = re.sub(r"[╭╮╰╯│─]", " ", text)
    lines = [ln for ln in text.splitlines() if not ln.startswith(("Usage:", "Try '"))]
    return " ".join(" ".join(lines).split()).replace("Error Invalid", "Invalid")


def run_case(case: Mistake, folder: Path) -> tuple[int, str]:
    """(exit code, all output) of the case run in-process in ``folder``."""
    out = io.StringIO()
    saved = {k: os.environ.get(k) for k, _ in case.env + (("SPLITCODEC_X265", ""),)}
    cwd = os.getcwd()
    try:
        os.chdir(folder)
        os.environ.pop("SPLITCODEC_X265", None)
        os.environ.update(dict(case.env))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(case.argv.split())
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[int, str]]:
    folder = tmp_path_factory.mktemp("mistakes")
    _make_files(folder)
    return {case.what: run_case(case, folder) for case in MISTAKES}


@pytest.mark.parametrize("case", MISTAKES, ids=[c.what for c in MISTAKES])
def test_mistake_exits_nonzero_with_a_useful_message(outcomes, case):
    code, text = outcomes[case.what]
    assert code != 0, text
    assert "Traceback" not in text and "Aborted" not in text, text
    assert case.expect in message(text), text


def render_table(outcomes: dict[str, tuple[int, str]]) -> str:
    """The docs table: mistake, command, exit code, message."""
    rows = ["| mistake | command | exit | message |", "|---|---|---|---|"]
    for case in MISTAKES:
        code, text = outcomes[case.what]
        env = "".join(f"{k}={v} " for k, v in case.env)
        cell = message(text).replace("|", "\\|")
        rows.append(f"| {case.what} | `{env}splitcodec {case.argv}` | {code} | {cell} |")
    return "\n".join(rows) + "\n"


def test_docs_table_matches_the_messages(outcomes):
    table = render_table(outcomes)
    doc = DOC.read_text()
    start, end = doc.index("<!-- mistakes:begin -->\n"), doc.index("<!-- mistakes:end -->")
    if os.environ.get("SPLITCODEC_WRITE_ERRORS_DOC"):
        DOC.write_text(doc[: start + len("<!-- mistakes:begin -->\n")] + table + doc[end:])
        doc = DOC.read_text()
    assert doc[start + len("<!-- mistakes:begin -->\n") : doc.index("<!-- mistakes:end -->")] == table


def test_missing_output_folders_are_created(tmp_path):
    _make_files(tmp_path)
    code, text = run_case(Mistake("", "encode x.pt new/dir/out.scb --config-out other/codec.json", ""), tmp_path)
    assert code == 0, text
    assert (tmp_path / "new" / "dir" / "out.scb").is_file() and (tmp_path / "other" / "codec.json").is_file()
