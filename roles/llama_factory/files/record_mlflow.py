"""Record results on the training run in MLflow, and register a promoted model (mlflow venv).

Reads one JSON document on stdin: {uri, experiment, hash, tags: {}, metrics: {},
register: {name, artifact_dir, artifact_path, tags} or {}}. The run is the one the trainer
tagged llmops.config_hash=<hash> (MLFLOW_TAGS). Registration logs the artifact directory on
that run (once) and creates a model version from it unless a version with the same
llmops.inputs_hash exists. Prints {changed, run_id, experiment_id, version}: a second call
with the same inputs changes nothing.
"""
import json
import sys

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def find_run(client, experiment, digest):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], f"tags.`llmops.config_hash` = '{digest}'") if exp else []
    if not runs:
        sys.exit(f"no MLflow run tagged llmops.config_hash={digest} in experiment {experiment}")
    return runs[0]


def register(client, run, spec, metrics):
    """(changed, version number) of the registered version for this run's inputs; the version
    carries the inputs' hash and the evaluation metrics as tags."""
    name, path = spec["name"], spec.get("artifact_path", "model")
    changed = False
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Fine-tuned models promoted by the llmops gate")
        changed = True
    digest = spec["tags"]["llmops.inputs_hash"]
    for version in client.search_model_versions(f"name = '{name}'"):
        if version.tags.get("llmops.inputs_hash") == digest:
            return changed, version.version
    if not client.list_artifacts(run.info.run_id, path):
        client.log_artifacts(run.info.run_id, spec["artifact_dir"], path)
    tags = {**spec["tags"], **{f"llmops.{key}": f"{value:.6g}" for key, value in metrics.items() if value is not None}}
    version = client.create_model_version(name, f"{run.info.artifact_uri}/{path}", run_id=run.info.run_id, tags=tags)
    return True, version.version


def main() -> None:
    spec = json.load(sys.stdin)
    client = MlflowClient(spec["uri"])
    run = find_run(client, spec["experiment"], spec["hash"])
    changed = False
    for key, value in (spec.get("tags") or {}).items():
        if run.data.tags.get(key) != str(value):
            client.set_tag(run.info.run_id, key, str(value))
            changed = True
    for key, value in (spec.get("metrics") or {}).items():
        if value is not None and run.data.metrics.get(key) != float(value):
            client.log_metric(run.info.run_id, key, float(value))
            changed = True
    version = None
    if spec.get("register"):
        registered, version = register(client, run, spec["register"], spec.get("metrics") or {})
        changed = changed or registered
    print(json.dumps({"changed": changed, "run_id": run.info.run_id, "experiment_id": run.info.experiment_id,
                      "version": version, "metrics": sorted(run.data.metrics)}))


if __name__ == "__main__":
    main()
