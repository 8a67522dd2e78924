"""VerifAI's cross-entropy sampler as a line-based JSON server; runs in benchmarks/.venv-verifai, NOT the package venv.

Protocol (one JSON object per line on stdin, one reply per line on stdout):
- first line: ``{"dim": d, "seed": s}`` -> ``{"ok": true}``;
- ``{"cmd": "next"}`` -> ``{"u": [...]}``: the next point of [0, 1]^d;
- ``{"cmd": "update", "rho": r}`` -> ``{"ok": true}``: the robustness of the last point (r < 0 = falsified).
The sampler is VerifAI's default cross-entropy set-up (``default_sampler_params('ce')``: 5 buckets per dimension,
alpha 0.9, threshold 0): it only learns from falsifying runs.
"""

import json
import random
import sys

import numpy as np


def main() -> int:
    """Serve samples until stdin closes."""
    from verifai.features import Box, Feature, FeatureSpace
    from verifai.samplers import FeatureSampler
    from verifai.samplers.feature_sampler import default_sampler_params

    init = json.loads(sys.stdin.readline())
    np.random.seed(int(init["seed"]))  # VerifAI draws from numpy's and Python's global streams
    random.seed(int(init["seed"]))
    space = FeatureSpace({"u": Feature(Box(*[(0.0, 1.0)] * int(init["dim"])))})
    sampler = FeatureSampler.crossEntropySamplerFor(space, default_sampler_params("ce"))
    last = None
    print(json.dumps({"ok": True}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "next":
            sample, info = sampler.getSample()
            last = (sample, info)
            print(json.dumps({"u": [float(v) for v in sample.u]}), flush=True)
        elif msg["cmd"] == "update":
            sampler.update(last[0], last[1], msg["rho"])
            print(json.dumps({"ok": True}), flush=True)
        else:
            print(json.dumps({"error": f"unknown command {msg.get('cmd')!r}"}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
