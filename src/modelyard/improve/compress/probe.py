"""Running an engine kind's probe (``python -m modelyard.engines.<kind>.probe``) in a child
process: its measurements are of the artifact alone (its memory is the child's), and the
server's event loop only waits on the child's exit."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelyard.improve.compress.errors import MeasurementFailed

OUTPUT_TAIL = 2000  # characters of the child's output kept for a failure's message


async def run_probe(module: str, spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """What the probe ``module`` measured for ``spec``; MeasurementFailed with the end of
    its output when it exits otherwise than with a result. A cancelled caller kills it."""
    with tempfile.TemporaryDirectory(prefix="modelyard-probe-") as directory:
        spec_path, result_path = Path(directory) / "spec.json", Path(directory) / "result.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            str(spec_path),
            str(result_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(child.communicate(), timeout_s)
        except asyncio.CancelledError:
            child.kill()
            await child.wait()
            raise
        except TimeoutError:
            child.kill()
            await child.wait()
            raise MeasurementFailed(f"{module} took longer than {timeout_s:g} s") from None
        text = output.decode("utf-8", "replace")[-OUTPUT_TAIL:]
        if child.returncode != 0 or not result_path.is_file():
            raise MeasurementFailed(
                f"{module} exited with status {child.returncode}: {text.strip() or 'no output'}"
            )
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
        return result
