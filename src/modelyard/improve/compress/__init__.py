"""Compression: quantised variants of a version (llama.cpp's quantiser for a GGUF, ONNX
Runtime's dynamic int8 quantisation for an embedding model), each registered as a version
whose lineage names its parent and method, and measured beside the parent: size, load time,
memory, speed, and quality (perplexity or agreement) with a paired comparison."""
