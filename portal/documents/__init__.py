"""Documents against a customer or one of their accounts: upload (checked by content), list,
view, download (each logged), and a field agent's visit photo."""
