"""The Bedrock side: wire types, the event-stream decoder, errors and the async client."""
