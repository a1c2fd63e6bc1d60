"""Benchmarks: study configs (studies/), paper reproductions, and the performance suite (perf/)."""
