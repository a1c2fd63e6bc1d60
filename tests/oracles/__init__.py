"""Plain reference implementations of the trained pruning methods (issue 31).

Each module is one method written from its paper and the package's documented conventions
(README method table, docstrings), in plain torch: it imports nothing from
``graphtickets.training``, ``graphtickets.pruning`` or any selection helper of the package.
The tests in ``tests/test_oracles.py`` run a method and its oracle on the same model, seed
and data order and compare masks, rewind points and densities per round.
"""
