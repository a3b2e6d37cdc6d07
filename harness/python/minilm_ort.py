"""Runs the int8 MiniLM ONNX model with ONNX Runtime on token ids quantproof chose.

Usage: python minilm_ort.py REQUEST.json RESPONSE.json
REQUEST:  {"model": path, "sequences": [{"ids": [...], "types": [...]}, ...]}
RESPONSE: {"onnxruntime": version, "hidden": [[L * 384 floats], ...]}  (last_hidden_state, every token attended)
"""
import json
import sys

import numpy as np
import onnxruntime as ort


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(req["model"], so, providers=["CPUExecutionProvider"])
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
