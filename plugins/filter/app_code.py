"""What an llmops app ships (apps/router, apps/gateway); logic in module_utils.app_code."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.platform.plugins.module_utils import app_code


def llm_app_code_files(app, apps_dir):
    try:
        return app_code.code_files(str(app), str(apps_dir))
    except app_code.AppCodeError as exc:
        raise AnsibleFilterError(str(exc)) from None


def llm_app_pythonpath(app, apps_dir):
    try:
        return app_code.pythonpath(str(app), str(apps_dir))
    except app_code.AppCodeError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {
            "llm_app_code_files": llm_app_code_files,
            "llm_app_code_key": app_code.configmap_key,
            "llm_app_code_path": app_code.mount_path,
            "llm_app_pythonpath": llm_app_pythonpath,
        }
