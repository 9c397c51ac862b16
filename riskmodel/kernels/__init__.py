"""Numba kernels: the only place numba is used.

Each kernel is a loop writing into preallocated outputs, compiled with ``cache=True``
and parallel over dates where that applies. Every kernel has a plain numpy twin in
``tests/`` that it is tested against. Callers validate inputs and lay arrays out
contiguously before calling; kernels do no checking.
"""
