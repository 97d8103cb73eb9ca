"""Convergence of the Hub replicas: the pure decision and the replica probe, below the runtime."""
