"""A regularised linear L2-SVM (squared hinge loss, one-vs-rest), solved in the primal in float32.

For each class k, with labels y in {-1, +1} and the bias regularised like a feature of value 1
(exactly scikit-learn's ``LinearSVC(loss="squared_hinge", penalty="l2", intercept_scaling=1)``):

    min_{w,b}  1/2 (|w|^2 + b^2) + C * sum_i max(0, 1 - y_i (w . x_i + b))^2

All classes are solved at once by L-BFGS on the summed (separable) objective. Each evaluation is
two dense matrix products with the feature matrix (X @ W and X^T @ R), in float32 on all cores, so
a 50,000 x 28,672 problem never gets a float64 copy. Fits along a C path start from the previous
solution. ``LinearSVC`` stays available as the reference (``--solver sklearn``).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.optimize
import torch


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
    var = np.maximum(total_sq / len(X) - mean**2, 0)
    std = np.sqrt(var)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _signs(y: np.ndarray, n_classes: int) -> torch.Tensor:
    Y = -torch.ones(len(y), n_classes)
    Y[torch.arange(len(y)), torch.as_tensor(y, dtype=torch.long)] = 1
    return Y


class L2SVM:
    """One-vs-rest squared-hinge linear SVM; ``W`` holds the weights with the bias as its last row."""

    def __init__(self, C: float, n_classes: int, tol: float = 1e-4, max_iter: int = 1000):
        self.C = C
        self.n_classes = n_classes
        self.tol = tol
        self.max_iter = max_iter
        self.W: torch.Tensor | None = None
        self.n_iter = 0
        self.seconds = 0.0

    def objective(self, X: np.ndarray, y: np.ndarray, W: torch.Tensor | None = None) -> float:
        """The summed primal objective at ``W`` (default: the fitted weights)."""
        f, _ = self._fun_grad(torch.from_numpy(np.asarray(X)), _signs(y, self.n_classes),
                              (self.W if W is None else W).double().numpy().ravel())
        return f

    def _fun_grad(self, X: torch.Tensor, Y: torch.Tensor, w: np.ndarray) -> tuple[float, np.ndarray]:
        d = X.shape[1]
        W = torch.from_numpy(w.astype(np.float32)).view(d + 1, self.n_classes)
        Z = X @ W[:d] + W[d]
        M = (1 - Y * Z).clamp_(min=0)  # squared-hinge margins; zero outside the active set
        R = Y * M
        grad = W.clone()
        grad[:d] -= 2 * self.C * (X.T @ R)
        grad[d] -= 2 * self.C * R.sum(0)
        f = 0.5 * float(W.double().pow(2).sum()) + self.C * float(M.double().pow(2).sum())
        return f, grad.double().numpy().ravel()

    def fit(self, X: np.ndarray, y: np.ndarray, warm_start: torch.Tensor | None = None) -> "L2SVM":
        t0 = time.perf_counter()
        Xt = torch.from_numpy(np.asarray(X))
        if Xt.dtype != torch.float32:
            raise TypeError(f"features must be float32, got {Xt.dtype}")
        Y = _signs(y, self.n_classes)
        shape = (X.shape[1] + 1, self.n_classes)
        w0 = np.zeros(np.prod(shape)) if warm_start is None else warm_start.double().numpy().ravel()
        g0 = np.abs(self._fun_grad(Xt, Y, np.zeros(np.prod(shape)))[1]).max()
        res = scipy.optimize.minimize(
            lambda w: self._fun_grad(Xt, Y, w), w0, jac=True, method="L-BFGS-B",
            options={"maxiter": self.max_iter, "gtol": self.tol * g0, "ftol": 1e-12, "maxcor": 20})
        self.W = torch.from_numpy(res.x.astype(np.float32)).view(shape)
        self.n_iter = res.nit
        self.seconds = time.perf_counter() - t0
        return self

    def decision_function(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        d = X.shape[1]
        out = [torch.from_numpy(np.asarray(X[s: s + chunk])) @ self.W[:d] + self.W[d]
               for s in range(0, len(X), chunk)]
        return torch.cat(out).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.decision_function(X).argmax(1)

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())


class SklearnSVM:
    """scikit-learn's LinearSVC behind the same interface: the reference (slow, copies to float64)."""

    def __init__(self, C: float, n_classes: int, tol: float = 1e-4, max_iter: int = 1000):
        from sklearn.svm import LinearSVC

        self.C = C
        self.n_classes = n_classes
        self.model = LinearSVC(C=C, loss="squared_hinge", penalty="l2", tol=tol, max_iter=max_iter,
                               intercept_scaling=1.0)
        self.seconds = 0.0

    def fit(self, X, y, warm_start=None) -> "SklearnSVM":
        t0 = time.perf_counter()
        self.model.fit(X, y)
        self.W = torch.from_numpy(np.vstack([self.model.coef_.T, self.model.intercept_[None]]).astype(np.float32))
        self.seconds = time.perf_counter() - t0
        return self

    def predict(self, X) -> np.ndarray:
        return self.model.predict(X)

    def accuracy(self, X, y) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())


SOLVERS = {"lbfgs": L2SVM, "sklearn": SklearnSVM}
