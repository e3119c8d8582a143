"""bench/tuner_efficiency.py on the measured surface: every strategy reaches the target, and
successive halving is charged less than a full trial for the trials it prunes."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_replay_prints_trials_and_wall_time_per_strategy(tmp_path):
    import json

    out = tmp_path / "eff.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "tuner_efficiency.py"), "--seeds", "3",
                           "--json", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "36 measured points" in proc.stdout
    data = json.loads(out.read_text())
    strategies = data["strategies"]
    assert set(strategies) == {"grid", "random", "bayesian", "successive_halving"}
    for result in strategies.values():
        assert 1 <= result["best"] <= result["median"] <= result["worst"] <= 36
        assert result["minutes_median"] > 0
    # Same random order: pruning skips no server start, but pruned trials cost less.
    assert strategies["successive_halving"]["counts"] == strategies["random"]["counts"]
    assert strategies["successive_halving"]["minutes_median"] <= strategies["random"]["minutes_median"]
