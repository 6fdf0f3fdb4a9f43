"""Chat-model commands: ``rsvlm ask``, ``rsvlm caption`` and the ``rsvlm eval <chat task>`` family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rsvlm.cli.common import describe_split, note, open_for_eval, split_label
from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import read_text

if TYPE_CHECKING:
    from rsvlm.models.chat.protocol import ChatModel

ChatModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Chat model: a registered name (`rsvlm models`) or a local folder (default: rsvlm-lite-chat).",
    ),
]
ChatWeightsOpt = Annotated[Path | None, typer.Option("--weights", help="Local folder holding the named model.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-new-tokens", min=1, help="Longest answer, in tokens.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

CHAT_TASKS = ("caption", "vqa", "grounding", "counting", "chat-classify")


def load_chat_model(model: str | None, weights: Path | None) -> ChatModel:
    from rsvlm.api import load_chat

    return load_chat(model, weights).model


def ask(
    image: Annotated[Path, typer.Argument(help="Image file (JPEG, PNG, GeoTIFF …).")],
    question: Annotated[str, typer.Argument(help="What to ask about the image.")],
    model: ChatModelOpt = None,
    weights: ChatWeightsOpt = None,
    max_new_tokens: MaxTokensOpt = 64,
    as_json: JsonOpt = False,
) -> None:
    """Ask a chat model one question about one image (greedy, deterministic)."""
    from rsvlm.api import load_chat
    from rsvlm.data.raster import read_image

    pixels = read_image(image)  # a bad image fails before the (slow) model load
    chat = load_chat(model, weights)
    answer = chat.ask(pixels, question, max_new_tokens=max_new_tokens)
    if as_json:
        typer.echo(json.dumps({"image": str(image), "question": question, "answer": answer, "model": chat.name}))
    else:
        typer.echo(answer)


def caption(
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    model: ChatModelOpt = None,
    weights: ChatWeightsOpt = None,
    max_new_tokens: MaxTokensOpt = 48,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per generation batch.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines, one per image.")] = False,
) -> None:
    """Describe images with a chat model, using the captioning protocol's prompt for its family."""
    from rsvlm.api import check_images, load_chat

    check_images(images)  # a bad image fails before the (slow) model load
    chat = load_chat(model, weights)
    for path, text in chat.iter_captions(images, max_new_tokens=max_new_tokens, batch_size=batch_size):
        typer.echo(json.dumps({"image": str(path), "caption": text}) if as_json else f"{path}\t{text}")


def _eval_command(task_name: str) -> Any:
    def command(
        data: Annotated[Path, typer.Option("--data", help="Dataset path (any format of `rsvlm data formats`).")],
        model: ChatModelOpt = None,
        weights: ChatWeightsOpt = None,
        images: Annotated[Path | None, typer.Option("--images", help="Images folder, if not beside the data.")] = None,
        split: Annotated[
            str | None,
            typer.Option(
                "--split", help="Split to evaluate (default: test where the data has one); 'all': every split."
            ),
        ] = None,
        data_format: Annotated[str | None, typer.Option("--format", help="Dataset format (else detected).")] = None,
        limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N usable samples.")] = None,
        subset: Annotated[
            Path | None,
            typer.Option("--subset", help="Text file of image names or sample ids to keep (e.g. heldout/lr.txt)."),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Run folder (predictions, metrics); rerun to resume. Default: runs/eval/…"),
        ] = None,
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Requests per generation batch.")] = 8,
        max_new_tokens: MaxTokensOpt = 64,
        option: Annotated[
            list[str] | None,
            typer.Option(
                "--option",
                "-o",
                help="Task option KEY=VALUE, repeatable: protocol=ID|FILE (all tasks), object_name=trees (counting).",
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        from rsvlm.models.chat.protocol import GenerationConfig
        from rsvlm.tasks.chat.registry import make_task
        from rsvlm.tasks.chat_eval import evaluate_chat, select_samples

        dataset, chosen = open_for_eval(data, images=images, split=split, data_format=data_format)
        task = make_task(task_name, dataset, **_options(option or []))
        keep = _read_subset(subset) if subset is not None else None
        usable = len(select_samples(task, dataset, None, keep))  # nothing to score fails before the model loads
        count = f"{usable:,}" if limit is None or limit >= usable else f"{limit:,} of {usable:,} (--limit)"
        note(f"{data}: {describe_split(dataset, chosen, split)}: {count} {task_name} samples")
        chat = load_chat_model(model, weights)
        folder = out or Path("runs") / "eval" / task_name / _slug(chat.name) / _slug(
            f"{data.name}-{split_label(chosen)}{'-' + subset.stem if subset else ''}"
        )
        config = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)
        report = evaluate_chat(
            chat, task, dataset, folder, limit=limit, subset=keep, config=config, progress=_progress(as_json)
        )
        if as_json:
            typer.echo(json.dumps(report, default=str))
        else:
            from rsvlm.cli.render import render_chat_report

            render_chat_report(report)

    command.__doc__ = f"Evaluate a chat model on the {task_name} task (versioned protocol; resumable run folder)."
    return command


def _read_subset(path: Path) -> set[str]:
    """The names a ``--subset`` file lists (UTF-8, one image name or sample id per line)."""
    names = {line.strip() for line in read_text(path, "subset file").splitlines() if line.strip()}
    if not names:
        raise DataError(path, "subset file is empty", "list one image name or sample id per line")
    return names


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RsvlmError(f"--option {pair!r}: expected KEY=VALUE, e.g. object_name=trees")
        options[key.strip()] = value.strip()
    return options


def _slug(text: str) -> str:
    from rsvlm.fileio import slug

    return slug(text, fallback="run", max_len=120)


def _progress(quiet: bool) -> Any:
    import sys

    def report(done: int, total: int) -> None:
        if not quiet:
            print(f"\r{done}/{total} samples", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return report


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.command("caption")(caption)
    for name in CHAT_TASKS:
        eval_app.command(name)(_eval_command(name))
