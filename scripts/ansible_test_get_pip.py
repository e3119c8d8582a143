"""Stand-in for get-pip.py, which ansible-test downloads from ci-files.testing.ansible.com.

That host is unreachable here (only PyPI, Debian and npm are). ansible-test runs this file
as `python get_pip.py [--disable-pip-version-check] [--no-setuptools] [--no-wheel] pip==X`
inside a fresh venv; the same result comes from the interpreter's own ensurepip followed by
pip installing the exact requested packages from PyPI.
"""
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *(a for a in sys.argv[1:] if a not in GET_PIP_ONLY)])
