"""The ways the number of clusters is reached, one object each.

A :class:`Criterion` holds all that is said and done about one way of reaching k: its meaning in
plain words (``imgclust methods NAME``), which methods it applies to, what it adds to each row of
a k sweep, which k it picks from a sweep's table, and the sentences the terminal and the report
say about the outcome. A new criterion is one subclass here, registered with :func:`register`;
nothing else in the package names criteria.

Kinds
-----
``sweep``
    The method is fitted once per k of a range (:func:`imgclust.cluster.select_k.sweep_k`) and the
    criterion picks one row of the table (silhouette, elbow, BIC, AIC).
``graph``
    ``knn-spectral`` chooses k on its own nearest-neighbour graph in one fit (``k_rule=NAME``).
``density``
    HDBSCAN counts the dense groups; the method then runs at that k from their means.
``record``
    Not chosen by the user: how k came about when nothing was chosen (k given, DBSCAN's eps,
    a method that finds k itself, an upper bound, too few distinct images).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np


@dataclass
class Outcome:
    """What a sentence about k is built from (read from summary.json's ``"k"``).

    Attributes
    ----------
    chosen : the selected value (k, or DBSCAN's eps)
    n_clusters : clusters in the result
    method : the method's name
    row : the chosen row of the sweep table (its scores)
    ks : the k values of the sweep
    sweep : the whole sweep table
    """

    chosen: Any
    n_clusters: int | None
    method: str
    row: dict[str, Any] = field(default_factory=dict)
    ks: list[int] = field(default_factory=list)
    sweep: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> "Outcome":
        """The outcome recorded in a run's summary."""
        k = summary.get("k", {})
        sweep = list(k.get("sweep") or [])
        chosen = k.get("selected_value")
        row = next((r for r in sweep if r.get("chosen")), {})
        ks = [int(r["k"]) for r in sweep if "k" in r] or ([chosen] if chosen is not None else [])
        return cls(chosen, summary.get("n_clusters"), str(summary["method"]["name"]), row, ks, sweep)


def num(v: Any, digits: int = 3) -> str:
    """A score for a sentence: 3 decimals, ``–`` for missing or non-finite."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not np.isfinite(v):
            return "–"
        return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:.4g}"
    return str(v)


class Criterion:
    """One way of reaching k. Subclasses set the class attributes and override what applies."""

    #: the name users type (``--criterion NAME``)
    name: ClassVar[str]
    #: ``sweep``, ``graph``, ``density`` or ``record`` (see the module docstring)
    kind: ClassVar[str]
    #: one sentence in plain words
    meaning: ClassVar[str]
    #: whether the criterion's pick is shown beside the chosen one when they differ
    compared: ClassVar[bool] = False

    def applies(self, meta: Mapping[str, Any]) -> bool:
        """Whether this criterion may choose k for a method with registry metadata ``meta``
        (beyond the criteria the method lists itself)."""
        return False

    def columns(self, X: np.ndarray, labels: np.ndarray, est: Any,
                random_state: int = 0) -> dict[str, Any]:
        """Scores this criterion adds to a k sweep's row for one fit."""
        return {}

    def check(self, est: Any) -> None:
        """Raise :class:`~imgclust.errors.ConfigError` if this criterion cannot score ``est``."""

    def pick(self, table: Sequence[Mapping[str, Any]]) -> int | None:
        """The k this criterion picks from a sweep table; ``None`` when it cannot."""
        return None

    def sentence(self, o: Outcome) -> str:
        """The report's sentence on how k was reached."""
        return f"{o.n_clusters} clusters ({self.name})."

    def short(self, o: Outcome, requested: str) -> str:
        """The terminal's few words (``clusters: 5 (k chosen by silhouette)``)."""
        return "k given" if requested != "auto" else f"k chosen by {self.name}"


_CRITERIA: dict[str, Criterion] = {}


def register(cls: type[Criterion]) -> type[Criterion]:
    """Class decorator: add a criterion to the registry under its ``name``."""
    _CRITERIA[cls.name] = cls()
    return cls


def get(name: str) -> Criterion | None:
    """The criterion called ``name``, or ``None``."""
    return _CRITERIA.get(name)


def names(kind: str | None = None) -> list[str]:
    """Registered criteria (of one ``kind``), in registration order."""
    return [n for n, c in _CRITERIA.items() if kind is None or c.kind == kind]


def selectable() -> list[str]:
    """The criteria a user may ask for with ``--criterion``."""
    return [n for n, c in _CRITERIA.items() if c.kind != "record"]


def for_method(meta: Mapping[str, Any]) -> list[str]:
    """The criteria valid for a method: those it lists (its default first), then any other
    that applies to it."""
    own = list(meta.get("criteria", ()))
    return own + [n for n, c in _CRITERIA.items()
                  if n not in own and c.kind != "record" and c.applies(meta)]


def meaning(name: str) -> str:
    """The plain-words meaning of a criterion ('' if unknown)."""
    c = _CRITERIA.get(name)
    return c.meaning if c else ""


def sentence(summary: Mapping[str, Any]) -> str:
    """One sentence on how a run's number of clusters was reached."""
    o = Outcome.from_summary(summary)
    crit = summary.get("k", {}).get("criterion")
    c = _CRITERIA.get(crit)
    return c.sentence(o) if c else f"{o.n_clusters} clusters ({crit})."


def short(summary: Mapping[str, Any]) -> str:
    """A few words on where a run's k came from, for the terminal."""
    k = summary.get("k", {})
    c = _CRITERIA.get(k.get("criterion"))
    requested = str(k.get("requested", "auto"))
    o = Outcome.from_summary(summary)
    if c is None:
        return "k given" if requested != "auto" else f"k chosen by {k.get('criterion')}"
    return c.short(o, requested)


def disagreement(chosen: int | None, criterion: str,
                 table: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Where the compared criteria of one sweep pick different k, each one's k, so that the
    user can try another with ``imgclust recluster DIR -k K``; ``None`` when they agree."""
    rows = [r for r in table if "k" in r and r.get("criterion") != "density"]
    if len(rows) < 3:
        return None
    picks: dict[str, int] = {}
    for n, c in _CRITERIA.items():
        if c.compared:
            k = c.pick(rows)
            if k is not None:
                picks[n] = int(k)
    if len(set(picks.values())) < 2:
        return None
    others = sorted({k for k in picks.values() if k != chosen})
    return {"chosen": chosen, "criterion": criterion, "picks": picks, "others": others}


def _span(o: Outcome) -> str:
    return f"k = {min(o.ks)}…{max(o.ks)}" if o.ks else "the k tried"


# --- sweep criteria -----------------------------------------------------------------------------

#: scores closer than this are a tie, which the smaller k wins
TIE = 1e-12


class _Sweep(Criterion):
    """A criterion that picks one k of a sweep; ``rule`` and ``column`` make its sentence."""

    kind = "sweep"
    #: how the k is picked, in words ("the highest silhouette")
    rule: ClassVar[str]
    #: the row's score named in the sentence
    column: ClassVar[str]

    def applies(self, meta: Mapping[str, Any]) -> bool:
        return meta.get("sweep") == "k"

    def sentence(self, o: Outcome) -> str:
        val = o.row.get(self.column)
        return (f"k = {o.chosen} was chosen among {_span(o)} by {self.rule}"
                + (f" ({self.column} {num(val)})" if val is not None else "") + ".")


@register
class Silhouette(_Sweep):
    name = "silhouette"
    compared = True
    rule = "the highest silhouette"
    column = "silhouette"
    meaning = ("how much closer each image is to its own cluster than to the next one "
               "(-1..1; the highest wins)")

    def columns(self, X: np.ndarray, labels: np.ndarray, est: Any,
                random_state: int = 0) -> dict[str, Any]:
        from imgclust.cluster.select_k import safe_silhouette

        return {"silhouette": safe_silhouette(X, labels, random_state)}

    def pick(self, table: Sequence[Mapping[str, Any]]) -> int | None:
        scored = [(r["silhouette"], int(r["k"])) for r in table if r.get("silhouette") is not None]
        if not scored:
            return None
        best = max(sc for sc, _ in scored)
        return min(k for sc, k in scored if sc >= best - TIE)  # a tie: the fewest clusters


@register
class Elbow(_Sweep):
    name = "elbow"
    compared = True
    rule = "the elbow of the inertia curve"
    column = "inertia"
    meaning = ("the k after which adding clusters stops shrinking the within-cluster spread "
               "(inertia) much: the bend of that curve")

    def columns(self, X: np.ndarray, labels: np.ndarray, est: Any,
                random_state: int = 0) -> dict[str, Any]:
        from imgclust.cluster.select_k import within_ss

        inertia = getattr(est, "inertia_", None)
        return {"inertia": float(inertia if inertia is not None else within_ss(X, labels))}

    def pick(self, table: Sequence[Mapping[str, Any]]) -> int | None:
        from imgclust.cluster.select_k import knee

        if not table or any(r.get("inertia") is None for r in table):
            return None
        ks = [int(r["k"]) for r in table]
        return ks[knee(ks, [r["inertia"] for r in table])]


class _Information(_Sweep):
    """BIC and AIC: a mixture's information criteria, the lowest wins; only the mixtures,
    which list them themselves, may use them."""

    def applies(self, meta: Mapping[str, Any]) -> bool:
        return False

    def check(self, est: Any) -> None:
        if not hasattr(est, "bic"):
            from imgclust.errors import ConfigError

            raise ConfigError(f"criterion={self.name!r} needs a mixture model (gmm)")

    def columns(self, X: np.ndarray, labels: np.ndarray, est: Any,
                random_state: int = 0) -> dict[str, Any]:
        if hasattr(est, "bic") and hasattr(est, "means_"):
            return {self.name: float(getattr(est, self.name)(X))}
        return {}

    def pick(self, table: Sequence[Mapping[str, Any]]) -> int | None:
        if not table or any(r.get(self.name) is None for r in table):
            return None
        return int(min(table, key=lambda r: r[self.name])["k"])


@register
class Bic(_Information):
    name = "bic"
    column = "bic"
    rule = "the lowest BIC"
    compared = True
    meaning = ("Bayesian information criterion: how well the mixture fits, penalised by its "
               "number of parameters (the lowest wins)")


@register
class Aic(_Information):
    name = "aic"
    column = "aic"
    rule = "the lowest AIC"
    meaning = ("Akaike information criterion: as BIC with a lighter penalty, so it allows more "
               "clusters")


@register
class LogElbow(_Sweep):
    """The elbow of log inertia, counted from one cluster (issue 12's default for photos).

    The curve is ``log(inertia)`` against k, with k = 1 (the images' total sum of squares)
    in front of the sweep; its knee (:func:`imgclust.cluster.select_k.knee`) is k, at least the
    sweep's smallest. On the log scale one far group's split (k = 1 to 2) does not dwarf the
    later ones, so k is not pulled to 2 as silhouette is; and, unlike ``elbow`` (whose curve
    starts at the sweep's first k), k = 2 can be chosen. Measured on six real folders and
    synthetic blobs: BENCHMARKS.md, "Real folders and the k rule (issue 12)".
    """

    name = "log-elbow"
    rule = "the elbow of the log-inertia curve from one cluster on"
    column = "inertia"
    meaning = ("the bend of the within-cluster spread (inertia) curve on a log scale, counted "
               "from one cluster (the images' whole spread): the k after which more clusters "
               "stop paying")

    def columns(self, X: np.ndarray, labels: np.ndarray, est: Any,
                random_state: int = 0) -> dict[str, Any]:
        from imgclust.cluster.select_k import within_ss

        inertia = getattr(est, "inertia_", None)
        return {"inertia": float(inertia if inertia is not None else within_ss(X, labels)),
                "total_ss": within_ss(X, np.zeros(len(X), dtype=int))}

    def pick(self, table: Sequence[Mapping[str, Any]]) -> int | None:
        from imgclust.cluster.select_k import knee

        if not table or any(r.get("inertia") is None or r.get("total_ss") is None
                            for r in table):
            return None
        ks = [int(r["k"]) for r in table]
        total = float(table[0]["total_ss"])
        if total <= 0:
            return None  # identical images: no spread to split
        ys = np.log(np.maximum([total] + [float(r["inertia"]) for r in table], total * 1e-12))
        i = knee([1] + ks, ys)
        return ks[max(i - 1, 0)]  # the knee at k = 1 means the smallest k tried


# --- density ------------------------------------------------------------------------------------

@register
class Density(Criterion):
    name = "density"
    kind = "density"
    meaning = "k is the number of dense groups HDBSCAN finds; the method then starts from their means"

    def sentence(self, o: Outcome) -> str:
        return (f"HDBSCAN found {o.n_clusters} dense groups (smallest allowed: "
                f"{o.row.get('min_cluster_size')} images; "
                f"{100 * (o.row.get('noise_share') or 0.0):.1f} % of the images were noise and "
                f"joined their nearest group); {o.method} ran at that k, started from the "
                "groups' means.")


# --- knn-spectral's graph rules -----------------------------------------------------------------

class _GraphRule(Criterion):
    kind = "graph"
    #: which of knn-spectral's two rules this is: 0 the eigengap's k, 1 the modularity's
    rule_index: ClassVar[int | None] = None

    def pick(self, table: Sequence[Mapping[str, Any]]) -> int | None:
        ks = self._rule_ks(table)
        return ks[self.rule_index] if ks and self.rule_index is not None else None

    @staticmethod
    def _rule_ks(table: Sequence[Mapping[str, Any]]) -> tuple[int, int] | None:
        if not table or not all("gap" in r and "modularity" in r for r in table):
            return None
        return (int(max(table, key=lambda r: r["gap"])["k"]),
                int(max(table, key=lambda r: r["modularity"])["k"]))


@register
class Graph(_GraphRule):
    name = "graph"
    meaning = "the smaller of the eigengap's k and the highest modularity's k"

    def sentence(self, o: Outcome) -> str:
        kg, km, by = o.row.get("k_eigengap"), o.row.get("k_modularity"), o.row.get("decided_by")
        if by == "both":
            return (f"k = {o.chosen}: the largest gap in the nearest-neighbour graph's Laplacian "
                    f"eigenvalues comes after the {o.chosen} smallest, and the spectral clustering "
                    f"with {o.chosen} clusters has the highest modularity on the graph: both rules "
                    "agree.")
        return (f"k = {o.chosen}: the largest gap in the nearest-neighbour graph's Laplacian "
                f"eigenvalues comes after the {kg} smallest, the highest modularity is at k = {km}; "
                f"the smaller is kept ({by}), since either rule, when wrong, finds too many "
                "clusters.")


@register
class Modularity(_GraphRule):
    name = "modularity"
    compared = True
    meaning = ("the k whose clusters keep the most nearest-neighbour links inside them beyond "
               "what chance would (the highest wins)")

    rule_index = 1

    def sentence(self, o: Outcome) -> str:
        return (f"k = {o.chosen}: of the spectral clusterings with {_span(o)}, the one whose "
                "clusters keep the most nearest-neighbour links inside them beyond chance "
                f"(highest modularity, {num(o.row.get('modularity'))}).")


@register
class Eigengap(_GraphRule):
    name = "eigengap"
    compared = True
    meaning = ("the k after which the sorted eigenvalues of the neighbour graph's Laplacian "
               "jump the most (one small eigenvalue per loosely joined group)")

    rule_index = 0

    def sentence(self, o: Outcome) -> str:
        ev, gap = o.row.get("eigenvalue"), o.row.get("gap")
        return (f"k = {o.chosen}: after the {o.chosen} smallest eigenvalues of the nearest-neighbour "
                f"graph's normalised Laplacian comes the largest gap among {_span(o)} "
                f"({num(ev)} to {num((ev or 0) + (gap or 0))}); {o.method} split the graph's "
                "spectral embedding into that many clusters.")


# --- how k came about when nothing chose it -----------------------------------------------------

@register
class Given(Criterion):
    name = "given"
    kind = "record"
    meaning = "k as given by the user"

    def sentence(self, o: Outcome) -> str:
        return f"k = {o.n_clusters}, as given."


@register
class Distinct(Criterion):
    name = "distinct"
    kind = "record"
    meaning = "k lowered to the number of distinct images (identical images cannot be split)"

    def sentence(self, o: Outcome) -> str:
        return str(o.row.get("note")
                   or f"{o.n_clusters} clusters: the images have only {o.n_clusters} distinct values.")


@register
class Eps(Criterion):
    name = "eps"
    kind = "record"
    meaning = ("DBSCAN's neighbourhood radius is swept and chosen by silhouette, with at most "
               "half the images as noise")

    def sentence(self, o: Outcome) -> str:
        return (f"DBSCAN's eps was swept over {len(o.sweep)} values; eps = {num(o.chosen)} was "
                f"kept (best silhouette with at most half the images as noise): {o.n_clusters} "
                f"clusters, {num(o.row.get('noise_share'))} noise share.")

    def short(self, o: Outcome, requested: str) -> str:
        return f"found by {o.method.split(':')[0]}, eps {num(o.chosen)}"


@register
class FoundByMethod(Criterion):
    name = "none"
    kind = "record"
    meaning = "the method finds the number of clusters itself"

    def sentence(self, o: Outcome) -> str:
        return f"{o.method} finds the number of clusters itself: {o.n_clusters}."

    def short(self, o: Outcome, requested: str) -> str:
        m = o.method.split(":")[0]
        return f"found by {m}" + (f"; -k {requested} does not apply" if requested != "auto" else "")


@register
class UpperBound(Criterion):
    name = "upper-bound"
    kind = "record"
    meaning = ("k is only the most clusters allowed; the method keeps fewer if the data "
               "support fewer")

    def sentence(self, o: Outcome) -> str:
        return f"{o.method} was allowed at most {o.chosen} components and kept {o.n_clusters}."

    def short(self, o: Outcome, requested: str) -> str:
        return f"found by {o.method.split(':')[0]}, at most {o.chosen}"
