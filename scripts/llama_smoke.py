"""Decode a few tokens with the default GGUF in a child process: a llama.cpp build that
crashes (a segfault kills the child) or cannot decode is caught at setup."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import llama_cpp
from modelyard.bootstrap import smollm2_path
llm = llama_cpp.Llama(model_path=str(smollm2_path()), n_ctx=256, n_threads=2, verbose=False)
print(llm("The sky is", max_tokens=4)["choices"][0]["text"])
"""


def main() -> int:
    run = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300, check=False
    )
    if run.returncode != 0:
        print(run.stdout[-2000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
        print(f"llama.cpp smoke test: exit code {run.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
