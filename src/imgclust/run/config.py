"""What a run was asked to do, parsed and checked once, at the edge, before any image is read.

:meth:`RunConfig.parse` takes the user's words (the CLI's options or :func:`imgclust.run`'s
keyword arguments) and either returns a frozen :class:`RunConfig` or raises
:class:`~imgclust.errors.ConfigError` (a usage error: exit 2, nothing written). The stages then
read its fields and never parse the same text again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from imgclust.errors import ConfigError

#: what ``labels`` accepts (ground truth for scoring only)
LABEL_SOURCES = (None, "folders")


def parse_k(k: int | str) -> int | str:
    """``"auto"`` or a positive int, from an int or the text a user typed."""
    if isinstance(k, bool):
        raise ConfigError(f"k={k!r} must be 'auto' or a positive integer")
    if isinstance(k, str):
        if k == "auto":
            return k
        try:
            k = int(k)
        except ValueError:
            raise ConfigError(f"k={k!r} must be 'auto' or a positive integer") from None
    k = int(k)
    if k < 1:
        raise ConfigError(f"k={k} must be at least 1")
    return k


def parse_k_range(k_range: Sequence[int]) -> tuple[int, int]:
    """An inclusive ``(low, high)`` with ``2 <= low <= high``."""
    try:
        lo, hi = (int(v) for v in k_range)
    except (TypeError, ValueError):
        raise ConfigError(f"k range {k_range!r} must be two integers LOW:HIGH") from None
    if lo < 2 or hi < lo:
        raise ConfigError(f"k range {lo}:{hi} is empty (need 2 <= LOW <= HIGH)")
    return lo, hi


@dataclass(frozen=True)
class RunConfig:
    """A checked run configuration.

    Attributes
    ----------
    features : the feature spec (``"auto"`` or comma-separated steps)
    feature_steps : the spec split into its steps (empty for ``"auto"``)
    methods : the clustering method(s) (one for ``run``, several for ``compare``)
    k : ``"auto"`` or a positive int
    criterion : how ``k="auto"`` chooses, or ``None`` for the method's first
    k_range : inclusive range of k tried by ``auto``
    labels, seed, export, batch_size : as :func:`imgclust.run` documents them
    """

    features: str = "auto"
    methods: tuple[str, ...] = ("auto",)
    k: int | str = "auto"
    criterion: str | None = None
    k_range: tuple[int, int] = (2, 15)
    labels: str | None = None
    seed: int = 0
    export: str | None = None
    batch_size: int = 256
    feature_steps: tuple[str, ...] = field(default=())

    @property
    def method(self) -> str:
        """The method of a single run."""
        return self.methods[0]

    @classmethod
    def parse(cls, *, features: str = "auto", method: str | Sequence[str] = "auto",
              k: int | str = "auto", criterion: str | None = None,
              k_range: Sequence[int] = (2, 15), labels: str | None = None, seed: int = 0,
              export: str | None = None, batch_size: int = 256) -> "RunConfig":
        """Check every option and return the configuration.

        Raises
        ------
        ConfigError
            Unknown steps, methods, criteria or export modes, parameter values the estimators
            refuse (``Registry.check``), a bad k, k range, labels or batch size.
        """
        from imgclust.features import split_steps
        from imgclust.run.extract import validate

        methods = (method,) if isinstance(method, str) else tuple(method)
        if not methods:
            raise ConfigError("at least one method is needed")
        dup = sorted({m for m in methods if methods.count(m) > 1})
        if dup:
            raise ConfigError(f"method {dup[0]!r} given more than once")
        if labels not in LABEL_SOURCES:
            raise ConfigError(f"labels={labels!r}; valid: folders (or none)")
        try:
            batch = int(batch_size)
            seed_ = int(seed)
        except (TypeError, ValueError):
            raise ConfigError(f"batch_size={batch_size!r} and seed={seed!r} must be integers") \
                from None
        if batch < 1:
            raise ConfigError(f"batch_size={batch_size} must be at least 1")
        validate(features, list(methods) if len(methods) > 1 else methods[0], export, criterion)
        steps = () if features == "auto" else tuple(split_steps(features))
        return cls(features=features, methods=methods, k=parse_k(k), criterion=criterion,
                   k_range=parse_k_range(k_range), labels=labels, seed=seed_, export=export,
                   batch_size=batch, feature_steps=steps)

    def manifest(self) -> dict[str, Any]:
        """What ``run.json`` records of a single run's configuration."""
        return {"features": self.features, "method": self.method, "k": str(self.k),
                "criterion": self.criterion, "k_range": list(self.k_range), "labels": self.labels,
                "seed": self.seed, "export": self.export}
