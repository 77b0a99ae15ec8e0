"""The ``sansa`` application: joins the command modules and turns errors into one line."""

from __future__ import annotations

import os
import sys

import typer

from sansa_cli.errors import SansaError

app = typer.Typer(
    name="sansa",
    help="Few-shot segmentation with SAM2 (SANSA): mark an object in a reference image, "
    "get the same kind of object segmented in new images.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _register() -> None:
    from sansa_cli.cli import (
        eval,
        export_adapters,
        export_onnx,
        info,
        predict,
        prepare,
        train,
        visualize_features,
    )

    app.command("predict", no_args_is_help=True)(predict.predict)
    app.command("info")(info.info)
    app.command("prepare", no_args_is_help=True)(prepare.prepare)
    app.command("train", no_args_is_help=True)(train.train)
    app.command("export-adapters", no_args_is_help=True)(export_adapters.export_adapters)
    app.command("export-onnx", no_args_is_help=True)(export_onnx.export_onnx)
    app.command("visualize-features", no_args_is_help=True)(visualize_features.visualize_features)
    app.command("eval", no_args_is_help=True)(eval.eval_command)


_register()


def main() -> None:
    """Console entry point: errors print one line ``error: ...`` and exit 1 (2 for bad usage,
    130 when interrupted). An unexpected exception (not a :class:`SansaError`) is one line too,
    with its type and a request to report it.

    Set ``SANSA_DEBUG=1`` to see the full traceback instead.
    """
    from sansa_cli.cli.predict import expand_ref_pairs

    try:
        app(args=expand_ref_pairs(sys.argv[1:]), prog_name="sansa")
    except SansaError as exc:
        if os.environ.get("SANSA_DEBUG"):
            raise
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except MemoryError:
        _fail("out of memory; lower --batch-size or use a smaller --sam2", 1)
    except Exception as exc:  # typer's usage errors exit by SystemExit and pass through
        if os.environ.get("SANSA_DEBUG"):
            raise
        _fail(f"{type(exc).__name__}: {exc} (this is a bug in sansa or an unexpected "
              "environment; set SANSA_DEBUG=1 for the traceback and report it)", 1)


def _fail(message: str, code: int) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(code)
