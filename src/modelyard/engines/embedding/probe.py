"""What serving a sentence-transformers model at a precision costs, measured in a process
of its own: the size of the graph it runs, the time to load it (the graph built or
quantised first when the cache does not have it yet, not counted), the memory it keeps
resident, and texts/s encoding a list of texts in batches. The vectors are written to a
``.npy`` file so that another process can compare two precisions text by text.

    python -m modelyard.engines.embedding.probe SPEC.json RESULT.json

SPEC holds ``model_dir``, ``precision``, ``texts``, ``threads``, ``batch`` and ``vectors``
(where the ``.npy`` goes); RESULT gets the measurements as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from modelyard.engines.memory import rss_mb


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from modelyard import config
    from modelyard.engines.embedding.backend import open_backend
    from modelyard.engines.embedding.graph_cache import graph_file
    from modelyard.engines.embedding.model_dir import read_model_dir

    model = read_model_dir(Path(spec["model_dir"]))
    cache = config.Settings().home / "cache" / "onnx"
    graph = graph_file(model, cache, spec["precision"])  # built now: not part of load_s
    baseline = rss_mb()
    started = time.perf_counter()
    backend = open_backend("onnxruntime", model, cache, int(spec["threads"]), spec["precision"])
    load_s = time.perf_counter() - started
    resident = rss_mb() - baseline
    texts: list[str] = spec["texts"]
    batch = int(spec["batch"])
    backend.encode(texts[:batch])  # warm-up
    vectors: list[list[float]] = []
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        vectors.extend(backend.encode(texts[start : start + batch]).vectors)
    seconds = time.perf_counter() - started
    if spec.get("vectors"):
        np.save(spec["vectors"], np.asarray(vectors, dtype=np.float32))
    return {
        "graph": graph.name,
        "size_bytes": graph.stat().st_size,
        "load_s": round(load_s, 4),
        "rss_mb": round(max(resident, 0.0), 1),
        "texts": len(texts),
        "texts_per_s": round(len(texts) / seconds, 2) if seconds > 0 else 0.0,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m modelyard.engines.embedding.probe SPEC.json RESULT.json")
        return 2
    result = probe(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    target = Path(argv[1])
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(result), encoding="utf-8")
    partial.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
