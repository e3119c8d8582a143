"""Add `--hash=sha256:` to every pin of a lock file, for `pip install --require-hashes`.

    python3 scripts/lock_hashes.py PYTHON requirements/NAME.lock [--also PYTHON ...]

PYTHON (the interpreter the venv is built with) downloads exactly the files pip picks on this
kind of machine (`pip download --no-deps`: PyPI, the local find-links and indexes pip is
configured with) and each pin gets the sha256 of its file; each `--also` interpreter (another
Python minor scripts/venv.sh accepts for the venv) adds the files it picks (a cp313 wheel next
to the cp312 one). A file with the same name on a local mirror and on PyPI has the same bytes,
so the same hash; with hashes, pip skips candidates whose hash is not listed. The torch CPU
wheel exists only as a local file: its pin gets that file's sha256. Hashes already in the lock
are replaced. One line per pin (scripts/venv.sh reads the torch pin with grep). Run by
scripts/lock.sh for every lock.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import tempfile

PIN = re.compile(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;]+)")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def file_key(filename: str) -> tuple[str, str]:
    if filename.endswith(".whl"):
        dist, version = filename.split("-")[:2]
    else:
        match = re.match(r"(.+)-([^-]+)\.(tar\.gz|zip)$", filename)
        if not match:
            raise SystemExit(f"lock_hashes: cannot name {filename}")
        dist, version = match.group(1), match.group(2)
    return norm(dist), version.lower()


def downloaded(python: str, pins: list[str]) -> dict[tuple[str, str], list[str]]:
    """(name, version) -> sha256 of each file `python`'s pip downloads for `pins`."""
    hashes: dict[tuple[str, str], list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        reqs = os.path.join(tmp, "pins.txt")
        with open(reqs, "w", encoding="utf-8") as handle:
            handle.write("\n".join(pins) + "\n")
        subprocess.run([python, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                        "-r", reqs, "-d", os.path.join(tmp, "files")], check=True)
        for filename in sorted(os.listdir(os.path.join(tmp, "files"))):
            with open(os.path.join(tmp, "files", filename), "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            hashes.setdefault(file_key(filename), []).append(digest)
    return hashes


def main(pythons: list[str], lock: str) -> None:
    with open(lock, encoding="utf-8") as handle:
        lines = [line.split(" --hash=")[0].rstrip() for line in handle.read().splitlines()]
    pins = [line for line in lines if PIN.match(line)]
    hashes: dict[tuple[str, str], list[str]] = {}
    for python in pythons:
        for key, digests in downloaded(python, pins).items():
            hashes.setdefault(key, []).extend(d for d in digests if d not in hashes.get(key, []))
    out = []
    for line in lines:
        match = PIN.match(line)
        if match:
            name, version = norm(match.group(1)), match.group(3).lower()
            # A version's epoch (N!) is not in its file names.
            found = hashes.get((name, version)) or hashes.get((name, version.split("!")[-1]))
            if not found:
                raise SystemExit(f"lock_hashes: no file downloaded for {line}")
            line += "".join(f" --hash=sha256:{digest}" for digest in found)
        out.append(line)
    with open(lock, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("python", help="the interpreter the venv is built with")
    parser.add_argument("lock", help="requirements/NAME.lock, rewritten in place")
    parser.add_argument("--also", action="append", default=[], metavar="PYTHON",
                        help="another interpreter the venv may be built with (its files' hashes are added)")
    args = parser.parse_args()
    main([args.python, *args.also], args.lock)
