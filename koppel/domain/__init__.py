"""Pure business logic: canonical records, money, QBO payloads, customer identity, items, stock."""
