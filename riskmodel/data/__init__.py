"""Floor 2, the data: the labelled panel and where it comes from.

``panel`` validates and builds panels, ``io`` saves and loads every riskmodel file,
``datasets`` reads the bundled real data, ``simulation`` makes worlds with known truth,
``industries`` pools thin industries and ``descriptors`` computes style characteristics
from prices. Nothing here knows about models.
"""
