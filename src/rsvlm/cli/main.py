"""Entry point of the ``rsvlm`` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rsvlm import __version__
from rsvlm.cli import bench, chat, classify, data, demo, eval, models, train
from rsvlm.errors import RsvlmError

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


def main() -> None:
    """Run the CLI; expected failures become one line on stderr and exit code 2, never a traceback.

    Usage errors are typer's own (also exit code 2); anything else is a bug and keeps its traceback.
    """
    try:
        app()
    except RsvlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
