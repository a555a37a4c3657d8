"""A regularised linear L2-SVM (squared hinge loss, one-vs-rest), solved in the primal in float32.

For each class k, with labels y in {-1, +1} and the bias regularised like a feature of value 1
(exactly scikit-learn's ``LinearSVC(loss="squared_hinge", penalty="l2", intercept_scaling=1)``):

    min_{w,b}  1/2 (|w|^2 + b^2) + C * sum_i max(0, 1 - y_i (w . x_i + b))^2

Each class is its own L-BFGS problem; the classes run in lockstep so that every pass over X
serves all of them, and a class that has converged drops out of the products. L-BFGS starts from
an inverse-Hessian guess that whitens the leading eigen-directions of X^T X (``_Preconditioner``):
standardised conv features are so correlated that plain L-BFGS needed hundreds of passes over X.
The line search is exact (to 1e-6 in the step) and costs no pass over X (the objective is
piecewise quadratic along a line), so an iteration is two float32 products, ``X P`` and
``R^T X`` (torch's, in that orientation: ``X^T R`` ran 2x slower). The features come as a
float32 array or as ``Standardized`` rows of one (``bench.standardized``): a 50,000 x 28,672
problem is multiplied where it lies, a read-only memory-mapped cache file, never copied. With at
most half as many rows as columns the problem is solved exactly on X's row space. Fits along a C
path start from the previous solution and share ``prepare(X)``. ``LinearSVC`` stays available as
the reference (``--solver sklearn``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bench.standardized import Standardized
from dcgan.registry import Registry

# BLAS threads pay off only when the products with X dominate; on small problems the optimiser's
# many tiny vector operations made 2 threads 10x slower than 1 on this 2-core machine.
_PARALLEL_MIN_SIZE = 1 << 22
PRECONDITIONER_RANK = 512
EIGEN_SAMPLE_ROWS = 8192  # rows of X the preconditioner's eigenvectors are estimated on
STOP_GAP = 0.1  # stop when the estimated relative objective gap is below tol * STOP_GAP
LBFGS_MEMORY = 10  # steps remembered (20 needed as many iterations on CIFAR-10 features)
RESYNC_EVERY = 50  # iterations between exact recomputations of the scores X W


def _signs(y: np.ndarray, n_classes: int) -> np.ndarray:
    Y = -np.ones((len(y), n_classes), dtype=np.float32)
    Y[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = 1
    return Y


def _rows(X) -> Standardized:
    """The solver's view of its features: a ``Standardized`` as given, or a float32 array as it is."""
    return X if isinstance(X, Standardized) else Standardized(X)


@dataclass
class Prepared:
    """A training matrix made ready for fits at many C: possibly reduced, with a preconditioner.

    ``X`` is what the optimiser multiplies by (the original rows, or ``X V`` on the row space);
    ``basis`` maps weights back (None: no reduction); ``V``, ``lam`` are the leading eigenvectors
    and eigenvalues of ``X^T X`` (``V`` None: ``X``'s columns are already its eigenbasis).
    """

    X: Standardized
    basis: np.ndarray | None
    V: np.ndarray | None
    lam: np.ndarray
    seconds: float = 0.0


def prepare(X: np.ndarray | Standardized, rank: int = PRECONDITIONER_RANK, seed: int = 0) -> Prepared:
    """Reduce ``X`` to its row space when it has at most half as many rows as columns, else
    estimate the top eigenpairs of ``X^T X`` for the preconditioner (see ``L2SVM``)."""
    t0 = time.perf_counter()
    X = _rows(X)
    n, d = X.shape
    with threadpool_limits(None if X.size >= _PARALLEL_MIN_SIZE else 1, user_api="blas"):
        if 2 * n <= d:
            Xr, basis, lam = _reduce_rows(X)
            return Prepared(Standardized(Xr), basis, None, lam, time.perf_counter() - t0)
        V, lam = _top_eigen(X, min(rank, d // 2), np.random.default_rng(seed))
    return Prepared(X, None, V, lam, time.perf_counter() - t0)


def _reduce_rows(X: Standardized, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X V, V, L)`` with V an orthonormal basis of X's row space and L the eigenvalues of X X^T.

    The SVM's optimal w lies in the row space (a component orthogonal to every row only adds to
    |w|^2), so fitting on the N x r matrix X V and mapping back with V is exact, and with few labels
    (1000 x 28672 for SVHN) far cheaper. V comes from the eigen-decomposition of the N x N Gram
    matrix, accumulated in float64 over column chunks: X X^T = U L U^T, X V = U L^(1/2), whose
    columns are orthogonal, so the preconditioner needs no eigenvectors. X is read twice, a column
    chunk at a time (the Gram matrix, then V).
    """
    n, d = X.shape
    gram = np.zeros((n, n))
    for _, block in X.column_blocks(chunk):
        block = block.astype(np.float64)
        gram += block @ block.T
    lam, U = np.linalg.eigh(gram)
    keep = lam > lam[-1] * 1e-10
    U, lam = U[:, keep], lam[keep]
    root = np.sqrt(lam)
    scaled = (U / root).astype(np.float32)
    basis = np.empty((d, len(lam)), np.float32)  # V = X^T U L^(-1/2)
    for s, block in X.column_blocks(chunk):
        basis[s: s + block.shape[1]] = block.T @ scaled
    return np.ascontiguousarray((U * root).astype(np.float32)), basis, lam


def _top_eigen(X: Standardized, rank: int, rng: np.random.Generator,
               power_iterations: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Leading eigenpairs of ``X^T X``, estimated by randomized subspace iteration on a row sample.

    The preconditioner only needs the directions of largest curvature roughly, so a sample of
    ``EIGEN_SAMPLE_ROWS`` rows (eigenvalues rescaled to all N) is enough and costs a few passes over it. In
    torch: its QR ran 5x, its products 1.7x faster than numpy's here (8192 x 28672 samples).
    """
    n, d = X.shape
    S = torch.from_numpy(X.take(np.sort(rng.choice(n, min(n, EIGEN_SAMPLE_ROWS), replace=False))))
    Q, _ = torch.linalg.qr(torch.from_numpy(rng.standard_normal((d, rank + 16)).astype(np.float32)))
    for _ in range(power_iterations):
        Q, _ = torch.linalg.qr(S.T @ (S @ Q))
    _, sigma, Vt = torch.linalg.svd(S @ Q, full_matrices=False)
    V = (Q @ Vt[:rank].T).contiguous().numpy()
    return V, sigma[:rank].numpy().astype(np.float64) ** 2 * (n / len(S))


class _Preconditioner:
    """The initial inverse-Hessian guess of L-BFGS: H0 = (I + 2 C a X^T X)^(-1) on the leading eigenspace.

    The Hessian of the objective is I + 2 C X_A^T X_A (A: the rows inside the margin). Standardised
    features are strongly correlated, so its leading eigenvalues are thousands of times the rest and
    plain L-BFGS needs hundreds of passes over X. H0 inverts the top ``rank`` directions, with ``a``
    the fraction of active rows per class standing in for X_A (the bias row is left alone: the
    features have zero mean). Being only L-BFGS's starting matrix, it may change at every iteration
    as ``a`` moves, without restarting the optimiser.

    H0 q = q + V (shrink * V^T q) is applied from ``V^T q`` (``project``), which the optimiser keeps
    for every vector it combines, so each iteration costs one product with V^T and one with V.
    """

    def __init__(self, prep: Prepared, C: float, active: np.ndarray):
        self.V = prep.V
        self.shrink = 1 / (1 + 2 * C * prep.lam[:, None] * active[None, :]) - 1  # r x K, in (-1, 0]

    @staticmethod
    def project(prep: Prepared, G: np.ndarray) -> np.ndarray:
        """``V^T G`` (the leading eigen-coordinates of the weights part of G), r x K."""
        if prep.V is None:  # reduced problem: X's columns are its eigenbasis
            return G[: len(prep.lam)]
        return (prep.V.T @ G[:-1].astype(np.float32)).astype(np.float64)

    def apply(self, q: np.ndarray, Vq: np.ndarray) -> np.ndarray:
        """H0 q, given ``Vq = project(q)``."""
        out = q.copy()
        if self.V is None:
            out[: len(self.shrink)] += self.shrink * Vq
        else:
            out[:-1] += self.V @ (self.shrink * Vq).astype(np.float32)
        return out

    def quadratic(self, G: np.ndarray, VG: np.ndarray) -> np.ndarray:
        """g^T H0 g per class, given ``VG = project(G)``."""
        return (G * G).sum(0) + (self.shrink * VG * VG).sum(0)


def _line_search(W: np.ndarray, P: np.ndarray, margin: np.ndarray, Q: np.ndarray, C: float,
                 steps: int = 50, rtol: float = 1e-6) -> np.ndarray:
    """The minimiser t >= 0, per class, of f(W + t P) given the margins ``1 - y z`` at W and their
    rates of decrease ``Q = y (X P)``, to ``rtol`` relative.

    Along a line the objective is a convex piecewise quadratic in t, so its minimum costs O(N K)
    and no pass over X: safeguarded Newton steps on f'(t), exact as soon as the active set stops
    changing, inside a bracket that bisection keeps shrinking.
    """
    wp, pp = np.einsum("ij,ij->j", W, P), np.einsum("ij,ij->j", P, P)
    Q2 = Q * Q
    lo, hi = np.zeros(len(wp)), np.full(len(wp), np.inf)
    t = np.ones(len(wp))
    for _ in range(steps):
        M = np.maximum(margin - t * Q, 0)
        slope = wp + t * pp - 2 * C * np.einsum("ij,ij->j", M, Q)
        curve = np.maximum(pp + 2 * C * np.einsum("ij,ij->j", M > 0, Q2), 1e-300)  # 0 only where P = 0
        lo = np.where(slope < 0, t, lo)
        hi = np.where(slope > 0, t, hi)
        newton = t - slope / curve
        inside = (newton > lo) & (newton < hi)
        nxt = np.where(inside, newton, np.where(np.isfinite(hi), (lo + hi) / 2, 2 * t))
        if np.all(np.abs(nxt - t) <= rtol * t):
            return nxt
        t = nxt
    return t


class L2SVM:
    """One-vs-rest squared-hinge linear SVM; ``W`` (d+1, K) holds the weights, the bias in its last row.

    Solved by L-BFGS, one independent optimiser per class run in lockstep so that each pass over X
    serves all classes: per iteration one product ``X P`` for the search directions and one
    ``X^T R`` for the gradients. The line search is exact to 1e-6 (``_line_search``) and works on the
    scores ``X W`` kept up to date without touching X. L-BFGS's starting matrix is the eigen
    preconditioner (``_Preconditioner``). A class stops when its estimated relative objective gap
    (1/2 g^T H0 g / f, H0 standing in for the inverse Hessian) is below ``tol * STOP_GAP``; the
    products then skip its column.
    """

    def __init__(self, C: float, n_classes: int, tol: float = 1e-4, max_iter: int = 1000):
        self.C = C
        self.n_classes = n_classes
        self.tol = tol
        self.max_iter = max_iter
        self.W: np.ndarray | None = None
        self.n_iter = 0
        self.seconds = 0.0

    def objective(self, X: np.ndarray | Standardized, y: np.ndarray, W: np.ndarray | None = None) -> float:
        """The summed primal objective at ``W`` (default: the fitted weights)."""
        W = np.asarray(self.W if W is None else W, np.float64)
        margin = 1 - _signs(y, self.n_classes) * _rows(X).scores(W)
        return float(self._objectives(W, margin).sum())

    def _objectives(self, W: np.ndarray, margin: np.ndarray) -> np.ndarray:
        return 0.5 * (W * W).sum(0) + self.C * np.square(np.maximum(margin, 0)).sum(0)

    def _gradient(self, X: Standardized, W: np.ndarray, margin: np.ndarray, Y: np.ndarray) -> np.ndarray:
        R = (Y * np.maximum(margin, 0)).astype(np.float32)
        G = W.copy()
        G[:-1] -= 2 * self.C * X.transposed_product(R)
        G[-1] -= 2 * self.C * R.sum(0, dtype=np.float64)
        return G

    def fit(self, X: np.ndarray | Standardized, y: np.ndarray, warm_start: np.ndarray | None = None,
            prepared: Prepared | None = None) -> "L2SVM":
        """Fit all classes on a float32 array or ``Standardized`` rows; ``warm_start`` is a previous
        ``W`` (e.g. at a nearby C); ``prepared`` is ``prepare(X)`` when the caller fits the same X
        several times."""
        t0 = time.perf_counter()
        prep = prepared if prepared is not None else prepare(X)
        X, K = prep.X, self.n_classes
        d = X.shape[1]
        if warm_start is not None and prep.basis is not None:
            warm_start = np.vstack([prep.basis.T @ warm_start[:-1], warm_start[-1:]])
        W = np.zeros((d + 1, K)) if warm_start is None else np.array(warm_start, np.float64)
        Y = _signs(y, K).astype(np.float64)
        history: list[tuple] = []  # (step, gradient change, its projection, 1 / (step . change)) per iteration
        live = np.ones(K, bool)  # classes still being optimised
        self.n_iter = 0
        with threadpool_limits(None if X.size >= _PARALLEL_MIN_SIZE else 1, user_api="blas"):
            Z = X.scores(W)
            G = self._gradient(X, W, 1 - Y * Z, Y)
            VG = _Preconditioner.project(prep, G)
            while self.n_iter < self.max_iter:
                if self.n_iter and self.n_iter % RESYNC_EVERY == 0:  # Z is updated in place: bound its drift
                    Z[:, live] = X.scores(W[:, live])
                margin = 1 - Y * Z
                H0 = _Preconditioner(prep, self.C, np.maximum((margin > 0).mean(0), 0.01))
                gap = 0.5 * H0.quadratic(G, VG) / self._objectives(W, margin)
                live &= gap > self.tol * STOP_GAP  # a stopped class stays stopped
                if not live.any():
                    break
                P = np.zeros_like(W)
                P[:, live] = -_two_loop(G, VG, history, H0)[:, live]
                ZP = np.zeros_like(Z)
                ZP[:, live] = X.scores(P[:, live])
                t = _line_search(W, P, margin, Y * ZP, self.C)
                W += t * P
                Z += t * ZP
                G_new = G.copy()
                G_new[:, live] = self._gradient(X, W[:, live], 1 - Y[:, live] * Z[:, live], Y[:, live])
                VG_new = _Preconditioner.project(prep, G_new)
                step, change = t * P, G_new - G
                curvature = (step * change).sum(0)  # >= |step|^2 > 0 where live: f is strongly convex
                rho = np.divide(1, curvature, out=np.zeros(K), where=curvature > 0)
                history = (history + [(step, change, VG_new - VG, rho)])[-LBFGS_MEMORY:]
                G, VG = G_new, VG_new
                self.n_iter += 1
        W = W.astype(np.float32)
        self.W = W if prep.basis is None else np.vstack([prep.basis @ W[:-1], W[-1:]])
        self.seconds = time.perf_counter() - t0
        return self

    def decision_function(self, X: np.ndarray | Standardized) -> np.ndarray:
        return _rows(X).scores(self.W)

    def predict(self, X: np.ndarray | Standardized) -> np.ndarray:
        return self.decision_function(X).argmax(1)

    def accuracy(self, X: np.ndarray | Standardized, y: np.ndarray) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())


def _two_loop(G: np.ndarray, VG: np.ndarray, history: list, H0: _Preconditioner) -> np.ndarray:
    """L-BFGS's inverse-Hessian estimate times G, column by column (each class its own history).

    ``V^T q`` is carried along with q (a combination of projections already known), so H0 costs
    one product with V and none with V^T."""
    q, Vq = G.copy(), VG.copy()
    alphas = []
    for s, g, Vg, rho in reversed(history):
        a = rho * np.einsum("ij,ij->j", s, q)
        q -= a * g
        Vq -= a * Vg
        alphas.append(a)
    r = H0.apply(q, Vq)
    for (s, g, _, rho), a in zip(history, reversed(alphas)):
        r += s * (a - rho * np.einsum("ij,ij->j", g, r))
    return r


class SklearnSVM(L2SVM):
    """scikit-learn's LinearSVC (liblinear) for the same objective: the reference; slow, and it
    copies the (standardised) features to float64."""

    def fit(self, X, y, warm_start=None, prepared=None) -> "SklearnSVM":
        from sklearn.svm import LinearSVC

        t0 = time.perf_counter()
        X = X.take() if isinstance(X, Standardized) else X
        model = LinearSVC(C=self.C, loss="squared_hinge", penalty="l2", tol=self.tol, max_iter=self.max_iter,
                          intercept_scaling=1.0).fit(X, y)
        self.W = np.vstack([model.coef_.T, model.intercept_[None]]).astype(np.float32)
        self.n_iter = int(model.n_iter_)
        self.seconds = time.perf_counter() - t0
        return self


SOLVERS: Registry[type[L2SVM]] = Registry("SVM solver")
SOLVERS.add("lbfgs", L2SVM)
SOLVERS.add("sklearn", SklearnSVM)
