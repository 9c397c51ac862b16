"""Floor 6, the audit of a fitted model: residual clusters (``residuals`` with its ndarray
core, ``spectrum``, ``clusters``), forecast bias (``bias``) and the refit that adds the
clusters as factors (``refit``)."""
