import sys
from pathlib import Path

# tests/ on the path for the shared helpers package (servers and fixtures).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.fixtures import file_server, hub, isolated_caches  # noqa: F401
