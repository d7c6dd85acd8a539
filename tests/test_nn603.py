"""NN603 on forms found in public code beyond the rule's examples: wrapped and indexed fits, and look-alikes."""

from __future__ import annotations

import textwrap

import pytest

from nnlint.rule import rule_by_code
from nnlint.static import lint_source


def flagged_lines(source: str) -> list[int]:
    result = lint_source(textwrap.dedent(source).encode(), "train.py", [rule_by_code("NN603")], max_file_size=10**7)
    assert not result.diagnostics
    return sorted(finding.line for finding in result.findings)


@pytest.mark.parametrize(
    "statement",
    [
        "pd.DataFrame(scaler.fit_transform(X_test), columns=X_test.columns)",
        "Y_test_scaled = scaler.fit_transform(Y_test)",
        "X_test_scale = scaler.fit_transform(X_test.astype('float64'))",
        "X_valid[cols] = scaler.fit_transform(X_valid[cols])",
        "Xtest = scaler.fit_transform(np.array(x_test))",
        "test_x = (test_x - np.mean(test_x, axis=0)) / np.std(test_x, axis=0)",
        "X_test -= X_test.mean(axis=0)",
    ],
)
def test_flags_public_forms(statement):
    source = f"""
    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    X_train = scaler.fit_transform(X_train)
    {statement}
    """
    assert flagged_lines(source) == [8]


@pytest.mark.parametrize(
    "statement",
    [
        "X_test = scaler.transform(X_test)",
        "X_test = (X_test - X_train.mean(0)) / X_train.std(0)",
        "X_test = X_test[:, None] - X_test.mean(axis=-1)",
        "X_rest = scaler.fit_transform(X[:-n_test])",
        "train_val = scaler.fit_transform(np.concatenate([X_train, X_val]))",
        "val_loss = (val_loss - val_loss.mean()) / val_loss.std()",
        "latest = scaler.fit_transform(contest_entries)",
    ],
)
def test_leaves_look_alikes(statement):
    source = f"""
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    X_train = scaler.fit_transform(X_train)
    {statement}
    """
    assert flagged_lines(source) == []


def test_val_without_a_training_split_is_a_value():
    source = """
    if len(val_data) > 1 and val_data.std() > 0:
        combined["valuation_z"] = (val_data - val_data.mean()) / val_data.std()
    """
    assert flagged_lines(source) == []
    assert flagged_lines(source + "    train_data = load('train')\n") == [3]


def test_statistics_are_resolved_in_their_own_function():
    source = """
    def fit(X_train):
        mean, std = X_train.mean(0), X_train.std(0)
        return mean, std

    def evaluate(X_test):
        mean = X_test.mean(0)
        print(mean)

    def normalise(X_test, mean, std):
        return (X_test - mean) / std
    """
    assert flagged_lines(source) == []
