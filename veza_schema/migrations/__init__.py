"""Migration files (SQLx-compatible), their history table, and the runner."""
