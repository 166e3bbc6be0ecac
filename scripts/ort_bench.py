#!/usr/bin/env python3
"""onnxruntime beside tract for `neuroscreen bench`: the same ONNX files of a
models folder, the same thread count, model-only latency, as JSON on stdout.

Usage: ort_bench.py --models DIR --threads T --runs N
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()

    with open(os.path.join(args.models, "manifest.json")) as f:
        manifest = json.load(f)
    rng = np.random.default_rng(0)
    results = []
    for model in manifest["models"]:
        shape = model["input"]["shape"]
        # Model-only latency of a CNN does not depend on the pixel values;
        # a fixed pseudo-random image in [0, 1] stands in for a slice.
        x = rng.random(shape, dtype=np.float32)
        for entry in model["files"]:
            path = os.path.join(args.models, entry["path"])
            row = {"model": model["name"], "precision": entry["precision"], "file": entry["path"]}
            try:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = args.threads
                opts.inter_op_num_threads = 1
                opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                t0 = time.perf_counter()
                sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                row["session_ms"] = (time.perf_counter() - t0) * 1e3
                feed = {model["input"]["name"]: x}
                sess.run(None, feed)  # warm-up
                times = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    sess.run(None, feed)
                    times.append((time.perf_counter() - t0) * 1e3)
                row["ms"] = times
            except Exception as e:  # a file ORT cannot run is a result too
                row["error"] = str(e).splitlines()[0][:300]
            results.append(row)
    print(json.dumps({
        "runtime": "onnxruntime " + ort.__version__,
        "threads": args.threads,
        "models": results,
        # ru_maxrss is KiB on Linux; it includes the Python interpreter.
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    sys.exit(main())
