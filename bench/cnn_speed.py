"""Speed of the ``cnn`` feature step: eager PyTorch against ONNX Runtime, same model, same input.

Both paths get the same random uint8 images already at the network's input size (so image
decoding and resizing are left out) and run the same module: ``build_torch_model`` in eager
PyTorch (``torch.inference_mode``, as many torch threads as cores) and the ONNX graph that
``CNNExtractor`` exports and caches, under a few ONNX Runtime session settings. Each
configuration is warmed up, then timed on ``--n`` images; the configurations are interleaved and
repeated (``--repeats``) because the machine is shared, and the median img/s is reported with
the load average. ``--int8`` also tries ONNX Runtime's dynamic int8 quantisation and reports
its cosine similarity to the fp32 features. The last line times the whole extractor on Pillow
images (resize included).

Usage::

    python bench/cnn_speed.py --sizes 224 128 --n 64 --repeats 3 [--int8]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    ap.add_argument("--n", type=int, default=64, help="images timed per configuration and repeat")
    ap.add_argument("--batch", type=int, default=64, help="images per call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--int8", action="store_true", help="also try dynamic int8 quantisation")
    ap.add_argument("--layer", default="head")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from imgclust.features.cnn import CNNExtractor, _n_cpus, build_torch_model, cached_onnx

    ncpu = _n_cpus()
    torch.set_num_threads(ncpu)
    rng = np.random.default_rng(0)
    print(f"cores={ncpu} torch={torch.__version__} onnxruntime={ort.__version__} "
          f"n={args.n} batch={args.batch} repeats={args.repeats} load={os.getloadavg()}")

    def session(path: Path, level: str, threads: int, mode: str = "sequential",
                spin: bool = True) -> ort.InferenceSession:
        so = ort.SessionOptions()
        if not spin:  # idle worker threads sleep instead of spinning (kinder to a shared CPU)
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.intra_op_num_threads = threads
        so.execution_mode = (ort.ExecutionMode.ORT_SEQUENTIAL if mode == "sequential"
                             else ort.ExecutionMode.ORT_PARALLEL)
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    for size in args.sizes:
        x = rng.integers(0, 256, (args.n, size, size, 3), dtype=np.uint8)
        batches = [x[i:i + args.batch] for i in range(0, args.n, args.batch)]
        model = build_torch_model(size, args.layer)
        path = cached_onnx(size, args.layer)
        runners = {}

        def eager(b: np.ndarray, threads: int = ncpu) -> np.ndarray:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                return model(torch.from_numpy(b)).numpy()

        runners["torch eager"] = eager
        runners["torch eager threads=1"] = lambda b: eager(b, 1)
        configs = [("ORT_ENABLE_ALL", ncpu, "sequential", True),
                   ("ORT_ENABLE_BASIC", ncpu, "sequential", True),
                   ("ORT_ENABLE_ALL", ncpu, "parallel", True),
                   ("ORT_ENABLE_ALL", ncpu, "sequential", False),
                   ("ORT_ENABLE_ALL", 1, "sequential", True)]
        for level, threads, mode, spin in configs:
            s = session(path, level, threads, mode, spin)
            name = f"ort {level[4:].lower()} threads={threads} {mode}{'' if spin else ' nospin'}"
            runners[name] = lambda b, s=s: s.run(None, {"images": b})[0]
        if args.int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic
            qdir = Path(tempfile.mkdtemp())
            qpath = qdir / "int8.onnx"
            quantize_dynamic(str(path), str(qpath), weight_type=QuantType.QInt8)
            sq = session(qpath, "ORT_ENABLE_ALL", ncpu)
            runners["ort int8 dynamic"] = lambda b, s=sq: s.run(None, {"images": b})[0]
            ref = runners["torch eager"](x[:16])
            q = runners["ort int8 dynamic"](x[:16])
            print(f"  size={size} int8 vs fp32 cosine: min {_cos(ref, q).min():.4f} "
                  f"mean {_cos(ref, q).mean():.4f}")
        ref = eager(x[:8])
        torch.set_num_threads(ncpu)
        for name, fn in runners.items():
            fn(x[:args.batch])  # warm-up (first call allocates and plans)
            if name.startswith("ort") and "int8" not in name:
                err = float(np.abs(fn(x[:8]) - ref).max())
                assert err < 1e-4, (name, err)
        rates: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(args.repeats):
            for name, fn in runners.items():
                t = time.perf_counter()
                for b in batches:
                    fn(b)
                rates[name].append(args.n / (time.perf_counter() - t))
        base = statistics.median(rates["torch eager"])
        print(f"size={size} load={tuple(round(v, 2) for v in os.getloadavg())}")
        for name, r in rates.items():
            med = statistics.median(r)
            print(f"  {name:44s} {med:7.1f} img/s  x{med / base:4.2f}   "
                  f"runs: {', '.join(f'{v:.1f}' for v in r)}")

        # the extractor end to end on Pillow images of another size (resize included)
        pil = [Image.fromarray(a).resize((size + 37, size + 11)) for a in x]
        ext = CNNExtractor(size=size, layer=args.layer, batch_size=args.batch)
        ext.fit_transform(pil[:args.batch])  # warm-up at the batch shape, as for the runners
        ext_rates = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            ext.transform(pil)
            ext_rates.append(args.n / (time.perf_counter() - t))
        print(f"  {'CNNExtractor.transform (PIL, resize incl.)':44s} "
              f"{statistics.median(ext_rates):7.1f} img/s  (not interleaved) "
              f"runs: {', '.join(f'{v:.1f}' for v in ext_rates)}")


if __name__ == "__main__":
    main()
