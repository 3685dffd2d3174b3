"""OpenAI wire types: requests the gateway accepts and the responses it sends."""
