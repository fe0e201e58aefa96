"""Export for an external trainer: a dataset version as OpenAI chat fine-tuning JSONL or
ShareGPT, streamed, deterministic and recorded; and what the trainer made (a GGUF file or an
upstream model) registered as a version whose lineage names the export."""
