#!/usr/bin/env python3
"""Extra golden vectors for ONNX Runtime's HistogramCollector (op `calibrate`, format quant-vectors/1).

Run with a Python that has onnxruntime 1.32 and numpy 2.x (the `onnx` package is not needed: the
collector's module is loaded with stub `onnx` modules, since HistogramCollector never uses them):

    python gen_calibrate_extra.py            # writes calibrate_extra.jsonl and calibrate_multi_collect.jsonl

* calibrate_extra.jsonl: every case passes batch0..batchN to ONE collect() call, as a list, which
  ONNX Runtime flattens (exactly the semantics of tests/vectors/onnxruntime/calibrate.jsonl). The
  batches of a case have equal lengths: np.asarray() of a list of arrays of different lengths
  raises ValueError inside ONNX Runtime.
* calibrate_multi_collect.jsonl: attrs carry "collect": "per_batch"; each batch goes to its own
  collect() call, in order, before compute_collection_result() (ONNX Runtime then grows and re-bins
  its histograms; the result depends on the order of the batches).

Cases: the EntropyCalibrater defaults (128 bins, 128 quantized bins), 2048/128 and odd sizes,
non-symmetric and symmetric percentiles, distribution (same, p3), skewed, bimodal, ReLU-like,
heavy-tailed, coarse dyadic data that sits exactly on bin edges, degenerate data (zeros, constants,
one element, empty batches, huge and tiny magnitudes) and larger tensors.
"""
import ast
import contextlib
import importlib.util
import io
import json
import os
import sys
import types

import numpy as np

import onnxruntime

HERE = os.path.dirname(os.path.abspath(__file__))
QDIR = os.path.join(os.path.dirname(onnxruntime.__file__), "quantization")


def load_calibrate():
    """Loads onnxruntime/quantization/calibrate.py without the `onnx` package."""
    if "onnx" not in sys.modules:
        onnx = types.ModuleType("onnx")
        for name in ["ModelProto", "TensorProto"]:
            setattr(onnx, name, type(name, (), {}))
        for sub in ["helper", "numpy_helper"]:
            m = types.ModuleType("onnx." + sub)
            setattr(onnx, sub, m)
            sys.modules["onnx." + sub] = m
        sys.modules["onnx"] = onnx
    pkg = types.ModuleType("ortq")
    pkg.__path__ = []
    sys.modules["ortq"] = pkg
    qu = types.ModuleType("ortq.quant_utils")
    path = os.path.join(QDIR, "quant_utils.py")
    tree = ast.parse(open(path).read())
    fn = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "smooth_distribution"][0]
    qu.numpy = np
    exec(compile(ast.Module(body=[fn], type_ignores=[]), path, "exec"), qu.__dict__)  # the real code
    qu.apply_plot = lambda *a, **k: None
    qu.load_model_with_shape_infer = lambda *a, **k: None
    sys.modules["ortq.quant_utils"] = qu
    spec = importlib.util.spec_from_file_location("ortq.calibrate", os.path.join(QDIR, "calibrate.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ortq.calibrate"] = mod
    spec.loader.exec_module(mod)
    return mod


CAL = load_calibrate()
F32 = np.float32


def run(attrs, batches, per_batch):
    c = CAL.HistogramCollector(attrs["method"], attrs["symmetric"], attrs["num_bins"],
                               attrs["num_quantized_bins"], attrs["percentile"], attrs["scenario"])
    with contextlib.redirect_stdout(io.StringIO()):
        if per_batch:
            for b in batches:
                c.collect({"x": [b]})
        else:
            c.collect({"x": batches})
        r = c.compute_collection_result()["x"]
    if attrs["method"] == "distribution":
        out = {"avg": float(r.avg), "std": float(r.std)}
    else:
        out = {"min": float(r[0]), "max": float(r[1])}
    for k, v in out.items():
        if not np.isfinite(v):
            raise ValueError(f"non-finite output {k}={v}")
    return out


def attrs_of(method, symmetric=False, num_bins=2048, nqb=128, percentile=99.999, scenario="same"):
    return {"method": method, "symmetric": symmetric, "num_bins": num_bins, "num_quantized_bins": nqb,
            "percentile": percentile, "scenario": scenario}


def case(name, attrs, batches, per_batch=False):
    batches = [np.asarray(b, dtype=F32).reshape(-1) for b in batches]
    out = run(attrs, batches, per_batch)
    a = dict(attrs)
    if per_batch:
        a["collect"] = "per_batch"
    how = "one collect call per batch, in order" if per_batch else "all batches in one collect call"
    return {
        "format": "quant-vectors/1",
        "profile": "onnxruntime",
        "op": "calibrate",
        "name": name,
        "source": f"onnxruntime {onnxruntime.__version__} onnxruntime.quantization.calibrate.HistogramCollector ({how})",
        "attrs": a,
        "inputs": {f"batch{i}": {"dtype": "f32", "shape": [int(b.size)], "data": [float(v) for v in b]}
                   for i, b in enumerate(batches)},
        "outputs": {k: {"dtype": "f64", "shape": [1], "data": [v]} for k, v in out.items()},
        "tolerance": {"rel": 0.0001, "abs": 1e-06},
    }


def main():
    rng = np.random.default_rng(20260414)

    def normal(n, s=1.0, m=0.0):
        return (rng.standard_normal(n) * s + m).astype(F32)

    def laplace(n, b=1.0):
        return rng.laplace(0.0, b, n).astype(F32)

    def lognormal(n, s=1.0):
        return rng.lognormal(0.0, s, n).astype(F32)

    def relu(n, s=1.0):
        return np.maximum(normal(n, s), 0).astype(F32)

    def dyadic(n, lo, hi, step):
        # coarse values (multiples of a power of two): many sit exactly on bin edges
        k = rng.integers(int(lo / step), int(hi / step) + 1, n)
        return (k * step).astype(F32)

    def three(f, n, *a):
        return [f(n, *a), f(n, *a), f(n, *a)]

    one = []
    # entropy with the EntropyCalibrater defaults (one candidate: the observed [min, max])
    one.append(case("entropy_defaults_normal", attrs_of("entropy", num_bins=128), three(normal, 700)))
    one.append(case("entropy_defaults_lognormal", attrs_of("entropy", num_bins=128), three(lognormal, 500)))
    # entropy 2048 / 128 on varied shapes
    for name, bs in [
        ("entropy_2048_normal", three(normal, 1200, 3.0)),
        ("entropy_2048_laplace", three(laplace, 1200, 2.0)),
        ("entropy_2048_lognormal_skewed", three(lognormal, 1200, 1.2)),
        ("entropy_2048_relu", three(relu, 1200, 4.0)),
        ("entropy_2048_bimodal", [normal(1500, 0.5, -4.0), normal(1500, 0.5, 3.0), normal(1500, 2.0)]),
        ("entropy_2048_outlier", [normal(1200), normal(1200), np.append(normal(1199), F32(90.0))]),
        ("entropy_2048_dyadic", [dyadic(1200, -8, 8, 0.125), dyadic(1200, -4, 4, 0.25), dyadic(1200, -1, 1, 0.0625)]),
    ]:
        one.append(case(name, attrs_of("entropy"), bs))
    one.append(case("entropy_1001_odd_bins", attrs_of("entropy", num_bins=1001, nqb=128), three(laplace, 1500)))
    one.append(case("entropy_2048_odd_quantized", attrs_of("entropy", num_bins=2048, nqb=255), three(normal, 1200, 0.1)))
    one.append(case("entropy_512_64", attrs_of("entropy", num_bins=512, nqb=64), three(laplace, 1000, 0.01)))
    one.append(case("entropy_256_256", attrs_of("entropy", num_bins=256, nqb=256), three(normal, 800)))
    # percentile, not symmetric
    for p, nb, bs, tag in [
        (99.999, 2048, three(normal, 1200, 5.0), "normal"),
        (99.9, 2048, three(lognormal, 1200, 1.5), "lognormal"),
        (99.0, 1024, three(laplace, 1200), "laplace"),
        (95.0, 512, [normal(1000, 1.0, 3.0), normal(1000, 1.0, 3.5), normal(1000, 0.5, 2.0)], "shifted"),
        (99.99, 2048, three(relu, 1500), "relu"),
    ]:
        one.append(case(f"percentile_asym_{str(p).replace('.', '_')}_{nb}_{tag}", attrs_of("percentile", False, nb, 128, p), bs))
    # percentile, symmetric (|x| histogram over [min |x|, max |x|], clamped to the observed range)
    for p, nb, bs, tag in [
        (99.999, 2048, three(lognormal, 1200), "lognormal"),
        (99.99, 1024, [normal(1200, 1.0, 5.0), normal(1200, 1.0, 6.0), normal(1200, 1.0, 7.0)], "positive_shift"),
        (50.0, 2048, three(laplace, 1000), "median"),
        (100.0, 128, three(normal, 500), "p100"),
        (99.9, 2048, [dyadic(1200, -6, 6, 0.5), dyadic(1200, -6, 6, 0.5), dyadic(1200, -6, 6, 0.5)], "dyadic"),
    ]:
        one.append(case(f"percentile_sym_{str(p).replace('.', '_')}_{nb}_{tag}", attrs_of("percentile", True, nb, 128, p), bs))
    # distribution
    one.append(case("distribution_same_512", attrs_of("distribution", num_bins=512), three(normal, 1500, 2.0, 0.5)))
    one.append(case("distribution_p3_2048", attrs_of("distribution", num_bins=2048, scenario="p3"), three(laplace, 1500, 3.0)))
    one.append(case("distribution_p3_1024_skewed", attrs_of("distribution", num_bins=1024, scenario="p3"), three(lognormal, 1000)))
    # degenerate data
    zeros = [np.zeros(4, F32)] * 3
    const = [np.full(3, 3.0, F32)] * 3
    negc = [np.full(3, -2.5, F32)] * 3
    single = [np.array([1.75], F32)] * 3
    empty = [np.zeros(0, F32)] * 3
    twov = [np.array([-1.0, 4.0], F32), np.array([4.0, -1.0], F32), np.array([-1.0, -1.0], F32)]
    huge = three(normal, 300, 1e30)
    tiny = three(normal, 300, 1e-30)
    for tag, bs in [("zeros", zeros), ("const", const), ("neg_const", negc), ("single", single),
                    ("empty", empty), ("two_values", twov), ("huge", huge), ("tiny", tiny)]:
        one.append(case(f"degenerate_entropy_{tag}", attrs_of("entropy", num_bins=512), bs))
        one.append(case(f"degenerate_percentile_sym_{tag}", attrs_of("percentile", True, 128, 128, 99.999), bs))
        one.append(case(f"degenerate_percentile_asym_{tag}", attrs_of("percentile", False, 128, 128, 99.999), bs))
        if tag not in ("empty", "huge", "tiny"):  # ORT gives NaN (0/0; float32 over- or underflow of v**2)
            one.append(case(f"degenerate_distribution_{tag}", attrs_of("distribution", num_bins=512), bs))
    # larger tensors
    one.append(case("large_entropy_2048_normal", attrs_of("entropy"), three(normal, 8000, 2.0)))
    one.append(case("large_percentile_asym_2048_laplace", attrs_of("percentile", False, 2048, 128, 99.99), three(laplace, 5000)))

    multi = []
    for name, attrs, bs in [
        ("multi_entropy_growing", attrs_of("entropy"), [normal(1500, 1.0), normal(1500, 3.0), normal(1500, 10.0)]),
        ("multi_entropy_shrinking", attrs_of("entropy"), [normal(1500, 10.0), normal(1500, 3.0), normal(1500, 1.0)]),
        ("multi_entropy_zeros_first", attrs_of("entropy", num_bins=512), [np.zeros(10, F32), normal(1000), normal(1000, 2.0)]),
        ("multi_entropy_empty_first", attrs_of("entropy", num_bins=512), [np.zeros(0, F32), laplace(1000), laplace(1000, 4.0)]),
        ("multi_entropy_defaults", attrs_of("entropy", num_bins=128), [normal(500), normal(500, 5.0), lognormal(500)]),
        ("multi_percentile_sym_growing", attrs_of("percentile", True, 2048, 128, 99.99), [lognormal(1500, 0.5), lognormal(1500, 1.0), lognormal(1500, 1.5)]),
        ("multi_percentile_sym_drops_small", attrs_of("percentile", True, 1024, 128, 99.9), [normal(1000, 1.0, 5.0), normal(1000), normal(1000, 2.0, 6.0)]),
        ("multi_percentile_sym_empty_first", attrs_of("percentile", True, 256, 128, 99.9), [np.zeros(0, F32), normal(800, 0.3), normal(800)]),
        ("multi_percentile_asym_growing", attrs_of("percentile", False, 2048, 128, 99.9), [laplace(1500, 0.5), laplace(1500, 2.0), laplace(1500, 1.0)]),
        ("multi_distribution_growing", attrs_of("distribution", num_bins=1024), [normal(1000, 1.0), normal(1000, 4.0, 1.0), normal(1000, 2.0)]),
        # an empty later batch still brings min = max = 0 into ONNX Runtime's observed range
        ("multi_entropy_empty_last", attrs_of("entropy", num_bins=512), [lognormal(800), lognormal(800), np.zeros(0, F32)]),
        ("multi_percentile_asym_empty_last", attrs_of("percentile", False, 256, 128, 99.9), [normal(600, 1.0, 4.0), np.zeros(0, F32)]),
        ("multi_distribution_empty_middle", attrs_of("distribution", num_bins=512), [normal(600, 1.0, 4.0), np.zeros(0, F32), normal(600, 2.0)]),
    ]:
        multi.append(case(name, attrs, bs, per_batch=True))

    for fname, cases in [("calibrate_extra.jsonl", one), ("calibrate_multi_collect.jsonl", multi)]:
        with open(os.path.join(HERE, fname), "w") as f:
            for c in cases:
                f.write(json.dumps(c, separators=(",", ":")) + "\n")
        print(f"{fname}: {len(cases)} cases")


if __name__ == "__main__":
    main()
