#!/usr/bin/env python3
"""onnxruntime beside tract for `neuroscreen bench`: the same ONNX files of a
models folder, the same thread count, model-only latency, as JSON on stdout.

Usage: ort_bench.py --models DIR --threads T --runs N
       ort_bench.py --models DIR --threads T --runs N --profile --size PX [--size PX ...]
       ort_bench.py --file MODEL.onnx --threads T --runs N   (one file: {"whole_ms": median})
       ort_bench.py --models DIR --each-file --threads T --runs N
           (every .onnx file in DIR, no manifest: {"files": {name: median ms}};
           `neuroscreen bench --kernels` times its one-convolution files so)

With --profile, each file runs at each size (the input's height and width
set to PX) under onnxruntime's own profiler, and the time per run is summed
per operator type (`neuroscreen bench --profile` prints it beside tract's).
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
    ap.add_argument("--models")
    ap.add_argument("--file")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--size", type=int, action="append", default=[])
    ap.add_argument("--each-file", action="store_true")
    args = ap.parse_args()
    if args.file:
        return one_file(args)
    if not args.models:
        ap.error("--models or --file is required")
    if args.each_file:
        return each_file(args)
    if args.profile:
        return profile(args)

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
                t0 = time.perf_counter()
                sess = ort.InferenceSession(path, session_options(args.threads),
                                            providers=["CPUExecutionProvider"])
                row["session_ms"] = (time.perf_counter() - t0) * 1e3
                row["ms"] = timed_runs(sess, {model["input"]["name"]: x}, args.runs)
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


def one_file(args):
    sess = ort.InferenceSession(args.file, session_options(args.threads), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).random(inp.shape, dtype=np.float32)
    times = sorted(timed_runs(sess, {inp.name: x}, args.runs))
    print(json.dumps({"runtime": "onnxruntime " + ort.__version__, "whole_ms": times[len(times) // 2]}))
    return 0


def each_file(args):
    medians = {}
    for name in sorted(os.listdir(args.models)):
        if not name.endswith(".onnx"):
            continue
        sess = ort.InferenceSession(os.path.join(args.models, name), session_options(args.threads),
                                    providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        x = np.random.default_rng(0).random(inp.shape, dtype=np.float32)
        times = sorted(timed_runs(sess, {inp.name: x}, args.runs))
        medians[name] = times[len(times) // 2]
    print(json.dumps({"runtime": "onnxruntime " + ort.__version__, "files": medians}))
    return 0


def timed_runs(sess, feed, runs):
    """ms of each of `runs` runs, after one warm-up run (first-run allocations)."""
    sess.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def session_options(threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


def at_size(path, size, tmp):
    """The model with its input's height and width set to `size` and every
    other shape left for onnxruntime to infer."""
    import onnx

    model = onnx.load(path)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = size
    dims[3].dim_value = size
    del model.graph.value_info[:]
    for out in model.graph.output:
        for d in out.type.tensor_type.shape.dim:
            d.dim_param = "d"
    resized = os.path.join(tmp, "model_%d.onnx" % size)
    onnx.save(model, resized)
    return resized


def profile(args):
    import tempfile

    with open(os.path.join(args.models, "manifest.json")) as f:
        manifest = json.load(f)
    rng = np.random.default_rng(0)
    rows = []
    tmp = tempfile.mkdtemp(prefix="ort_profile_")
    for model in manifest["models"]:
        channels = model["input"]["shape"][1]
        for entry in model["files"]:
            for size in args.size or [model["input"]["shape"][2]]:
                row = {"model": model["name"], "precision": entry["precision"], "size": size}
                try:
                    path = at_size(os.path.join(args.models, entry["path"]), size, tmp)
                    feed = {model["input"]["name"]: rng.random((1, channels, size, size), dtype=np.float32)}
                    sess = ort.InferenceSession(path, session_options(args.threads),
                                                providers=["CPUExecutionProvider"])
                    times = sorted(timed_runs(sess, feed, args.runs))
                    row["whole_ms"] = times[len(times) // 2]
                    opts = session_options(args.threads)
                    opts.enable_profiling = True
                    opts.profile_file_prefix = os.path.join(tmp, "trace")
                    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                    for _ in range(args.runs + 1):
                        sess.run(None, feed)
                    trace = sess.end_profiling()
                    with open(trace) as f:
                        events = json.load(f)
                    os.remove(trace)
                    row["ops"] = per_op(events, args.runs)
                    row["nodes"] = per_node(events, args.runs)
                except Exception as e:  # a file ORT cannot run is a result too
                    row["error"] = str(e).splitlines()[0][:300]
                rows.append(row)
    print(json.dumps({"runtime": "onnxruntime " + ort.__version__, "threads": args.threads,
                      "profiles": rows}))


def timed_nodes(events):
    """(node name, op type, ms) of every node run after the first (warm-up) run."""
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    after_warmup = starts[1] if len(starts) > 1 else 0
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= after_warmup:
            yield e["name"][: -len("_kernel_time")], e.get("args", {}).get("op_name", "?"), e["dur"] / 1e3


def per_op(events, runs):
    """ms per run by operator type."""
    kinds = {}
    for node, op, ms in timed_nodes(events):
        k = kinds.setdefault(op, {"op": op, "nodes": set(), "ms": 0.0})
        k["nodes"].add(node)
        k["ms"] += ms / runs
    ops = [{"op": k["op"], "nodes": len(k["nodes"]), "ms": k["ms"]} for k in kinds.values()]
    ops.sort(key=lambda o: -o["ms"])
    return ops


def per_node(events, runs):
    """ms per run by node name (the ONNX node's)."""
    nodes = {}
    for node, _, ms in timed_nodes(events):
        nodes[node] = nodes.get(node, 0.0) + ms / runs
    return nodes


if __name__ == "__main__":
    sys.exit(main())
