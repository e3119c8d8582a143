"""Print where the demo's endpoints and report are (read from the files the play wrote)."""
import json
import os
import sys

home = os.environ.get("LLMOPS_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "llmops")
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    with open(os.path.join(home, "run", "endpoints.json"), encoding="utf-8") as handle:
        replicas = json.load(handle)["models"]
except (OSError, ValueError, KeyError):
    replicas = []
for replica in replicas:
    print(f"Endpoint: {replica['base_url']}/v1/chat/completions  "
          f"(model {replica['model']}, replica {replica['index']})")
router_spec = os.path.join(home, "run", "router", "spec.json")
try:
    with open(router_spec, encoding="utf-8") as handle:
        ready_url = json.load(handle).get("ready_url", "")
    print(f"Router:   {ready_url.rsplit('/health', 1)[0]}/v1/chat/completions  (routes by model)")
except (OSError, ValueError):
    pass
gateway_spec = os.path.join(home, "run", "gateway", "spec.json")
try:
    with open(gateway_spec, encoding="utf-8") as handle:
        gateway = json.load(handle).get("ready_url", "").rsplit("/health", 1)[0]
    print(f"Chat:     {gateway}/  (chat page; OpenAI API at {gateway}/v1)")
except (OSError, ValueError):
    pass
try:
    with open(os.path.join(home, "run", "monitoring.json"), encoding="utf-8") as handle:
        monitoring = json.load(handle)
    print(f"Metrics:  {monitoring['prometheus_url']}/  "
          f"(Prometheus; alerts in Alertmanager at {monitoring['alertmanager_url']}/)")
except (OSError, ValueError, KeyError):
    pass
try:
    with open(os.path.join(home, "run", "finetune.json"), encoding="utf-8") as handle:
        finetune = json.load(handle)
    verdict = "promoted" if finetune["promoted"] else "not promoted"
    served = (f", served as model {finetune['served_as']} on {finetune['served_on']}"
              if finetune.get("served_as") else "")
    print(f"Finetune: {finetune['run']} {verdict}{served}  ({finetune['report']})")
    if finetune.get("mlflow_run"):
        print(f"MLflow:   {finetune['mlflow_run']}")
except (OSError, ValueError, KeyError):
    pass
index = os.path.join(root, "reports", "index.html")
if os.path.exists(index):
    print(f"Report:   file://{index}")
else:
    print("Report:   none yet (the bench layer did not run)", file=sys.stderr)
