"""The labelling web app: :func:`create_app` builds the FastAPI application of one run directory.

Pages (HTML, Jinja templates with autoescape): ``/`` the clusters, ``/cluster/{c}`` one
cluster's members (paged, nearest the centre first), ``/next`` what to label next. Every change
is a JSON ``POST /api/...`` that writes through :class:`~imgclust.label.store.LabelStore` and
answers with the store's batch id (``POST /api/undo`` takes it back).

Safety: images by row number only (:mod:`imgclust.app.images`); a request whose ``Host`` is not
one the server was started for is refused (DNS rebinding); a write needs the session token the
pages carry (header ``X-Imgclust-Token``) and, when the browser sends ``Origin``, the server's
own origin (no cross-site writes); every page is sent with a Content-Security-Policy that
allows nothing but the server's own files.
"""
from __future__ import annotations

import hmac
import math
import secrets
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence
from urllib.parse import urlsplit

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader
from pydantic import BaseModel, Field

from imgclust._version import __version__
from imgclust.app.images import ImageServer, NotServed
from imgclust.app.state import RunState
from imgclust.errors import ConfigError, ImgclustError

#: members per page of a cluster
PAGE = 200
#: host names a loopback server answers to
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: the propagation modes the page offers
PROPAGATE_MODES = ("cluster", "nearest:20%", "spread")
#: k tried by a split with k "auto" (chosen by silhouette)
SPLIT_K = range(2, 7)
TOKEN_HEADER = "X-Imgclust-Token"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


# -- request bodies -------------------------------------------------------------------------
class Selection(BaseModel):
    """Images by row number, and optionally every member of a cluster from a rank on."""

    rows: list[int] = Field(default_factory=list, max_length=10_000_000)
    from_cluster: Optional[int] = None
    from_rank: Optional[int] = Field(default=None, ge=0)


class LabelBody(Selection):
    label: Optional[str] = None          # None: remove the label


class MoveBody(Selection):
    to: int


class InterestBody(Selection):
    value: bool = True                   # True: not of interest; False: take the mark back


class NameBody(BaseModel):
    cluster: int
    name: Optional[str] = None


class MergeBody(BaseModel):
    a: int                               # merged away
    b: int                               # kept


class SplitBody(BaseModel):
    cluster: int
    k: str = "auto"                      # "auto" (silhouette over 2..6) or a whole number


class UndoBody(BaseModel):
    batch: Optional[str] = None          # None: the latest action


class PropagateBody(BaseModel):
    mode: str = "cluster"


class ExportBody(BaseModel):
    folder: str
    format: str = "csv"
    machine: bool = False                # also the propagated and model labels


def _host_name(host_header: str) -> str:
    """The host name of a ``Host`` header (no port; an IPv6 address without brackets)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def split_parts(X: np.ndarray, k: str, seed: int = 0) -> tuple[np.ndarray, int]:
    """Re-cluster rows ``X`` with k-means: (part of each row, k); k "auto" by silhouette.

    Parameters
    ----------
    X : array of shape (n_members, n_features)
    k : str
        ``"auto"`` (the best silhouette over 2..6) or a whole number of at least 2.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import silhouette_score

    n = X.shape[0]
    distinct = len(np.unique(X, axis=0))
    if k == "auto":
        ks = [c for c in SPLIT_K if c < n and c <= distinct]
        if not ks:
            raise ConfigError(f"a cluster of {n} images ({distinct} distinct) cannot be split")
    else:
        if not (k.isdigit() and int(k) >= 2):
            raise ConfigError(f"k={k!r} must be 'auto' or a whole number of at least 2")
        if int(k) > distinct:
            raise ConfigError(f"k={k} is more than the {distinct} distinct images of the cluster")
        ks = [int(k)]
    best: tuple[float, int, np.ndarray] | None = None
    for c in ks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            parts = KMeans(n_clusters=c, n_init=10, random_state=seed).fit_predict(X)
        if len(ks) == 1:
            return parts, c
        score = silhouette_score(X, parts, sample_size=min(n, 2000), random_state=seed)
        if best is None or score > best[0]:
            best = (score, c, parts)
    assert best is not None
    return best[2], best[1]


def create_app(run_dir: str | Path, allowed_hosts: Sequence[str] | None = None,
               token: str | None = None) -> FastAPI:
    """The labelling app of one run directory.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by ``imgclust run``.
    allowed_hosts : sequence of str, optional
        Host names the app answers to (``Host`` header); default the loopback names. ``"*"``
        answers to any (a server bound to every interface).
    token : str, optional
        The session token writes must carry; default a new random one.

    Returns
    -------
    FastAPI
        ``app.state.token`` is the session token, ``app.state.run`` the :class:`RunState`.

    Raises
    ------
    RunDirError
        ``run_dir`` is not a finished run of ``imgclust run``.

    Examples
    --------
    >>> from fastapi.testclient import TestClient            # doctest: +SKIP
    >>> client = TestClient(create_app("runs/digits"), base_url="http://127.0.0.1")  # doctest: +SKIP
    >>> client.get("/").status_code                             # doctest: +SKIP
    200
    """
    state = RunState(run_dir)
    images = ImageServer(state.ids, state.run.summary.get("source"))
    hosts = {h.lower().strip("[]") for h in (allowed_hosts or LOOPBACK)}
    token = token or secrets.token_urlsafe(32)
    env = Environment(loader=PackageLoader("imgclust.app", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)

    # no trailing-slash redirects: '/thumb/%2e%2e%2f' is a 404, not a redirect to '/thumb/..'
    app = FastAPI(title="imgclust", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, redirect_slashes=False)
    app.state.token = token
    app.state.run = state
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.middleware("http")
    async def guard_host(request: Request, call_next: Any) -> Response:
        if "*" not in hosts and _host_name(request.headers.get("host", "")) not in hosts:
            return JSONResponse({"error": "host not allowed"}, status_code=400)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(ImgclustError)
    async def imgclust_error(request: Request, exc: ImgclustError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    def check_write(request: Request) -> None:
        """Refuse a write without the session token or from another site."""
        given = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(403, "missing or wrong session token; reload the page")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise HTTPException(403, "cross-site request refused")
        origin = request.headers.get("origin")
        if origin is not None:
            o = urlsplit(origin)
            if o.scheme not in ("http", "https") or o.netloc.lower() != \
                    request.headers.get("host", "").lower():
                raise HTTPException(403, f"cross-origin request from {origin!r} refused")

    # -- helpers -----------------------------------------------------------------------------
    def rows_of(sel: Selection) -> list[int]:
        view = state.view()
        rows = list(sel.rows)
        bad = [r for r in rows if not 0 <= r < state.n]
        if bad:
            raise ConfigError(f"rows {bad[:3]} are not images of the run (0..{state.n - 1})")
        if sel.from_cluster is not None:
            members = view.members.get(sel.from_cluster)
            if members is None:
                raise ConfigError(f"cluster {sel.from_cluster} has no images")
            rows += members[sel.from_rank or 0:].tolist()
        rows = list(dict.fromkeys(rows))
        if not rows:
            raise ConfigError("no images selected")
        return rows

    def ids_of(rows: Iterable[int]) -> list[str]:
        return [state.ids[r] for r in rows]

    def render(template: str, **ctx: Any) -> HTMLResponse:
        view = state.view()
        clusters = [{"cluster": c["cluster"], "name": c["name"], "size": c["size"]}
                    for c in sorted(view.cards, key=lambda c: c["cluster"])]
        page = {"token": token, "labels": view.label_list, "clusters": clusters,
                **ctx.pop("page", {})}
        html = env.get_template(template).render(
            version=__version__, run_name=state.run_dir.name, token=token, page=page,
            label_list=view.label_list, clusters=clusters, n_images=state.n, **ctx)
        return HTMLResponse(html)

    def card_view(card: dict[str, Any], view: Any) -> dict[str, Any]:
        return {**card, "strip": [{"row": r, "id": state.ids[r],
                                   "label": (view.labels.get(r) or (None,))[0]}
                                  for r in card["strip"]]}

    # -- pages -------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def overview(sort: str = "size") -> HTMLResponse:
        if sort not in ("size", "cohesion", "cluster"):
            raise HTTPException(422, f"sort={sort!r}; valid: size, cohesion, cluster")
        view = state.view()
        cards = [c for c in view.cards if c["cluster"] >= 0]
        if sort == "size":
            cards.sort(key=lambda c: (-c["size"], c["cluster"]))
        elif sort == "cohesion":
            cards.sort(key=lambda c: (math.inf if c["cohesion"] is None else c["cohesion"],
                                      c["cluster"]))
        else:
            cards.sort(key=lambda c: c["cluster"])
        noise = [c for c in view.cards if c["cluster"] < 0]
        counts = state.store.counts()
        try:
            from imgclust.label.export import FORMATS as formats
        except ImportError:
            formats = ()
        return render("overview.html.j2", title=f"imgclust · {state.run_dir.name}",
                      formats=formats,
                      cards=[card_view(c, view) for c in cards + noise], sort=sort,
                      counts=counts, n_labelled=len(view.labels),
                      n_not_of_interest=len(view.not_of_interest),
                      batches=state.store.batches(10), modes=PROPAGATE_MODES,
                      page={"view": "overview"})

    @app.get("/cluster/{c}", response_class=HTMLResponse)
    def cluster_page(c: int, page: int = 0) -> HTMLResponse:
        view = state.view()
        members = view.members.get(c)
        if members is None:
            raise HTTPException(404, f"cluster {c} has no images")
        pages = max(1, math.ceil(len(members) / PAGE))
        if not 0 <= page < pages:
            raise HTTPException(404, f"page {page} of cluster {c}; it has pages 0..{pages - 1}")
        start = page * PAGE
        tiles = []
        for rank, r in enumerate(members[start:start + PAGE].tolist(), start=start):
            lab = view.labels.get(r)
            d = view.distance[r]
            tiles.append({"row": r, "rank": rank, "id": state.ids[r],
                          "label": lab[0] if lab else None, "source": lab[1] if lab else None,
                          "distance": None if not np.isfinite(d) else float(d),
                          "noi": r in view.not_of_interest})
        return render("cluster.html.j2", title=f"cluster {c} · {state.run_dir.name}",
                      c=c, name=view.names.get(c), size=len(members), tiles=tiles, page_no=page,
                      pages=pages, page={"view": "cluster", "cluster": c, "page": page})

    @app.get("/next", response_class=HTMLResponse)
    def next_page(n: int = 20) -> HTMLResponse:
        from imgclust.label.active import next_to_label

        n = max(1, min(int(n), 200))
        view = state.view()
        error = None
        tiles: list[dict[str, Any]] = []
        if state.X is None:
            error = "the run has no features.npy; suggestions need it"
        else:
            given = {r: v[0] for r, v in view.labels.items() if v[1] in ("human", "import")}
            try:
                sug = next_to_label(state.X, view.clusters, given, n,
                                    exclude=sorted(view.not_of_interest))
            except ImgclustError as exc:
                error, sug = str(exc), []
            for s in sug:
                lab = view.labels.get(s.index)
                tiles.append({"row": s.index, "rank": None, "id": state.ids[s.index],
                              "cluster": s.cluster, "reason": s.reason, "margin": s.margin,
                              "label": lab[0] if lab else None, "source": lab[1] if lab else None,
                              "noi": False})
        return render("next.html.j2", title=f"label next · {state.run_dir.name}", tiles=tiles,
                      error=error, page={"view": "next"})

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    # -- images ------------------------------------------------------------------------------
    def png(data_of: Any, row: int) -> Response:
        try:
            data = data_of(row)
        except NotServed:
            raise HTTPException(404, "no such image") from None
        return Response(data, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/thumb/{row}")
    def thumb(row: int) -> Response:
        return png(images.thumb, row)

    @app.get("/img/{row}")
    def img(row: int) -> Response:
        return png(images.full, row)

    # -- reads -------------------------------------------------------------------------------
    @app.get("/api/accuracy")
    def accuracy() -> dict[str, Any]:
        return state.accuracy()

    # -- writes ------------------------------------------------------------------------------
    write = [Depends(check_write)]

    @app.post("/api/name", dependencies=write)
    def name(body: NameBody) -> dict[str, Any]:
        nm = body.name.strip() if body.name is not None else None
        return {"batch": state.store.name_cluster(body.cluster, nm or None)}

    @app.post("/api/label", dependencies=write)
    def label(body: LabelBody) -> dict[str, Any]:
        rows = rows_of(body)
        lab = body.label.strip() if body.label is not None else None
        if lab:
            batch = state.store.label(ids_of(rows), lab)
        else:
            batch = state.store.clear(ids_of(rows))
        return {"batch": batch, "n": len(rows), "label": lab or None}

    @app.post("/api/move", dependencies=write)
    def move(body: MoveBody) -> dict[str, Any]:
        rows = rows_of(body)
        return {"batch": state.store.move(ids_of(rows), body.to), "n": len(rows), "to": body.to}

    @app.post("/api/interest", dependencies=write)
    def interest(body: InterestBody) -> dict[str, Any]:
        rows = rows_of(body)
        return {"batch": state.store.mark_not_of_interest(ids_of(rows), body.value),
                "n": len(rows)}

    @app.post("/api/merge", dependencies=write)
    def merge(body: MergeBody) -> dict[str, Any]:
        return {"batch": state.store.merge(body.a, body.b), "into": body.b}

    @app.post("/api/split", dependencies=write)
    def split(body: SplitBody) -> dict[str, Any]:
        if state.X is None:
            raise ConfigError("the run has no features.npy; a split re-clusters the features")
        if body.cluster < 0:
            raise ConfigError("noise (-1) is not a cluster to split")
        members = state.view().members.get(body.cluster)
        if members is None:
            raise ConfigError(f"cluster {body.cluster} has no images")
        parts, k = split_parts(state.X[members], body.k.strip().lower())
        batch, new = state.store.split({state.ids[r]: int(p) for r, p in zip(members, parts)})
        return {"batch": batch, "k": k, "new_clusters": sorted(new.values())}

    @app.post("/api/undo", dependencies=write)
    def undo(body: UndoBody) -> dict[str, Any]:
        if body.batch:
            state.store.undo(body.batch)
            return {"batch": body.batch}
        batch = state.store.undo_last()
        if batch is None:
            raise ConfigError("nothing to undo")
        return {"batch": batch}

    @app.post("/api/propagate", dependencies=write)
    def propagate(body: PropagateBody) -> dict[str, Any]:
        from imgclust.label.propagate import propagate_run

        return propagate_run(state.run_dir, body.mode)

    @app.post("/api/export", dependencies=write)
    def export(body: ExportBody) -> dict[str, Any]:
        try:
            from imgclust.label.export import LABELS_CSV, export_labels
        except ImportError:
            raise HTTPException(501, "export is not available: imgclust.label.export is "
                                     "missing from this installation") from None
        text = body.folder.strip()
        if not text:
            raise ConfigError("give the folder to export to")
        out = Path(text).expanduser()
        if not out.is_absolute():
            out = state.run_dir / out
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"{out}: already exists and is not an empty folder; nothing is "
                              "overwritten, give a new folder")
        sources = ("human", "import") + (("propagated", "model") if body.machine else ())
        made = not out.exists()
        # csv: FOLDER/labels.csv; the folder layouts: FOLDER/<label>/... and FOLDER/labels.csv
        if body.format == "csv":
            out.mkdir(parents=True, exist_ok=True)
        try:
            res = export_labels(state.run_dir, out / LABELS_CSV if body.format == "csv" else out,
                                format=body.format, sources=sources)
        except BaseException:
            if made and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # only the empty folder this request made
            raise
        return {"batch": None, "folder": str(out), "result": _jsonable(res)}

    return app


def _jsonable(value: Any) -> Any:
    """``value`` as JSON can carry it (paths and other objects as text)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
