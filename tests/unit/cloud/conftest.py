import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cloud_fixtures import pubkey  # noqa: E402,F401  (fixture re-export)
