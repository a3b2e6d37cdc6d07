"""Runs the int8 MiniLM ONNX model with ONNX Runtime on token ids quantproof chose.

Usage: python minilm_ort.py REQUEST.json RESPONSE.json
REQUEST:  {"model": path, "sequences": [{"ids": [...], "types": [...]}, ...]}
RESPONSE: {"onnxruntime": version, "hidden": [[L * 384 floats], ...]}  (last_hidden_state, every token attended)

With "bench": {"batches": [1, 32], "reps": R} in the request (every sequence of one length), the
first B sequences run as one [B, L] batch R times for each B, on one thread, and the response
holds "seconds_median": [one median per batch size] instead of hidden states.
"""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(req["model"], so, providers=["CPUExecutionProvider"])
    if "bench" in req:
        medians = []
        for b in req["bench"]["batches"]:
            seqs = req["sequences"][:b]
            ids = np.array([q["ids"] for q in seqs], dtype=np.int64)
            types = np.array([q["types"] for q in seqs], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types}
            s.run(None, feeds)  # warm-up
            samples = []
            for _ in range(max(1, int(req["bench"]["reps"]))):
                t = time.perf_counter()
                s.run(None, feeds)
                samples.append(time.perf_counter() - t)
            medians.append(statistics.median(samples))
        with open(sys.argv[2], "w") as f:
            json.dump({"onnxruntime": ort.__version__, "seconds_median": medians}, f)
        return
    out = []
    for seq in req["sequences"]:
        ids = np.array([seq["ids"]], dtype=np.int64)
        types = np.array([seq["types"]], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types}
        h = s.run(None, feeds)[0][0]
        out.append([float(v) for v in h.astype(np.float32).ravel()])
    with open(sys.argv[2], "w") as f:
        json.dump({"onnxruntime": ort.__version__, "hidden": out}, f)


if __name__ == "__main__":
    main()
