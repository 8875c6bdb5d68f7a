"""Runbook façades: one module per notebook, each the notebook's only entry into the library."""
