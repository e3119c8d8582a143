"""Router tests import the app package from apps/router and the shared one from apps/common
(they are not Ansible plugins)."""
import os
import sys

_APPS = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "apps"))
for _app in ("common", "router"):
    if os.path.join(_APPS, _app) not in sys.path:
        sys.path.insert(0, os.path.join(_APPS, _app))
