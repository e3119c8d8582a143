#!/usr/bin/python
"""Build or refresh the offline mirror (the logic is in module_utils/mirror)."""
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_mirror
short_description: Fetch every artifact an inventory needs into a mirror directory, verified
description:
  - Computes the artifacts from I(versions) (platform_versions) and I(selection) (which parts of the
    platform the inventory uses), fetches each into I(dir) and checks it against its pinned sha256,
    the signed apt index (Debian packages), the lock's hashes (wheels) or the Hub's sha256 (models).
  - Writes C(manifest.json) and C(manifest.md) in I(dir); what could not be fetched is listed there
    as C(not fetched here) with the reason, and the module does not fail for it.
  - Idempotent. A second run downloads nothing when everything is present with its sha256.
options:
  dir:
    description: The mirror directory (platform_mirror_dir).
    type: path
    required: true
  versions:
    description: platform_versions.
    type: dict
    required: true
  selection:
    description: What the inventory uses (keys of the Selection in module_utils/mirror/plan.py).
    type: dict
    default: {}
  collection_root:
    description: The collection's directory (its requirements/*.lock and scripts/venv.sh).
    type: path
    required: true
  image_digests:
    description: platform_image_digests (images pinned by digest are copied by it and checked).
    type: dict
    default: {}
  publish_models:
    description: Local model directories to put into the mirror as Hub repos, each C({repo, revision, path}).
    type: list
    elements: dict
    default: []
  trust_on_first_use:
    description: Fetch files that have no sha256 pinned and record the sha256 downloaded.
    type: bool
    default: false
  apt_sign_key:
    description: GPG key id that signs the flat apt repository (C(InRelease)); empty leaves it unsigned.
    type: str
    default: ""
  debian_archive_url:
    description: Debian archive the packages' closure is resolved from.
    type: str
    default: http://deb.debian.org/debian
  debian_security_url:
    description: Debian security archive.
    type: str
    default: http://deb.debian.org/debian-security
  debian_suite:
    description: Debian release of the nodes.
    type: str
    default: bookworm
  debian_components:
    description: Archive components.
    type: list
    elements: str
    default: [main, non-free, non-free-firmware]
  hf_token:
    description: Hugging Face token for gated models.
    type: str
    default: ""
  timeout:
    description: Seconds per network request.
    type: int
    default: 60
  work_dir:
    description: apt's private state directory (default C(DIR/.work)).
    type: path
author: llmops.platform developers (@llmops)
"""

EXAMPLES = r"""
- name: Build the mirror for this inventory
  llmops.platform.llm_mirror:
    dir: /srv/llmops-mirror
    versions: "{{ platform_versions }}"
    selection: {target: local, venvs: [serving]}
    collection_root: "{{ platform_collection_root }}"
"""

RETURN = r"""
fetched:
  description: Number of artifacts the mirror holds.
  returned: always
  type: int
not_fetched:
  description: Artifact name to the reason it is not in the mirror.
  returned: always
  type: dict
downloaded:
  description: Mirror paths downloaded by this run (empty on a rerun).
  returned: always
  type: list
  elements: str
size:
  description: Bytes of everything fetched.
  returned: always
  type: int
manifest:
  description: Path of manifest.json.
  returned: always
  type: str
table:
  description: Path of manifest.md.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.platform.plugins.module_utils.mirror.build import Options, build
from ansible_collections.llmops.platform.plugins.module_utils.mirror.plan import PlanError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "versions": {"type": "dict", "required": True},
            "selection": {"type": "dict", "default": {}},
            "collection_root": {"type": "path", "required": True},
            "image_digests": {"type": "dict", "default": {}},
            "publish_models": {"type": "list", "elements": "dict", "default": []},
            "trust_on_first_use": {"type": "bool", "default": False},
            # A key id (the secret key stays in the build host's keyring).
            "apt_sign_key": {"type": "str", "default": "", "no_log": False},
            "debian_archive_url": {"type": "str", "default": "http://deb.debian.org/debian"},
            "debian_security_url": {"type": "str", "default": "http://deb.debian.org/debian-security"},
            "debian_suite": {"type": "str", "default": "bookworm"},
            "debian_components": {"type": "list", "elements": "str",
                                  "default": ["main", "non-free", "non-free-firmware"]},
            "hf_token": {"type": "str", "default": "", "no_log": True},
            "timeout": {"type": "int", "default": 60},
            "work_dir": {"type": "path"},
        },
        supports_check_mode=True,
    )
    p = module.params
    options = Options(
        mirror_dir=p["dir"], collection_root=p["collection_root"], timeout=p["timeout"],
        trust_on_first_use=p["trust_on_first_use"], apt_sign_key=p["apt_sign_key"],
        debian_archive_url=p["debian_archive_url"], debian_security_url=p["debian_security_url"],
        debian_suite=p["debian_suite"], debian_components=tuple(p["debian_components"]), hf_token=p["hf_token"],
        publish_models=p["publish_models"], image_digests=p["image_digests"], work_dir=p["work_dir"] or "",
        check_mode=module.check_mode,
    )
    try:
        result = build(p["versions"], p["selection"], options)
    except PlanError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
