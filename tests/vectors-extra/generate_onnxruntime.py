#!/usr/bin/env python3
"""Dev-time tool: records extra ONNX Runtime golden vectors (quant-vectors/1) for edge cases.

Not run by the tests or CI: its output is committed under tests/vectors-extra/onnxruntime/ and
replayed by tests/golden_vectors.rs and `quantproof verify-vectors tests/vectors-extra`. Re-run it
only to regenerate (the seed is fixed, so the output is reproducible for one ONNX Runtime build):

    PYTHONPATH=<dir with the onnx package> /work/venv/bin/python \
        tests/vectors-extra/generate_onnxruntime.py tests/vectors-extra

Needs numpy, onnxruntime (1.32 was used) and onnx (for onnx.helper; `pip install --target DIR
onnx ml_dtypes` and put DIR on PYTHONPATH if the environment lacks it).

Every output is computed by ONNX Runtime itself, never by this script:

* quantize / dequantize: QuantizeLinear / DequantizeLinear (opset 21) through an
  onnxruntime.InferenceSession on the CPU provider: per-tensor and per-axis on every axis of
  ranks 1 to 4 (negative axes too), rank 0, zero-size dimensions, tensors large enough for the
  vectorized kernels, ties of x / scale, saturation, subnormal and huge scales.
* dynamic_quantize: DynamicQuantizeLinear (opset 11): one-signed data, a single element, exact
  ties, tiny, subnormal and huge ranges.
* choose_qparams: onnxruntime.quantization.quant_utils.compute_scale_zp with the (qmin, qmax)
  arrays ONNX Runtime itself uses (ONNX_INT_TYPE_RANGE and friends): zero range, ranges around
  the f32 `tiny` threshold, rmin > 0, rmax < 0, symmetric, min_real_range, ties of the zero point.

Cases whose framework output cannot be written in the format (an infinite scale, for example) are
left out, and so are known differences between ONNX Runtime and the reference; those are listed
by --known-differences (written to a separate directory, never committed as passing vectors).
"""

import argparse
import json
import os
import platform

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as TP
from onnx import helper
from onnxruntime.quantization import quant_utils as qu

SEED = 20260511
FORMAT = "quant-vectors/1"
ORT = f"onnxruntime {ort.__version__}"

DTYPES = {"i8": (np.int8, TP.INT8, -128, 127), "u8": (np.uint8, TP.UINT8, 0, 255)}


def f32(v):
    return [float(x) for x in np.asarray(v, dtype=np.float32).ravel()]


def tensor(dtype, arr):
    arr = np.asarray(arr)
    if dtype in ("f32", "f64"):
        data = [float(x) for x in arr.ravel()]
        if not all(np.isfinite(data)):
            raise ValueError("not finite")
    else:
        data = [int(x) for x in arr.ravel()]
    return {"dtype": dtype, "shape": [int(d) for d in arr.shape], "data": data}


def case(op, name, source, attrs, inputs, outputs):
    return {
        "format": FORMAT,
        "profile": "onnxruntime",
        "op": op,
        "name": name,
        "source": f"{ORT} {source}",
        "attrs": attrs,
        "inputs": inputs,
        "outputs": outputs,
    }


def session(nodes, inputs, outputs, opset):
    g = helper.make_graph(nodes, "g", inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def vi(name, elem):
    return helper.make_tensor_value_info(name, elem, None)


def ort_quantize(x, scale, zp, dtype, axis):
    np_t, tp, _, _ = DTYPES[dtype]
    attrs = {} if axis is None else {"axis": axis}
    s = session(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], **attrs)],
        [vi("x", TP.FLOAT), vi("s", TP.FLOAT), vi("z", tp)],
        [vi("y", tp)],
        21,
    )
    shape = () if axis is None else (len(scale),)
    feeds = {"x": x, "s": np.array(scale, np.float32).reshape(shape), "z": np.array(zp, np_t).reshape(shape)}
    return s.run(None, feeds)[0]


def ort_dequantize(q, scale, zp, dtype, axis):
    np_t, tp, _, _ = DTYPES[dtype]
    attrs = {} if axis is None else {"axis": axis}
    s = session(
        [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], **attrs)],
        [vi("x", tp), vi("s", TP.FLOAT), vi("z", tp)],
        [vi("y", TP.FLOAT)],
        21,
    )
    shape = () if axis is None else (len(scale),)
    feeds = {"x": q, "s": np.array(scale, np.float32).reshape(shape), "z": np.array(zp, np_t).reshape(shape)}
    return s.run(None, feeds)[0]


def ort_dynamic(x):
    s = session(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])],
        [vi("x", TP.FLOAT)],
        [vi("y", TP.UINT8), vi("s", TP.FLOAT), vi("z", TP.UINT8)],
        11,
    )
    return s.run(None, {"x": x})


class Gen:
    def __init__(self):
        self.rng = np.random.default_rng(SEED)
        self.cases = {}
        self.known = []

    def add(self, op, c):
        self.cases.setdefault(op, []).append(c)

    # -- data ---------------------------------------------------------------------------------

    def scales(self, n, lo=1e-3, hi=2.0):
        return np.exp(self.rng.uniform(np.log(lo), np.log(hi), n)).astype(np.float32)

    def zero_points(self, n, dtype, extremes=False):
        _, _, qmin, qmax = DTYPES[dtype]
        z = self.rng.integers(qmin, qmax + 1, n)
        if extremes and n:
            z[self.rng.integers(0, n)] = qmin if self.rng.random() < 0.5 else qmax
        return z

    def x_for(self, shape, scale_per_elem):
        """Values spread over the code range, with exact near-ties, saturating values and -0.0."""
        n = int(np.prod(shape, dtype=np.int64))
        s = np.broadcast_to(scale_per_elem, shape).ravel().astype(np.float64)
        x = self.rng.normal(0, 70, n) * s
        k = self.rng.integers(-140, 140, n)
        ties = self.rng.random(n) < 0.3
        x[ties] = (k[ties] + 0.5) * s[ties]
        if n >= 8:
            idx = self.rng.choice(n, 4, replace=False)
            x[idx] = [3.0e38, -3.0e38, -0.0, 1e-45]
        return x.astype(np.float32).reshape(shape)

    def shape(self, rank, max_dim=6):
        return tuple(int(d) for d in self.rng.integers(1, max_dim + 1, rank))

    # -- QuantizeLinear / DequantizeLinear ----------------------------------------------------

    def quant_pair(self, tag, shape, dtype, axis, scale, zp, x=None, q=None):
        """Records a quantize case (x -> y) and a dequantize case (y or q -> x^)."""
        np_t, _, qmin, qmax = DTYPES[dtype]
        if axis is None:
            bshape = ()
        else:
            bshape = [1] * len(shape)
            bshape[axis] = len(scale)
        s_el = np.asarray(scale, np.float32).reshape(bshape)
        attrs = {
            "scale": f32(scale),
            "zero_point": [int(v) for v in np.asarray(zp).ravel()],
            "axis": axis,
            "dtype": dtype,
            "qmin": qmin,
            "qmax": qmax,
        }
        if x is None:
            x = self.x_for(shape, s_el)
        y = ort_quantize(x, scale, zp, dtype, axis)
        self.add(
            "quantize",
            case("quantize", f"QuantizeLinear_{tag}", "QuantizeLinear opset 21", attrs,
                 {"x": tensor("f32", x)}, {"y": tensor(dtype, y)}),
        )
        if q is None:
            q = y if y.size > 0 else np.zeros(shape, np_t)
            if q.size >= 4:
                # Every code somewhere, not only those quantize produced.
                q = self.rng.integers(qmin, qmax + 1, q.shape).astype(np_t)
        try:
            xd = ort_dequantize(q, scale, zp, dtype, axis)
            self.add(
                "dequantize",
                case("dequantize", f"DequantizeLinear_{tag}", "DequantizeLinear opset 21", attrs,
                     {"x": tensor(dtype, q)}, {"y": tensor("f32", xd)}),
            )
        except ValueError:
            pass  # an infinite product: not expressible

    def quantize_cases(self):
        i = 0
        for dtype in ("i8", "u8"):
            # Per-tensor, ranks 0 to 4.
            for rank in range(5):
                shp = self.shape(rank)
                self.quant_pair(f"{dtype}_t_r{rank}_{i}", shp, dtype, None, self.scales(1), self.zero_points(1, dtype, True))
                i += 1
            # Per-axis on every axis of ranks 1 to 4, given positive and negative.
            for rank in range(1, 5):
                for axis in range(rank):
                    shp = self.shape(rank)
                    a = axis if (i % 2 == 0) else axis - rank
                    c = shp[axis]
                    self.quant_pair(f"{dtype}_a{a}_r{rank}_{i}", shp, dtype, a, self.scales(c), self.zero_points(c, dtype, True))
                    i += 1
            # Large enough for the vectorized kernels, with odd tails.
            shp = (37, 67)
            self.quant_pair(f"{dtype}_t_big_{i}", shp, dtype, None, self.scales(1), self.zero_points(1, dtype)); i += 1
            self.quant_pair(f"{dtype}_a0_big_{i}", shp, dtype, 0, self.scales(37), self.zero_points(37, dtype)); i += 1
            self.quant_pair(f"{dtype}_a1_big_{i}", shp, dtype, -1, self.scales(67), self.zero_points(67, dtype)); i += 1
            self.quant_pair(f"{dtype}_a1_r3_big_{i}", (5, 19, 23), dtype, 1, self.scales(19), self.zero_points(19, dtype)); i += 1
            # Zero-size dimensions, per-tensor and per-axis (also along the empty axis).
            for shp, axis in (((0,), None), ((3, 0), None), ((0, 4), 1), ((2, 0, 3), -1), ((3, 0), -1), ((0, 2), 0)):
                c = 1 if axis is None else shp[axis]
                self.quant_pair(f"{dtype}_zero_size_{i}", shp, dtype, axis, self.scales(max(c, 0)) if c else np.zeros(0, np.float32),
                                self.zero_points(c, dtype))
                i += 1
            # Edge scales: subnormal, smallest normal, huge; zero points at the ends.
            _, _, qmin, qmax = DTYPES[dtype]
            for scale in (1e-40, 1.1754944e-38, 1e-30, 1e30, 3.0e38):
                s = np.array([scale], np.float32)
                x = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 1.0, -1.0, 1e30, -1e30, 3.0e38, -3.0e38,
                              scale * 0.5, -scale * 0.5, scale * 1.5, -scale * 2.5, scale * 126.5, -scale * 127.5],
                             np.float64)
                x = x[np.abs(x) <= np.finfo(np.float32).max].astype(np.float32)
                for z in (qmin, qmax, (qmin + qmax) // 2):
                    q = np.arange(qmin, qmax + 1).astype(DTYPES[dtype][0]) if scale < 1e36 else None
                    self.quant_pair(f"{dtype}_scale_{scale:g}_z{z}_{i}", x.shape, dtype, None, s, np.array([z]), x=x, q=q)
                    i += 1
            # Every code, exhaustively, through dequantize (and every tie k + 0.5 through quantize).
            s = self.scales(1, 0.01, 0.1)
            z = self.zero_points(1, dtype)
            k = np.arange(qmin - 3, qmax + 3, dtype=np.float64)
            x = np.concatenate([k * s[0], (k + 0.5) * s[0]]).astype(np.float32)
            self.quant_pair(f"{dtype}_all_codes_{i}", x.shape, dtype, None, s, z, x=x,
                            q=np.arange(qmin, qmax + 1).astype(DTYPES[dtype][0]))
            i += 1

    # -- DynamicQuantizeLinear -----------------------------------------------------------------

    def dynamic(self, tag, x):
        x = np.asarray(x, np.float32)
        y, s, z = ort_dynamic(x)
        if not np.isfinite(s):
            return
        self.add(
            "dynamic_quantize",
            case("dynamic_quantize", f"DynamicQuantizeLinear_{tag}", "DynamicQuantizeLinear opset 11", {"dtype": "u8"},
                 {"x": tensor("f32", x)},
                 {"y": tensor("u8", y), "scale": tensor("f32", np.reshape(s, [1])), "zero_point": tensor("u8", np.reshape(z, [1]))}),
        )

    def dynamic_cases(self):
        r = self.rng
        self.dynamic("positive", np.abs(r.normal(0, 3, 97)) + 0.5)
        self.dynamic("negative", -np.abs(r.normal(0, 3, 97)) - 0.5)
        self.dynamic("one_positive", [2.75])
        self.dynamic("one_negative", [-0.3])
        self.dynamic("scalar", np.float32(1.5))
        self.dynamic("rank3", r.normal(0.3, 2, (3, 4, 5)))
        self.dynamic("big", r.normal(-0.1, 1.7, 4099))
        self.dynamic("outlier", np.concatenate([r.normal(0, 0.01, 300), [50.0]]))
        # lo = -8, hi = 7.9375: scale = 1/16 exactly, zero point 128, and x / scale hits k + 0.5.
        k = np.arange(-128, 127)
        self.dynamic("ties", np.concatenate([[-8.0, 7.9375], (k + 0.5) / 16.0]))
        self.dynamic("tiny", r.normal(0, 1e-30, 64))
        self.dynamic("subnormal", np.array([1e-40, -2e-40, 5e-41, 0.0, -1e-45], np.float32))
        self.dynamic("huge", np.array([1e37, -5e36, 3e36, 0.0, 1.0], np.float32))
        self.dynamic("zero_neg_zero", np.array([0.0, -0.0, 0.0], np.float32))
        # Known difference: ONNX Runtime gives scale 1, zero point 0 for an empty input; the
        # reference's Profile::dynamic_quantize returns EmptyInput.
        y, s, z = ort_dynamic(np.zeros(0, np.float32))
        self.known.append(case("dynamic_quantize", "DynamicQuantizeLinear_empty", "DynamicQuantizeLinear opset 11",
                               {"dtype": "u8"}, {"x": tensor("f32", np.zeros(0, np.float32))},
                               {"y": tensor("u8", y), "scale": tensor("f32", np.reshape(s, [1])),
                                "zero_point": tensor("u8", np.reshape(z, [1]))}))

    # -- compute_scale_zp ----------------------------------------------------------------------

    def choose(self, tag, rmin, rmax, qrange, symmetric, min_real_range=None, known=False):
        qmin, qmax = qrange
        rmin = np.array([rmin], np.float32)
        rmax = np.array([rmax], np.float32)
        with np.errstate(all="ignore"):
            zp, scale = qu.compute_scale_zp(rmin, rmax, qmin, qmax, symmetric, min_real_range)
        scale = np.asarray(scale, np.float32).reshape([1])
        if not np.all(np.isfinite(scale)):
            return
        attrs = {"qmin": int(qmin), "qmax": int(qmax), "symmetric": bool(symmetric)}
        if min_real_range is not None:
            attrs["min_real_range"] = float(np.float32(min_real_range))
        c = case("choose_qparams", f"compute_scale_zp_{tag}", "quant_utils.compute_scale_zp", attrs,
                 {"rmin": tensor("f32", rmin), "rmax": tensor("f32", rmax)},
                 {"scale": tensor("f32", scale), "zero_point": tensor("i64", np.asarray(zp, np.int64).reshape([1]))})
        if known:
            self.known.append(c)
        else:
            self.add("choose_qparams", c)

    def choose_cases(self):
        T = TP
        ranges = {
            "i8": qu.ONNX_INT_TYPE_RANGE[T.INT8],
            "i8sym": qu.ONNX_INT_TYPE_SYMMETRIC_RANGE[T.INT8],
            "i8red": qu.ONNX_INT_TYPE_REDUCED_RANGE[T.INT8],
            "u8": qu.ONNX_INT_TYPE_RANGE[T.UINT8],
            "u8red": qu.ONNX_INT_TYPE_REDUCED_RANGE[T.UINT8],
            "i16": qu.ONNX_INT_TYPE_RANGE[T.INT16],
            "i16sym": qu.ONNX_INT_TYPE_SYMMETRIC_RANGE[T.INT16],
            "u16": qu.ONNX_INT_TYPE_RANGE[T.UINT16],
            "i4": qu.ONNX_INT_TYPE_RANGE[T.INT4],
            "u4": qu.ONNX_INT_TYPE_RANGE[T.UINT4],
            "i4red": qu.ONNX_INT_TYPE_REDUCED_RANGE[T.INT4],
        }
        tiny = float(np.finfo(np.float32).tiny)
        edges = [
            ("zero", 0.0, 0.0),
            ("neg_zero", -0.0, -0.0),
            ("rmin_pos", 0.5, 2.0),
            ("rmin_eq_rmax_pos", 3.0, 3.0),
            ("rmax_neg", -3.0, -1.0),
            ("rmin_eq_rmax_neg", -2.0, -2.0),
            ("denormal_pos", 1e-45, 1e-45),
            ("tiny_range", -1e-36, 1e-36),
            ("small_range", -1e-33, 2e-33),
            ("at_tiny_255", 0.0, float(np.float32(tiny * 255))),
            ("below_tiny_255", 0.0, float(np.nextafter(np.float32(tiny * 255), np.float32(0)))),
            ("above_tiny_255", 0.0, float(np.nextafter(np.float32(tiny * 255), np.float32(1)))),
            ("huge", -3.0e38, 3.0e38),
            ("unit", -1.0, 1.0),
            ("zp_tie_1_5", -1.5, 253.5),
            ("zp_tie_2_5", -2.5, 252.5),
        ]
        for rname, qr in ranges.items():
            for sym in (False, True):
                for tag, lo, hi in edges:
                    self.choose(f"{rname}_{'sym' if sym else 'asym'}_{tag}", lo, hi, qr, sym)
                for j in range(3):
                    lo = float(-abs(self.rng.normal(0, 2)) * (j != 2))
                    hi = float(abs(self.rng.normal(0, 3)))
                    self.choose(f"{rname}_{'sym' if sym else 'asym'}_random{j}", lo, hi, qr, sym)
        for tag, lo, hi, m in (("mrr_zero", 0.0, 0.0, 0.01), ("mrr_small", -1e-6, 1e-6, 1e-4),
                               ("mrr_inactive", -1.0, 1.0, 1e-4), ("mrr_negative", -3.0, -1.0, 0.5)):
            for rname in ("u8", "i8"):
                for sym in (False, True):
                    self.choose(f"{rname}_{'sym' if sym else 'asym'}_{tag}", lo, hi, ranges[rname], sym, m)
        # Known difference: ONNX Runtime accepts rmin > rmax (it widens both to contain 0 and goes
        # on); the reference returns InvalidRange.
        for tag, lo, hi in (("rmin_gt_rmax_across_zero", 1.0, -1.0), ("rmin_gt_rmax_positive", 0.5, 0.2)):
            self.choose(f"u8_asym_{tag}", lo, hi, ranges["u8"], False, known=True)


def write(dirname, cases, meta):
    os.makedirs(dirname, exist_ok=True)
    for op, cs in sorted(cases.items()):
        with open(os.path.join(dirname, f"{op}.jsonl"), "w") as f:
            for c in cs:
                f.write(json.dumps(c, separators=(",", ":")) + "\n")
    return {f"onnxruntime/{op}": len(cs) for op, cs in sorted(cases.items())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output root (tests/vectors-extra)")
    ap.add_argument("--known-differences", metavar="DIR",
                    help="also write the cases where ONNX Runtime and the reference are known to differ, to DIR")
    args = ap.parse_args()
    g = Gen()
    g.quantize_cases()
    g.dynamic_cases()
    g.choose_cases()
    counts = write(os.path.join(args.out, "onnxruntime"), g.cases, None)
    meta = {
        "seed": SEED,
        "generator": "tests/vectors-extra/generate_onnxruntime.py",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "onnxruntime": ORT,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "counts": counts,
    }
    with open(os.path.join(args.out, "onnxruntime-meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    if args.known_differences:
        write(os.path.join(args.known_differences, "onnxruntime"), {"known_differences": g.known}, None)
    print(json.dumps(counts, indent=1))


if __name__ == "__main__":
    main()
