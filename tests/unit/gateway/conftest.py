"""Gateway tests import the app package from apps/gateway (it is not an Ansible plugin)."""
import os
import sys

_APP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "apps", "gateway"))
if _APP not in sys.path:
    sys.path.insert(0, _APP)
