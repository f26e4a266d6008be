"""Administration: users, API tokens, action codes, contact rules."""
