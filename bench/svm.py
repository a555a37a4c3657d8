"""A regularised linear L2-SVM (squared hinge loss, one-vs-rest), solved in the primal in float32.

For each class k, with labels y in {-1, +1} and the bias regularised like a feature of value 1
(exactly scikit-learn's ``LinearSVC(loss="squared_hinge", penalty="l2", intercept_scaling=1)``):

    min_{w,b}  1/2 (|w|^2 + b^2) + C * sum_i max(0, 1 - y_i (w . x_i + b))^2

All classes are solved at once by L-BFGS on the summed (separable) objective, in coordinates that
whiten the leading eigen-directions of X^T X (``_Preconditioner``): standardised conv features
are so correlated that plain L-BFGS needed hundreds of passes over X. Each evaluation is one pass
over row blocks of X computing both products (X @ W and X^T @ R) in float32 through numpy's BLAS
(torch's ``X.T @ R`` was 5-10x slower on this CPU), so a 50,000 x 28,672 problem never gets a
float64 copy. With fewer rows than columns the problem is solved exactly on X's row space.
Fits along a C path start from the previous solution and share ``prepare(X)``. ``LinearSVC``
stays available as the reference (``--solver sklearn``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from threadpoolctl import threadpool_limits

# BLAS threads pay off only when the products with X dominate; on small problems the optimiser's
# many tiny vector operations made 2 threads 10x slower than 1 on this 2-core machine.
_PARALLEL_MIN_SIZE = 1 << 22
_BLOCK_BYTES = 1 << 22  # rows of X per block of the fused pass: a few MB, so the block stays in cache
PRECONDITIONER_RANK = 512
MAX_ROUNDS = 8
STOP_GAP = 0.1  # stop when the estimated relative objective gap is below tol * STOP_GAP


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


@dataclass
class Prepared:
    """A training matrix made ready for fits at many C: possibly reduced, with a preconditioner.

    ``X`` is what the optimiser multiplies by (the original rows, or ``X V`` on the row space);
    ``basis`` maps weights back (None: no reduction); ``V``, ``lam`` are the leading eigenvectors
    and eigenvalues of ``X^T X`` (``V`` None: ``X``'s columns are already its eigenbasis).
    """

    X: np.ndarray
    basis: np.ndarray | None
    V: np.ndarray | None
    lam: np.ndarray
    seconds: float = 0.0


def prepare(X: np.ndarray, rank: int = PRECONDITIONER_RANK, seed: int = 0) -> Prepared:
    """Reduce ``X`` to its row space when it has at most half as many rows as columns, else
    estimate the top eigenpairs of ``X^T X`` for the preconditioner (see ``L2SVM``)."""
    t0 = time.perf_counter()
    X = _check_float32(X)
    n, d = X.shape
    with threadpool_limits(None if X.size >= _PARALLEL_MIN_SIZE else 1, user_api="blas"):
        if 2 * n <= d:
            Xr, basis, lam = _reduce_rows(X)
            return Prepared(Xr, basis, None, lam, time.perf_counter() - t0)
        V, lam = _top_eigen(X, min(rank, d // 2), np.random.default_rng(seed))
    return Prepared(X, None, V, lam, time.perf_counter() - t0)


def _reduce_rows(X: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X V, V, L)`` with V an orthonormal basis of X's row space and L the eigenvalues of X X^T.

    The SVM's optimal w lies in the row space (a component orthogonal to every row only adds to
    |w|^2), so fitting on the N x r matrix X V and mapping back with V is exact, and with few labels
    (1000 x 28672 for SVHN) far cheaper. V comes from the eigen-decomposition of the N x N Gram
    matrix, accumulated in float64 over column chunks: X X^T = U L U^T, X V = U L^(1/2), whose
    columns are orthogonal, so the preconditioner needs no eigenvectors.
    """
    n, d = X.shape
    gram = np.zeros((n, n))
    for s in range(0, d, chunk):
        block = np.asarray(X[:, s: s + chunk], dtype=np.float64)
        gram += block @ block.T
    lam, U = np.linalg.eigh(gram)
    keep = lam > lam[-1] * 1e-10
    U, lam = U[:, keep], lam[keep]
    root = np.sqrt(lam)
    basis = X.T @ (U / root).astype(np.float32)  # d x r: V = X^T U L^(-1/2)
    return np.ascontiguousarray((U * root).astype(np.float32)), basis, lam


def _top_eigen(X: np.ndarray, rank: int, rng: np.random.Generator, rows: int = 8192,
               power_iterations: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Leading eigenpairs of ``X^T X``, estimated by randomized subspace iteration on a row sample.

    The preconditioner only needs the directions of largest curvature roughly, so a sample of
    ``rows`` rows (eigenvalues rescaled to all N) is enough and costs a few passes over it.
    """
    n, d = X.shape
    S = np.ascontiguousarray(X[np.sort(rng.choice(n, min(n, rows), replace=False))])
    Q, _ = np.linalg.qr(rng.standard_normal((d, rank + 16)).astype(np.float32))
    for _ in range(power_iterations):
        Q, _ = np.linalg.qr(S.T @ (S @ Q))
    _, sigma, Vt = np.linalg.svd(S @ Q, full_matrices=False)
    V = np.ascontiguousarray(Q @ Vt[:rank].T, dtype=np.float64)  # float64 like the optimiser's vectors:
    return V, sigma[:rank].astype(np.float64) ** 2 * (n / len(S))  # no conversion per evaluation


class _Preconditioner:
    """The change of variables w = T u with T = (I + 2 C a X^T X)^(-1/2) on the leading eigenspace.

    The Hessian of the objective is I + 2 C X_A^T X_A (A: the rows inside the margin). Standardised
    features are strongly correlated, so its leading eigenvalues are thousands of times the rest and
    plain L-BFGS needs hundreds of passes over X. T whitens the top ``rank`` directions, with ``a``
    the fraction of active rows per class standing in for X_A (the bias row is left alone: the
    features have zero mean). T is symmetric, so the gradient in u is T times the gradient in w.
    """

    def __init__(self, prep: Prepared, C: float, active: np.ndarray):
        self.V = prep.V
        self.scale = (1 + 2 * C * prep.lam[:, None] * active[None, :]) ** -0.5  # r x K

    def _apply(self, W: np.ndarray, power: float) -> np.ndarray:
        out = W.copy()
        r = len(self.scale)
        if self.V is None:
            out[:r] *= self.scale ** power
        else:
            d = self.V.shape[0]
            out[:d] += self.V @ ((self.scale ** power - 1) * (self.V.T @ W[:d]))
        return out

    def to_w(self, U: np.ndarray) -> np.ndarray:
        return self._apply(U, 1.0)

    def to_u(self, W: np.ndarray) -> np.ndarray:
        return self._apply(W, -1.0)


def _row_blocks(X: np.ndarray):
    """Row slices of X of about ``_BLOCK_BYTES`` each (at least 64 rows)."""
    step = max(64, _BLOCK_BYTES // (X.itemsize * X.shape[1]))
    return (slice(s, s + step) for s in range(0, len(X), step))


class L2SVM:
    """One-vs-rest squared-hinge linear SVM; ``W`` (d+1, K) holds the weights, the bias in its last row.

    Solved by L-BFGS in preconditioned coordinates (``_Preconditioner``). The fraction of active rows
    is only known near the solution, so a fit runs in rounds: each round re-estimates it at the
    current weights and continues, until it stops moving.
    """

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
        return self._fun_grad(_check_float32(X), _signs(y, self.n_classes), np.asarray(W, np.float32))[0]

    def _fun_grad(self, X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> tuple[float, np.ndarray]:
        """Objective and gradient at ``W`` (float32, d+1 x K) in one pass over row blocks of X, so
        each block is read from memory once for both products."""
        d = X.shape[1]
        grad = W.astype(np.float64)
        loss = 0.0
        for rows in _row_blocks(X):
            Xb, Yb = X[rows], Y[rows]
            Z = Xb @ W[:d]
            Z += W[d]
            M = np.maximum(1 - Yb * Z, 0)  # squared-hinge margins; zero outside the active set
            R = Yb * M
            grad[:d] -= 2 * self.C * (Xb.T @ R)
            grad[d] -= 2 * self.C * R.sum(0, dtype=np.float64)
            loss += float(np.square(M, dtype=np.float64).sum())
        return 0.5 * float(np.square(W, dtype=np.float64).sum()) + self.C * loss, grad

    def _active(self, X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
        d = X.shape[1]
        inside = sum(((Y[rows] * (X[rows] @ W[:d] + W[d])) < 1).sum(0) for rows in _row_blocks(X))
        return np.maximum(inside / len(X), 0.01)

    def fit(self, X: np.ndarray, y: np.ndarray, warm_start: np.ndarray | None = None,
            prepared: Prepared | None = None) -> "L2SVM":
        """Fit all classes; ``warm_start`` is a previous ``W`` (e.g. at a nearby C); ``prepared`` is
        ``prepare(X)`` when the caller fits the same X several times."""
        t0 = time.perf_counter()
        prep = prepared if prepared is not None else prepare(X)
        X, K = prep.X, self.n_classes
        d = X.shape[1]
        if warm_start is not None and prep.basis is not None:
            warm_start = np.vstack([prep.basis.T @ warm_start[:-1], warm_start[-1:]])
        W = np.zeros((d + 1, K), np.float32) if warm_start is None else np.asarray(warm_start, np.float32)
        Y = _signs(y, K)
        self.n_iter = 0
        with threadpool_limits(None if X.size >= _PARALLEL_MIN_SIZE else 1, user_api="blas"):
            g0 = np.abs(self._fun_grad(X, Y, np.zeros_like(W))[1]).max()
            active = self._active(X, Y, W)
            for _ in range(MAX_ROUNDS):
                T = _Preconditioner(prep, self.C, active)
                last = {}

                def fun_grad(u):
                    f, g = self._fun_grad(X, Y, T.to_w(u.reshape(d + 1, K)).astype(np.float32))
                    g = T.to_w(g).ravel()
                    last["gap"] = 0.5 * float(g @ g) / f  # ~ (f - f*) / f: the Hessian in u is ~ I
                    return f, g

                def converged(intermediate_result):
                    if last["gap"] <= self.tol * STOP_GAP:
                        raise StopIteration

                res = scipy.optimize.minimize(
                    fun_grad, T.to_u(W.astype(np.float64)).ravel(), jac=True, method="L-BFGS-B",
                    callback=converged,
                    options={"maxiter": self.max_iter - self.n_iter, "gtol": 1e-3 * self.tol * g0, "ftol": 1e-12,
                             "maxcor": 20})
                done = res.success or last["gap"] <= self.tol * STOP_GAP
                W = T.to_w(res.x.reshape(d + 1, K)).astype(np.float32)
                self.n_iter += res.nit
                previous, active = active, self._active(X, Y, W)
                settled = np.abs(active - previous).max() < 0.05
                # a line search can stall on float32 rounding before the gradient test is met: a new
                # round restarts L-BFGS's memory, and a round that makes no progress ends the fit
                if (done and settled) or res.nit == 0 or self.n_iter >= self.max_iter:
                    break
        self.W = W if prep.basis is None else np.vstack([prep.basis @ W[:-1], W[-1:]])
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

    def fit(self, X, y, warm_start=None, prepared=None) -> "SklearnSVM":
        from sklearn.svm import LinearSVC

        t0 = time.perf_counter()
        model = LinearSVC(C=self.C, loss="squared_hinge", penalty="l2", tol=self.tol, max_iter=self.max_iter,
                          intercept_scaling=1.0).fit(X, y)
        self.W = np.vstack([model.coef_.T, model.intercept_[None]]).astype(np.float32)
        self.n_iter = int(model.n_iter_)
        self.seconds = time.perf_counter() - t0
        return self


SOLVERS = {"lbfgs": L2SVM, "sklearn": SklearnSVM}
