"""Helpers shared by the test modules (fixtures shared by many live in tests/conftest.py)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]     # the repository's root
EXAMPLES = REPO / "examples"
