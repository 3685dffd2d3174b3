"""The model catalogue: what Bedrock offers, filtered by config, cached and refreshed."""
