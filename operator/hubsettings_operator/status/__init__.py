"""Status: every verdict the operator writes (reconcile, drift, convergence) and the one Ready gate, pure."""
