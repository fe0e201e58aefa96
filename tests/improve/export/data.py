"""A dataset version whose items cover what an export meets: a curated log item with its
request's messages, a correction, a completion prompt, a tool call and its result, a
file item (question/answer), and items that cannot be converted, each for its own reason."""

from __future__ import annotations

from typing import Any

from modelyard.evaluate.datasets import DatasetOut, DatasetService
from modelyard.store import Store
from tests.conftest import AppClient

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def items() -> list[dict[str, Any]]:
    return [
        {  # 0: a logged chat request, its answer in output
            "request_id": "r0",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2+2?"},
            ],
            "input": "What is 2+2?",
            "output": "4",
            "corrected": None,
            "split": "train",
        },
        {  # 1: a reviewer corrected the answer
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "input": "Capital of France?",
            "output": "Lyon",
            "corrected": "Paris",
            "split": "train",
        },
        {"prompt": "Say hi", "input": "Say hi", "output": "hi", "split": "dev"},  # 2
        {  # 3: a tool call, its result, then the answer
            "messages": [
                {"role": "developer", "content": "Use the tools."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
            ],
            "tools": [WEATHER_TOOL],
            "output": "Sunny and 21 °C in Paris.",
            "split": "train",
        },
        {"messages": [{"role": "user", "content": "no answer"}], "output": "", "split": "train"},
        {  # 5: an image: only text is exported
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:,"}}],
                }
            ],
            "output": "a cat",
            "split": "test",
        },
        {  # 6: a role OpenAI's format has no more
            "messages": [{"role": "function", "name": "f", "content": "x"}],
            "output": "y",
            "split": "train",
        },
        {"messages": [{"role": "user", "content": "  "}], "output": "z", "split": "train"},  # 7
        {"question": "2 * 3?", "answer": 6, "split": "test"},  # 8: a file's item
        {  # 9: the answer is a tool call
            "messages": [{"role": "user", "content": "Weather in Oslo?"}],
            "tools": [WEATHER_TOOL],
            "output": {
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                    }
                ]
            },
            "split": "train",
        },
    ]


CONVERTIBLE = {0, 1, 2, 3, 8, 9}
TRAIN = {0, 1, 3, 9}  # the convertible items of the train split
SKIPPED = {4: "no_answer", 5: "non_text_content", 6: "unknown_role", 7: "empty_content"}


def register(store: Store, name: str = "support") -> DatasetOut:
    return DatasetService(store).register_items(name, items(), {"kind": "test"}, "tests")


async def finetune_pages(api: AppClient) -> dict[str, str]:
    """An export and a fine-tune registered from it (an upstream that is never asked), and
    the URL of the console page that shows them, keyed by its route's path."""
    register(api.services.store)
    made = await api.post("/api/finetune/exports", json={"dataset": "support"})
    assert made.status_code == 201, made.text
    body = {
        "model": "ft",
        "from_export": str(made.json()["id"]),
        "upstream": "http://127.0.0.1:9/v1",
        "upstream_model": "ft:support",
    }
    registered = await api.post("/api/finetune/models", json=body)
    assert registered.status_code == 201, registered.text
    return {"/ui/finetune": "/ui/finetune"}
