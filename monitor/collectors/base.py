"""What every collector is, and the registry that maps a source's kind to its collector.

A collector knows one platform's format. It is built from a source's validated options and an
injected HTTP client, and its ``collect`` returns the new posts and a cursor to resume from. It never
touches the database: the pipeline stores what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from monitor.domain import CollectionBatch
from monitor.exceptions import ConfigurationError


class CollectorOptions(BaseModel):
    """Base for a kind's options; subclasses declare the fields `monitor sources add` accepts."""

    model_config = {"extra": "forbid"}


class Collector(Protocol):
    """Pulls new posts with images from one source."""

    def collect(self, *, cursor: Mapping[str, Any] | None, limit: int) -> CollectionBatch:
        """Return at most ``limit`` posts newer than ``cursor`` and the cursor to resume from."""
        ...


@dataclass(frozen=True)
class CollectorContext:
    """What a collector gets besides its options: injected I/O and limits."""

    source_name: str
    http: Any  # monitor.http.HttpClient (kept loose here so base has no I/O imports)
    allow_private_hosts: bool = False


@dataclass(frozen=True)
class CollectorKind:
    """A registered kind: its options model and how to build its collector."""

    name: str
    options_model: type[CollectorOptions]
    build: Callable[[CollectorOptions, CollectorContext], Collector]
    description: str


_KINDS: dict[str, CollectorKind] = {}


def register_kind(kind: CollectorKind) -> None:
    """Add a kind to the registry (collector modules call this at import)."""
    _KINDS[kind.name] = kind


def known_kinds() -> dict[str, CollectorKind]:
    """Every registered kind, importing the built-in collector modules first."""
    import monitor.collectors  # noqa: F401  (registers the built-in kinds)

    return dict(_KINDS)


def get_kind(name: str) -> CollectorKind:
    """The kind called ``name``, or a ConfigurationError listing the known kinds."""
    kinds = known_kinds()
    if name not in kinds:
        raise ConfigurationError(
            f"unknown source kind {name!r}; known kinds: {', '.join(sorted(kinds))}"
        )
    return kinds[name]


def validate_options(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check a source's options against its kind; returns them normalised for storage."""
    model = get_kind(kind).options_model
    try:
        return model.model_validate(dict(options)).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid options for a {kind} source: {problems}") from exc


def build_collector(kind: str, options: Mapping[str, Any], context: CollectorContext) -> Collector:
    """Build the collector for a stored source."""
    spec = get_kind(kind)
    return spec.build(spec.options_model.model_validate(dict(options)), context)
