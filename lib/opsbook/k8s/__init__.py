"""Reading from (and, for the sandbox, writing to) the Kubernetes API."""
