"""Pure analysis: DataFrames in, DataFrames and findings out; no Kubernetes or AWS client (an import contract)."""
