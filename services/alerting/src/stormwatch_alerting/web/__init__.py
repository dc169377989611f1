"""The crisis room: open alerts, acknowledge/resolve, audit trail, webhooks."""
