import re

import libcst as cst

from nnlint.names import dotted_name
from nnlint.rule import Example, Rule
from nnlint.tree import integer_value, source_code

_FIT_METHODS = {"fit", "fit_transform", "partial_fit"}
# sklearn estimators that learn statistics of the data they are fitted on. `Normalizer`,
# `Binarizer` and `FunctionTransformer` are stateless (`fit` learns nothing) and are left out.
_SKLEARN_SCALERS = {
    "StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler", "QuantileTransformer", "PowerTransformer",
    "KBinsDiscretizer", "PCA", "IncrementalPCA", "KernelPCA", "SparsePCA", "TruncatedSVD", "FastICA",
    "FactorAnalysis", "SimpleImputer", "KNNImputer", "IterativeImputer",
}  # fmt: skip
# A class or variable named like this holds fitted statistics (a project's own `Normalizer`, `sc_x`).
_SCALER_WORDS = {"scaler", "scalers", "normalizer", "normaliser", "standardizer", "standardiser", "pca", "whitener"}
_SCALER_CLASS = re.compile(r"Scaler|Normali[sz]er|Standardi[sz]er|PCA|Whitener|Imputer")
# Statistics that, computed over the samples of a split, become its normalisation.
_STATISTICS = {"mean", "std", "var", "min", "max", "amin", "amax", "median", "nanmean", "nanstd"}
# Dividing by these alone (`x / x.max()`) is a normalisation; by a mean it is a ratio.
_SCALES = {"std", "max", "amax", "nanstd"}
_EXTREMES = {"min", "max", "amin", "amax"}
_IMAGE = re.compile(r"^(?:img|image|pic|frame|mask|map|grid|vis|sample|recon|heatmap)")
_CONCATENATIONS = {"concatenate", "vstack", "hstack", "row_stack", "cat", "concat", "append", "stack"}

# Word-level: `X_test`, `Xval`, `testset`, `df_holdout` are evaluation data; `contest`, `interval` are not.
_EVAL = r"(?:test|testing|val|valid|validation|eval|evaluation|holdout)"
_EVAL_WORD = re.compile(rf"^(?:x|y|df|data)?{_EVAL}(?:x|y|set|sets|data|df|ds|loader|images|imgs|features|feats)?$")
_TRAIN_WORD = re.compile(r"^(?:x|y|df|data)?(?:train|training|trn|trainval)(?:x|y|set|sets|data|df|ds|loader)?$")
# Evaluation *results* (scores, losses, predictions) are standardised for reporting, not for the model.
_RESULT_WORDS = {
    "loss", "losses", "score", "scores", "pred", "preds", "prediction", "predictions", "output", "outputs",
    "logits", "acc", "accuracy", "metric", "metrics", "error", "errors", "err", "residual", "residuals",
    "result", "results", "reward", "rewards", "size", "split", "ratio", "frac", "fraction", "idx", "index",
}  # fmt: skip
# "val" is also a value or valuation, "valid" also means not-missing (`x_valid = x[~np.isnan(y)]`):
# they name a split only in a file that also handles a training split (`X_train`, `train_loader`, `def train`).
_AMBIGUOUS = re.compile(r"^(?:x|y|df|data)?val(?:id)?(?:x|y|data|df)?$")
_TRAINING_DATA = re.compile(r"(?<![.\w])\w*(?:train|trn)\w*")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# PCA to 2 or 3 components (or before t-SNE/UMAP) on test embeddings is a plot, not preprocessing.
_PLOT_COMPONENTS = {2, 3}
_PROJECTIONS = {"PCA", "IncrementalPCA", "KernelPCA", "SparsePCA", "TruncatedSVD", "FastICA"}
_PLOTS = re.compile(r"TSNE|umap|UMAP")


def _words(name: str) -> list[str]:
    """`X_testScaled` -> ["x", "test", "scaled"]; `Xtest` -> ["xtest"]."""
    return [word.lower() for part in re.split(r"[_.\W]+", name) for word in _WORDS.findall(part)]


def _split_of(names: list[str]) -> str | None:
    """"eval" when the data named comes only from an evaluation split, "mixed" when train and test meet."""
    evaluation = train = False
    for name in names:
        words = _words(name)
        if any(word in _RESULT_WORDS for word in words):
            return None
        named_eval = any(_EVAL_WORD.match(word) for word in words)
        named_train = any(_TRAIN_WORD.match(word) for word in words)
        if named_eval and named_train:
            return None  # `train_val`, `X_trainval_test`: a deliberate union, or unknowable
        evaluation |= named_eval
        train |= named_train
    if evaluation:
        return "mixed" if train else "eval"
    return None


class StatsFitOnEvalData(Rule):
    """
    ## What it does
    Flags preprocessing statistics learnt from validation or test data: a
    scaler fitted on it (`scaler.fit(X_test)`, `StandardScaler().fit_transform(X_val)`,
    sklearn's `MinMaxScaler`, `RobustScaler`, `PCA`, imputers, or any object
    named like a scaler), a fit on train and test concatenated
    (`scaler.fit(np.vstack([X_train, X_test]))`), and a mean/std (or min/max)
    computed over the evaluation samples and used to normalise
    (`(X_test - X_test.mean(0)) / X_test.std(0)`, `Normalize(test_mean, test_std)`).
    Evaluation data is recognised by its name: the words test, val, valid,
    validation, eval or holdout (`X_test`, `Xval`, `testset`, `df_holdout`).

    ## Why is this bad?
    The model must see the test set through the statistics it was trained
    with. Refitting on the test set shifts every test input by a different
    mean and scale than the training inputs (on a small or shifted test set
    the predictions change wholesale), and fitting on train+test leaks the
    test distribution into training: the reported score is not the score of
    the model you ship. (Recipe: "fit preprocessing on the training set only,
    apply it to every split".)

    ## Example
    ```python
    scaler = StandardScaler()
    X_train = scaler.fit_transform(X_train)
    X_test = scaler.fit_transform(X_test)
    ```

    ## Use instead
    ```python
    scaler = StandardScaler()
    X_train = scaler.fit_transform(X_train)
    X_test = scaler.transform(X_test)
    ```
    or an sklearn `Pipeline`, which fits its scaler inside `fit` only.

    ## Known problems
    Only names say which split data belongs to: a fit on `X[val_idx]` or on a
    generic `X` passed into a function is not flagged. Per-sample statistics
    (`x.mean(axis=1)`) and statistics of evaluation *results* (scores,
    losses) are not normalisation statistics and are not flagged; nor is a
    2- or 3-component PCA of test embeddings (a plot).
    """

    code = "NN603"
    name = "stats-fit-on-eval-data"
    severity = "warning"
    summary = "A scaler or normalisation statistics fitted on validation/test data"
    triggers = (".fit(", "fit_transform(", "partial_fit(", ".mean(", ".std(", ".max(")

    bad = [
        Example(
            """
from sklearn.preprocessing import MinMaxScaler

x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=0)
scaler = MinMaxScaler()
x_train = scaler.fit_transform(x_train)
x_test = scaler.fit_transform(x_test)  # <--
""",
            message="scaler.transform(x_test)",
        ),
        Example(
            """
from sklearn import preprocessing

class SVMClassifier:
    def __init__(self):
        self.min_max_scaler = preprocessing.MinMaxScaler()

    def fit_and_predict(self, X_train, X_test, X_val, y_train):
        X_train = self.min_max_scaler.fit_transform(X_train)
        Xtest = self.min_max_scaler.fit_transform(X_test)  # <--
        Xval = preprocessing.StandardScaler().fit(X_val).transform(X_val)  # <--
""",
            note="a scaler held on self, and one built and fitted in one expression",
        ),
        Example(
            """
import numpy as np
from sklearn.preprocessing import StandardScaler

sc_wrong = StandardScaler().fit(np.vstack([X_train, X_test]))  # <--
X_all = np.concatenate((X_train, X_holdout))
normalizer.fit(X_all)  # <--
""",
            message="concatenated",
            note="train and test concatenated, directly or through a variable; an unresolved receiver named like a scaler",
        ),
        Example(
            """
from sklearn.decomposition import PCA

pca = PCA(n_components=600)
train_vec = pca.fit_transform(train_vec)
test_vec = pca.fit_transform(test_vec)  # <--
""",
            note="a PCA refitted on the test features projects them onto different axes than the training ones",
        ),
        Example(
            """
import torch

def load(X_train, X_test):
    mean = X_test.mean(0)  # <--
    std = X_test.std(0)
    X_test = (X_test - mean) / std
    X_val = (X_val - X_val.mean(axis=0)) / X_val.std(axis=0)  # <--
    return X_train, X_test
""",
            note="mean/std of the test samples used to normalise them",
        ),
        Example(
            """
import numpy as np
from torchvision import transforms

test_mean = np.mean(testset.data, axis=(0, 1, 2)) / 255  # <--
test_std = np.std(testset.data, axis=(0, 1, 2)) / 255
transform_test = transforms.Compose([transforms.ToTensor(), transforms.Normalize(test_mean, test_std)])
""",
            note="per-channel image statistics of the test set fed to Normalize",
        ),
        Example(
            """
import torchvision
from torchvision import transforms

test_transform = transforms.Compose(
    [transforms.ToTensor(), transforms.Normalize((testset.data.mean(),), (testset.data.std(),))]  # <--
)
testset.data = testset.data - testset.data.mean()  # <--
X_train = X_train / X_train.max()
X_valid = X_valid / X_valid.max()  # <--
""",
            note="forms found in public code: stats inside Normalize's tuples, centring in place, scaling by the max",
        ),
    ]
    good = [
        Example(
            """
from sklearn.preprocessing import StandardScaler

scaler = StandardScaler()
scaler.fit(X_train)
X_train = scaler.transform(X_train)
X_test = scaler.transform(X_test)
""",
            note="trap: fit on train, transform test",
        ),
        Example(
            """
from sklearn.preprocessing import StandardScaler

scaler = StandardScaler().fit(X_train)

def preprocess(X):
    return StandardScaler().fit_transform(X)
""",
            note="trap: fit on train, then fit_transform in a function that receives a generic X",
        ),
        Example(
            """
contest_scaler.fit(contest_data)
interval_scaler.fit(X_interval)
trainval_scaler.fit(X_train_val)
model.fit(X_train, y_train, validation_data=(X_val, y_val))
trainer.fit(model, val_dataloaders=val_loader)
clf.fit(X_test, y_test)
""",
            note="trap: word-level names (contest, interval are not test/val); train+val together; models, not scalers",
        ),
        Example(
            """
from sklearn.decomposition import PCA
from sklearn.preprocessing import Normalizer

points = PCA(n_components=2).fit_transform(test_embeddings)
X_test = Normalizer().fit_transform(X_test)
""",
            note="a 2-D PCA of test embeddings is a plot; sklearn's Normalizer scales each row alone (fit learns nothing)",
        ),
        Example(
            """
import numpy as np

mean, std = X_train.mean(0), X_train.std(0)
X_test = (X_test - mean) / std
X_val = (X_val - X_val.mean(axis=1, keepdims=True)) / X_val.std(axis=1, keepdims=True)
z = (val_scores - val_scores.mean()) / val_scores.std()
ss_tot = ((y_test - y_test.mean()) ** 2).sum()
print(X_test.mean(0), X_test.std(0))
""",
            note="train statistics reused; per-sample statistics; standardised scores; R^2; statistics only printed",
        ),
        Example(
            """
import numpy as np
from sklearn.preprocessing import MinMaxScaler

mask = ~np.isnan(y)
x_valid = analyzer.projected_in_1D[mask]
x_valid = MinMaxScaler((1, 10)).fit_transform(x_valid.values.reshape(-1, 1)).flatten()

def test_scaler_is_not_refitted(sc, x_test):
    assert not np.allclose(sc.transform(x_test), (x_test - x_test.mean()) / x_test.std())
""",
            note="`valid` meaning not-missing, in a file with no training split; a unit test asserting the opposite",
        ),
        Example(
            """
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

nrmse = rmse / y_test.std()
shown = (val_img - val_img.min()) / (val_img.max() - val_img.min())
points = TSNE(n_components=2).fit_transform(PCA(n_components=50).fit_transform(test_features))
""",
            note="a metric scaled by the test spread; an image rescaled for display; PCA feeding a t-SNE plot",
        ),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        # (scope, name) -> values bound to it; attribute chains (`self.scaler`) use scope None.
        self._bindings: dict[tuple[object, str], list[cst.BaseExpression]] = {}
        self._reported: set[int] = set()

    # -- bindings: what a variable holds, so that `scaler.fit(...)` and `(x - mean) / std` can be resolved

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, (cst.Tuple, cst.List)):
            if len(target.elements) == len(value.elements):
                for element, item in zip(target.elements, value.elements):
                    self._bind(element.value, item.value)
            return
        name = dotted_name(target)
        if name is not None:
            self._bindings.setdefault(self._key(name), []).append(value)

    def _key(self, name: str) -> tuple[object, str]:
        return (None if "." in name else self.context.enclosing_function(), name)

    def _values(self, node: cst.BaseExpression) -> list[cst.BaseExpression]:
        """What a name may hold here (its bindings in this function, else at module level)."""
        name = dotted_name(node)
        if name is None:
            return []
        return self._bindings.get(self._key(name)) or self._bindings.get((None, name), [])

    # -- the three shapes of the bug

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in _FIT_METHODS and node.args:
            self._check_fit(node)
        elif (self.context.call_name(node) or "").endswith(".Normalize"):
            self._check_statistic(*(arg.value for arg in node.args[:2]), at=node)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        # `(x - m) / s`, `x / s` and `x = x - m` normalise with m and s; `(y - y.mean()) ** 2` (R^2) does not.
        if isinstance(node.operator, cst.Divide):
            left = node.left
            if isinstance(left, cst.BinaryOperation) and isinstance(left.operator, cst.Subtract):
                if self._is_data(left.left):
                    self._check_statistic(left.right, node.right, at=node)
            elif self._is_data(left, evaluation=True):  # `X_valid / X_valid.max()`, not `rmse / y_test.std()`
                self._check_statistic(node.right, at=node, kinds=_SCALES)
        elif isinstance(node.operator, cst.Subtract) and isinstance(self.context.ancestors[-1], cst.Assign):
            if self._is_data(node.left):
                self._check_statistic(node.right, at=node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.operator, cst.SubtractAssign) and self._is_data(node.target):
            self._check_statistic(node.value, at=node)
        elif isinstance(node.operator, cst.DivideAssign) and self._is_data(node.target, evaluation=True):
            self._check_statistic(node.value, at=node, kinds=_SCALES)

    def _is_data(self, expr: cst.BaseExpression, evaluation: bool = False) -> bool:
        """`expr` holds inputs (an evaluation split, if asked), not results such as predictions or scores."""
        names = self._data_names(expr)[0]
        if any(word in _RESULT_WORDS for name in names for word in _words(name)):
            return False
        return not evaluation or self._split_of(names) == "eval"

    def _check_fit(self, call: cst.Call) -> None:
        data = call.args[0]
        if data.keyword is not None and data.keyword.value not in ("X", "x"):
            return
        receiver = call.func.value
        if not self._is_scaler(receiver):
            return
        names, concatenated = self._data_names(data.value)
        split = self._split_of(names)
        fitted = f"`{source_code(call.func)}({source_code(data.value)})`"
        holder = source_code(receiver)
        if split == "eval" and not concatenated:
            evaluation = source_code(data.value)
            # A scaler built in place (`StandardScaler().fit(X_val)`) has no training fit to reuse.
            fix = (
                f"transform `{evaluation}` with the scaler fitted on the training data"
                if isinstance(receiver, cst.Call)
                else f"fit on the training data and call `{holder}.transform({evaluation})`"
            )
            self.report(
                call,
                f"{fitted} learns its statistics from evaluation data, so `{evaluation}` is preprocessed unlike the "
                f"data the model trained on; {fix}",
            )
        elif split in ("eval", "mixed") and concatenated and any(_holds_test(name) for name in names):
            self.report(
                call,
                f"{fitted} fits on training and test data concatenated, leaking the test distribution into "
                f"preprocessing; fit `{holder}` on the training split alone and transform the others with it",
            )

    def _split_of(self, names: list[str]) -> str | None:
        split = _split_of(names)
        named = [word for name in names for word in _words(name) if _EVAL_WORD.match(word)]
        if split == "eval" and all(_AMBIGUOUS.search(word) for word in named):
            return split if _TRAINING_DATA.search(self.context.source) else None
        return split

    def _is_scaler(self, receiver: cst.BaseExpression) -> bool:
        """Built from an sklearn scaler (or a class named like one) in this file, or named like one."""
        built = [receiver] if isinstance(receiver, cst.Call) else self._values(receiver)
        constructors = [value for value in built if isinstance(value, cst.Call)]
        if constructors:
            return all(self._constructs_scaler(call) for call in constructors)
        name = dotted_name(receiver)
        return name is not None and any(word in _SCALER_WORDS for word in _words(name.rsplit(".", 1)[-1]))

    def _constructs_scaler(self, call: cst.Call) -> bool:
        qualified = self.context.call_name(call) or dotted_name(call.func) or ""
        cls = qualified.rsplit(".", 1)[-1]
        if qualified.startswith("sklearn."):
            if cls not in _SKLEARN_SCALERS:
                return False
        elif not _SCALER_CLASS.search(cls):
            return False
        components = next((arg.value for arg in call.args if arg.keyword and arg.keyword.value == "n_components"), None)
        if components is None and call.args and call.args[0].keyword is None and "PCA" in cls:
            components = call.args[0].value
        # PCA of test embeddings before t-SNE/UMAP, or to 2-3 components, draws a plot.
        plotting = integer_value(components) in _PLOT_COMPONENTS or _PLOTS.search(self.context.source)
        return not (plotting and cls in _PROJECTIONS)

    def _data_names(self, expr: cst.BaseExpression, depth: int = 0) -> tuple[list[str], bool]:
        """The variables the data in `expr` comes from, and whether several are concatenated."""
        name = dotted_name(expr)
        if name is not None:
            if depth == 0:
                # One step through `X_all = np.concatenate(...)`: a fit on a variable built from the splits.
                for value in self._values(expr):
                    if isinstance(value, cst.Call) and self._concatenation(value) is not None:
                        return self._data_names(value, depth + 1)
            return [name], False
        if isinstance(expr, cst.Subscript):
            keys = [
                element.slice.value.evaluated_value
                for element in expr.slice
                if isinstance(element.slice, cst.Index) and isinstance(element.slice.value, cst.SimpleString)
            ]
            names, concatenated = self._data_names(expr.value, depth)
            return names + [key for key in keys if isinstance(key, str)], concatenated
        if isinstance(expr, cst.Call):
            parts = self._concatenation(expr)
            if parts is not None:
                names = [name for part in parts for name in self._data_names(part, depth + 1)[0]]
                return names, True
            if isinstance(expr.func, cst.Attribute) and self.context.call_name(expr) is None:
                return self._data_names(expr.func.value, depth)  # `X_test.values.reshape(-1, 1)`
            if expr.args and expr.args[0].keyword is None:
                return self._data_names(expr.args[0].value, depth)  # `np.array(X_test)`
        return [], False

    def _concatenation(self, call: cst.Call) -> list[cst.BaseExpression] | None:
        """The pieces of `np.concatenate([a, b])`, `torch.cat((a, b))`, `pd.concat([a, b])`, `np.append(a, b)`."""
        qualified = self.context.call_name(call) or ""
        module, _, function = qualified.rpartition(".")
        if function not in _CONCATENATIONS or module.split(".")[0] not in ("numpy", "torch", "pandas"):
            return None
        first = call.args[0].value if call.args else None
        if isinstance(first, (cst.List, cst.Tuple)):
            return [element.value for element in first.elements]
        return [arg.value for arg in call.args if arg.keyword is None]

    def _check_statistic(self, *exprs: cst.BaseExpression, at: cst.CSTNode, kinds: set[str] = _STATISTICS) -> None:
        """One finding per normalisation (`at`), at its first statistic of evaluation data, naming all of them."""
        if any(isinstance(node, cst.Assert) for node in self.context.ancestors):
            return  # a test asserting what the statistics are (or are not)
        found = [
            statistic
            for expr in exprs
            for statistic in self._statistics(expr)
            if id(statistic) not in self._reported and statistic.func.attr.value in kinds and not _display(statistic)
        ]
        if not found:
            return
        self._reported.update(id(statistic) for statistic in found)
        named = " and ".join(dict.fromkeys(f"`{source_code(statistic)}`" for statistic in found))
        data = ", ".join(dict.fromkeys(f"`{source_code(self._statistic_data(statistic)[0])}`" for statistic in found))
        verb = "is" if len(found) == 1 else "are"
        line = self.context.position(at).start.line
        where = "" if line == self.context.position(found[0]).start.line else f" at line {line}"
        self.report(
            found[0],
            f"{named} {verb} computed over evaluation data {data} and used to normalise{where}; compute the "
            "statistics on the training split and reuse them for every split",
        )

    def _statistics(self, expr: cst.BaseExpression, depth: int = 0) -> list[cst.Call]:
        """The dataset-wide statistics of evaluation data that `expr` is (or a variable bound to one)."""
        if isinstance(expr, cst.BinaryOperation):  # `X_test.mean(0) / 255`, `x_test.max() - x_test.min()`
            return self._statistics(expr.left, depth) + self._statistics(expr.right, depth)
        if isinstance(expr, (cst.Tuple, cst.List)):  # `Normalize((testset.data.mean(),), ...)`
            return [found for element in expr.elements for found in self._statistics(element.value, depth)]
        if isinstance(expr, cst.Call):
            data, axis = self._statistic_data(expr)
            if data is not None and _over_samples(axis) and self._split_of(self._data_names(data)[0]) == "eval":
                return [expr]
            return []
        if depth == 0 and dotted_name(expr) is not None:
            return [found for value in self._values(expr) for found in self._statistics(value, depth + 1)]
        return []

    def _statistic_data(self, call: cst.Call) -> tuple[cst.BaseExpression | None, cst.BaseExpression | None]:
        """(data, axis) of `data.mean(axis)` or `np.mean(data, axis)`; (None, None) for other calls."""
        if not isinstance(call.func, cst.Attribute) or call.func.attr.value not in _STATISTICS:
            return None, None
        positional = [arg.value for arg in call.args if arg.keyword is None]
        axis = next((arg.value for arg in call.args if arg.keyword and arg.keyword.value in ("axis", "dim")), None)
        qualified = self.context.call_name(call) or ""
        if qualified.startswith(("numpy.", "torch.")):
            if not positional:
                return None, None
            return positional[0], axis if axis is not None else (positional[1] if len(positional) > 1 else None)
        return call.func.value, axis if axis is not None else (positional[0] if positional else None)


def _display(statistic: cst.Call) -> bool:
    """`(val_img - val_img.min()) / (val_img.max() - val_img.min())` rescales an image to show it."""
    method = statistic.func.attr.value
    return method in _EXTREMES and any(_IMAGE.search(word) for word in _words(source_code(statistic.func.value)))


def _over_samples(axis: cst.BaseExpression | None) -> bool:
    """The statistic pools samples: no axis (all of it), axis 0, or a tuple of axes with 0."""
    if axis is None:
        return True
    if isinstance(axis, (cst.Tuple, cst.List)):
        return any(integer_value(element.value) == 0 for element in axis.elements)
    return integer_value(axis) == 0


def _holds_test(name: str) -> bool:
    """Train+val concatenated is a common final refit; train+test is the leak."""
    return any(re.search("test|holdout", word) for word in _words(name))
