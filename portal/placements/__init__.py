"""Cases placed with the legal team or an external collection agency: place, recall, the
agency's file, what each agency collected, the agencies."""
