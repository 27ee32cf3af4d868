"""The notifications service: tells the customer how the order ended, once per order."""
