"""Secret tooling: seal values for sealed-secrets, make htpasswd entries. Nothing here writes plaintext."""
