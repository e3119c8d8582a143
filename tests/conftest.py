"""Make `ansible_collections.llmops.platform` importable from the checkout itself, and the
fakes in tests/fakes (one fake OpenAI server for every test); hold CI to 0 skips.

.collections/ansible_collections/llmops/platform is a symlink to the repository root.

With CI=true a skip means a prerequisite `make test` should have installed is missing, so it
is reported as a failure (collection-time skips such as importorskip too). Only tests marked
`optional_extra` (truly optional extras; none are needed to prove the platform) may skip there.
"""
import os
import sys

import pytest

_COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            ".collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
_FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakes")
if _FAKES not in sys.path:
    sys.path.insert(0, _FAKES)

CI = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config):
    config.addinivalue_line("markers", "optional_extra(reason): may skip even with CI=true (a truly optional extra)")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip(report, where: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{where} skipped with CI=true: {_skip_reason(report)}\n"
                       "A prerequisite is missing: `make test` installs what the tests need "
                       "(mark a truly optional extra with @pytest.mark.optional_extra).")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if CI and report.skipped and not hasattr(report, "wasxfail") and not item.get_closest_marker("optional_extra"):
        _fail_skip(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if CI and report.skipped:
        _fail_skip(report, collector.nodeid)
