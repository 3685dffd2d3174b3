"""Test doubles that speak real wire protocols over real sockets."""
