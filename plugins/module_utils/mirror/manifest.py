"""The mirror's manifest: manifest.json (read by preflight) and manifest.md (for people).

Every entry: name, kind, version, source, sha256, size, path (under the mirror directory),
status (`fetched` or `not fetched here: <reason>`), how it was verified, and the roles that
fetch it; wheels and models list their files; a Debian package pulled in as a dependency says
which requested packages need it (`required_by`).
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Optional

FORMAT = 1
FETCHED = "fetched"
NOT_FETCHED = "not fetched here: "


def load(path_or_text: str) -> dict[str, Any]:
    """A manifest from a file path or its JSON text; {} when the file does not exist."""
    text = path_or_text
    if not path_or_text.lstrip().startswith("{"):
        if not os.path.isfile(path_or_text):
            return {}
        with open(path_or_text, encoding="utf-8") as handle:
            text = handle.read()
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("artifacts"), list):
        raise ValueError(f"not a mirror manifest of format {FORMAT} (rebuild the mirror with playbooks/mirror.yml)")
    return data


def by_name(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in manifest.get("artifacts", [])}


def document(artifacts: list[dict[str, Any]], meta: Mapping[str, Any]) -> dict[str, Any]:
    ordered = sorted(artifacts, key=lambda a: (a["kind"], a["name"]))
    return {"format": FORMAT, **dict(meta), "artifacts": ordered}


def same_content(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Equal apart from when they were written."""
    strip = {"built_at"}
    return {k: v for k, v in old.items() if k not in strip} == {k: v for k, v in new.items() if k not in strip}


def human_size(size: Optional[int]) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def table(manifest: Mapping[str, Any]) -> str:
    """The manifest as a Markdown table, one row per artifact, the not-fetched ones first."""
    rows = manifest.get("artifacts", [])
    fetched = [a for a in rows if a.get("status") == FETCHED]
    missing = [a for a in rows if a.get("status") != FETCHED]
    total = sum(a.get("size") or 0 for a in fetched)
    lines = [
        "# Mirror manifest",
        "",
        f"Built {manifest.get('built_at', '')} for {manifest.get('selection_summary', '')}.",
        f"{len(fetched)} fetched ({human_size(total)}), {len(missing)} not fetched.",
        "",
        "| artifact | kind | version | source | sha256 | size | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in missing + fetched:
        lines.append("| " + " | ".join(_cell(v) for v in (
            item["name"], item["kind"], item.get("version", ""), item.get("source", ""), item.get("sha256", ""),
            human_size(item.get("size")), item.get("status", ""))) + " |")
    return "\n".join(lines) + "\n"


def write(mirror_dir: str, doc: Mapping[str, Any], json_name: str, table_name: str) -> bool:
    """Write both files unless the content is unchanged (then the old build time stays)."""
    path = os.path.join(mirror_dir, json_name)
    old = load(path) if os.path.isfile(path) else {}
    if old and same_content(old, doc):
        if not os.path.isfile(os.path.join(mirror_dir, table_name)):
            _atomic(os.path.join(mirror_dir, table_name), table(old))
            return True
        return False
    _atomic(path, json.dumps(doc, indent=1, sort_keys=False) + "\n")
    _atomic(os.path.join(mirror_dir, table_name), table(doc))
    return True


def _atomic(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def missing(expected: Iterable[Mapping[str, Any]], manifest: Mapping[str, Any]) -> list[str]:
    """One message per expected artifact the manifest does not hold as fetched (and current):
    a Debian package at another version, wheels of a lock that has changed since, a file whose
    pinned sha256 differs, or anything not fetched."""
    have = by_name(manifest)
    out = []
    for want in expected:
        name = want["name"]
        got = have.get(name)
        if got is None:
            out.append(f"{name} ({want.get('source', '')}) is not in the mirror's manifest")
            continue
        if got.get("status") != FETCHED:
            out.append(f"{name}: {got.get('status')}")
            continue
        if want["kind"] == "deb" and want.get("version") and got.get("version") != want["version"]:
            out.append(f"{name}: the mirror has {got.get('version')}, the play installs {want['version']}")
        elif want["kind"] == "wheels" and want.get("sha256") and got.get("sha256") != want["sha256"]:
            out.append(f"{name}: {want.get('source')} changed since the mirror was built (rebuild it)")
        elif want["kind"] in ("file", "chart") and want.get("sha256") and got.get("sha256") != want["sha256"]:
            out.append(f"{name}: the mirror's file has sha256 {got.get('sha256')}, versions.yml pins {want['sha256']}")
        elif want["kind"] == "image" and want.get("sha256") and got.get("sha256") != want["sha256"]:
            out.append(f"{name}: the mirror has digest sha256:{got.get('sha256')}, "
                       f"the play pins sha256:{want['sha256']}")
    return out
