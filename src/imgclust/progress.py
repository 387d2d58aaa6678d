"""Progress bars and spinners on stderr: the ground floor, so that any room (export, report,
detect…) can show progress without importing the pipeline above it."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass


def progress_bar(enabled: bool) -> Callable[..., Any]:
    """A ``tqdm`` factory (stderr) or a pass-through when progress is off.

    ``bar(iterable, desc=…)`` wraps an iterable; ``bar(total=n, desc=…)`` returns a bar to
    ``update``.
    """
    if not enabled:
        return lambda it=None, **kw: it if it is not None else _NullBar()
    from tqdm.auto import tqdm

    return lambda it=None, **kw: tqdm(it, leave=False, dynamic_ncols=True, **kw)


def progress_status(enabled: bool, text: str) -> ContextManager[Any]:
    """A spinner on stderr while one long call runs (a UMAP fit, a clustering at a fixed k),
    where there is nothing to count; rich draws it on a terminal only."""
    if not enabled:
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text)
