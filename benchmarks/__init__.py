"""Benchmarks of Show-Attend-Tell: run from the repository root as `python -m benchmarks.bench_generate` etc."""
