"""Every role's meta/argument_specs.yml documents its defaults, and agrees with them.

Both ways: each variable in a role's defaults/ has an option in its argument specs (with a
type and a description), and each option that states a default states the value the role
really has (its own defaults, or platform_defaults' for the shared variables every role
reads). Literal defaults are validated against the spec by ansible-core's own validator
(types, choices, elements, sub-options), as the role's first task would validate them.
"""
from __future__ import annotations

import glob
import os

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*")) if os.path.isdir(p))
SHARED = "platform_defaults"
# ansible-core's role argument spec keys (ansible-doc and the validator read these).
SPEC_KEYS = {"type", "elements", "description", "default", "choices", "required", "options", "no_log",
             "aliases", "version_added", "mutually_exclusive", "required_together", "required_one_of",
             "required_if", "required_by", "apply_defaults"}


def defaults(role: str) -> dict:
    """The role's defaults: defaults/main.yml or every file under defaults/main/."""
    base = os.path.join(ROOT, "roles", role, "defaults")
    files = sorted(glob.glob(os.path.join(base, "main.yml")) + glob.glob(os.path.join(base, "main", "*.yml")))
    merged: dict = {}
    for path in files:
        with open(path, encoding="utf-8") as handle:
            merged.update(yaml.safe_load(handle) or {})
    return merged


def specs(role: str) -> dict:
    path = os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return (yaml.safe_load(handle) or {}).get("argument_specs") or {}


def options(role: str) -> dict:
    """Options of every entry point (a variable may be documented where it is read)."""
    merged: dict = {}
    for entry in specs(role).values():
        merged.update(entry.get("options") or {})
    return merged


def templated(value) -> bool:
    """True when VALUE (or anything inside it) is a Jinja expression, known only at run time."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(templated(v) for v in value.values())
    if isinstance(value, list):
        return any(templated(v) for v in value)
    return False


def _walk_options(opts: dict, prefix: str = ""):
    for name, spec in opts.items():
        yield prefix + name, spec
        yield from _walk_options(spec.get("options") or {}, f"{prefix}{name}.")


@pytest.mark.parametrize("role", ROLES)
def test_role_has_a_main_entry_point(role):
    if os.path.isfile(os.path.join(ROOT, "roles", role, "tasks", "main.yml")):
        assert "main" in specs(role), f"roles/{role}/meta/argument_specs.yml needs a `main` entry point"
        assert specs(role)["main"].get("short_description"), f"{role}: main needs a short_description"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_documented(role):
    missing = sorted(set(defaults(role)) - set(options(role)))
    assert not missing, f"roles/{role}/meta/argument_specs.yml lacks options for its defaults: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_options_have_type_and_description(role):
    problems = []
    for name, spec in _walk_options(options(role)):
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            problems.append(f"{name}: unknown keys {sorted(unknown)}")
        if "type" not in spec:
            problems.append(f"{name}: no type")
        description = spec.get("description")
        text = " ".join(description) if isinstance(description, list) else (description or "")
        if len(text.strip()) < 10:
            problems.append(f"{name}: no real description")
        if spec.get("type") == "list" and "elements" not in spec:
            problems.append(f"{name}: a list needs `elements`")
    assert not problems, f"roles/{role}/meta/argument_specs.yml: " + "; ".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_stated_defaults_are_the_real_ones(role):
    own, shared = defaults(role), defaults(SHARED)
    wrong = []
    for name, spec in options(role).items():
        actual = own[name] if name in own else shared.get(name, KeyError)
        if "default" in spec:
            if actual is KeyError:
                wrong.append(f"{name}: spec says default {spec['default']!r}, but no defaults file sets it")
            elif spec["default"] != actual:
                wrong.append(f"{name}: spec default {spec['default']!r} != defaults {actual!r}")
        elif name in own and not templated(own[name]) and not isinstance(own[name], (dict, list)) \
                and own[name] is not None:
            # Scalars are cheap to state, and ansible-doc then shows them.
            wrong.append(f"{name}: state `default: {own[name]!r}` (the role's default)")
    assert not wrong, f"roles/{role}/meta/argument_specs.yml: " + "; ".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_literal_defaults_validate_against_the_spec(role):
    """What the role's validation task would say about an inventory that sets nothing."""
    opts = options(role)
    literal = {k: v for k, v in defaults(role).items() if k in opts and not templated(v)}
    spec = {k: v for k, v in opts.items() if k in literal}
    result = ArgumentSpecValidator(spec).validate(literal, validate_role_argument_spec=True)
    assert not result.error_messages, f"{role}: {result.error_messages}"
