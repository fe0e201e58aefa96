"""``modelyard chat``: an interactive, streaming terminal chat against a running server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import click
import httpx

from modelyard.config import Settings
from modelyard.guard.keys import read_admin_key


def stream_reply(
    client: httpx.Client, model: str, messages: list[dict[str, str]], options: dict[str, object]
) -> Iterator[str]:
    """Yield the reply's text pieces as the server streams them."""
    body = {"model": model, "messages": messages, "stream": True, **options}
    with client.stream("POST", "/chat/completions", json=body) as response:
        if response.status_code >= 400:
            response.read()
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise click.ClickException(f"server answered {response.status_code}: {message}")
        for line in response.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            event = json.loads(line[5:])
            if "error" in event:
                raise click.ClickException(event["error"].get("message", "stream failed"))
            for choice in event.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text


@click.command()
@click.option("-m", "--model", default="default", show_default=True, help="Public model name.")
@click.option(
    "--base-url", default=None, help="OpenAI-compatible base URL (default: this machine)."
)
@click.option(
    "--api-key",
    default=None,
    help="Key sent to the server (default: MODELYARD_API_KEY, else home/admin.key).",
)
@click.option("-s", "--system", default=None, help="System prompt.")
@click.option("-t", "--temperature", type=float, default=None, help="Sampling temperature.")
@click.option("--max-tokens", type=int, default=None, help="Reply length limit.")
@click.option("-p", "--prompt", default=None, help="Ask one question, print the reply, exit.")
def chat(
    model: str,
    base_url: str | None,
    api_key: str | None,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    prompt: str | None,
) -> None:
    """Chat with a model in the terminal (/reset clears the conversation, /exit leaves)."""
    settings = Settings()
    url = base_url or f"http://{settings.host}:{settings.port}/v1"
    options: dict[str, object] = {}
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    key = key or read_admin_key(settings.home)
    if not key:
        raise click.ClickException(
            "no API key: pass --api-key, set MODELYARD_API_KEY, or run `modelyard serve` once "
            "so it writes home/admin.key"
        )
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(
        base_url=url, headers=headers, timeout=httpx.Timeout(600, connect=5)
    ) as client:
        if prompt is not None:
            _turn(client, model, history, prompt, options)
            return
        click.echo(f"chatting with {model} at {url} — /reset clears, /exit or Ctrl-D leaves")
        while True:
            try:
                text = click.prompt(click.style("you", fg="cyan"), prompt_suffix="> ")
            except (EOFError, click.Abort):
                click.echo()
                return
            if text.strip() == "/exit":
                return
            if text.strip() == "/reset":
                history = history[:1] if system else []
                click.echo("(conversation cleared)")
                continue
            _turn(client, model, history, text, options)


def _turn(
    client: httpx.Client,
    model: str,
    history: list[dict[str, str]],
    text: str,
    options: dict[str, object],
) -> None:
    history.append({"role": "user", "content": text})
    pieces: list[str] = []
    try:
        for piece in stream_reply(client, model, history, options):
            pieces.append(piece)
            click.echo(piece, nl=False)
    except KeyboardInterrupt:
        click.echo(" [stopped]")
    finally:
        click.echo()
    if pieces:
        history.append({"role": "assistant", "content": "".join(pieces)})
    else:
        history.pop()
