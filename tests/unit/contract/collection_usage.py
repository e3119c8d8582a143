"""Which Ansible collections a tree of playbooks, roles, templates and plugins uses.

Collected from what Ansible resolves by fully qualified name:
- task keywords that name a module or action (`kubernetes.core.k8s:`), `action:`/`module:`
  values and `module_defaults` keys (also `group/NS.NAME.GROUP`);
- role references (`role: NS.NAME.ROLE`), connection and inventory plugins
  (`ansible_connection:`, `plugin:`), callbacks named in ansible.cfg;
- Jinja anywhere (YAML strings, *.j2): `lookup('NS.NAME.X')`, `query(...)`, `| NS.NAME.FILTER`,
  `is NS.NAME.TEST`;
- Python: `ansible_collections.NS.NAME` imports, and quoted FQCNs of installed collections
  (how test harnesses name callbacks, e.g. ANSIBLE_STDOUT_CALLBACK).
"""
from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterable, Iterator

import yaml

FQCN = r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*"
_FQCN_KEY = re.compile(rf"^(?:group/)?({FQCN})$")
_JINJA = [
    re.compile(rf"\b(?:lookup|query|q)\(\s*['\"]({FQCN})['\"]"),
    re.compile(rf"\|\s*({FQCN})\b"),
    re.compile(rf"\bis\s+(?:not\s+)?({FQCN})\b"),
]
_PY_IMPORT = re.compile(r"\bansible_collections\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)")
_PY_QUOTED = re.compile(rf"['\"]({FQCN})['\"]")
# Values of these keys are plugin or role names.
_NAME_KEYS = {"action", "module", "role", "ansible_connection", "plugin", "ansible_network_os"}
# Always there: ansible-core's own names.
BUILTIN = {"ansible.builtin", "ansible.legacy"}


def collection_of(fqcn: str) -> str:
    return ".".join(fqcn.split(".")[:2])


def _walk(node, in_list: bool = False) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                match = _FQCN_KEY.match(key)
                # Task and handler keywords sit in mappings that are list items; module_defaults too.
                if match and (in_list or key.startswith("group/")):
                    yield match.group(1)
                if key in _NAME_KEYS and isinstance(value, str) and re.fullmatch(FQCN, value):
                    yield value
                if key == "module_defaults" and isinstance(value, dict):
                    for name in value:
                        match = _FQCN_KEY.match(str(name))
                        if match:
                            yield match.group(1)
            yield from _walk(value, in_list=False)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, in_list=True)
    elif isinstance(node, str):
        yield from jinja_names(node)


def jinja_names(text: str) -> Iterator[str]:
    for pattern in _JINJA:
        yield from pattern.findall(text)


def yaml_names(text: str) -> Iterator[str]:
    for document in yaml.safe_load_all(text):
        yield from _walk(document, in_list=isinstance(document, list))


def python_names(text: str, known_collections: set[str]) -> Iterator[str]:
    for namespace, name in _PY_IMPORT.findall(text):
        yield f"{namespace}.{name}.module_utils"
    for fqcn in _PY_QUOTED.findall(text):
        if collection_of(fqcn) in known_collections:
            yield fqcn


def ansible_cfg_names(text: str) -> Iterator[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    for key in ("stdout_callback", "callbacks_enabled", "callback_whitelist"):
        for value in parser.get("defaults", key, fallback="").split(","):
            if re.fullmatch(FQCN, value.strip()):
                yield value.strip()


def usage(root: str, paths: Iterable[str], known_collections: set[str]) -> dict[str, set[str]]:
    """Collection -> the files that use it, for every file under PATHS (relative to ROOT)."""
    found: dict[str, set[str]] = {}
    for rel in paths:
        for path in _files(os.path.join(root, rel)):
            names = _names_in(path, known_collections)
            for fqcn in names:
                found.setdefault(collection_of(fqcn), set()).add(os.path.relpath(path, root))
    return found


def _files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    result = []
    for directory, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in {"__pycache__", ".pytest_cache"})
        result.extend(os.path.join(directory, name) for name in sorted(files))
    return result


def _names_in(path: str, known_collections: set[str]) -> list[str]:
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (UnicodeDecodeError, OSError):
        return []
    if name.endswith((".yml", ".yaml")):
        return list(yaml_names(text))
    if name.endswith(".j2"):
        return list(jinja_names(text))
    if name.endswith(".py"):
        return list(python_names(text, known_collections))
    if name == "ansible.cfg":
        return list(ansible_cfg_names(text))
    return []
