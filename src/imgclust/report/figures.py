"""The report's plots as Plotly figure dicts (drawn in the browser by the plotly.js beside it).

Every function returns ``{"data": [...], "layout": {...}}`` ready for ``Plotly.newPlot``.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

#: 24 distinct colours (Plotly's Dark24), cycled for more clusters; noise is grey
PALETTE = ("#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100",
           "#750D86", "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D",
           "#6C7C32", "#778AAE", "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA",
           "#6C4516", "#0D2A63", "#AF0038")
NOISE = "#9a9a9a"


def colour(c: int) -> str:
    """The colour of cluster ``c`` (grey for noise, -1)."""
    return NOISE if c < 0 else PALETTE[c % len(PALETTE)]


def cluster_name(c: int) -> str:
    return "noise" if c < 0 else f"cluster {c}"


def _fig(data: list[Any], **layout: Any) -> dict[str, Any]:
    import plotly.graph_objects as go

    base = dict(template="plotly_white", height=320, margin=dict(l=60, r=20, t=40, b=50),
                hovermode="closest")
    base.update(layout)
    fig = go.Figure(data=data, layout=base)
    return json.loads(fig.to_json())  # plotly's encoder: numpy arrays become lists


def sizes(cluster_sizes: dict[str, int]) -> dict[str, Any]:
    """Bar chart of cluster sizes (noise last)."""
    import plotly.graph_objects as go

    cs = sorted((int(c) for c in cluster_sizes), key=lambda c: (c < 0, c))
    return _fig([go.Bar(x=[cluster_name(c) for c in cs], y=[cluster_sizes[str(c)] for c in cs],
                        marker_color=[colour(c) for c in cs],
                        hovertemplate="%{x}: %{y} images<extra></extra>")],
                title="Cluster sizes", xaxis_title="", yaxis_title="images", height=280)


def _chosen_line(x: float, text: str) -> dict[str, Any]:
    return dict(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper",
                line=dict(color="#d62728", dash="dash", width=1.5))


def sweep_k(sweep: Sequence[dict[str, Any]], criterion: str, elbow_k: int | None
            ) -> list[tuple[str, dict[str, Any]]]:
    """Inertia (elbow marked), silhouette, modularity and the Laplacian's eigengaps
    (``knn-spectral``) and, for mixtures, BIC/AIC against k."""
    import plotly.graph_objects as go

    ks = [r["k"] for r in sweep]
    chosen = next((r["k"] for r in sweep if r.get("chosen")), None)
    shapes = [_chosen_line(chosen, "chosen")] if chosen is not None else []
    note = f"dashed line: chosen k = {chosen} ({criterion})" if chosen is not None else ""
    out = []
    if any(r.get("inertia") is not None for r in sweep):
        data = [go.Scatter(x=ks, y=[r.get("inertia") for r in sweep], mode="lines+markers",
                           name="inertia", hovertemplate="k=%{x}<br>inertia=%{y:.4g}<extra></extra>")]
        if elbow_k is not None:
            y = next(r["inertia"] for r in sweep if r["k"] == elbow_k)
            data.append(go.Scatter(x=[elbow_k], y=[y], mode="markers+text", name="elbow",
                                   text=["elbow"], textposition="top right",
                                   marker=dict(size=14, symbol="circle-open", color="#d62728",
                                               line=dict(width=3)),
                                   hovertemplate="elbow at k=%{x}<extra></extra>"))
        out.append(("inertia", _fig(data, title="Within-cluster sum of squares (inertia) vs k",
                                    xaxis_title="k", yaxis_title="inertia", shapes=shapes,
                                    showlegend=False, xaxis=dict(dtick=1),
                                    annotations=[_note(note)])))
    if any(r.get("silhouette") is not None for r in sweep):
        out.append(("silhouette", _fig(
            [go.Scatter(x=ks, y=[r.get("silhouette") for r in sweep], mode="lines+markers",
                        name="silhouette",
                        hovertemplate="k=%{x}<br>silhouette=%{y:.3f}<extra></extra>")],
            title="Silhouette vs k (higher is better)", xaxis_title="k", yaxis_title="silhouette",
            shapes=shapes, showlegend=False, xaxis=dict(dtick=1), annotations=[_note(note)])))
    if any(r.get("modularity") is not None for r in sweep):
        out.append(("modularity", _fig(
            [go.Scatter(x=ks, y=[r.get("modularity") for r in sweep], mode="lines+markers",
                        name="modularity",
                        hovertemplate="k=%{x}<br>modularity=%{y:.4f}<extra></extra>")],
            title="Modularity on the nearest-neighbour graph vs k (higher is better)",
            xaxis_title="k", yaxis_title="modularity", shapes=shapes, showlegend=False,
            xaxis=dict(dtick=1), annotations=[_note(note)])))
    if any(r.get("gap") is not None for r in sweep):
        out.append(("eigengap", _fig(
            [go.Bar(x=ks, y=[r.get("gap") for r in sweep], name="gap after k",
                    hovertemplate="k=%{x}<br>gap=%{y:.4f}<extra></extra>"),
             go.Scatter(x=ks, y=[r.get("eigenvalue") for r in sweep], mode="lines+markers",
                        name="k-th eigenvalue",
                        hovertemplate="k=%{x}<br>eigenvalue=%{y:.4f}<extra></extra>")],
            title="Laplacian eigenvalues and the gap after each k",
            xaxis_title="k", yaxis_title="eigenvalue", shapes=shapes, xaxis=dict(dtick=1),
            annotations=[_note(note)])))
    if any("bic" in r for r in sweep):
        data = [go.Scatter(x=ks, y=[r.get(key) for r in sweep], mode="lines+markers",
                           name=key.upper(),
                           hovertemplate=f"k=%{{x}}<br>{key.upper()}=%{{y:.5g}}<extra></extra>")
                for key in ("bic", "aic")]
        out.append(("bic", _fig(data, title="BIC and AIC vs k (lower is better)", xaxis_title="k",
                                yaxis_title="information criterion", shapes=shapes,
                                xaxis=dict(dtick=1), annotations=[_note(note)])))
    return out


def _note(text: str) -> dict[str, Any]:
    return dict(text=text, xref="paper", yref="paper", x=1, y=1.02, xanchor="right",
                yanchor="bottom", showarrow=False, font=dict(size=11, color="#d62728"))


def sweep_eps(sweep: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """DBSCAN's eps sweep: silhouette and noise share against eps."""
    import plotly.graph_objects as go

    eps = [r["eps"] for r in sweep]
    chosen = next((r["eps"] for r in sweep if r.get("chosen")), None)
    return _fig([go.Scatter(x=eps, y=[r.get("silhouette") for r in sweep], mode="lines+markers",
                            name="silhouette"),
                 go.Scatter(x=eps, y=[r.get("noise_share") for r in sweep], mode="lines+markers",
                            name="noise share", yaxis="y2")],
                title="DBSCAN eps sweep", xaxis_title="eps", yaxis_title="silhouette",
                yaxis2=dict(title="noise share", overlaying="y", side="right", range=[0, 1]),
                shapes=[_chosen_line(chosen, "chosen")] if chosen is not None else [],
                margin=dict(l=60, r=60, t=40, b=50))


def silhouette_diagram(values: np.ndarray, labels: np.ndarray, mean: float | None
                       ) -> dict[str, Any]:
    """The classic silhouette plot: per cluster, its images' silhouettes sorted, stacked."""
    import plotly.graph_objects as go

    data, y0, ticks = [], 0, []
    for c in sorted(int(c) for c in np.unique(labels)):
        v = np.sort(values[labels == c])
        y = np.arange(y0, y0 + len(v))
        # a filled outline (two points per sample) draws thousands of bars as one shape
        data.append(go.Scatter(x=np.round(v, 4), y=y, mode="lines", fill="tozerox",
                               line=dict(width=0.5, color=colour(c)), name=cluster_name(c),
                               hovertemplate=f"{cluster_name(c)}<br>silhouette=%{{x:.3f}}<extra></extra>"))
        ticks.append((y0 + len(v) / 2, str(c)))
        y0 += len(v) + max(2, len(values) // 100)
    shapes = []
    if mean is not None:
        shapes.append(dict(type="line", x0=mean, x1=mean, y0=0, y1=1, yref="paper",
                           line=dict(color="#d62728", dash="dash")))
    return _fig(data, title=f"Silhouette per image, by cluster (sample of {len(values)})",
                xaxis_title="silhouette coefficient", height=max(320, min(900, 24 * len(ticks))),
                yaxis=dict(tickvals=[t for t, _ in ticks], ticktext=[s for _, s in ticks],
                           title="cluster", showgrid=False),
                shapes=shapes, showlegend=False)


def confusion(conf: dict[str, Any], mapping: dict[int, Any]) -> dict[str, Any]:
    """Clusters x classes heatmap, rows ordered so that Hungarian-matched pairs sit on the
    diagonal."""
    import plotly.graph_objects as go

    m = np.asarray(conf["matrix"])
    rows = [f"{cluster_name(int(c))} → {mapping.get(int(c)) if mapping.get(int(c)) is not None else '–'}"
            for c in conf["clusters"]]
    cols = [str(c) for c in conf["classes"]]
    big = m.shape[0] * m.shape[1] > 900
    return _fig([go.Heatmap(z=m, x=cols, y=rows, colorscale="Blues", texttemplate=None if big else "%{z}",
                            hovertemplate="%{y}<br>class %{x}: %{z} images<extra></extra>")],
                title="Confusion: clusters (matched class) × true classes",
                xaxis_title="true class", yaxis=dict(autorange="reversed", type="category"),
                xaxis=dict(type="category"),
                height=max(320, min(1000, 26 * m.shape[0] + 120)), margin=dict(l=150, r=20, t=40, b=50))


def scatter_map(xy: np.ndarray, rows: np.ndarray, labels: np.ndarray, method: str
                ) -> dict[str, Any]:
    """The 2-D map: one WebGL trace per cluster; ``customdata`` is the row, for the hover card."""
    import plotly.graph_objects as go

    data = []
    lab = labels[rows]
    for c in sorted(int(c) for c in np.unique(lab)):
        m = lab == c
        data.append(go.Scattergl(x=np.round(xy[m, 0], 3), y=np.round(xy[m, 1], 3), mode="markers",
                                 name=f"{cluster_name(c)} ({int(m.sum())})", customdata=rows[m],
                                 marker=dict(size=5, color=colour(c), opacity=0.8),
                                 hoverinfo="none"))
    return _fig(data, title=f"2-D map of the features ({method}, {len(rows)} images)",
                height=600, xaxis=dict(showticklabels=False, zeroline=False, title=""),
                yaxis=dict(showticklabels=False, zeroline=False, title=""),
                legend=dict(itemsizing="constant"), margin=dict(l=20, r=20, t=40, b=20))


def agreement(methods: Sequence[str], ari: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Pairwise ARI between methods."""
    import plotly.graph_objects as go

    return _fig([go.Heatmap(z=np.asarray(ari, dtype=float), x=list(methods), y=list(methods),
                            zmin=0, zmax=1, colorscale="Viridis", texttemplate="%{z:.2f}",
                            hovertemplate="%{y} vs %{x}: ARI %{z:.3f}<extra></extra>")],
                title="Agreement between methods (adjusted Rand index)",
                yaxis=dict(autorange="reversed", type="category"), xaxis=dict(type="category"),
                height=max(320, 60 * len(methods) + 120), margin=dict(l=140, r=20, t=40, b=80))


def compare_sizes(labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """Cluster sizes per method, as stacked bars (noise grey)."""
    import plotly.graph_objects as go

    data = []
    ms = list(labels)
    kmax = max((int(v.max()) for v in labels.values() if len(v)), default=-1)
    for c in [*range(kmax + 1), -1]:
        ys = [int((labels[m] == c).sum()) for m in ms]
        if any(ys):
            data.append(go.Bar(x=ms, y=ys, name=cluster_name(c), marker_color=colour(c),
                               hovertemplate=f"%{{x}}: {cluster_name(c)}, %{{y}} images<extra></extra>"))
    return _fig(data, barmode="stack", title="Cluster sizes per method", yaxis_title="images",
                showlegend=False)
