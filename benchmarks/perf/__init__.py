"""Performance suite: speed and scale, each figure a ratio against a baseline run in the same process."""
