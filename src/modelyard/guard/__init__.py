"""Guard: API keys and roles, rate limits, budgets, PII, audit: what a request may do."""
