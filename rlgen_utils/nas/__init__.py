"""Neural architecture search (survey §2.3): the search space, the precomputed table, the searchers."""
