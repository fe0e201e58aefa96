"""Build the ONNX graph of a sentence-transformers BERT model from its safetensors weights.

Written op by op after Hugging Face's ``BertModel`` (absolute positions, token type 0,
post-LayerNorm, erf GELU) followed by sentence-transformers' mean pooling and optional L2
normalisation, so serving needs neither torch nor an exporter. The graph takes
``input_ids`` and ``attention_mask`` (int64, ``[batch, tokens]``) and returns
``sentence_embedding`` (float32, ``[batch, hidden]``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

from modelyard.engines.embedding.model_dir import SentenceModelDir, UnsupportedModel

# Bump when the graph changes, so cached files of the old graph are not reused.
GRAPH_VERSION = 1
OPSET = 17
OUTPUT = "sentence_embedding"
# Hugging Face masks padded keys with the float32 minimum; softmax then gives them 0.
_MASKED = float(np.finfo(np.float32).min)


class _Graph:
    """Nodes and initializers being collected; ``op`` returns the name of the node's output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: NDArray[np.generic]) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
        return name


def build_graph(model: SentenceModelDir) -> onnx.ModelProto:
    weights = load_file(str(model.weights))
    g = _Graph()
    hidden = _embeddings(g, model, weights)
    bias = _attention_bias(g)
    for layer in range(model.shape.layers):
        hidden = _layer(g, model, weights, layer, hidden, bias)
    pooled = _mean_pool(g, hidden)
    if model.normalize:
        pooled = _l2_normalize(g, pooled)
    g.op("Identity", [pooled], OUTPUT)
    graph = helper.make_graph(
        g.nodes,
        "sentence_embedding",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", model.dimensions])],
        g.initializers,
    )
    # Not run through onnx.checker: it copies the 90 MB of weights once more, and
    # ONNX Runtime checks the graph when it loads it.
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="modelyard"
    )


def _weight(weights: Mapping[str, NDArray[np.float32]], name: str) -> NDArray[np.float32]:
    for key in (name, f"bert.{name}"):
        if key in weights:
            return weights[key].astype(np.float32, copy=False)
    raise UnsupportedModel(f"the weights have no tensor '{name}'")


def _embeddings(
    g: _Graph, model: SentenceModelDir, weights: Mapping[str, NDArray[np.float32]]
) -> str:
    words = g.op(
        "Gather",
        [g.const("emb.words", _weight(weights, "embeddings.word_embeddings.weight")), "input_ids"],
        "emb.gathered",
    )
    token_type = _weight(weights, "embeddings.token_type_embeddings.weight")[0]
    typed = g.op("Add", [words, g.const("emb.token_type0", token_type)], "emb.typed")
    length = g.op("Shape", ["input_ids"], "emb.length", start=1, end=2)
    positions = g.op(
        "Slice",
        [
            g.const("emb.positions", _weight(weights, "embeddings.position_embeddings.weight")),
            g.const("emb.zero", np.array([0], dtype=np.int64)),
            length,
            g.const("emb.axis0", np.array([0], dtype=np.int64)),
        ],
        "emb.positions_used",
    )
    summed = g.op("Add", [typed, positions], "emb.summed")
    return _layer_norm(g, weights, "embeddings.LayerNorm", summed, model.shape.layer_norm_eps)


def _attention_bias(g: _Graph) -> str:
    """0 where a token may be attended to, the float32 minimum at padding: ``[b, 1, 1, t]``."""
    mask = g.op("Cast", ["attention_mask"], "mask.float", to=TensorProto.FLOAT)
    g.const("one", np.array(1.0, dtype=np.float32))
    padding = g.op("Sub", ["one", mask], "mask.padding")
    bias = g.op("Mul", [padding, g.const("mask.min", np.array(_MASKED, np.float32))], "mask.bias")
    axes = g.const("mask.axes", np.array([1, 2], dtype=np.int64))
    return g.op("Unsqueeze", [bias, axes], "mask.bias4d")


def _layer(
    g: _Graph,
    model: SentenceModelDir,
    weights: Mapping[str, NDArray[np.float32]],
    index: int,
    hidden: str,
    bias: str,
) -> str:
    p = f"encoder.layer.{index}"
    eps = model.shape.layer_norm_eps
    context = _self_attention(g, model, weights, p, hidden, bias)
    attended = _linear(g, weights, f"{p}.attention.output.dense", context)
    residual = g.op("Add", [attended, hidden], f"{p}.attention.residual")
    hidden = _layer_norm(g, weights, f"{p}.attention.output.LayerNorm", residual, eps)
    inner = _gelu(g, _linear(g, weights, f"{p}.intermediate.dense", hidden), p)
    out = _linear(g, weights, f"{p}.output.dense", inner)
    residual = g.op("Add", [out, hidden], f"{p}.output.residual")
    return _layer_norm(g, weights, f"{p}.output.LayerNorm", residual, eps)


def _self_attention(
    g: _Graph,
    model: SentenceModelDir,
    weights: Mapping[str, NDArray[np.float32]],
    p: str,
    hidden: str,
    bias: str,
) -> str:
    heads = model.shape.heads
    head_size = model.shape.hidden // heads
    split = g.const(f"{p}.split", np.array([0, 0, heads, head_size], dtype=np.int64))

    def heads_of(name: str, perm: list[int]) -> str:
        projected = _linear(g, weights, f"{p}.attention.self.{name}", hidden)
        shaped = g.op("Reshape", [projected, split], f"{p}.{name}.heads")
        return g.op("Transpose", [shaped], f"{p}.{name}.t", perm=perm)

    query = heads_of("query", [0, 2, 1, 3])  # [b, h, t, d]
    key = heads_of("key", [0, 2, 3, 1])  # [b, h, d, t]
    value = heads_of("value", [0, 2, 1, 3])
    scale = g.const(f"{p}.scale", np.array(1.0 / math.sqrt(head_size), dtype=np.float32))
    scores = g.op("MatMul", [query, key], f"{p}.scores")
    scaled = g.op("Mul", [scores, scale], f"{p}.scaled")
    masked = g.op("Add", [scaled, bias], f"{p}.masked")
    probs = g.op("Softmax", [masked], f"{p}.probs", axis=-1)
    context = g.op("MatMul", [probs, value], f"{p}.context")
    merged = g.op("Transpose", [context], f"{p}.context.t", perm=[0, 2, 1, 3])
    joined = g.const(f"{p}.join", np.array([0, 0, model.shape.hidden], dtype=np.int64))
    return g.op("Reshape", [merged, joined], f"{p}.context.joined")


def _linear(g: _Graph, weights: Mapping[str, NDArray[np.float32]], prefix: str, source: str) -> str:
    # torch keeps Linear weights as [out, in]; MatMul wants [in, out].
    weight = g.const(f"{prefix}.wt", _weight(weights, f"{prefix}.weight").T)
    product = g.op("MatMul", [source, weight], f"{prefix}.matmul")
    return g.op(
        "Add", [product, g.const(f"{prefix}.b", _weight(weights, f"{prefix}.bias"))], prefix
    )


def _layer_norm(
    g: _Graph, weights: Mapping[str, NDArray[np.float32]], prefix: str, source: str, eps: float
) -> str:
    scale = g.const(f"{prefix}.w", _weight(weights, f"{prefix}.weight"))
    shift = g.const(f"{prefix}.b", _weight(weights, f"{prefix}.bias"))
    return g.op("LayerNormalization", [source, scale, shift], prefix, axis=-1, epsilon=eps)


def _gelu(g: _Graph, source: str, p: str) -> str:
    """0.5 · x · (1 + erf(x / √2)), the exact GELU (ONNX Runtime fuses it into one kernel)."""
    root2 = g.const(f"{p}.gelu.sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = g.const(f"{p}.gelu.half", np.array(0.5, dtype=np.float32))
    erf = g.op("Erf", [g.op("Div", [source, root2], f"{p}.gelu.scaled")], f"{p}.gelu.erf")
    plus_one = g.op("Add", [erf, "one"], f"{p}.gelu.plus1")
    halved = g.op("Mul", [source, half], f"{p}.gelu.halved")
    return g.op("Mul", [halved, plus_one], f"{p}.gelu")


def _mean_pool(g: _Graph, hidden: str) -> str:
    """Average of the token vectors where the attention mask is 1."""
    axes = g.const("pool.axes", np.array([2], dtype=np.int64))
    mask = g.op("Unsqueeze", ["mask.float", axes], "pool.mask")
    tokens = g.const("pool.tokens_axis", np.array([1], dtype=np.int64))
    masked = g.op("Mul", [hidden, mask], "pool.masked")
    summed = g.op("ReduceSum", [masked, tokens], "pool.sum", keepdims=0)
    count = g.op("ReduceSum", [mask, tokens], "pool.count", keepdims=0)
    floor = g.const("pool.floor", np.array(1e-9, dtype=np.float32))
    return g.op("Div", [summed, g.op("Max", [count, floor], "pool.count.min")], "pool.mean")


def _l2_normalize(g: _Graph, source: str) -> str:
    norm = g.op("ReduceL2", [source], "norm.l2", axes=[1], keepdims=1)
    floor = g.const("norm.floor", np.array(1e-12, dtype=np.float32))
    return g.op("Div", [source, g.op("Max", [norm, floor], "norm.l2.min")], "norm.out")
