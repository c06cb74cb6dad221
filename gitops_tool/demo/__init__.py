"""`gitops-tool demo`: the whole loop on one machine (local MLflow, local Git remote, real promotions)."""
