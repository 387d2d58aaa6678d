"""A name -> class mapping, one per kind (features, clusterers).

Built-ins register exactly as a plug-in would, through :meth:`Registry.register` or
:meth:`Registry.add`. Each entry can say what it is (:meth:`Entry.summary`), which parameters it
takes (:meth:`Entry.parameters`) and check a spec's parameters before any data is read
(:meth:`Registry.check`).
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from imgclust.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: the factory and what the pipeline needs to know about it.

    Parameters
    ----------
    name : str
    factory : callable
        A class (scikit-learn's own where it does the job) or a function with explicit
        parameters (no ``**kwargs``), so that its signature lists what a spec may set.
    primary : str or None
        The parameter a bare positional value sets (``"pca:50"``).
    meta : dict
        What the pipeline reads (``input`` for steps; ``k_param``, ``criteria``, ``sweep`` for
        clusterers).
    defaults : dict
        imgclust's defaults where they differ from the factory's own (k-means' ``n_init=10``).
    about : str or None
        A one-line summary, a blank line and a plain-language paragraph (what ``imgclust
        methods NAME`` prints), for factories whose docstring is not imgclust's; by default
        the factory's docstring, whose first two paragraphs are written for that.
    """

    name: str
    factory: Callable[..., T]
    primary: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    about: str | None = None

    def _doc(self) -> str:
        return self.about or inspect.getdoc(self.factory) or ""

    def summary(self) -> str:
        """The one-line summary: the first paragraph of ``about`` or of the docstring."""
        return _plain(first_paragraph(self._doc()))

    def description(self) -> str:
        """The summary and the paragraph after it, on one line: what the entry does, with its
        terms explained (what ``imgclust methods NAME`` prints)."""
        paras = [p for p in self._doc().strip().split("\n\n")[:2]]
        if len(paras) == 2 and _is_section(paras[1]):
            paras = paras[:1]
        return " ".join(_plain(p) for p in paras)

    def parameters(self) -> list[tuple[str, str, Any]]:
        """``(name, type as text, default)`` of every parameter a spec may set.

        The type is the annotation where the factory has one, else scikit-learn's parameter
        constraints in words (``"an int in the range [1, inf)"``), else the default's type.
        """
        try:
            sig = inspect.signature(self.factory)
        except (TypeError, ValueError):  # a builtin without a signature
            return []
        constraints = getattr(self.factory, "_parameter_constraints", {})
        out = []
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
                continue
            default = self.defaults.get(p.name, None if p.default is p.empty else p.default)
            out.append((p.name, _type_text(p, constraints.get(p.name), default), default))
        return out


def first_paragraph(doc: str) -> str:
    """The text up to the first blank line."""
    return doc.strip().split("\n\n", 1)[0] if doc else ""


def _plain(text: str) -> str:
    """One line, reST literals and roles (:func:`~a.b`) as plain text."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
    return " ".join(text.split())


def _is_section(paragraph: str) -> bool:
    """A numpydoc section ("Parameters" over dashes) rather than prose."""
    lines = paragraph.strip().splitlines()
    return len(lines) >= 2 and set(lines[1].strip()) == {"-"}


def _type_text(p: inspect.Parameter, constraints: list[Any] | None, default: Any) -> str:
    if p.annotation is not p.empty:
        return p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(
            p.annotation)
    if constraints:
        try:  # scikit-learn's constraints (private API): on any change, the default's type
            words = [_constraint_text(c) for c in constraints]
            return " or ".join(dict.fromkeys(w for w in words if w))
        except Exception:  # noqa: BLE001
            pass
    return "any" if default is None else type(default).__name__


#: most string options listed for a parameter before "…"
MAX_OPTIONS = 6


def _constraint_text(c: Any) -> str:
    """One of scikit-learn's parameter constraints, briefly: ``int in [1, inf)``."""
    from numbers import Integral

    from sklearn.utils._param_validation import make_constraint

    c = make_constraint(c)
    kind = type(c).__name__
    if hasattr(c, "options"):  # StrOptions, Options
        opts = sorted(repr(o) for o in c.options if o not in getattr(c, "deprecated", ()))
        more = ", …" if len(opts) > MAX_OPTIONS else ""
        return "{" + ", ".join(opts[:MAX_OPTIONS]) + more + "}"
    if kind == "Interval":
        name = "int" if c.type is Integral else "float"
        left = "-inf" if c.left is None else c.left
        right = "inf" if c.right is None else c.right
        lb = "[" if c.closed in ("left", "both") and c.left is not None else "("
        rb = "]" if c.closed in ("right", "both") and c.right is not None else ")"
        return f"{name} in {lb}{left}, {right}{rb}"
    if kind == "_InstancesOf":
        return {"bool_": "bool", "Integral": "int", "Real": "float"}.get(
            c.type.__name__, c.type.__name__)
    return {"_NoneConstraint": "None", "_RandomStates": "int, RandomState or None",
            "_ArrayLikes": "array-like", "_Callables": "callable",
            "_SparseMatrices": "sparse matrix", "_Booleans": "bool",
            "_VerboseHelper": "int or bool"}.get(kind, str(c))


class Registry(Generic[T]):
    """Names to factories; refuses duplicates; unknown names list the valid ones.

    Parameters
    ----------
    kind : str
        What an entry is, in words (``"clustering method"``), for messages.
    describe_extra : callable, optional
        ``describe_extra(entry) -> dict`` adds kind-specific items to :meth:`describe`.
    """

    def __init__(self, kind: str,
                 describe_extra: Callable[[Entry[T]], dict[str, Any]] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._describe_extra = describe_extra

    def register(
        self, name: str, *, primary: str | None = None, defaults: dict[str, Any] | None = None,
        about: str | None = None, **meta: Any
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a class (or factory) under ``name``."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, primary=primary, defaults=defaults, about=about, **meta)
            return factory

        return deco

    def add(self, name: str, factory: Callable[..., T], *, primary: str | None = None,
            defaults: dict[str, Any] | None = None, about: str | None = None,
            **meta: Any) -> None:
        """Register ``factory`` under ``name`` (see :class:`Entry` for the arguments)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, factory, primary, dict(meta), dict(defaults or {}),
                                    about)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def entry(self, name: str) -> Entry[T]:
        """The entry of ``name``; an unknown name raises ConfigError listing the valid ones."""
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
        params = {**entry.defaults, **_bind_positional(entry, params), **overrides}
        try:
            return entry.factory(**params)
        except TypeError as exc:
            raise ConfigError(f"bad parameters for {self.kind} {name!r}: {exc}") from None

    def check(self, spec: str) -> T:
        """Build ``spec``'s estimator and check its parameters, without any data.

        Unknown names and parameters, and values the estimator refuses (scikit-learn's own
        parameter validation, ``_validate_params``, or imgclust's ``_validate_params_``), raise
        one :class:`~imgclust.errors.ConfigError`; a missing optional extra raises
        :class:`~imgclust.errors.MissingExtraError`. Checks that need the data (k against the
        number of images) are left to ``fit``.

        Returns
        -------
        The unfitted estimator.

        Examples
        --------
        >>> from imgclust.cluster.registry import CLUSTERERS, load_builtins
        >>> load_builtins()
        >>> CLUSTERERS.check("kmeans:n_init=abc")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        imgclust.errors.ConfigError: bad parameters for clustering method 'kmeans': The 'n_init' ...
        """
        name = parse_spec(spec)[0]
        est = self.create(spec)
        validate = getattr(est, "_validate_params_", None)
        if validate is None and hasattr(est, "_parameter_constraints"):
            validate = est._validate_params  # scikit-learn >= 1.2
        if validate is not None:
            try:
                validate()
            except ConfigError:
                raise
            except (ValueError, TypeError) as exc:  # sklearn's InvalidParameterError is both
                msg = " ".join(str(exc).split())
                raise ConfigError(f"bad parameters for {self.kind} {name!r}: {msg}") from None
        return est

    def describe(self, name: str) -> dict[str, Any]:
        """What ``imgclust methods NAME`` prints: the paragraph, the parameters and the meta.

        Returns
        -------
        dict with ``name``, ``kind``, ``summary`` (one line), ``description`` (one paragraph,
        the summary included), ``parameters`` (a list of
        ``{"name", "type", "default"}``), ``primary`` and ``meta``, and what the registry adds.
        """
        e = self.entry(name)
        out: dict[str, Any] = {
            "name": e.name, "kind": self.kind, "summary": e.summary(),
            "description": e.description(),
            "parameters": [{"name": n, "type": t, "default": d} for n, t, d in e.parameters()],
            "primary": e.primary, "meta": dict(e.meta),
        }
        if self._describe_extra is not None:
            out.update(self._describe_extra(e))
        return out


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
