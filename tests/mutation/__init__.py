"""Hand-listed mutants and the script that runs them (``make mutate``); not collected by pytest."""
