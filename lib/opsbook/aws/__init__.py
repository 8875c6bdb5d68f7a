"""Reading from (and, for the sandbox, writing to) AWS."""
