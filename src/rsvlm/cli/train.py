"""``rsvlm train …``: train models from a config file (resumable; `torchrun` scales it out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Train models.", no_args_is_help=True)


@app.command("contrastive")
def contrastive(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML or JSON training config.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run folder (overrides the config).")] = None,
) -> None:
    """CLIP-style training of the lite model; rerun the same command to resume an interrupted run."""
    import dataclasses

    from rich.console import Console

    from rsvlm.train.config import load_config
    from rsvlm.train.contrastive import train_contrastive

    cfg = load_config(config)
    if output is not None:
        cfg = dataclasses.replace(cfg, output=str(output))
    console = Console(stderr=True)
    result = train_contrastive(cfg, log=lambda msg: console.print(f"[dim]{msg}[/dim]"))
    typer.echo(f"best model: {result['output']}/best (score {result['best']:.2f})")


@app.command("chat")
def chat(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML or JSON chat-training config.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run folder (overrides the config).")] = None,
    until_step: Annotated[
        int | None,
        typer.Option("--until-step", min=1, help="Stop after this step of the schedule and export <output>/step-N."),
    ] = None,
) -> None:
    """Instruction-tune the lite chat model (alignment layer, optional LoRA); rerun the command to resume."""
    import dataclasses

    from rich.console import Console

    from rsvlm.train.chat import train_chat
    from rsvlm.train.chat_config import load_chat_config

    cfg = load_chat_config(config)
    if output is not None:
        cfg = dataclasses.replace(cfg, output=str(output))
    console = Console(stderr=True)
    result = train_chat(cfg, log=lambda msg: console.print(f"[dim]{msg}[/dim]"), until_step=until_step)
    typer.echo(f"chat model: {result['final']} (load with rsvlm.models.chat.load_chat)")
