"""What the tests import: factories, harnesses and helpers. Fixtures live in the conftest.py files, which
import from here; nothing here imports a conftest."""
