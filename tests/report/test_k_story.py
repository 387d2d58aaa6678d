"""The report says when the k criteria disagree, with the recluster command (issue 10)."""
from pathlib import Path

from imgclust.model import KSelection
from imgclust.report.build import _k_story
from imgclust.run.clustering import k_disagreement


def _sweep():
    # silhouette peaks at 2, the inertia curve's elbow is at 5
    inertia = {2: 100.0, 3: 80.0, 4: 60.0, 5: 20.0, 6: 18.0, 7: 17.0, 8: 16.5}
    return [{"k": k, "inertia": v, "silhouette": 0.9 if k == 2 else 0.5, "chosen": k == 2}
            for k, v in inertia.items()]


def test_disagreement_is_found_and_told_with_the_command():
    dis = k_disagreement(KSelection("silhouette", 2, _sweep()))
    assert dis["picks"] == {"silhouette": 2, "elbow": 5} and dis["others"] == [5]
    summary = {"k": {"criterion": "silhouette", "selected_value": 2, "sweep": _sweep(),
                     "disagreement": dis}, "n_clusters": 2, "method": {"name": "kmeans"}}
    story = _k_story(summary, Path("runs/x"))
    assert "silhouette says 2, elbow says 5" in story
    assert "imgclust recluster runs/x -k 5" in story


def test_no_disagreement_when_k_is_given():
    assert k_disagreement(KSelection("given", 4, [])) is None
    summary = {"k": {"criterion": "given", "selected_value": 4, "sweep": [], "disagreement": None},
               "n_clusters": 4, "method": {"name": "kmeans"}}
    assert _k_story(summary) == "k = 4, as given."
