"""User-facing text speaks of features, never of internal tracking numbers.

Readers of the README, docs, role READMEs and variables, argument specs, module
documentation and examples cannot resolve "seed 002" or "issue 9"; the systems the
collection is compared with have names, explained in docs/glossary.md.
"""
from __future__ import annotations

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PATTERNS = ["README.md", "docs/*.md", "roles/*/README.md", "roles/*/defaults/**/*.yml",
            "roles/*/meta/*.yml", "plugins/modules/*.py", "examples/*", "apps/*/README.md"]
# "seed 002", "seeds 000/001", "issue 9", "004-style", "003's keys", "(003)", "the 002 baseline".
INTERNAL = re.compile(r"\bseeds? ?0\d\d\b|\bissue \d+\b|\b00\d-style\b|\b00[0-4]'s\b|\(00[0-4]\)|\bthe 00[0-4]\b",
                      re.IGNORECASE)


def test_no_internal_references_in_user_facing_text():
    hits = []
    for pattern in PATTERNS:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if INTERNAL.search(line):
                        hits.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    assert not hits, "say what the feature is (docs/glossary.md names the source systems):\n" + "\n".join(hits)


def test_glossary_anchors_that_docs_link_exist():
    with open(os.path.join(ROOT, "docs", "glossary.md"), encoding="utf-8") as handle:
        anchors = {re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
                   for line in handle if line.startswith("## ")}
    missing = []
    for path in glob.glob(os.path.join(ROOT, "docs", "*.md")):
        with open(path, encoding="utf-8") as handle:
            for anchor in re.findall(r"glossary\.md#([a-z0-9-]+)", handle.read()):
                if anchor not in anchors:
                    missing.append(f"{os.path.basename(path)}: #{anchor}")
    assert not missing, f"links to glossary sections that do not exist: {missing} (have {sorted(anchors)})"
