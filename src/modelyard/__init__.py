"""modelyard: ship language models as products."""

__version__ = "0.1.0"
