"""Mention sources. Each one is a ``MentionSource``: an async stream of normalised mentions."""
