# Records tests/vectors-extra/torch/observe.jsonl from a real PyTorch 2.11 (CPU):
#   python generate_observe.py > observe.jsonl
# The tests only read the recorded file; nothing in the test suite needs PyTorch.
# Records extra observe cases from PyTorch 2.11 (quant-vectors/1 format, plus attrs quant_min,
# quant_max, skip_non_finite and "inf" strings for infinities).
import json, sys, warnings, math
import numpy as np, torch
warnings.filterwarnings("ignore")
from torch.ao.quantization import observer as O
rng = np.random.default_rng(20250611)
DT = {'u8': torch.quint8, 'i8': torch.qint8}
CLS = {'minmax': O.MinMaxObserver, 'moving_average_minmax': O.MovingAverageMinMaxObserver,
       'per_channel_minmax': O.PerChannelMinMaxObserver,
       'moving_average_per_channel_minmax': O.MovingAveragePerChannelMinMaxObserver, 'histogram': O.HistogramObserver}

def fmt(v):
    v = float(v)
    if math.isinf(v): return "inf" if v > 0 else "-inf"
    return v

def record(name, attrs, batches, tol=None):
    kw = dict(dtype=DT[attrs['dtype']], qscheme=getattr(torch, attrs['qscheme']), reduce_range=attrs['reduce_range'])
    for k in ('averaging_constant', 'ch_axis', 'bins', 'quant_min', 'quant_max'):
        if k in attrs: kw[k] = attrs[k]
    o = CLS[attrs['observer']](**kw)
    for b in batches:
        o(torch.tensor(b, dtype=torch.float32))
    s, z = o.calculate_qparams()
    case = {"format": "quant-vectors/1", "profile": "torch", "op": "observe", "name": name,
            "source": "torch " + torch.__version__ + " " + torch.backends.cpu.get_cpu_capability() + " " + CLS[attrs['observer']].__name__,
            "attrs": attrs,
            "inputs": {f"batch{i}": {"dtype": "f32", "shape": list(np.shape(b)), "data": [fmt(v) for v in np.ravel(b)]} for i, b in enumerate(batches)},
            "outputs": {"scale": {"dtype": "f32", "shape": [s.numel()], "data": [fmt(v) for v in s.tolist()]},
                        "zero_point": {"dtype": "i64", "shape": [z.numel()], "data": [int(v) for v in z.tolist()]},
                        "min_val": {"dtype": "f32", "shape": [o.min_val.numel()], "data": [fmt(v) for v in o.min_val.reshape(-1).tolist()]},
                        "max_val": {"dtype": "f32", "shape": [o.max_val.numel()], "data": [fmt(v) for v in o.max_val.reshape(-1).tolist()]}}}
    if tol: case["tolerance"] = tol
    print(json.dumps(case))

def f32(a): return np.asarray(a, dtype=np.float32)
def dist(kind, n, scale=1.0, loc=0.0):
    if kind == 'normal': x = rng.standard_normal(n)
    elif kind == 'laplace': x = rng.laplace(size=n)
    elif kind == 'uniform': x = rng.uniform(-1, 1, n)
    elif kind == 'bimodal': x = np.concatenate([rng.normal(-3, .3, n // 2), rng.normal(2, .5, n - n // 2)])
    elif kind == 'relu': x = np.maximum(rng.standard_normal(n), 0)
    elif kind == 'outlier': x = rng.standard_normal(n) * 0.1; x[rng.integers(0, n, 3)] = rng.choice([-1, 1], 3) * 40
    elif kind == 'ints': x = rng.integers(-5, 9, n).astype(float)
    elif kind == 'exp': x = rng.exponential(size=n)
    return f32(x * scale + loc)

k = 0
schemes = [('u8', 'per_tensor_affine', False), ('i8', 'per_tensor_symmetric', False), ('u8', 'per_tensor_affine', True),
           ('i8', 'per_tensor_affine', False), ('u8', 'per_tensor_symmetric', False), ('i8', 'per_tensor_affine', True)]
kinds = ['normal', 'laplace', 'uniform', 'bimodal', 'relu', 'outlier', 'ints', 'exp']
# Histogram: varied distributions, scales, bins, growing ranges.
for i in range(60):
    dt, qs, rr = schemes[i % len(schemes)]
    kind = kinds[i % len(kinds)]
    bins = [2048, 512, 2048, 100, 7, 1000][i % 6]
    scale = float(rng.choice([1e-3, 0.5, 1, 10, 300]))
    nb = int(rng.integers(1, 5))
    batches = []
    for j in range(nb):
        n = int(rng.integers(20, 200))
        grow = 1.0 + j * float(rng.choice([0, 0.3, 1.0]))
        batches.append(dist(kind, n, scale * grow, loc=float(rng.choice([0, 0, scale]))))
    attrs = dict(observer='histogram', dtype=dt, qscheme=qs, reduce_range=rr)
    if bins != 2048: attrs['bins'] = bins
    record(f"extra_histogram_{k}", attrs, batches); k += 1
# Histogram corners.
H = lambda **a: dict(observer='histogram', dtype='u8', qscheme='per_tensor_affine', reduce_range=False, **a)
record(f"extra_histogram_zeros_{k}", H(), [f32(np.zeros(50)), f32(np.zeros(20))]); k += 1
record(f"extra_histogram_single_{k}", H(), [f32(np.full(30, 2.5))]); k += 1
record(f"extra_histogram_single_then_spread_{k}", H(), [f32(np.full(30, 2.5)), dist('normal', 100)]); k += 1
record(f"extra_histogram_spread_then_single_{k}", H(), [dist('normal', 100), f32(np.full(30, 9.0))]); k += 1
record(f"extra_histogram_one_element_{k}", H(), [f32([-0.75])]); k += 1
record(f"extra_histogram_negative_single_{k}", dict(observer='histogram', dtype='i8', qscheme='per_tensor_symmetric', reduce_range=False), [f32(np.full(10, -3.0))]); k += 1
record(f"extra_histogram_tiny_range_{k}", H(), [dist('normal', 200, 1e-30, 1.0)]); k += 1
record(f"extra_histogram_tiny_scale_{k}", H(), [dist('normal', 200, 1e-20)]); k += 1
record(f"extra_histogram_large_{k}", H(), [dist('laplace', 200, 1e30)]); k += 1
record(f"extra_histogram_same_range_{k}", H(), [f32(np.r_[-2.0, dist('uniform', 100), 3.0]), f32(np.r_[-2.0, dist('uniform', 50), 3.0])]); k += 1
record(f"extra_histogram_inf_{k}", H(skip_non_finite=True), [f32(np.r_[dist('normal', 60), np.inf]), f32([np.inf, -np.inf]), f32(np.r_[-np.inf, dist('normal', 60)])]); k += 1
record(f"extra_histogram_custom_range_{k}", H(quant_min=0, quant_max=15), [dist('normal', 300), dist('normal', 300, 2)]); k += 1
record(f"extra_histogram_custom_range_sym_{k}", dict(observer='histogram', dtype='i8', qscheme='per_tensor_symmetric', reduce_range=False, quant_min=-8, quant_max=7), [dist('laplace', 300)]); k += 1
record(f"extra_histogram_many_batches_{k}", H(bins=256), [dist('normal', 40, 1 + j) for j in range(8)]); k += 1
record(f"extra_histogram_big_batch_{k}", H(), [dist("normal", 4000)]); k += 1
record(f"extra_histogram_sym_reduce_u8_{k}", dict(observer='histogram', dtype='u8', qscheme='per_tensor_symmetric', reduce_range=True), [dist('relu', 300)]); k += 1
record(f"extra_histogram_one_bin_{k}", H(bins=1), [dist('normal', 100), dist('normal', 100, 3)]); k += 1
# Min/max families.
for i in range(24):
    dt, qs, rr = schemes[i % len(schemes)]
    if qs.endswith('symmetric') and rr and dt == 'u8': rr = False
    obs = ['minmax', 'moving_average_minmax'][i % 2]
    attrs = dict(observer=obs, dtype=dt, qscheme=qs, reduce_range=rr)
    if obs == 'moving_average_minmax' and i % 4 == 1: attrs['averaging_constant'] = float(rng.choice([0.1, 0.5, 1.0, 0.003]))
    if i % 5 == 0: attrs['quant_min'], attrs['quant_max'] = ((0, 15) if dt == 'u8' else (-8, 7))
    batches = [dist(kinds[(i + j) % len(kinds)], int(rng.integers(1, 200)), float(rng.choice([1e-2, 1, 50]))) for j in range(int(rng.integers(1, 5)))]
    record(f"extra_{obs}_{k}", attrs, batches); k += 1
record(f"extra_minmax_zeros_{k}", dict(observer='minmax', dtype='u8', qscheme='per_tensor_affine', reduce_range=False), [f32(np.zeros(10))]); k += 1
record(f"extra_minmax_positive_{k}", dict(observer='minmax', dtype='i8', qscheme='per_tensor_symmetric', reduce_range=False), [dist('exp', 50, 1, 3)]); k += 1
for i in range(16):
    obs = ['per_channel_minmax', 'moving_average_per_channel_minmax'][i % 2]
    dt, qs, rr = [('i8', 'per_channel_symmetric', False), ('u8', 'per_channel_affine', False), ('i8', 'per_channel_affine', True), ('u8', 'per_channel_affine', True)][i % 4]
    shape = [(4, 6), (3, 2, 5), (2, 3, 2, 2), (7, 1)][(i // 2) % 4]
    ax = int(rng.integers(-len(shape), len(shape)))
    attrs = dict(observer=obs, dtype=dt, qscheme=qs, reduce_range=rr, ch_axis=ax)
    if obs.startswith('moving') and i % 3 == 0: attrs['averaging_constant'] = 0.25
    if i % 5 == 2: attrs['quant_min'], attrs['quant_max'] = ((0, 15) if dt == 'u8' else (-8, 7))
    batches = [dist(kinds[(i + j) % len(kinds)], int(np.prod(shape)), float(rng.choice([0.1, 1, 20]))).reshape(shape) for j in range(int(rng.integers(1, 4)))]
    record(f"extra_{obs}_{k}", attrs, batches); k += 1
