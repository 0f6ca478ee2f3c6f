"""The rule families, one module each; every module ends with its ``RULES`` tuple."""
