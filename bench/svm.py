"""A regularised linear L2-SVM (squared hinge loss, one-vs-rest), solved in the primal in float32.

For each class k, with labels y in {-1, +1} and the bias regularised like a feature of value 1
(exactly scikit-learn's ``LinearSVC(loss="squared_hinge", penalty="l2", intercept_scaling=1)``):

    min_{w,b}  1/2 (|w|^2 + b^2) + C * sum_i max(0, 1 - y_i (w . x_i + b))^2

All classes are solved at once by L-BFGS on the summed (separable) objective. Each evaluation is
two dense products with the feature matrix (X @ W and R^T @ X) in float32 through numpy's BLAS,
which streams X at memory speed for both (torch's ``X.T @ R`` was 5-10x slower on this CPU), so a
50,000 x 28,672 problem never gets a float64 copy. Fits along a C path start from the previous
solution. ``LinearSVC`` stays available as the reference (``--solver sklearn``).
"""
from __future__ import annotations

import time

import os

import numpy as np
import scipy.optimize
from threadpoolctl import threadpool_limits

# BLAS threads pay off only when the products with X dominate; on small problems the optimiser's
# many tiny vector operations made 2 threads 10x slower than 1 on this 2-core machine.
_PARALLEL_MIN_SIZE = 1 << 22


def standardize_(X: np.ndarray, mean: np.ndarray, std: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(X - mean) / std in place, in row chunks (X must be a writable float32 array)."""
    for s in range(0, len(X), chunk):
        X[s: s + chunk] -= mean
        X[s: s + chunk] /= std
    return X


def moments(X: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (float64 accumulators, float32 result; constant features get std 1)."""
    total = np.zeros(X.shape[1])
    total_sq = np.zeros(X.shape[1])
    for s in range(0, len(X), chunk):
        block = np.asarray(X[s: s + chunk], dtype=np.float64)
        total += block.sum(0)
        total_sq += (block * block).sum(0)
    mean = total / len(X)
    std = np.sqrt(np.maximum(total_sq / len(X) - mean**2, 0))
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _signs(y: np.ndarray, n_classes: int) -> np.ndarray:
    Y = -np.ones((len(y), n_classes), dtype=np.float32)
    Y[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = 1
    return Y


def _check_float32(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype != np.float32:
        raise TypeError(f"features must be float32, got {X.dtype}")
    return X


def reduce_rows(X: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray | None]:
    """``(X @ V, V)`` with V an orthonormal basis of X's row space when X has fewer rows than
    columns, else ``(X, None)``.

    The SVM's optimal w lies in the row space (a component orthogonal to every row only adds to
    |w|^2), so fitting on the N x r matrix X V and mapping back with V is exact, and with few labels
    (1000 x 28672 for SVHN) far cheaper. V comes from the eigen-decomposition of the N x N Gram
    matrix, accumulated in float64 over column chunks: X X^T = U L U^T, X V = U L^(1/2).
    """
    n, d = X.shape
    if n >= d:
        return X, None
    gram = np.zeros((n, n))
    for s in range(0, d, chunk):
        block = np.asarray(X[:, s: s + chunk], dtype=np.float64)
        gram += block @ block.T
    with threadpool_limits(1, user_api="blas"):  # a small LAPACK call: threads only add overhead
        lam, U = np.linalg.eigh(gram)
    keep = lam > lam[-1] * 1e-10
    U, root = U[:, keep], np.sqrt(lam[keep])
    basis = (X.T @ (U / root).astype(np.float32))  # d x r: V = X^T U L^(-1/2)
    return np.ascontiguousarray((U * root).astype(np.float32)), basis


class L2SVM:
    """One-vs-rest squared-hinge linear SVM; ``W`` (d+1, K) holds the weights, the bias in its last row."""

    def __init__(self, C: float, n_classes: int, tol: float = 1e-4, max_iter: int = 1000):
        self.C = C
        self.n_classes = n_classes
        self.tol = tol
        self.max_iter = max_iter
        self.W: np.ndarray | None = None
        self.n_iter = 0
        self.seconds = 0.0

    def objective(self, X: np.ndarray, y: np.ndarray, W: np.ndarray | None = None) -> float:
        """The summed primal objective at ``W`` (default: the fitted weights)."""
        W = self.W if W is None else W
        return self._fun_grad(_check_float32(X), _signs(y, self.n_classes), np.asarray(W, np.float64).ravel())[0]

    def _fun_grad(self, X: np.ndarray, Y: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        d = X.shape[1]
        W = w.astype(np.float32).reshape(d + 1, self.n_classes)
        Z = X @ W[:d]
        Z += W[d]
        M = np.maximum(1 - Y * Z, 0)  # squared-hinge margins; zero outside the active set
        R = Y * M
        grad = W.astype(np.float64)
        grad[:d] -= 2 * self.C * (R.T @ X).T
        grad[d] -= 2 * self.C * R.sum(0, dtype=np.float64)
        f = 0.5 * float(np.square(W, dtype=np.float64).sum()) + self.C * float(np.square(M, dtype=np.float64).sum())
        return f, grad.ravel()

    def fit(self, X: np.ndarray, y: np.ndarray, warm_start: np.ndarray | None = None,
            reduced: tuple[np.ndarray, np.ndarray | None] | None = None) -> "L2SVM":
        """Fit all classes; ``warm_start`` is a previous ``W`` (e.g. at a nearby C); ``reduced`` is
        ``reduce_rows(X)`` when the caller fits the same X several times."""
        t0 = time.perf_counter()
        X, basis = reduced if reduced is not None else reduce_rows(_check_float32(X))
        if basis is not None and warm_start is not None:
            warm_start = np.vstack([basis.T @ warm_start[:-1], warm_start[-1:]])
        Y = _signs(y, self.n_classes)
        size = (X.shape[1] + 1) * self.n_classes
        w0 = np.zeros(size) if warm_start is None else np.asarray(warm_start, np.float64).ravel()
        g0 = np.abs(self._fun_grad(X, Y, np.zeros(size))[1]).max()
        with threadpool_limits(os.cpu_count() if X.size >= _PARALLEL_MIN_SIZE else 1, user_api="blas"):
            res = scipy.optimize.minimize(
                lambda w: self._fun_grad(X, Y, w), w0, jac=True, method="L-BFGS-B",
                options={"maxiter": self.max_iter, "gtol": self.tol * g0, "ftol": 1e-12, "maxcor": 20})
        W = res.x.astype(np.float32).reshape(-1, self.n_classes)
        self.W = W if basis is None else np.vstack([basis @ W[:-1], W[-1:]])
        self.n_iter = res.nit
        self.seconds = time.perf_counter() - t0
        return self

    def decision_function(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        d = X.shape[1]
        return np.concatenate([np.asarray(X[s: s + chunk]) @ self.W[:d] + self.W[d] for s in range(0, len(X), chunk)])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.decision_function(X).argmax(1)

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())


class SklearnSVM(L2SVM):
    """scikit-learn's LinearSVC (liblinear) for the same objective: the reference; slow, and it
    copies the features to float64."""

    def fit(self, X, y, warm_start=None, reduced=None) -> "SklearnSVM":
        from sklearn.svm import LinearSVC

        t0 = time.perf_counter()
        model = LinearSVC(C=self.C, loss="squared_hinge", penalty="l2", tol=self.tol, max_iter=self.max_iter,
                          intercept_scaling=1.0).fit(X, y)
        self.W = np.vstack([model.coef_.T, model.intercept_[None]]).astype(np.float32)
        self.n_iter = int(model.n_iter_)
        self.seconds = time.perf_counter() - t0
        return self


SOLVERS = {"lbfgs": L2SVM, "sklearn": SklearnSVM}
