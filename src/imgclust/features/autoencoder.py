"""An autoencoder trained on the user's own images (PyTorch, CPU): its bottleneck is the feature.

Two architectures:

- ``kind="dense"``: fully connected, ``n_features -> hidden... -> n_components`` and back, ReLU
  between layers. ``hidden=(500, 500, 2000)`` is the N2D / DEC architecture; the default
  ``(256, 64)`` trains in seconds on CPU; ``hidden=(36,)`` with ``n_components=36`` is close to a
  one-layer autoencoder.
- ``kind="conv"``: two stride-2 convolutions (32 and 64 channels), a linear bottleneck, and a
  mirrored decoder (upsampling + convolutions). It reads flattened square images of one or three
  channels (what ``pixels`` gives); the side is inferred from ``n_features`` or given as
  ``image_shape``.

Training: Adam on the mean squared reconstruction error of the inputs (centred per feature and
scaled by one global standard deviation), with early stopping on a held-out share; the weights of
the best epoch are kept. torch is imported on first use; without it, the step names the extra to
install (``pip install "imgclust[autoencoder]"``).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from imgclust.errors import MissingExtraError
from imgclust.features.registry import FEATURES

KINDS = ("dense", "conv")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("the 'autoencoder' feature step", "autoencoder") from exc
    return torch


def parse_hidden(hidden: int | str | Sequence[int]) -> tuple[int, ...]:
    """Hidden layer sizes from a tuple, an int or a string such as ``"500-500-2000"``.

    A string is what a feature spec can carry (``autoencoder:10:hidden=500-500-2000``), since
    ``,`` and ``:`` already separate steps and parameters there.

    Examples
    --------
    >>> parse_hidden("500-500-2000")
    (500, 500, 2000)
    >>> parse_hidden(64)
    (64,)
    """
    if isinstance(hidden, str):
        parts = [p for p in hidden.replace("x", "-").replace(" ", "-").split("-") if p]
        try:
            sizes = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"hidden={hidden!r} must be layer sizes such as '500-500-2000'") from None
    elif isinstance(hidden, (int, np.integer)):
        sizes = (int(hidden),)
    else:
        sizes = tuple(int(h) for h in hidden)
    if any(s < 1 for s in sizes):
        raise ValueError(f"hidden={hidden!r}: every layer size must be positive")
    return sizes


def infer_image_shape(n_features: int, image_shape: Any = None) -> tuple[int, int, int]:
    """(channels, height, width) of flattened images of ``n_features`` values.

    ``image_shape`` may be given as ``(height, width)``, ``(height, width, channels)`` or a string
    ``"28x28"`` / ``"32x32x3"`` (channels last, as ``pixels`` flattens them). Otherwise the images
    must be square with one channel (``n_features = side**2``) or three (``3 * side**2``).
    """
    if image_shape is not None:
        if isinstance(image_shape, str):
            try:
                dims = tuple(int(p) for p in image_shape.lower().split("x"))
            except ValueError:
                raise ValueError(f"image_shape={image_shape!r} must look like '28x28' or "
                                 "'32x32x3'") from None
        else:
            dims = tuple(int(d) for d in image_shape)
        if len(dims) == 2:
            dims = dims + (1,)
        if len(dims) != 3 or dims[0] * dims[1] * dims[2] != n_features:
            raise ValueError(f"image_shape={image_shape!r} does not hold the {n_features} "
                             "features of each row")
        return dims[2], dims[0], dims[1]
    for channels in (1, 3):
        side = math.isqrt(n_features // channels)
        if side * side * channels == n_features and side >= 4:
            return channels, side, side
    raise ValueError(f"kind='conv' needs square images of 1 or 3 channels, but {n_features} "
                     "features per row is neither side**2 nor 3*side**2 (side >= 4); "
                     "give image_shape, e.g. image_shape=32x24")


def _build(torch: Any, kind: str, n_features: int, dim: int, hidden: tuple[int, ...],
           shape: tuple[int, int, int] | None) -> tuple[Any, Any]:
    """Encoder and decoder modules."""
    nn = torch.nn
    if kind == "dense":
        sizes = (n_features, *hidden, dim)
        enc: list[Any] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            enc.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                enc.append(nn.ReLU())
        rev = sizes[::-1]
        dec: list[Any] = []
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
            dec.append(nn.Linear(a, b))
            if i < len(rev) - 2:
                dec.append(nn.ReLU())
        return nn.Sequential(*enc), nn.Sequential(*dec)
    c, h, w = shape  # type: ignore[misc]
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    h4, w4 = (h2 + 1) // 2, (w2 + 1) // 2
    width = hidden[0] if hidden else 32
    enc_m = nn.Sequential(
        nn.Unflatten(1, (c, h, w)),
        nn.Conv2d(c, width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * width * h4 * w4, dim))
    dec_m = nn.Sequential(
        nn.Linear(dim, 2 * width * h4 * w4), nn.ReLU(), nn.Unflatten(1, (2 * width, h4, w4)),
        nn.Upsample(size=(h2, w2), mode="nearest"),
        nn.Conv2d(2 * width, width, 3, padding=1), nn.ReLU(),
        nn.Upsample(size=(h, w), mode="nearest"),
        nn.Conv2d(width, c, 3, padding=1), nn.Flatten())
    return enc_m, dec_m


class AutoencoderFeatures(TransformerMixin, BaseEstimator):
    """Bottleneck features of an autoencoder trained on the images being clustered.

    An autoencoder is a neural network trained to reproduce its input through a narrow middle
    layer; that layer's n_components values (the bottleneck) are each image's features. Needs
    the ``autoencoder`` extra (torch).

    Parameters
    ----------
    n_components : int, default=10
        Size of the bottleneck: the number of output features.
    kind : {"dense", "conv"}, default="dense"
        Fully connected layers, or a small convolutional network on square images.
    hidden : tuple of int or str, default=(256, 64)
        Dense: the encoder's hidden layer sizes (the decoder mirrors them), e.g.
        ``"500-500-2000"`` for N2D's network. Conv: the first layer's channel count is
        ``hidden[0]`` when given as a single value (default 32 for conv).
    image_shape : str or tuple, optional
        For ``kind="conv"``: ``"HxW"`` or ``"HxWxC"``; inferred for square images otherwise.
    max_epochs : int, default=100
    patience : int, default=5
        Stop after this many epochs without an improvement larger than ``tol``.
    tol : float, default=1e-4
        Smallest decrease of the monitored loss that counts as an improvement.
    validation_fraction : float, default=0.1
        Share of rows held out to monitor the loss for early stopping. ``0`` monitors the
        training loss instead (all rows are used for training).
    batch_size : int, default=256
    learning_rate : float, default=1e-3
        Adam's step size.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the hold-out split and the batch order; an int makes ``fit``
        repeatable in the same environment.
    n_threads : int or None, default=1
        Torch CPU threads while fitting and transforming (``None``: torch's own setting). One
        thread is the default: these networks are small, and on a busy machine OpenMP threads
        that wait for each other made an epoch 30 times slower (measured: 0.14 s vs 4 s per
        epoch of the digits on 2 loaded cores); it also keeps results the same across machines.
    progress : bool or None, default=None
        Progress bar over the epochs on stderr; ``None`` shows it only on a terminal.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained autoencoder (``model_[0]`` encodes, ``model_[1]`` decodes).
    history_ : list of dict
        Per epoch: ``epoch``, ``loss`` (training) and ``val_loss`` (or None).
    n_epochs_ : int
        Epochs run (fewer than ``max_epochs`` when early stopping stopped training).
    best_epoch_ : int
        The epoch whose weights were kept.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).random((64, 16)).astype("float32")
    >>> ae = AutoencoderFeatures(n_components=3, max_epochs=2, random_state=0)
    >>> ae.fit_transform(X).shape
    (64, 3)
    """

    def __init__(self, n_components: int = 10, kind: str = "dense",
                 hidden: int | str | Sequence[int] = (256, 64), image_shape: Any = None,
                 max_epochs: int = 100, patience: int = 5, tol: float = 1e-4,
                 validation_fraction: float = 0.1, batch_size: int = 256,
                 learning_rate: float = 1e-3,
                 random_state: int | np.random.RandomState | None = None,
                 n_threads: int | None = 1, progress: bool | None = None) -> None:
        self.n_components = n_components
        self.kind = kind
        self.hidden = hidden
        self.image_shape = image_shape
        self.max_epochs = max_epochs
        self.patience = patience
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.n_threads = n_threads
        self.progress = progress

    # -- validation -------------------------------------------------------------------------
    def _check_params(self, n_features: int) -> None:
        self._validate_params_()
        default_hidden = (32,) if self.kind == "conv" and self.hidden == (256, 64) else self.hidden
        self._hidden = parse_hidden(default_hidden)
        self._shape = infer_image_shape(n_features, self.image_shape) if self.kind == "conv" \
            else None

    def _validate_params_(self) -> None:
        """Check the parameters that need no data (the image shape is checked by fit)."""
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}; valid: {', '.join(KINDS)}")
        if not isinstance(self.n_components, (int, np.integer)) or self.n_components < 1:
            raise ValueError(f"n_components={self.n_components!r} must be a positive integer")
        for name in ("max_epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}={v!r} must be a positive integer")
        if not isinstance(self.patience, (int, np.integer)) or self.patience < 1:
            raise ValueError(f"patience={self.patience!r} must be a positive integer")
        for name in ("validation_fraction", "learning_rate", "tol"):
            v = getattr(self, name)
            if isinstance(v, (bool, str)) or not isinstance(v, (int, float, np.number)):
                raise ValueError(f"{name}={v!r} must be a number")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError(f"validation_fraction={self.validation_fraction!r} must be in [0, 1)")
        if float(self.learning_rate) <= 0 or float(self.tol) < 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} must be > 0 and "
                             f"tol={self.tol!r} >= 0")
        if self.n_threads is not None and int(self.n_threads) < 1:
            raise ValueError(f"n_threads={self.n_threads!r} must be a positive integer or None")
        parse_hidden(self.hidden)

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "AutoencoderFeatures":
        """Train on ``X`` of shape (n_images, n_features); ``y`` is ignored."""
        self._fit(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Train on ``X`` and return its bottleneck features, shape (n_images, n_components)."""
        return self._fit(X).transform(X)

    def _fit(self, X: Any) -> "AutoencoderFeatures":
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=2)
        n, d = X.shape
        self._check_params(d)
        torch = _torch()
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        self.mean_ = X.mean(axis=0)
        std = float((X - self.mean_).std())
        self.scale_ = std if std > 0 else 1.0
        Z = self._to_model((X - self.mean_) / self.scale_)
        n_val = int(round(n * float(self.validation_fraction)))
        n_val = n_val if n - n_val >= 1 and n_val >= 1 else 0
        order = rng.permutation(n)
        val_idx, train_idx = order[:n_val], order[n_val:]
        with _threads(torch, self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            enc, dec = _build(torch, self.kind, d, int(self.n_components), self._hidden,
                              self._shape)
            model = torch.nn.Sequential(enc, dec)
            self._train(torch, model, torch.from_numpy(Z[train_idx]),
                        torch.from_numpy(Z[val_idx]) if n_val else None, rng)
        self.model_ = model.eval()
        return self

    def _train(self, torch: Any, model: Any, train: Any, val: Any, rng: np.random.RandomState
               ) -> None:
        opt = torch.optim.Adam(model.parameters(), lr=float(self.learning_rate))
        loss_fn = torch.nn.MSELoss()
        bs = int(self.batch_size)
        best, best_state, best_epoch, stale = math.inf, None, 0, 0
        self.history_: list[dict[str, Any]] = []
        epochs = range(1, int(self.max_epochs) + 1)
        bar = None
        if self.progress is not False:
            from tqdm.auto import tqdm

            # disable=None: tqdm shows the bar only when stderr is a terminal
            bar = tqdm(epochs, desc=f"autoencoder ({self.kind})", unit="epoch", leave=False,
                       disable=None if self.progress is None else False)
            epochs = bar
        for epoch in epochs:
            model.train()
            perm = torch.from_numpy(rng.permutation(len(train)))
            total = 0.0
            for start in range(0, len(train), bs):
                batch = train[perm[start:start + bs]]
                opt.zero_grad()
                loss = loss_fn(model(batch), batch)
                loss.backward()
                opt.step()
                total += loss.item() * len(batch)
            train_loss = total / len(train)
            val_loss = None
            if val is not None:
                model.eval()
                with torch.no_grad():
                    val_loss = sum(float(loss_fn(model(val[s:s + bs]), val[s:s + bs]))
                                   * len(val[s:s + bs]) for s in range(0, len(val), bs)) / len(val)
            self.history_.append({"epoch": epoch, "loss": train_loss, "val_loss": val_loss})
            watched = val_loss if val_loss is not None else train_loss
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val_loss:.4f}" if val_loss else "-")
            if watched < best - float(self.tol):
                best, best_epoch, stale = watched, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= int(self.patience):
                    break
        if bar is not None:
            bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        self.n_epochs_ = len(self.history_)
        self.best_epoch_ = best_epoch or self.n_epochs_

    # -- use ----------------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Bottleneck features of ``X``: array of shape (n_images, n_components), float32."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        torch = _torch()
        Z = torch.from_numpy(self._to_model((X - self.mean_) / self.scale_))
        encoder = self.model_[0]
        out = []
        with _threads(torch, self.n_threads), torch.no_grad():
            for s in range(0, len(Z), 1024):
                out.append(encoder(Z[s:s + 1024]).numpy())
        if not out:
            return np.zeros((0, int(self.n_components)), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def reconstruct(self, X: Any) -> np.ndarray:
        """Decoded reconstructions of ``X``, in the units of ``X``; shape (n_images, n_features)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        torch = _torch()
        with _threads(torch, self.n_threads), torch.no_grad():
            R = self.model_(torch.from_numpy(self._to_model((X - self.mean_) / self.scale_)))
        return self._from_model(R.numpy()) * self.scale_ + self.mean_

    def decode(self, Z: Any) -> np.ndarray:
        """Decoder outputs of bottleneck codes ``Z`` of shape (n, n_components), in the units
        of the training ``X``: shape (n, n_features_in_)."""
        check_is_fitted(self, "model_")
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != int(self.n_components):
            raise ValueError(f"codes of shape {Z.shape}; expected (n, {self.n_components})")
        torch = _torch()
        with _threads(torch, self.n_threads), torch.no_grad():
            R = self.model_[1](torch.from_numpy(np.ascontiguousarray(Z))).numpy()
        return self._from_model(R) * self.scale_ + self.mean_

    # -- saving: the network as arrays (a run directory's model.npz holds data only) ---------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        model = state.pop("model_", None)
        if model is not None:
            state["model_state_"] = {k: v.detach().cpu().numpy()
                                     for k, v in model.state_dict().items()}
        return state

    def __getattr__(self, name: str) -> Any:
        # a reloaded step rebuilds its network from the saved arrays on first use
        if name == "model_" and "model_state_" in self.__dict__:
            torch = _torch()
            shape = self.__dict__.get("_shape")
            enc, dec = _build(torch, self.kind, int(self.n_features_in_), int(self.n_components),
                              tuple(self.__dict__.get("_hidden", ())),
                              tuple(shape) if shape is not None else None)
            model = torch.nn.Sequential(enc, dec)
            model.load_state_dict({k: torch.from_numpy(np.array(v))
                                   for k, v in self.__dict__["model_state_"].items()})
            self.__dict__["model_"] = model.eval()
            return self.__dict__["model_"]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _to_model(self, Z: np.ndarray) -> np.ndarray:
        """Rows as the network reads them: colour images channels-last -> channels-first."""
        if self._shape is None or self._shape[0] == 1:
            return np.ascontiguousarray(Z, dtype=np.float32)
        c, h, w = self._shape
        return np.ascontiguousarray(Z.reshape(-1, h, w, c).transpose(0, 3, 1, 2)
                                    .reshape(len(Z), -1), dtype=np.float32)

    def _from_model(self, Z: np.ndarray) -> np.ndarray:
        if self._shape is None or self._shape[0] == 1:
            return Z
        c, h, w = self._shape
        return Z.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(len(Z), -1)

    def __sklearn_tags__(self) -> Any:  # features are float32 whatever the input dtype
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``autoencoder0``, ``autoencoder1``, …"""
        check_is_fitted(self, "model_")
        return np.array([f"autoencoder{i}" for i in range(int(self.n_components))], dtype=object)


class _threads:
    """Temporarily set torch's CPU thread count (no-op for ``None``)."""

    def __init__(self, torch: Any, n: int | None) -> None:
        self.torch, self.n, self.old = torch, n, None

    def __enter__(self) -> None:
        if self.n is not None:
            self.old = self.torch.get_num_threads()
            self.torch.set_num_threads(int(self.n))

    def __exit__(self, *exc: Any) -> None:
        if self.old is not None:
            self.torch.set_num_threads(self.old)


FEATURES.add("autoencoder", AutoencoderFeatures, primary="n_components", input="array")
