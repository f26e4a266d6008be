"""Collection strategies: segments, treatment paths, versions, simulation, the daily run
and champion/challenger variants."""
