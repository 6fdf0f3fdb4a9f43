"""Entry point of the ``rsvlm`` command."""

from __future__ import annotations

import errno
import os
import sys
import warnings
from typing import Annotated, TextIO

import typer

from rsvlm import __version__
from rsvlm.cli import adapt, bench, chat, classify, data, demo, eval, index, models, search, serve, train
from rsvlm.errors import RsvlmError, RsvlmWarning
from rsvlm.fileio import os_problem

app = typer.Typer(
    name="rsvlm",
    help="Vision-language models for remote-sensing imagery, with honest, reproducible evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(eval.app, name="eval")
app.command("models")(models.models)
app.add_typer(train.app, name="train")
app.add_typer(adapt.app, name="adapt")
app.add_typer(index.app, name="index")
app.command("search")(search.search)
app.command("serve")(serve.serve)
app.command("classify")(classify.classify)
app.command("demo")(demo.demo)
app.command("bench")(bench.bench)
chat.register(app, eval.app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rsvlm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Vision-language models for remote-sensing imagery."""


ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.EIO,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
    }
)
"""OS failures that come from the machine (full disk, permissions, limits), not from a bug in rsvlm."""


def main() -> None:
    """Run the CLI; expected failures become one line on stderr and exit code 2, never a traceback.

    Usage errors are typer's own (also exit code 2). As a last line of defence, the machine's own
    failures (an OS error naming a file or a full disk, no memory left) are one line too; anything
    else is a bug and keeps its traceback.
    """
    warnings.showwarning = _show_warning
    try:
        app()
    except RsvlmError as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.filename is None and exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename is not None else ""
        _fail(f"{where}{os_problem(exc)}")
    except MemoryError:
        _fail("out of memory (try a smaller --batch-size, fewer or smaller images, or a machine with more memory)")


_default_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """rsvlm's own warnings as one ``warning:`` line; anyone else's as Python prints them."""
    if issubclass(category, RsvlmWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def _fail(message: str) -> None:
    _silence_stdout()  # output that cannot be written (a full disk) must not add its own traceback at exit
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _silence_stdout() -> None:
    """Flush stdout; when that fails, point it at /dev/null so the interpreter's exit flush stays quiet."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
