"""Router tests import the app package from apps/router (it is not an Ansible plugin)."""
import os
import sys

_APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "apps", "router")
if os.path.abspath(_APP) not in sys.path:
    sys.path.insert(0, os.path.abspath(_APP))
