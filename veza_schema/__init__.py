"""veza-schema: Veza's PostgreSQL schema as code (YAML model, lint, migrations, diff)."""

__version__ = "0.1.0"
