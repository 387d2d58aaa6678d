"""The feature-step registry: ``pixels``, ``pca``, ``cnn``, ``umap``…

A step registered with ``input="images"`` turns images into a matrix (it must come first);
``input="array"`` steps are scikit-learn transformers on the matrix.
"""
from __future__ import annotations

from typing import Any

from imgclust.registry import Entry, Registry


def _describe_extra(entry: Entry[Any]) -> dict[str, Any]:
    return {"input": entry.meta.get("input")}


FEATURES: Registry[Any] = Registry("feature step", describe_extra=_describe_extra)
register = FEATURES.register
names = FEATURES.names
create = FEATURES.create
entry = FEATURES.entry
check = FEATURES.check
describe = FEATURES.describe


def load_builtins() -> None:
    """Import the built-in steps so that they register themselves."""
    from imgclust.features import hog, pixels, reduce  # noqa: F401

    for optional in ("cnn", "onnx", "autoencoder", "embed"):
        try:
            __import__(f"imgclust.features.{optional}")
        except ModuleNotFoundError as exc:  # module not written yet in this build
            if exc.name != f"imgclust.features.{optional}":
                raise


def parse_name(spec: str) -> str:
    """The step name of a spec (``"pca:50"`` -> ``"pca"``)."""
    from imgclust.registry import parse_spec

    return parse_spec(spec)[0]


def decode_side(spec: str) -> int | None:
    """The shorter side images must keep when decoded for ``spec``'s images step, or None.

    Steps that resize every image to a known square (``cnn``, ``onnx``, ``pixels:SIZE``) declare it with a
    ``decode_side()`` method; a source can then decode each file only that large (JPEG draft
    scales, ``reduce`` before conversion) instead of at its default 512 px. ``None``: the step
    declares nothing (``pixels``, ``hog``), images are decoded as before. ``"auto"`` is the
    photo pipeline's step (glyphs are smaller than any such side anyway).
    """
    from imgclust.features import split_steps

    load_builtins()
    if spec == "auto":
        from imgclust.features.auto import choose_features

        spec = choose_features([])[0]  # no sample: the photo pipeline
    first = split_steps(spec)[0]
    if entry(parse_name(first)).meta.get("input") != "images":
        return None
    side = getattr(create(first), "decode_side", None)
    value = side() if callable(side) else None
    return int(value) if value is not None else None
