"""The agent workspace: work queue, "Next case", customer search and the case view."""
