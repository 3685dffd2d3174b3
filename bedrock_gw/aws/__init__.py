"""AWS plumbing shared by every AWS call: credentials and request signing."""
