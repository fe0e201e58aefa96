"""The int8 variant of a ``sentence-transformers`` version: the same model directory served
with ``precision: int8`` (its ONNX graph's weights quantised by ONNX Runtime's dynamic
quantiser), measured beside the float model: graph size, load time, memory, texts/s, the
cosine agreement of each text's two vectors and, when the texts have labels, the accuracy
of a classifier trained on each model's vectors with the same folds, compared paired."""

from __future__ import annotations

import asyncio
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.evaluate.stats import mcnemar_exact, paired_bootstrap
from modelyard.improve.compress.errors import InvalidCompression
from modelyard.improve.compress.gguf import Made
from modelyard.improve.compress.probe import run_probe
from modelyard.improve.compress.protocol import CompressRequest, VariantOut
from modelyard.improve.compress.texts import Texts
from modelyard.lazy import lazy_module
from modelyard.registry.protocol import VersionOut

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

sk_linear = lazy_module("sklearn.linear_model")
sk_selection = lazy_module("sklearn.model_selection")
sk_exceptions = lazy_module("sklearn.exceptions")
threadpoolctl = lazy_module("threadpoolctl")
PROBE = "modelyard.engines.embedding.probe"
PROBE_TIMEOUT_S = 1800.0
METHODS = ("int8",)
BATCH = 32
FOLDS = 5


def check(parent: VersionOut, request: CompressRequest) -> None:
    """Only ``int8``, from a float version served by ONNX Runtime."""
    unknown = [method for method in request.to if method not in METHODS]
    if unknown:
        raise InvalidCompression(
            f"unknown quantisation type {', '.join(unknown)} for a sentence-transformers "
            f"version; known: {', '.join(METHODS)}",
            param="to",
        )
    if parent.parameters.get("backend", "onnxruntime") != "onnxruntime":
        raise InvalidCompression(
            f"{parent.name} runs on {parent.parameters['backend']}; int8 variants are made "
            "for the onnxruntime backend",
            param="version",
        )
    if source_type(parent) != "float32":
        raise InvalidCompression(
            f"{parent.name} is already {source_type(parent)}: compress its float parent",
            param="version",
        )


def source_type(parent: VersionOut) -> str:
    return str(parent.parameters.get("precision", "float32"))


def requantised(source: str) -> bool:
    return source != "float32"


async def make(
    home: Path, parent: VersionOut, method: str, compression_id: int, threads: int
) -> Made:
    """The same directory with ``precision`` set: the engine quantises its graph (cached)."""
    try:
        version = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        version = "unknown"
    quantiser = {
        "tool": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "onnxruntime": version,
    }
    # Built here, once: the probes then load cached graphs, so building one (which
    # allocates and frees hundreds of MB) never shows in a row's memory or load time.
    await asyncio.to_thread(_build_graph, home, parent.artifact_uri, method)
    parameters = {**parent.parameters, "precision": method}
    return Made(parent.artifact_uri, parameters, {"quantiser": quantiser})


def _build_graph(home: Path, directory: str, precision: str) -> None:
    from modelyard.engines.embedding.graph_cache import graph_file
    from modelyard.engines.embedding.model_dir import read_model_dir

    graph_file(read_model_dir(Path(directory)), home / "cache" / "onnx", precision)


async def measure(
    version: VersionOut, request: CompressRequest, texts: Texts | None
) -> dict[str, Any]:
    """The probe's measurements, and ``samples``: the texts' vectors (float32 array)."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="modelyard-vectors-") as directory:
        vectors = Path(directory) / "vectors.npy"
        raw = await run_probe(
            PROBE,
            {
                "model_dir": version.artifact_uri,
                "precision": source_type(version),
                "texts": texts.texts if texts is not None else ["a text to time the model on"],
                "threads": request.threads or version.parameters.get("threads", 0),
                "batch": BATCH,
                "vectors": str(vectors),
            },
            PROBE_TIMEOUT_S,
        )
        samples = await asyncio.to_thread(np.load, vectors)
    return {
        "file_type": source_type(version),
        "graph": raw["graph"],
        "size_bytes": raw["size_bytes"],
        "size_mb": round(raw["size_bytes"] / 1e6, 2),
        "load_s": raw["load_s"],
        "rss_mb": raw["rss_mb"],
        "texts_per_s": raw["texts_per_s"],
        "samples": samples if texts is not None else None,
    }


def compare(
    parent: NDArray[np.float32] | None, variant: NDArray[np.float32] | None, texts: Texts | None
) -> tuple[dict[str, Any], dict[str, float], dict[str, float]]:
    """The variant's comparison with the parent, and the measurements it adds to each:
    cosine agreement text by text (the vectors are L2-normalised, so a dot product), and
    with labels the accuracy of the same cross-validated classifier on each, paired."""
    if parent is None or variant is None or texts is None:
        return {}, {}, {}
    import numpy as np

    cosines = np.einsum("ij,ij->i", parent, variant) / (
        np.linalg.norm(parent, axis=1) * np.linalg.norm(variant, axis=1)
    )
    comparison: dict[str, Any] = {
        "cosine": {
            "texts": len(cosines),
            "mean": round(float(cosines.mean()), 6),
            "min": round(float(cosines.min()), 6),
            "p01": round(float(np.quantile(cosines, 0.01)), 6),
        }
    }
    added = {
        "cosine_mean": round(float(cosines.mean()), 6),
        "cosine_min": round(float(cosines.min()), 6),
    }
    parent_added = {"cosine_mean": 1.0, "cosine_min": 1.0}
    if texts.labels is not None:
        base = _correct(parent, texts.labels)
        cand = _correct(variant, texts.labels)
        difference = paired_bootstrap(list(base), list(cand), metric="accuracy")
        test = mcnemar_exact(list(base.astype(bool)), list(cand.astype(bool)))
        comparison["accuracy"] = {
            "texts": len(base),
            "folds": FOLDS,
            "parent": round(difference.baseline, 4),
            "variant": round(difference.candidate, 4),
            "difference": round(difference.difference, 4),
            "ci_low": round(difference.ci_low, 4),
            "ci_high": round(difference.ci_high, 4),
            "significant": difference.significant,
            "mcnemar_p": round(test.p_value, 4),
            "discordant": test.baseline_only + test.candidate_only,
        }
        added["accuracy"] = round(difference.candidate, 4)
        parent_added["accuracy"] = round(difference.baseline, 4)
    return comparison, added, parent_added


def _correct(vectors: NDArray[np.float32], labels: list[str]) -> NDArray[np.float64]:
    """1.0 where a logistic regression trained on the other folds labels the text right
    (stratified folds fixed by the seed, so both models see the same splits)."""
    import numpy as np

    counts = {label: labels.count(label) for label in set(labels)}
    folds = min(FOLDS, min(counts.values()))
    if folds < 2:
        raise InvalidCompression(
            "every label needs at least two texts to compare accuracy (texts.label_field)",
            param="texts.label_field",
        )
    splitter = sk_selection.StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    classifier = sk_linear.LogisticRegression(C=10.0, max_iter=2000, random_state=0)
    # One BLAS thread, as distillation fits its head (more only contend on 2 cores); the
    # comparison is of two encoders under the same fit, converged or not.
    with warnings.catch_warnings(), threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", sk_exceptions.ConvergenceWarning)
        predicted = sk_selection.cross_val_predict(classifier, vectors, labels, cv=splitter)
    return np.asarray(predicted == np.asarray(labels), dtype=np.float64)


def parent_notes(parent: VariantOut) -> list[str]:
    return []


def notes(parent: VariantOut, row: VariantOut) -> list[str]:
    said = []
    cosine = row.comparison.get("cosine")
    if cosine:
        said.append(
            f"cosine with the float vectors: mean {cosine['mean']:.4f}, lowest {cosine['min']:.4f}"
        )
    accuracy = row.comparison.get("accuracy")
    if accuracy:
        verdict = "significant" if accuracy["significant"] else "not significant"
        said.append(
            f"accuracy {accuracy['variant']:.4f} against {accuracy['parent']:.4f} "
            f"({verdict} at 95 %, McNemar p = {accuracy['mcnemar_p']:.3g})"
        )
    return said
