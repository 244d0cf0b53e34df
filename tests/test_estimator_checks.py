"""NoisyLabelSearch against scikit-learn's own estimator checks (``check_estimator``), one test per check.

Every check runs; none is expected to fail. scikit-learn skips one by itself: ``check_array_api_input``
runs only when ``SCIPY_ARRAY_API=1`` is set before SciPy is first imported (it passes then too:
``SCIPY_ARRAY_API=1 pytest tests/test_estimator_checks.py -k array_api``). A search of one trial
(plain CE) on the quick space keeps each check to a fraction of a second.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from automl_noisy import NoisyLabelSearch

SMALL = NoisyLabelSearch(trials=1, space="quick", executor="local", storage=None, portfolio=False, verbose=0)


@parametrize_with_checks([SMALL])
def test_scikit_learn_check(estimator, check, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a check fits may land in the working directory
    check(estimator)

