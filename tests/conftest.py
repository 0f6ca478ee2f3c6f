"""The suite's fixtures come from plugins in ``tests/fixtures/``; helpers from ``tests/helpers.py``."""

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.shipped_schema", "tests.fixtures.partman",
                  "tests.fixtures.hygiene", "tests.fixtures.properties"]
