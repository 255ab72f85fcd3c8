"""Re-ranking: business rules applied to the ranked candidates, each a small piece with its own test."""
