"""Quality gates: near duplicates, PII, token lengths, format, facts, readiness."""
