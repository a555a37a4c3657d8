"""Shared fixtures: an isolated cache folder for every test, and the real data sets (opt-in tier)."""
import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's derived data (arrays, features, weights) out of the user's cache."""
    monkeypatch.setenv("DCGAN_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets (../shared/data or $DCGAN_BENCH_SHARED_DATA); the test skips without them."""
    root = Path(os.environ.get("DCGAN_BENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    return root
