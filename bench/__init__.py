"""A benchmark of the gateway against the fake Bedrock it fronts (not a test: nothing asserts).

``python -m bench`` starts the fake Bedrock, the gateway and a load generator as separate
processes on 127.0.0.1 and prints one table; see ``bench/README.md``.
"""
