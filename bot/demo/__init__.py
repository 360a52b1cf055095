"""`pqlbot demo` and its bundled sample: out of the runtime path."""
