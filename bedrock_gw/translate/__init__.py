"""Pure OpenAI <-> Bedrock translation: plain data in, new plain data out, no I/O."""
