"""The ``splitcodec`` command line: list models, split points and codecs; code tensors; evaluate; serve.

Each command parses its options, calls the library and renders the result; one module per command group
(:mod:`~splitcodec.cli.listing`, :mod:`~splitcodec.cli.coding`, :mod:`~splitcodec.cli.evaluation`,
:mod:`~splitcodec.cli.images`, :mod:`~splitcodec.cli.serve`).  Every command is also callable in-process:
``splitcodec.cli.main(["codecs"])``.
"""

from __future__ import annotations

from rich.markup import escape

from splitcodec.cli.common import app, console, err_console, load_tensor, records_table, report, save_tensor
from splitcodec.errors import SplitcodecError

# Importing the command modules registers their commands on ``app``, in this order in --help.
from splitcodec.cli import listing, coding, evaluation, images, serve, search  # noqa: E402,F401,I001
from splitcodec.cli import experiments, reporting  # noqa: E402,F401,I001

__all__ = ["app", "main", "console", "err_console", "load_tensor", "save_tensor", "records_table"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI (``argv`` defaults to ``sys.argv[1:]``); returns the exit code instead of exiting."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SplitcodecError as exc:
        report(exc)
        return 2
    except OSError as exc:  # a file the user named cannot be read or written (missing folder, permissions)
        where = f" {exc.filename}" if exc.filename else ""
        err_console.print(f"[bold red]error:[/] cannot use{escape(where)}: {escape(exc.strerror or str(exc))}")
        err_console.print("[bold]hint:[/] check the path: its folder must exist and be writable")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
