"""A name -> class mapping, one per kind (features, clusterers).

Built-ins register exactly as a plug-in would, through :meth:`Registry.register`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from imgclust.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: the factory and what the pipeline needs to know about it."""

    name: str
    factory: Callable[..., T]
    primary: str | None = None  # parameter a bare positional value sets ("pca:50")
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Names to factories; refuses duplicates; unknown names list the valid ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, *, primary: str | None = None, **meta: Any
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a class (or factory) under ``name``."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, primary=primary, **meta)
            return factory

        return deco

    def add(self, name: str, factory: Callable[..., T], *, primary: str | None = None,
            **meta: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, factory, primary, dict(meta))

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}"
            ) from None

    def create(self, spec: str, **overrides: Any) -> T:
        """Build an instance from a spec string such as ``"pca:50:whiten=true"``."""
        name, params = parse_spec(spec)
        entry = self.entry(name)
        params = _bind_positional(entry, params)
        params.update(overrides)
        try:
            return entry.factory(**params)
        except TypeError as exc:
            raise ConfigError(f"bad parameters for {self.kind} {name!r}: {exc}") from None


def _coerce(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name:pos:key=value:…"`` into the name and its parameters.

    A value without ``=`` is positional and binds to the entry's primary parameter.

    Examples
    --------
    >>> parse_spec("pca:50:whiten=true")
    ('pca', {'_pos': 50, 'whiten': True})
    """
    parts = [p.strip() for p in spec.strip().split(":")]
    name, params = parts[0], {}
    if not name:
        raise ConfigError(f"empty name in spec {spec!r}")
    for part in parts[1:]:
        if not part:
            continue
        if "=" in part:
            key, _, value = part.partition("=")
            params[key.strip()] = _coerce(value.strip())
        elif "_pos" in params:
            raise ConfigError(f"more than one positional value in {spec!r}")
        else:
            params["_pos"] = _coerce(part)
    return name, params


def _bind_positional(entry: Entry[Any], params: dict[str, Any]) -> dict[str, Any]:
    params = dict(params)
    if "_pos" in params:
        if entry.primary is None:
            raise ConfigError(f"{entry.name!r} takes no positional value; use key=value")
        params[entry.primary] = params.pop("_pos")
    return params
