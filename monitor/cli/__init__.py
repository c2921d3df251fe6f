"""The ``monitor`` command line: thin commands over ``monitor.pipeline`` and friends.

Errors the user can act on arrive as ``MonitorError`` and are printed as one line with a non-zero exit;
``--debug`` shows the traceback too.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer

from monitor.cli import pipeline_commands, report_commands, source_commands
from monitor.cli.common import error_console, state
from monitor.exceptions import MonitorError

app = typer.Typer(
    name="monitor",
    help="Find brand logos in the images people post on social media.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    state.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


app.add_typer(source_commands.app, name="sources")
pipeline_commands.register(app)
report_commands.register(app)


def _register_model_commands() -> None:
    """train, evaluate and classify live beside the model code they drive."""
    from monitor.cli import demo_command, model_commands

    model_commands.register(app)
    demo_command.register(app)


_register_model_commands()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    try:
        result = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        error_console.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        show = getattr(exc, "show", None)
        if show is None:
            error_console.print(f"[red]error:[/red] {exc}")
            return 2
        show()
        return int(getattr(exc, "exit_code", 2))
    except MonitorError as exc:
        if state.debug:
            traceback.print_exc()
        error_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
