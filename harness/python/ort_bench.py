#!/usr/bin/env python3
"""ONNX Runtime measured in the same run as quantproof's kernels.

`quantproof bench ... --with-ort` and `quantproof report` run this script (embedded in the
binary) with the venv's Python. It prints one JSON object per line, in the schema of
`quantproof bench --json` (isa = "onnxruntime"); the Rust side derives the throughput fields.

Subcommands:

  versions                       onnxruntime / numpy / onnx / python versions
  op   --op OP --input FILE ...  time one operator on the tensor in FILE (raw little-endian
                                 bytes written by quantproof), write the outputs of one run to
                                 --out-file so quantproof can compare them with its reference
  calib --method M --input FILE  time onnxruntime.quantization's HistogramCollector
                                 (collect + compute_collection_result) on the f32 values in FILE

Fairness: the model is one operator (or a Q -> DQ pair for fake-quantize, ReduceMin + ReduceMax
for min-max) built with onnx.helper; intra_op_num_threads = T, inter_op_num_threads = 1,
sequential execution; inputs and outputs are bound once with IO binding to preallocated
buffers, so the timed call allocates nothing; one warm-up run, then the median of R runs of
`session.run_with_iobinding` (time.perf_counter). The fixed cost of one such call is measured on
an Identity model of one element and reported as `call_overhead_s`: it weighs on small sizes.
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

OPSET = 21
IR_VERSION = 10

NP = {"f32": np.float32, "i8": np.int8, "u8": np.uint8}
PROTO = {"f32": TensorProto.FLOAT, "i8": TensorProto.INT8, "u8": TensorProto.UINT8}


def versions():
    import onnx

    return {
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "python": sys.version.split()[0],
    }


def make_model(op, dtype, n, scale, zero_point, second=None):
    """The one-operator model of `op` on a [n] tensor; returns (model bytes, input dtype, outputs).
    `second` = (b_scale, b_zero_point, y_scale, y_zero_point) for the two-input ops."""
    f32 = TensorProto.FLOAT
    q = PROTO[dtype] if dtype in ("i8", "u8") else TensorProto.UINT8
    inits = [
        helper.make_tensor("scale", f32, [], [float(scale)]),
        helper.make_tensor("zp", q, [], [int(zero_point)]),
    ]
    domains = []
    if op == "qgemm":
        # MatMulInteger: A u8 [M, K] (input x) times the constant B s8 [K, N] (`second` carries
        # its values and the dims), a_zero_point = zero_point, exact int32 [M, N].
        b_values, (m, k, nn) = second
        inits = [
            helper.make_tensor("a_zp", q, [], [int(zero_point)]),
            helper.make_tensor("b", TensorProto.INT8, [k, nn], b_values.astype(np.int8).tolist()),
        ]
        nodes = [helper.make_node("MatMulInteger", ["x", "b", "a_zp"], ["y"])]
        ins, outs = [("x", q, [m, k])], [("y", TensorProto.INT32, [m, nn])]
    elif op == "qconv2d":
        # ConvInteger: x u8 [N, C, H, W] (input) with the constant weights s8 [OC, C, KH, KW]
        # (`second` carries them and the dims), 'same' padding, stride 1, x_zero_point =
        # zero_point, weight zero point 0 (symmetric weights: per-channel scales do not enter the
        # int32 accumulators; ONNX Runtime's ConvInteger takes only a per-tensor weight zero point).
        w_values, (bn, c, h, w, oc, kh, kw) = second
        inits = [
            helper.make_tensor("x_zp", q, [], [int(zero_point)]),
            helper.make_tensor("w", TensorProto.INT8, [oc, c, kh, kw], w_values.astype(np.int8).tolist()),
            helper.make_tensor("w_zp", TensorProto.INT8, [], [0]),
        ]
        pads = [(kh - 1) // 2, (kw - 1) // 2, kh - 1 - (kh - 1) // 2, kw - 1 - (kw - 1) // 2]
        nodes = [helper.make_node("ConvInteger", ["x", "w", "x_zp", "w_zp"], ["y"], pads=pads)]
        ins, outs = [("x", q, [bn, c, h, w])], [("y", TensorProto.INT32, [bn, oc, h, w])]
    elif op in ("qadd", "qmul"):
        # com.microsoft's QLinearAdd / QLinearMul (MLAS kernels), inputs a and b of one shape.
        b_scale, b_zp, y_scale, y_zp = second
        inits += [
            helper.make_tensor("b_scale", f32, [], [float(b_scale)]),
            helper.make_tensor("b_zp", q, [], [int(b_zp)]),
            helper.make_tensor("y_scale", f32, [], [float(y_scale)]),
            helper.make_tensor("y_zp", q, [], [int(y_zp)]),
        ]
        kind = "QLinearAdd" if op == "qadd" else "QLinearMul"
        nodes = [
            helper.make_node(
                kind, ["x", "scale", "zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"], ["y"], domain="com.microsoft"
            )
        ]
        ins, outs = [("x", q, [n]), ("b", q, [n])], [("y", q, [n])]
        domains = [helper.make_opsetid("com.microsoft", 1)]
    elif op == "max-pool2d":
        # MaxPool on codes, NCHW [1, 64, H, H] (quantproof's bench is NHWC: its input and output
        # are handed over transposed), 3x3, stride 2, SAME_UPPER (TensorFlow's SAME: the odd
        # padding after), then the fused ReLU as Max with the zero point (the code of 0).
        h = second
        oh = (h + 1) // 2
        inits = [helper.make_tensor("zp", q, [], [int(zero_point)])]
        nodes = [
            helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
            helper.make_node("Max", ["m", "zp"], ["y"]),
        ]
        ins, outs = [("x", q, [1, 64, h, h])], [("y", q, [1, 64, oh, oh])]
    elif op in ("sigmoid", "leaky-relu"):
        # com.microsoft's QLinearSigmoid / QLinearLeakyRelu: codes in, codes out (ONNX Runtime
        # builds a 256-entry table from the float function, as quantproof does).
        y_scale, y_zp, alpha = second
        inits += [
            helper.make_tensor("y_scale", f32, [], [float(y_scale)]),
            helper.make_tensor("y_zp", q, [], [int(y_zp)]),
        ]
        if op == "sigmoid":
            node = helper.make_node("QLinearSigmoid", ["x", "scale", "zp", "y_scale", "y_zp"], ["y"], domain="com.microsoft")
        else:
            node = helper.make_node(
                "QLinearLeakyRelu", ["x", "scale", "zp", "y_scale", "y_zp"], ["y"], domain="com.microsoft", alpha=float(alpha)
            )
        nodes = [node]
        ins, outs = [("x", q, [n])], [("y", q, [n])]
        domains = [helper.make_opsetid("com.microsoft", 1)]
    elif op == "quantize":
        nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["y"])]
        ins, outs = [("x", f32, [n])], [("y", q, [n])]
    elif op == "dequantize":
        nodes = [helper.make_node("DequantizeLinear", ["x", "scale", "zp"], ["y"])]
        ins, outs = [("x", q, [n])], [("y", f32, [n])]
    elif op == "fake-quantize":
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["y"]),
        ]
        ins, outs = [("x", f32, [n])], [("y", f32, [n])]
    elif op == "dynamic-quantize":
        inits = []
        nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "y_scale", "y_zero_point"])]
        ins = [("x", f32, [n])]
        outs = [("y", TensorProto.UINT8, [n]), ("y_scale", f32, []), ("y_zero_point", TensorProto.UINT8, [])]
    elif op == "min-max":
        inits = []
        nodes = [
            helper.make_node("ReduceMin", ["x"], ["mn"], keepdims=0),
            helper.make_node("ReduceMax", ["x"], ["mx"], keepdims=0),
        ]
        ins, outs = [("x", f32, [n])], [("mn", f32, []), ("mx", f32, [])]
    elif op == "identity":
        inits = []
        nodes = [helper.make_node("Identity", ["x"], ["y"])]
        ins, outs = [("x", f32, [n])], [("y", f32, [n])]
    else:
        raise ValueError(f"unknown op {op!r}")
    graph = helper.make_graph(
        nodes,
        op,
        [helper.make_tensor_value_info(name, t, shape) for name, t, shape in ins],
        [helper.make_tensor_value_info(name, t, shape) for name, t, shape in outs],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)] + domains)
    model.ir_version = IR_VERSION
    return model.SerializeToString(), ins[0][1], outs


NP_OF_PROTO = {
    TensorProto.FLOAT: np.float32,
    TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8,
    TensorProto.INT32: np.int32,
}


def session(model_bytes, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=so, providers=["CPUExecutionProvider"])


def bound(sess, x, outs, b=None):
    """IO binding with the inputs and preallocated outputs bound once."""
    binding = sess.io_binding()
    binding.bind_ortvalue_input("x", ort.OrtValue.ortvalue_from_numpy(x))
    if b is not None:
        binding.bind_ortvalue_input("b", ort.OrtValue.ortvalue_from_numpy(b))
    values = []
    for name, t, shape in outs:
        v = ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype=NP_OF_PROTO[t]))
        binding.bind_ortvalue_output(name, v)
        values.append(v)
    return binding, values


def time_runs(fn, reps, warmup=1):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def choose_reps(fn, reps):
    """`reps` when positive, else enough for about 0.25 s (5 to 2000)."""
    if reps > 0:
        return reps
    t = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t, 1e-9)
    return int(min(2000, max(5, -(-0.25 // one))))


def call_overhead(threads):
    model, _, outs = make_model("identity", "f32", 1, 1.0, 0)
    sess = session(model, threads)
    binding, _ = bound(sess, np.zeros(1, np.float32), outs)
    return statistics.median(time_runs(lambda: sess.run_with_iobinding(binding), 200, warmup=5))


def record(op, n, threads, dtype, samples, extra):
    return {
        "op": op,
        "isa": "onnxruntime",
        "threads": threads,
        "elements": n,
        "profile": "onnxruntime",
        "dtype": dtype,
        "granularity": "per-tensor",
        "reps": len(samples),
        "seconds_median": statistics.median(samples),
        "seconds_min": min(samples),
        "seconds_max": max(samples),
        "gelem_per_s": 0.0,
        "gbytes_per_s": 0.0,
        "bytes_per_element": 0.0,
        "verified": "not checked",
        "detail": extra,
    }


def cmd_op(a):
    in_dtype = "f32" if a.op in ("quantize", "fake-quantize", "dynamic-quantize", "min-max") else a.dtype
    x = np.fromfile(a.input, dtype=NP[in_dtype])
    n = x.size
    b, second = None, None
    if a.op == "qgemm":
        dims = tuple(int(d) for d in a.dims.split(","))
        x = x.reshape(dims[0], dims[1])
        second = (np.fromfile(a.input_b, dtype=np.int8), dims)
    elif a.op == "qconv2d":
        dims = tuple(int(d) for d in a.dims.split(","))
        x = x.reshape(dims[0], dims[1], dims[2], dims[3])
        second = (np.fromfile(a.input_b, dtype=np.int8), dims)
    elif a.op == "max-pool2d":
        h = int(round((n // 64) ** 0.5))
        x = x.reshape(1, 64, h, h)
        second = h
    elif a.op in ("sigmoid", "leaky-relu"):
        second = (a.y_scale, a.y_zero_point, a.alpha)
    elif a.input_b:
        b = np.fromfile(a.input_b, dtype=NP[in_dtype])
        second = (a.b_scale, a.b_zero_point, a.y_scale, a.y_zero_point)
    model, _, outs = make_model(a.op, a.dtype, n, a.scale, a.zero_point, second)
    sess = session(model, a.threads)
    binding, values = bound(sess, x, outs, b)
    run = lambda: sess.run_with_iobinding(binding)  # noqa: E731
    run()
    if a.out_file:
        with open(a.out_file, "wb") as f:
            for v in values:
                f.write(np.ascontiguousarray(v.numpy()).tobytes())
    reps = choose_reps(run, a.reps)
    samples = time_runs(run, reps)
    extra = {
        "versions": versions(),
        "call_overhead_s": call_overhead(a.threads),
        "io_binding": True,
        "opset": OPSET,
        "model": [node.op_type for node in _nodes(model)],
        "session": {"intra_op_num_threads": a.threads, "inter_op_num_threads": 1, "execution_mode": "sequential"},
    }
    print(json.dumps(record(a.op, n, a.threads, a.dtype, samples, extra)), flush=True)


def _nodes(model_bytes):
    import onnx

    return onnx.load_from_string(model_bytes).graph.node


def cmd_calib(a):
    from onnxruntime.quantization.calibrate import HistogramCollector

    x = np.fromfile(a.input, dtype=np.float32)
    n = x.size

    def once():
        c = HistogramCollector(
            method=a.method,
            symmetric=a.symmetric,
            num_bins=a.bins,
            num_quantized_bins=a.quantized_bins,
            percentile=a.percentile,
            scenario="same",
        )
        # HistogramCollector prints progress on stdout, which carries the JSON lines.
        with contextlib.redirect_stdout(io.StringIO()):
            c.collect({"x": [x]})
            return c.compute_collection_result()

    result = once()
    reps = a.reps if a.reps > 0 else 3
    samples = time_runs(once, reps, warmup=0)
    r = result["x"]

    def plain(v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, (np.floating, np.integer)):
            return v.item()
        if isinstance(v, (tuple, list)):
            return [plain(e) for e in v]
        if isinstance(v, dict):
            return {k: plain(e) for k, e in v.items()}
        return v

    extra = {
        "versions": versions(),
        "method": a.method,
        "symmetric": a.symmetric,
        "num_bins": a.bins,
        "num_quantized_bins": a.quantized_bins,
        "percentile": a.percentile,
        "timed": "HistogramCollector(...) + collect({'x': [x]}) + compute_collection_result()",
        # entropy / percentile return (low, high, *histogram data); only the thresholds are kept.
        "result": plain({"avg": r.avg, "std": r.std} if a.method == "distribution" else {"low": r[0], "high": r[1]}),
    }
    print(json.dumps(record(f"calibrate-{a.method}", n, 1, "f32", samples, extra)), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("versions")
    o = sub.add_parser("op")
    o.add_argument("--op", required=True)
    o.add_argument("--input", required=True)
    o.add_argument("--dtype", default="i8", choices=["i8", "u8", "f32"])
    o.add_argument("--scale", type=float, default=1.0)
    o.add_argument("--zero-point", type=int, default=0)
    o.add_argument("--threads", type=int, default=1)
    o.add_argument("--reps", type=int, default=0)
    o.add_argument("--out-file")
    o.add_argument("--input-b")
    o.add_argument("--b-scale", type=float, default=1.0)
    o.add_argument("--b-zero-point", type=int, default=0)
    o.add_argument("--y-scale", type=float, default=1.0)
    o.add_argument("--y-zero-point", type=int, default=0)
    o.add_argument("--dims", help="M,K,N of qgemm; N,C,H,W,OC,KH,KW of qconv2d")
    o.add_argument("--alpha", type=float, default=0.01, help="LeakyRelu's slope")
    c = sub.add_parser("calib")
    c.add_argument("--method", required=True, choices=["entropy", "percentile", "distribution"])
    c.add_argument("--input", required=True)
    c.add_argument("--bins", type=int, default=2048)
    c.add_argument("--quantized-bins", type=int, default=128)
    c.add_argument("--percentile", type=float, default=99.999)
    c.add_argument("--symmetric", action="store_true")
    c.add_argument("--reps", type=int, default=0)
    a = p.parse_args(argv)
    if a.cmd == "versions":
        print(json.dumps(versions()), flush=True)
    elif a.cmd == "op":
        cmd_op(a)
    else:
        cmd_calib(a)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
