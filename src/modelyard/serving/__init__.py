"""Serving: the OpenAI wire protocol, HTTP routes, streaming and the error shape."""
