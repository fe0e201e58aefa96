"""The ``classifier`` engine kind: an embedding model plus a trained linear head, served
through the chat API (the reply is the label, ``logprobs`` the labels' probabilities)."""

from modelyard.engines.classifier.engine import ClassifierEngine

__all__ = ["ClassifierEngine"]
