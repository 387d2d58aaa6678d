"""``imgclust bench``: the feature x method matrix on labelled data, scored against the labels.

Labels are used only to score; each row also reports the k it used and how it got it. The
plain k-means-on-pixels baseline (k = number of classes) is always the first row. This module
runs pipelines, so it sits above them (``imgclust.bench``), not inside ``evaluate/``.

With ``supervised=True`` the same features also train two supervised baselines (an SVM and a
random forest) on a stratified 75/25 split, so that each unsupervised ACC can be read against
what the labels themselves make possible on those features.
"""
from __future__ import annotations

import base64
import io
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from imgclust.errors import ConfigError
from imgclust.evaluate.metrics import hungarian_accuracy
from imgclust.sources import Source, open_source

DEFAULT_FEATURES = ("pixels", "pixels,pca:50")
DEFAULT_METHODS = ("kmeans", "minibatch-kmeans", "agglomerative", "dbscan", "hdbscan",
                   "spectral", "gmm:covariance_type=diag", "bgmm:covariance_type=diag")
BASELINE = ("pixels", "kmeans")
#: the supervised baselines of ``supervised=True``, in the order they are reported
SUPERVISED_MODELS = ("svm", "random-forest")
#: share of each class held out as the test set of the supervised baselines
TEST_SIZE = 0.25
#: misclassified test images shown per model in the supervised report
MAX_GALLERY = 60


def bench(sources: Sequence[str], features: Sequence[str] = DEFAULT_FEATURES,
          methods: Sequence[str] = DEFAULT_METHODS, k: str | int = "true",
          seeds: Sequence[int] = (0,), include_default: bool = True,
          on_row: Callable[[dict[str, Any]], None] | None = None, memory: bool = False,
          supervised: bool = False) -> list[dict[str, Any]]:
    """Run every feature/method pair on each labelled source.

    Parameters
    ----------
    sources : sequence of str
        Labelled sources: ``dataset:digits``, ``.npz`` with labels, or ``folders:PATH`` for a
        folder of class subfolders.
    k : "true", "auto" or int
        ``"true"``: the number of classes (stated in each row as ``k_from="given"``).
    seeds : sequence of int
        Each row is repeated per seed; mean and spread are computed by :func:`aggregate`.
    include_default : bool
        Add the ``auto/auto/auto`` default pipeline as a row.
    memory : bool
        Also record each row's peak Python memory (``peak_mb``, by ``tracemalloc``). Tracing
        every allocation slows Python-heavy steps several times over, so the seconds of such a
        run are not comparable with one without it; by default nothing is traced.
    supervised : bool
        Also train the supervised baselines (:data:`SUPERVISED_MODELS`, see
        :func:`supervised_scores`) on every feature spec of ``features`` and, with
        ``include_default``, on the default's (``auto``) features, per seed.

    Returns
    -------
    list of dict
        One row per (source, features, method, seed): acc, nmi, ari, k, seconds and, with
        ``memory``, peak_mb; with ``supervised``, rows with ``supervised: True`` and
        ``test_acc`` (see :func:`supervised_scores`).

    Examples
    --------
    >>> rows = bench(["dataset:digits"], ["pixels"], ["kmeans"], supervised=True,
    ...              include_default=False)  # doctest: +SKIP
    >>> [(r["method"], round(r.get("acc", r.get("test_acc")), 2)) for r in rows]  # doctest: +SKIP
    [('kmeans', 0.79), ('svm', 0.99), ('random-forest', 0.97)]
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from imgclust.features.auto import choose_method
    from imgclust.pipeline import cluster_features, extract_features

    sup_features = list(dict.fromkeys([*features, *(["auto"] if include_default else [])]))
    if supervised and not sup_features:
        raise ConfigError("supervised baselines need features: give -f, or keep the default "
                          "row (no --no-default)")
    rows = []
    for spec in sources:
        spec, src, truth = open_labelled(spec)
        n_classes = len(set(truth.values()))
        pairs = [BASELINE] + [(f, m) for f in features for m in methods if (f, m) != BASELINE]
        if include_default:
            pairs.append(("auto", "auto"))
        for seed in seeds:
            feat_cache: dict[str, tuple[Any, float, float]] = {}
            for feat, meth in pairs:
                kk = n_classes if (k == "true" and (feat, meth) != ("auto", "auto")) else k
                if kk == "true":
                    kk = "auto"
                if feat not in feat_cache:
                    _trace(memory)
                    t = time.perf_counter()
                    fs, _, _, desc = extract_features(src, feat, seed=seed, progress=False)
                    secs = time.perf_counter() - t
                    feat_cache[feat] = (fs, secs, _peak(memory))
                fs, f_secs, f_peak = feat_cache[feat]
                _trace(memory)
                t = time.perf_counter()
                m, crit = choose_method(",".join(fs.steps))[:2] if meth == "auto" else (meth, None)
                try:
                    clustering, sel, _ = cluster_features(fs, m, kk, crit, (2, 15), seed, False)
                    err = None
                except (ConfigError, ValueError, MemoryError) as exc:
                    clustering, sel, err = None, None, str(exc)
                c_secs = time.perf_counter() - t
                peak = _peak(memory)
                row: dict[str, Any] = {
                    "data": spec, "features": feat, "method": meth, "seed": seed,
                    "baseline": (feat, meth) == BASELINE, "n": len(fs.ids),
                    "k_from": "given" if isinstance(kk, int) else "auto",
                    "features_s": round(f_secs, 3), "cluster_s": round(c_secs, 3),
                    "seconds": round(f_secs + c_secs, 3),
                }
                if memory:
                    row["peak_mb"] = round(max(f_peak or 0.0, peak or 0.0), 1)
                if clustering is not None:
                    y = [truth[i] for i in fs.ids]
                    row.update(k=clustering.n_clusters, criterion=sel.criterion, k_from=sel.criterion,
                               noise=float((clustering.labels < 0).mean()),
                               acc=hungarian_accuracy(y, clustering.labels),
                               nmi=float(normalized_mutual_info_score(y, clustering.labels)),
                               ari=float(adjusted_rand_score(y, clustering.labels)))
                else:
                    row["error"] = err
                rows.append(row)
                if on_row:
                    on_row(row)
            for feat in sup_features if supervised else ():
                if feat not in feat_cache:
                    t = time.perf_counter()
                    fs = extract_features(src, feat, seed=seed, progress=False)[0]
                    feat_cache[feat] = (fs, time.perf_counter() - t, None)
                fs = feat_cache[feat][0]
                for row in supervised_scores(fs.X, [truth[i] for i in fs.ids], seed=seed,
                                             ids=fs.ids):
                    row = {"data": spec, "features": feat, "spec": ",".join(fs.steps), **row}
                    rows.append(row)
                    if on_row:
                        on_row(row)
    return rows


def open_labelled(spec: str) -> tuple[str, Source, dict[str, str]]:
    """Open a labelled source: ``folders:PATH`` means a folder whose subfolders are classes.

    Returns
    -------
    spec (without ``folders:``), source, label of each image id

    Raises
    ------
    ConfigError
        The source has no labels.
    """
    labels_mode = None
    if spec.startswith("folders:"):
        spec, labels_mode = spec.split(":", 1)[1], "folders"
    src = open_source(spec, labels=labels_mode)
    truth = src.labels()
    if truth is None:
        raise ConfigError(f"{spec}: bench needs labels (an .npz with 'labels', a bundled "
                          "dataset, or folders:PATH with class subfolders)")
    return spec, src, truth


def _class_order(labels: Iterable[str]) -> list[str]:
    """Class names in reading order: numbers by value (2 before 10), then the rest."""
    return sorted(set(labels), key=lambda c: (0, int(c), c) if c.isdigit() else (1, 0, c))


def supervised_model(name: str, seed: int = 0) -> Any:
    """A fresh, unfitted supervised baseline.

    ``"svm"``: scikit-learn's ``SVC`` with its default parameters (RBF kernel, C=1) after a
    ``StandardScaler``; ``"random-forest"``: ``RandomForestClassifier(n_estimators=300)``.
    """
    if name == "svm":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        return make_pipeline(StandardScaler(), SVC())
    if name == "random-forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=300, random_state=seed)
    raise ValueError(f"unknown supervised model {name!r}; valid names: "
                     + ", ".join(SUPERVISED_MODELS))


def stratified_split(y: Sequence[str], seed: int = 0, test_size: float = TEST_SIZE
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) of a stratified split: each class keeps its share in both.

    Raises
    ------
    ConfigError
        A class has fewer than 2 images, or the test set would have fewer images than there
        are classes.
    """
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(np.asarray(y), return_counts=True)
    if len(classes) < 2:
        raise ConfigError(f"a supervised baseline needs at least 2 classes, got {len(classes)}")
    if counts.min() < 2:
        raise ConfigError(f"a stratified train/test split needs at least 2 images of each class; "
                          f"class {str(classes[counts.argmin()])!r} has {counts.min()}")
    n_test = int(np.ceil(test_size * len(y)))
    if n_test < len(classes):
        raise ConfigError(f"a test set of {n_test} images ({test_size:.0%} of {len(y)}) cannot "
                          f"hold each of the {len(classes)} classes")
    return train_test_split(np.arange(len(y)), test_size=test_size, stratify=np.asarray(y),
                            random_state=seed)


def supervised_scores(X: np.ndarray, y: Sequence[str], seed: int = 0,
                      models: Sequence[str] = SUPERVISED_MODELS, test_size: float = TEST_SIZE,
                      ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Train each supervised baseline on a stratified split of ``X`` and score it on the rest.

    Parameters
    ----------
    X : ndarray of shape (n_images, n_features)
    y : sequence of str, length n_images
        The class of each row.
    seed : int
        Seeds the split (and the random forest).
    models : sequence of str
        Names among :data:`SUPERVISED_MODELS` (see :func:`supervised_model`).
    ids : sequence of str, optional
        Image id of each row, to name the misclassified images (default: row numbers).

    Returns
    -------
    list of dict
        Per model: ``method``, ``supervised`` (True), ``seed``, ``n``, ``n_train``, ``n_test``,
        ``test_acc``, ``seconds``, ``classes``, ``confusion`` (rows: true class, columns:
        predicted, in ``classes`` order) and ``misclassified`` (``id``, ``true``, ``pred`` of
        each wrong test image).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix

    y = np.asarray(y)
    ids = list(ids) if ids is not None else [str(i) for i in range(len(y))]
    train, test = stratified_split(y, seed, test_size)
    classes = _class_order(y)
    rows = []
    for name in models:
        t = time.perf_counter()
        model = supervised_model(name, seed).fit(X[train], y[train])
        pred = model.predict(X[test])
        rows.append({
            "method": name, "supervised": True, "seed": seed, "n": len(y),
            "n_train": len(train), "n_test": len(test),
            "test_acc": float(accuracy_score(y[test], pred)),
            "seconds": round(time.perf_counter() - t, 3), "classes": classes,
            "confusion": confusion_matrix(y[test], pred, labels=classes).tolist(),
            "misclassified": [{"id": ids[i], "true": str(y[i]), "pred": str(p)}
                              for i, p in zip(test, pred) if p != y[i]],
        })
    return rows


def supervised_summary(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (data, features): the supervised test accuracies beside the unsupervised ACCs.

    Returns
    -------
    list of dict
        ``data``, ``features``, ``spec`` (the resolved feature steps), ``models`` (name ->
        ``{"acc", "acc_sd", "seeds"}`` of the test accuracy) and ``unsupervised`` (the
        :func:`aggregate` rows of the same data and features).
    """
    rows = list(rows)
    unsup = aggregate(rows)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if not r.get("supervised"):
            continue
        key = (r["data"], r["features"])
        entry = out.setdefault(key, {"data": key[0], "features": key[1], "spec": r["spec"],
                                     "models": {}, "unsupervised": [
                                         a for a in unsup if (a["data"], a["features"]) == key]})
        entry["models"].setdefault(r["method"], []).append(r["test_acc"])
    for entry in out.values():
        entry["models"] = {m: {"acc": float(np.mean(v)), "acc_sd": float(np.std(v)),
                               "seeds": len(v)} for m, v in entry["models"].items()}
    return list(out.values())


def _trace(memory: bool) -> None:
    if memory:
        tracemalloc.start()


def _peak(memory: bool) -> float | None:
    """Peak traced memory in MiB since :func:`_trace`, and stop tracing; ``None`` untraced."""
    if not memory:
        return None
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def aggregate(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of acc/nmi/ari/seconds/k/noise, per configuration."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("supervised") or r.get("cluster_features"):
            continue  # reported by supervised_summary / cluster_features_summary
        groups.setdefault((r["data"], r["features"], r["method"]), []).append(r)
    out = []
    for (data, feat, meth), rs in groups.items():
        ok = [r for r in rs if "acc" in r]
        agg: dict[str, Any] = {"data": data, "features": feat, "method": meth, "seeds": len(rs)}
        for key in ("acc", "nmi", "ari", "seconds", "k", "noise"):
            vals = [r[key] for r in ok]
            if vals:
                agg[key] = float(np.mean(vals))
                agg[key + "_sd"] = float(np.std(vals))
        peaks = [r["peak_mb"] for r in rs if r.get("peak_mb") is not None]
        agg["peak_mb"] = max(peaks) if peaks else None
        agg["k_from"] = rs[0]["k_from"]
        out.append(agg)
    return out


#: the marker and record of a bench output folder (``--out``): its rows and the files written
BENCH_JSON = "bench.json"
SUPERVISED_HTML = "supervised.html"


def _thumb_uri(src: Source, image_id: str, side: int = 64) -> str:
    """A base64 PNG data URI of one image, small ones enlarged (nearest) to about ``side``."""
    from PIL import Image

    from imgclust.sources.decode import to_rgb

    _, img = src.read(image_id)
    img = to_rgb(img)
    if max(img.size) < side:
        f = max(1, side // max(img.size))
        img = img.resize((img.width * f, img.height * f), Image.Resampling.NEAREST)
    else:
        img.thumbnail((side * 2, side * 2), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def supervised_report(rows: Sequence[dict[str, Any]], sources: dict[str, Source] | None = None
                      ) -> str:
    """The supervised baselines as one self-contained HTML page.

    A table of test accuracies (mean ± sd over seeds) beside the unsupervised ACCs of the same
    features; then, for the first seed, each model's confusion matrix and a gallery of its
    misclassified test images (base64 PNG thumbnails read from the source, at most
    :data:`MAX_GALLERY` per model).

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`bench` with ``supervised=True``.
    sources : dict of str to Source, optional
        Open sources by the rows' ``data``; others are opened with :func:`open_source`.
    """
    import jinja2

    from imgclust._version import __version__
    from imgclust.errors import DecodeError

    sup = [r for r in rows if r.get("supervised")]
    if not sup:
        raise ConfigError("no supervised rows to report (bench with supervised=True)")
    sources = dict(sources or {})
    first = min(r["seed"] for r in sup)
    sections: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sup:
        if r["seed"] != first:
            continue
        if r["data"] not in sources:
            sources[r["data"]] = open_source(r["data"])
        gallery = []
        for m in r["misclassified"][:MAX_GALLERY]:
            try:
                g = {**m, "src": _thumb_uri(sources[r["data"]], m["id"]), "error": None}
            except (DecodeError, OSError, ValueError) as exc:  # the file changed since
                g = {**m, "src": None, "error": str(exc)}
            gallery.append(g)
        sec = sections.setdefault((r["data"], r["features"]), {
            "data": r["data"], "features": r["features"], "rows": []})
        sec["rows"].append({**r, "gallery": gallery})

    def pm(d: dict[str, Any], key: str) -> str:
        return f"{d[key]:.3f} ± {d[key + '_sd']:.3f}" if key in d else "error"

    env = jinja2.Environment(loader=jinja2.PackageLoader("imgclust.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    models = list(dict.fromkeys(r["method"] for r in sup))
    return env.get_template("supervised.html.j2").render(
        version=__version__, summary=supervised_summary(rows), sections=list(sections.values()),
        models=models, pm=pm, first_seed=first, n_seeds=len({r["seed"] for r in sup}),
        test_size=TEST_SIZE)


def write_bench_out(rows: Sequence[dict[str, Any]], out: str | Path,
                    sources: dict[str, Source] | None = None,
                    config: dict[str, Any] | None = None) -> list[Path]:
    """Write a bench's rows to ``out/bench.json`` and, with supervised rows, ``supervised.html``.

    ``out`` must be new, empty or an earlier bench's output (``bench.json`` lists what bench
    wrote there; only those files are replaced): a user's folder is refused before anything
    is written.

    Returns
    -------
    list of Path
        The files written.
    """
    from imgclust.outdir import write_owned

    files: dict[str, bytes | str] = {}
    if any(r.get("supervised") for r in rows):
        files[SUPERVISED_HTML] = supervised_report(rows, sources)
    return write_owned(out, BENCH_JSON, "imgclust bench", files,
                       {"config": config or {}, "rows": list(rows)})


def check_bench_out(out: str | Path, supervised: bool = False) -> None:
    """Refuse ``out`` (:class:`~imgclust.errors.RunDirError`) unless bench may write there."""
    from imgclust.outdir import claim_out_dir

    claim_out_dir(out, BENCH_JSON, "imgclust bench", [SUPERVISED_HTML] if supervised else [])


#: features of ``clusters_as_features`` unless others are given (the seed's recipe: pixels)
CLUSTER_FEATURES_DEFAULT = ("pixels",)
#: the k's tried by the 3-fold grid search of the k-means step (on digits the search over
#: 50..150 chose k = 150 and C = 100, the grid's edges, so it goes on to 200)
CLUSTER_K_GRID = (100, 150, 200)
#: the inverse regularisations C of the logistic regression tried with each k: the distances
#: are in the units of the features (pixels in 0..1 here, 0..16 in the seed), so C is searched
#: rather than fixed at 1
CLUSTER_C_GRID = (1.0, 10.0, 100.0)


def cluster_features_models(seed: int = 0, k_grid: Sequence[int] = CLUSTER_K_GRID, cv: int = 3,
                            c_grid: Sequence[float] = CLUSTER_C_GRID, memory: Any = None
                            ) -> dict[str, Any]:
    """The two models of :func:`clusters_as_features`, unfitted.

    ``"logreg"``: ``StandardScaler`` then ``LogisticRegression`` on the plain features.
    ``"kmeans+logreg"``: the seed's recipe (Géron, *Hands-on ML*, ch. 9): ``KMeans``
    (``n_init=10``; its ``transform``: the distance of each image to each of the k centres)
    then a one-vs-rest ``LogisticRegression`` (the seed's ``multi_class="ovr"``, which
    scikit-learn now spells ``OneVsRestClassifier``) on those k distances, unscaled, k and
    C chosen among ``k_grid`` x ``c_grid`` by ``GridSearchCV`` (``cv``-fold, stratified, on
    the training set only). ``memory`` (a folder) caches the k-means fits across the C's.
    On scikit-learn's raw digits (0..16), 3 stratified splits at fixed k = 50 / 100 / 150,
    one-vs-rest gave 0.969-0.987 where the multinomial model gave 0.964-0.978, and scaling
    the distances lowered both; on imgclust's pixels (0..1) the distances are 16 times
    smaller and C = 1 underfits (0.967-0.973; C = 10: 0.971-0.991) (BENCHMARKS.md, issue 14).
    """
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    ks = sorted({int(k) for k in k_grid})
    if not ks or ks[0] < 1:
        raise ConfigError(f"k_grid={list(k_grid)} must hold positive numbers of clusters")
    plain = Pipeline([("scale", StandardScaler()), ("logreg", LogisticRegression(max_iter=5000))])
    cs = sorted({float(c) for c in c_grid})
    if not cs or cs[0] <= 0:
        raise ConfigError(f"c_grid={list(c_grid)} must hold positive numbers")
    clustered = Pipeline([("kmeans", KMeans(n_init=10, random_state=seed)),
                          ("logreg", OneVsRestClassifier(LogisticRegression(max_iter=5000)))],
                         memory=memory)
    return {"logreg": plain,
            "kmeans+logreg": GridSearchCV(clustered, {"kmeans__n_clusters": ks,
                                                      "logreg__estimator__C": cs}, cv=cv)}


def clusters_as_features(sources: Sequence[str],
                         features: Sequence[str] = CLUSTER_FEATURES_DEFAULT,
                         seeds: Sequence[int] = (0,), k_grid: Sequence[int] = CLUSTER_K_GRID,
                         cv: int = 3, test_size: float = TEST_SIZE,
                         on_row: Callable[[dict[str, Any]], None] | None = None
                         ) -> list[dict[str, Any]]:
    """Logistic regression on k-means distances against logistic regression on the features.

    For each source, feature spec and seed: a stratified split (:func:`stratified_split`),
    both models of :func:`cluster_features_models` fitted on the training images and scored
    on the test images.

    Parameters
    ----------
    sources : sequence of str
        Labelled sources (as for :func:`bench`).
    features : sequence of str
        Feature specs (``pixels``, ``auto``…).
    k_grid : sequence of int
        The k's of the grid search; every one must be below the smallest training fold.

    Returns
    -------
    list of dict
        Per (source, features, seed, model): ``cluster_features`` (True), ``method``
        (``logreg`` or ``kmeans+logreg``), ``test_acc``, ``seconds`` and, for
        ``kmeans+logreg``, the chosen ``k`` and ``cv_acc`` (mean cross-validated accuracy
        per k).

    Examples
    --------
    >>> rows = clusters_as_features(["dataset:digits"], k_grid=[50, 100])  # doctest: +SKIP
    >>> [(r["method"], r.get("k")) for r in rows]  # doctest: +SKIP
    [('logreg', None), ('kmeans+logreg', 100)]
    """
    from imgclust.pipeline import extract_features

    rows = []
    for spec in sources:
        spec, src, truth = open_labelled(spec)
        for seed in seeds:
            for feat in features:
                fs = extract_features(src, feat, seed=seed, progress=False)[0]
                y = np.asarray([truth[i] for i in fs.ids])
                train, test = stratified_split(y, seed, test_size)
                fold = len(train) - -(-len(train) // cv)  # the smallest training fold
                if max(k_grid) > fold:
                    raise ConfigError(f"k_grid up to {max(k_grid)} needs more images than the "
                                      f"{fold} of a training fold ({len(train)} training images"
                                      f", {cv}-fold)")
                with tempfile.TemporaryDirectory(prefix="imgclust-kmeans-") as cache:
                    models = cluster_features_models(seed, k_grid, cv, memory=cache)
                    fitted = {}
                    for name, model in models.items():
                        t = time.perf_counter()
                        model.fit(fs.X[train], y[train])
                        fitted[name] = (model, round(time.perf_counter() - t, 3))
                for name, (model, secs) in fitted.items():
                    row: dict[str, Any] = {
                        "data": spec, "features": feat, "spec": ",".join(fs.steps),
                        "method": name, "cluster_features": True, "seed": seed, "n": len(y),
                        "n_train": len(train), "n_test": len(test),
                        "test_acc": float(model.score(fs.X[test], y[test])),
                        "seconds": secs}
                    if hasattr(model, "best_params_"):
                        row["k"] = int(model.best_params_["kmeans__n_clusters"])
                        row["C"] = float(model.best_params_["logreg__estimator__C"])
                        cv_acc: dict[str, float] = {}  # per k, the best over C
                        for p, s in zip(model.cv_results_["params"],
                                        model.cv_results_["mean_test_score"]):
                            kk = str(p["kmeans__n_clusters"])
                            cv_acc[kk] = max(cv_acc.get(kk, 0.0), round(float(s), 4))
                        row["cv_acc"] = cv_acc
                    rows.append(row)
                    if on_row:
                        on_row(row)
    return rows


def cluster_features_summary(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (data, features): both models' test accuracy (mean ± sd over seeds) and the change
    of the error rate, ``(err_clustered - err_plain) / err_plain`` of the mean errors.

    Returns
    -------
    list of dict
        ``data``, ``features``, ``spec``, ``plain`` and ``clustered`` (``acc``, ``acc_sd``),
        ``k`` (chosen per seed), ``plain_error``, ``clustered_error``, ``error_change``.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if not r.get("cluster_features"):
            continue
        g = groups.setdefault((r["data"], r["features"]),
                              {"spec": r["spec"], "logreg": [], "kmeans+logreg": [], "k": []})
        g[r["method"]].append(r["test_acc"])
        if "k" in r:
            g["k"].append(r["k"])
    out = []
    for (data, feat), g in groups.items():
        if not g["logreg"] or not g["kmeans+logreg"]:
            continue
        plain, clus = (np.asarray(g[m]) for m in ("logreg", "kmeans+logreg"))
        e0, e1 = 1 - plain.mean(), 1 - clus.mean()
        out.append({"data": data, "features": feat, "spec": g["spec"],
                    "plain": {"acc": float(plain.mean()), "acc_sd": float(plain.std())},
                    "clustered": {"acc": float(clus.mean()), "acc_sd": float(clus.std())},
                    "k": g["k"], "plain_error": float(e0), "clustered_error": float(e1),
                    "error_change": float((e1 - e0) / e0) if e0 > 0 else 0.0})
    return out
