"""``monitor sources ...``: add, list, update and remove the places posts come from."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli.common import console, format_seconds, parse_duration, parse_key_values, services

# Storage, collectors and rich.table are imported by the commands that use them, when they run.

app = typer.Typer(help="Manage sources: where posts with images come from.", no_args_is_help=True)

SHORTCUTS = ("url", "path", "tag", "account", "subreddit", "actor", "query", "token")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A short unique name, e.g. bmw-tag.")],
    kind: Annotated[str, typer.Option("--kind", help="Source kind; see `monitor sources kinds`.")],
    url: Annotated[str | None, typer.Option(help="Feed URL or server base URL.")] = None,
    path: Annotated[str | None, typer.Option(help="Folder or export file (folder, jsonl).")] = None,
    tag: Annotated[str | None, typer.Option(help="Hashtag (mastodon).")] = None,
    account: Annotated[str | None, typer.Option(help="Account id (mastodon).")] = None,
    subreddit: Annotated[str | None, typer.Option(help="Subreddit name (reddit).")] = None,
    actor: Annotated[str | None, typer.Option(help="Handle or DID (bluesky).")] = None,
    query: Annotated[str | None, typer.Option(help="Search query (bluesky).")] = None,
    token: Annotated[
        str | None, typer.Option(help="Access token, where the platform takes one.")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Any other option as KEY=VALUE.")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="Collect on a schedule, e.g. 15m, 1h (celery beat).")
    ] = None,
) -> None:
    """Add a source; its options are checked against its kind before anything is stored."""
    from monitor.collectors.base import validate_options
    from monitor.storage import repository
    from monitor.storage.db import session_scope

    given = {"url": url, "path": path, "tag": tag, "account": account, "subreddit": subreddit}
    given |= {"actor": actor, "query": query, "token": token}
    options = {key: value for key, value in given.items() if value is not None}
    options |= parse_key_values(option or [])
    validated = validate_options(kind, options)
    every_seconds = parse_duration(every) if every else None
    runtime = services()
    with session_scope(runtime.sessions) as session:
        repository.add_source(
            session=session,
            name=name,
            kind=kind,
            options=validated,
            every_seconds=every_seconds,
            now=runtime.clock(),
        )
    schedule = f", collected every {format_seconds(every_seconds)}" if every_seconds else ""
    console.print(f"added {kind} source [bold]{name}[/bold]{schedule}")


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="The source to change.")],
    every: Annotated[
        str | None, typer.Option(help="New interval (e.g. 30m), or 'off' to stop scheduling.")
    ] = None,
) -> None:
    """Change a source's schedule."""
    from monitor.storage import repository
    from monitor.storage.db import session_scope

    every_seconds = None if every in (None, "off") else parse_duration(every)
    runtime = services()
    with session_scope(runtime.sessions) as session:
        source = repository.get_source(session=session, name=name)
        source.every_seconds = every_seconds
    console.print(f"{name}: every {format_seconds(every_seconds)}")


@app.command("list")
def list_sources() -> None:
    """List sources with their schedule and last collection."""
    from rich.table import Table

    from monitor.storage import repository
    from monitor.storage.db import session_scope

    runtime = services()
    with session_scope(runtime.sessions) as session:
        sources = repository.list_sources(session=session)
        table = Table("name", "kind", "options", "every", "last collected", "status")
        for source in sources:
            shown = {k: ("***" if k == "token" else v) for k, v in source.options.items()}
            table.add_row(
                source.name,
                source.kind,
                ", ".join(f"{k}={v}" for k, v in shown.items()),
                format_seconds(source.every_seconds),
                f"{source.last_collected_at:%Y-%m-%d %H:%M}"
                if source.last_collected_at
                else "never",
                source.last_status or "-",
            )
    if not sources:
        console.print("no sources yet: add one with `monitor sources add NAME --kind KIND ...`")
        return
    console.print(table)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The source to remove.")]) -> None:
    """Remove a source and everything collected from it."""
    from monitor.storage import repository
    from monitor.storage.db import session_scope

    runtime = services()
    with session_scope(runtime.sessions) as session:
        repository.remove_source(session=session, name=name)
    console.print(f"removed {name}")


@app.command("kinds")
def kinds() -> None:
    """List the source kinds and their options."""
    from rich.table import Table

    from monitor.collectors.base import known_kinds

    table = Table("kind", "options", "description")
    for name, kind in sorted(known_kinds().items()):
        table.add_row(name, ", ".join(kind.options_model.model_fields), kind.description)
    console.print(table)
