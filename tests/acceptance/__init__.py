"""Black-box acceptance tests: regard driven only through its CLI and files, as SPEC.md
describes them, one module per section of the contract."""
