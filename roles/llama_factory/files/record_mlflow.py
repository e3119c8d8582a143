"""Record the merged model's path and the verify result on the training run (mlflow venv).

The run is found by the llmops.config_hash tag the trainer set (MLFLOW_TAGS). Prints
`changed` when anything was written, so a second run with the same result changes nothing.
"""
import json
import sys

from mlflow.tracking import MlflowClient


def main() -> None:
    uri, experiment, digest, merged, verify_file = sys.argv[1:6]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], f"tags.`llmops.config_hash` = '{digest}'") if exp else []
    if not runs:
        sys.exit(f"no MLflow run tagged llmops.config_hash={digest} in experiment {experiment}")
    with open(verify_file, encoding="utf-8") as handle:
        result = json.load(handle)
    want = {"llmops.merged_model_path": merged, "llmops.verify_passed": str(result["passed"]).lower(),
            "llmops.verify_reasons": "; ".join(result["reasons"]) or "none",
            "llmops.verify_probe_stopped": str(result["probe"].get("stopped")).lower()}
    run = runs[0]
    changed = False
    for key, value in want.items():
        if run.data.tags.get(key) != value:
            client.set_tag(run.info.run_id, key, value)
            changed = True
    print(json.dumps({"changed": changed, "run_id": run.info.run_id,
                      "metrics": sorted(run.data.metrics)}))


if __name__ == "__main__":
    main()
