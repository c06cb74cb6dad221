"""What the cluster runs: Argo CD Applications and KServe InferenceServices, read with the
kubernetes client (imported lazily: `--help`, `render` and `validate` never load it)."""
