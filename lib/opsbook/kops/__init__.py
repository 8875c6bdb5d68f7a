"""kops: cluster spec, parameter validation, preflight, plan/apply, and the kops toolchain."""
