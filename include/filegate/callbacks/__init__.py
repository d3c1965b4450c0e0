"""Callbacks: when an uploaded file that named a callback URL reaches a terminal status, Filegate POSTs a signed
JSON body to that URL (hosts allowed per feed), retried and recorded like API calls, idempotent by key."""
