"""New images sampled from a run: a Gaussian mixture fitted in the PCA space of its images'
pixels, sampled and mapped back through the PCA (seed 004's generated faces).

The run's own feature space (HOG, CNN) cannot be inverted to pixels, so the images are read
again (from the run's catalogue) as small gray or colour pixel arrays, reduced by PCA (95 % of
the variance), and a scikit-learn ``GaussianMixture`` is fitted there, its number of components
chosen by BIC; samples are inverted through the PCA and clipped to the pixel range.

When the run's features come from an autoencoder trained on its pixels
(``pixels,autoencoder:…``), ``space="decoder"`` (the default ``auto`` picks it then) fits the
mixture in the autoencoder's code space instead and decodes the samples with its decoder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgclust.errors import ConfigError

#: side of the generated images when the run's images are larger (small ones keep their size)
GEN_SIDE = 32
#: images read at most (a random sample beyond)
MAX_IMAGES = 5000
#: where the mixture is fitted
SPACES = ("auto", "pca", "decoder")
#: steps that may come before the autoencoder for its inputs to be images
IMAGE_STEPS = ("pixels", "resize", "deskew")


def fit_mixture(Z: np.ndarray, max_components: int = 10, random_state: int = 0) -> Any:
    """A full-covariance ``GaussianMixture`` on the rows of ``Z``, components by BIC."""
    from sklearn.mixture import GaussianMixture

    best = None
    for k in range(1, max(1, min(max_components, len(Z) - 1)) + 1):
        gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4,
                             random_state=random_state).fit(Z)
        bic = gm.bic(Z)
        if best is None or bic < best[0]:
            best = (bic, gm)
    assert best is not None
    return best[1]


def sample_codes(mixture: Any, n: int, random_state: int = 0) -> np.ndarray:
    """``n`` samples of a fitted mixture, in random order (``sample`` groups them)."""
    import warnings

    if n < 1:
        raise ConfigError(f"n={n} must be at least 1")
    mixture.set_params(random_state=random_state)
    with warnings.catch_warnings():  # numpy's PSD check trips on round-off of a fitted covariance
        warnings.simplefilter("ignore", RuntimeWarning)
        Z, _ = mixture.sample(n)
    return Z[np.random.default_rng(random_state).permutation(len(Z))]


def decoder_step(steps: list[tuple[str, Any]]) -> int | None:
    """Position of the run's autoencoder step, when the steps before it give images."""
    from imgclust.registry import parse_spec

    names = [parse_spec(spec)[0] for spec, _ in steps]
    if "autoencoder" not in names:
        return None
    i = names.index("autoencoder")
    return i if i > 0 and all(n in IMAGE_STEPS for n in names[:i]) else None


def sample_decoder(ae: Any, codes: np.ndarray, n: int, random_state: int = 0
                   ) -> tuple[np.ndarray, Any]:
    """Fit a mixture (BIC) to the autoencoder ``codes``, sample ``n`` codes and decode them.

    Returns
    -------
    rows : ndarray of shape (n, n_features_in_)
        Decoded samples, in the units of the autoencoder's inputs.
    mixture : the fitted ``GaussianMixture``
    """
    if len(codes) < 3:
        raise ConfigError(f"generating needs at least 3 images, got {len(codes)}")
    gm = fit_mixture(np.asarray(codes, dtype=np.float64), random_state=random_state)
    return ae.decode(sample_codes(gm, n, random_state)), gm


def fit_sampler(X: np.ndarray, n_components: int | str = "bic", variance: float = 0.95,
                max_components: int = 10, random_state: int = 0) -> tuple[Any, Any]:
    """Fit PCA (``variance`` of the variance) and a Gaussian mixture on the rows of ``X``.

    Returns
    -------
    pca, mixture : fitted ``PCA`` and ``GaussianMixture``
    """
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    if len(X) < 3:
        raise ConfigError(f"generating needs at least 3 images, got {len(X)}")
    pca = PCA(n_components=variance, svd_solver="full", random_state=random_state).fit(X)
    Z = pca.transform(X)
    if n_components == "bic":
        best = None
        for k in range(1, min(max_components, len(X) - 1) + 1):
            gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4,
                                 random_state=random_state).fit(Z)
            bic = gm.bic(Z)
            if best is None or bic < best[0]:
                best = (bic, gm)
        return pca, best[1]
    k = int(n_components)
    if not 1 <= k < len(X):
        raise ConfigError(f"n_components={k} must be in 1..{len(X) - 1}")
    return pca, GaussianMixture(k, covariance_type="full", reg_covar=1e-4,
                                random_state=random_state).fit(Z)


def sample(pca: Any, mixture: Any, n: int, lo: float = 0.0, hi: float = 255.0,
           random_state: int = 0) -> np.ndarray:
    """``n`` samples of the mixture, mapped back through the PCA, clipped to ``[lo, hi]``."""
    return np.clip(pca.inverse_transform(sample_codes(mixture, n, random_state)), lo, hi)


def _pixels(img: Image.Image, side: int, gray: bool) -> np.ndarray:
    img = img.convert("L" if gray else "RGB")
    if img.size != (side, side):
        img = img.resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.float32).ravel()


def generate(run_dir: str | Path, out: str | Path, n: int = 20, seed: int = 0,
             space: str = "auto") -> dict[str, Any]:
    """Write ``OUT/generated.png`` (a grid of ``n`` new images) and ``OUT/generated.npy``.

    Parameters
    ----------
    run_dir : str or Path
        A finished run (its images are read again through its catalogue).
    out : str or Path
        New, empty, or written by an earlier ``imgclust generate`` (``generate.json``).
    n : int
    seed : int
    space : {"auto", "pca", "decoder"}
        ``pca``: a mixture in the PCA space of the run's pixels; ``decoder``: a mixture in the
        code space of the run's autoencoder, decoded (the run's steps must be image steps
        then ``autoencoder``); ``auto``: ``decoder`` where the run has such an autoencoder.

    Returns
    -------
    dict
        ``n``, ``side``, ``gray``, ``space``, ``components`` (of the mixture), ``pca_dims``
        (``pca``) or ``code_dims`` (``decoder``), ``images_read``, ``files``.
    """
    from imgclust.outdir import claim_out_dir
    from imgclust.run.result import load
    from imgclust.sources import open_source

    if int(n) < 1 or int(n) > 10_000:
        raise ConfigError(f"-n {n} must be in 1..10000")
    if space not in SPACES:
        raise ConfigError(f"--from {space!r}; valid: {', '.join(SPACES)}")
    names = ["generated.png", "generated.npy"]
    res = load(run_dir)
    at = decoder_step(res.steps_)
    if space == "decoder" and at is None:
        raise ConfigError(f"{run_dir}: the run has no autoencoder step on its pixels "
                          f"(steps: {', '.join(s for s, _ in res.steps_)}); use --from pca")
    claim_out_dir(out, "generate.json", "imgclust generate", names)
    src = open_source(res.summary["source"])
    rng = np.random.default_rng(seed)
    ids = list(res.ids)
    if len(ids) > MAX_IMAGES:
        ids = [ids[i] for i in sorted(rng.choice(len(ids), MAX_IMAGES, replace=False))]
    if at is not None and space != "pca":
        S, shape, info = _from_decoder(res.steps_, at, src, ids, int(n), seed)
        return _write(out, S, shape, info)
    first = src.read(ids[0])[1]
    side = min(GEN_SIDE, max(first.size))
    gray = all(r.mode in ("L", "1", "I", "I;16", "F") for r in res.records[:64])
    rows = []
    for i in ids:
        try:
            rows.append(_pixels(src.read(i)[1], side, gray))
        except Exception:  # noqa: BLE001 - a file gone since the run is left out
            continue
    X = np.stack(rows)
    pca, gm = fit_sampler(X, random_state=seed)
    S = sample(pca, gm, int(n), random_state=seed).astype(np.uint8)
    shape = (side, side) if gray else (side, side, 3)
    info = {"n": int(n), "side": side, "gray": gray, "space": "pca",
            "components": int(gm.n_components), "pca_dims": int(pca.n_components_),
            "images_read": len(rows), "seed": seed}
    return _write(out, S, shape, info)


def _from_decoder(steps: list[tuple[str, Any]], at: int, src: Any, ids: list[str], n: int,
                  seed: int) -> tuple[np.ndarray, tuple[int, ...], dict[str, Any]]:
    """Samples of a mixture in the autoencoder's code space, decoded to 8-bit images."""
    from imgclust.run.extract import transform_new

    ae = steps[at][1]
    imgs, kept = [], []
    for i in ids:
        try:
            imgs.append(src.read(i)[1])
            kept.append(i)
        except Exception:  # noqa: BLE001 - a file gone since the run is left out
            continue
    if not imgs:
        raise ConfigError("none of the run's images can be read now")
    _, rows = transform_new(steps[:at], [(kept, imgs)])
    d = rows.shape[1]
    shape3 = getattr(ae, "_shape", None)
    if shape3 is not None:
        c, h, w = (int(v) for v in shape3)
    else:
        c = 1 if round(d ** 0.5) ** 2 == d else 3
        h = w = int(round((d / c) ** 0.5))
    if c * h * w != d or c not in (1, 3):
        raise ConfigError(f"the autoencoder's {d} inputs are not one square image; use "
                          "--from pca")
    R, gm = sample_decoder(ae, ae.transform(rows), n, random_state=seed)
    lo, hi = float(rows.min()), float(rows.max())
    S = np.clip((R - lo) / ((hi - lo) or 1.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    shape = (h, w) if c == 1 else (h, w, 3)
    info = {"n": n, "side": h, "gray": c == 1, "space": "decoder",
            "components": int(gm.n_components), "code_dims": int(ae.n_components),
            "images_read": len(imgs), "seed": seed}
    return S, shape, info


def _write(out: str | Path, S: np.ndarray, shape: tuple[int, ...], info: dict[str, Any]
           ) -> dict[str, Any]:
    import io

    from imgclust.outdir import write_owned

    n, side, gray = len(S), shape[0], len(shape) == 2
    cols = int(np.ceil(np.sqrt(n)))
    grid = Image.new("L" if gray else "RGB", (cols * (side + 2), int(np.ceil(n / cols)) * (side + 2)),
                     255 if gray else (255, 255, 255))
    for j, row in enumerate(S):
        grid.paste(Image.fromarray(row.reshape(shape)), ((j % cols) * (side + 2) + 1,
                                                        (j // cols) * (side + 2) + 1))
    png, npy = io.BytesIO(), io.BytesIO()
    grid.resize((grid.width * 4, grid.height * 4), Image.Resampling.NEAREST).save(png, "PNG")
    np.save(npy, S.reshape((len(S), *shape)), allow_pickle=False)
    files = write_owned(out, "generate.json", "imgclust generate",
                        {"generated.png": png.getvalue(), "generated.npy": npy.getvalue()}, info)
    return {**info, "files": [str(f) for f in files]}
