"""Compiled (numba) kernels of the policies, one module per concern.

* :mod:`.normal` — the standard normal CDF and density (``erfc`` and a Taylor table);
* :mod:`.linear_ts` — linear Thompson sampling's win probabilities (pruning, closed form,
  shared-grid trapezoid rule, Gauss–Hermite) and bounds on them;
* :mod:`.linear_layout` — the working memory layout of the per-arm ridge state and the
  products ``A_k⁻¹ x`` / scores computed on it;
* :mod:`.sherman_morrison` — rank-one updates of ``A_k⁻¹`` and ``b_k``;
* :mod:`.linear` — the loops of LinUCB and LinTS (probabilities, online play, replay), one
  compiled function per scoring mode;
* :mod:`.beta` — Beta Thompson sampling's win probabilities by Gauss–Legendre quadrature;
* :mod:`.arms` — the loops of the (grouped) context-free bandits.

Drawing actions, ε-mixing and ``update_every`` blocks come from
:mod:`bandits.policies.sampling`, shared with the Python paths. This package holds no policy
(the registry's discovery skips it).
"""
